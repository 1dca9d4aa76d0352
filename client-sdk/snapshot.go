package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"connectrpc.com/connect"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
)

// A snapshot bootstrap downloads the scope as a SQLite file beside the
// replica. A new replica adopts the file as its database (adoptSnapshot);
// otherwise, or if the file is of another release's schema, each
// replicated table is copied whole with INSERT … SELECT *: into empty
// tables with the same schema and indexes, SQLite copies records and index
// entries as they are (its transfer optimisation) instead of inserting rows
// one by one. Nothing is applied until the whole file is here.

// replicatedTablesEmpty reports whether the replica holds no rows yet: only
// then may it take a snapshot's tables whole.
func (r *Replica) replicatedTablesEmpty(ctx context.Context) (bool, error) {
	for _, table := range statedb.ReplicatedTables() {
		var found int
		err := r.db.R.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+table+`)`).Scan(&found)
		if err != nil {
			return false, err
		}
		if found != 0 {
			return false, nil
		}
	}
	return true, nil
}

// snapshotPath is where a snapshot is downloaded: one fixed name beside the
// replica, so that one left by a killed app is found and removed.
func (r *Replica) snapshotPath() string { return r.db.Path + ".snapshot" }

func (r *Replica) removeSnapshotFile() {
	for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
		os.Remove(r.snapshotPath() + suffix)
	}
}

// errSnapshotSchema: the server's snapshot has other columns than this
// replica (one of the two runs a newer shared schema); pages of rows, which
// go through the wire format, still work.
var errSnapshotSchema = errors.New("snapshot schema differs from the replica's")

// partialSnapshot is how much of which snapshot a cut download holds.
type partialSnapshot struct {
	id  string
	got uint64
}

// receiveSnapshot takes a snapshot answer whose first message the stream
// holds: it writes the rest to a file and copies its tables in. A download
// cut short keeps what it got for the next bootstrap to go on from, if the
// server named the file.
func (r *Replica) receiveSnapshot(ctx context.Context, stream *connect.ServerStreamForClient[pb.BootstrapResponse], key string, rep *SyncReport) error {
	first := stream.Msg()
	r.observe(first.GetServerHlc())
	size, offset := first.GetSnapshotBytes(), first.GetSnapshotOffset()
	partial := r.partial
	r.partial = partialSnapshot{}
	if offset > 0 && (first.GetSnapshotId() != partial.id || offset != partial.got || offset > size) {
		r.removeSnapshotFile()
		return fmt.Errorf("server resumed snapshot %q at %d bytes; this replica holds %d of %q", first.GetSnapshotId(), offset, partial.got, partial.id)
	}
	path := ""
	if size > 0 {
		path = r.snapshotPath()
		flags := os.O_CREATE | os.O_WRONLY
		if offset == 0 {
			flags |= os.O_TRUNC
		}
		f, err := os.OpenFile(path, flags, 0o600)
		if err != nil {
			return err
		}
		keep := false
		defer func() {
			if !keep {
				r.removeSnapshotFile()
			}
		}()
		if err := f.Truncate(int64(offset)); err != nil {
			f.Close()
			return err
		}
		if _, err := f.Seek(int64(offset), io.SeekStart); err != nil {
			f.Close()
			return err
		}
		got := offset
		for got < size && stream.Receive() {
			chunk := stream.Msg().GetSnapshotChunk()
			if got+uint64(len(chunk)) > size {
				f.Close()
				return fmt.Errorf("server sent more than the %d bytes of its snapshot", size)
			}
			if _, err := f.Write(chunk); err != nil {
				f.Close()
				return err
			}
			got += uint64(len(chunk))
			r.report("bootstrap", int(got*uint64(first.GetTotalHouseholds())/size), int(first.GetTotalHouseholds()))
		}
		if err := f.Close(); err != nil {
			return err
		}
		if got < size {
			if id := first.GetSnapshotId(); id != "" {
				keep, r.partial = true, partialSnapshot{id: id, got: got}
			}
			if err := stream.Err(); err != nil {
				return fromConnect(err)
			}
			return fmt.Errorf("snapshot ended after %d of %d bytes", got, size)
		}
	}
	adopted := false
	if path != "" {
		err := r.adoptSnapshot(ctx, path, first, key)
		switch {
		case err == nil:
			adopted = true
		case errors.Is(err, errSnapshotSchema) || errors.Is(err, errReplicaWritten):
			r.log.Info().Err(err).Msg("bootstrap: copying the snapshot's rows in")
		default:
			return err
		}
	}
	if !adopted {
		if err := r.applySnapshot(ctx, path, first, key); err != nil {
			return err
		}
	}
	rep.Adopted = adopted
	rep.Bootstrapped += int(first.GetTotalHouseholds())
	rep.Snapshot = true
	r.report("bootstrap", int(first.GetTotalHouseholds()), int(first.GetTotalHouseholds()))
	return nil
}

