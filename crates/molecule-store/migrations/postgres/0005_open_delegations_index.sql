-- Delegations the platform still has to dispatch or finish: the
-- `delegations` background task re-reads them (after a restart too). The
-- partial index holds only those tracking rows, so the scan stays small
-- however large the activity log grows.
CREATE INDEX IF NOT EXISTS idx_activity_open_delegations
    ON activity_logs(created_at)
    WHERE method = 'delegate' AND status IN ('pending', 'dispatched');
