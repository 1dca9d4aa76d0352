-- Files that go with visits: the phone's own (own = 1), to be uploaded
-- after their visits; and others' it fetched when asked. The bytes are in
-- the folder beside the replica, named by their SHA-256.
CREATE TABLE attachments (
	visit_id   TEXT NOT NULL,
	sha256     TEXT NOT NULL,
	size       INTEGER NOT NULL,
	name       TEXT NOT NULL,
	media_type TEXT NOT NULL,
	own        INTEGER NOT NULL,
	-- The server holds it whole.
	uploaded   INTEGER NOT NULL DEFAULT 0,
	-- Why the server refused it for good ('' if it did not).
	refused    TEXT NOT NULL DEFAULT '',
	added_at   INTEGER NOT NULL,
	PRIMARY KEY (visit_id, sha256)
) WITHOUT ROWID;
