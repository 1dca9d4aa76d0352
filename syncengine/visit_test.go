package syncengine_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	se "github.com/doorbook/doorbook/syncengine"
)

const (
	visitID   = "0195a1b2-0000-7000-8000-00000000f001"
	visitorID = "0195a1b2-0000-7000-8000-00000000e001"
	authorID  = "0195a1b2-0000-7000-8000-00000000e002"
)

var visitedAt = time.Date(2025, 5, 1, 10, 30, 0, 0, time.UTC)

// validVisit is an at-the-door visit of one household.
func validVisit() se.Visit {
	return se.Visit{
		ID:           visitID,
		HouseholdIDs: []string{hhID},
		VisitorID:    visitorID,
		VisitedAt:    visitedAt,
		Form:         se.FormInPerson,
		Notes:        "talked about the heating",
		Clock:        clk(100, nodeA),
	}
}

// amendmentID is the id of the n-th amendment of a test.
func amendmentID(n int) string { return fmt.Sprintf("0195a1b2-0000-7000-8000-%012x", 0xa000+n) }

func TestVisitValidate(t *testing.T) {
	t.Parallel()
	many := make([]string, se.MaxVisitHouseholds+1)
	for i := range many {
		many[i] = fmt.Sprintf("0195a1b2-0000-7000-8000-%012x", i)
	}
	tests := []struct {
		name    string
		edit    func(*se.Visit)
		wantErr error
	}{
		{"valid", func(*se.Visit) {}, nil},
		{"phone", func(v *se.Visit) { v.Form = se.FormPhone }, nil},
		{"group form for several households", func(v *se.Visit) { v.Form = se.FormTalk; v.HouseholdIDs = []string{hhID, hhID2} }, nil},
		{"group form for one household", func(v *se.Visit) { v.Form = se.FormQASession }, nil},
		{"meeting at the limit", func(v *se.Visit) { v.Form = se.FormOpinionMeeting; v.HouseholdIDs = many[:se.MaxVisitHouseholds] }, nil},
		{"in person for two households", func(v *se.Visit) { v.HouseholdIDs = []string{hhID, hhID2} }, se.ErrInvalid},
		{"phone for two households", func(v *se.Visit) { v.Form = se.FormPhone; v.HouseholdIDs = []string{hhID, hhID2} }, se.ErrInvalid},
		{"over the household limit", func(v *se.Visit) { v.Form = se.FormTalk; v.HouseholdIDs = many }, se.ErrLimit},
		{"no household", func(v *se.Visit) { v.HouseholdIDs = nil }, se.ErrInvalid},
		{"household listed twice", func(v *se.Visit) { v.Form = se.FormTalk; v.HouseholdIDs = []string{hhID, hhID2, hhID} }, se.ErrInvalid},
		{"bad visit id", func(v *se.Visit) { v.ID = "visit-1" }, se.ErrInvalid},
		{"visit id without dashes", func(v *se.Visit) { v.ID = strings.ReplaceAll(visitID, "-", "") }, se.ErrInvalid},
		{"visit id with a non-hex digit", func(v *se.Visit) { v.ID = "g" + visitID[1:] }, se.ErrInvalid},
		{"visit id with braces", func(v *se.Visit) { v.ID = "{" + visitID + "}" }, se.ErrInvalid},
		{"upper-case id", func(v *se.Visit) { v.ID = strings.ToUpper(visitID) }, nil},
		{"bad household id", func(v *se.Visit) { v.HouseholdIDs = []string{"hh"} }, se.ErrInvalid},
		{"bad second household id", func(v *se.Visit) { v.Form = se.FormTalk; v.HouseholdIDs = []string{hhID, hhID2[:35]} }, se.ErrInvalid},
		{"bad visitor id", func(v *se.Visit) { v.VisitorID = "" }, se.ErrInvalid},
		{"unspecified form", func(v *se.Visit) { v.Form = se.FormUnspecified }, se.ErrInvalid},
		{"unknown form", func(v *se.Visit) { v.Form = 9 }, se.ErrInvalid},
		{"no date", func(v *se.Visit) { v.VisitedAt = time.Time{} }, se.ErrInvalid},
		{"before 2000", func(v *se.Visit) { v.VisitedAt = time.Date(1999, 12, 31, 23, 59, 0, 0, time.UTC) }, se.ErrInvalid},
		{"after 2200", func(v *se.Visit) { v.VisitedAt = time.Date(2200, 1, 2, 0, 0, 0, 0, time.UTC) }, se.ErrInvalid},
		{"no clock", func(v *se.Visit) { v.Clock = se.Clock{} }, se.ErrInvalid},
		{"notes too long", func(v *se.Visit) { v.Notes = strings.Repeat("x", 4001) }, se.ErrLimit},
		{"notes not UTF-8", func(v *se.Visit) { v.Notes = "caf\xe9" }, se.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := validVisit()
			tt.edit(&v)
			err := v.Validate()
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Validate() = %v; want %v", err, tt.wantErr)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestAmendmentValidate(t *testing.T) {
	t.Parallel()
	valid := se.Amendment{
		ID: amendmentID(1), VisitID: visitID, AuthorID: authorID,
		Kind: se.AmendCorrect, Reason: "typo in the notes", Notes: ptr("talked about the roof"),
		Clock: clk(200, nodeB),
	}
	tests := []struct {
		name    string
		edit    func(*se.Amendment)
		wantErr error
	}{
		{"valid correction", func(*se.Amendment) {}, nil},
		{"valid void", func(a *se.Amendment) { a.Kind = se.AmendVoid; a.Notes = nil; a.Reason = "entered twice" }, nil},
		{"corrects form and date", func(a *se.Amendment) { a.Form = se.FormPhone; a.VisitedAt = visitedAt.Add(time.Hour) }, nil},
		{"no reason", func(a *se.Amendment) { a.Reason = "" }, se.ErrInvalid},
		{"void without reason", func(a *se.Amendment) { a.Kind = se.AmendVoid; a.Reason = "" }, se.ErrInvalid},
		{"reason too long", func(a *se.Amendment) { a.Reason = strings.Repeat("r", 1025) }, se.ErrLimit},
		{"unspecified kind", func(a *se.Amendment) { a.Kind = se.AmendUnspecified }, se.ErrInvalid},
		{"unknown kind", func(a *se.Amendment) { a.Kind = 3 }, se.ErrInvalid},
		{"bad id", func(a *se.Amendment) { a.ID = "a1" }, se.ErrInvalid},
		{"bad visit id", func(a *se.Amendment) { a.VisitID = "" }, se.ErrInvalid},
		{"bad author id", func(a *se.Amendment) { a.AuthorID = "me" }, se.ErrInvalid},
		{"unknown form", func(a *se.Amendment) { a.Form = 42 }, se.ErrInvalid},
		{"implausible date", func(a *se.Amendment) { a.VisitedAt = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC) }, se.ErrInvalid},
		{"notes too long", func(a *se.Amendment) { a.Notes = ptr(strings.Repeat("x", 4001)) }, se.ErrLimit},
		{"no clock", func(a *se.Amendment) { a.Clock = se.Clock{} }, se.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := valid
			tt.edit(&a)
			err := a.Validate()
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Validate() = %v; want %v", err, tt.wantErr)
			}
		})
	}
}

