package statedb_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	se "github.com/doorbook/doorbook/syncengine"
)

// TestSnapshotFollowsChanges: a fieldwork.Snapshot of a scope, given again
// the rows of the households each batch of random writes touched (as a
// server learns them from its change feed), analyses as the scope read
// whole does, over histories of visits (plain, detailed, revisits, tracked
// and group visits), corrections, voids and item updates, categories and
// persons, households moving between the scope's grids, out of it and
// back, and deleted.
func TestSnapshotFollowsChanges(t *testing.T) {
	t.Parallel()
	for seed := range 12 {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			h := &snapHistory{t: t, db: openState(t), rng: rand.New(rand.NewPCG(uint64(seed), 20261204))}
			camp := se.Campaign{ID: "c1", NodeID: se.NewRegister("n", h.clock()), Name: se.NewRegister("走访", h.clock()),
				StartsAt: se.NewRegister(snapEpoch.AddDate(0, 0, 10).UnixMilli(), h.clock()),
				EndsAt:   se.NewRegister(snapEpoch.AddDate(0, 0, 40).UnixMilli(), h.clock()), Deleted: se.NewRegister(false, h.clock())}
			h.write(func(tx *sqlitex.Tx) error {
				if _, _, err := statedb.MergeCampaign(ctx, tx, &camp, 0); err != nil {
					return err
				}
				for i := range 10 {
					hh := se.Household{ID: fmt.Sprintf("h%02d", i), GridID: se.NewRegister(snapGrids[i%3], h.clock()),
						HeadName: se.NewRegister("户主", h.clock()), MemberCount: se.NewRegister(int64(i%4), h.clock())}
					h.households = append(h.households, hh.ID)
					if err := statedb.PutHousehold(ctx, tx, &hh); err != nil {
						return err
					}
				}
				return nil
			})
			scope := snapGrids[:2]
			from, to := camp.Window()
			keep := func(r *fieldwork.HouseholdRow) bool { return slices.Contains(scope, r.GridID) }
			read := func(rows fieldwork.Rows) *fieldwork.Snapshot {
				s, err := fieldwork.ReadSnapshot(ctx, rows, from, to, keep)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			load := func(rows fieldwork.Rows) *fieldwork.Analysis {
				a, err := fieldwork.Load(ctx, rows, &camp, nil)
				if err != nil {
					t.Fatal(err)
				}
				return a
			}
			snap := read(statedb.FieldRows(h.db.R, scope))
			for batch := range 25 {
				touched := map[string]bool{}
				var did []string
				for range 1 + h.rng.IntN(4) {
					what, hs := h.step()
					did = append(did, what)
					for _, id := range hs {
						touched[id] = true
					}
				}
				ids := make([]string, 0, len(touched))
				for id := range touched {
					ids = append(ids, id)
				}
				slices.Sort(ids)
				fresh := read(statedb.FieldRowsOf(h.db.R, ids))
				next, err := snap.With(fresh, ids)
				if err != nil {
					t.Fatal(err)
				}
				snap = next
				got, want := load(snap.Rows()), load(statedb.FieldRows(h.db.R, scope))
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("after batch %d (%v, touching %v) the snapshot analyses as\n%s\nthe scope read whole as\n%s", batch, did, ids, dump(got), dump(want))
				}
			}
		})
	}
}

var (
	snapGrids = []string{"g1", "g2", "g3"}
	snapEpoch = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
)

// snapHistory writes random rows through statedb, as a server's services
// do, and says which households each write touched.
type snapHistory struct {
	t          *testing.T
	db         *sqlitex.DB
	rng        *rand.Rand
	n          int
	households []string
	visits     []se.Visit
}

func (h *snapHistory) id(kind string) string { h.n++; return fmt.Sprintf("%s%04d", kind, h.n) }

func (h *snapHistory) clock() se.Clock { h.n++; return se.Clock{HLC: uint64(h.n), Node: 1} }

func (h *snapHistory) write(fn func(tx *sqlitex.Tx) error) {
	h.t.Helper()
	if err := h.db.Write(context.Background(), fn); err != nil {
		h.t.Fatal(err)
	}
}

func (h *snapHistory) household() string { return h.households[h.rng.IntN(len(h.households))] }

