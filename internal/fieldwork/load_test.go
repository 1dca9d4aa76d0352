package fieldwork_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/doorbook/doorbook/internal/fieldwork"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	se "github.com/doorbook/doorbook/syncengine"
)

// stored is a scenario as rows of the statedb tables.
type stored struct {
	households []hh
	deleted    []string // households stored with their tombstone set
	visits     []se.Visit
	amendments []se.Amendment
}

// openState opens a fresh database with the replicated tables and stores s.
func openState(t *testing.T, s stored) *sqlitex.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitex.Open(ctx, filepath.Join(t.TempDir(), "state.db"), []sqlitex.Migration{
		{Version: 1, Name: "001_state.sql", SQL: statedb.SchemaV1},
		{Version: 2, Name: "002_state.sql", SQL: statedb.SchemaV2},
	})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	var b se.Bundle
	for i, h := range s.households {
		row := se.Household{
			ID: h.id, GridID: se.NewRegister(h.grid, clock(1)), Address: se.NewRegister(h.address, clock(1)),
			Deleted: se.NewRegister(slices.Contains(s.deleted, h.id), clock(1)),
		}
		b.Households = append(b.Households, row)
		for j, tag := range h.tags {
			b.Tags = append(b.Tags, se.TagElement{
				AddID: fmt.Sprintf("00000000-0000-7000-8000-00000007%02d%02d", i, j), HouseholdID: h.id, Category: tag, Clock: clock(2),
			})
		}
	}
	b.Visits, b.Amendments = s.visits, s.amendments
	if err := db.Write(ctx, func(tx *sqlitex.Tx) error { return statedb.ApplyBundle(ctx, tx, &b) }); err != nil {
		t.Fatalf("store: %v", err)
	}
	return db
}

// plain is the n-th visit of a test as stored: by workerA unless by says
// otherwise, covering households (the first first).
func plain(n int, at time.Time, households ...string) se.Visit {
	v := se.Visit{ID: visitID(n), HouseholdIDs: households, VisitorID: workerA, VisitedAt: at, Form: se.FormInPerson, Clock: clock(uint64(100 + n))}
	if len(households) > 1 {
		v.Form = se.FormTalk
	}
	return v
}

// with edits a stored visit.
func with(v se.Visit, edit func(*se.Visit)) se.Visit { edit(&v); return v }

// amend is the n-th amendment of a test, of visit v.
func amend(n, v int, kind se.AmendmentKind, edit func(*se.Amendment)) se.Amendment {
	a := se.Amendment{
		ID: fmt.Sprintf("00000000-0000-7000-8000-0000000e%04d", n), VisitID: visitID(v), AuthorID: workerB,
		Kind: kind, Reason: "amended", Clock: clock(uint64(1000 + n)),
	}
	if edit != nil {
		edit(&a)
	}
	return a
}

// expected builds, with the Builder alone, what Load should find in grids.
func expected(c *se.Campaign, s stored, grids []string) *fieldwork.Analysis {
	b := fieldwork.NewBuilder(c, categories())
	for _, h := range s.households {
		if slices.Contains(grids, h.grid) && !slices.Contains(s.deleted, h.id) {
			b.AddHousehold(fieldwork.Household{ID: h.id, GridID: h.grid, Address: h.address}, slices.Clone(h.tags))
		}
	}
	for _, v := range s.visits {
		var as []se.Amendment
		for _, a := range s.amendments {
			if a.VisitID == v.ID {
				as = append(as, a)
			}
		}
		view := se.Effective(v, as)
		for ord, id := range v.HouseholdIDs {
			b.AddVisit(id, ord == 0, &view)
		}
		for _, it := range se.Items(view) {
			b.AddItem(it)
		}
	}
	return b.Finish()
}

