-- When a running run last showed it was alive; a run whose heartbeat stopped was killed.
ALTER TABLE runs ADD COLUMN heartbeat_at TIMESTAMPTZ;
