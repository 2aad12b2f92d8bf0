-- The result of the A2A conformance probe run when the workspace's agent
-- last registered (JSON: checked_at, passed, failed checks); NULL until one ran.
ALTER TABLE workspaces ADD COLUMN IF NOT EXISTS a2a_conformance JSONB;
