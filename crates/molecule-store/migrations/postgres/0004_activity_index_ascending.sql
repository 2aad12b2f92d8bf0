-- The per-workspace activity index in ascending time order: every new row
-- then lands at the end of its (workspace, type) run instead of at its
-- start, which keeps page splits on the append path. Listings newest first
-- read the same index backwards.
DROP INDEX IF EXISTS idx_activity_ws_type_time;
CREATE INDEX idx_activity_ws_type_time
    ON activity_logs(workspace_id, activity_type, created_at);
