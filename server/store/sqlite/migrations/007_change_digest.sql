-- A fingerprint of each applied change as received: the same change id
-- again with another fingerprint is a different change, refused, not a
-- resend. NULL for changes applied before this version.
ALTER TABLE applied_changes ADD COLUMN digest BLOB;
