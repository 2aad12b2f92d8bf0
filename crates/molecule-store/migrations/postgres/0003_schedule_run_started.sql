-- When the run in flight of a schedule started (NULL = none). Set by
-- whichever replica fires it and cleared when it finishes, so the overlap
-- policy (skip while the previous run is in flight) holds across replicas
-- and restarts; a marker older than the fire timeout counts as abandoned.
ALTER TABLE workspace_schedules ADD COLUMN IF NOT EXISTS run_started_at TIMESTAMPTZ;
