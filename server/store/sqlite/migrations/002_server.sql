-- The organisation tree: district → street → community → grid.
CREATE TABLE org_nodes (
	id        TEXT PRIMARY KEY,
	parent_id TEXT REFERENCES org_nodes(id),
	level     INTEGER NOT NULL,
	name      TEXT NOT NULL
);
CREATE INDEX org_nodes_parent ON org_nodes(parent_id);

CREATE TABLE workers (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	role       INTEGER NOT NULL,
	created_at INTEGER NOT NULL
);

-- The grids each worker answers for now.
CREATE TABLE worker_grids (
	worker_id TEXT NOT NULL REFERENCES workers(id),
	grid_id   TEXT NOT NULL REFERENCES org_nodes(id),
	PRIMARY KEY (worker_id, grid_id)
) WITHOUT ROWID;
CREATE INDEX worker_grids_grid ON worker_grids(grid_id);

-- History of grid assignments, in feed order: a device learns from it that
-- a grid arrived (bootstrap it) or left (drop it).
CREATE TABLE scope_events (
	seq       INTEGER PRIMARY KEY,
	worker_id TEXT NOT NULL,
	grid_id   TEXT NOT NULL,
	added     INTEGER NOT NULL
);
CREATE INDEX scope_events_worker ON scope_events(worker_id, seq);

-- History of households changing grid, in feed order.
CREATE TABLE household_moves (
	seq          INTEGER PRIMARY KEY,
	household_id TEXT NOT NULL,
	from_grid    TEXT NOT NULL,
	to_grid      TEXT NOT NULL
);
CREATE INDEX household_moves_household ON household_moves(household_id, seq);

CREATE TABLE admins (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	node_id    TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL
);

-- A bearer token: a worker's device or an admin's token. Only a hash of the
-- secret is kept.
CREATE TABLE credentials (
	id           TEXT PRIMARY KEY,
	worker_id    TEXT REFERENCES workers(id),
	admin_id     TEXT REFERENCES admins(id),
	label        TEXT NOT NULL DEFAULT '',
	secret_hash  BLOB NOT NULL,
	created_at   INTEGER NOT NULL,
	revoked_at   INTEGER,
	-- The newest cursor the device has shown it applied (by pulling from it).
	known_cursor INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE enrollment_codes (
	code_hash  BLOB PRIMARY KEY,
	worker_id  TEXT NOT NULL REFERENCES workers(id),
	created_by TEXT NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER
);

-- The change feed: the newest sequence number of each replicated row, per
-- household it belongs to (a group visit has one entry per household).
CREATE TABLE feed (
	seq          INTEGER PRIMARY KEY,
	kind         INTEGER NOT NULL,
	entity_id    TEXT NOT NULL,
	household_id TEXT NOT NULL,
	UNIQUE (kind, entity_id, household_id)
);
CREATE INDEX feed_household ON feed(household_id);

-- Change ids already applied, for idempotent pushes.
CREATE TABLE applied_changes (
	change_id     TEXT PRIMARY KEY,
	credential_id TEXT NOT NULL,
	seq           INTEGER NOT NULL
) WITHOUT ROWID;

-- Every write transaction's range of sequence numbers, with a random tag. A
-- cursor carries the tag of the transaction it points into, so that a
-- database restored from a backup, whose feed reuses those numbers for
-- other writes, knows the cursor is not one of its own.
CREATE TABLE commits (
	last_seq  INTEGER PRIMARY KEY,
	first_seq INTEGER NOT NULL,
	tag       INTEGER NOT NULL
);

CREATE TABLE counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
);
INSERT INTO counters(name, value) VALUES ('seq', 0);