// applySnapshot copies the tables of the file at path (none if "") and the
// first message's scope, reference data and cursor into the replica, in one
// transaction.
func (r *Replica) applySnapshot(ctx context.Context, path string, first *pb.BootstrapResponse, key string) error {
	apply := func(tx *sqlitex.Tx) error {
		if path != "" {
			err := statedb.InBulk(ctx, tx, func() error {
				for _, table := range statedb.ReplicatedTables() {
					if err := sameColumns(ctx, tx, table); err != nil {
						return err
					}
					if _, err := tx.ExecContext(ctx, `INSERT INTO main.`+table+` SELECT * FROM snap.`+table); err != nil {
						return fmt.Errorf("copy %s: %w", table, err)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return r.finishSnapshot(ctx, tx, path != "", first, key)
	}
	if path == "" {
		return r.db.Write(ctx, apply)
	}
	return r.db.WriteAttached(ctx, path, "snap", apply)
}

// finishSnapshot writes, in the transaction that takes a snapshot's rows,
// what the first message of the answer carries besides them, and the
// clocks the rows hold if rows is set.
func (r *Replica) finishSnapshot(ctx context.Context, tx *sqlitex.Tx, rows bool, first *pb.BootstrapResponse, key string) error {
	if rows {
		newest, err := statedb.NewestHLC(ctx, tx)
		if err != nil {
			return err
		}
		r.clock.Observe(newest)
		if _, err := tx.ExecContext(ctx, `UPDATE sync_state SET remote_hlc = max(remote_hlc, ?) WHERE id = 1`, int64(newest)); err != nil {
			return err
		}
	}
	if err := applyReference(ctx, tx, first.GetCategories(), first.GetCampaigns()); err != nil {
		return err
	}
	if err := saveScope(ctx, tx, first.GetScope()); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sync_state SET cursor = max(cursor, ?) WHERE id = 1`, first.GetCursor()); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM pending_bootstraps WHERE key = ?`, key); err != nil {
		return err
	}
	return r.saveClock(ctx, tx)
}

// errReplicaWritten: the replica took rows of its own (a household
// registered offline) while the snapshot came, so the snapshot's rows go in
// beside them rather than replacing the file.
var errReplicaWritten = errors.New("the replica took rows while its snapshot came")

// adoptSnapshot makes the downloaded file at path the replica's database,
// which spares copying its rows: the file is checked (SQLite's quick check),
// given the replica's own tables (statedb.OverSnapshot) and, once its schema
// is the replica's to the letter, the replica's own rows (identity, outbox,
// sync state) and what the answer carries besides rows; then its pages are
// copied over the replica's (sqlitex.DB.Adopt), holding the replica's
// writer from the copy of its rows on. A file that cannot become the
// replica's schema fails with errSnapshotSchema, a replica that took rows
// meanwhile with errReplicaWritten; either leaves the replica as it was.
func (r *Replica) adoptSnapshot(ctx context.Context, path string, first *pb.BootstrapResponse, key string) (err error) {
	snap, err := sqlitex.Open(ctx, path, nil)
	if err != nil {
		return fmt.Errorf("open snapshot: %w", err)
	}
	open := true
	defer func() {
		if open {
			err = errors.Join(err, snap.Close())
		}
	}()
	var check string
	if err := snap.W.QueryRowContext(ctx, `PRAGMA quick_check(1)`).Scan(&check); err != nil {
		return fmt.Errorf("check snapshot: %w", err)
	}
	if check != "ok" {
		return fmt.Errorf("snapshot file is damaged: %s", check)
	}
	ms, err := statedb.OverSnapshot(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	if _, err := snap.W.ExecContext(ctx, `DELETE FROM schema_migrations`); err != nil {
		return fmt.Errorf("%w: %w", errSnapshotSchema, err)
	}
	if err := sqlitex.Migrate(ctx, snap.W, ms); err != nil {
		return fmt.Errorf("%w: %w", errSnapshotSchema, err)
	}
	// The whole schema, triggers included, is checked before any row of
	// the replica's own goes into the file, and before the file replaces
	// the replica: a server of another release, or a file made to do
	// more than hold rows, is refused here.
	want, err := sqlitex.Schema(ctx, r.db.R)
	if err != nil {
		return err
	}
	got, err := sqlitex.Schema(ctx, snap.R)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: the file's schema, once a replica's, is not this replica's", errSnapshotSchema)
	}
	return r.db.Adopt(ctx, path, func() error {
		err := snap.WriteAttached(ctx, sqlitex.ReadOnlyURI(r.db.Path), "rep", func(tx *sqlitex.Tx) error {
			for _, table := range statedb.ReplicatedTables() {
				var found int
				if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM rep.`+table+`)`).Scan(&found); err != nil {
					return err
				}
				if found != 0 {
					return errReplicaWritten
				}
			}
			own, err := ownTables(ctx, tx)
			if err != nil {
				return err
			}
			for _, table := range own {
				for _, stmt := range []string{`DELETE FROM main.` + table, `INSERT INTO main.` + table + ` SELECT * FROM rep.` + table} {
					if _, err := tx.ExecContext(ctx, stmt); err != nil {
						return fmt.Errorf("copy the replica's %s: %w", table, err)
					}
				}
			}
			if err := r.finishSnapshot(ctx, tx, true, first, key); err != nil {
				return err
			}
			// The file's sums are of its campaigns' windows; the answer's
			// campaigns, merged in just now, are normally the same.
			return statedb.SyncWindows(ctx, tx)
		})
		open = false
		return errors.Join(err, snap.Close())
	})
}

// ownTables are the tables a replica keeps beside the replicated ones
// (SQLite's sqlite_sequence among them, which holds the outbox's next
// position), except those a snapshot file fills itself: its schema, its
// sums, and the campaigns they are of (the answer carries every category
// and campaign of the scope, merged in after).
func ownTables(ctx context.Context, tx *sqlitex.Tx) ([]string, error) {
	skip := map[string]bool{"schema_migrations": true, "visit_sums": true, "visit_sum_windows": true,
		"categories": true, "campaigns": true}
	for _, t := range statedb.ReplicatedTables() {
		skip[t] = true
	}
	rows, err := tx.QueryContext(ctx, `SELECT name FROM rep.sqlite_master WHERE type = 'table' AND (name = 'sqlite_sequence' OR name NOT LIKE 'sqlite\_%' ESCAPE '\') ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		if !skip[name] {
			out = append(out, name)
		}
	}
	return out, rows.Err()
}

// sameColumns fails with errSnapshotSchema unless the snapshot's table has
// the replica's columns, in the same order: SELECT * copies by position.
func sameColumns(ctx context.Context, tx *sqlitex.Tx, table string) error {
	var cols [2]string
	for i, schema := range []string{"main", "snap"} {
		err := tx.QueryRowContext(ctx, `SELECT coalesce(group_concat(name || ' ' || type, ', '), '') FROM (SELECT name, type FROM pragma_table_info(?, ?) ORDER BY cid)`,
			table, schema).Scan(&cols[i])
		if err != nil {
			return fmt.Errorf("snapshot table %s: %w", table, err)
		}
	}
	if cols[0] != cols[1] {
		return fmt.Errorf("%w: %s has columns (%s) in the snapshot, (%s) here", errSnapshotSchema, table, cols[1], cols[0])
	}
	return nil
}
