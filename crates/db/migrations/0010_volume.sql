-- Block storage: volume types, volumes and per-project quotas. Documents are JSON next to
-- the columns queries select on (see the network and compute tables).
CREATE TABLE vol_types (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    is_public INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    doc TEXT NOT NULL
);

CREATE TABLE vol_volumes (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    status TEXT NOT NULL,
    host TEXT NOT NULL,
    volume_type_id TEXT NOT NULL REFERENCES vol_types(id),
    size_gb BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX vol_volumes_by_project ON vol_volumes (project_id, created_at);
CREATE INDEX vol_volumes_by_host ON vol_volumes (host, status);

CREATE TABLE vol_quotas (
    project_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    PRIMARY KEY (project_id, resource)
);
