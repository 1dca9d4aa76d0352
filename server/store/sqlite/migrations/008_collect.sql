-- The collector (Store.Collect) deletes change ids applied before the
-- horizon, by the position they were applied at.
CREATE INDEX applied_changes_seq ON applied_changes(seq);
