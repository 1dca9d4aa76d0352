-- When a credential last called the server (Unix seconds; NULL if never),
-- written at most once per service.SeenResolution per credential: what
-- "devices seen in the last day" counts and what an office reads to know
-- which phones have gone quiet.
ALTER TABLE credentials ADD COLUMN last_seen_at bigint;
CREATE INDEX credentials_last_seen ON credentials (last_seen_at) WHERE worker_id IS NOT NULL;
