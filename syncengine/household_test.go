package syncengine_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	se "github.com/doorbook/doorbook/syncengine"
)

// Fixed ids for the tests.
const (
	hhID     = "0195a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b"
	hhID2    = "0195a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1c"
	gridID   = "0195a1b2-0000-7000-8000-000000000001"
	personID = "0195a1b2-0000-7000-8000-0000000000aa"
	nodeA    = 0xa // worker A's replica
	nodeB    = 0xb // worker B's replica
)

// household builds a household state or delta from field=value pairs, every
// field written at c.
func household(tb testing.TB, c se.Clock, kv ...string) se.Household {
	tb.Helper()
	h := se.Household{ID: hhID}
	for i := 0; i+1 < len(kv); i += 2 {
		if err := h.SetField(kv[i], kv[i+1], c); err != nil {
			tb.Fatalf("SetField(%q, %q): %v", kv[i], kv[i+1], err)
		}
	}
	return h
}

// field reads a field by name or fails the test.
func field(tb testing.TB, h interface{ Field(string) (string, error) }, name string) string {
	tb.Helper()
	v, err := h.Field(name)
	if err != nil {
		tb.Fatalf("Field(%q): %v", name, err)
	}
	return v
}

// Two workers edit different fields of the same household offline; after
// they exchange their deltas, in either order, both edits are kept.
func TestHouseholdMergeDifferentFieldsBothSurvive(t *testing.T) {
	t.Parallel()
	base := household(t, clk(10, nodeA), "head_name", "张伟", "address", "1 Elm St", "phone_mobile", "111", "notes", "")

	deltaA := household(t, clk(20, nodeA), "phone_mobile", "222")
	deltaB := household(t, clk(15, nodeB), "notes", "dog in the yard")

	replicaA, replicaB := base, base
	replicaA.Merge(deltaA)
	replicaB.Merge(deltaB)
	// Sync: each receives the other's delta.
	if !replicaA.Merge(deltaB) {
		t.Error("merging B's edit into A reported no change")
	}
	if !replicaB.Merge(deltaA) {
		t.Error("merging A's edit into B reported no change")
	}

	if replicaA != replicaB {
		t.Fatalf("replicas diverged:\nA=%+v\nB=%+v", replicaA, replicaB)
	}
	for name, want := range map[string]string{
		"phone_mobile": "222",
		"notes":        "dog in the yard",
		"head_name":    "张伟",
		"address":      "1 Elm St",
	} {
		if got := field(t, &replicaA, name); got != want {
			t.Errorf("%s = %q; want %q", name, got, want)
		}
	}
}

// Both workers edit the same field: the later clock wins on both replicas,
// even though the older edit arrives last on one of them.
func TestHouseholdMergeSameFieldNewerWins(t *testing.T) {
	t.Parallel()
	older := household(t, clk(20, nodeB), "address", "old")
	newer := household(t, clk(21, nodeA), "address", "new")

	ab, ba := older, newer
	ab.Merge(newer)
	if ba.Merge(older) {
		t.Error("merging an older edit reported a change")
	}
	if ab != ba || field(t, &ab, "address") != "new" {
		t.Errorf("address after merge: %q and %q; want %q on both", field(t, &ab, "address"), field(t, &ba, "address"), "new")
	}
}

// A deletion is a tombstone with its own clock: an edit of another field,
// older or newer, does not bring the household back. Only a newer write of
// the tombstone itself does.
func TestHouseholdTombstone(t *testing.T) {
	t.Parallel()
	deleted := household(t, clk(30, nodeA), "deleted", "true")

	tests := []struct {
		name        string
		delta       se.Household
		wantDeleted string
	}{
		{"older edit of another field", household(t, clk(25, nodeB), "notes", "late note"), "true"},
		{"newer edit of another field", household(t, clk(40, nodeB), "head_name", "Li Na"), "true"},
		{"older undelete", household(t, clk(29, nodeB), "deleted", "false"), "true"},
		{"undelete under the same HLC, smaller node", household(t, clk(30, nodeA-1), "deleted", "false"), "true"},
		{"newer undelete", household(t, clk(31, nodeB), "deleted", "false"), "false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x, y := deleted, tt.delta
			x.Merge(tt.delta)
			y.Merge(deleted)
			if x != y {
				t.Fatalf("merge not commutative:\n%+v\n%+v", x, y)
			}
			if got := field(t, &x, "deleted"); got != tt.wantDeleted {
				t.Errorf("deleted = %s; want %s", got, tt.wantDeleted)
			}
			// The other field's edit is kept all the same.
			written := tt.delta.Clocks()
			for i, name := range se.HouseholdFieldNames() {
				if name == "deleted" || written[i].IsZero() {
					continue
				}
				if got, want := field(t, &x, name), field(t, &tt.delta, name); got != want {
					t.Errorf("%s = %q; want the edit %q", name, got, want)
				}
			}
		})
	}
}

