package sdk_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/internal/wire"
	"github.com/doorbook/doorbook/syncengine"
)

// TestOpensFileOfPreviousSchema writes a replica the way the first release
// of the SDK left it (schema version 2: no last_error columns), with an
// enrolled device, a household and an unsent change, then opens it with
// this SDK: the file is migrated and nothing is lost.
func TestOpensFileOfPreviousSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	all, err := sdk.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	const previous = 2
	var ms []sqlitex.Migration
	for _, m := range all[:previous] {
		ms = append(ms, sqlitex.Migration{Version: m.Version, Name: m.Name, SQL: m.SQL})
	}
	old, err := sqlitex.Open(ctx, path, ms)
	if err != nil {
		t.Fatal(err)
	}
	grid, household, worker := "0190b3c5-7a10-7000-8000-000000000001", "0190b3c5-7a10-7000-8000-000000000002", "0190b3c5-7a10-7000-8000-000000000003"
	c := syncengine.Clock{HLC: syncengine.PackHLC(time.Now().UnixMilli(), 0), Node: 1}
	h := syncengine.Household{ID: household, GridID: syncengine.NewRegister(grid, c), HeadName: syncengine.NewRegister("老用户", c)}
	payload, err := proto.Marshal(wire.ChangeToProto(&syncengine.Change{ID: "0190b3c5-7a10-7000-8000-000000000004", Household: &h}))
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO sync_state (id, replica_id, server_url, device_id, token, worker_id, worker_name, cursor, hlc)
			VALUES (1, 'replica-1', 'http://127.0.0.1:1', 'device-1', 'device-1.secret', ?, '老王', 42, ?)`, []any{worker, int64(c.HLC)}},
		{`INSERT INTO my_grids (grid_id, name) VALUES (?, 'Grid A')`, []any{grid}},
		{`INSERT INTO outbox (change_id, payload, created_at) VALUES ('0190b3c5-7a10-7000-8000-000000000004', ?, 0)`, []any{payload}},
	} {
		if _, err := old.W.ExecContext(ctx, stmt.sql, stmt.args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := statedb.PutHousehold(ctx, old.W, &h); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	r, err := sdk.Open(ctx, path)
	if err != nil {
		t.Fatalf("open a replica of schema %d: %v", previous, err)
	}
	defer r.Close()
	st, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.SchemaVersion != all[len(all)-1].Version {
		t.Errorf("schema version %d after open, want %d", st.SchemaVersion, all[len(all)-1].Version)
	}
	if !st.Enrolled || st.WorkerName != "老王" || st.Cursor != 42 || st.Pending != 1 || st.Households != 1 || st.LastError != "" {
		t.Errorf("state after migration: %+v", st)
	}
	hs, err := r.Households(ctx)
	if err != nil || len(hs) != 1 || hs[0].HeadName != "老用户" {
		t.Errorf("households after migration: %+v, %v", hs, err)
	}
	out, err := r.Outbox(ctx)
	if err != nil || len(out) != 1 || out[0].Household == nil || out[0].Household.HeadName.Value != "老用户" {
		t.Errorf("outbox after migration: %+v, %v", out, err)
	}
	// The migrated file takes writes under the old device's identity.
	if err := r.EditHousehold(ctx, household, map[string]string{"notes": "after the update"}); err != nil {
		t.Errorf("write after migration: %v", err)
	}
}
