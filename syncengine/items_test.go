package syncengine_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	se "github.com/doorbook/doorbook/syncengine"
)

// Fixed ids of the item and reference tests.
const (
	itVisitID   = "00000000-0000-7000-8000-000000000f01"
	itVisitorID = "00000000-0000-7000-8000-000000000e01"
	itAuthorID  = "00000000-0000-7000-8000-000000000e02"
	itHH1       = "00000000-0000-7000-8000-000000000001"
	itHH2       = "00000000-0000-7000-8000-000000000002"
)

// itAt is when the visit of the item tests took place.
var itAt = time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)

// itDay is a time on day d of April 2026, at noon UTC.
func itDay(d int) time.Time { return time.Date(2026, 4, d, 12, 0, 0, 0, time.UTC) }

// itClock is a clock of node 1.
func itClock(n uint64) se.Clock { return se.Clock{HLC: n, Node: 1} }

// itAmendmentID is the id of the n-th amendment of an item test.
func itAmendmentID(n int) string { return fmt.Sprintf("00000000-0000-7000-8000-0000000a%04d", n) }

// itVisit is a group visit of two households that found a dispute (0, tracked),
// a hardship (1, not tracked) and a hazard (2, tracked).
func itVisit() se.Visit {
	return se.Visit{
		ID: itVisitID, HouseholdIDs: []string{itHH1, itHH2}, VisitorID: itVisitorID,
		VisitedAt: itAt, Form: se.FormTalk, Clock: itClock(100),
		Findings: []se.Finding{
			{Kind: se.FindingDispute, Note: "boundary quarrel"},
			{Kind: se.FindingHardship, Note: "no heating"},
			{Kind: se.FindingHazard, Note: "loose wiring"},
		},
	}
}

// itUpdate is the n-th amendment: an item update of finding at hlc.
func itUpdate(n int, kind se.AmendmentKind, finding uint32, hlc uint64, reason string) se.Amendment {
	return se.Amendment{
		ID: itAmendmentID(n), VisitID: itVisitID, AuthorID: itAuthorID, Kind: kind,
		Reason: reason, Finding: finding, Clock: itClock(hlc),
	}
}

// itAssign is the n-th amendment: an assignment of finding to unit by deadline.
func itAssign(n int, finding uint32, hlc uint64, unit string, deadline time.Time) se.Amendment {
	a := itUpdate(n, se.AmendItemAssign, finding, hlc, "assigned to "+unit)
	a.Unit, a.Deadline = unit, deadline
	return a
}

// itemState is what the tests check of an item's progress.
type itemState struct {
	finding   uint32
	state     se.ItemState
	unit      string
	deadline  time.Time
	stateNote string
}

func stateOf(it se.Item) itemState {
	return itemState{it.Finding, it.State, it.Unit, it.Deadline, it.StateNote}
}

func (s itemState) String() string {
	return fmt.Sprintf("{finding %d %s unit %q by %s note %q}", s.finding, s.state, s.unit, s.deadline.Format(time.DateOnly), s.stateNote)
}

func equalStates(got []se.Item, want []itemState) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g := stateOf(got[i])
		if g.finding != want[i].finding || g.state != want[i].state || g.unit != want[i].unit ||
			!g.deadline.Equal(want[i].deadline) || g.stateNote != want[i].stateNote {
			return false
		}
	}
	return true
}

func statesOf(items []se.Item) []itemState {
	out := make([]itemState, len(items))
	for i, it := range items {
		out[i] = stateOf(it)
	}
	return out
}

// itOrders returns every order of xs.
func itOrders[T any](xs []T) [][]T {
	if len(xs) <= 1 {
		return [][]T{append([]T(nil), xs...)}
	}
	var out [][]T
	for i := range xs {
		rest := append(append([]T(nil), xs[:i]...), xs[i+1:]...)
		for _, p := range itOrders(rest) {
			out = append(out, append([]T{xs[i]}, p...))
		}
	}
	return out
}

