-- The installation's lost-phone policy: days without a successful sync
-- after which a phone locks, and wipes itself (0: never). One row.
CREATE TABLE device_policy (
	id              INTEGER PRIMARY KEY CHECK (id = 1),
	lock_after_days INTEGER NOT NULL,
	wipe_after_days INTEGER NOT NULL
);
