-- A leader is an admin who may only read (reports, ledgers, lists).
ALTER TABLE admins ADD COLUMN read_only INTEGER NOT NULL DEFAULT 0;

-- Why a device was revoked, as its user will read it.
ALTER TABLE credentials ADD COLUMN revoked_reason TEXT NOT NULL DEFAULT '';
