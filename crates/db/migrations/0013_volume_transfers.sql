-- Block storage volume transfers: a volume offered by its project to whoever presents the
-- transfer's id and key. The key is kept only as a salted hash.
CREATE TABLE vol_transfers (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    volume_id TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX vol_transfers_by_project ON vol_transfers (project_id, created_at);
