-- Version 2 of the replica schema: remember why the last sync failed, so that
-- an app (and `doorbook worker status`) can say it, and who the outbox is
-- waiting on.
ALTER TABLE sync_state ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
ALTER TABLE sync_state ADD COLUMN last_error_at INTEGER NOT NULL DEFAULT 0;
