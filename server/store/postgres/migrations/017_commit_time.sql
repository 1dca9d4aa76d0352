-- The time of the last commit, kept in the locked counter's row: a commit
-- takes it when its own clock is behind it by a little (store.ClockStep),
-- so that commit times do not go back between servers whose clocks differ
-- or a clock stepped back (see PositionBefore).
ALTER TABLE feed_head ADD COLUMN at bigint NOT NULL DEFAULT 0;
UPDATE feed_head SET at = COALESCE((SELECT at FROM commits ORDER BY last_seq DESC LIMIT 1), 0);
