package sdk

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/doorbook/doorbook/fieldwork"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/internal/demo"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/syncengine"
)

var benchHouseholds = flag.Int("sdk.bench-households", 5000, "households of the due/progress benchmarks' replica (20 visits each)")

// fieldReplica builds a replica of n households in 10 grids, six in seven
// with 20 visits each over five months (the 5,000 households and
// about 100,000 visits by default), the
// default categories and a campaign running at now; a visit in 50 calls for
// a revisit and one in 100 finds a hazard.
func fieldReplica(tb testing.TB, n int, now time.Time) *Replica {
	tb.Helper()
	ctx := context.Background()
	r, err := Open(ctx, filepath.Join(tb.TempDir(), "replica.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	gen := demo.NewGenerator(1, now)
	worker := gen.ID()
	shape := demo.Shape{HouseholdsPerGrid: n / 10, PersonsPerHousehold: 3, VisitsPerHousehold: 20, NotesBytes: 200}
	err = r.db.Write(ctx, func(tx *sqlitex.Tx) error {
		// Enrolled as far as writes need (a token, a device): never synced.
		if _, err := tx.ExecContext(ctx, `UPDATE sync_state SET worker_id = ?, worker_role = 1, token = 'fixture', device_id = ? WHERE id = 1`, worker, gen.ID()); err != nil {
			return err
		}
		for range 10 {
			grid := gen.ID()
			if _, err := tx.ExecContext(ctx, `INSERT INTO my_grids (grid_id, name) VALUES (?, ?)`, grid, grid); err != nil {
				return err
			}
			b := gen.Grid(grid, shape, "", worker)
			// Spread the visits over five months, and leave one household
			// in seven never visited.
			unvisited := map[string]bool{}
			for i, h := range b.Households {
				if i%7 == 0 {
					unvisited[h.ID] = true
				}
			}
			kept := b.Visits[:0]
			for _, v := range b.Visits {
				if !unvisited[v.HouseholdIDs[0]] {
					kept = append(kept, v)
				}
			}
			b.Visits = kept
			for i := range b.Visits {
				v := &b.Visits[i]
				v.VisitedAt = v.VisitedAt.AddDate(0, 0, -30*(i%4))
				switch i % 100 {
				case 7, 57:
					v.RevisitReasons, v.RevisitDue = []syncengine.RevisitReason{syncengine.RevisitUnstableMood}, v.VisitedAt.AddDate(0, 0, 7)
				case 33:
					v.Findings = []syncengine.Finding{{Kind: syncengine.FindingHazard, Note: "楼道堆物"}}
				}
			}
			if err := statedb.ApplyBundle(ctx, tx, &b); err != nil {
				return err
			}
		}
		for _, c := range fieldwork.DefaultCategorySet(gen.Clock) {
			if _, _, err := statedb.MergeCategory(ctx, tx, &c, 0); err != nil {
				return err
			}
		}
		clock := gen.Clock()
		c := syncengine.Campaign{ID: gen.ID(), Name: syncengine.NewRegister("bench", clock),
			StartsAt: syncengine.NewRegister(now.AddDate(0, 0, -30).UnixMilli(), clock),
			EndsAt:   syncengine.NewRegister(now.AddDate(0, 0, 30).UnixMilli(), clock),
			Quotas:   syncengine.NewRegister(syncengine.EncodeQuotas(map[int32]uint32{1: 200}), clock)}
		_, _, err := statedb.MergeCampaign(ctx, tx, &c, 0)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// BenchmarkDue measures the due list of a worker's whole replica, offline:
// "read" as the replica is read after any write (the analysis read anew),
// "unchanged" asked again with no write since (the list of the last
// analysis), "after-a-visit" after recording a visit each time.
func BenchmarkDue(b *testing.B) {
	benchmarkField(b, func(ctx context.Context, r *Replica, now time.Time) error {
		due, err := r.Due(ctx, "", now)
		if err == nil && len(due) == 0 {
			err = errors.New("nothing due")
		}
		return err
	})
}

// BenchmarkProgress measures the worker's quota and grid coverage, as
// BenchmarkDue does the due list.
func BenchmarkProgress(b *testing.B) {
	benchmarkField(b, func(ctx context.Context, r *Replica, now time.Time) error {
		p, _, err := r.Progress(ctx, "", now)
		if err == nil && (len(p.Grids) != 10 || p.Visited == 0) {
			err = fmt.Errorf("progress %+v", p)
		}
		return err
	})
}

// benchmarkField runs call over the benchmarks' replica: with the analysis
// read anew, with nothing changed, and after a visit recorded.
func benchmarkField(b *testing.B, call func(context.Context, *Replica, time.Time) error) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	r := fieldReplica(b, *benchHouseholds, now)
	ctx := context.Background()
	first, err := r.Due(ctx, "", now)
	if err != nil || len(first) == 0 {
		b.Fatalf("due: %d items, %v", len(first), err)
	}
	for _, tc := range []struct {
		name   string
		before func()
	}{
		{"read", func() { r.analyses.mu.Lock(); r.analyses.entry = nil; r.analyses.mu.Unlock() }},
		{"unchanged", func() {}},
		{"after-a-visit", func() {
			h := first[0].Household.ID
			if _, err := r.RecordVisit(ctx, VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson, VisitedAt: now.Add(-time.Hour)}); err != nil {
				b.Fatal(err)
			}
		}},
		{"after-a-pull", func() {
			// Another phone's visits to 20 households.
			var hs []string
			for i := range 20 {
				hs = append(hs, first[i%len(first)].Household.ID)
			}
			pullVisits(b, r, hs, now)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				tc.before()
				if err := call(ctx, r, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDueFollowsWrites: the due list given again while nothing changed is
// the caller's to change, and a write makes the next list anew.
func TestDueFollowsWrites(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	r := fieldReplica(t, 100, now)
	ctx := context.Background()
	due, err := r.Due(ctx, "", now)
	if err != nil || len(due) == 0 {
		t.Fatalf("due: %d items, %v", len(due), err)
	}
	h, reason := due[0].Household.ID, due[0].Reason
	due[0].Household.ID, due[0].Reason = "changed by the caller", "changed"
	again, err := r.Due(ctx, "", now)
	if err != nil || len(again) != len(due) || again[0].Household.ID != h || again[0].Reason != reason {
		t.Fatalf("asked again: %d items (first %+v), %v; want %d, the first %s", len(again), again[0], err, len(due), h)
	}
	before, _, err := r.Progress(ctx, "", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RecordVisit(ctx, VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson, VisitedAt: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	after, err := r.Due(ctx, "", now)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range after {
		if d.Household.ID == h && d.Kind == due[0].Kind {
			t.Errorf("after a visit %s is still due: %+v", h, d)
		}
	}
	if p, _, err := r.Progress(ctx, "", now); err != nil || p.Visited != before.Visited+1 {
		t.Errorf("after a visit to a household not visited in the campaign the worker visited %d, %v; want %d", p.Visited, err, before.Visited+1)
	}
}

// TestFieldReplicaShape keeps the benchmarks' fixture honest (and running
// in CI): a small replica yields due items of every kind it seeds.
func TestFieldReplicaShape(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	r := fieldReplica(t, 100, now)
	a, err := r.Analyze(context.Background(), "", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Households) != 100 || a.Campaign == nil {
		t.Fatalf("fixture: %d households, campaign %v", len(a.Households), a.Campaign)
	}
	kinds := map[fieldwork.DueKind]int{}
	for _, d := range a.Due(now) {
		kinds[d.Kind]++
	}
	if kinds[fieldwork.DueInterval]+kinds[fieldwork.DueMustVisit] == 0 || kinds[fieldwork.DueCampaign] == 0 {
		t.Errorf("the fixture lacks due households of some kind: %v", kinds)
	}
	if p := a.Progress(a.WorkerID, a.Role); p.Visited == 0 || p.Quota != 200 {
		t.Errorf("progress: %+v", p)
	}
}

// TestDueWhileWriting: lists asked for while visits are recorded share
// the analysis without a race, and the list once they are in is the one
// read anew.
func TestDueWhileWriting(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	r := fieldReplica(t, 100, now)
	ctx := context.Background()
	due, err := r.Due(ctx, "", now)
	if err != nil || len(due) < 10 {
		t.Fatalf("due: %d items, %v", len(due), err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				if _, err := r.Due(ctx, "", now); err != nil {
					t.Error(err)
				}
				if _, err := r.Items(ctx, now); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for _, d := range due[:10] {
		if _, err := r.RecordVisit(ctx, VisitInput{HouseholdIDs: []string{d.Household.ID}, Form: syncengine.FormInPerson, VisitedAt: now.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	got, err := r.Due(ctx, "", now)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := r.Analyze(ctx, "", now)
	if err != nil {
		t.Fatal(err)
	}
	want := fresh.Due(now)
	if len(got) != len(want) {
		t.Fatalf("after the visits the list has %d items; read anew, %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Household.ID != want[i].Household.ID || got[i].Kind != want[i].Kind {
			t.Errorf("item %d: %s (%v); read anew %s (%v)", i, got[i].Household.ID, got[i].Kind, want[i].Household.ID, want[i].Kind)
		}
	}
}

// TestSharedAnalysisFollowsWrites: after each of a random run of writes
// (visits recorded, with revisits and hazards, corrected, voided, their
// items assigned; categories added, which read everything again), the
// analysis Due and Progress share, read again for the households the
// writes named, is the one Analyze reads whole.
func TestSharedAnalysisFollowsWrites(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	r := fieldReplica(t, 60, now)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(20261204, 1))
	first, err := r.Analyze(ctx, "", now)
	if err != nil {
		t.Fatal(err)
	}
	households := slices.Collect(func(yield func(string) bool) {
		for _, h := range first.Households {
			if !yield(h.ID) {
				return
			}
		}
	})
	var visits, hazards []string
	for step := range 80 {
		h := households[rng.IntN(len(households))]
		before := r.db.Writes()
		var did string
		var err error
		switch k := rng.IntN(11); {
		case k < 5 || len(visits) == 0:
			in := VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson, VisitedAt: now.Add(-time.Duration(rng.IntN(40*24)) * time.Hour)}
			switch rng.IntN(3) {
			case 0:
				in.RevisitReasons = []syncengine.RevisitReason{syncengine.RevisitUnstableMood}
			case 1:
				in.Findings = []syncengine.Finding{{Kind: syncengine.FindingHazard, Note: "堆物"}}
			}
			var id string
			id, err = r.RecordVisit(ctx, in)
			visits = append(visits, id)
			if len(in.Findings) > 0 {
				hazards = append(hazards, id)
			}
			did = "visit"
		case k < 6:
			_, err = r.VoidVisit(ctx, visits[rng.IntN(len(visits))], "wrong door")
			did = "void"
		case k < 7:
			_, err = r.AmendVisit(ctx, visits[rng.IntN(len(visits))], "wrong day", Correction{VisitedAt: now.Add(-time.Duration(rng.IntN(40*24)) * time.Hour)})
			did = "correct"
		case k < 8 && len(hazards) > 0:
			_, err = r.UpdateItem(ctx, hazards[rng.IntN(len(hazards))], 0, syncengine.AmendItemAssign, "", "消防站", now.AddDate(0, 0, rng.IntN(20)-10))
			did = "assign"
		case k < 9:
			err = r.AddTag(ctx, h, "petitioner")
			did = "tag"
		default:
			// The ledger: a person, an edit, a category taken off, a
			// household registered or deleted.
			switch rng.IntN(5) {
			case 0:
				_, err = r.AddPerson(ctx, h, map[string]string{"name": "家人"})
				did = "person"
			case 1:
				err = r.EditHousehold(ctx, h, map[string]string{"address": "胜利路"})
				did = "edit"
			case 2:
				did = "untag"
				if err = r.RemoveTag(ctx, h, "petitioner"); errors.Is(err, syncengine.ErrNotFound) {
					err, did = nil, "untag (none there)"
				}
			case 3:
				var grids []Grid
				if grids, err = r.Grids(ctx); err == nil {
					var id string
					id, err = r.RegisterHousehold(ctx, grids[0].ID, map[string]string{"head_name": "新户"})
					households = append(households, id)
				}
				did = "register"
			default:
				err = r.DeleteHousehold(ctx, h)
				households = slices.DeleteFunc(households, func(id string) bool { return id == h })
				did = "delete"
			}
		}
		if err != nil {
			t.Fatalf("step %d (%s): %v", step, did, err)
		}
		// (A write refused counts as one that may have changed anything.)
		if _, ok := r.db.ChangedSince(before, r.db.Writes()); !ok && did != "untag (none there)" {
			t.Fatalf("step %d (%s) did not name the households it changed", step, did)
		}
		sharedIsWhole(t, r, now, fmt.Sprintf("step %d (%s)", step, did))
	}
}

// TestSharedAnalysisStaysShared: what Progress and Due return is the
// caller's to change; the analysis they share is not changed by it.
func TestSharedAnalysisStaysShared(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	r := fieldReplica(t, 60, now)
	ctx := context.Background()
	_, c, err := r.Progress(ctx, "", now)
	if err != nil {
		t.Fatal(err)
	}
	c.Name.Value = "MUTATED"
	due, err := r.Due(ctx, "", now)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range due {
		if d.Household.FollowUp != nil {
			d.Household.FollowUp.Due = time.Time{}
			break
		}
	}
	for _, d := range due {
		if len(d.Household.Categories) > 0 {
			d.Household.Categories[0] = "XXX"
			break
		}
	}
	due2, err := r.Due(ctx, "", now)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range due2 {
		if d.Reason == "not yet visited in MUTATED" {
			t.Errorf("Progress's campaign mutation leaked into a later Due: %q", d.Reason)
			break
		}
	}
	for _, d := range due2 {
		if len(d.Household.Categories) > 0 && d.Household.Categories[0] == "XXX" {
			t.Errorf("Due's household categories alias the shared analysis")
			break
		}
	}
	for _, d := range due2 {
		if d.Household.FollowUp != nil && d.Household.FollowUp.Due.IsZero() {
			t.Errorf("Due's FollowUp aliases the shared analysis")
			break
		}
	}
}

// TestSharedAnalysisAfterAWidePull: a pull that wrote hundreds of
// households has them read again a page at a time, and the analysis is
// the one read whole.
func TestSharedAnalysisAfterAWidePull(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	r := fieldReplica(t, 1400, now)
	ctx := context.Background()
	first, err := r.sharedAnalysis(ctx, "", now)
	if err != nil {
		t.Fatal(err)
	}
	var hs []string
	for _, h := range first.Households[:650] {
		hs = append(hs, h.ID)
	}
	before := r.db.Writes()
	pullVisits(t, r, hs, now)
	if changed, ok := r.db.ChangedSince(before, r.db.Writes()); !ok || len(changed) != 650 {
		t.Fatalf("the pull named %d households (%v), want 650", len(changed), ok)
	}
	sharedIsWhole(t, r, now, "a pull of 650 households")
}

// pullVisits applies another phone's visits, one to each of households,
// as a pull applies them.
func pullVisits(tb testing.TB, r *Replica, households []string, now time.Time) {
	tb.Helper()
	ctx := context.Background()
	var bundle syncengine.Bundle
	for i, h := range households {
		bundle.Visits = append(bundle.Visits, syncengine.Visit{ID: uuid.Must(uuid.NewV7()).String(), VisitorID: "other",
			HouseholdIDs: []string{h}, Form: syncengine.FormInPerson, VisitedAt: now.Add(-time.Duration(i+1) * time.Minute), Clock: r.clock.Now()})
	}
	err := r.db.Write(ctx, func(tx *sqlitex.Tx) error {
		changed, err := pulledHouseholds(ctx, tx, &pb.PullResponse{}, &bundle)
		if err != nil {
			return err
		}
		tx.Changed(changed...)
		return r.applyRows(ctx, tx, &bundle)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// sharedIsWhole fails t unless r's shared analysis is the one read whole.
func sharedIsWhole(t *testing.T, r *Replica, now time.Time, after string) {
	t.Helper()
	shared, err := r.sharedAnalysis(context.Background(), "", now)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := r.Analyze(context.Background(), "", now)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(shared.Analysis, whole.Analysis) {
		t.Fatalf("after %s the shared analysis differs from one read whole: %+v against %+v", after, shared.Figures(now, nil), whole.Figures(now, nil))
	}
}
