-- Molecule schema, SQLite: the same logical schema as
-- migrations/postgres/0001_init.sql (data-and-lifecycle.md §1.2), mapped to
-- SQLite storage classes:
--   * UUID        -> TEXT, lowercase hyphenated (defaults generate a v4);
--   * TIMESTAMPTZ -> TEXT in one fixed-width UTC format that sorts lexically,
--                    '%Y-%m-%dT%H:%M:%S.ffffffZ' (the app always binds it);
--   * JSONB       -> TEXT holding JSON; BYTEA -> BLOB; BOOLEAN -> INTEGER 0/1;
--   * FLOAT       -> REAL.
-- Same two deliberate differences as PostgreSQL: workspaces.status_reason,
-- and a partial unique index on workspace_schedules(workspace_id, name).
-- Full-text search on agent_memories is an FTS5 external-content table kept
-- in sync by triggers (PostgreSQL: a generated tsvector column).

CREATE TABLE workspaces (
    id                  TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    name                TEXT NOT NULL,
    role                TEXT,
    tier                INTEGER DEFAULT 1,
    status              TEXT DEFAULT 'provisioning',
    source_bundle_id    TEXT,
    agent_card          TEXT,
    url                 TEXT,
    parent_id           TEXT REFERENCES workspaces(id),
    forwarded_to        TEXT REFERENCES workspaces(id),
    last_heartbeat_at   TEXT,
    last_error_rate     REAL DEFAULT 0,
    last_sample_error   TEXT,
    active_tasks        INTEGER DEFAULT 0,
    uptime_seconds      INTEGER DEFAULT 0,
    created_at          TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    updated_at          TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    current_task        TEXT,
    awareness_namespace TEXT,
    runtime             TEXT DEFAULT 'langgraph',
    workspace_dir       TEXT,
    workspace_access    VARCHAR(20) NOT NULL DEFAULT 'none'
                        CHECK (workspace_access IN ('none', 'read_only', 'read_write')),
    status_reason       TEXT
);
CREATE INDEX idx_workspaces_parent_id ON workspaces(parent_id);
CREATE INDEX idx_workspaces_status ON workspaces(status);

CREATE TABLE agents (
    id             TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    workspace_id   TEXT REFERENCES workspaces(id),
    model          TEXT,
    status         TEXT DEFAULT 'active',
    removed_at     TEXT,
    removal_reason TEXT,
    created_at     TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')
);
CREATE INDEX idx_agents_workspace_id ON agents(workspace_id);

-- Append-only; workspace_id deliberately has no foreign key.
CREATE TABLE structure_events (
    id           TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    event_type   TEXT NOT NULL,
    workspace_id TEXT,
    agent_id     TEXT,
    target_id    TEXT,
    payload      TEXT,
    created_at   TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')
);
CREATE INDEX idx_events_workspace_id ON structure_events(workspace_id);
CREATE INDEX idx_events_created_at ON structure_events(created_at);

CREATE TABLE workspace_secrets (
    id                 TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    workspace_id       TEXT REFERENCES workspaces(id),
    key                TEXT NOT NULL,
    encrypted_value    BLOB NOT NULL,
    created_at         TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    updated_at         TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    encryption_version INTEGER NOT NULL DEFAULT 0,
    UNIQUE (workspace_id, key)
);

