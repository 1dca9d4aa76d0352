-- Whether any erasure came after a pull's cursor, which most pulls find
-- none did (see ErasuresOf): by the erasures' last position.
CREATE INDEX erasures_last_seq ON erasures (last_seq);
