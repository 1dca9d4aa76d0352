package sdk

import (
	"errors"
	"path/filepath"
	"testing"

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
