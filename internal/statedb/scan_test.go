package statedb_test

import (
	"path/filepath"
	"testing"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/fieldwork/fieldworktest"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/syncengine"
)

// TestFieldRows holds FieldRows over the replicated tables to the contract
// of fieldwork.Rows.
func TestFieldRows(t *testing.T) {
	t.Parallel()
	fieldworktest.Run(t, func(t *testing.T, b *syncengine.Bundle, grids []string) fieldwork.Rows {
		t.Helper()
		ctx := t.Context()
		db, err := sqlitex.Open(ctx, filepath.Join(t.TempDir(), "state.db"), []sqlitex.Migration{
			{Version: 1, Name: "001_state.sql", SQL: statedb.SchemaV1},
			{Version: 2, Name: "002_state.sql", SQL: statedb.SchemaV2},
		})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Write(ctx, func(tx *sqlitex.Tx) error { return statedb.ApplyBundle(ctx, tx, b) }); err != nil {
			t.Fatalf("store: %v", err)
		}
		return statedb.FieldRows(db.R, grids)
	})
}
