package sdk

import "database/sql"

// WriterDB is the replica's write connection, for tests that make its
// storage fail (a full disk, a read-only file) from the outside.
func WriterDB(r *Replica) *sql.DB { return r.db.W }
