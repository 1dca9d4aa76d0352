package sdk_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/server"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/sqlite"
	"github.com/doorbook/doorbook/syncengine"
)

// twoPhones starts a server with one grid and a must-visit category, and
// enrols two phones of the worker who answers for it.
func twoPhones(t *testing.T) (a, b *sdk.Replica, grid string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := openService(ctx, filepath.Join(dir, "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err := st.CreateAdmin(ctx, "admin", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, level := range []store.OrgLevel{store.LevelDistrict, store.LevelStreet, store.LevelCommunity, store.LevelGrid} {
		n, err := st.CreateOrgNode(ctx, admin, store.OrgNode{ParentID: grid, Level: level, Name: level.String()})
		if err != nil {
			t.Fatal(err)
		}
		grid = n.ID
	}
	// A must-visit category, due every 30 days.
	c := syncengine.Clock{HLC: 1, Node: 1}
	petitioner := syncengine.Category{Code: "petitioner", NameZH: syncengine.NewRegister("上访老户", c), RevisitDays: syncengine.NewRegister[int64](30, c),
		KeyGroup: syncengine.NewRegister(true, c)}
	if _, _, err := st.PutCategory(ctx, admin, petitioner, false); err != nil {
		t.Fatal(err)
	}
	w, err := st.CreateWorker(ctx, admin, store.Worker{Name: "Li", Role: 1, GridIDs: []string{grid}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(st).Handler())
	t.Cleanup(func() { srv.Close(); st.Close() })
	phone := func(name string) *sdk.Replica {
		code, err := st.CreateEnrollmentCode(ctx, admin, w.ID, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		r, err := sdk.Open(ctx, filepath.Join(dir, name+".db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		if err := r.Enroll(ctx, srv.URL, code, name); err != nil {
			t.Fatal(err)
		}
		return r
	}
	return phone("a"), phone("b"), grid
}

func pragma(t *testing.T, r *sdk.Replica, stmt string) {
	t.Helper()
	if _, err := sdk.WriterDB(r).Exec(stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

func integrityOK(t *testing.T, r *sdk.Replica) {
	t.Helper()
	var res string
	if err := sdk.WriterDB(r).QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check: %q, %v", res, err)
	}
	if err := statedb.CheckSums(context.Background(), sdk.WriterDB(r)); err != nil {
		t.Fatal(err)
	}
}

func syncAll(t *testing.T, rs ...*sdk.Replica) {
	t.Helper()
	for range 2 {
		for _, r := range rs {
			if _, err := r.Sync(context.Background()); err != nil {
				t.Fatalf("sync %s: %v", r.Path(), err)
			}
		}
	}
}

func sameDump(t *testing.T, a, b *sdk.Replica) {
	t.Helper()
	da, err := a.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	db, err := b.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(da.Households) == 0 || len(da.Visits) == 0 {
		t.Fatal("nothing to compare")
	}
	if !reflect.DeepEqual(da, db) {
		t.Fatalf("replicas differ: %d/%d households, %d/%d visits", len(da.Households), len(db.Households), len(da.Visits), len(db.Visits))
	}
}

// fill records visits until the storage refuses one, and returns how many
// it took.
func fill(t *testing.T, r *sdk.Replica, household string, want error) int {
	t.Helper()
	for n := 0; n < 20_000; n++ {
		_, err := r.RecordVisit(context.Background(), sdk.VisitInput{HouseholdIDs: []string{household}, Form: syncengine.FormInPerson,
			Notes: "a visit with some notes to take up space on the phone's storage, page after page"})
		if err != nil {
			if !errors.Is(err, want) {
				t.Fatalf("write %d: %v, want %v", n, err, want)
			}
			return n
		}
	}
	t.Fatal("the storage never filled up")
	return 0
}

func TestStorageFull(t *testing.T) {
	ctx := context.Background()
	a, b, grid := twoPhones(t)
	h, err := a.RegisterHousehold(ctx, grid, map[string]string{"head_name": "Zhao"})
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, a, b)

	// The disk fills up while the worker records visits: the write that
	// does not fit fails whole and says why; the ones before it stay.
	var pages int
	if err := sdk.WriterDB(a).QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	pragma(t, a, "PRAGMA max_page_count = "+strconv.Itoa(pages+8))
	saved := fill(t, a, h, sdk.ErrStorageFull)
	if saved == 0 {
		t.Fatal("no write fitted before the disk was full: the test shows nothing")
	}
	if st, err := a.Status(ctx); err != nil || st.Pending != saved {
		t.Fatalf("status on a full disk: %+v, %v; want %d pending", st, err, saved)
	}

	// Meanwhile the other phone records more than fits: the full phone's
	// sync pushes (its outbox shrinks, freeing no pages) but cannot apply
	// the pull, and says so; its cursor stays where it was.
	// Both phones' visits to the one household, on one day, stay under the
	// server's cap on those.
	const more = 30
	if saved+more > syncengine.MaxVisitsPerHouseholdPerDay {
		t.Fatalf("%d visits fit before the disk was full: with %d more the server would refuse some", saved, more)
	}
	for range more {
		if _, err := b.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormPhone, Notes: "from the other phone, with notes long enough to need pages"}); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, b)
	before, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Sync(ctx); !errors.Is(err, sdk.ErrStorageFull) {
		t.Fatalf("sync on a full disk: %v, want ErrStorageFull", err)
	}
	after, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Cursor != before.Cursor {
		t.Fatalf("cursor moved from %d to %d with the pull not applied", before.Cursor, after.Cursor)
	}
	integrityOK(t, a)

	// Space is freed: everything goes through, exactly once, and the two
	// phones agree.
	pragma(t, a, "PRAGMA max_page_count = 1073741823")
	syncAll(t, a, b)
	sameDump(t, a, b)
	d, err := b.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(d.Visits), saved+more; got != want {
		t.Fatalf("%d visits on the phones after the disk was freed, want %d", got, want)
	}
	integrityOK(t, a)
}

func TestReadOnlyReplica(t *testing.T) {
	ctx := context.Background()
	a, b, grid := twoPhones(t)
	h, err := a.RegisterHousehold(ctx, grid, map[string]string{"head_name": "Zhao"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson, Notes: "first"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormPhone, Notes: "not yet seen by a"}); err == nil {
		t.Fatal("b wrote to a household it has not received")
	}
	syncAll(t, a, b)
	if _, err := b.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormPhone, Notes: "from b"}); err != nil {
		t.Fatal(err)
	}
	syncAll(t, b)

	// The file turns read-only under the running app (storage remounted
	// read-only, permissions changed). As root, file modes do not stop
	// writes, so the connection is made read-only instead: SQLite answers
	// both with the same SQLITE_READONLY.
	pragma(t, a, "PRAGMA query_only = 1")
	if _, err := a.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson, Notes: "refused"}); !errors.Is(err, sdk.ErrReadOnly) {
		t.Fatalf("write to a read-only replica: %v, want ErrReadOnly", err)
	}
	if _, err := a.Sync(ctx); !errors.Is(err, sdk.ErrReadOnly) {
		t.Fatalf("sync of a read-only replica: %v, want ErrReadOnly", err)
	}
	if hs, err := a.Households(ctx); err != nil || len(hs) != 1 {
		t.Fatalf("reads of a read-only replica: %v, %v", hs, err)
	}
	pragma(t, a, "PRAGMA query_only = 0")
	syncAll(t, a, b)
	sameDump(t, a, b)
	integrityOK(t, a)

	// A file that is read-only when the app starts: a clear error at Open,
	// and the file opens normally once writable. Only a non-root user sees
	// file modes.
	if os.Geteuid() == 0 {
		t.Log("running as root: the file-mode case is covered by the query_only case above")
		return
	}
	a.Close()
	path := a.Path()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Chmod(p, 0o444)
	}
	os.Chmod(filepath.Dir(path), 0o555)
	if _, err := sdk.Open(ctx, path); !errors.Is(err, sdk.ErrReadOnly) {
		t.Errorf("open of a read-only file: %v, want ErrReadOnly", err)
	}
	os.Chmod(filepath.Dir(path), 0o755)
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Chmod(p, 0o644)
	}
	r, err := sdk.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	integrityOK(t, r)
}

