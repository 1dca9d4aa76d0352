-- Zero reports (零报告): a grid's or community's word that it found nothing
-- to report in a period ([from_at, until_at), Unix milliseconds).
CREATE TABLE zero_reports (
	id           TEXT PRIMARY KEY,
	node_id      TEXT NOT NULL,
	from_at      INTEGER NOT NULL,
	until_at     INTEGER NOT NULL,
	note         TEXT NOT NULL,
	admin_id     TEXT NOT NULL,
	admin_name   TEXT NOT NULL,
	reported_at  INTEGER NOT NULL
);
CREATE INDEX zero_reports_node ON zero_reports (node_id, from_at);
