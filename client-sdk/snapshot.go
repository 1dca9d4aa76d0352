package sdk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
		var any int
		err := r.db.R.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+table+`)`).Scan(&any)
		if err != nil {
			return false, err
		}
		if any != 0 {
			return false, nil
		}
	}
	return true, nil
}

// receiveSnapshot takes a snapshot answer whose first message the stream
// holds: it writes the rest to a file and copies its tables in.
func (r *Replica) receiveSnapshot(ctx context.Context, stream *connect.ServerStreamForClient[pb.BootstrapResponse], key string, rep *SyncReport) error {
	first := stream.Msg()
	r.observe(first.GetServerHlc())
	size := first.GetSnapshotBytes()
	path := ""
	if size > 0 {
		f, err := os.CreateTemp(filepath.Dir(r.db.Path), filepath.Base(r.db.Path)+".snapshot-*")
		if err != nil {
			return err
		}
		path = f.Name()
		defer os.Remove(path)
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
func (r *Replica) applySnapshot(ctx context.Context, path string, first *pb.BootstrapResponse, key string) (err error) {
	if path != "" {
		// ATTACH cannot run inside a transaction, so it runs on the writer
		// pool's single connection before the transaction that uses it, and
		// DETACH after.
		conn, err := r.db.W.Conn(ctx)
		if err != nil {
			return err
		}
		_, err = conn.ExecContext(ctx, `ATTACH DATABASE ? AS snap`, path)
		conn.Close()
		if err != nil {
			return fmt.Errorf("open snapshot: %w", err)
		}
		defer func() {
			conn, cerr := r.db.W.Conn(context.WithoutCancel(ctx))
			if cerr == nil {
				_, cerr = conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE snap`)
				conn.Close()
			}
			err = errors.Join(err, cerr)
		}()
	}
	return r.db.Write(ctx, func(tx *sqlitex.Tx) error {
		if path != "" {
			for _, table := range statedb.ReplicatedTables() {
				if err := sameColumns(ctx, tx, table); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO main.`+table+` SELECT * FROM snap.`+table); err != nil {
					return fmt.Errorf("copy %s: %w", table, err)
				}
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
	})
}

// sameColumns fails unless the snapshot's table has the replica's columns,
// in the same order: SELECT * copies by position.
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
		return fmt.Errorf("the server's snapshot of %s has columns (%s), this replica (%s)", table, cols[1], cols[0])
	}
	return nil
}