func TestLoadAgreesWithBuilder(t *testing.T) {
	t.Parallel()
	now := apr(20, 12)
	households := []hh{
		{id: hh1, grid: grid1, address: "1 Oak", tags: []string{"petitioner"}},
		{id: hh2, grid: grid1, address: "2 Oak", tags: []string{"vulnerable", "drug_user"}},
		{id: hh3, grid: grid1, address: "3 Oak"},
		{id: hh4, grid: grid2, address: "1 Elm", tags: []string{"notable"}},
		{id: hh5, grid: grid2, address: "2 Elm"},
	}
	tests := []struct {
		name     string
		campaign *se.Campaign
		s        stored
		grids    []string
		// checks on the loaded analysis, beyond agreeing with the Builder
		wantVisited  map[string]int
		wantCampaign map[string]int // household → CampaignVisits
		wantFollowUp []string       // households with an open follow-up
	}{
		{
			name:     "plain visits are summed",
			campaign: campaign(t, nil),
			s: stored{households: households, visits: []se.Visit{
				plain(1, apr(2, 10), hh1),
				plain(2, apr(3, 10), hh1),
				plain(3, mar(3, 10), hh2),
				plain(4, campStart, hh3),
				plain(5, campEnd, hh3),
				with(plain(6, apr(5, 10), hh1, hh2, hh4), func(v *se.Visit) { v.VisitorID = workerB }),
			}},
			grids:        []string{grid1, grid2},
			wantVisited:  map[string]int{workerA: 2, workerB: 3},
			wantCampaign: map[string]int{hh1: 3, hh2: 1, hh3: 1, hh4: 1, hh5: 0},
		},
		{
			name:     "plain and detailed visits together",
			campaign: campaign(t, nil, qSatisfied, qSafe),
			s: stored{households: households, visits: []se.Visit{
				plain(1, apr(2, 10), hh1),
				with(plain(2, apr(3, 10), hh1), func(v *se.Visit) {
					v.RevisitReasons, v.RevisitDue = []se.RevisitReason{se.RevisitImportantRequest}, apr(10, 12)
				}),
				with(plain(3, apr(3, 11), hh2), func(v *se.Visit) {
					v.CampaignID, v.Answers = campaignID, []se.SurveyAnswer{{Question: "satisfied", Value: 5}, {Question: "safe", Value: 2}}
				}),
				with(plain(4, apr(4, 10), hh3), func(v *se.Visit) { v.Materials = []se.Material{se.MaterialOpenLetter} }),
				with(plain(5, apr(4, 11), hh4), func(v *se.Visit) {
					v.Findings = []se.Finding{{Kind: se.FindingHardship}, {Kind: se.FindingHazard, Note: "gas"}}
				}),
				with(plain(6, apr(6, 10), hh5, hh3), func(v *se.Visit) {
					v.VisitorID = workerB
					v.RevisitReasons, v.RevisitDue = []se.RevisitReason{se.RevisitUnstableMood}, apr(25, 12)
					v.CampaignID, v.Answers = campaignID, []se.SurveyAnswer{{Question: "safe", Value: 9}}
				}),
			}, amendments: []se.Amendment{
				amend(1, 5, se.AmendItemAssign, func(a *se.Amendment) { a.Finding, a.Unit, a.Deadline = 1, "gas company", apr(10, 0) }),
			}},
			grids:        []string{grid1, grid2},
			wantVisited:  map[string]int{workerA: 4, workerB: 2},
			wantCampaign: map[string]int{hh1: 2, hh2: 1, hh3: 2, hh4: 1, hh5: 1},
			wantFollowUp: []string{hh1, hh3, hh5},
		},
		{
			name:     "amended plain visits are read one by one",
			campaign: campaign(t, nil),
			s: stored{households: households, visits: []se.Visit{
				plain(1, apr(2, 10), hh1),  // voided
				plain(2, apr(3, 10), hh2),  // moved before the campaign
				plain(3, mar(20, 10), hh3), // moved into the campaign
				plain(4, apr(4, 10), hh4),  // notes corrected
				with(plain(5, apr(2, 9), hh1), func(v *se.Visit) {
					v.RevisitReasons, v.RevisitDue = []se.RevisitReason{se.RevisitImportantRequest}, apr(10, 12)
				}),
			}, amendments: []se.Amendment{
				amend(1, 1, se.AmendVoid, nil),
				amend(2, 2, se.AmendCorrect, func(a *se.Amendment) { a.VisitedAt = mar(30, 10) }),
				amend(3, 3, se.AmendCorrect, func(a *se.Amendment) { a.VisitedAt = apr(1, 10) }),
				amend(4, 4, se.AmendCorrect, func(a *se.Amendment) { n := "better notes"; a.Notes = &n }),
			}},
			grids:        []string{grid1, grid2},
			wantVisited:  map[string]int{workerA: 3},
			wantCampaign: map[string]int{hh1: 1, hh2: 0, hh3: 1, hh4: 1},
			wantFollowUp: []string{hh1}, // the voided later visit does not close it
		},
		{
			name:     "a group visit reaching into another grid",
			campaign: campaign(t, nil, qSatisfied),
			s: stored{households: households, visits: []se.Visit{
				with(plain(1, apr(2, 10), hh1, hh4), func(v *se.Visit) {
					v.CampaignID, v.Answers = campaignID, []se.SurveyAnswer{{Question: "satisfied", Value: 5}}
				}),
				plain(2, apr(3, 10), hh4, hh1),
			}},
			grids:        []string{grid2},
			wantVisited:  map[string]int{workerA: 1},
			wantCampaign: map[string]int{hh4: 2, hh5: 0},
		},
		{
			name:     "a deleted household is out of the scope",
			campaign: campaign(t, nil),
			s: stored{households: households, deleted: []string{hh2}, visits: []se.Visit{
				plain(1, apr(2, 10), hh1),
				plain(2, apr(2, 11), hh2),
				with(plain(3, apr(2, 12), hh2), func(v *se.Visit) { v.Materials = []se.Material{se.MaterialPledgeForm} }),
			}},
			grids:        []string{grid1},
			wantVisited:  map[string]int{workerA: 1},
			wantCampaign: map[string]int{hh1: 1, hh3: 0},
		},
		{
			name: "without a campaign",
			s: stored{households: households, visits: []se.Visit{
				plain(1, apr(2, 10), hh1),
				with(plain(2, apr(3, 10), hh2), func(v *se.Visit) {
					v.RevisitReasons, v.RevisitDue = []se.RevisitReason{se.RevisitImportantRequest}, apr(10, 12)
				}),
			}},
			grids:        []string{grid1, grid2},
			wantVisited:  map[string]int{workerA: 0},
			wantCampaign: map[string]int{hh1: 0, hh2: 0},
			wantFollowUp: []string{hh2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, v := range tt.s.visits {
				if err := v.Validate(); err != nil {
					t.Fatalf("fixture: %v", err)
				}
			}
			for _, a := range tt.s.amendments {
				if err := a.Validate(); err != nil {
					t.Fatalf("fixture: %v", err)
				}
			}
			db := openState(t, tt.s)
			got, err := fieldwork.Load(context.Background(), db.R, tt.grids, tt.campaign, categories())
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := expected(tt.campaign, tt.s, tt.grids)

			var gotIDs, wantIDs []string
			for _, h := range got.Households {
				gotIDs = append(gotIDs, h.ID)
			}
			for _, h := range want.Households {
				wantIDs = append(wantIDs, h.ID)
			}
			if !slices.Equal(gotIDs, wantIDs) {
				t.Fatalf("households %v, want %v", gotIDs, wantIDs)
			}
			for _, w := range want.Households {
				g := got.Household(w.ID)
				if !slices.Equal(g.Categories, w.Categories) || g.KeyGroup != w.KeyGroup || g.IntervalDays != w.IntervalDays {
					t.Errorf("%s: categories %v key %v every %d; want %v, %v, %d", w.ID, g.Categories, g.KeyGroup, g.IntervalDays, w.Categories, w.KeyGroup, w.IntervalDays)
				}
				if !g.LastVisit.Equal(w.LastVisit) || g.CampaignVisits != w.CampaignVisits {
					t.Errorf("%s: last visit %s, %d campaign visits; want %s, %d", w.ID, g.LastVisit, g.CampaignVisits, w.LastVisit, w.CampaignVisits)
				}
				if (g.FollowUp == nil) != (w.FollowUp == nil) ||
					(g.FollowUp != nil && (g.FollowUp.VisitID != w.FollowUp.VisitID || !g.FollowUp.Due.Equal(w.FollowUp.Due) || !slices.Equal(g.FollowUp.Reasons, w.FollowUp.Reasons))) {
					t.Errorf("%s: follow-up %+v, want %+v", w.ID, g.FollowUp, w.FollowUp)
				}
				gOpen, gOverdue := g.OpenItems(now)
				wOpen, wOverdue := w.OpenItems(now)
				if len(g.Items) != len(w.Items) || gOpen != wOpen || gOverdue != wOverdue {
					t.Errorf("%s: items %+v, want %+v", w.ID, g.Items, w.Items)
				}
			}
			gf, wf := got.Figures(now, nil), want.Figures(now, nil)
			if fmt.Sprint(gf) != fmt.Sprint(wf) {
				t.Errorf("Figures\n got  %+v\n want %+v", gf, wf)
			}
			if !slices.Equal(got.Visitors(), want.Visitors()) {
				t.Errorf("Visitors %v, want %v", got.Visitors(), want.Visitors())
			}
			for who, n := range tt.wantVisited {
				if got.VisitedBy(who) != n || want.VisitedBy(who) != n {
					t.Errorf("VisitedBy(%s) = %d loaded, %d built; want %d", who, got.VisitedBy(who), want.VisitedBy(who), n)
				}
			}
			for id, n := range tt.wantCampaign {
				if c := got.Household(id).CampaignVisits; c != n {
					t.Errorf("%s: %d campaign visits, want %d", id, c, n)
				}
			}
			var open []string
			for _, h := range got.Households {
				if h.FollowUp != nil {
					open = append(open, h.ID)
				}
			}
			if !slices.Equal(open, tt.wantFollowUp) {
				t.Errorf("follow-ups open for %v, want %v", open, tt.wantFollowUp)
			}
			dueOf := func(a *fieldwork.Analysis) (out []string) {
				for _, d := range a.Due(now) {
					out = append(out, d.Kind.String()+" "+d.Household.ID)
				}
				return out
			}
			if g, w := dueOf(got), dueOf(want); !slices.Equal(g, w) {
				t.Errorf("Due\n got  %v\n want %v", g, w)
			}
		})
	}
}

