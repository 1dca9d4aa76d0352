-- Rows whose personal data was erased on request, with the erasure's clock
-- (a household's: later writes made before it are blanked on arrival) and
-- the feed positions that announced it: a pull that sends one of those
-- entries tells the device, which scrubs its file and replaces its copies
-- of the visits and amendments (immutable rows otherwise).
CREATE TABLE erasures (
	kind      INTEGER NOT NULL,
	entity_id TEXT NOT NULL,
	at        INTEGER NOT NULL,
	hlc       INTEGER NOT NULL DEFAULT 0,
	first_seq INTEGER NOT NULL DEFAULT 0,
	last_seq  INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (kind, entity_id)
) WITHOUT ROWID;
