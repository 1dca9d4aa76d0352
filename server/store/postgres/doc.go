// Package postgres is the server's PostgreSQL backend, for users who
// outgrow one machine: several stateless server processes on one
// database. DB implements store.Backend (the repositories of store.Tx
// over one transaction, SQL only: the rules live in server/service) and
// store.Scrubber; it offers no store.Snapshotter, so new devices bootstrap
// by pages. It holds nothing in process memory that another process could
// change: every read is of the database, in the transaction.
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
// # Everything else that takes a position
//
// Grid changes, household moves, and the stamps of categories and
// campaigns are numbered from the same counter, since the pull rules
// compare their positions with the feed's; applied change ids record the
// position they were applied at, and erasures the range that announced
// them. So a write transaction only notes them (Tx's slots, in call order),
// and the seal writes them all at their positions, in the one statement
// that takes the numbers: they order exactly as the calls did, as the
// SQLite backend's do. An entry touched twice, or a reference row written
// twice, keeps its later slot, and the earlier one takes no number
// (positions stay contiguous); a mark (RecordApplied, RecordErasures) gets
// the last position of the slots taken before it, the previous commit's
// last if none (TestPositionsFollowCalls).
//
// # Concurrent writers
//
// Write transactions run at READ COMMITTED, side by side, so a
// read-modify-write must keep another's write from being lost:
//
//   - Rows a write transaction reads by id (households, persons, tags,
//     categories, campaigns, a household's whole rows, an enrolment code)
//     are read FOR UPDATE: a second writer waits, then reads the first's
//     result. Reads never wait for these locks, which live in the rows,
//     not in the lock table: a push of a thousand changes takes a
//     thousand.
//   - A row read as absent cannot be locked. Its write is an insert that
//     does nothing if the row appeared meanwhile (two devices registering
//     one household), and the transaction then runs again from the start
//     and merges onto it (errConflict): optimistic, since such races are
//     rare and locking every absent id would fill the lock table.
//   - A device's pushes apply one after the other: the first reads the
//     device's row FOR NO KEY UPDATE (KnownCursor), so a resend of a push
//     still running waits and finds its change ids applied. Two devices
//     pushing one change id at once meet at the seal's insert of it, and
//     the second runs again and is refused as a reuse.
//   - Visits and amendments are immutable: INSERT ... ON CONFLICT DO
//     NOTHING waits for a concurrent insert of the id, then compares.
//   - A grid given to a worker twice at once is given once, with one
//     event (ON CONFLICT DO NOTHING), so that the events replay to the
//     grids held.
//
// Deadlocks are resolved by PostgreSQL and the transaction runs again.
// Read transactions (View) run at REPEATABLE READ, READ ONLY: one snapshot
// for a pull's head, feed, scope and rows.
//
// # Schema
//
// The migrations are embedded (migrations/NNN_name.sql) and applied by
// Migrate, each in its own transaction under an advisory lock, so servers
// starting at once on one database apply each once. 002_server.sql mirrors
// the SQLite backend's tables and statedb's replicated ones: ids and
// ordered text in the "C" collation (byte order, as SQLite's and Go's, for
// keyset pages, whatever the database's locale), times as integers in the
// units SQLite keeps (so that what is read back rounds alike), clocks as
// syncengine.EncodeClocks bytes, visit details as statedb's JSON.
//
// # Erasure
//
// An erasure rewrites rows; PostgreSQL keeps the old versions until
// VACUUM removes them, once no snapshot needs them. Scrub (store.Scrubber)
// waits a while for older snapshots, then vacuums the tables an erasure
// writes. The write-ahead log, its archives, standbys and base backups
// keep old values beyond it: a deployment covers them by its retention.
package postgres
