-- A leader is an admin who may only read (reports, ledgers, lists).
ALTER TABLE admins ADD COLUMN read_only INTEGER NOT NULL DEFAULT 0;

-- Why a device was revoked, as its user will read it.
ALTER TABLE credentials ADD COLUMN revoked_reason TEXT NOT NULL DEFAULT '';

-- The subtree of the admin who last set a worker's grids: who manages the
-- worker while they have no grids (and so belong to no street).
ALTER TABLE workers ADD COLUMN home_node TEXT NOT NULL DEFAULT '';
