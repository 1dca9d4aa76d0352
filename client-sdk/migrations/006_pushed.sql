-- Changes the server acknowledged, kept for a while after they leave the
-- outbox: should the server be restored from a backup taken before them,
-- the phone pushes them again when it starts over, and nothing it
-- recorded is lost. seq is the change's outbox position, so that they go
-- again in the order they were made.
CREATE TABLE pushed (
	seq        INTEGER PRIMARY KEY,
	change_id  TEXT NOT NULL UNIQUE,
	payload    BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	pushed_at  INTEGER NOT NULL
);
CREATE INDEX pushed_at ON pushed(pushed_at);
