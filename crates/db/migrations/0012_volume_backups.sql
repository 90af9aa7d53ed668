-- Block storage backups: whole copies of a volume's data, or (incremental) the differences
-- from an earlier backup of the same volume, kept by the backup store.
CREATE TABLE vol_backups (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    volume_id TEXT NOT NULL,
    parent_id TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    host TEXT NOT NULL,
    size_gb BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX vol_backups_by_project ON vol_backups (project_id, created_at);
CREATE INDEX vol_backups_by_volume ON vol_backups (volume_id, created_at);
CREATE INDEX vol_backups_by_parent ON vol_backups (parent_id);
CREATE INDEX vol_backups_by_host ON vol_backups (host, status);
