package syncengine_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	se "github.com/doorbook/doorbook/syncengine"
)

// Add ids of tag elements.
const (
	addA1 = "0195a1b2-0000-7000-8000-0000000a0001"
	addA2 = "0195a1b2-0000-7000-8000-0000000a0002"
	addB1 = "0195a1b2-0000-7000-8000-0000000b0001"
)

// tagReplica is one replica's tags of a household: its elements by add id,
// merged element by element as the store does.
type tagReplica map[string]se.TagElement

func (r tagReplica) apply(elems ...se.TagElement) {
	for _, e := range elems {
		if cur, ok := r[e.AddID]; ok {
			cur.Merge(e)
			r[e.AddID] = cur
		} else {
			r[e.AddID] = e
		}
	}
}

// elements lists the replica's elements by add id.
func (r tagReplica) elements() []se.TagElement {
	var out []se.TagElement
	for _, id := range slices.Sorted(maps.Keys(r)) {
		out = append(out, r[id])
	}
	return out
}

func (r tagReplica) categories() []string { return se.Categories(r.elements()) }

// syncTags exchanges everything between replicas, as a round of pushes and
// pulls through the server would.
func syncTags(replicas ...tagReplica) {
	for _, from := range replicas {
		for _, to := range replicas {
			to.apply(from.elements()...)
		}
	}
}

func addTag(addID, category string, c se.Clock) se.TagElement {
	return se.TagElement{AddID: addID, HouseholdID: hhID, Category: category, Clock: c}
}

// A remove concurrent with an add of the same category keeps the tag: the
// remove could not have seen the new add.
func TestTagConcurrentAddAndRemoveKeepsTag(t *testing.T) {
	t.Parallel()
	a, b := tagReplica{}, tagReplica{}
	a.apply(addTag(addA1, "elderly", clk(1, nodeA)))
	syncTags(a, b)

	// Offline: B removes the category, A adds it again.
	b.apply(se.RemoveCategory(b.elements(), "", "elderly")...)
	a.apply(addTag(addA2, "elderly", clk(5, nodeA)))
	if got := b.categories(); len(got) != 0 {
		t.Fatalf("B's categories after its remove = %q; want none", got)
	}

	syncTags(a, b)
	for name, r := range map[string]tagReplica{"A": a, "B": b} {
		if got := r.categories(); !slices.Equal(got, []string{"elderly"}) {
			t.Errorf("%s's categories after sync = %q; want [elderly]", name, got)
		}
	}
	if !a[addA1].Removed || a[addA2].Removed {
		t.Errorf("after sync: first add removed=%v, second add removed=%v; want true, false", a[addA1].Removed, a[addA2].Removed)
	}
	if !slices.Equal(a.elements(), b.elements()) {
		t.Errorf("replicas diverged:\nA=%+v\nB=%+v", a.elements(), b.elements())
	}
}

// Two workers add the same category independently; one of them then
// removes it having seen only its own add. The other add stays.
func TestTagRemoveOnlyRemovesSeenAdds(t *testing.T) {
	t.Parallel()
	a, b := tagReplica{}, tagReplica{}
	a.apply(addTag(addA1, "disabled", clk(1, nodeA)))
	b.apply(addTag(addB1, "disabled", clk(2, nodeB)))

	removes := se.RemoveCategory(a.elements(), "", "disabled")
	if len(removes) != 1 || removes[0].AddID != addA1 {
		t.Fatalf("RemoveCategory on A = %+v; want the remove of A's add only", removes)
	}
	a.apply(removes...)
	syncTags(a, b)
	if got := b.categories(); !slices.Equal(got, []string{"disabled"}) {
		t.Errorf("categories = %q; want [disabled] (B's add was not seen by the remove)", got)
	}

	// A remove made after seeing both adds takes the tag off everywhere.
	b.apply(se.RemoveCategory(b.elements(), "", "disabled")...)
	syncTags(a, b)
	for name, r := range map[string]tagReplica{"A": a, "B": b} {
		if got := r.categories(); len(got) != 0 {
			t.Errorf("%s's categories after a remove that saw every add = %q; want none", name, got)
		}
	}
}

