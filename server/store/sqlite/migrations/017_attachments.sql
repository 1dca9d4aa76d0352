-- Visits' files (photos, scans), named by their SHA-256 and kept per
-- worker who uploaded them (owner): the content in the pieces it arrived
-- in, and which visits each belongs to. Not part of the change feed:
-- phones upload their own and fetch others' when asked.
CREATE TABLE attachments (
	sha256   TEXT NOT NULL,
	owner    TEXT NOT NULL,
	size     INTEGER NOT NULL,
	received INTEGER NOT NULL,
	complete INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (sha256, owner)
) WITHOUT ROWID;

CREATE TABLE attachment_chunks (
	sha256 TEXT NOT NULL,
	owner  TEXT NOT NULL,
	pos    INTEGER NOT NULL,
	data   BLOB NOT NULL,
	PRIMARY KEY (sha256, owner, pos),
	FOREIGN KEY (sha256, owner) REFERENCES attachments (sha256, owner) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE visit_attachments (
	visit_id   TEXT NOT NULL,
	sha256     TEXT NOT NULL,
	owner      TEXT NOT NULL,
	name       TEXT NOT NULL,
	media_type TEXT NOT NULL,
	size       INTEGER NOT NULL,
	linked_at  INTEGER NOT NULL,
	PRIMARY KEY (visit_id, sha256)
) WITHOUT ROWID;

CREATE INDEX visit_attachments_sha ON visit_attachments (sha256, owner);
