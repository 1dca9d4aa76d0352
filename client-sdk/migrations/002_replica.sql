-- The replica's own state: one row.
CREATE TABLE sync_state (
	id            INTEGER PRIMARY KEY CHECK (id = 1),
	replica_id    TEXT NOT NULL,
	server_url    TEXT NOT NULL DEFAULT '',
	device_id     TEXT NOT NULL DEFAULT '',
	token         TEXT NOT NULL DEFAULT '',
	worker_id     TEXT NOT NULL DEFAULT '',
	worker_name   TEXT NOT NULL DEFAULT '',
	-- Feed position of the last applied pull batch.
	cursor        INTEGER NOT NULL DEFAULT 0,
	-- Newest HLC issued or observed, and the wall-clock shift learned from
	-- the server.
	hlc           INTEGER NOT NULL DEFAULT 0,
	offset_millis INTEGER NOT NULL DEFAULT 0,
	last_sync_at  INTEGER NOT NULL DEFAULT 0
);

-- The grids of the worker's scope, as of the last sync.
CREATE TABLE my_grids (
	grid_id TEXT PRIMARY KEY,
	name    TEXT NOT NULL
);

-- Changes made here and not yet acknowledged by the server, in order. A
-- change is written in the same transaction as the local row it changes.
CREATE TABLE outbox (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	change_id  TEXT NOT NULL UNIQUE,
	payload    BLOB NOT NULL,
	created_at INTEGER NOT NULL
);

-- Bootstraps to run or resume: '*' for the whole scope of a new device, or
-- a grid newly given to the worker. cursor is the feed position of the
-- first page, kept from the first attempt.
CREATE TABLE pending_bootstraps (
	key      TEXT PRIMARY KEY,
	after_id TEXT NOT NULL DEFAULT '',
	cursor   INTEGER
);
