-- Set when the server refused this device as revoked (a lost phone): the
-- replica's data is wiped and it syncs no more.
ALTER TABLE sync_state ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_state ADD COLUMN revoked_reason TEXT NOT NULL DEFAULT '';
