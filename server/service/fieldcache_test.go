package service

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/internal/demo"
	"github.com/doorbook/doorbook/internal/pgtest"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/postgres"
	"github.com/doorbook/doorbook/server/store/sqlite"
	"github.com/doorbook/doorbook/syncengine"
)

// TestReportRowsFollowWrites: a report of a street that reads again only
// the households the feed says changed (or its rows whole, in parts at
// once, every fifth batch) analyses as one reading every row,
// after batches of random writes through the service: visits imported
// (plain, revisits, hazards, group visits reaching outside the street),
// plain visits voided,
// items assigned and closed off, households moving between the street's
// grids and out of it and back, households deleted and erased. In two
// batches of three, a series of reports as of six moments (AnalyzeSeries)
// analyses as six reports.
func TestReportRowsFollowWrites(t *testing.T) {
	t.Parallel()
	for i, db := range []string{"sqlite", "sqlite", "sqlite", "postgres"} {
		seed := i
		t.Run(fmt.Sprint(db, "-seed", seed), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			var backend store.Backend
			var err error
			if db == "postgres" {
				backend, err = postgres.Open(ctx, pgtest.Start(t))
			} else {
				backend, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
			}
			if err != nil {
				t.Fatal(err)
			}
			now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
			s := New(backend, WithClock(func() time.Time { return now }))
			t.Cleanup(func() { s.Close() })
			// The reference keeps no rows: every report of it reads them
			// whole, in one transaction.
			ref := New(backend, WithClock(func() time.Time { return now }), WithReportCache(0))
			admin, _, err := s.CreateAdmin(ctx, "root", "")
			if err != nil {
				t.Fatal(err)
			}
			mk := func(parent string, level store.OrgLevel, name string) string {
				n, err := s.CreateOrgNode(ctx, admin, store.OrgNode{ParentID: parent, Level: level, Name: name})
				if err != nil {
					t.Fatal(err)
				}
				return n.ID
			}
			district := mk("", store.LevelDistrict, "区")
			street, other := mk(district, store.LevelStreet, "街道"), mk(district, store.LevelStreet, "邻街")
			var grids []string
			for i, parent := range []string{street, street, street, other} {
				grids = append(grids, mk(mk(parent, store.LevelCommunity, fmt.Sprint("社区", i)), store.LevelGrid, fmt.Sprint("网格", i)))
			}
			gen := demo.NewGenerator(uint64(seed), now.AddDate(0, 0, -40))
			var households []string
			gridOf := map[string]int{} // each household's grid, by index
			var workers []string
			var phones []store.Principal
			for i, g := range grids {
				w, err := s.CreateWorker(ctx, admin, store.Worker{Name: fmt.Sprint("网格员", i), Role: 1, GridIDs: []string{g}})
				if err != nil {
					t.Fatal(err)
				}
				workers = append(workers, w.ID)
				code, err := s.CreateEnrollmentCode(ctx, admin, w.ID, now.Add(time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				e, err := s.Enroll(ctx, code, "phone", now)
				if err != nil {
					t.Fatal(err)
				}
				phones = append(phones, store.Principal{Kind: store.KindWorker, ID: w.ID, Name: w.Name, CredentialID: e.DeviceID})
				b := gen.Grid(g, demo.Shape{HouseholdsPerGrid: 8, PersonsPerHousehold: 2, VisitsPerHousehold: 2}, w.Name, w.ID)
				if err := s.Import(ctx, admin, b); err != nil {
					t.Fatal(err)
				}
				for _, h := range b.Households {
					households = append(households, h.ID)
					gridOf[h.ID] = i
				}
			}
			clock := gen.Clock()
			camp, err := s.PutCampaign(ctx, admin, syncengine.Campaign{ID: gen.ID(), NodeID: syncengine.NewRegister(street, clock),
				Name: syncengine.NewRegister("走访", clock), StartsAt: syncengine.NewRegister(now.AddDate(0, 0, -20).UnixMilli(), clock),
				EndsAt: syncengine.NewRegister(now.AddDate(0, 0, 10).UnixMilli(), clock), Quotas: syncengine.NewRegister(syncengine.EncodeQuotas(map[int32]uint32{1: 5}), clock)})
			if err != nil {
				t.Fatal(err)
			}
			next := func(observed syncengine.Clock) syncengine.Clock {
				c := gen.Clock()
				if c.HLC <= observed.HLC {
					c.HLC = observed.HLC + 1
				}
				return c
			}
			rng := rand.New(rand.NewPCG(uint64(seed), 4))
			household := func() string { return households[rng.IntN(len(households))] }
			var hazards []string
			type plainVisit struct {
				id, household string
				worker        int
			}
			var plains []plainVisit
			for batch := range 30 {
				var did []string
				for range 1 + rng.IntN(3) {
					switch k := rng.IntN(10); {
					case k < 4: // visits, some calling for a revisit or finding a hazard
						w := rng.IntN(len(workers))
						v := syncengine.Visit{ID: gen.ID(), VisitorID: workers[w], Form: syncengine.FormInPerson, Clock: gen.Clock(),
							VisitedAt: now.Add(-time.Duration(rng.IntN(30*24)) * time.Hour), HouseholdIDs: []string{household()}}
						if rng.IntN(4) == 0 {
							if h := household(); h != v.HouseholdIDs[0] {
								v.HouseholdIDs, v.Form = append(v.HouseholdIDs, h), syncengine.FormOpinionMeeting
							}
						}
						switch rng.IntN(4) {
						case 0:
							v.RevisitReasons, v.RevisitDue = []syncengine.RevisitReason{syncengine.RevisitUnstableMood}, v.VisitedAt.AddDate(0, 0, 7)
						case 1:
							v.Findings = []syncengine.Finding{{Kind: syncengine.FindingHazard, Note: "堆物"}}
							hazards = append(hazards, v.ID)
						default:
							plains = append(plains, plainVisit{v.ID, v.HouseholdIDs[0], w})
						}
						if err := s.Import(ctx, admin, syncengine.Bundle{Visits: []syncengine.Visit{v}}); err != nil {
							t.Fatal(err)
						}
						did = append(did, "visit")
					case k < 6 && len(plains) > 0 && rng.IntN(3) == 0: // a plain visit voided
						// By its visitor's phone, while the household is in
						// the visitor's grid.
						var mine []plainVisit
						for _, v := range plains {
							if gridOf[v.household] == v.worker {
								mine = append(mine, v)
							}
						}
						if len(mine) == 0 {
							break
						}
						v := mine[rng.IntN(len(mine))]
						a := syncengine.Amendment{ID: gen.ID(), VisitID: v.id, AuthorID: workers[v.worker],
							Kind: syncengine.AmendVoid, Reason: "误录", Clock: gen.Clock()}
						if _, err := s.Push(ctx, phones[v.worker], 0, []syncengine.Change{{ID: gen.ID(), Amendment: &a}}); err != nil {
							t.Fatal(err)
						}
						did = append(did, "void")
					case k < 6 && len(hazards) > 0: // an item assigned or closed off
						a := syncengine.Amendment{ID: gen.ID(), VisitID: hazards[rng.IntN(len(hazards))], AuthorID: admin.ID,
							Kind: syncengine.AmendItemClose, Reason: "整改", Clock: gen.Clock()}
						if rng.IntN(2) == 0 {
							a.Kind, a.Unit, a.Deadline = syncengine.AmendItemAssign, "消防站", now.AddDate(0, 0, rng.IntN(20)-10)
						}
						if err := s.UpdateItem(ctx, admin, a); err != nil {
							t.Fatal(err)
						}
						did = append(did, "item")
					case k < 8: // a move, perhaps out of the street
						h, g := household(), rng.IntN(len(grids))
						if _, err := s.MoveHousehold(ctx, admin, h, grids[g], next); err != nil {
							t.Fatal(err)
						}
						gridOf[h] = g
						did = append(did, "move")
					case k < 9: // a household deleted
						h := household()
						del := syncengine.Household{ID: h, Deleted: syncengine.NewRegister(true, gen.Clock())}
						if err := s.Import(ctx, admin, syncengine.Bundle{Households: []syncengine.Household{del}}); err != nil {
							t.Fatal(err)
						}
						did = append(did, "delete")
					default: // an erasure
						if _, err := s.ErasePersonalData(ctx, admin, store.ErasureTarget{HouseholdID: household(), Reason: "申请", At: now}, next); err != nil {
							t.Fatal(err)
						}
						did = append(did, "erase")
					}
				}
				if batch%5 == 4 {
					// Read whole again, in parts (fieldCache.fill).
					s.fields.clear()
				}
				cached, err := s.Analyze(ctx, admin, street, camp.ID, time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				whole, err := ref.Analyze(ctx, admin, street, camp.ID, time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(cached, whole) {
					t.Fatalf("after batch %d (%v) the report from kept rows differs from one reading them all:\n%+v\n%+v", batch, did, cached.Fieldwork.Figures(now, nil), whole.Fieldwork.Figures(now, nil))
				}
				if batch%3 != 0 {
					// A series of moments read once analyses as one report
					// as of each of them: in the campaign's window, as its
					// weeks are, from the plain visits kept one by one
					// (fieldwork.Timeline); with one before the window,
					// summed for each moment.
					from, to := camp.Window()
					untils := []time.Time{from, now.AddDate(0, 0, -12), now.Add(-5*24*time.Hour - 3*time.Hour), now, now.AddDate(0, 0, 3), to}
					if batch%3 == 1 {
						untils[0] = now.AddDate(0, 0, -25)
					}
					_, series, err := s.AnalyzeSeries(ctx, admin, street, camp.ID, func(time.Time, time.Time) []time.Time { return untils })
					if err != nil {
						t.Fatal(err)
					}
					for i, u := range untils {
						one, err := ref.Analyze(ctx, admin, street, camp.ID, u)
						if err != nil {
							t.Fatal(err)
						}
						if !reflect.DeepEqual(series[i], one) {
							t.Fatalf("after batch %d (%v) the series' report as of %v differs from one report as of it:\n%+v\n%+v", batch, did, u, series[i].Fieldwork.Figures(u, nil), one.Fieldwork.Figures(u, nil))
						}
						// A report as of one moment, from the kept rows
						// when it lies in the window.
						kept, err := s.Analyze(ctx, admin, street, camp.ID, u)
						if err != nil {
							t.Fatal(err)
						}
						if !reflect.DeepEqual(kept, one) {
							t.Fatalf("after batch %d (%v) the report as of %v from kept rows differs from one reading them all:\n%+v\n%+v", batch, did, u, kept.Fieldwork.Figures(u, nil), one.Fieldwork.Figures(u, nil))
						}
					}
				}
				if batch%10 == 9 {
					// Some batches start from rows kept a while: read whole
					// again past their age.
					now = now.Add(fieldCacheAge)
				}
			}
		})
	}
}

// TestFieldCacheKeepsNothingReadBeforeAClear: rows whose read began before
// an erasure cleared the cache are not kept, whenever their report ends;
// rows read after it are.
func TestFieldCacheKeepsNothingReadBeforeAClear(t *testing.T) {
	t.Parallel()
	snap, err := fieldwork.ReadSnapshot(t.Context(), fieldwork.Pages(), time.Time{}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &fieldCache{households: 10}
	key, now := fieldKey{scope: "g"}, time.Now()
	before := c.era()
	c.clear()
	c.put(key, &fieldEntry{snap: snap, head: 1, read: now, used: now}, before)
	if c.entries[key] != nil {
		t.Error("rows read before a clear are kept after it")
	}
	c.put(key, &fieldEntry{snap: snap, head: 1, read: now, used: now}, c.era())
	if c.entries[key] == nil {
		t.Error("rows read after a clear are not kept")
	}
}

// TestFieldCacheKeepsTheLaterRead: rows read whole later are kept over
// rows read whole earlier, whatever feed position each was followed to (a
// report that took the earlier ones may end after the later were read):
// the next report reads again what changed since, and they last longer.
func TestFieldCacheKeepsTheLaterRead(t *testing.T) {
	t.Parallel()
	snap, err := fieldwork.ReadSnapshot(t.Context(), fieldwork.Pages(), time.Time{}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &fieldCache{households: 10}
	key, early := fieldKey{scope: "g"}, time.Now()
	late := early.Add(fieldCacheRefresh)
	for _, put := range []struct {
		read     time.Time
		head     uint64
		wantRead time.Time
		wantHead uint64
	}{
		{early, 5, early, 5},
		{early, 7, early, 7}, // a report that followed the rows further
		{early, 6, early, 7},
		{late, 3, late, 3}, // read whole again, from an older snapshot
		{early, 9, late, 3},
		{late, 4, late, 4},
	} {
		c.put(key, &fieldEntry{snap: snap, head: put.head, read: put.read, used: late}, c.era())
		if e := c.entries[key]; !e.read.Equal(put.wantRead) || e.head != put.wantHead {
			t.Errorf("after rows read at %v followed to %d, kept those read at %v to %d, want %v to %d",
				put.read.Sub(early), put.head, e.read.Sub(early), e.head, put.wantRead.Sub(early), put.wantHead)
		}
	}
}

// newFileService is a service over a new SQLite file, with its admin, and
// the nodes of levels made one under the other, the last returned.
func newFileService(t *testing.T, now time.Time, levels ...store.OrgLevel) (*Service, store.Backend, store.Principal, string) {
	t.Helper()
	ctx := t.Context()
	backend, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	s := New(backend, WithClock(func() time.Time { return now }))
	t.Cleanup(func() { s.Close() })
	admin, _, err := s.CreateAdmin(ctx, "root", "")
	if err != nil {
		t.Fatal(err)
	}
	parent := ""
	for _, level := range levels {
		n, err := s.CreateOrgNode(ctx, admin, store.OrgNode{ParentID: parent, Level: level, Name: level.String()})
		if err != nil {
			t.Fatal(err)
		}
		parent = n.ID
	}
	return s, backend, admin, parent
}

// importGrids makes n grids under parent, each with five households and
// their visits from gen, and returns them sorted.
func importGrids(t *testing.T, s *Service, admin store.Principal, parent string, gen *demo.Generator, n int) []string {
	t.Helper()
	var grids []string
	for i := range n {
		g, err := s.CreateOrgNode(t.Context(), admin, store.OrgNode{ParentID: parent, Level: store.LevelGrid, Name: fmt.Sprint("网格", i)})
		if err != nil {
			t.Fatal(err)
		}
		grids = append(grids, g.ID)
		if err := s.Import(t.Context(), admin, gen.Grid(g.ID, demo.Shape{HouseholdsPerGrid: 5, PersonsPerHousehold: 1, VisitsPerHousehold: 2}, "网格员", "")); err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(grids)
	return grids
}

// TestErasureDuringAReport: a report whose snapshot of the database
// began before an erasure, and which reads its rows after the erasure
// cleared the cache, keeps none of them: they hold what was erased.
func TestErasureDuringAReport(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	s, _, admin, grid := newFileService(t, now, store.LevelDistrict, store.LevelStreet, store.LevelCommunity, store.LevelGrid)
	gen := demo.NewGenerator(7, now.AddDate(0, 0, -10))
	b := gen.Grid(grid, demo.Shape{HouseholdsPerGrid: 5, PersonsPerHousehold: 1, VisitsPerHousehold: 1}, "网格员", gen.ID())
	if err := s.Import(ctx, admin, b); err != nil {
		t.Fatal(err)
	}
	victim := b.Households[0]
	erased := make(chan error, 1)
	s.fields.clearing = func() { erased <- nil }
	var once sync.Once
	s.fields.reading = func() {
		// The report's transaction has read its frame, so its snapshot
		// is taken: the erasure commits and clears the cache after it.
		once.Do(func() {
			go func() {
				next := func(observed syncengine.Clock) syncengine.Clock {
					c := gen.Clock()
					c.HLC = max(c.HLC, observed.HLC+1)
					return c
				}
				_, err := s.ErasePersonalData(ctx, admin, store.ErasureTarget{HouseholdID: victim.ID, Reason: "申请", At: now}, next)
				if err != nil {
					erased <- err
				}
			}()
			if err := <-erased; err != nil {
				t.Error(err)
			}
		})
	}
	if _, err := s.Analyze(ctx, admin, grid, "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.fields.mu.Lock()
	defer s.fields.mu.Unlock()
	for key, e := range s.fields.entries {
		err := e.snap.Rows().Households(ctx, func(r *fieldwork.HouseholdRow) error {
			if r.ID == victim.ID && r.HeadName == victim.HeadName.Value {
				return fmt.Errorf("the rows of %s keep %s's name, read before its erasure", key.scope, victim.ID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestFieldCacheFillsOnce: while one report reads a scope whole to keep
// it, another report of the scope waits for it rather than reading it too,
// and gives up when its own context ends.
func TestFieldCacheFillsOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	s, backend, admin, parent := newFileService(t, now, store.LevelDistrict, store.LevelStreet, store.LevelCommunity)
	grids := importGrids(t, s, admin, parent, demo.NewGenerator(7, now.AddDate(0, 0, -40)), 2)
	var fills atomic.Int32
	waited := make(chan error, 1)
	s.fields.filled = func() {
		if fills.Add(1) != 1 {
			return
		}
		// Another report of the scope, while this one reads it.
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.fields.fill(cancelled, backend, grids, time.Time{}, time.Time{}, now, forReport); !errors.Is(err, context.Canceled) {
			t.Errorf("a report whose context ended while another read its scope: %v, want %v", err, context.Canceled)
		}
		go func() { waited <- s.fields.fill(ctx, backend, grids, time.Time{}, time.Time{}, now, forReport) }()
	}
	if err := s.fields.fill(ctx, backend, grids, time.Time{}, time.Time{}, now, forReport); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if n := fills.Load(); n != 1 {
		t.Errorf("the scope was read whole %d times, want once", n)
	}
	if e := s.fields.entries[keyOf(grids, time.Time{}, time.Time{})]; e == nil || e.snap.Len() != 10 {
		t.Errorf("kept %+v, want the scope's 10 households", e)
	}
}

// TestWarm: a campaign's report has the scope's plain visits one by
// one read in the background, for its weeks; and a report that takes rows
// near their age has them read whole again in the background, so that a
// scope in use is not read whole by a report past the hour.
func TestWarm(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	start := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	s, _, admin, parent := newFileService(t, start, store.LevelDistrict, store.LevelStreet, store.LevelCommunity)
	var clock atomic.Pointer[time.Time]
	clock.Store(&start)
	s.now = func() time.Time { return *clock.Load() }
	gen := demo.NewGenerator(7, start.AddDate(0, 0, -40))
	grids := importGrids(t, s, admin, parent, gen, 2)
	c := gen.Clock()
	from, to := start.AddDate(0, 0, -20), start.AddDate(0, 0, 10)
	camp, err := s.PutCampaign(ctx, admin, syncengine.Campaign{ID: gen.ID(), NodeID: syncengine.NewRegister(parent, c),
		Name: syncengine.NewRegister("走访", c), StartsAt: syncengine.NewRegister(from.UnixMilli(), c), EndsAt: syncengine.NewRegister(to.UnixMilli(), c)})
	if err != nil {
		t.Fatal(err)
	}
	var fills atomic.Int32
	s.fields.filled = func() { fills.Add(1) }
	key := keyOf(grids, from, to)
	report := func(at time.Time) (rows, timeline time.Time) {
		t.Helper()
		clock.Store(&at)
		if _, err := s.Analyze(ctx, admin, parent, camp.ID, time.Time{}); err != nil {
			t.Fatal(err)
		}
		s.background.wg.Wait()
		s.fields.mu.Lock()
		defer s.fields.mu.Unlock()
		if e := s.fields.entries[key]; e != nil {
			rows = e.read
		}
		if e := s.fields.timelines[key]; e != nil {
			timeline = e.read
		}
		return rows, timeline
	}
	if rows, timeline := report(start); !rows.Equal(start) || !timeline.Equal(start) {
		t.Fatalf("after the first report the rows are read at %v and the plain visits at %v, want both at %v", rows, timeline, start)
	}
	if n := fills.Load(); n != 1 {
		t.Fatalf("the scope was read whole %d times by the first report, want once", n)
	}
	// Past three quarters of the hour the report takes the kept rows and
	// has both read again behind it; past the hour the rows read then
	// still serve.
	late := start.Add(fieldCacheRefresh + time.Minute)
	if rows, timeline := report(late); !rows.Equal(late) || !timeline.Equal(late) {
		t.Errorf("a report at %v left the rows read at %v and the plain visits at %v, want both read again", late, rows, timeline)
	}
	if n := fills.Load(); n != 2 {
		t.Errorf("the scope was read whole %d times, want twice (once behind the second report)", n)
	}
	if rows, _ := report(start.Add(fieldCacheAge + time.Minute)); !rows.Equal(late) || fills.Load() != 2 {
		t.Errorf("a report past the hour read the scope whole (%d reads, the rows read at %v), though it was read again at %v", fills.Load(), rows, late)
	}
	// A series as of each week takes the plain visits kept, with the
	// same figures as a report as of that moment reading every row.
	week := from.AddDate(0, 0, 7)
	_, ans, err := s.AnalyzeSeries(ctx, admin, parent, camp.ID, func(time.Time, time.Time) []time.Time { return []time.Time{week} })
	if err != nil {
		t.Fatal(err)
	}
	ref := New(s.db, WithClock(s.now), WithReportCache(0))
	want, err := ref.Analyze(ctx, admin, parent, camp.ID, week)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ans[0], want) {
		t.Errorf("the report as of the first week from the plain visits read ahead differs from one reading every row:\n%+v\n%+v", ans[0].Fieldwork.Figures(week, nil), want.Fieldwork.Figures(week, nil))
	}
}

// TestWarmCampaigns: a server starting reads and keeps the scopes of the
// campaigns running, rows and plain visits one by one, and no other; a
// report of one then reads nothing whole.
func TestWarmCampaigns(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	s, _, admin, street := newFileService(t, now, store.LevelDistrict, store.LevelStreet)
	gen := demo.NewGenerator(7, now.AddDate(0, 0, -40))
	var communities []string
	gridsOf := map[string][]string{}
	for i := range 2 {
		c, err := s.CreateOrgNode(ctx, admin, store.OrgNode{ParentID: street, Level: store.LevelCommunity, Name: fmt.Sprint("社区", i)})
		if err != nil {
			t.Fatal(err)
		}
		communities = append(communities, c.ID)
		for j := range 2 {
			g, err := s.CreateOrgNode(ctx, admin, store.OrgNode{ParentID: c.ID, Level: store.LevelGrid, Name: fmt.Sprint("网格", i, j)})
			if err != nil {
				t.Fatal(err)
			}
			gridsOf[c.ID] = append(gridsOf[c.ID], g.ID)
			if err := s.Import(ctx, admin, gen.Grid(g.ID, demo.Shape{HouseholdsPerGrid: 4, PersonsPerHousehold: 1, VisitsPerHousehold: 3}, "网格员", "")); err != nil {
				t.Fatal(err)
			}
		}
		slices.Sort(gridsOf[c.ID])
	}
	// A campaign running in the first community, one ended in the second,
	// and one started since in a grid of the first, which its reports read
	// whole (one grid): it takes none of the room, which holds the first
	// community alone.
	windows := [][2]time.Time{{now.AddDate(0, 0, -20), now.AddDate(0, 0, 10)}, {now.AddDate(0, 0, -30), now.AddDate(0, 0, -1)}, {now.AddDate(0, 0, -5), now.AddDate(0, 0, 5)}}
	nodes := []string{communities[0], communities[1], gridsOf[communities[0]][0]}
	s.fields.households = 8
	var campaigns []string
	for i, w := range windows {
		c := gen.Clock()
		camp, err := s.PutCampaign(ctx, admin, syncengine.Campaign{ID: gen.ID(), NodeID: syncengine.NewRegister(nodes[i], c),
			Name: syncengine.NewRegister("走访", c), StartsAt: syncengine.NewRegister(w[0].UnixMilli(), c), EndsAt: syncengine.NewRegister(w[1].UnixMilli(), c)})
		if err != nil {
			t.Fatal(err)
		}
		campaigns = append(campaigns, camp.ID)
	}
	<-s.WarmCampaigns()
	for i, w := range windows[:2] {
		key := keyOf(gridsOf[communities[i]], w[0], w[1])
		s.fields.mu.Lock()
		rows, timeline := s.fields.entries[key] != nil, s.fields.timelines[key] != nil
		s.fields.mu.Unlock()
		if running := i == 0; rows != running || timeline != running {
			t.Errorf("campaign %d (running %v): rows kept %v, plain visits kept %v", i, running, rows, timeline)
		}
	}
	var fills atomic.Int32
	s.fields.filled = func() { fills.Add(1) }
	if _, _, err := s.AnalyzeSeries(ctx, admin, communities[0], campaigns[0], func(from, _ time.Time) []time.Time { return []time.Time{from.AddDate(0, 0, 7)} }); err != nil {
		t.Fatal(err)
	}
	if n := fills.Load(); n != 0 {
		t.Errorf("the weeks of the running campaign read its scope whole %d times after the start read it", n)
	}
	// Once closed, the service starts no read in the background: the
	// database is closed.
	s.background.close()
	select {
	case <-s.WarmCampaigns():
	default:
		t.Error("WarmCampaigns after Close is under way")
	}
	if s.background.goIfOpen(func(context.Context) {}) {
		t.Error("a read in the background started after Close")
	}
}
