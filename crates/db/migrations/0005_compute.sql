-- Compute: flavors, keypairs, servers, server groups, instance actions, quotas, hosts.
-- Documents are JSON next to the columns queries select on (see the network tables).
CREATE TABLE cmp_flavors (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    is_public INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    doc TEXT NOT NULL
);

CREATE TABLE cmp_flavor_access (
    flavor_id TEXT NOT NULL REFERENCES cmp_flavors(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    PRIMARY KEY (flavor_id, project_id)
);

CREATE TABLE cmp_keypairs (
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    project_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
);

CREATE TABLE cmp_servers (
    id TEXT PRIMARY KEY,
    number BIGINT NOT NULL UNIQUE,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    host TEXT NOT NULL DEFAULT '',
    vcpus BIGINT NOT NULL,
    memory_mb BIGINT NOT NULL,
    disk_gb BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX cmp_servers_by_project ON cmp_servers (project_id, created_at);
CREATE INDEX cmp_servers_by_host ON cmp_servers (host);

CREATE TABLE cmp_server_groups (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    doc TEXT NOT NULL
);

CREATE TABLE cmp_actions (
    server_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    start_time BIGINT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (server_id, request_id)
);

CREATE TABLE cmp_quotas (
    project_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    PRIMARY KEY (project_id, resource)
);

CREATE TABLE cmp_hosts (
    host TEXT PRIMARY KEY,
    updated_at BIGINT NOT NULL,
    doc TEXT NOT NULL
);
