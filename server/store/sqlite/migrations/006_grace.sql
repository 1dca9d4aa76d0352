-- When each commit happened on the server's clock (Unix ms): scope grace
-- and the collection horizon are measured by it. Commits from before this
-- version count from the upgrade.
ALTER TABLE commits ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
UPDATE commits SET at = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
CREATE INDEX commits_at ON commits(at);