// TestItemsStateMergesByMax: assign, resolve and close of one item end
// closed whatever their clocks and whatever order they arrive in.
func TestItemsStateMergesByMax(t *testing.T) {
	t.Parallel()
	kinds := []se.AmendmentKind{se.AmendItemAssign, se.AmendItemResolve, se.AmendItemClose}
	names := map[se.AmendmentKind]string{se.AmendItemAssign: "assign", se.AmendItemResolve: "resolve", se.AmendItemClose: "close"}
	deadline := itDay(15)
	for _, clocks := range itOrders([]uint64{10, 11, 12}) {
		// clocks[i] is the clock of kinds[i]; name the row by clock order.
		order := make([]string, 3)
		for i, c := range clocks {
			order[c-10] = names[kinds[i]]
		}
		updates := []se.Amendment{
			itAssign(1, 2, clocks[0], "street office", deadline),
			itUpdate(2, se.AmendItemResolve, 2, clocks[1], "rewired"),
			itUpdate(3, se.AmendItemClose, 2, clocks[2], "checked by the leader"),
		}
		want := []itemState{
			{finding: 0, state: se.ItemReported},
			{finding: 2, state: se.ItemClosed, unit: "street office", deadline: deadline, stateNote: "checked by the leader"},
		}
		t.Run("clock order "+strings.Join(order, "<"), func(t *testing.T) {
			t.Parallel()
			for _, arrival := range itOrders(updates) {
				got := se.Items(se.Effective(itVisit(), arrival))
				if !equalStates(got, want) {
					var ids []string
					for _, a := range arrival {
						ids = append(ids, names[a.Kind])
					}
					t.Errorf("arriving %v: items %v, want %v", ids, statesOf(got), want)
				}
			}
		})
	}
}

func TestItems(t *testing.T) {
	t.Parallel()
	voidVisit := se.Amendment{ID: itAmendmentID(9), VisitID: itVisitID, AuthorID: itAuthorID, Kind: se.AmendVoid, Reason: "wrong household", Clock: itClock(50)}
	notes := "corrected notes"
	correct := se.Amendment{ID: itAmendmentID(8), VisitID: itVisitID, AuthorID: itAuthorID, Kind: se.AmendCorrect, Reason: "typo", Notes: &notes, Clock: itClock(40)}
	tests := []struct {
		name       string
		visit      func(*se.Visit)
		amendments []se.Amendment
		want       []itemState
	}{
		{
			name: "no updates: tracked findings reported",
			want: []itemState{{finding: 0, state: se.ItemReported}, {finding: 2, state: se.ItemReported}},
		},
		{
			name:       "assignment",
			amendments: []se.Amendment{itAssign(1, 0, 10, "mediation committee", itDay(10))},
			want: []itemState{
				{finding: 0, state: se.ItemAssigned, unit: "mediation committee", deadline: itDay(10), stateNote: "assigned to mediation committee"},
				{finding: 2, state: se.ItemReported},
			},
		},
		{
			name:       "resolve without assignment",
			amendments: []se.Amendment{itUpdate(1, se.AmendItemResolve, 2, 10, "fixed")},
			want:       []itemState{{finding: 0, state: se.ItemReported}, {finding: 2, state: se.ItemResolved, stateNote: "fixed"}},
		},
		{
			name:       "close without assignment",
			amendments: []se.Amendment{itUpdate(1, se.AmendItemClose, 0, 10, "settled")},
			want:       []itemState{{finding: 0, state: se.ItemClosed, stateNote: "settled"}, {finding: 2, state: se.ItemReported}},
		},
		{
			name: "the last assignment by clock gives unit and deadline",
			amendments: []se.Amendment{
				itAssign(1, 2, 20, "fire brigade", itDay(20)),
				itAssign(2, 2, 10, "street office", itDay(10)),
			},
			want: []itemState{
				{finding: 0, state: se.ItemReported},
				{finding: 2, state: se.ItemAssigned, unit: "fire brigade", deadline: itDay(20), stateNote: "assigned to fire brigade"},
			},
		},
		{
			name: "an assignment after the resolution moves the unit, not the state",
			amendments: []se.Amendment{
				itUpdate(1, se.AmendItemResolve, 2, 10, "fixed"),
				itAssign(2, 2, 20, "street office", itDay(10)),
			},
			want: []itemState{
				{finding: 0, state: se.ItemReported},
				{finding: 2, state: se.ItemResolved, unit: "street office", deadline: itDay(10), stateNote: "fixed"},
			},
		},
		{
			name: "two updates to the same state: the newer note",
			amendments: []se.Amendment{
				itUpdate(2, se.AmendItemResolve, 2, 20, "fixed again"),
				itUpdate(1, se.AmendItemResolve, 2, 10, "fixed"),
			},
			want: []itemState{{finding: 0, state: se.ItemReported}, {finding: 2, state: se.ItemResolved, stateNote: "fixed again"}},
		},
		{
			name: "each item moves on its own",
			amendments: []se.Amendment{
				itUpdate(1, se.AmendItemClose, 0, 10, "settled"),
				itAssign(2, 2, 11, "street office", itDay(10)),
			},
			want: []itemState{
				{finding: 0, state: se.ItemClosed, stateNote: "settled"},
				{finding: 2, state: se.ItemAssigned, unit: "street office", deadline: itDay(10), stateNote: "assigned to street office"},
			},
		},
		{
			name:       "an update naming an untracked finding is ignored",
			amendments: []se.Amendment{itUpdate(1, se.AmendItemClose, 1, 10, "helped")},
			want:       []itemState{{finding: 0, state: se.ItemReported}, {finding: 2, state: se.ItemReported}},
		},
		{
			name:       "an update naming a finding past the last is ignored",
			amendments: []se.Amendment{itUpdate(1, se.AmendItemClose, 3, 10, "?"), itUpdate(2, se.AmendItemClose, se.MaxFindings, 11, "?")},
			want:       []itemState{{finding: 0, state: se.ItemReported}, {finding: 2, state: se.ItemReported}},
		},
		{
			name:       "a correction does not touch the items",
			amendments: []se.Amendment{correct},
			want:       []itemState{{finding: 0, state: se.ItemReported}, {finding: 2, state: se.ItemReported}},
		},
		{
			name:       "a voided visit has no items",
			amendments: []se.Amendment{voidVisit},
		},
		{
			name:       "a visit voided after an assignment has no items",
			amendments: []se.Amendment{itAssign(1, 2, 10, "street office", itDay(10)), voidVisit},
		},
		{
			name: "a visit without tracked findings has no items",
			visit: func(v *se.Visit) {
				v.Findings = []se.Finding{{Kind: se.FindingHardship}, {Kind: se.FindingHelpRequest}}
			},
		},
		{
			name:       "a visit without findings ignores updates",
			visit:      func(v *se.Visit) { v.Findings = nil },
			amendments: []se.Amendment{itUpdate(1, se.AmendItemClose, 0, 10, "settled")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := itVisit()
			if tt.visit != nil {
				tt.visit(&v)
			}
			got := se.Items(se.Effective(v, tt.amendments))
			if !equalStates(got, tt.want) {
				t.Errorf("Items = %v, want %v", statesOf(got), tt.want)
			}
		})
	}
}

