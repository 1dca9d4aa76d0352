package sdk

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
)

// TestSnapshotOfAnotherSchemaIsRefused: a snapshot whose tables have other
// columns than the replica's (server and phone on different releases of
// the shared schema) is refused with errSnapshotSchema, on which bootstrap
// takes pages of rows instead, and leaves the replica as it was.
func TestSnapshotOfAnotherSchemaIsRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	file := filepath.Join(dir, "newer.snapshot")
	snap, err := sqlitex.Open(ctx, file, statedb.SnapshotMigrations())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snap.W.ExecContext(ctx, `ALTER TABLE visits ADD COLUMN weather TEXT NOT NULL DEFAULT ''`); err != nil {
		t.Fatal(err)
	}
	if _, err := snap.W.ExecContext(ctx, `INSERT INTO households (id, clocks) VALUES ('0190b3c5-7a10-7000-8000-000000000001', x'')`); err != nil {
		t.Fatal(err)
	}
	if err := snap.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, filepath.Join(dir, "phone.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.applySnapshot(ctx, file, &pb.BootstrapResponse{Cursor: 1 << 16}, "*")
	if !errors.Is(err, errSnapshotSchema) {
		t.Fatalf("applying a snapshot with another visits table: %v, want errSnapshotSchema", err)
	}
	empty, err := r.replicatedTablesEmpty(ctx)
	if err != nil || !empty {
		t.Errorf("after the refused snapshot the replica's tables are empty: %v (%v), want true", empty, err)
	}
	var cursor uint64
	if err := r.db.R.QueryRowContext(ctx, `SELECT cursor FROM sync_state WHERE id = 1`).Scan(&cursor); err != nil || cursor != 0 {
		t.Errorf("cursor after the refused snapshot: %d (%v), want 0", cursor, err)
	}
}

