-- Messages between platform replicas that are too long for a NOTIFY
-- payload (8000 bytes): the notification names the row, each replica
-- reads it. Rows are short-lived: every send removes those older than
-- five minutes.
CREATE TABLE bus_messages (
    id BIGSERIAL PRIMARY KEY,
    body TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX bus_messages_created_at ON bus_messages (created_at);