// step makes one random write: what it was, and the households it touched.
func (h *snapHistory) step() (string, []string) {
	ctx := context.Background()
	r := h.rng
	switch k := r.IntN(100); {
	case k < 40 || len(h.visits) == 0: // a visit
		v := se.Visit{ID: h.id("v"), VisitorID: []string{"w1", "w2"}[r.IntN(2)], Form: se.FormInPerson, Clock: h.clock(),
			VisitedAt: snapEpoch.Add(time.Duration(r.Int64N(int64(50 * 24 * time.Hour)))).Truncate(time.Millisecond)}
		v.HouseholdIDs = []string{h.household()}
		if r.IntN(5) == 0 {
			if other := h.household(); other != v.HouseholdIDs[0] {
				v.HouseholdIDs, v.Form = append(v.HouseholdIDs, other), se.FormOpinionMeeting
			}
		}
		switch r.IntN(5) {
		case 0:
			v.Materials = []se.Material{se.MaterialOpenLetter}
		case 1:
			v.RevisitReasons, v.RevisitDue = []se.RevisitReason{se.RevisitUnstableMood}, v.VisitedAt.AddDate(0, 0, 7)
		case 2:
			v.Findings = []se.Finding{{Kind: se.FindingHazard, Note: "堆物"}}
		}
		h.visits = append(h.visits, v)
		h.write(func(tx *sqlitex.Tx) error { _, err := statedb.InsertLinkedVisit(ctx, tx, &v); return err })
		return "visit", v.HouseholdIDs
	case k < 60: // an amendment
		v := h.visits[r.IntN(len(h.visits))]
		a := se.Amendment{ID: h.id("a"), VisitID: v.ID, AuthorID: v.VisitorID, Kind: se.AmendCorrect, Reason: "r", Clock: h.clock()}
		switch r.IntN(4) {
		case 0:
			a.Kind = se.AmendVoid
		case 1:
			a.VisitedAt = snapEpoch.Add(time.Duration(r.Int64N(int64(50 * 24 * time.Hour)))).Truncate(time.Millisecond)
		case 2:
			a.Kind, a.Unit, a.Deadline = se.AmendItemAssign, "消防站", v.VisitedAt.AddDate(0, 0, 14)
		case 3:
			a.Kind = se.AmendItemClose
		}
		h.write(func(tx *sqlitex.Tx) error { _, err := statedb.InsertAmendment(ctx, tx, &a); return err })
		return "amendment", v.HouseholdIDs
	case k < 75: // a household moves to another grid, in the scope or not
		id := h.household()
		hh := se.Household{ID: id, GridID: se.NewRegister(snapGrids[r.IntN(len(snapGrids))], h.clock())}
		h.write(func(tx *sqlitex.Tx) error { return mergeHousehold(ctx, tx, &hh) })
		return "move", []string{id}
	case k < 80: // a household deleted
		id := h.household()
		hh := se.Household{ID: id, Deleted: se.NewRegister(true, h.clock())}
		h.write(func(tx *sqlitex.Tx) error { return mergeHousehold(ctx, tx, &hh) })
		return "delete", []string{id}
	case k < 90: // a category
		id := h.household()
		tag := se.TagElement{AddID: h.id("t"), HouseholdID: id, Category: []string{"petitioner", "vulnerable"}[r.IntN(2)], Clock: h.clock()}
		h.write(func(tx *sqlitex.Tx) error { return statedb.PutTag(ctx, tx, &tag) })
		return "tag", []string{id}
	default: // a person
		id := h.household()
		p := se.Person{ID: h.id("p"), HouseholdID: id, Name: se.NewRegister("张三", h.clock()),
			Residence: se.NewRegister([]string{"", se.ResidenceMigrant, se.ResidenceMovedAway}[r.IntN(3)], h.clock())}
		h.write(func(tx *sqlitex.Tx) error { return statedb.PutPerson(ctx, tx, &p) })
		return "person", []string{id}
	}
}

// mergeHousehold merges delta into the stored household, as a push does.
func mergeHousehold(ctx context.Context, tx *sqlitex.Tx, delta *se.Household) error {
	cur, ok, err := statedb.GetHousehold(ctx, tx, delta.ID)
	if err != nil || !ok {
		return fmt.Errorf("household %s: %v, found %v", delta.ID, err, ok)
	}
	cur.Merge(*delta)
	return statedb.PutHousehold(ctx, tx, &cur)
}

// dump shows an analysis's households for a failure message.
func dump(a *fieldwork.Analysis) string {
	out := ""
	for _, h := range a.Households {
		out += fmt.Sprintf("%s %s last %v campaign %d items %d persons %d/%d/%d cats %v follow-up %v\n", h.ID, h.GridID, h.LastVisit, h.CampaignVisits,
			len(h.Items), h.Persons, h.Migrants, h.MovedAway, h.Categories, h.FollowUp != nil)
	}
	for _, w := range a.Visitors() {
		out += fmt.Sprintf("%s visited %d\n", w, a.VisitedBy(w))
	}
	return out
}