func TestItemsReport(t *testing.T) {
	t.Parallel()
	moved := itDay(2)
	view := se.Effective(itVisit(), []se.Amendment{{
		ID: itAmendmentID(1), VisitID: itVisitID, AuthorID: itAuthorID, Kind: se.AmendCorrect,
		Reason: "wrong date", VisitedAt: moved, Clock: itClock(10),
	}})
	items := se.Items(view)
	if len(items) != 2 {
		t.Fatalf("%d items, want 2", len(items))
	}
	view.HouseholdIDs[0] = "changed"
	tests := []struct {
		name string
		it   se.Item
		kind se.FindingKind
		note string
	}{
		{"dispute", items[0], se.FindingDispute, "boundary quarrel"},
		{"hazard", items[1], se.FindingHazard, "loose wiring"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			it := tt.it
			if it.Kind != tt.kind || it.Note != tt.note || it.VisitID != itVisitID || it.ReportedBy != itVisitorID {
				t.Errorf("item %+v, want a %s %q of visit %s by %s", it, tt.kind, tt.note, itVisitID, itVisitorID)
			}
			if !it.ReportedAt.Equal(moved) {
				t.Errorf("ReportedAt = %s, want the corrected date %s", it.ReportedAt, moved)
			}
			if len(it.HouseholdIDs) != 2 || it.HouseholdIDs[0] != itHH1 || it.HouseholdIDs[1] != itHH2 {
				t.Errorf("HouseholdIDs = %q, want both households (not aliasing the visit's)", it.HouseholdIDs)
			}
		})
	}
}

