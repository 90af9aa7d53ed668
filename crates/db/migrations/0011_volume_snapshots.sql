-- Block storage snapshots, and what each volume was made from (a snapshot a volume's file
-- is an overlay on must not go before the volume is flattened).
CREATE TABLE vol_snapshots (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    volume_id TEXT NOT NULL,
    status TEXT NOT NULL,
    host TEXT NOT NULL,
    size_gb BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX vol_snapshots_by_project ON vol_snapshots (project_id, created_at);
CREATE INDEX vol_snapshots_by_volume ON vol_snapshots (volume_id);
CREATE INDEX vol_snapshots_by_host ON vol_snapshots (host, status);

ALTER TABLE vol_volumes ADD COLUMN source_snapshot TEXT NOT NULL DEFAULT '';