// Removes are sticky: a stale copy of an add arriving later does not
// resurrect it, whatever the order.
func TestTagRemoveIsSticky(t *testing.T) {
	t.Parallel()
	add := addTag(addA1, "lowincome", clk(3, nodeA))
	removed := add
	removed.Removed = true
	for _, order := range [][]se.TagElement{{add, removed}, {removed, add}, {add, removed, add}} {
		r := tagReplica{}
		r.apply(order...)
		if got := r.categories(); len(got) != 0 {
			t.Errorf("categories after %+v = %q; want none", order, got)
		}
	}
}

func TestTagElementMerge(t *testing.T) {
	t.Parallel()
	base := addTag(addA1, "elderly", clk(5, nodeA))
	with := func(f func(*se.TagElement)) se.TagElement { e := base; f(&e); return e }
	tests := []struct {
		name        string
		t, o        se.TagElement
		want        se.TagElement
		wantChanged bool
	}{
		{"same element", base, base, base, false},
		{"remove arrives", base, with(func(e *se.TagElement) { e.Removed = true }), with(func(e *se.TagElement) { e.Removed = true }), true},
		{"add arrives after remove", with(func(e *se.TagElement) { e.Removed = true }), base, with(func(e *se.TagElement) { e.Removed = true }), false},
		{"newer clock kept", base, with(func(e *se.TagElement) { e.Clock = clk(6, nodeA) }), with(func(e *se.TagElement) { e.Clock = clk(6, nodeA) }), true},
		{"older clock ignored", base, with(func(e *se.TagElement) { e.Clock = clk(4, nodeB) }), base, false},
		{"delta without household or category", base, se.TagElement{AddID: addA1, Removed: true}, with(func(e *se.TagElement) { e.Removed = true }), true},
		{"empty state takes everything", se.TagElement{AddID: addA1}, base, base, true},
		{"conflicting category resolves to the smaller", base, with(func(e *se.TagElement) { e.Category = "disabled" }), with(func(e *se.TagElement) { e.Category = "disabled" }), true},
		{"conflicting household resolves to the smaller", with(func(e *se.TagElement) { e.HouseholdID = hhID2 }), base, base, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.t
			changed := got.Merge(tt.o)
			if got != tt.want || changed != tt.wantChanged {
				t.Errorf("Merge = %+v, changed %v; want %+v, changed %v", got, changed, tt.want, tt.wantChanged)
			}
			rev := tt.o
			rev.Merge(tt.t)
			if rev != tt.want {
				t.Errorf("reverse Merge = %+v; want %+v (not commutative)", rev, tt.want)
			}
		})
	}
}

func TestCategories(t *testing.T) {
	t.Parallel()
	removed := func(e se.TagElement) se.TagElement { e.Removed = true; return e }
	c := clk(1, nodeA)
	tests := []struct {
		name  string
		elems []se.TagElement
		want  []string
	}{
		{"none", nil, nil},
		{"one", []se.TagElement{addTag(addA1, "elderly", c)}, []string{"elderly"}},
		{"sorted", []se.TagElement{addTag(addA1, "veteran", c), addTag(addA2, "disabled", c), addTag(addB1, "elderly", c)}, []string{"disabled", "elderly", "veteran"}},
		{"two adds of one category", []se.TagElement{addTag(addA1, "elderly", c), addTag(addB1, "elderly", c)}, []string{"elderly"}},
		{"removed add", []se.TagElement{removed(addTag(addA1, "elderly", c))}, nil},
		{"one add of two removed", []se.TagElement{removed(addTag(addA1, "elderly", c)), addTag(addB1, "elderly", c)}, []string{"elderly"}},
	}
	for _, tt := range tests {
		if got := se.Categories(tt.elems); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Categories = %q; want %q", tt.name, got, tt.want)
		}
	}
}

