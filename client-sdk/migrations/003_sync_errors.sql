-- Version 2 of the replica schema: remember why the last sync failed, so that
-- an app (and `doorbook worker status`) can say it.
ALTER TABLE sync_state ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
ALTER TABLE sync_state ADD COLUMN last_error_at INTEGER NOT NULL DEFAULT 0;
-- The newest clock among rows received from the server: changes re-stamped
-- after a clock skew must come after it.
ALTER TABLE sync_state ADD COLUMN remote_hlc INTEGER NOT NULL DEFAULT 0;
