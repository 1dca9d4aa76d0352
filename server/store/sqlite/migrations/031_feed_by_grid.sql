-- The feed's entries by the grid their household was in when each was
-- written, in position order, in place of by household. A push's entries
-- then go at the end of its grid's run of the index, a page or two, where
-- by household each went to a page of its own: a third of the pages a
-- push of 220 changes wrote. A household's older entries keep the grid it
-- left; feedAfter reads by grid only when no household moved into the
-- scope after the cursor.
ALTER TABLE feed ADD COLUMN grid_id TEXT NOT NULL DEFAULT '';
UPDATE feed SET grid_id = COALESCE((SELECT h.grid_id FROM households h WHERE h.id = feed.household_id), '');
CREATE INDEX feed_grid ON feed (grid_id);
DROP INDEX feed_household;
