-- Rows whose personal data was erased on request. A pull that sends one
-- of them tells the device so: a household or person to scrub from its
-- file, a visit or amendment to replace (immutable rows otherwise).
CREATE TABLE erasures (
	kind      INTEGER NOT NULL,
	entity_id TEXT NOT NULL,
	at        INTEGER NOT NULL,
	PRIMARY KEY (kind, entity_id)
) WITHOUT ROWID;
