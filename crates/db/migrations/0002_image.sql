-- Image (Glance) schema. `properties` holds the free-form properties as a JSON object.

CREATE TABLE images (
    id TEXT PRIMARY KEY,
    name TEXT,
    status TEXT NOT NULL,
    visibility TEXT NOT NULL,
    protected INTEGER NOT NULL DEFAULT 0,
    os_hidden INTEGER NOT NULL DEFAULT 0,
    checksum TEXT,
    os_hash_algo TEXT,
    os_hash_value TEXT,
    owner TEXT NOT NULL,
    size BIGINT,
    virtual_size BIGINT,
    min_disk BIGINT NOT NULL DEFAULT 0,
    min_ram BIGINT NOT NULL DEFAULT 0,
    container_format TEXT,
    disk_format TEXT,
    properties TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX images_by_created ON images (created_at, id);
CREATE INDEX images_by_owner ON images (owner);

CREATE TABLE image_tags (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (image_id, tag)
);

CREATE TABLE image_members (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    member_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (image_id, member_id)
);
CREATE INDEX image_members_by_member ON image_members (member_id, status);
