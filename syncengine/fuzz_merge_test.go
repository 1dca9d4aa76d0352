package syncengine_test

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"testing"

	se "github.com/doorbook/doorbook/syncengine"
)

// FuzzMerge checks the laws of the package doc on whole replica states:
// three replicas each apply a sequence of changes decoded from the input
// (households, persons, tag elements, visits and amendments, with ids from
// small pools so that they collide), and the states must form a join
// semilattice:
//
//	a⊔b = b⊔a, (a⊔b)⊔c = a⊔(b⊔c), a⊔a = a,
//
// compared in a canonical form that also holds what a replica derives from
// its rows: the categories on each household, each visit's effective view
// and its tracked items. Applying the changes one by one must give the same
// state as merging the states, in any order and with redeliveries. Every
// change is also validated (on any input it must not panic) and every row
// goes through its stored clock form and back unchanged.
//
// Run: go test -run XXX -fuzz '^FuzzMerge$' -fuzztime 10s ./syncengine
//
// The merge functions are the package's (Household.Merge, Person.Merge,
// TagElement.Merge); visits and amendments are immutable, a grow-only set
// by id, so the input decodes one record per id (what honest replicas send)
// and the replicas choose which of them they carry.
func FuzzMerge(f *testing.F) {
	fuzzSeeds(f)
	// Records all defaults (50 zero bytes); replica A writes the head of
	// household 0, B writes it too under the same clock with another value,
	// and a newer clock from another node; C adds a tag and removes it.
	records := make([]byte, 50)
	f.Add(slices.Concat(records,
		[]byte{1, 0, 0, 0, 1, 0x14, 1}, make([]byte, 10),
		[]byte{1, 0, 0, 0, 1, 0x14, 2, 1, 0x15, 3}, make([]byte, 9),
		[]byte{2, 2, 0, 0, 5, 0, 0x14, 2, 0, 0, 5, 1, 0x14},
	))
	// A visit with a hazard; an assignment, a close, a void and a correction
	// of it delivered to different replicas.
	f.Add([]byte{
		5, 1, 0x14, 1, 1, 3, 1, // visit 0: household 0, in person, a hazard
		0, 0, 0, 0, 0, // visit 1
		0, 3, 0x15, 1, 0, 0, 0, 0, 1, 1, // assign finding 0
		0, 5, 0x25, 2, 0, 0, 0, 0, 0, 0, // close it
		0, 2, 0x34, 3, 0, 0, 0, 0, 0, 0, // void the visit
		0, 1, 0x15, 1, 1, 2, 2, 2, 0, 0, 0, // correct notes, form, date
		2, 3, 0, 4, 0,
		2, 3, 0, 4, 1,
		2, 4, 2, 4, 3,
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := fuzzInput(data)
		recs := in.records()
		var seqs [3][]se.Change
		for i := range seqs {
			seqs[i] = in.changes(t, recs)
		}
		for _, seq := range seqs {
			for i := range seq {
				// Any change validates or not, without panicking.
				_ = seq[i].Validate()
				_, _ = seq[i].MaxClock(), seq[i].Kind()
			}
		}
		a, b, c := applyAll(seqs[0]), applyAll(seqs[1]), applyAll(seqs[2])
		ca, cb := a.canonical(), b.canonical()

		if x, y := joinStates(a, b).canonical(), joinStates(b, a).canonical(); !reflect.DeepEqual(x, y) {
			t.Fatalf("not commutative:\na   = %+v\nb   = %+v\na⊔b = %+v\nb⊔a = %+v", ca, cb, x, y)
		}
		if x, y := joinStates(joinStates(a, b), c).canonical(), joinStates(a, joinStates(b, c)).canonical(); !reflect.DeepEqual(x, y) {
			t.Fatalf("not associative:\na       = %+v\nb       = %+v\nc       = %+v\n(a⊔b)⊔c = %+v\na⊔(b⊔c) = %+v", ca, cb, c.canonical(), x, y)
		}
		if x := joinStates(a, a).canonical(); !reflect.DeepEqual(x, ca) {
			t.Fatalf("not idempotent:\na   = %+v\na⊔a = %+v", ca, x)
		}
		if x := joinStates(joinStates(a, b), a).canonical(); !reflect.DeepEqual(x, joinStates(a, b).canonical()) {
			t.Fatalf("a⊔b is not above a:\na       = %+v\nb       = %+v\n(a⊔b)⊔a = %+v", ca, cb, x)
		}

		// Changes applied one by one, in any order and redelivered, read as
		// the join of the states.
		all := slices.Concat(seqs[0], seqs[1], seqs[2])
		want := joinStates(joinStates(a, b), c).canonical()
		if got := applyAll(all).canonical(); !reflect.DeepEqual(got, want) {
			t.Fatalf("changes applied in sequence differ from the join of the states:\nsequence %+v\njoin     %+v", got, want)
		}
		rev := slices.Clone(all)
		slices.Reverse(rev)
		if got := applyAll(slices.Concat(rev, seqs[1])).canonical(); !reflect.DeepEqual(got, want) {
			t.Fatalf("changes applied in reverse (and some twice) differ:\nreverse %+v\njoin    %+v", got, want)
		}

		// Stored form: clocks packed and unpacked leave every row alone.
		checkClockColumns(t, joinStates(joinStates(a, b), c))
	})
}

