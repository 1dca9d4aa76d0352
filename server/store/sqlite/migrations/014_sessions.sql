-- Signing in to the console: an admin's password (an argon2id hash in the
-- PHC string format, '' for none) and the sessions it opens, which are
-- credentials that expire (Unix seconds; NULL for tokens and devices).
ALTER TABLE admins ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';
CREATE INDEX admins_name ON admins(name);
ALTER TABLE credentials ADD COLUMN expires_at INTEGER;
CREATE INDEX credentials_expires ON credentials(expires_at) WHERE expires_at IS NOT NULL;
