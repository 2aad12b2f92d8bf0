-- Molecule schema, PostgreSQL: the final state of data-and-lifecycle.md §1.2
-- (the reference's forward files 001…022) in one versioned migration.
--
-- Every statement is idempotent (IF NOT EXISTS) so this migration also adopts
-- a database that the reference platform migrated without a tracking table.
-- Two deliberate differences from the reference:
--   * workspaces.status_reason (nullable TEXT): why a row is in its status;
--   * idx_schedules_workspace_name is partial (WHERE name <> ''), so a
--     workspace may hold several unnamed schedules.

CREATE TABLE IF NOT EXISTS workspaces (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name                TEXT NOT NULL,
    role                TEXT,
    tier                INTEGER DEFAULT 1,
    status              TEXT DEFAULT 'provisioning',
    source_bundle_id    TEXT,
    agent_card          JSONB,
    url                 TEXT,
    parent_id           UUID REFERENCES workspaces(id),
    forwarded_to        UUID REFERENCES workspaces(id),
    last_heartbeat_at   TIMESTAMPTZ,
    last_error_rate     DOUBLE PRECISION DEFAULT 0,
    last_sample_error   TEXT,
    active_tasks        INTEGER DEFAULT 0,
    uptime_seconds      INTEGER DEFAULT 0,
    created_at          TIMESTAMPTZ DEFAULT now(),
    updated_at          TIMESTAMPTZ DEFAULT now(),
    current_task        TEXT,
    awareness_namespace TEXT,
    runtime             TEXT DEFAULT 'langgraph',
    workspace_dir       TEXT,
    workspace_access    VARCHAR(20) NOT NULL DEFAULT 'none'
                        CHECK (workspace_access IN ('none', 'read_only', 'read_write')),
    status_reason       TEXT
);
-- Adopted reference databases lack the column.
ALTER TABLE workspaces ADD COLUMN IF NOT EXISTS status_reason TEXT;
CREATE INDEX IF NOT EXISTS idx_workspaces_parent_id ON workspaces(parent_id);
CREATE INDEX IF NOT EXISTS idx_workspaces_status ON workspaces(status);

CREATE TABLE IF NOT EXISTS agents (
    id             UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id   UUID REFERENCES workspaces(id),
    model          TEXT,
    status         TEXT DEFAULT 'active',
    removed_at     TIMESTAMPTZ,
    removal_reason TEXT,
    created_at     TIMESTAMPTZ DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_agents_workspace_id ON agents(workspace_id);

-- Append-only; workspace_id deliberately has no foreign key.
CREATE TABLE IF NOT EXISTS structure_events (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    event_type   TEXT NOT NULL,
    workspace_id UUID,
    agent_id     UUID,
    target_id    UUID,
    payload      JSONB,
    created_at   TIMESTAMPTZ DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_events_workspace_id ON structure_events(workspace_id);
CREATE INDEX IF NOT EXISTS idx_events_created_at ON structure_events(created_at);

CREATE TABLE IF NOT EXISTS workspace_secrets (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id       UUID REFERENCES workspaces(id),
    key                TEXT NOT NULL,
    encrypted_value    BYTEA NOT NULL,
    created_at         TIMESTAMPTZ DEFAULT now(),
    updated_at         TIMESTAMPTZ DEFAULT now(),
    encryption_version INTEGER NOT NULL DEFAULT 0,
    UNIQUE (workspace_id, key)
);

CREATE TABLE IF NOT EXISTS global_secrets (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    key                TEXT NOT NULL UNIQUE,
    encrypted_value    BYTEA NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    encryption_version INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS canvas_layouts (
    workspace_id UUID PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
    x            DOUBLE PRECISION NOT NULL DEFAULT 0,
    y            DOUBLE PRECISION NOT NULL DEFAULT 0,
    collapsed    BOOLEAN DEFAULT false
);
CREATE INDEX IF NOT EXISTS idx_canvas_layouts_ws ON canvas_layouts(workspace_id);

CREATE TABLE IF NOT EXISTS canvas_viewport (
    id       UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    x        DOUBLE PRECISION NOT NULL DEFAULT 0,
    y        DOUBLE PRECISION NOT NULL DEFAULT 0,
    zoom     DOUBLE PRECISION NOT NULL DEFAULT 1,
    saved_at TIMESTAMPTZ DEFAULT now()
);

CREATE TABLE IF NOT EXISTS workspace_config (
    workspace_id UUID PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
    data         JSONB NOT NULL DEFAULT '{}',
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS workspace_memory (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    value        JSONB NOT NULL,
    expires_at   TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, key)
);
CREATE INDEX IF NOT EXISTS workspace_memory_workspace_id_idx ON workspace_memory(workspace_id);

CREATE TABLE IF NOT EXISTS approval_requests (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id UUID REFERENCES workspaces(id),
    task_id      TEXT,
    action       TEXT NOT NULL,
    reason       TEXT,
    context      JSONB DEFAULT '{}',
    status       TEXT DEFAULT 'pending'
                 CHECK (status IN ('pending', 'approved', 'denied', 'escalated')),
    decided_by   TEXT,
    decided_at   TIMESTAMPTZ,
    created_at   TIMESTAMPTZ DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_approvals_workspace ON approval_requests(workspace_id);
CREATE INDEX IF NOT EXISTS idx_approvals_status ON approval_requests(status);

CREATE TABLE IF NOT EXISTS agent_memories (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id UUID REFERENCES workspaces(id),
    content      TEXT NOT NULL,
    scope        VARCHAR(10) NOT NULL CHECK (scope IN ('LOCAL', 'TEAM', 'GLOBAL')),
    created_at   TIMESTAMPTZ DEFAULT now(),
    updated_at   TIMESTAMPTZ DEFAULT now(),
    namespace    VARCHAR(50) NOT NULL DEFAULT 'general',
    content_tsv  tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED
);
CREATE INDEX IF NOT EXISTS idx_memories_workspace ON agent_memories(workspace_id);
CREATE INDEX IF NOT EXISTS idx_memories_scope ON agent_memories(scope);
CREATE INDEX IF NOT EXISTS idx_memories_fts ON agent_memories USING GIN (content_tsv);
CREATE INDEX IF NOT EXISTS idx_memories_ns ON agent_memories(workspace_id, namespace);

CREATE TABLE IF NOT EXISTS activity_logs (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id    UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    activity_type   TEXT NOT NULL,
    source_id       UUID,
    target_id       UUID,
    method          TEXT,
    summary         TEXT,
    request_body    JSONB,
    response_body   JSONB,
    duration_ms     INTEGER,
    status          TEXT DEFAULT 'ok',
    error_detail    TEXT,
    created_at      TIMESTAMPTZ DEFAULT now(),
    idempotency_key TEXT
);
CREATE INDEX IF NOT EXISTS idx_activity_ws_type_time
    ON activity_logs(workspace_id, activity_type, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_activity_created_at ON activity_logs(created_at);
CREATE UNIQUE INDEX IF NOT EXISTS activity_logs_idempotency_uniq
    ON activity_logs(workspace_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE IF NOT EXISTS workspace_schedules (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name         TEXT NOT NULL DEFAULT '',
    cron_expr    TEXT NOT NULL,
    timezone     TEXT NOT NULL DEFAULT 'UTC',
    prompt       TEXT NOT NULL,
    enabled      BOOLEAN NOT NULL DEFAULT true,
    last_run_at  TIMESTAMPTZ,
    next_run_at  TIMESTAMPTZ,
    run_count    INTEGER NOT NULL DEFAULT 0,
    last_status  TEXT DEFAULT '',
    last_error   TEXT DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    source       TEXT NOT NULL DEFAULT 'runtime'
                 CONSTRAINT workspace_schedules_source_check CHECK (source IN ('template', 'runtime'))
);
COMMENT ON COLUMN workspace_schedules.source IS
    'template = created by an org/template import; runtime = created through the API or by the agent';
CREATE INDEX IF NOT EXISTS idx_schedules_workspace ON workspace_schedules(workspace_id);
CREATE INDEX IF NOT EXISTS idx_schedules_next_run
    ON workspace_schedules(enabled, next_run_at) WHERE enabled = true;
-- Partial on purpose: unnamed schedules ('') never collide. An adopted
-- database carries the reference's full unique index, which is replaced.
DROP INDEX IF EXISTS idx_schedules_workspace_name;
CREATE UNIQUE INDEX idx_schedules_workspace_name
    ON workspace_schedules(workspace_id, name) WHERE name <> '';

CREATE TABLE IF NOT EXISTS workspace_channels (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id    UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    channel_type    TEXT NOT NULL,
    channel_config  JSONB NOT NULL DEFAULT '{}',
    enabled         BOOLEAN NOT NULL DEFAULT true,
    allowed_users   JSONB DEFAULT '[]',
    last_message_at TIMESTAMPTZ,
    message_count   INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_channels_workspace_type
    ON workspace_channels(workspace_id, channel_type);
CREATE INDEX IF NOT EXISTS idx_channels_lookup
    ON workspace_channels(channel_type, enabled) WHERE enabled = true;

CREATE TABLE IF NOT EXISTS workspace_auth_tokens (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    token_hash   BYTEA NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS workspace_auth_tokens_live_idx
    ON workspace_auth_tokens(workspace_id) WHERE revoked_at IS NULL;
