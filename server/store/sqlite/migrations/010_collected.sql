-- Tombstones the collector deleted (a removed tag, a deleted person): a
-- late write naming one, from a phone back after the horizon, does nothing
-- rather than bring it back. Kept for four horizons.
CREATE TABLE collected (
	kind      INTEGER NOT NULL,
	entity_id TEXT NOT NULL,
	at        INTEGER NOT NULL,
	PRIMARY KEY (kind, entity_id)
) WITHOUT ROWID;
CREATE INDEX collected_at ON collected(at);
