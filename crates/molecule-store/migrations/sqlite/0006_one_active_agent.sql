-- At most one active agent per workspace, enforced by the database: two
-- concurrent assigns (or a move racing an assign) cannot both win.
CREATE UNIQUE INDEX IF NOT EXISTS idx_agents_one_active
    ON agents(workspace_id) WHERE status = 'active';
