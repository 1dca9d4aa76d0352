-- Failed attempts of a throttled action (an enrolment), by key (the
-- caller's address), shared by every server process on this database.
-- Rows older than the throttle's window are deleted as new ones come.
CREATE TABLE failures (
	key text COLLATE "C" NOT NULL,
	at  bigint NOT NULL
);
CREATE INDEX failures_key_at ON failures (key, at);
CREATE INDEX failures_at ON failures (at);
