-- System callers (`system:…`, `webhook:…`, `channel:…`, `test:…`) are not
-- workspaces: their id is kept here instead of being lost (the reference
-- tried to put them into a UUID column and dropped the row).
ALTER TABLE activity_logs ADD COLUMN source_label TEXT;
