-- What a report reads of the visits its workers made outside its grids
-- (VisitsBy), without reading every visit of the window: the households
-- each visitor's plain visits reached in a campaign's window, from their
-- sums, and the few special visits by visitor and time.
CREATE INDEX visit_sums_visitor ON visit_sums (visitor_id, win_from, win_to);
CREATE INDEX visits_special_visitor ON visits (visitor_id, visited_at)
	WHERE revisit_due != 0 OR tracked != 0 OR details != '';
-- The live households of each grid, whole in the index: a report reads a
-- street's households, their sums and categories without a household row
-- each to see that it is not deleted.
CREATE INDEX households_grid_live ON households (grid_id, id) WHERE deleted = 0;
