-- Visits' files (photos, scans), named by their SHA-256 and kept per
-- worker who uploaded them (owner): the content in the pieces it arrived
-- in, and which visits each belongs to. Not part of the change feed:
-- phones upload their own and fetch others' when asked.
CREATE TABLE attachments (
	sha256   text NOT NULL,
	owner    text NOT NULL,
	size     bigint NOT NULL,
	received bigint NOT NULL,
	complete boolean NOT NULL DEFAULT false,
	PRIMARY KEY (sha256, owner)
);

CREATE TABLE attachment_chunks (
	sha256 text NOT NULL,
	owner  text NOT NULL,
	pos    bigint NOT NULL,
	data   bytea NOT NULL,
	PRIMARY KEY (sha256, owner, pos),
	FOREIGN KEY (sha256, owner) REFERENCES attachments (sha256, owner) ON DELETE CASCADE
);

CREATE TABLE visit_attachments (
	visit_id   text NOT NULL,
	sha256     text NOT NULL,
	owner      text NOT NULL,
	name       text NOT NULL,
	media_type text NOT NULL,
	size       bigint NOT NULL,
	linked_at  bigint NOT NULL,
	PRIMARY KEY (visit_id, sha256)
);

CREATE INDEX visit_attachments_sha ON visit_attachments (sha256, owner);
