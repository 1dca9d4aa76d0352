-- Version 3: the replicated tables' field rules (visit details, tracked items,
-- categories and campaigns), and the audit log of reports and exports.
-- statedb: SchemaV2
CREATE INDEX categories_seq ON categories(seq);
CREATE INDEX campaigns_seq ON campaigns(seq);

-- Who read which report or export, when, of which node: the data is
-- sensitive, so every such read is attributable to a person.
CREATE TABLE audit_log (
	id          TEXT PRIMARY KEY,
	at          INTEGER NOT NULL,
	admin_id    TEXT NOT NULL,
	action      TEXT NOT NULL,
	node_id     TEXT NOT NULL DEFAULT '',
	campaign_id TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log(at);