func TestRemoveCategory(t *testing.T) {
	t.Parallel()
	c := clk(1, nodeA)
	gone := addTag(addA2, "elderly", c)
	gone.Removed = true
	elems := []se.TagElement{addTag(addA1, "elderly", c), gone, addTag(addB1, "elderly", clk(2, nodeB)), addTag("0195a1b2-0000-7000-8000-0000000c0001", "veteran", c)}
	before := slices.Clone(elems)

	got := se.RemoveCategory(elems, "", "elderly")
	var ids []string
	for _, e := range got {
		if !e.Removed || e.Category != "elderly" {
			t.Errorf("remove %+v: want a Removed element of elderly", e)
		}
		ids = append(ids, e.AddID)
	}
	if !slices.Equal(ids, []string{addA1, addB1}) {
		t.Errorf("RemoveCategory removes adds %q; want the live adds %q", ids, []string{addA1, addB1})
	}
	if got[1].Clock != clk(2, nodeB) || got[0].HouseholdID != hhID {
		t.Errorf("removes do not carry their add's clock and household: %+v", got)
	}
	if !slices.Equal(elems, before) {
		t.Errorf("RemoveCategory modified its input: %+v", elems)
	}
	if got := se.RemoveCategory(elems, "", "unknown"); len(got) != 0 {
		t.Errorf("RemoveCategory of an absent category = %+v; want none", got)
	}
}

func TestValidateTag(t *testing.T) {
	t.Parallel()
	c := clk(1, nodeA)
	tests := []struct {
		name    string
		e       se.TagElement
		wantErr error
	}{
		{"valid", addTag(addA1, "elderly_alone-2.0", c), nil},
		{"bad add id", addTag("a1", "elderly", c), se.ErrInvalid},
		{"bad household", se.TagElement{AddID: addA1, HouseholdID: "h", Category: "x", Clock: c}, se.ErrInvalid},
		{"empty category", addTag(addA1, "", c), se.ErrInvalid},
		{"category with a space", addTag(addA1, "low income", c), se.ErrInvalid},
		{"non-ASCII category", addTag(addA1, "老人", c), se.ErrInvalid},
		{"category of 64", addTag(addA1, strings.Repeat("a", 64), c), nil},
		{"category of 65", addTag(addA1, strings.Repeat("a", 65), c), se.ErrInvalid},
	}
	for _, tt := range tests {
		err := tt.e.Validate()
		if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Validate() = %v; want %v", tt.name, err, tt.wantErr)
		}
	}
}

// TestTagPersonMerge: a tag's person is fixed by its add; a replica that
// knows nothing of persons' tags sends none, which does not take the
// person off; merging stays commutative and idempotent.
func TestTagPersonMerge(t *testing.T) {
	const add, hh = "00000000-0000-7000-8000-000000000001", "00000000-0000-7000-8000-000000000002"
	on := se.TagElement{AddID: add, HouseholdID: hh, PersonID: "00000000-0000-7000-8000-000000000003", Category: "key_person", Clock: se.Clock{HLC: 1}}
	old := on
	old.PersonID, old.Removed, old.Clock = "", true, se.Clock{HLC: 2}
	ab, ba := on, old
	ab.Merge(old)
	ba.Merge(on)
	if ab != ba || ab.PersonID != on.PersonID || !ab.Removed {
		t.Errorf("merges: %+v and %+v; want the person kept, removed, either way", ab, ba)
	}
	again := ab
	if again.Merge(ab) || again != ab {
		t.Errorf("merging a tag with itself changed it: %+v", again)
	}
	if got := se.PersonCategories([]se.TagElement{on, {AddID: add, HouseholdID: hh, Category: "petitioner"}}, on.PersonID); !slices.Equal(got, []string{"key_person"}) {
		t.Errorf("PersonCategories = %q", got)
	}
	bad := on
	bad.PersonID = "someone"
	if err := bad.Validate(); !errors.Is(err, se.ErrInvalid) {
		t.Errorf("a tag naming person %q: %v", bad.PersonID, err)
	}
}