func TestAddVisitsMatchesAddVisit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		visits []se.VisitView // plain visits, all to hh1
	}{
		{"none", nil},
		{"one in the window", []se.VisitView{visit(1, hh1, apr(2, 10))}},
		{"two in the window by two visitors", []se.VisitView{visit(1, hh1, apr(2, 10)), visit(2, hh1, apr(9, 10), by(workerB))}},
		{"one before, one in", []se.VisitView{visit(1, hh1, mar(2, 10)), visit(2, hh1, apr(9, 10))}},
		{"only before the window", []se.VisitView{visit(1, hh1, mar(2, 10)), visit(2, hh1, mar(9, 10))}},
		{"at both edges", []se.VisitView{visit(1, hh1, campStart), visit(2, hh1, campEnd)}},
	}
	for _, tt := range tests {
		for _, withCampaign := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/campaign=%v", tt.name, withCampaign), func(t *testing.T) {
				t.Parallel()
				var c *se.Campaign
				if withCampaign {
					c = campaign(t, nil)
				}
				one := fieldwork.NewBuilder(c, categories())
				sum := fieldwork.NewBuilder(c, categories())
				for _, b := range []*fieldwork.Builder{one, sum} {
					b.AddHousehold(fieldwork.Household{ID: hh1, GridID: grid1}, []string{"petitioner"})
				}
				type agg struct {
					last     time.Time
					inWindow int
				}
				sums := map[string]*agg{}
				for i := range tt.visits {
					v := tt.visits[i]
					one.AddVisit(hh1, true, &v)
					s := sums[v.VisitorID]
					if s == nil {
						s = &agg{}
						sums[v.VisitorID] = s
					}
					if v.VisitedAt.After(s.last) {
						s.last = v.VisitedAt
					}
					if !v.VisitedAt.Before(campStart) && v.VisitedAt.Before(campEnd) {
						s.inWindow++
					}
				}
				for who, s := range sums {
					sum.AddVisits(hh1, who, s.last, s.inWindow)
				}
				sum.AddVisits(hhOut, workerA, apr(2, 10), 1) // outside the scope: ignored
				a, b := one.Finish(), sum.Finish()
				ha, hb := household(t, a, hh1), household(t, b, hh1)
				if !ha.LastVisit.Equal(hb.LastVisit) || ha.CampaignVisits != hb.CampaignVisits {
					t.Errorf("summed: last %s, %d in campaign; one by one: last %s, %d", hb.LastVisit, hb.CampaignVisits, ha.LastVisit, ha.CampaignVisits)
				}
				if !slices.Equal(a.Visitors(), b.Visitors()) {
					t.Errorf("summed visitors %v, one by one %v", b.Visitors(), a.Visitors())
				}
				for _, who := range []string{workerA, workerB} {
					if a.VisitedBy(who) != b.VisitedBy(who) {
						t.Errorf("VisitedBy(%s): summed %d, one by one %d", who, b.VisitedBy(who), a.VisitedBy(who))
					}
				}
			})
		}
	}
}
