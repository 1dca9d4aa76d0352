-- Version 4 of the replica schema: the replicated tables' field rules (visit
-- details, tracked items, categories and campaigns).
-- statedb: SchemaV2
-- The worker's role, for their campaign quota.
ALTER TABLE sync_state ADD COLUMN worker_role INTEGER NOT NULL DEFAULT 0;
