-- The recent turns of each chat of a channel, for the agent's context
-- (bounded per chat by the platform, expired after 24 h).
CREATE TABLE IF NOT EXISTS channel_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id TEXT NOT NULL REFERENCES workspace_channels(id) ON DELETE CASCADE,
    chat_id    TEXT NOT NULL,
    role       TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS channel_history_chat ON channel_history (channel_id, chat_id, created_at);