func TestHouseholdSetField(t *testing.T) {
	t.Parallel()
	c := clk(5, nodeA)
	tests := []struct {
		name, field, text string
		want              string // rendered by Field
		wantErr           error
	}{
		{name: "text", field: "head_name", text: "王芳", want: "王芳"},
		{name: "empty text", field: "notes", text: "", want: ""},
		{name: "text kept verbatim", field: "address", text: " 2 Oak Rd ", want: " 2 Oak Rd "},
		{name: "member count", field: "member_count", text: "4", want: "4"},
		{name: "member count with spaces", field: "member_count", text: " 12\n", want: "12"},
		{name: "negative member count parses", field: "member_count", text: "-1", want: "-1"},
		{name: "member count in words", field: "member_count", text: "four", wantErr: se.ErrInvalid},
		{name: "empty member count", field: "member_count", text: "", wantErr: se.ErrInvalid},
		{name: "fractional member count", field: "member_count", text: "1.5", wantErr: se.ErrInvalid},
		{name: "member count overflows int64", field: "member_count", text: "99999999999999999999", wantErr: se.ErrInvalid},
		{name: "deleted", field: "deleted", text: "true", want: "true"},
		{name: "deleted as digit", field: "deleted", text: "1", want: "true"},
		{name: "not deleted", field: "deleted", text: " false ", want: "false"},
		{name: "deleted as yes", field: "deleted", text: "yes", wantErr: se.ErrInvalid},
		{name: "unknown field", field: "colour", text: "red", wantErr: se.ErrInvalid},
		{name: "field names are exact", field: "Head_Name", text: "x", wantErr: se.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := se.Household{ID: hhID}
			err := h.SetField(tt.field, tt.text, c)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("SetField(%q, %q) = %v; want an error wrapping %v", tt.field, tt.text, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.field) {
					t.Errorf("error %q does not name the field %q", err, tt.field)
				}
				if h != (se.Household{ID: hhID}) {
					t.Errorf("a failed SetField changed the household: %+v", h)
				}
				return
			}
			if err != nil {
				t.Fatalf("SetField(%q, %q): %v", tt.field, tt.text, err)
			}
			if got := field(t, &h, tt.field); got != tt.want {
				t.Errorf("Field(%q) = %q; want %q", tt.field, got, tt.want)
			}
			i := slices.Index(se.HouseholdFieldNames(), tt.field)
			if got := h.Clocks()[i]; got != c {
				t.Errorf("clock of %s = %v; want %v", tt.field, got, c)
			}
		})
	}

	h := se.Household{ID: hhID}
	if _, err := h.Field("colour"); !errors.Is(err, se.ErrInvalid) {
		t.Errorf(`Field("colour") = %v; want ErrInvalid`, err)
	}
}

// The storage order of the fields is append only: stored clock columns
// follow it. Every name is addressable, and Clocks reports each field's clock
// at its name's index.
func TestHouseholdFieldNames(t *testing.T) {
	t.Parallel()
	frozen := []string{
		"grid_id", "head_name", "address", "phone_mobile", "phone_landline",
		"responsible_worker", "responsible_leader", "responsible_unit",
		"member_count", "housing_type", "notes", "deleted",
	}
	names := se.HouseholdFieldNames()
	if len(names) < len(frozen) || !slices.Equal(names[:len(frozen)], frozen) {
		t.Fatalf("HouseholdFieldNames() = %q; want it to start with %q (append only)", names, frozen)
	}
	checkFieldClocks(t, names, func() fieldRow { return &se.Household{ID: hhID} }, map[string]string{"member_count": "3", "deleted": "true"})
}

// fieldRow is what households and persons share.
type fieldRow interface {
	SetField(name, text string, c se.Clock) error
	Field(name string) (string, error)
	Clocks() []se.Clock
	SetClocks([]se.Clock)
	MaxClock() se.Clock
}