// swapHandler lets a test restart the server behind one address.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

func (s *swapHandler) serve(st store.Store) {
	h := server.New(st).Handler()
	s.h.Store(&h)
}

// TestServerStorageFull: the server's disk fills up under a phone's push.
// The phone is told to try again later (ResourceExhausted, saying why), sets
// nothing aside and loses nothing; once the server has room, the same sync
// lands every visit exactly once.
func TestServerStorageFull(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "server.db")
	st, err := openService(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err := st.CreateAdmin(ctx, "admin", "")
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
	// A must-visit category, due every 30 days.
	c := syncengine.Clock{HLC: 1, Node: 1}
	petitioner := syncengine.Category{Code: "petitioner", NameZH: syncengine.NewRegister("上访老户", c), RevisitDays: syncengine.NewRegister[int64](30, c),
		KeyGroup: syncengine.NewRegister(true, c)}
	if _, _, err := st.PutCategory(ctx, admin, petitioner, false); err != nil {
		t.Fatal(err)
	}
	w, err := st.CreateWorker(ctx, admin, store.Worker{Name: "Li", Role: 1, GridIDs: []string{grid}})
	if err != nil {
		t.Fatal(err)
	}
	code, err := st.CreateEnrollmentCode(ctx, admin, w.ID, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sw := &swapHandler{}
	sw.serve(st)
	srv := httptest.NewServer(sw)
	t.Cleanup(func() { srv.Close(); st.Close() })
	r, err := sdk.Open(ctx, filepath.Join(dir, "phone.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Enroll(ctx, srv.URL, code, "phone"); err != nil {
		t.Fatal(err)
	}
	h, err := r.RegisterHousehold(ctx, grid, map[string]string{"head_name": "Zhao"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	// The server's disk has 64 KiB left; the phone brings a megabyte.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err = openService(ctx, path, sqlite.WithMaxSize(info.Size()+64<<10)); err != nil {
		t.Fatal(err)
	}
	sw.serve(st)
	const visits = 300
	notes := strings.Repeat("楼道堆放杂物，已提醒清理。", 100)
	for i := range visits {
		// Fifty a day: under the cap on visits to one household in a day.
		at := time.Now().AddDate(0, 0, -i/50)
		if _, err := r.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson, Notes: notes, VisitedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = r.Sync(ctx)
	if code := connect.CodeOf(err); code != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "storage is full") || !strings.Contains(err.Error(), "try again later") {
		t.Fatalf("sync against a full server: %v (%v), want ResourceExhausted saying the storage is full", err, code)
	}
	if rej, err := r.Rejected(ctx); err != nil || len(rej) != 0 {
		t.Fatalf("the phone set %d changes aside (%v): a full server is no change's fault", len(rej), err)
	}
	if n, err := r.Pending(ctx); err != nil || n != visits {
		t.Fatalf("%d pending (%v), want %d: nothing may be lost", n, err, visits)
	}

	// Room again: the same sync lands everything once.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = openService(ctx, path); err != nil {
		t.Fatal(err)
	}
	sw.serve(st)
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Pending(ctx); err != nil || n != 0 {
		t.Fatalf("%d pending after the server had room (%v)", n, err)
	}
	db, err := sqlitex.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var onServer int
	if err := db.R.QueryRow(`SELECT COUNT(*) FROM visits`).Scan(&onServer); err != nil {
		t.Fatal(err)
	}
	if onServer != visits {
		t.Fatalf("%d visits on the server, want %d", onServer, visits)
	}
}

// openService opens a SQLite server database under the server's rules.
func openService(ctx context.Context, path string, opts ...sqlite.Option) (store.Store, error) {
	backend, err := sqlite.Open(ctx, path, opts...)
	if err != nil {
		return nil, err
	}
	return service.New(backend), nil
}
