-- Hosts joining the cloud. A join token is single-use and expires; a joined host's agent
-- presents its credential on every call. Only SHA-256 hashes of the (random, 256-bit)
-- secrets are kept.
CREATE TABLE cmp_join_tokens (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE cmp_host_credentials (
    host TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    joined_at BIGINT NOT NULL
);
