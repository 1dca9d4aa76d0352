package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/internal/pgtest"
	"github.com/doorbook/doorbook/server/store/sqlite"
	"github.com/doorbook/doorbook/syncengine"
)

// backupAndRestore copies the server's database now and returns a
// function that restores it (stopping and restarting the server).
func backupAndRestore(t *testing.T, e *env) func() {
	t.Helper()
	backup := e.backup(t, "backup")
	return func() { restoreFrom(t, e, backup) }
}

// backup backs the server's database up, as its operator would while the
// server runs, into a file of e's directory named name: SQLite's online
// backup of the file, or pg_dump of the PostgreSQL database.
func (e *env) backup(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(e.dir, name)
	if e.pgDSN != "" {
		pgtest.Backup(t, e.pgDSN, path)
		return path
	}
	if err := sqlite.Backup(context.Background(), e.dbPath, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// restoreFrom stops the server, puts the backup in place of its database
// and starts it again on the same address.
func restoreFrom(t *testing.T, e *env, backup string) {
	t.Helper()
	e.stop()
	if e.pgDSN != "" {
		pgtest.Restore(t, e.pgDSN, backup)
	} else {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(e.dbPath + suffix)
		}
		if err := os.Rename(backup, e.dbPath); err != nil {
			t.Fatal(err)
		}
	}
	e.start()
}

// workAfterBackup records, and syncs, work the backup will not have: a
// household with five visits, taking the phone's cursor past the backup's
// feed.
func workAfterBackup(t *testing.T, r *sdk.Replica, grid string) {
	t.Helper()
	ctx := context.Background()
	lost, err := r.RegisterHousehold(ctx, grid, map[string]string{"head_name": "after the backup"})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := r.RecordVisit(ctx, sdkVisit(lost)); err != nil {
			t.Fatal(err)
		}
	}
	mustSync(t, r)
}

// lostHousehold makes a phone that holds a household the server no longer
// knows: a co-worker's phone registered it after a backup, the phone pulled
// it, then the server was restored from that backup, and the co-worker's
// phone, which would have pushed it again, was lost.
func lostHousehold(t *testing.T) (*env, *sdk.Replica, string) {
	t.Helper()
	e := newEnv(t, 1)
	w, _ := e.worker("li", e.Grids[0])
	wang, _ := e.worker("wang", e.Grids[0])
	r, lostPhone := e.device("li", w), e.device("wang", wang)
	mustSync(t, r)
	mustSync(t, lostPhone)
	restore := backupAndRestore(t, e)
	h, err := lostPhone.RegisterHousehold(context.Background(), e.Grids[0], map[string]string{"head_name": "after the backup"})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, lostPhone) // acknowledged by the server
	mustSync(t, r)         // and on li's phone
	restore()
	return e, r, h
}

// TestRestoreWithPendingEditOfLostHousehold: a phone registers a household
// and syncs it; the server is then restored from a backup taken before
// that. The phone, offline, edits the household and registers another. The
// server refuses the edit for good (it no longer knows the household): the
// phone sets that change aside, visible as rejected, and the rest of its
// outbox goes through; the phone ends equal to the server. (Before, the
// refused push blocked the whole outbox forever.)
func TestRestoreWithPendingEditOfLostHousehold(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, r, h := lostHousehold(t)

	// Offline work: an edit of that household, then an unrelated visit.
	if err := r.EditHousehold(ctx, h, map[string]string{"notes": "edited offline"}); err != nil {
		t.Fatal(err)
	}
	other, err := r.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "unrelated"})
	if err != nil {
		t.Fatal(err)
	}
	rep := mustSync(t, r)
	if rep.Rejected != 1 || !rep.Reset {
		t.Errorf("sync after the restore: %+v; want the edit of the lost household rejected and the replica reset", rep)
	}
	st, _ := r.Status(ctx)
	if st.Pending != 0 || st.Rejected != 1 {
		t.Errorf("pending %d, rejected %d; want 0 and 1", st.Pending, st.Rejected)
	}
	rejected, err := r.Rejected(ctx)
	if err != nil || len(rejected) != 1 || rejected[0].Change.Household == nil || rejected[0].Change.Household.ID != h || rejected[0].Reason == "" {
		t.Errorf("rejected changes %+v, %v; want the edit of %s with a reason", rejected, err, h)
	}
	server := e.serverState(e.Grids[0])
	if len(server.Households) != 1 || server.Households[0].ID != other {
		t.Errorf("server households %+v, want the unrelated one only", server.Households)
	}
	assertSameState(t, "replica vs restored server", server, dump(t, r))
}

