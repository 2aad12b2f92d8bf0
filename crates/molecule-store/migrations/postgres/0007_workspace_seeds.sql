-- What the next provisioning of a workspace writes into its /configs: the
-- files resolved when it was created (template copy, generated
-- config.yaml, org or bundle files) or when a restart asked for a
-- template again. Cleared once written; restarts without one reuse the
-- volume as it is.
CREATE TABLE IF NOT EXISTS workspace_seeds (
    workspace_id UUID PRIMARY KEY NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    files        JSONB NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
