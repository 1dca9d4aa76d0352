-- The visits recorded with the phone's position, for the report's count
-- of them: the few (or, once phones send fixes, the window's) rather than
-- every visit.
CREATE INDEX visits_placed ON visits (visited_at) WHERE position <> '';