// checkFieldClocks writes every field with a distinct clock and checks that
// Clocks, SetClocks (through EncodeClocks/DecodeClocks) and MaxClock agree.
func checkFieldClocks(t *testing.T, names []string, newRow func() fieldRow, texts map[string]string) {
	t.Helper()
	if len(slices.Compact(slices.Sorted(slices.Values(names)))) != len(names) {
		t.Fatalf("field names are not unique: %q", names)
	}
	row := newRow()
	if !row.MaxClock().IsZero() {
		t.Errorf("MaxClock() of a new row = %v; want zero", row.MaxClock())
	}
	for i, name := range names {
		text, ok := texts[name]
		if !ok {
			text = "v-" + name
		}
		if err := row.SetField(name, text, clk(uint64(100+i), nodeA)); err != nil {
			t.Fatalf("SetField(%q): %v", name, err)
		}
		if got := field(t, row, name); got != text {
			t.Errorf("Field(%q) = %q; want %q", name, got, text)
		}
	}
	clocks := row.Clocks()
	if len(clocks) != len(names) {
		t.Fatalf("Clocks() has %d clocks for %d fields", len(clocks), len(names))
	}
	for i, name := range names {
		if want := clk(uint64(100+i), nodeA); clocks[i] != want {
			t.Errorf("Clocks()[%d] (%s) = %v; want %v", i, name, clocks[i], want)
		}
	}
	if want := clk(uint64(100+len(names)-1), nodeA); row.MaxClock() != want {
		t.Errorf("MaxClock() = %v; want %v", row.MaxClock(), want)
	}

	restored := newRow()
	decoded := make([]se.Clock, len(names))
	if err := se.DecodeClocks(se.EncodeClocks(clocks), decoded); err != nil {
		t.Fatal(err)
	}
	restored.SetClocks(decoded)
	if got := restored.Clocks(); !slices.Equal(got, clocks) {
		t.Errorf("Clocks() after SetClocks = %v; want %v", got, clocks)
	}
	// An older schema stored fewer clocks: the missing ones stay zero.
	short := newRow()
	short.SetClocks(clocks[:2])
	got := short.Clocks()
	if !slices.Equal(got[:2], clocks[:2]) || slices.ContainsFunc(got[2:], func(c se.Clock) bool { return !c.IsZero() }) {
		t.Errorf("Clocks() after SetClocks(first two) = %v", got)
	}
}

func TestHouseholdValidate(t *testing.T) {
	t.Parallel()
	c := clk(1, nodeA)
	tests := []struct {
		name    string
		h       se.Household
		wantErr error
	}{
		{"full row", household(t, c, "grid_id", gridID, "head_name", "张伟", "member_count", "3"), nil},
		{"delta of one field", household(t, c, "notes", "x"), nil},
		{"empty notes", household(t, c, "notes", ""), nil},
		{"bad id", se.Household{ID: "hh-1"}, se.ErrInvalid},
		{"bad grid id", household(t, c, "grid_id", "grid-7"), se.ErrInvalid},
		{"member count too large", household(t, c, "member_count", "1001"), se.ErrInvalid},
		{"negative member count", household(t, c, "member_count", "-1"), se.ErrInvalid},
		{"name too long", household(t, c, "head_name", strings.Repeat("x", 257)), se.ErrLimit},
		{"long address allowed", household(t, c, "address", strings.Repeat("x", 4000)), nil},
		{"notes too long", household(t, c, "notes", strings.Repeat("x", 4001)), se.ErrLimit},
		{"invalid UTF-8", household(t, c, "head_name", "\xff"), se.ErrInvalid},
	}
	for _, tt := range tests {
		err := tt.h.Validate()
		if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Validate() = %v; want %v", tt.name, err, tt.wantErr)
		}
	}
}

// person builds a person state or delta from field=value pairs written at c.
func person(tb testing.TB, householdID string, c se.Clock, kv ...string) se.Person {
	tb.Helper()
	p := se.Person{ID: personID, HouseholdID: householdID}
	for i := 0; i+1 < len(kv); i += 2 {
		if err := p.SetField(kv[i], kv[i+1], c); err != nil {
			tb.Fatalf("SetField(%q, %q): %v", kv[i], kv[i+1], err)
		}
	}
	return p
}