// Pools of ids for FuzzMerge: few, so that rows collide.
var (
	mergeHouseholds = []string{hhID, hhID2}
	mergePersons    = []string{personID, "0195a1b2-0000-7000-8000-0000000000ab"}
	mergeAddIDs     = []string{addA1, addA2, addB1}
	mergeVisits     = []string{visitID, "0195a1b2-0000-7000-8000-00000000f002"}
	mergeAmendments = 4
	// Clock readings, with extremes, and nodes; a clock byte's low nibble
	// picks the reading (0: zero) and bits 4-5 the node.
	mergeHLCs  = []uint64{0, 1, 2, 3, se.PackHLC(1_700_000_000_000, 0), se.PackHLC(1_700_000_000_000, 1), 1 << 63, math.MaxUint64}
	mergeNodes = []uint64{0, nodeA, nodeB, math.MaxUint64}
	mergeTexts = []string{"", "a", "b", "张", "\xff", "elderly"}
)

// anyClock is one byte: a reading from mergeHLCs, a node from mergeNodes.
func (in *fuzzInput) anyClock() se.Clock {
	b := in.byte()
	return se.Clock{HLC: mergeHLCs[int(b&0x0f)%len(mergeHLCs)], Node: mergeNodes[int(b>>4&0x03)]}
}

// poolText is a text from mergeTexts, or (high bit set) a raw one.
func (in *fuzzInput) poolText() string {
	b := in.byte()
	if b&0x80 != 0 {
		return in.text()
	}
	return mergeTexts[int(b)%len(mergeTexts)]
}

// records are the immutable rows the replicas may carry: one record per
// id.
type records struct {
	visits     []se.Visit
	amendments []se.Amendment
}

// records decodes the visits of mergeVisits and mergeAmendments
// amendments of them.
func (in *fuzzInput) records() records {
	var r records
	for _, id := range mergeVisits {
		mask := in.byte()
		v := se.Visit{ID: id, VisitorID: visitorID, VisitedAt: poolDates[int(mask>>2)%len(poolDates)], Form: se.VisitForm(in.byte() % 7)}
		for i, h := range mergeHouseholds {
			if mask&(1<<i) != 0 {
				v.HouseholdIDs = append(v.HouseholdIDs, h)
			}
		}
		v.Clock = in.anyClock()
		v.Notes = in.poolText()
		for range in.byte() % 4 {
			v.Findings = append(v.Findings, se.Finding{Kind: se.FindingKind(in.byte() % 6), Note: in.poolText()})
		}
		r.visits = append(r.visits, v)
	}
	for i := range mergeAmendments {
		a := se.Amendment{
			ID:       amendmentID(i),
			VisitID:  mergeVisits[int(in.byte())%len(mergeVisits)],
			AuthorID: authorID,
			Kind:     se.AmendmentKind(in.byte() % 6),
			Clock:    in.anyClock(),
			Reason:   in.poolText(),
		}
		switch b := in.byte(); {
		case b&1 != 0:
			a.Notes = ptr(in.poolText())
		case b&2 != 0:
			a.Notes = ptr("")
		}
		a.Form = se.VisitForm(in.byte() % 7)
		a.VisitedAt = poolDates[int(in.byte())%len(poolDates)]
		a.Finding = uint32(in.byte() % 4)
		a.Unit = in.poolText()
		if in.byte()&1 == 1 {
			a.Deadline = poolDates[1+i%2]
		}
		r.amendments = append(r.amendments, a)
	}
	return r
}

