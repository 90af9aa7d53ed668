-- Revocation events may name a project: all tokens scoped to it (project disabled), or a
-- user's tokens scoped to it (role assignment removed).
ALTER TABLE revocation_events ADD COLUMN project_id TEXT;
CREATE INDEX revocation_by_project ON revocation_events (project_id);
