-- The identity service's cache generation, for controllers that share one database: every
-- identity write bumps it, and a controller that sees a newer one drops what it cached.
CREATE TABLE identity_generation (id INTEGER PRIMARY KEY, generation BIGINT NOT NULL);
INSERT INTO identity_generation (id, generation) VALUES (1, 1);
