-- A pull reads the erasures its batch's positions announced at once (see
-- ErasuresAnnounced): by their last position, the recent ones only.
CREATE INDEX erasures_last_seq ON erasures (last_seq);
