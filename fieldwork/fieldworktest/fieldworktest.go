// Package fieldworktest is the conformance suite of fieldwork.Rows. Run
// stores scenarios of households, tags, visits and amendments through the
// backend, loads them with fieldwork.Load and holds the analysis to what
// the Builder makes of the same rows, so that every backend (the statedb
// tables on SQLite now, PostgreSQL later) feeds the field rules alike:
//
//	func TestFieldRows(t *testing.T) {
//		fieldworktest.Run(t, func(t *testing.T, b *syncengine.Bundle, grids []string) fieldwork.Rows { ... })
//	}
//
// Every subtest opens its own database and keeps its data small: backends
// run this suite under -race.
package fieldworktest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	se "github.com/doorbook/doorbook/syncengine"
)

// OpenRows stores b in a fresh database for one test and returns the rows
// of the households of grids there; the database is closed when the test
// ends (t.Cleanup).
type OpenRows func(t *testing.T, b *se.Bundle, grids []string) fieldwork.Rows

// Run runs the conformance suite over the rows open returns.
func Run(t *testing.T, open OpenRows) {
	now := func(t *testing.T, b *se.Bundle, grids []string, _, _ time.Time) fieldwork.Rows {
		return open(t, b, grids)
	}
	t.Run("LoadAgreesWithBuilder", func(t *testing.T) { testLoadAgreesWithBuilder(t, now, true) })
	t.Run("CallbackErrorStops", func(t *testing.T) { testCallbackErrorStops(t, now) })
}

// OpenRowsNow is OpenRows for rows that answer one window of plain visits,
// [from, to), and no until (fieldwork.Snapshot).
type OpenRowsNow func(t *testing.T, b *se.Bundle, grids []string, from, to time.Time) fieldwork.Rows

// RunNow runs the conformance suite over rows that answer only the window
// open is given, as of now.
func RunNow(t *testing.T, open OpenRowsNow) {
	t.Run("LoadAgreesWithBuilder", func(t *testing.T) { testLoadAgreesWithBuilder(t, open, false) })
	t.Run("CallbackErrorStops", func(t *testing.T) { testCallbackErrorStops(t, open) })
}

// Fixed ids of the suite.
const (
	campaignID = "00000000-0000-7000-8000-00000000c001"
	workerA    = "00000000-0000-7000-8000-00000000b001"
	workerB    = "00000000-0000-7000-8000-00000000b002"
	grid1      = "00000000-0000-7000-8000-00000000a001"
	grid2      = "00000000-0000-7000-8000-00000000a002"
	hh1        = "00000000-0000-7000-8000-000000000001"
	hh2        = "00000000-0000-7000-8000-000000000002"
	hh3        = "00000000-0000-7000-8000-000000000003"
	hh4        = "00000000-0000-7000-8000-000000000004"
	hh5        = "00000000-0000-7000-8000-000000000005"
)

// The campaign runs through April 2026: [Apr 1 00:00, May 1 00:00) UTC.
var (
	campStart = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	campEnd   = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
)

// apr is a time on day d of April 2026, at hour h UTC.
func apr(d, h int) time.Time { return time.Date(2026, 4, d, h, 0, 0, 0, time.UTC) }

// mar is a time on day d of March 2026, at hour h UTC (before the campaign).
func mar(d, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.UTC) }

func clock(n uint64) se.Clock { return se.Clock{HLC: n, Node: 1} }

// recordedAt is the clock of a write made at t.
func recordedAt(t time.Time) se.Clock { return se.Clock{HLC: se.PackHLC(t.UnixMilli(), 0), Node: 1} }

// visitID is the id of the n-th visit of a test.
func visitID(n int) string { return fmt.Sprintf("00000000-0000-7000-8000-0000000f%04d", n) }

// categories is the catalogue of the suite.
func categories() []se.Category {
	cat := func(code, parent string, days int64, key bool) se.Category {
		return se.Category{
			Code:        code,
			NameEN:      se.NewRegister(code, clock(1)),
			ParentCode:  se.NewRegister(parent, clock(1)),
			RevisitDays: se.NewRegister(days, clock(1)),
			KeyGroup:    se.NewRegister(key, clock(1)),
		}
	}
	return []se.Category{
		cat("petitioner", "", 30, true),
		cat("key_person", "", 30, true),
		cat("drug_user", "key_person", 0, false), // inherits 30 days, key group
		cat("vulnerable", "", 90, false),
		cat("notable", "", 180, false),
	}
}

