-- The change feed: the newest sequence number of each replicated row, per
-- household it belongs to (a group visit has one entry per household), as
-- in the SQLite backend. A row written again moves to a new number, so the
-- feed has holes where entries moved on; numbers are never reused once
-- committed.
CREATE TABLE feed (
	seq          bigint PRIMARY KEY,
	kind         integer NOT NULL,
	entity_id    text NOT NULL,
	household_id text NOT NULL,
	-- The device whose push created an immutable row (a visit, an
	-- amendment): its own pulls leave the row out. '' otherwise.
	origin       text NOT NULL DEFAULT '',
	UNIQUE (kind, entity_id, household_id)
);
CREATE INDEX feed_household ON feed (household_id);

-- The feed's counter: the last sequence number handed out. One row, taken
-- (locked) by a write transaction as its last step and held until it
-- commits, so that transactions commit in the order of their numbers (see
-- doc.go).
CREATE TABLE feed_head (
	one boolean PRIMARY KEY DEFAULT true CHECK (one),
	seq bigint NOT NULL
);
INSERT INTO feed_head (one, seq) VALUES (true, 0);

-- Every write transaction's range of sequence numbers, with a random tag
-- (a cursor carries the tag of the transaction it points into, so that a
-- database restored from a backup knows a cursor it did not issue) and its
-- time on the server's clock (Unix ms).
CREATE TABLE commits (
	last_seq  bigint PRIMARY KEY,
	first_seq bigint NOT NULL,
	tag       bigint NOT NULL,
	at        bigint NOT NULL
);
CREATE INDEX commits_at ON commits (at);