// TestRejectionInALaterBatch: the refused change sits in the second batch
// of a long outbox. The phone reads each batch while the server applies the
// one before, and drops an acknowledged batch only once the next is sent;
// a refusal then must leave the first batch counted once, set aside only
// the refused change, and push everything after it.
func TestRejectionInALaterBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, r, lost := lostHousehold(t)

	// Offline: a household and 700 visits to it (past the first batch of
	// 500), the edit the server will refuse, then 100 more visits; fifty a
	// day, under the cap on visits to one household in a day.
	other, err := r.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "unrelated"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 700 {
		if _, err := r.RecordVisit(ctx, sdkVisitDaysAgo(i/50, other)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.EditHousehold(ctx, lost, map[string]string{"notes": "edited offline"}); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := r.RecordVisit(ctx, sdkVisitDaysAgo(20+i/50, other)); err != nil {
			t.Fatal(err)
		}
	}
	rep := mustSync(t, r)
	if rep.Rejected != 1 || rep.Pushed != 801 || rep.Duplicates != 0 {
		t.Errorf("sync: %+v; want 801 changes pushed once and the edit of the lost household rejected", rep)
	}
	st, _ := r.Status(ctx)
	if st.Pending != 0 || st.Rejected != 1 {
		t.Errorf("pending %d, rejected %d; want 0 and 1", st.Pending, st.Rejected)
	}
	server := e.serverState(e.Grids[0])
	if len(server.Households) != 1 || len(server.Visits) != 800 {
		t.Errorf("server: %d households and %d visits, want 1 and 800", len(server.Households), len(server.Visits))
	}
	assertSameState(t, "replica vs restored server", server, dump(t, r))
}

// TestRestoredFeedOvertakingTheCursorIsDetected: the restored server takes
// more writes than it lost before the phone syncs again, so the phone's
// feed position exists again — for other writes. The commit tag in the
// cursor tells them apart: the phone is told its cursor is stale and starts
// over, instead of keeping rows the server lost and skipping new rows whose
// numbers fall at or below its old position.
func TestRestoredFeedOvertakingTheCursorIsDetected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	w, _ := e.worker("li", e.Grids[0])
	r := e.device("li", w)
	mustSync(t, r)
	restore := backupAndRestore(t, e)
	workAfterBackup(t, r, e.Grids[0])

	restore()

	// The restored server takes new work (an admin import) before the phone
	// syncs again.
	admin, err := e.Store.Authenticate(ctx, e.adminToken)
	if err != nil {
		t.Fatal(err)
	}
	var b syncengine.Bundle
	for range 20 {
		c := syncengine.Clock{HLC: syncengine.PackHLC(e.now.Now().UnixMilli(), 0), Node: 7}
		b.Households = append(b.Households, syncengine.Household{ID: newID(),
			GridID: syncengine.NewRegister(e.Grids[0], c), HeadName: syncengine.NewRegister("imported", c)})
	}
	if err := e.Store.Import(ctx, admin, b); err != nil {
		t.Fatal(err)
	}

	rep := mustSync(t, r)
	if !rep.Reset {
		t.Errorf("sync after the restore did not start over (cursor %d)", rep.Cursor)
	}
	assertSameState(t, "replica vs restored server", e.serverState(e.Grids[0]), dump(t, r))
}
