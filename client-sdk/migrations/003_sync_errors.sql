-- Version 2 of the replica schema: remember why the last sync failed, so that
-- an app (and `doorbook worker status`) can say it; keep the changes the
-- server refused for good, with the reason, rather than losing them.
ALTER TABLE sync_state ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
ALTER TABLE sync_state ADD COLUMN last_error_at INTEGER NOT NULL DEFAULT 0;
-- The newest clock the server holds as far as this replica knows (rows
-- pulled, changes acknowledged): changes re-stamped after a clock skew must
-- come after it.
ALTER TABLE sync_state ADD COLUMN remote_hlc INTEGER NOT NULL DEFAULT 0;

-- Changes the server refused and can never apply as they are (the household
-- left the worker's scope before the device knew, the record contradicts the
-- server's...): set aside, so that the rest of the outbox can go, and kept
-- for the user to see.
CREATE TABLE rejected_changes (
	change_id   TEXT PRIMARY KEY,
	payload     BLOB NOT NULL,
	reason      TEXT NOT NULL,
	rejected_at INTEGER NOT NULL
);