var (
	qSatisfied = se.Question{Code: "satisfied", TextEN: "Satisfied?", Scale: 5, PositiveFrom: 4}
	qSafe      = se.Question{Code: "safe", TextEN: "Feel safe?", Scale: 10, PositiveFrom: 7}
)

// Campaign is a campaign with the window of the suite's: a backend that
// keeps sums per campaign window stores it, to be held to the contract
// with its sums as well as without them.
func Campaign() se.Campaign {
	return se.Campaign{
		ID:       "00000000-0000-7000-8000-00000000c0ff",
		Name:     se.NewRegister("April", clock(1)),
		StartsAt: se.NewRegister(campStart.UnixMilli(), clock(1)),
		EndsAt:   se.NewRegister(campEnd.UnixMilli(), clock(1)),
	}
}

// campaign is the April campaign with a questionnaire.
func campaign(tb testing.TB, qs ...se.Question) *se.Campaign {
	tb.Helper()
	questionnaire, err := se.EncodeQuestionnaire(qs)
	if err != nil {
		tb.Fatalf("EncodeQuestionnaire: %v", err)
	}
	return &se.Campaign{
		ID:            campaignID,
		Name:          se.NewRegister("April visits", clock(1)),
		StartsAt:      se.NewRegister(campStart.UnixMilli(), clock(1)),
		EndsAt:        se.NewRegister(campEnd.UnixMilli(), clock(1)),
		Quotas:        se.NewRegister(se.EncodeQuotas(nil), clock(1)),
		Questionnaire: se.NewRegister(questionnaire, clock(1)),
	}
}

// hh is a household of a scenario.
type hh struct {
	id, grid, address string
	tags              []string
	// members is the ledger's member count, persons how many are listed
	// (one more deleted, which does not count), the first migrants of
	// them migrants; movedAway more have moved away.
	members                      int64
	persons, migrants, movedAway int
}

// stored is a scenario as a backend stores it.
type stored struct {
	households []hh
	deleted    []string // households stored with their tombstone set
	visits     []se.Visit
	amendments []se.Amendment
}

// bundle is the scenario as replicated rows.
func (s stored) bundle() *se.Bundle {
	var b se.Bundle
	for i, h := range s.households {
		row := se.Household{
			ID: h.id, GridID: se.NewRegister(h.grid, clock(1)), Address: se.NewRegister(h.address, clock(1)),
			Deleted: se.NewRegister(slices.Contains(s.deleted, h.id), clock(1)),
		}
		if h.members > 0 {
			row.MemberCount = se.NewRegister(h.members, clock(1))
		}
		b.Households = append(b.Households, row)
		for j := range h.persons + 1 + h.movedAway {
			residence := ""
			switch {
			case j < h.migrants:
				residence = se.ResidenceMigrant
			case j > h.persons:
				residence = se.ResidenceMovedAway
			}
			b.Persons = append(b.Persons, se.Person{ID: fmt.Sprintf("00000000-0000-7000-8000-00000006%02d%02d", i, j), HouseholdID: h.id,
				Name: se.NewRegister(fmt.Sprint("person ", j), clock(1)), Deleted: se.NewRegister(j == h.persons, clock(1)),
				Residence: se.NewRegister(residence, clock(1))})
		}
		for j, tag := range h.tags {
			b.Tags = append(b.Tags, se.TagElement{
				AddID: fmt.Sprintf("00000000-0000-7000-8000-00000007%02d%02d", i, j), HouseholdID: h.id, Category: tag, Clock: clock(2),
			})
		}
	}
	b.Visits, b.Amendments = s.visits, s.amendments
	return &b
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
	return expectedUntil(c, s, grids, time.Time{})
}

