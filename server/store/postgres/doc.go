// Package postgres is the server's PostgreSQL backend, for users who
// outgrow one machine: several stateless server processes on one
// database. So far it holds the change feed's sequencer and the schema's
// migrations; the rest of the backend comes later.
//
// # The feed's order
//
// Every write gets the next feed position, and a device pulls "the
// entries after cursor N in my scope". The property that matters (DESIGN
// §7): a cursor never skips a change that commits later with a smaller
// number. SQLite's single writer gives it for free. PostgreSQL does not:
// if T1 takes 10 and T2 takes 11 (nextval, a serial column) and T2
// commits first, a reader that sees 11 moves its cursor past 10, which T1
// then commits, and that reader never sees it. The feed's test runs
// concurrent writers and readers and checks each reader saw every
// committed entry once, in order, with no gap; run over that naive design
// (TestFeedCheckCatchesEarlyNumbering) it reports hundreds of missed
// entries in its first round.
//
// The options weighed:
//
//  1. One counter row, locked until commit. Chosen; see below.
//  2. Per-scope counters. No: a scope is a set of grids that admins
//     change, scopes overlap, and a pull reads across grids, so per-scope
//     counters give no one order to hold a cursor in.
//  3. Number late, by a sequencer: writers insert unnumbered entries with
//     their transaction id, and a sequencer numbers only those of
//     transactions older than pg_snapshot_xmin(pg_current_snapshot()),
//     which have all ended. Writers never wait for one another, so commits
//     keep PostgreSQL's group commit. But a sequencer must run somewhere
//     (one of the servers, elected by an advisory lock, polling), every
//     entry is written twice, a pull waits for the next sequencing, and
//     any long transaction on the cluster (a report, a backup's snapshot,
//     another database's) holds back the xmin and so every device's feed.
//  4. Logical decoding: commit order from the WAL. It needs wal_level =
//     logical and the replication privilege, which a district's IT
//     department may not grant, and a consumer that keeps a slot (a slot
//     left behind fills the disk).
//
// The counter: feed_head holds the last position handed out. A write
// transaction (DB.Write) first does all its work (reads, merges, row
// writes, at READ COMMITTED, rows locked where read-modify-written) and
// only buffers its feed entries (Tx.Touch). Its last step takes n
// positions with UPDATE feed_head SET seq = seq + n RETURNING seq, which
// locks the row, inserts the entries at those positions and records the
// commit's range, all one statement, sent with the COMMIT in one pipeline.
// The next writer's UPDATE waits for that lock, so:
//
//   - Commit order is position order. A transaction makes its commit
//     visible before it releases its locks (PostgreSQL ends a transaction
//     in the proc array, then releases its locks), so a reader's snapshot
//     that shows positions of one commit shows every earlier commit too:
//     ReadFeed, one statement and so one snapshot, can never return 11
//     while 10 is still to come. The same holds on a hot standby, which
//     replays commit records in WAL order.
//   - Positions are contiguous: a transaction that rolls back, even at
//     COMMIT after it took its positions (a deferred constraint), rolls
//     the counter back too, and the next one takes the same positions.
//   - The lock is held only for the seal statement and the commit. Work
//     done before it does not serialise writers, and since the seal and
//     the COMMIT travel together, a client that stalls or dies cannot hold
//     the counter (but for Tx.Sealed functions, which run between them).
//   - READ COMMITTED is required: at REPEATABLE READ the UPDATE fails
//     (40001) whenever another writer committed since the transaction's
//     snapshot, which under load is nearly always.
//
// The cost is that commits serialise, WAL flush included: group commit no
// longer batches them. Measured with BenchmarkWrite (16 writers, 1 to 5
// entries a commit, two cores, PostgreSQL 15), in commits/s over several
// runs:
//
//	                                     counter        nextval (unsafe, no lock)
//	test server (fsync off)              1,550-1,950    3,300-3,600
//	durable (fsync, synchronous_commit)    620-1,200    2,100-2,800
//
// (the durable figures move with the disk's flush time, 0.2-0.9 ms here).
// Sending the COMMIT in the seal's pipeline rather than after its answer
// raised the first figure from about 1,100; 1 ms of work inside each
// transaction does not lower it (1,580-1,750): the lock is not held during
// the work. A push is one commit however many changes it carries, so 600
// pushes a second on a small machine is some twenty times what two
// thousand workers pushing every minute need. If it ever binds, option 3
// replaces the counter behind the same ReadFeed.
//
// # Schema
//
// The migrations are embedded (migrations/NNN_name.sql) and applied by
// Migrate, each in its own transaction under an advisory lock, so servers
// starting at once on one database apply each once.
package postgres