func TestItemOverdue(t *testing.T) {
	t.Parallel()
	now := itDay(15)
	tests := []struct {
		name     string
		state    se.ItemState
		deadline time.Time
		want     bool
	}{
		{"reported without deadline", se.ItemReported, time.Time{}, false},
		{"assigned, deadline past", se.ItemAssigned, itDay(10), true},
		{"assigned, deadline just past", se.ItemAssigned, now.Add(-time.Nanosecond), true},
		{"assigned, deadline now", se.ItemAssigned, now, false},
		{"assigned, deadline ahead", se.ItemAssigned, itDay(20), false},
		{"reported (still open) with a past deadline", se.ItemReported, itDay(10), true},
		{"resolved, deadline past", se.ItemResolved, itDay(10), false},
		{"closed, deadline past", se.ItemClosed, itDay(10), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			it := se.Item{State: tt.state, Deadline: tt.deadline}
			if got := it.Overdue(now); got != tt.want {
				t.Errorf("Overdue = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestItemState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		state    se.ItemState
		wantName string
		wantOpen bool
	}{
		{se.ItemReported, "reported", true},
		{se.ItemAssigned, "assigned", true},
		{se.ItemResolved, "resolved", false},
		{se.ItemClosed, "closed", false},
		{se.ItemState(7), "item state(7)", false},
	}
	for _, tt := range tests {
		t.Run(tt.wantName, func(t *testing.T) {
			t.Parallel()
			if got := tt.state.String(); got != tt.wantName {
				t.Errorf("String() = %q, want %q", got, tt.wantName)
			}
			if got := tt.state.Open(); got != tt.wantOpen {
				t.Errorf("Open() = %v, want %v", got, tt.wantOpen)
			}
		})
	}
}

func TestAmendmentValidateItemUpdates(t *testing.T) {
	t.Parallel()
	notes := "new notes"
	assign := func() se.Amendment { return itAssign(1, 2, 10, "street office", itDay(15)) }
	resolve := func() se.Amendment { return itUpdate(1, se.AmendItemResolve, 2, 10, "fixed") }
	closeOff := func() se.Amendment { return itUpdate(1, se.AmendItemClose, 2, 10, "checked") }
	correction := func() se.Amendment {
		return se.Amendment{ID: itAmendmentID(1), VisitID: itVisitID, AuthorID: itAuthorID, Kind: se.AmendCorrect, Reason: "typo", Notes: &notes, Clock: itClock(10)}
	}
	voidIt := func() se.Amendment {
		return se.Amendment{ID: itAmendmentID(1), VisitID: itVisitID, AuthorID: itAuthorID, Kind: se.AmendVoid, Reason: "duplicate", Clock: itClock(10)}
	}
	tests := []struct {
		name    string
		base    func() se.Amendment
		edit    func(*se.Amendment)
		wantErr error
	}{
		{"assign", assign, func(*se.Amendment) {}, nil},
		{"assign without unit", assign, func(a *se.Amendment) { a.Unit = "" }, se.ErrInvalid},
		{"assign without deadline", assign, func(a *se.Amendment) { a.Deadline = time.Time{} }, se.ErrInvalid},
		{"assign with an implausible deadline", assign, func(a *se.Amendment) { a.Deadline = time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC) }, se.ErrInvalid},
		{"assign with a far deadline", assign, func(a *se.Amendment) { a.Deadline = time.Date(2201, 1, 1, 0, 0, 0, 0, time.UTC) }, se.ErrInvalid},
		{"assign with a unit too long", assign, func(a *se.Amendment) { a.Unit = strings.Repeat("u", 257) }, se.ErrLimit},
		{"assign with a unit not UTF-8", assign, func(a *se.Amendment) { a.Unit = "caf\xe9" }, se.ErrInvalid},
		{"assign without clock", assign, func(a *se.Amendment) { a.Clock = se.Clock{} }, se.ErrInvalid},
		{"assign of the last finding", assign, func(a *se.Amendment) { a.Finding = se.MaxFindings - 1 }, nil},
		{"assign of a finding out of range", assign, func(a *se.Amendment) { a.Finding = se.MaxFindings }, se.ErrInvalid},
		{"assign correcting notes", assign, func(a *se.Amendment) { a.Notes = &notes }, se.ErrInvalid},
		{"assign correcting the form", assign, func(a *se.Amendment) { a.Form = se.FormPhone }, se.ErrInvalid},
		{"assign correcting the date", assign, func(a *se.Amendment) { a.VisitedAt = itDay(2) }, se.ErrInvalid},
		{"assign with a bad author", assign, func(a *se.Amendment) { a.AuthorID = "me" }, se.ErrInvalid},
		{"resolve", resolve, func(*se.Amendment) {}, nil},
		{"resolve without a reason", resolve, func(a *se.Amendment) { a.Reason = "" }, nil},
		{"resolve with a reason too long", resolve, func(a *se.Amendment) { a.Reason = strings.Repeat("r", 4001) }, se.ErrLimit},
		{"resolve naming a unit", resolve, func(a *se.Amendment) { a.Unit = "street office" }, se.ErrInvalid},
		{"resolve with a deadline", resolve, func(a *se.Amendment) { a.Deadline = itDay(15) }, se.ErrInvalid},
		{"close", closeOff, func(*se.Amendment) {}, nil},
		{"close naming a unit", closeOff, func(a *se.Amendment) { a.Unit = "street office" }, se.ErrInvalid},
		{"close with a deadline", closeOff, func(a *se.Amendment) { a.Deadline = itDay(15) }, se.ErrInvalid},
		{"close without clock", closeOff, func(a *se.Amendment) { a.Clock = se.Clock{} }, se.ErrInvalid},
		{"correction", correction, func(*se.Amendment) {}, nil},
		{"correction naming a finding", correction, func(a *se.Amendment) { a.Finding = 1 }, se.ErrInvalid},
		{"correction naming a unit", correction, func(a *se.Amendment) { a.Unit = "street office" }, se.ErrInvalid},
		{"correction with a deadline", correction, func(a *se.Amendment) { a.Deadline = itDay(15) }, se.ErrInvalid},
		{"void", voidIt, func(*se.Amendment) {}, nil},
		{"void naming a finding", voidIt, func(a *se.Amendment) { a.Finding = 2 }, se.ErrInvalid},
		{"void with a deadline", voidIt, func(a *se.Amendment) { a.Deadline = itDay(15) }, se.ErrInvalid},
		{"unknown kind", voidIt, func(a *se.Amendment) { a.Kind = 6 }, se.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := tt.base()
			tt.edit(&a)
			err := a.Validate()
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Validate: %v, want nil", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate: %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestParseItemUpdate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    se.AmendmentKind
		wantErr bool
	}{
		{"assigned", se.AmendItemAssign, false},
		{"resolved", se.AmendItemResolve, false},
		{"closed", se.AmendItemClose, false},
		{"reported", 0, true}, // a state, but not one an update moves to
		{"Assigned", 0, true},
		{"assign", 0, true},
		{"", 0, true},
		{"bogus", 0, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			t.Parallel()
			got, err := se.ParseItemUpdate(tt.in)
			if tt.wantErr {
				if !errors.Is(err, se.ErrInvalid) {
					t.Errorf("ParseItemUpdate = %v, %v; want ErrInvalid", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseItemUpdate = %v, %v; want %v", got, err, tt.want)
			}
			if !got.IsItemUpdate() {
				t.Errorf("%v is not an item update", got)
			}
		})
	}
}

func TestAmendmentCheckItemUpdate(t *testing.T) {
	t.Parallel()
	v := itVisit() // dispute (0), hardship (1), hazard (2)
	tests := []struct {
		name    string
		a       se.Amendment
		wantErr error
	}{
		{"update of a tracked finding", itUpdate(1, se.AmendItemResolve, 0, 10, "settled"), nil},
		{"assignment of the last tracked finding", itAssign(1, 2, 10, "street office", itDay(10)), nil},
		{"update of an untracked finding", itUpdate(1, se.AmendItemClose, 1, 10, "helped"), se.ErrNotFound},
		{"update past the findings", itUpdate(1, se.AmendItemClose, 3, 10, "?"), se.ErrNotFound},
		{"a correction is not checked", se.Amendment{ID: itAmendmentID(1), VisitID: itVisitID, Kind: se.AmendCorrect, Finding: 7}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.a.CheckItemUpdate(&v)
			if (tt.wantErr == nil) != (err == nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("CheckItemUpdate: %v, want %v", err, tt.wantErr)
			}
		})
	}
	t.Run("a visit without findings", func(t *testing.T) {
		t.Parallel()
		bare := itVisit()
		bare.Findings = nil
		a := itUpdate(1, se.AmendItemClose, 0, 10, "?")
		if err := a.CheckItemUpdate(&bare); !errors.Is(err, se.ErrNotFound) {
			t.Errorf("CheckItemUpdate: %v, want ErrNotFound", err)
		}
	})
}

func TestEscalatedTo(t *testing.T) {
	deadline := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, tt := range []struct {
		name  string
		state se.ItemState
		noDue bool
		at    time.Duration
		want  int32
	}{
		{"before its deadline", se.ItemAssigned, false, -day, 0},
		{"at its deadline", se.ItemAssigned, false, 0, 0},
		{"just past it: the community", se.ItemAssigned, false, time.Minute, 3},
		{"a period on: the street", se.ItemAssigned, false, se.EscalationPeriod, 2},
		{"two periods on: the district", se.ItemAssigned, false, 2 * se.EscalationPeriod, 1},
		{"a year on: still the district", se.ItemAssigned, false, 365 * day, 1},
		{"resolved, past its deadline", se.ItemResolved, false, 30 * day, 0},
		{"closed off", se.ItemClosed, false, 30 * day, 0},
		{"no deadline", se.ItemReported, true, 30 * day, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			it := se.Item{State: tt.state, Deadline: deadline}
			if tt.noDue {
				it.Deadline = time.Time{}
			}
			if got := it.EscalatedTo(deadline.Add(tt.at)); got != tt.want {
				t.Errorf("EscalatedTo(deadline%+v) = %d, want %d", tt.at, got, tt.want)
			}
		})
	}
}

// TestEscalatedAfter: the installation's own period between two levels.
func TestEscalatedAfter(t *testing.T) {
	deadline := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	it := se.Item{State: se.ItemAssigned, Deadline: deadline}
	for _, tt := range []struct {
		period, at time.Duration
		want       int32
	}{
		{3 * day, time.Hour, 3},
		{3 * day, 3*day - time.Millisecond, 3},
		{3 * day, 3 * day, 2},
		{3 * day, 6 * day, 1},
		{14 * day, 13 * day, 3},
		{14 * day, 14 * day, 2},
		{14 * day, 27 * day, 2},
		{14 * day, 28 * day, 1},
		{0, 7 * day, 2}, // the default
		{-day, 7 * day, 2},
	} {
		if got := it.EscalatedAfter(deadline.Add(tt.at), tt.period); got != tt.want {
			t.Errorf("EscalatedAfter(deadline%+v, %s) = %d, want %d", tt.at, tt.period, got, tt.want)
		}
	}
}

// TestCoUnits: an assignment names a lead unit and at most MaxCoUnits
// others, none empty, none the lead, none twice; other updates name none.
// The item takes the newest assignment's co-units.
func TestCoUnits(t *testing.T) {
	deadline := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	assign := func(co ...string) se.Amendment {
		return se.Amendment{ID: "00000000-0000-7000-8000-0000000000a1", VisitID: "00000000-0000-7000-8000-0000000000b1",
			AuthorID: "00000000-0000-7000-8000-0000000000c1", Kind: se.AmendItemAssign, Unit: "消防中队", Deadline: deadline,
			CoUnits: co, Clock: se.Clock{HLC: 1, Node: 1}}
	}
	nine := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}
	for _, tc := range []struct {
		name string
		a    se.Amendment
		err  error
	}{
		{"none", assign(), nil},
		{"two", assign("物业公司", "社区居委会"), nil},
		{"the lead again", assign("消防中队"), se.ErrInvalid},
		{"twice", assign("物业公司", "物业公司"), se.ErrInvalid},
		{"empty", assign(""), se.ErrInvalid},
		{"nine", assign(nine...), se.ErrLimit},
		{"on a resolve", func() se.Amendment {
			a := assign("物业公司")
			a.Kind, a.Unit, a.Deadline = se.AmendItemResolve, "", time.Time{}
			return a
		}(), se.ErrInvalid},
	} {
		err := tc.a.Validate()
		if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	text := se.EncodeCoUnits([]string{"物业公司", "社区居委会"})
	if back, err := se.DecodeCoUnits(text); err != nil || !slices.Equal(back, []string{"物业公司", "社区居委会"}) {
		t.Errorf("co-units %q read back as %q (%v)", text, back, err)
	}
	if se.EncodeCoUnits(nil) != "" {
		t.Error("no co-units are not stored as empty")
	}
	if _, err := se.DecodeCoUnits("[broken"); !errors.Is(err, se.ErrInvalid) {
		t.Errorf("broken co-units: %v", err)
	}
}