// expectedUntil is what the Builder makes of the rows as of until: the
// amendments recorded before it, the visits (as amended) made before it.
func expectedUntil(c *se.Campaign, s stored, grids []string, until time.Time) *fieldwork.Analysis {
	b := fieldwork.NewBuilder(c, categories())
	for _, h := range s.households {
		if slices.Contains(grids, h.grid) && !slices.Contains(s.deleted, h.id) {
			b.AddHousehold(fieldwork.Household{ID: h.id, GridID: h.grid, Address: h.address, MemberCount: h.members, Persons: h.persons,
				Migrants: h.migrants, MovedAway: h.movedAway}, slices.Clone(h.tags))
		}
	}
	for _, v := range s.visits {
		var as []se.Amendment
		for _, a := range s.amendments {
			if a.VisitID == v.ID && (until.IsZero() || a.Clock.Time().Before(until)) {
				as = append(as, a)
			}
		}
		view := se.Effective(v, as)
		if !until.IsZero() && !view.VisitedAt.Before(until) {
			continue
		}
		for ord, id := range v.HouseholdIDs {
			b.AddVisit(id, ord == 0, &view)
		}
		for _, it := range se.Items(view) {
			b.AddItem(it)
		}
	}
	return b.Finish()
}

// validate fails the test on an invalid fixture.
func (s stored) validate(tb testing.TB) {
	tb.Helper()
	for _, v := range s.visits {
		if err := v.Validate(); err != nil {
			tb.Fatalf("fixture: %v", err)
		}
	}
	for _, a := range s.amendments {
		if err := a.Validate(); err != nil {
			tb.Fatalf("fixture: %v", err)
		}
	}
}

// households are the households of the scenarios.
var households = []hh{
	{id: hh1, grid: grid1, address: "1 Oak", tags: []string{"petitioner"}, members: 3, persons: 3},
	{id: hh2, grid: grid1, address: "2 Oak", tags: []string{"vulnerable", "drug_user"}, members: 4, persons: 2, migrants: 1, movedAway: 2},
	{id: hh3, grid: grid1, address: "3 Oak"},
	{id: hh4, grid: grid2, address: "1 Elm", tags: []string{"notable"}},
	{id: hh5, grid: grid2, address: "2 Elm"},
}