// snapshotOf writes a snapshot file of everything replica from holds, as
// the server's SQLite store writes one: the replicated tables, the
// campaigns, and the sums copied.
func snapshotOf(t *testing.T, from *Replica, file string) {
	t.Helper()
	ctx := t.Context()
	snap, err := sqlitex.Open(ctx, file, statedb.SnapshotMigrations())
	if err != nil {
		t.Fatal(err)
	}
	err = snap.WriteAttached(ctx, sqlitex.ReadOnlyURI(from.db.Path), "src", func(tx *sqlitex.Tx) error {
		for _, table := range append(statedb.ReplicatedTables(), "campaigns") {
			cols := `id, node_id, name, starts_at, ends_at, quotas, questionnaire, deleted, clocks, seq`
			if table != "campaigns" {
				cols = "*"
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO main.`+table+` SELECT `+cols+` FROM src.`+table); err != nil {
				return err
			}
		}
		return statedb.CopySums(ctx, tx, "src")
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Close(); err != nil {
		t.Fatal(err)
	}
}

// counts is how many rows each replicated and sums table of r holds.
func counts(t *testing.T, r *Replica) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range append(statedb.ReplicatedTables(), "campaigns", "visit_sums", "visit_sum_windows") {
		var n int
		if err := r.db.R.QueryRowContext(t.Context(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// TestAdoptSnapshot: a new replica takes a snapshot file as its database,
// keeping its own identity, outbox position and pending work, with sums
// equal to a recomputation; a file that is damaged, or that holds more
// than a snapshot's schema (here a trigger), or a replica that took rows
// of its own meanwhile, leaves the replica as it was.
func TestAdoptSnapshot(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	source := fieldReplica(t, 100, now)
	want := counts(t, source)
	var grid string
	if err := source.db.R.QueryRowContext(t.Context(), `SELECT grid_id FROM my_grids LIMIT 1`).Scan(&grid); err != nil {
		t.Fatal(err)
	}
	if want["visit_sums"] == 0 || want["visit_sum_windows"] == 0 {
		t.Fatalf("the source replica has no sums to copy: %v", want)
	}
	for _, c := range []struct {
		name    string
		spoil   func(t *testing.T, file string)
		offline bool
		wantErr error // nil: adopted; errAny: some error
	}{
		{name: "whole"},
		{name: "a trigger of its own", wantErr: errSnapshotSchema, spoil: func(t *testing.T, file string) {
			exec(t, file, `CREATE TRIGGER evil AFTER INSERT ON visits BEGIN DELETE FROM households; END`)
		}},
		{name: "damaged", wantErr: errAny, spoil: func(t *testing.T, file string) {
			f, err := os.OpenFile(file, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			junk := bytes.Repeat([]byte{0xA5}, 4*4096)
			if _, err := f.WriteAt(junk, 8*4096); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "the replica took rows", offline: true, wantErr: errReplicaWritten},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			dir := t.TempDir()
			file := filepath.Join(dir, "scope.snapshot")
			snapshotOf(t, source, file)
			if c.spoil != nil {
				c.spoil(t, file)
			}
			r, err := Open(ctx, filepath.Join(dir, "phone.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			err = r.db.Write(ctx, func(tx *sqlitex.Tx) error {
				// Enrolled: the token and worker must survive the adoption
				// for the write at the end to be taken.
				if _, err := tx.ExecContext(ctx, `UPDATE sync_state SET worker_id = 'w', token = 't', server_url = 'http://127.0.0.1:1' WHERE id = 1`); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO my_grids (grid_id, name) VALUES (?, 'A')`, grid); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO pending_bootstraps (key) VALUES ('*')`)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if c.offline {
				if _, err := r.db.W.ExecContext(ctx, `INSERT INTO households (id, clocks) VALUES ('0190b3c5-7a10-7000-8000-000000000001', x'')`); err != nil {
					t.Fatal(err)
				}
			}
			before := counts(t, r)
			err = r.adoptSnapshot(ctx, file, &pb.BootstrapResponse{Cursor: 7 << 16}, "*")
			switch {
			case c.wantErr == nil && err != nil:
				t.Fatalf("adopt: %v", err)
			case c.wantErr == errAny && err == nil, c.wantErr != nil && c.wantErr != errAny && !errors.Is(err, c.wantErr):
				t.Fatalf("adopt: %v, want %v", err, c.wantErr)
			}
			var id string
			var cursor uint64
			if err := r.db.R.QueryRowContext(ctx, `SELECT replica_id, cursor FROM sync_state WHERE id = 1`).Scan(&id, &cursor); err != nil {
				t.Fatal(err)
			}
			if id != r.id {
				t.Errorf("replica id %q after adopting, want its own %q", id, r.id)
			}
			var pending int
			if err := r.db.R.QueryRowContext(ctx, `SELECT count(*) FROM pending_bootstraps`).Scan(&pending); err != nil {
				t.Fatal(err)
			}
			if err := r.Check(ctx); err != nil {
				t.Error(err)
			}
			got := counts(t, r)
			if c.wantErr != nil {
				if cursor != 0 || pending != 1 || !maps.Equal(got, before) {
					t.Errorf("a refused file changed the replica: cursor %d, pending bootstraps %d, rows %v (were %v)", cursor, pending, got, before)
				}
				return
			}
			if cursor != 7<<16 || pending != 0 {
				t.Errorf("after adopting: cursor %d, pending bootstraps %d; want %d, 0", cursor, pending, 7<<16)
			}
			if !maps.Equal(got, want) {
				t.Errorf("rows after adopting: %v, want the source's %v", got, want)
			}
			// The adopted file is the replica's from now on, enrolled as
			// it was: it takes writes and queues them.
			if _, err := r.RegisterHousehold(ctx, grid, map[string]string{"head_name": "王芳"}); err != nil {
				t.Fatal(err)
			}
			if out, err := r.Outbox(ctx); err != nil || len(out) != 1 {
				t.Errorf("outbox after a write on the adopted file: %d changes (%v), want 1", len(out), err)
			}
		})
	}
}

// errAny stands for any error in a table of cases.
var errAny = errors.New("any error")

// exec runs one statement on the SQLite file at path.
func exec(t *testing.T, path, stmt string) {
	t.Helper()
	db, err := sqlitex.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.W.ExecContext(t.Context(), stmt); err != nil {
		t.Fatal(err)
	}
}
