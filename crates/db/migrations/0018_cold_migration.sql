-- A server being moved to another host (a cold migration, until it is confirmed or
-- reverted) holds room on a second host: the one it moves to, until it is placed there,
-- then the one it left, which keeps its guest for a revert. That host lists it too (its
-- agent keeps the guest as it is) and the scheduler counts it there.
ALTER TABLE cmp_servers ADD COLUMN other_host TEXT NOT NULL DEFAULT '';
CREATE INDEX cmp_servers_by_other_host ON cmp_servers (other_host);