func testLoadAgreesWithBuilder(t *testing.T, open OpenRowsNow, asOf bool) {
	now := apr(20, 12)
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
			campaign: campaign(t),
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
			campaign: campaign(t, qSatisfied, qSafe),
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
				amend(1, 5, se.AmendItemAssign, func(a *se.Amendment) {
					// Recorded on April 8: before it, the item is only reported.
					a.Finding, a.Unit, a.Deadline, a.Clock = 1, "gas company", apr(10, 0), recordedAt(apr(8, 9))
				}),
			}},
			grids:        []string{grid1, grid2},
			wantVisited:  map[string]int{workerA: 4, workerB: 2},
			wantCampaign: map[string]int{hh1: 2, hh2: 1, hh3: 2, hh4: 1, hh5: 1},
			wantFollowUp: []string{hh1, hh3, hh5},
		},
		{
			name:     "amended plain visits are read one by one",
			campaign: campaign(t),
			s: stored{households: households, visits: []se.Visit{
				plain(1, apr(2, 10), hh1),  // voided
				plain(2, apr(3, 10), hh2),  // moved before the campaign
				plain(3, mar(20, 10), hh3), // moved into the campaign
				plain(4, apr(4, 10), hh4),  // notes corrected
				with(plain(5, apr(2, 9), hh1), func(v *se.Visit) {
					v.RevisitReasons, v.RevisitDue = []se.RevisitReason{se.RevisitImportantRequest}, apr(10, 12)
				}),
			}, amendments: []se.Amendment{
				// Voided on April 12: as of before, the visit counts.
				amend(1, 1, se.AmendVoid, func(a *se.Amendment) { a.Clock = recordedAt(apr(12, 0)) }),
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
			campaign: campaign(t, qSatisfied),
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
			campaign: campaign(t),
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
		{
			name:        "no grids",
			campaign:    campaign(t),
			s:           stored{households: households, visits: []se.Visit{plain(1, apr(2, 10), hh1)}},
			wantVisited: map[string]int{workerA: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.s.validate(t)
			var from, to time.Time
			if tt.campaign != nil {
				from, to = tt.campaign.Window()
			}
			rows := open(t, tt.s.bundle(), tt.grids, from, to)
			got, err := fieldwork.Load(t.Context(), rows, tt.campaign, categories())
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := expected(tt.campaign, tt.s, tt.grids)
			// As of a day of the campaign, and of one before it: only the
			// visits and amendments made before count.
			for _, until := range []time.Time{apr(3, 0), apr(10, 12), mar(20, 0)} {
				if !asOf {
					break
				}
				got, err := fieldwork.LoadUntil(t.Context(), rows, tt.campaign, categories(), until)
				if err != nil {
					t.Fatalf("LoadUntil: %v", err)
				}
				want := expectedUntil(tt.campaign, tt.s, tt.grids, until)
				if g, w := fmt.Sprint(got.Figures(until, nil)), fmt.Sprint(want.Figures(until, nil)); g != w {
					t.Errorf("as of %s: Figures\n got  %s\n want %s", until, g, w)
				}
				for _, w := range want.Households {
					g := got.Household(w.ID)
					if g == nil || !g.LastVisit.Equal(w.LastVisit) || g.CampaignVisits != w.CampaignVisits || len(g.Items) != len(w.Items) {
						t.Errorf("as of %s, %s: %+v, want %+v", until, w.ID, g, w)
					}
				}
				for _, who := range want.Visitors() {
					if got.VisitedBy(who) != want.VisitedBy(who) {
						t.Errorf("as of %s: VisitedBy(%s) = %d, want %d", until, who, got.VisitedBy(who), want.VisitedBy(who))
					}
				}
			}

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
				if g.MemberCount != w.MemberCount || g.Persons != w.Persons || g.Migrants != w.Migrants || g.MovedAway != w.MovedAway {
					t.Errorf("%s: %d persons (%d migrants, %d moved away) of %d members; want %d (%d, %d) of %d", w.ID, g.Persons, g.Migrants, g.MovedAway,
						g.MemberCount, w.Persons, w.Migrants, w.MovedAway, w.MemberCount)
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
			var followUps []string
			for _, h := range got.Households {
				if h.FollowUp != nil {
					followUps = append(followUps, h.ID)
				}
			}
			if !slices.Equal(followUps, tt.wantFollowUp) {
				t.Errorf("follow-ups open for %v, want %v", followUps, tt.wantFollowUp)
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

// testCallbackErrorStops: a callback's error stops the read and comes back
// as it was, and so out of Load.
func testCallbackErrorStops(t *testing.T, open OpenRowsNow) {
	t.Parallel()
	s := stored{households: households, visits: []se.Visit{
		plain(1, apr(2, 10), hh1),
		plain(2, apr(2, 11), hh2),
		with(plain(3, apr(3, 10), hh1), func(v *se.Visit) { v.Materials = []se.Material{se.MaterialOpenLetter} }),
		with(plain(4, apr(3, 11), hh2), func(v *se.Visit) {
			v.RevisitReasons, v.RevisitDue = []se.RevisitReason{se.RevisitImportantRequest}, apr(10, 12)
		}),
	}}
	s.validate(t)
	rows := open(t, s.bundle(), []string{grid1, grid2}, campStart, campEnd)
	ctx := context.Background()
	errStop := errors.New("stop")
	calls := 0
	stop := func() error { calls++; return errStop }
	from, to := campStart, campEnd
	for _, c := range []struct {
		name string
		read func() error
	}{
		{"Households", func() error {
			return rows.Households(ctx, func(*fieldwork.HouseholdRow) error { return stop() })
		}},
		{"PlainVisits", func() error {
			return rows.PlainVisits(ctx, from, to, time.Time{}, func(*fieldwork.VisitAggregate) error { return stop() })
		}},
		{"SpecialVisits", func() error {
			return rows.SpecialVisits(ctx, func(*fieldwork.VisitRow) error { return stop() })
		}},
	} {
		calls = 0
		if err := c.read(); !errors.Is(err, errStop) || calls != 1 {
			t.Errorf("%s: %v after %d calls, want the callback's error after 1", c.name, err, calls)
		}
	}
}
