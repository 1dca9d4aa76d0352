-- The installation's item policy: how many days an overdue tracked item
-- stays with one level of the org tree before it goes up (0: the default,
-- syncengine.EscalationPeriod). One row.
CREATE TABLE item_policy (
	id               integer PRIMARY KEY CHECK (id = 1),
	escalation_days  bigint NOT NULL
);
