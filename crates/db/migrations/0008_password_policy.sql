-- Keystone's security-compliance options: when each user's password was set (for expiry
-- and minimum age) and the hashes of earlier passwords (for unique_last_password_count).
ALTER TABLE users ADD COLUMN password_set_at BIGINT;
CREATE TABLE password_history (
    user_id TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX password_history_by_user ON password_history (user_id, created_at);
