-- Nova's host aggregates: named groups of hosts with metadata; `availability_zone` in the
-- metadata makes the aggregate an availability zone for its hosts.
CREATE TABLE cmp_aggregates (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL
);