// changes decodes one replica's changes: a count, then for each a kind,
// an id and the delta.
func (in *fuzzInput) changes(t *testing.T, r records) []se.Change {
	var out []se.Change
	n := int(in.byte() % 8)
	for i := range n {
		c := se.Change{ID: fmt.Sprintf("0195a1b2-0000-7000-8000-%012x", 0xc000+i)}
		kind, id := in.byte(), int(in.byte())
		switch kind % 5 {
		case 0:
			h := se.Household{ID: mergeHouseholds[id%len(mergeHouseholds)]}
			in.anyFields(t, &h, se.HouseholdFieldNames())
			c.Household = &h
		case 1:
			p := se.Person{ID: mergePersons[id%len(mergePersons)], HouseholdID: poolHouses[int(in.byte())%len(poolHouses)]}
			in.anyFields(t, &p, se.PersonFieldNames())
			c.Person = &p
		case 2:
			c.Tag = &se.TagElement{
				AddID:       mergeAddIDs[id%len(mergeAddIDs)],
				HouseholdID: poolHouses[int(in.byte())%len(poolHouses)],
				Category:    in.poolText(),
				Removed:     in.byte()&1 == 1,
				Clock:       in.anyClock(),
			}
		case 3:
			v := r.visits[id%len(r.visits)]
			c.Visit = &v
		case 4:
			a := r.amendments[id%len(r.amendments)]
			c.Amendment = &a
		}
		out = append(out, c)
	}
	return out
}

// anyFields writes some fields of row: a byte per field whose low bit says
// whether it is written, then a clock and a value.
func (in *fuzzInput) anyFields(t *testing.T, row fieldRow, names []string) {
	t.Helper()
	for _, name := range names {
		if in.byte()&1 == 0 {
			continue
		}
		c := in.anyClock()
		var v string
		switch kindOfField()[name] {
		case "int":
			v = fmt.Sprint(int64(int8(in.byte())) * math.MaxInt64 / 127)
		case "bool":
			v = fmt.Sprint(in.byte()&1 == 1)
		default:
			v = in.poolText()
		}
		if err := row.SetField(name, v, c); err != nil {
			t.Fatalf("SetField(%q, %q): %v", name, v, err)
		}
	}
}

// replicaState is what a replica holds: rows by id, merged as the store and
// the SDK merge them.
type replicaState struct {
	households map[string]se.Household
	persons    map[string]se.Person
	tags       map[string]se.TagElement
	visits     map[string]se.Visit
	amendments map[string]se.Amendment
}

func newReplicaState() *replicaState {
	return &replicaState{
		households: map[string]se.Household{}, persons: map[string]se.Person{}, tags: map[string]se.TagElement{},
		visits: map[string]se.Visit{}, amendments: map[string]se.Amendment{},
	}
}

func (s *replicaState) household(h se.Household) {
	cur, ok := s.households[h.ID]
	if !ok {
		cur = se.Household{ID: h.ID}
	}
	cur.Merge(h)
	s.households[h.ID] = cur
}

func (s *replicaState) person(p se.Person) {
	cur, ok := s.persons[p.ID]
	if !ok {
		cur = se.Person{ID: p.ID}
	}
	cur.Merge(p)
	s.persons[p.ID] = cur
}

func (s *replicaState) tag(e se.TagElement) {
	cur, ok := s.tags[e.AddID]
	if !ok {
		cur = se.TagElement{AddID: e.AddID}
	}
	cur.Merge(e)
	s.tags[e.AddID] = cur
}

