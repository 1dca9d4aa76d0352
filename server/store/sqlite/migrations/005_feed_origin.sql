-- The device whose push created an immutable row (a visit, an amendment):
-- its own pulls leave the row out, since the device has it already. ''
-- for rows from anywhere else, and for every mutable row.
ALTER TABLE feed ADD COLUMN origin TEXT NOT NULL DEFAULT '';
