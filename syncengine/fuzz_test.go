package syncengine_test

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"

	se "github.com/doorbook/doorbook/syncengine"
)

// fuzzInput decodes fuzz bytes into states, a byte at a time. Past the end
// it reads zeros, so every input decodes, and short inputs mean mostly
// unset fields.
type fuzzInput []byte

func (in *fuzzInput) byte() byte {
	if len(*in) == 0 {
		return 0
	}
	b := (*in)[0]
	*in = (*in)[1:]
	return b
}

// clock is one byte: the low four bits are the HLC, the next two the node.
// 0 is the zero clock. The space is small so that ties are frequent.
func (in *fuzzInput) clock() se.Clock {
	b := in.byte()
	return se.Clock{HLC: uint64(b & 0x0f), Node: uint64(b >> 4 & 0x03)}
}

// text is a length byte (mod 4) and that many raw bytes.
func (in *fuzzInput) text() string {
	n := int(in.byte() % 4)
	s := make([]byte, n)
	for i := range s {
		s[i] = in.byte()
	}
	return string(s)
}

// fields writes the fields of row: for each field a byte whose low bit says
// whether it is written, then its clock and its value.
func (in *fuzzInput) fields(t *testing.T, row fieldRow, names []string) {
	t.Helper()
	for _, name := range names {
		if in.byte()&1 == 0 {
			continue
		}
		c := in.clock()
		var v string
		switch kindOfField()[name] {
		case "int":
			v = strconv.Itoa(int(int8(in.byte())))
		case "bool":
			v = strconv.FormatBool(in.byte()&1 == 1)
		default:
			v = in.text()
		}
		if err := row.SetField(name, v, c); err != nil {
			t.Fatalf("SetField(%q, %q): %v", name, v, err)
		}
	}
}

func (in *fuzzInput) household(t *testing.T) se.Household {
	h := se.Household{ID: hhID}
	in.fields(t, &h, se.HouseholdFieldNames())
	return h
}

func (in *fuzzInput) tag() se.TagElement {
	return se.TagElement{
		AddID:       addA1,
		HouseholdID: poolHouses[int(in.byte())%len(poolHouses)],
		Category:    in.text(),
		Removed:     in.byte()&1 == 1,
		Clock:       in.clock(),
	}
}

// amendments decodes up to seven amendments of visitID, each with the sets
// (A, B, C: bits 0-2 of a byte, at least one) that deliver it.
func (in *fuzzInput) amendments() (all []se.Amendment, sets [3][]se.Amendment) {
	n := int(in.byte() % 8)
	for i := range n {
		a := se.Amendment{
			ID:        amendmentID(int(in.byte())<<8 | i), // distinct, ordered by the byte first
			VisitID:   visitID,
			AuthorID:  authorID,
			Kind:      se.AmendmentKind(in.byte() % 4),
			Clock:     in.clock(),
			Form:      se.VisitForm(in.byte() % 7),
			VisitedAt: poolDates[int(in.byte())%len(poolDates)],
			Reason:    in.text(),
		}
		if in.byte()&1 == 1 {
			a.Notes = ptr(in.text())
		}
		all = append(all, a)
		mask := in.byte()%7 + 1
		for s := range sets {
			if mask&(1<<s) != 0 {
				sets[s] = append(sets[s], a)
			}
		}
	}
	return all, sets
}

// fuzzSeeds are inputs for every target: empty, saturated, and a few
// pseudo-random ones from a fixed seed.
func fuzzSeeds(f *testing.F) {
	f.Add([]byte{})
	f.Add(slices.Repeat([]byte{0xff}, 64))
	f.Add(slices.Repeat([]byte{0x01, 0x11, 0x01}, 40))
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{16, 48, 96, 160} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		f.Add(b)
	}
}

// oneField is the encoding of a state with only its first field written
// with a one-byte text value, the rest unset.
func oneField(names []string, c byte, v byte) []byte {
	return append([]byte{1, c, 1, v}, make([]byte, len(names)-1)...)
}

