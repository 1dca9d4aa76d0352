package sqlite_test

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/sqlite"
	"github.com/doorbook/doorbook/syncengine"
)

var yearHouseholds = flag.Int("year.households", 12, "TestYearOfChurnStaysBounded: households churned every week")

// TestYearOfChurnStaysBounded runs a server through a simulated year (a
// fake clock, a week a step): every week a worker's phone puts a tag on
// each household and takes last week's off, links a resident and deletes
// last week's, edits a field and records a visit. Only the visits are data
// that lasts; everything else is churn. With the collector running weekly
// at a 90-day horizon, the file must stop growing with the churn: its
// second half-year may add no more than a third of what it adds without
// collection (the rest of its growth is the visits'). Without collection, every week's tombstones, change ids, commits and
// feed entries stay, and the file grows all year.
func TestYearOfChurnStaysBounded(t *testing.T) {
	with, without := churnYear(t, true), churnYear(t, false)
	t.Logf("pages (4 KiB) at weeks 13, 26, 39, 52: collected %v, not collected %v", with, without)
	grewWith, grewWithout := with[3]-with[1], without[3]-without[1]
	if grewWith*3 > grewWithout {
		t.Errorf("with collection the file grew by %d pages in the second half-year, without by %d: want at most a third", grewWith, grewWithout)
	}
}

func churnYear(t *testing.T, collect bool) [4]int {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	path := filepath.Join(t.TempDir(), "s.db")
	backend, err := sqlite.Open(ctx, path, sqlite.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	st := service.New(backend, service.WithClock(clock))
	admin, grid := newTree(t, st)
	hlc := syncengine.NewHybridClock(syncengine.NodeID("phone"), 0, clock)
	if _, _, err := st.PutCategory(ctx, admin, syncengine.Category{Code: "key_person", NameZH: syncengine.NewRegister("重点对象", hlc.Now())}, false); err != nil {
		t.Fatal(err)
	}
	w, err := st.CreateWorker(ctx, admin, store.Worker{Name: "李娜", Role: 1, GridIDs: []string{grid}})
	if err != nil {
		t.Fatal(err)
	}
	code, err := st.CreateEnrollmentCode(ctx, admin, w.ID, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	enrolled, err := st.Enroll(ctx, code, "phone", now)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := st.Authenticate(ctx, enrolled.Token)
	if err != nil {
		t.Fatal(err)
	}
	id := func() string { return uuid.Must(uuid.NewV7()).String() }
	change := func(c syncengine.Change) syncengine.Change { c.ID = id(); return c }
	households := make([]string, *yearHouseholds)
	var first []syncengine.Change
	for i := range households {
		households[i] = id()
		first = append(first, change(syncengine.Change{Household: &syncengine.Household{ID: households[i],
			GridID: syncengine.NewRegister(grid, hlc.Now()), HeadName: syncengine.NewRegister(fmt.Sprintf("户主%d", i), hlc.Now())}}))
	}
	if _, err := st.Push(ctx, dev, 0, first); err != nil {
		t.Fatal(err)
	}
	tags := make([]syncengine.TagElement, len(households))
	persons := make([]syncengine.Person, len(households))
	var pages [4]int
	for week := 1; week <= 52; week++ {
		var cs []syncengine.Change
		for i, h := range households {
			if week > 1 {
				old := tags[i]
				old.Removed = true
				cs = append(cs, change(syncengine.Change{Tag: &old}))
				gone := syncengine.Person{ID: persons[i].ID, HouseholdID: h, Deleted: syncengine.NewRegister(true, hlc.Now())}
				cs = append(cs, change(syncengine.Change{Person: &gone}))
			}
			tags[i] = syncengine.TagElement{AddID: id(), HouseholdID: h, Category: "key_person", Clock: hlc.Now()}
			persons[i] = syncengine.Person{ID: id(), HouseholdID: h, Name: syncengine.NewRegister(fmt.Sprintf("住户%d-%d", i, week), hlc.Now())}
			cs = append(cs,
				change(syncengine.Change{Tag: &tags[i]}),
				change(syncengine.Change{Person: &persons[i]}),
				change(syncengine.Change{Household: &syncengine.Household{ID: h, Notes: syncengine.NewRegister(fmt.Sprintf("第%d周", week), hlc.Now())}}),
				change(syncengine.Change{Visit: &syncengine.Visit{ID: id(), HouseholdIDs: []string{h}, VisitorID: w.ID,
					VisitedAt: clock(), Form: syncengine.FormInPerson, Notes: "情况正常", Clock: hlc.Now()}}),
			)
		}
		for start := 0; start < len(cs); start += syncengine.MaxChangesPerPush {
			if _, err := st.Push(ctx, dev, 0, cs[start:min(start+syncengine.MaxChangesPerPush, len(cs))]); err != nil {
				t.Fatalf("week %d: %v", week, err)
			}
		}
		mu.Lock()
		now = now.Add(7 * 24 * time.Hour)
		mu.Unlock()
		if collect {
			if _, err := st.Collect(ctx, store.DefaultHorizon); err != nil {
				t.Fatal(err)
			}
		}
		if week%13 == 0 {
			pages[week/13-1] = pageCount(t, path)
		}
	}
	return pages
}

func pageCount(t *testing.T, path string) int {
	t.Helper()
	db, err := sqlitex.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// What the file would hold once the log is checkpointed.
	if _, err := db.W.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.R.QueryRow(`PRAGMA page_count`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
