-- The worker's own visits to households that have left this phone (moved
-- to another grid): ids and dates only, so that the worker's quota still
-- counts them, as the server's report does.
CREATE TABLE visited_elsewhere (
	visit_id     TEXT NOT NULL,
	household_id TEXT NOT NULL,
	visited_at   INTEGER NOT NULL,
	PRIMARY KEY (visit_id, household_id)
) WITHOUT ROWID;