func FuzzHouseholdMerge(f *testing.F) {
	fuzzSeeds(f)
	names := se.HouseholdFieldNames()
	// Same clock, different values; then a newer clock.
	f.Add(slices.Concat(oneField(names, 0x13, 'a'), oneField(names, 0x13, 'b'), oneField(names, 0x14, 'a')))
	// Same HLC, different nodes.
	f.Add(slices.Concat(oneField(names, 0x13, 'b'), oneField(names, 0x23, 'a'), oneField(names, 0x00, 'c')))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzInput(data)
		a, b, c := in.household(t), in.household(t), in.household(t)
		if err := checkLaws[se.Household](a, b, c); err != nil {
			t.Fatal(err)
		}
		empty := se.Household{ID: hhID}
		got := fold[se.Household](empty, []se.Household{a, b, c})
		if err := checkRegisters[se.Household](got, names, []se.Household{empty, a, b, c}); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzTagMerge(f *testing.F) {
	fuzzSeeds(f)
	// An add and a concurrent remove of the same element.
	f.Add([]byte{0, 1, 'e', 0, 0x11, 0, 1, 'e', 1, 0x11, 0, 1, 'e', 0, 0x12})
	// Conflicting categories and households under one clock.
	f.Add([]byte{0, 1, 'b', 0, 0x11, 3, 1, 'a', 1, 0x11, 4, 0, 0, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzInput(data)
		a, b, c := in.tag(), in.tag(), in.tag()
		if err := checkLaws[se.TagElement](a, b, c); err != nil {
			t.Fatal(err)
		}
		// The element is on the household unless some state removed it.
		got := fold[se.TagElement](se.TagElement{AddID: addA1}, []se.TagElement{a, b, c})
		if want := a.Removed || b.Removed || c.Removed; got.Removed != want {
			t.Fatalf("Removed = %v after merging %+v, %+v, %+v; want %v", got.Removed, a, b, c, want)
		}
	})
}

// union is the grow-only set of amendments: x, then those of y not in x.
func union(x, y []se.Amendment) []se.Amendment {
	out := slices.Clone(x)
	for _, a := range y {
		if !slices.ContainsFunc(out, func(b se.Amendment) bool { return b.ID == a.ID }) {
			out = append(out, a)
		}
	}
	return out
}

// FuzzEffective checks that the view of a visit is a function of the set of
// its amendments: the union of what replicas A, B and C delivered, in any
// order and grouping, and with redeliveries.
func FuzzEffective(f *testing.F) {
	fuzzSeeds(f)
	// Two corrections of the notes under the same clock, in both sets.
	f.Add([]byte{0, 1, 0, 2, 1, 0x13, 0, 0, 1, 'r', 1, 1, 'x', 7, 2, 1, 0x13, 0, 0, 1, 'r', 1, 1, 'y', 7})
	// A void and a correction.
	f.Add([]byte{0, 1, 0, 2, 5, 2, 0x21, 0, 0, 1, 'v', 0, 1, 3, 1, 0x22, 5, 2, 1, 'c', 1, 0, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzInput(data)
		v := validVisit()
		v.Notes = in.text()
		v.Form = se.VisitForm(in.byte() % 6)
		all, sets := in.amendments()
		A, B, C := sets[0], sets[1], sets[2]
		view := func(as []se.Amendment) se.VisitView { return se.Effective(v, as) }

		if err := checkEffective(v, all, view(all)); err != nil {
			t.Fatalf("%v\namendments %+v", err, all)
		}
		if x, y := view(union(A, B)), view(union(B, A)); !reflect.DeepEqual(x, y) {
			t.Fatalf("not commutative:\nA∪B %+v\nB∪A %+v", x, y)
		}
		if x, y := view(union(union(A, B), C)), view(union(A, union(B, C))); !reflect.DeepEqual(x, y) {
			t.Fatalf("not associative:\n(A∪B)∪C %+v\nA∪(B∪C) %+v", x, y)
		}
		if x, y := view(union(union(C, A), B)), view(all); !reflect.DeepEqual(x, y) {
			t.Fatalf("the union of the deliveries reads differently from the whole set:\n%+v\n%+v", x, y)
		}
		// Redelivery: the same amendments again read the same.
		x, y := view(slices.Concat(A, A)), view(A)
		x.Amendments, y.Amendments = nil, nil
		if !reflect.DeepEqual(x, y) {
			t.Fatalf("not idempotent:\nA++A %+v\nA    %+v", x, y)
		}
	})
}
