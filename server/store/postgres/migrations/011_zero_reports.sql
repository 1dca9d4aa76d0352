-- Zero reports (零报告): a grid's or community's word that it found nothing
-- to report in a period ([from_at, until_at), Unix milliseconds).
CREATE TABLE zero_reports (
	id           text PRIMARY KEY,
	node_id      text NOT NULL,
	from_at      bigint NOT NULL,
	until_at     bigint NOT NULL,
	note         text NOT NULL,
	admin_id     text NOT NULL,
	admin_name   text NOT NULL,
	reported_at  bigint NOT NULL
);
CREATE INDEX zero_reports_node ON zero_reports (node_id, from_at);
