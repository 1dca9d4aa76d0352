-- What a report reads of the visits its workers made outside its grids
-- (VisitsBy), without reading every visit of the window: the households
-- each visitor's plain visits reached in a campaign's window, from their
-- sums, and the few special visits by visitor and time.
CREATE INDEX visit_sums_visitor ON visit_sums (visitor_id, win_from, win_to);
CREATE INDEX visits_special_visitor ON visits (visitor_id, visited_at)
	WHERE revisit_due != 0 OR tracked != 0 OR details != '';
