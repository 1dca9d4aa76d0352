package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/sqlite"
	"github.com/doorbook/doorbook/syncengine"
)

// TestBackupWhileWriting: a backup of a database a server keeps writing
// completes without stopping it, holds a whole file (integrity_check) with
// every household committed before it began, and refuses to overwrite.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	backend, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	st := service.New(backend)
	admin, grid := newTree(t, st)
	clock := syncengine.NewHybridClock(syncengine.NodeID("test"), 0, time.Now)
	household := func() syncengine.Household {
		return syncengine.Household{ID: uuid.Must(uuid.NewV7()).String(), GridID: syncengine.NewRegister(grid, clock.Now()), HeadName: syncengine.NewRegister("王芳", clock.Now())}
	}
	before := 50
	var rows syncengine.Bundle
	for range before {
		rows.Households = append(rows.Households, household())
	}
	if err := st.Import(ctx, admin, rows); err != nil {
		t.Fatal(err)
	}

	// The server keeps writing while the backup runs.
	stop := make(chan struct{})
	var written atomic.Int32
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := st.Import(ctx, admin, syncengine.Bundle{Households: []syncengine.Household{household()}}); err != nil {
				done <- err
				return
			}
			written.Add(1)
		}
	}()
	out := filepath.Join(dir, "backup.db")
	err = sqlite.Backup(ctx, path, out)
	close(stop)
	if werr := <-done; werr != nil {
		t.Fatalf("a write during the backup: %v", werr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if written.Load() == 0 {
		t.Log("no write landed during the backup (a fast machine): the copy is still checked")
	}
	db, err := sqlitex.Open(ctx, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	var n int
	if err := db.R.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check of the backup: %q, %v", check, err)
	}
	if err := db.R.QueryRow(`SELECT COUNT(*) FROM households`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n < before || n > before+int(written.Load()) {
		t.Errorf("the backup holds %d households, want between %d and %d", n, before, before+int(written.Load()))
	}
	if err := sqlite.Backup(ctx, path, out); err == nil {
		t.Error("a second backup overwrote the first")
	}
	if _, err := os.Stat(out + ".partial"); err == nil {
		t.Error("a partial backup file was left behind")
	}
}

// newTree makes a root admin and a district down to one grid.
func newTree(t *testing.T, st store.Store) (store.Principal, string) {
	t.Helper()
	ctx := context.Background()
	admin, _, err := st.CreateAdmin(ctx, "root", "")
	if err != nil {
		t.Fatal(err)
	}
	var grid string
	for _, level := range []store.OrgLevel{store.LevelDistrict, store.LevelStreet, store.LevelCommunity, store.LevelGrid} {
		n, err := st.CreateOrgNode(ctx, admin, store.OrgNode{ParentID: grid, Level: level, Name: level.String()})
		if err != nil {
			t.Fatal(err)
		}
		grid = n.ID
	}
	return admin, grid
}
