-- The lost-phone policy as of the last pull, and the times it counts by:
-- milliseconds on the server's clock (the phone's, corrected by the skew
-- seen at the last pull). seen_at is the highest time seen: a clock set
-- back below it does not extend the policy.
ALTER TABLE sync_state ADD COLUMN lock_after_days INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_state ADD COLUMN wipe_after_days INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_state ADD COLUMN synced_server_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_state ADD COLUMN seen_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_state ADD COLUMN clock_skew_ms INTEGER NOT NULL DEFAULT 0;
