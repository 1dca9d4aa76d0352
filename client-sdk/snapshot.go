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

// A snapshot bootstrap (WithSnapshotBootstrap) downloads the scope as a
// SQLite file beside the replica, then copies each replicated table whole
// with INSERT … SELECT *: into empty tables with the same schema and
// indexes, SQLite copies records and index entries as they are (its
// transfer optimisation) instead of inserting rows one by one. Nothing is
// applied until the whole file is here; a cut download starts over.

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
	if err := r.applySnapshot(ctx, path, first, key); err != nil {
		return err
	}
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
	if path == "" {
		return r.db.Write(ctx, apply)
	}
	return r.db.WriteAttached(ctx, path, "snap", apply)
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