CREATE TABLE global_secrets (
    id                 TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    key                TEXT NOT NULL UNIQUE,
    encrypted_value    BLOB NOT NULL,
    created_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    updated_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    encryption_version INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE canvas_layouts (
    workspace_id TEXT PRIMARY KEY NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    x            REAL NOT NULL DEFAULT 0,
    y            REAL NOT NULL DEFAULT 0,
    collapsed    INTEGER DEFAULT 0
);
CREATE INDEX idx_canvas_layouts_ws ON canvas_layouts(workspace_id);

CREATE TABLE canvas_viewport (
    id       TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    x        REAL NOT NULL DEFAULT 0,
    y        REAL NOT NULL DEFAULT 0,
    zoom     REAL NOT NULL DEFAULT 1,
    saved_at TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')
);

CREATE TABLE workspace_config (
    workspace_id TEXT PRIMARY KEY NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    data         TEXT NOT NULL DEFAULT '{}',
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')
);

CREATE TABLE workspace_memory (
    id           TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL,
    expires_at   TEXT,
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    UNIQUE (workspace_id, key)
);
CREATE INDEX workspace_memory_workspace_id_idx ON workspace_memory(workspace_id);

CREATE TABLE approval_requests (
    id           TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    workspace_id TEXT REFERENCES workspaces(id),
    task_id      TEXT,
    action       TEXT NOT NULL,
    reason       TEXT,
    context      TEXT DEFAULT '{}',
    status       TEXT DEFAULT 'pending'
                 CHECK (status IN ('pending', 'approved', 'denied', 'escalated')),
    decided_by   TEXT,
    decided_at   TEXT,
    created_at   TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')
);
CREATE INDEX idx_approvals_workspace ON approval_requests(workspace_id);
CREATE INDEX idx_approvals_status ON approval_requests(status);

-- `seq` exists only for FTS5: an external-content table needs a stable integer
-- rowid, and a rowid that is not an INTEGER PRIMARY KEY may change on VACUUM.
CREATE TABLE agent_memories (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    workspace_id TEXT REFERENCES workspaces(id),
    content      TEXT NOT NULL,
    scope        VARCHAR(10) NOT NULL CHECK (scope IN ('LOCAL', 'TEAM', 'GLOBAL')),
    created_at   TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    updated_at   TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    namespace    VARCHAR(50) NOT NULL DEFAULT 'general'
);
CREATE INDEX idx_memories_workspace ON agent_memories(workspace_id);
CREATE INDEX idx_memories_scope ON agent_memories(scope);
CREATE INDEX idx_memories_ns ON agent_memories(workspace_id, namespace);

-- English-ish stemming, the closest FTS5 match to to_tsvector('english', …).
CREATE VIRTUAL TABLE agent_memories_fts USING fts5(
    content,
    content = 'agent_memories',
    content_rowid = 'seq',
    tokenize = 'porter unicode61'
);
CREATE TRIGGER agent_memories_fts_ai AFTER INSERT ON agent_memories BEGIN
    INSERT INTO agent_memories_fts(rowid, content) VALUES (new.seq, new.content);
END;
CREATE TRIGGER agent_memories_fts_ad AFTER DELETE ON agent_memories BEGIN
    INSERT INTO agent_memories_fts(agent_memories_fts, rowid, content)
        VALUES ('delete', old.seq, old.content);
END;
CREATE TRIGGER agent_memories_fts_au AFTER UPDATE OF content ON agent_memories BEGIN
    INSERT INTO agent_memories_fts(agent_memories_fts, rowid, content)
        VALUES ('delete', old.seq, old.content);
    INSERT INTO agent_memories_fts(rowid, content) VALUES (new.seq, new.content);
END;

CREATE TABLE activity_logs (
    id              TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    workspace_id    TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    activity_type   TEXT NOT NULL,
    source_id       TEXT,
    target_id       TEXT,
    method          TEXT,
    summary         TEXT,
    request_body    TEXT,
    response_body   TEXT,
    duration_ms     INTEGER,
    status          TEXT DEFAULT 'ok',
    error_detail    TEXT,
    created_at      TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    idempotency_key TEXT
);
CREATE INDEX idx_activity_ws_type_time
    ON activity_logs(workspace_id, activity_type, created_at DESC);
CREATE INDEX idx_activity_created_at ON activity_logs(created_at);
CREATE UNIQUE INDEX activity_logs_idempotency_uniq
    ON activity_logs(workspace_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- source: template = created by an org/template import; runtime = created
-- through the API or by the agent.
CREATE TABLE workspace_schedules (
    id           TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name         TEXT NOT NULL DEFAULT '',
    cron_expr    TEXT NOT NULL,
    timezone     TEXT NOT NULL DEFAULT 'UTC',
    prompt       TEXT NOT NULL,
    enabled      INTEGER NOT NULL DEFAULT 1,
    last_run_at  TEXT,
    next_run_at  TEXT,
    run_count    INTEGER NOT NULL DEFAULT 0,
    last_status  TEXT DEFAULT '',
    last_error   TEXT DEFAULT '',
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    source       TEXT NOT NULL DEFAULT 'runtime'
                 CONSTRAINT workspace_schedules_source_check CHECK (source IN ('template', 'runtime'))
);
CREATE INDEX idx_schedules_workspace ON workspace_schedules(workspace_id);
CREATE INDEX idx_schedules_next_run
    ON workspace_schedules(enabled, next_run_at) WHERE enabled = 1;
-- Partial on purpose: unnamed schedules ('') never collide.
CREATE UNIQUE INDEX idx_schedules_workspace_name
    ON workspace_schedules(workspace_id, name) WHERE name <> '';

CREATE TABLE workspace_channels (
    id              TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    workspace_id    TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    channel_type    TEXT NOT NULL,
    channel_config  TEXT NOT NULL DEFAULT '{}',
    enabled         INTEGER NOT NULL DEFAULT 1,
    allowed_users   TEXT DEFAULT '[]',
    last_message_at TEXT,
    message_count   INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')
);
CREATE UNIQUE INDEX idx_channels_workspace_type
    ON workspace_channels(workspace_id, channel_type);
CREATE INDEX idx_channels_lookup
    ON workspace_channels(channel_type, enabled) WHERE enabled = 1;

CREATE TABLE workspace_auth_tokens (
    id           TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))),
    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    token_hash   BLOB NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX workspace_auth_tokens_live_idx
    ON workspace_auth_tokens(workspace_id) WHERE revoked_at IS NULL;