func TestPersonMerge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		a, b          se.Person
		want          map[string]string
		wantHousehold string
	}{
		{
			name:          "different fields both survive",
			a:             person(t, hhID, clk(10, nodeA), "phone", "138"),
			b:             person(t, hhID, clk(11, nodeB), "relation", "spouse"),
			want:          map[string]string{"phone": "138", "relation": "spouse"},
			wantHousehold: hhID,
		},
		{
			name:          "same field: newer clock wins",
			a:             person(t, hhID, clk(12, nodeA), "name", "Li"),
			b:             person(t, hhID, clk(11, nodeB), "name", "Lee"),
			want:          map[string]string{"name": "Li"},
			wantHousehold: hhID,
		},
		{
			name:          "same field, same HLC: node breaks the tie",
			a:             person(t, hhID, clk(12, nodeA), "name", "Li"),
			b:             person(t, hhID, clk(12, nodeB), "name", "Lee"),
			want:          map[string]string{"name": "Lee"},
			wantHousehold: hhID,
		},
		{
			name:          "tombstone survives an older edit",
			a:             person(t, hhID, clk(20, nodeA), "deleted", "true"),
			b:             person(t, hhID, clk(19, nodeB), "birth_date", "1950-01-02"),
			want:          map[string]string{"deleted": "true", "birth_date": "1950-01-02"},
			wantHousehold: hhID,
		},
		{
			name:          "a delta without household takes the state's",
			a:             person(t, hhID2, clk(1, nodeA), "name", "Wang"),
			b:             person(t, "", clk(2, nodeB), "gender", "F"),
			want:          map[string]string{"name": "Wang", "gender": "F"},
			wantHousehold: hhID2,
		},
		{
			name:          "conflicting households resolve to the smaller id",
			a:             person(t, hhID2, clk(1, nodeA)),
			b:             person(t, hhID, clk(1, nodeB)),
			want:          map[string]string{},
			wantHousehold: hhID,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ab, ba := tt.a, tt.b
			ab.Merge(tt.b)
			ba.Merge(tt.a)
			if ab != ba {
				t.Fatalf("merge not commutative:\na⊔b=%+v\nb⊔a=%+v", ab, ba)
			}
			for name, want := range tt.want {
				if got := field(t, &ab, name); got != want {
					t.Errorf("%s = %q; want %q", name, got, want)
				}
			}
			if ab.HouseholdID != tt.wantHousehold {
				t.Errorf("HouseholdID = %q; want %q", ab.HouseholdID, tt.wantHousehold)
			}
			again := ab
			if again.Merge(tt.a) || again.Merge(tt.b) || again != ab {
				t.Errorf("merging a delta already seen changed the person: %+v", again)
			}
		})
	}
}

func TestPersonFields(t *testing.T) {
	t.Parallel()
	frozen := []string{"name", "id_number", "gender", "birth_date", "phone", "relation", "notes", "deleted"}
	names := se.PersonFieldNames()
	if len(names) < len(frozen) || !slices.Equal(names[:len(frozen)], frozen) {
		t.Fatalf("PersonFieldNames() = %q; want it to start with %q (append only)", names, frozen)
	}
	checkFieldClocks(t, names, func() fieldRow { return &se.Person{ID: personID, HouseholdID: hhID} }, map[string]string{"deleted": "true"})

	p := se.Person{ID: personID, HouseholdID: hhID}
	for _, tt := range []struct{ name, text string }{{"deleted", "maybe"}, {"household_id", hhID2}, {"age", "3"}} {
		if err := p.SetField(tt.name, tt.text, clk(1, 1)); !errors.Is(err, se.ErrInvalid) {
			t.Errorf("SetField(%q, %q) = %v; want ErrInvalid", tt.name, tt.text, err)
		}
	}
	if _, err := p.Field("household_id"); !errors.Is(err, se.ErrInvalid) {
		t.Errorf(`Field("household_id") = %v; want ErrInvalid`, err)
	}
}

func TestPersonValidate(t *testing.T) {
	t.Parallel()
	c := clk(1, nodeA)
	tests := []struct {
		name    string
		p       se.Person
		wantErr error
	}{
		{"valid", person(t, hhID, c, "name", "Wang", "id_number", "110101195001021234"), nil},
		{"missing household", person(t, "", c, "name", "Wang"), se.ErrInvalid},
		{"bad id", se.Person{ID: "p1", HouseholdID: hhID}, se.ErrInvalid},
		{"notes too long", person(t, hhID, c, "notes", strings.Repeat("n", 4001)), se.ErrLimit},
		{"invalid UTF-8 name", person(t, hhID, c, "name", "\xc3"), se.ErrInvalid},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Validate() = %v; want %v", tt.name, err, tt.wantErr)
		}
	}
}

// TestPersonResidence: a person's residence status is one of three, or
// not said; anything else is invalid, on the phone and on the server.
func TestPersonResidence(t *testing.T) {
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"", true}, {se.ResidenceResident, true}, {se.ResidenceMigrant, true}, {se.ResidenceMovedAway, true},
		{"tourist", false}, {"Migrant", false}, {"流动人口", false},
	} {
		p := se.Person{ID: "00000000-0000-7000-8000-000000000001", HouseholdID: "00000000-0000-7000-8000-000000000002",
			Residence: se.NewRegister(tc.value, se.Clock{HLC: 1, Node: 1})}
		if err := p.Validate(); (err == nil) != tc.ok || err != nil && !errors.Is(err, se.ErrInvalid) {
			t.Errorf("residence %q: %v, want ok %v", tc.value, err, tc.ok)
		}
	}
}
