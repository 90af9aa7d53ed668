-- Image ids stay taken after a delete, as Glance keeps deleted rows: a new image can never
-- take an old image's id, so nothing keyed by id (a compute host's image cache) can give
-- the new image the old one's bytes.

CREATE TABLE image_tombstones (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    deleted_at BIGINT NOT NULL
);
