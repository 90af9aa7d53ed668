-- Routers and floating IPs (Neutron's L3). Documents like the other network tables; a
-- router's interfaces and gateway are ports (device_id = router id), and a floating IP's
-- address is its own port's allocation on the external network, so the address tables
-- already keep them unique. `association` ("<port id>/<fixed ip>") makes one fixed
-- address carry at most one floating IP.

CREATE TABLE net_routers (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    revision BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX net_routers_by_project ON net_routers (project_id);

CREATE TABLE net_floating_ips (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    floating_network_id TEXT NOT NULL REFERENCES net_networks(id),
    association TEXT UNIQUE,
    revision BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX net_floating_ips_by_project ON net_floating_ips (project_id);