func correct(n int, c se.Clock, edit func(*se.Amendment)) se.Amendment {
	a := se.Amendment{ID: amendmentID(n), VisitID: visitID, AuthorID: authorID, Kind: se.AmendCorrect, Reason: "fix", Clock: c}
	edit(&a)
	return a
}

func void(n int, c se.Clock, reason string) se.Amendment {
	return se.Amendment{ID: amendmentID(n), VisitID: visitID, AuthorID: authorID, Kind: se.AmendVoid, Reason: reason, Clock: c}
}

// permutations calls f with every ordering of s.
func permutations[T any](s []T, f func([]T)) {
	var rec func(k int)
	rec = func(k int) {
		if k == len(s) {
			f(slices.Clone(s))
			return
		}
		for i := k; i < len(s); i++ {
			s[k], s[i] = s[i], s[k]
			rec(k + 1)
			s[k], s[i] = s[i], s[k]
		}
	}
	rec(0)
}

func TestEffective(t *testing.T) {
	t.Parallel()
	later := visitedAt.Add(48 * time.Hour)
	tests := []struct {
		name       string
		amendments []se.Amendment
		check      func(t *testing.T, v se.VisitView)
	}{
		{
			name: "no amendments",
			check: func(t *testing.T, v se.VisitView) {
				if !reflect.DeepEqual(v.Visit, validVisit()) || v.Voided || v.VoidReason != "" || len(v.Amendments) != 0 {
					t.Errorf("view = %+v; want the visit unchanged", v)
				}
			},
		},
		{
			name: "corrections of notes apply in clock order",
			amendments: []se.Amendment{
				correct(1, clk(300, nodeA), func(a *se.Amendment) { a.Notes = ptr("last") }),
				correct(2, clk(200, nodeB), func(a *se.Amendment) { a.Notes = ptr("first") }),
				correct(3, clk(250, nodeA), func(a *se.Amendment) { a.Notes = ptr("second") }),
			},
			check: func(t *testing.T, v se.VisitView) {
				if v.Notes != "last" {
					t.Errorf("Notes = %q; want the newest correction %q", v.Notes, "last")
				}
				var ids []string
				for _, a := range v.Amendments {
					ids = append(ids, a.ID)
				}
				if want := []string{amendmentID(2), amendmentID(3), amendmentID(1)}; !slices.Equal(ids, want) {
					t.Errorf("Amendments in order %q; want clock order %q", ids, want)
				}
			},
		},
		{
			name: "node breaks a tie of HLC",
			amendments: []se.Amendment{
				correct(1, clk(300, nodeB), func(a *se.Amendment) { a.Notes = ptr("from B") }),
				correct(2, clk(300, nodeA), func(a *se.Amendment) { a.Notes = ptr("from A") }),
			},
			check: func(t *testing.T, v se.VisitView) {
				if v.Notes != "from B" {
					t.Errorf("Notes = %q; want %q (node %x > %x)", v.Notes, "from B", nodeB, nodeA)
				}
			},
		},
		{
			name: "corrections of different fields all apply",
			amendments: []se.Amendment{
				correct(1, clk(300, nodeA), func(a *se.Amendment) { a.Form = se.FormPhone }),
				correct(2, clk(310, nodeB), func(a *se.Amendment) { a.VisitedAt = later }),
				correct(3, clk(320, nodeA), func(a *se.Amendment) { a.Notes = ptr("no one home") }),
				correct(4, clk(330, nodeB), func(a *se.Amendment) {}), // corrects nothing
			},
			check: func(t *testing.T, v se.VisitView) {
				if v.Form != se.FormPhone || !v.VisitedAt.Equal(later) || v.Notes != "no one home" {
					t.Errorf("view = form %v, at %v, notes %q; want phone, %v, %q", v.Form, v.VisitedAt, v.Notes, later, "no one home")
				}
				if v.ID != visitID || v.Clock != clk(100, nodeA) || !slices.Equal(v.HouseholdIDs, []string{hhID}) {
					t.Errorf("identity of the visit changed: %+v", v.Visit)
				}
			},
		},
		{
			name: "an older correction does not undo a newer one",
			amendments: []se.Amendment{
				correct(1, clk(400, nodeA), func(a *se.Amendment) { a.Form = se.FormTalk }),
				correct(2, clk(300, nodeB), func(a *se.Amendment) { a.Form = se.FormPhone; a.Notes = ptr("older") }),
			},
			check: func(t *testing.T, v se.VisitView) {
				if v.Form != se.FormTalk || v.Notes != "older" {
					t.Errorf("form %v, notes %q; want talk (newest) and %q (only correction of notes)", v.Form, v.Notes, "older")
				}
			},
		},
		{
			name: "a correction to empty notes clears them",
			amendments: []se.Amendment{
				correct(1, clk(300, nodeA), func(a *se.Amendment) { a.Notes = ptr("") }),
			},
			check: func(t *testing.T, v se.VisitView) {
				if v.Notes != "" {
					t.Errorf("Notes = %q; want empty", v.Notes)
				}
			},
		},
		{
			name: "void",
			amendments: []se.Amendment{
				void(1, clk(300, nodeB), "entered twice"),
			},
			check: func(t *testing.T, v se.VisitView) {
				if !v.Voided || v.VoidReason != "entered twice" {
					t.Errorf("Voided %v, reason %q; want true, %q", v.Voided, v.VoidReason, "entered twice")
				}
				if v.Notes != validVisit().Notes {
					t.Errorf("a void changed the notes to %q", v.Notes)
				}
			},
		},
		{
			name: "two voids and a correction",
			amendments: []se.Amendment{
				void(1, clk(300, nodeB), "entered twice"),
				void(2, clk(310, nodeA), "wrong household"),
				correct(3, clk(305, nodeA), func(a *se.Amendment) { a.Notes = ptr("fixed") }),
			},
			check: func(t *testing.T, v se.VisitView) {
				if !v.Voided || (v.VoidReason != "entered twice" && v.VoidReason != "wrong household") {
					t.Errorf("Voided %v, reason %q; want voided with one of the reasons", v.Voided, v.VoidReason)
				}
				if len(v.Amendments) != 3 {
					t.Errorf("view keeps %d amendments; want all 3 as evidence", len(v.Amendments))
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			input := slices.Clone(tt.amendments)
			first := se.Effective(validVisit(), input)
			tt.check(t, first)
			if !slices.EqualFunc(input, tt.amendments, func(a, b se.Amendment) bool { return a.Equal(&b) }) {
				t.Errorf("Effective reordered or changed its input")
			}
			// Any order of delivery gives the same view.
			permutations(tt.amendments, func(order []se.Amendment) {
				if got := se.Effective(validVisit(), order); !reflect.DeepEqual(got, first) {
					t.Errorf("view depends on the order of amendments:\norder %v\ngot  %+v\nwant %+v", ids(order), got, first)
				}
			})
		})
	}
}

// Effective works on a copy: the caller's visit keeps its notes.
func TestEffectiveLeavesVisitAlone(t *testing.T) {
	t.Parallel()
	v := validVisit()
	se.Effective(v, []se.Amendment{correct(1, clk(300, nodeA), func(a *se.Amendment) { a.Notes = ptr("changed"); a.Form = se.FormPhone })})
	if !reflect.DeepEqual(v, validVisit()) {
		t.Errorf("Effective changed the visit: %+v", v)
	}
}

func ids(as []se.Amendment) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID[len(a.ID)-4:]
	}
	return out
}

func TestVisitForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		form  se.VisitForm
		name  string
		group bool
	}{
		{se.FormInPerson, "in_person", false},
		{se.FormPhone, "phone", false},
		{se.FormTalk, "talk", true},
		{se.FormOpinionMeeting, "meeting", true},
		{se.FormQASession, "qa", true},
	}
	for _, tt := range tests {
		if tt.form.String() != tt.name || !tt.form.Valid() || tt.form.IsGroup() != tt.group {
			t.Errorf("form %d: String %q, Valid %v, IsGroup %v; want %q, true, %v", tt.form, tt.form, tt.form.Valid(), tt.form.IsGroup(), tt.name, tt.group)
		}
		if f, err := se.ParseVisitForm(tt.name); err != nil || f != tt.form {
			t.Errorf("ParseVisitForm(%q) = %v, %v; want %v", tt.name, f, err, tt.form)
		}
	}
	for _, s := range []string{"", "IN_PERSON", "visit", "form(1)"} {
		if _, err := se.ParseVisitForm(s); !errors.Is(err, se.ErrInvalid) {
			t.Errorf("ParseVisitForm(%q) = %v; want ErrInvalid", s, err)
		}
	}
	if se.FormUnspecified.Valid() || se.VisitForm(9).Valid() {
		t.Error("unspecified or unknown form reported valid")
	}
}

func TestVisitEqual(t *testing.T) {
	t.Parallel()
	a, b := validVisit(), validVisit()
	b.VisitedAt = b.VisitedAt.In(time.FixedZone("CST", 8*3600)) // same instant
	if !a.Equal(&b) {
		t.Error("the same visit in another time zone is not Equal")
	}
	b.HouseholdIDs = []string{hhID2}
	if a.Equal(&b) {
		t.Error("visits of different households are Equal")
	}

	x := correct(1, clk(1, 1), func(a *se.Amendment) { a.Notes = ptr("n") })
	y := correct(1, clk(1, 1), func(a *se.Amendment) { a.Notes = ptr("n") })
	if !x.Equal(&y) {
		t.Error("equal amendments with distinct Notes pointers are not Equal")
	}
	y.Notes = nil
	if x.Equal(&y) {
		t.Error("amendments with and without Notes are Equal")
	}
}
