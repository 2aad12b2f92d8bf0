-- Signed webhook deliveries already taken, for replay protection (an
-- addition: the reference has none). Rows older than the retention window
-- are purged with the activity log.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    source      TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, delivery_id)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_received_at ON webhook_deliveries (received_at);