func (s *replicaState) apply(c se.Change) {
	switch {
	case c.Household != nil:
		s.household(*c.Household)
	case c.Person != nil:
		s.person(*c.Person)
	case c.Tag != nil:
		s.tag(*c.Tag)
	case c.Visit != nil:
		s.visits[c.Visit.ID] = *c.Visit
	case c.Amendment != nil:
		s.amendments[c.Amendment.ID] = *c.Amendment
	}
}

func applyAll(changes []se.Change) *replicaState {
	s := newReplicaState()
	for _, c := range changes {
		s.apply(c)
	}
	return s
}

// joinStates is a⊔b, leaving both alone: b's rows merged into a copy of a,
// in b's id order.
func joinStates(a, b *replicaState) *replicaState {
	s := &replicaState{
		households: maps.Clone(a.households), persons: maps.Clone(a.persons), tags: maps.Clone(a.tags),
		visits: maps.Clone(a.visits), amendments: maps.Clone(a.amendments),
	}
	for _, id := range slices.Sorted(maps.Keys(b.households)) {
		s.household(b.households[id])
	}
	for _, id := range slices.Sorted(maps.Keys(b.persons)) {
		s.person(b.persons[id])
	}
	for _, id := range slices.Sorted(maps.Keys(b.tags)) {
		s.tag(b.tags[id])
	}
	maps.Copy(s.visits, b.visits)
	maps.Copy(s.amendments, b.amendments)
	return s
}

// canonicalState is a replica state with sorted rows and what a replica
// derives from them.
type canonicalState struct {
	Rows       se.Bundle
	Categories map[string][]string
	Views      []se.VisitView
	Items      [][]se.Item
}

func (s *replicaState) canonical() canonicalState {
	var c canonicalState
	for _, id := range slices.Sorted(maps.Keys(s.households)) {
		c.Rows.Households = append(c.Rows.Households, s.households[id])
	}
	for _, id := range slices.Sorted(maps.Keys(s.persons)) {
		c.Rows.Persons = append(c.Rows.Persons, s.persons[id])
	}
	byHousehold := map[string][]se.TagElement{}
	for _, id := range slices.Sorted(maps.Keys(s.tags)) {
		e := s.tags[id]
		c.Rows.Tags = append(c.Rows.Tags, e)
		byHousehold[e.HouseholdID] = append(byHousehold[e.HouseholdID], e)
	}
	if len(byHousehold) > 0 {
		c.Categories = map[string][]string{}
		for h, es := range byHousehold {
			c.Categories[h] = se.Categories(es)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.amendments)) {
		c.Rows.Amendments = append(c.Rows.Amendments, s.amendments[id])
	}
	for _, id := range slices.Sorted(maps.Keys(s.visits)) {
		v := s.visits[id]
		c.Rows.Visits = append(c.Rows.Visits, v)
		var of []se.Amendment
		for _, a := range c.Rows.Amendments {
			if a.VisitID == id {
				of = append(of, a)
			}
		}
		view := se.Effective(v, of)
		c.Views = append(c.Views, view)
		c.Items = append(c.Items, se.Items(view))
	}
	return c
}

// checkClockColumns packs each row's clocks as the stores keep them and
// unpacks them again: the row must be unchanged.
func checkClockColumns(t *testing.T, s *replicaState) {
	t.Helper()
	for _, h := range s.households {
		clocks := make([]se.Clock, len(h.Clocks()))
		if err := se.DecodeClocks(se.EncodeClocks(h.Clocks()), clocks); err != nil {
			t.Fatalf("DecodeClocks(EncodeClocks(%v)): %v", h.Clocks(), err)
		}
		back := h
		back.SetClocks(clocks)
		if !reflect.DeepEqual(back, h) {
			t.Fatalf("household through its clock column:\n got %+v\nwant %+v", back, h)
		}
	}
	for _, p := range s.persons {
		clocks := make([]se.Clock, len(p.Clocks()))
		if err := se.DecodeClocks(se.EncodeClocks(p.Clocks()), clocks); err != nil {
			t.Fatalf("DecodeClocks(EncodeClocks(%v)): %v", p.Clocks(), err)
		}
		back := p
		back.SetClocks(clocks)
		if !reflect.DeepEqual(back, p) {
			t.Fatalf("person through its clock column:\n got %+v\nwant %+v", back, p)
		}
	}
}
