-- Network (Neutron) schema. Each resource is a JSON document (`doc`) holding its attributes,
-- next to the columns that queries select on and the tables that enforce what must never
-- collide: one address per subnet, one MAC per network, one segment per id, no duplicate rules.
-- `revision` guards read-modify-write updates (compare-and-set).

CREATE TABLE net_networks (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    revision BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX net_networks_by_project ON net_networks (project_id);

-- "vxlan:1001", "vlan:physnet1:100", "flat:physnet1": a segment belongs to one network.
CREATE TABLE net_segments (
    segment_key TEXT PRIMARY KEY,
    network_id TEXT NOT NULL REFERENCES net_networks(id) ON DELETE CASCADE
);

CREATE TABLE net_subnets (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    network_id TEXT NOT NULL REFERENCES net_networks(id),
    revision BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX net_subnets_by_network ON net_subnets (network_id);

CREATE TABLE net_ports (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    network_id TEXT NOT NULL REFERENCES net_networks(id),
    mac_address TEXT NOT NULL,
    host_id TEXT NOT NULL DEFAULT '',
    revision BIGINT NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (network_id, mac_address)
);
CREATE INDEX net_ports_by_project ON net_ports (project_id);
CREATE INDEX net_ports_by_host ON net_ports (host_id);

CREATE TABLE net_ip_allocations (
    subnet_id TEXT NOT NULL REFERENCES net_subnets(id),
    ip_address TEXT NOT NULL,
    network_id TEXT NOT NULL,
    port_id TEXT NOT NULL REFERENCES net_ports(id) ON DELETE CASCADE,
    PRIMARY KEY (subnet_id, ip_address)
);
CREATE INDEX net_ip_allocations_by_port ON net_ip_allocations (port_id);

CREATE TABLE net_security_groups (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    revision BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX net_security_groups_by_project ON net_security_groups (project_id);

CREATE TABLE net_default_security_groups (
    project_id TEXT PRIMARY KEY,
    security_group_id TEXT NOT NULL REFERENCES net_security_groups(id) ON DELETE CASCADE
);

CREATE TABLE net_security_group_rules (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    security_group_id TEXT NOT NULL REFERENCES net_security_groups(id) ON DELETE CASCADE,
    -- what makes two rules the same (protocol names folded to numbers, prefixes normalized)
    dedupe_key TEXT NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (security_group_id, dedupe_key)
);

CREATE TABLE net_port_security_groups (
    port_id TEXT NOT NULL REFERENCES net_ports(id) ON DELETE CASCADE,
    security_group_id TEXT NOT NULL REFERENCES net_security_groups(id),
    PRIMARY KEY (port_id, security_group_id)
);
CREATE INDEX net_port_security_groups_by_group ON net_port_security_groups (security_group_id);

CREATE TABLE net_quotas (
    project_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    PRIMARY KEY (project_id, resource)
);

-- Hosts running the network agent, with the address their VXLAN tunnels use.
CREATE TABLE net_hosts (
    host TEXT PRIMARY KEY,
    tunnel_ip TEXT,
    heartbeat_at BIGINT NOT NULL
);
