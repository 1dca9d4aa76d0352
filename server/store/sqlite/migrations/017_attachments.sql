-- Visits' files (photos, scans), named by their SHA-256: the content in
-- the pieces it arrived in, and which visits each belongs to. Not part of
-- the change feed: phones upload their own and fetch others' when asked.
CREATE TABLE attachments (
	sha256     TEXT PRIMARY KEY,
	size       INTEGER NOT NULL,
	received   INTEGER NOT NULL,
	complete   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE attachment_chunks (
	sha256 TEXT NOT NULL REFERENCES attachments (sha256) ON DELETE CASCADE,
	pos    INTEGER NOT NULL,
	data   BLOB NOT NULL,
	PRIMARY KEY (sha256, pos)
) WITHOUT ROWID;

CREATE TABLE visit_attachments (
	visit_id   TEXT NOT NULL,
	sha256     TEXT NOT NULL,
	name       TEXT NOT NULL,
	media_type TEXT NOT NULL,
	size       INTEGER NOT NULL,
	linked_at  INTEGER NOT NULL,
	PRIMARY KEY (visit_id, sha256)
) WITHOUT ROWID;

CREATE INDEX visit_attachments_sha ON visit_attachments (sha256);
