-- The server's tables, as the SQLite backend has them (its migrations 002
-- to 010 and statedb's replicated tables, SchemaV1 and SchemaV2), in
-- PostgreSQL's dialect:
--
--   * Ids, names and every text a query orders or pages by are COLLATE "C":
--     byte order, as SQLite's and Go's, whatever the database's locale
--     (keyset pages, "id > after ORDER BY id", must agree with the
--     callers' sorts), and the cheapest comparisons.
--   * Times stay integers in the units SQLite keeps (Unix ms for visits,
--     commits, erasures and the audit log; Unix s for credentials, codes,
--     workers and admins), so that what is read back rounds as it does
--     there.
--   * Flags are booleans, blobs bytea; a row's field clocks are one bytea
--     (syncengine.EncodeClocks), read only when merging.
--   * Feed positions (scope_events.seq, household_moves.seq,
--     categories.seq, campaigns.seq, applied_changes.seq, erasures'
--     first_seq and last_seq) are taken from feed_head when the write
--     transaction is sealed (see feed.go), from the same counter as the
--     feed's entries.

-- The organisation tree: district → street → community → grid.
CREATE TABLE org_nodes (
	id        text COLLATE "C" PRIMARY KEY,
	parent_id text COLLATE "C" REFERENCES org_nodes (id),
	level     integer NOT NULL,
	name      text COLLATE "C" NOT NULL
);
CREATE INDEX org_nodes_parent ON org_nodes (parent_id);

CREATE TABLE workers (
	id         text COLLATE "C" PRIMARY KEY,
	name       text COLLATE "C" NOT NULL,
	role       integer NOT NULL,
	created_at bigint NOT NULL,
	-- The subtree of the admin who last set the worker's grids.
	home_node  text COLLATE "C" NOT NULL DEFAULT ''
);
CREATE INDEX workers_name ON workers (name, id);

-- The grids each worker answers for now.
CREATE TABLE worker_grids (
	worker_id text COLLATE "C" NOT NULL REFERENCES workers (id),
	grid_id   text COLLATE "C" NOT NULL REFERENCES org_nodes (id),
	PRIMARY KEY (worker_id, grid_id)
);
CREATE INDEX worker_grids_grid ON worker_grids (grid_id);

-- History of grid assignments, at feed positions.
CREATE TABLE scope_events (
	seq       bigint PRIMARY KEY,
	worker_id text COLLATE "C" NOT NULL,
	grid_id   text COLLATE "C" NOT NULL,
	added     boolean NOT NULL
);
CREATE INDEX scope_events_worker ON scope_events (worker_id, seq);

-- History of households changing grid, at feed positions.
CREATE TABLE household_moves (
	seq          bigint PRIMARY KEY,
	household_id text COLLATE "C" NOT NULL,
	from_grid    text COLLATE "C" NOT NULL,
	to_grid      text COLLATE "C" NOT NULL
);
CREATE INDEX household_moves_household ON household_moves (household_id, seq);

CREATE TABLE admins (
	id         text COLLATE "C" PRIMARY KEY,
	name       text NOT NULL,
	node_id    text COLLATE "C" NOT NULL DEFAULT '',
	created_at bigint NOT NULL,
	-- A leader: an admin who may only read.
	read_only  boolean NOT NULL DEFAULT false
);

-- A bearer token: a worker's device or an admin's token, by the hash of
-- its secret.
CREATE TABLE credentials (
	id             text COLLATE "C" PRIMARY KEY,
	worker_id      text COLLATE "C" REFERENCES workers (id),
	admin_id       text COLLATE "C" REFERENCES admins (id),
	label          text NOT NULL DEFAULT '',
	secret_hash    bytea NOT NULL,
	created_at     bigint NOT NULL,
	revoked_at     bigint,
	revoked_reason text NOT NULL DEFAULT '',
	-- The newest feed position the device has shown it applied.
	known_cursor   bigint NOT NULL DEFAULT 0
);
CREATE INDEX credentials_worker ON credentials (worker_id, created_at, id) WHERE worker_id IS NOT NULL;

CREATE TABLE enrollment_codes (
	code_hash  bytea PRIMARY KEY,
	worker_id  text COLLATE "C" NOT NULL REFERENCES workers (id),
	created_by text NOT NULL,
	expires_at bigint NOT NULL,
	used_at    bigint
);
CREATE INDEX enrollment_codes_expires ON enrollment_codes (expires_at);

-- Change ids already applied, for idempotent pushes, with the feed
-- position they were applied at and a fingerprint of their content.
CREATE TABLE applied_changes (
	change_id     text COLLATE "C" PRIMARY KEY,
	credential_id text COLLATE "C" NOT NULL,
	seq           bigint NOT NULL,
	digest        bytea
);
CREATE INDEX applied_changes_seq ON applied_changes (seq);

-- Named numbers: 'collected' is the collection horizon, the feed position
-- cursors before which are expired.
CREATE TABLE counters (
	name  text PRIMARY KEY,
	value bigint NOT NULL
);

-- Rows whose personal data was erased, with the erasure's clock and the
-- feed positions that announced it.
CREATE TABLE erasures (
	kind      integer NOT NULL,
	entity_id text COLLATE "C" NOT NULL,
	at        bigint NOT NULL,
	hlc       bigint NOT NULL DEFAULT 0,
	first_seq bigint NOT NULL DEFAULT 0,
	last_seq  bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (kind, entity_id)
);

-- Tombstones the collector deleted.
CREATE TABLE collected (
	kind      integer NOT NULL,
	entity_id text COLLATE "C" NOT NULL,
	at        bigint NOT NULL,
	PRIMARY KEY (kind, entity_id)
);
CREATE INDEX collected_at ON collected (at);

-- Who read which report or export, when, of which node.
CREATE TABLE audit_log (
	id          text COLLATE "C" PRIMARY KEY,
	at          bigint NOT NULL,
	admin_id    text COLLATE "C" NOT NULL,
	action      text NOT NULL,
	node_id     text COLLATE "C" NOT NULL DEFAULT '',
	campaign_id text COLLATE "C" NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at, id);

-- The replicated tables (statedb's SchemaV1 and SchemaV2).
CREATE TABLE households (
	id                 text COLLATE "C" PRIMARY KEY,
	grid_id            text COLLATE "C" NOT NULL DEFAULT '',
	head_name          text NOT NULL DEFAULT '',
	address            text NOT NULL DEFAULT '',
	phone_mobile       text NOT NULL DEFAULT '',
	phone_landline     text NOT NULL DEFAULT '',
	responsible_worker text NOT NULL DEFAULT '',
	responsible_leader text NOT NULL DEFAULT '',
	responsible_unit   text NOT NULL DEFAULT '',
	member_count       bigint NOT NULL DEFAULT 0,
	housing_type       text NOT NULL DEFAULT '',
	notes              text NOT NULL DEFAULT '',
	deleted            boolean NOT NULL DEFAULT false,
	clocks             bytea NOT NULL
);
CREATE INDEX households_grid ON households (grid_id, id);

CREATE TABLE persons (
	id           text COLLATE "C" PRIMARY KEY,
	household_id text COLLATE "C" NOT NULL,
	name         text NOT NULL DEFAULT '',
	id_number    text NOT NULL DEFAULT '',
	gender       text NOT NULL DEFAULT '',
	birth_date   text NOT NULL DEFAULT '',
	phone        text NOT NULL DEFAULT '',
	relation     text NOT NULL DEFAULT '',
	notes        text NOT NULL DEFAULT '',
	deleted      boolean NOT NULL DEFAULT false,
	clocks       bytea NOT NULL
);
CREATE INDEX persons_household ON persons (household_id, id);

CREATE TABLE tag_elements (
	add_id       text COLLATE "C" PRIMARY KEY,
	household_id text COLLATE "C" NOT NULL,
	category     text COLLATE "C" NOT NULL,
	removed      boolean NOT NULL DEFAULT false,
	hlc          bigint NOT NULL,
	node         bigint NOT NULL
);
CREATE INDEX tag_elements_household ON tag_elements (household_id, category);

CREATE TABLE visits (
	id          text COLLATE "C" PRIMARY KEY,
	visitor_id  text COLLATE "C" NOT NULL,
	visited_at  bigint NOT NULL,
	form        integer NOT NULL,
	notes       text NOT NULL,
	hlc         bigint NOT NULL,
	node        bigint NOT NULL,
	-- Materials, findings, revisit reasons, campaign and answers, as one
	-- JSON text ('' for none): read whole, never queried.
	details     text NOT NULL DEFAULT '',
	revisit_due bigint NOT NULL DEFAULT 0,
	-- How many of the visit's findings are tracked items.
	tracked     integer NOT NULL DEFAULT 0
);
CREATE INDEX visits_visitor ON visits (visitor_id, visited_at, id);
-- The visits a due list reads one by one (the rest it sums up).
CREATE INDEX visits_special ON visits (id) WHERE revisit_due <> 0 OR tracked <> 0 OR details <> '';

-- A group visit covers several households; ord keeps their order.
CREATE TABLE visit_households (
	household_id text COLLATE "C" NOT NULL,
	visit_id     text COLLATE "C" NOT NULL,
	ord          integer NOT NULL,
	PRIMARY KEY (household_id, visit_id)
);
CREATE INDEX visit_households_visit ON visit_households (visit_id, ord);

CREATE TABLE visit_amendments (
	id         text COLLATE "C" PRIMARY KEY,
	visit_id   text COLLATE "C" NOT NULL,
	author_id  text COLLATE "C" NOT NULL,
	kind       integer NOT NULL,
	reason     text NOT NULL,
	notes      text,
	form       integer NOT NULL DEFAULT 0,
	visited_at bigint NOT NULL DEFAULT 0,
	hlc        bigint NOT NULL,
	node       bigint NOT NULL,
	finding    bigint NOT NULL DEFAULT 0,
	unit       text NOT NULL DEFAULT '',
	deadline   bigint NOT NULL DEFAULT 0
);
CREATE INDEX visit_amendments_visit ON visit_amendments (visit_id, id);

-- Reference data, each field a register; seq is the feed position of the
-- row's last change.
CREATE TABLE categories (
	code         text COLLATE "C" PRIMARY KEY,
	name_zh      text NOT NULL DEFAULT '',
	name_en      text NOT NULL DEFAULT '',
	parent_code  text NOT NULL DEFAULT '',
	revisit_days bigint NOT NULL DEFAULT 0,
	key_group    boolean NOT NULL DEFAULT false,
	deleted      boolean NOT NULL DEFAULT false,
	clocks       bytea NOT NULL,
	seq          bigint NOT NULL DEFAULT 0
);
CREATE INDEX categories_seq ON categories (seq);

CREATE TABLE campaigns (
	id            text COLLATE "C" PRIMARY KEY,
	node_id       text COLLATE "C" NOT NULL DEFAULT '',
	name          text NOT NULL DEFAULT '',
	starts_at     bigint NOT NULL DEFAULT 0,
	ends_at       bigint NOT NULL DEFAULT 0,
	quotas        text NOT NULL DEFAULT '',
	questionnaire text NOT NULL DEFAULT '',
	deleted       boolean NOT NULL DEFAULT false,
	clocks        bytea NOT NULL,
	seq           bigint NOT NULL DEFAULT 0
);
CREATE INDEX campaigns_seq ON campaigns (seq);

-- The feed's ids in byte order too: its entries join the rows above by id,
-- and an index serves a comparison only in its own collation. A pull of a
-- few households after a long absence seeks each one's entries past its
-- cursor: by household and position.
ALTER TABLE feed
	ALTER COLUMN entity_id TYPE text COLLATE "C",
	ALTER COLUMN household_id TYPE text COLLATE "C",
	ALTER COLUMN origin TYPE text COLLATE "C";
DROP INDEX feed_household;
CREATE INDEX feed_household ON feed (household_id, seq);
