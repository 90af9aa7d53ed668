-- One row that `begin_write` updates first, so that a transaction which reads before it
-- writes (quota, capacity, uniqueness) holds the write lock from its start: SQLite's
-- database lock, PostgreSQL's lock on this row.
CREATE TABLE write_lock (id INTEGER PRIMARY KEY);
INSERT INTO write_lock (id) VALUES (1);
