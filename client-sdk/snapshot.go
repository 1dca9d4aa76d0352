package sdk

import (
	"context"
	"errors"
	"fmt"
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

// receiveSnapshot takes a snapshot answer whose first message the stream
// holds: it writes the rest to a file and copies its tables in.
func (r *Replica) receiveSnapshot(ctx context.Context, stream *connect.ServerStreamForClient[pb.BootstrapResponse], key string, rep *SyncReport) error {
	first := stream.Msg()
	r.observe(first.GetServerHlc())
	size := first.GetSnapshotBytes()
	path := ""
	if size > 0 {
		path = r.snapshotPath()
		f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer r.removeSnapshotFile()
		got := uint64(0)
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
