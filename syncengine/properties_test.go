package syncengine_test

import (
	"cmp"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	se "github.com/doorbook/doorbook/syncengine"
)

// The randomised tests draw everything from one seed. A failure prints it;
// rerun with it to reproduce:
//
//	go test -run TestProperty -syncengine.seed=N ./syncengine
//
// -syncengine.seed=0 picks a new seed from the time (and prints it).
var (
	seedFlag   = flag.Uint64("syncengine.seed", 20250314, "seed of the randomised property tests (0: from the time)")
	roundsFlag = flag.Int("syncengine.rounds", 1000, "rounds of each randomised property test")
)

// theSeed is the seed of this run.
var theSeed = sync.OnceValue(func() uint64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	return uint64(time.Now().UnixNano())
})

// propRand is the generator of one property test, seeded from the flag, and
// the seed itself for failure messages.
func propRand(t *testing.T) (*rand.Rand, uint64) {
	t.Helper()
	seed := theSeed()
	t.Logf("seed %d, %d rounds (reproduce with -run '^%s$' -syncengine.seed=%d)", seed, *roundsFlag, t.Name(), seed)
	return rand.New(rand.NewPCG(seed, seed)), seed
}

// merger is a state type with a join: Household, Person, TagElement.
type merger[S any] interface {
	*S
	Merge(S) bool
}

// join is a ⊔ b, leaving a alone.
func join[S any, P merger[S]](a, b S) S {
	P(&a).Merge(b)
	return a
}

// fold merges states into start, left to right.
func fold[S any, P merger[S]](start S, states []S) S {
	for _, s := range states {
		P(&start).Merge(s)
	}
	return start
}

// checkLaws reports the first semilattice law that a, b and c break, and
// whether Merge reports a change exactly when the state changes.
func checkLaws[S any, P merger[S]](a, b, c S) error {
	ab, ba := join[S, P](a, b), join[S, P](b, a)
	if !reflect.DeepEqual(ab, ba) {
		return fmt.Errorf("not commutative:\na   = %+v\nb   = %+v\na⊔b = %+v\nb⊔a = %+v", a, b, ab, ba)
	}
	if l, r := join[S, P](ab, c), join[S, P](a, join[S, P](b, c)); !reflect.DeepEqual(l, r) {
		return fmt.Errorf("not associative:\na       = %+v\nb       = %+v\nc       = %+v\n(a⊔b)⊔c = %+v\na⊔(b⊔c) = %+v", a, b, c, l, r)
	}
	if aa := join[S, P](a, a); !reflect.DeepEqual(aa, a) {
		return fmt.Errorf("not idempotent:\na   = %+v\na⊔a = %+v", a, aa)
	}
	if x := join[S, P](ab, a); !reflect.DeepEqual(x, ab) {
		return fmt.Errorf("a⊔b is not above a:\na       = %+v\nb       = %+v\n(a⊔b)⊔a = %+v", a, b, x)
	}
	for _, p := range [][2]S{{a, b}, {b, a}, {a, c}, {ab, b}, {a, a}} {
		x := p[0]
		changed := P(&x).Merge(p[1])
		if moved := !reflect.DeepEqual(x, p[0]); changed != moved {
			return fmt.Errorf("Merge reported changed=%v but the state changed=%v:\nx   = %+v\ny   = %+v\nx⊔y = %+v", changed, moved, p[0], p[1], x)
		}
	}
	return nil
}

// smallClock draws from twelve clocks (and, rarely, the zero clock) so that
// equal clocks, equal HLCs with different nodes and different values under
// one clock are all frequent.
func smallClock(r *rand.Rand) se.Clock {
	if r.IntN(16) == 0 {
		return se.Clock{}
	}
	return se.Clock{HLC: se.PackHLC(int64(1+r.IntN(3)), uint16(r.IntN(2))), Node: uint64(1 + r.IntN(2))}
}

// Small pools of values, so that ties of value are frequent too.
var (
	poolText   = []string{"", "a", "b", "张"}
	poolInt    = []string{"0", "1", "2", "-3"}
	poolBool   = []string{"false", "true"}
	poolHouses = []string{hhID, hhID, hhID, hhID2, ""}
)

// kindOfField tells a field's type by what SetField accepts: "text",
// "int" or "bool". It probes once, so the generators follow new fields.
var kindOfField = sync.OnceValue(func() map[string]string {
	kinds := make(map[string]string)
	probe := func(set func(name, text string) error, names []string) {
		for _, name := range names {
			switch {
			case set(name, "x") == nil:
				kinds[name] = "text"
			case set(name, "7") == nil:
				kinds[name] = "int"
			default:
				kinds[name] = "bool"
			}
		}
	}
	var h se.Household
	probe(func(n, v string) error { return h.SetField(n, v, clk(1, 1)) }, se.HouseholdFieldNames())
	var p se.Person
	probe(func(n, v string) error { return p.SetField(n, v, clk(1, 1)) }, se.PersonFieldNames())
	return kinds
})

// randValue is a value for the named field, from the small pools.
func randValue(r *rand.Rand, name string) string {
	switch kindOfField()[name] {
	case "int":
		return poolInt[r.IntN(len(poolInt))]
	case "bool":
		return poolBool[r.IntN(len(poolBool))]
	}
	return poolText[r.IntN(len(poolText))]
}

// randFields writes a random subset of the fields of row.
func randFields(tb testing.TB, r *rand.Rand, row fieldRow, names []string) {
	tb.Helper()
	for _, name := range names {
		if r.IntN(3) == 0 {
			continue // not written in this state
		}
		if err := row.SetField(name, randValue(r, name), smallClock(r)); err != nil {
			tb.Fatalf("SetField(%q): %v", name, err)
		}
	}
}

func randHousehold(tb testing.TB, r *rand.Rand) se.Household {
	h := se.Household{ID: hhID}
	randFields(tb, r, &h, se.HouseholdFieldNames())
	return h
}

func randPerson(tb testing.TB, r *rand.Rand) se.Person {
	p := se.Person{ID: personID, HouseholdID: poolHouses[r.IntN(len(poolHouses))]}
	randFields(tb, r, &p, se.PersonFieldNames())
	return p
}

// Add ids of the random tag elements: few, so that states of one add meet.
var poolAddIDs = []string{addA1, addA2, addB1}

func randTag(r *rand.Rand, addID string) se.TagElement {
	return se.TagElement{
		AddID:       addID,
		HouseholdID: poolHouses[r.IntN(len(poolHouses))],
		Category:    []string{"elderly", "elderly", "disabled", ""}[r.IntN(4)],
		Removed:     r.IntN(3) == 0,
		Clock:       smallClock(r),
	}
}

// textLess orders two rendered values as their register does.
func textLess(kind, a, b string) bool {
	switch kind {
	case "int":
		x, _ := strconv.ParseInt(a, 10, 64)
		y, _ := strconv.ParseInt(b, 10, 64)
		return x < y
	case "bool":
		return a == "false" && b == "true"
	}
	return a < b
}

// checkRegisters checks got against a model of per-field last-writer-wins:
// each field holds the largest (clock, value) written in any of states.
func checkRegisters[S any, P interface {
	merger[S]
	fieldRow
}](got S, names []string, states []S) error {
	gotClocks := P(&got).Clocks()
	for i, name := range names {
		var best se.Clock
		bestV := ""
		for j := range states {
			c := P(&states[j]).Clocks()[i]
			v, _ := P(&states[j]).Field(name)
			if j == 0 || c.Compare(best) > 0 || c == best && textLess(kindOfField()[name], bestV, v) {
				best, bestV = c, v
			}
		}
		if v, _ := P(&got).Field(name); gotClocks[i] != best || v != bestV {
			return fmt.Errorf("field %s = %q at %v; want the last write %q at %v", name, v, gotClocks[i], bestV, best)
		}
	}
	return nil
}

// gossip delivers every delta (some twice) to a random one of three
// replicas, interleaved with random pairwise syncs, then syncs every replica
// through a hub, as the server does. It returns the replicas' final states.
func gossip[S any, P merger[S]](r *rand.Rand, empty S, deltas []S) []S {
	replicas := []S{empty, empty, empty}
	var deliveries []S
	for _, d := range deltas {
		deliveries = append(deliveries, d)
		if r.IntN(4) == 0 {
			deliveries = append(deliveries, d) // a retried push
		}
	}
	r.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
	for _, d := range deliveries {
		P(&replicas[r.IntN(len(replicas))]).Merge(d)
		if r.IntN(3) == 0 {
			from, to := r.IntN(len(replicas)), r.IntN(len(replicas))
			P(&replicas[to]).Merge(replicas[from])
		}
	}
	hub := empty
	for _, i := range r.Perm(len(replicas)) {
		P(&hub).Merge(replicas[i])
	}
	for i := range replicas {
		P(&replicas[i]).Merge(hub)
	}
	return replicas
}

// checkConvergence checks the delivery of deltas in random schedules against
// the plain fold in generation order.
func checkConvergence[S any, P merger[S]](r *rand.Rand, empty S, deltas []S) error {
	want := fold[S, P](empty, deltas)
	shuffled := slices.Clone(deltas)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if got := fold[S, P](empty, shuffled); !reflect.DeepEqual(got, want) {
		return fmt.Errorf("fold depends on order:\ndeltas   %+v\nshuffled %+v\ngot  %+v\nwant %+v", deltas, shuffled, got, want)
	}
	// Merging pre-merged halves (a pull of a batch) is the same as one by one.
	k := r.IntN(len(deltas) + 1)
	halves := join[S, P](fold[S, P](empty, shuffled[k:]), fold[S, P](empty, shuffled[:k]))
	if !reflect.DeepEqual(halves, want) {
		return fmt.Errorf("merging batches differs from one by one:\ndeltas %+v\nsplit at %d: %+v\nwant %+v", shuffled, k, halves, want)
	}
	for i, got := range gossip[S, P](r, empty, deltas) {
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("replica %d diverged after gossip:\ndeltas %+v\ngot  %+v\nwant %+v", i, deltas, got, want)
		}
	}
	return nil
}

func TestPropertyHouseholdMerge(t *testing.T) {
	t.Parallel()
	r, seed := propRand(t)
	names := se.HouseholdFieldNames()
	empty := se.Household{ID: hhID}
	for round := range *roundsFlag {
		a, b, c := randHousehold(t, r), randHousehold(t, r), randHousehold(t, r)
		if err := checkLaws[se.Household](a, b, c); err != nil {
			t.Fatalf("seed %d, round %d: household %v", seed, round, err)
		}
		deltas := make([]se.Household, 1+r.IntN(6))
		for i := range deltas {
			deltas[i] = randHousehold(t, r)
		}
		if err := checkConvergence[se.Household](r, empty, deltas); err != nil {
			t.Fatalf("seed %d, round %d: household %v", seed, round, err)
		}
		got := fold[se.Household](empty, deltas)
		if err := checkRegisters[se.Household](got, names, append([]se.Household{empty}, deltas...)); err != nil {
			t.Fatalf("seed %d, round %d: household %v\ndeltas %+v", seed, round, err, deltas)
		}
	}
}

func TestPropertyPersonMerge(t *testing.T) {
	t.Parallel()
	r, seed := propRand(t)
	names := se.PersonFieldNames()
	empty := se.Person{ID: personID}
	for round := range *roundsFlag {
		a, b, c := randPerson(t, r), randPerson(t, r), randPerson(t, r)
		if err := checkLaws[se.Person](a, b, c); err != nil {
			t.Fatalf("seed %d, round %d: person %v", seed, round, err)
		}
		deltas := make([]se.Person, 1+r.IntN(6))
		for i := range deltas {
			deltas[i] = randPerson(t, r)
		}
		if err := checkConvergence[se.Person](r, empty, deltas); err != nil {
			t.Fatalf("seed %d, round %d: person %v", seed, round, err)
		}
		all := append([]se.Person{empty}, deltas...)
		got := fold[se.Person](empty, deltas)
		if err := checkRegisters[se.Person](got, names, all); err != nil {
			t.Fatalf("seed %d, round %d: person %v\ndeltas %+v", seed, round, err, deltas)
		}
		if want := minNonEmpty(all, func(p se.Person) string { return p.HouseholdID }); got.HouseholdID != want {
			t.Fatalf("seed %d, round %d: person household %q; want the smallest one sent, %q\ndeltas %+v", seed, round, got.HouseholdID, want, deltas)
		}
	}
}

// minNonEmpty is the smallest non-empty key of states, or "".
func minNonEmpty[S any](states []S, key func(S) string) string {
	m := ""
	for _, s := range states {
		if k := key(s); k != "" && (m == "" || k < m) {
			m = k
		}
	}
	return m
}

func TestPropertyTagMerge(t *testing.T) {
	t.Parallel()
	r, seed := propRand(t)
	for round := range *roundsFlag {
		// Laws of one element.
		a, b, c := randTag(r, addA1), randTag(r, addA1), randTag(r, addA1)
		if err := checkLaws[se.TagElement](a, b, c); err != nil {
			t.Fatalf("seed %d, round %d: tag %v", seed, round, err)
		}
		deltas := make([]se.TagElement, 1+r.IntN(6))
		for i := range deltas {
			deltas[i] = randTag(r, addA1)
		}
		if err := checkConvergence[se.TagElement](r, se.TagElement{AddID: addA1}, deltas); err != nil {
			t.Fatalf("seed %d, round %d: tag %v", seed, round, err)
		}
		got := fold[se.TagElement](se.TagElement{AddID: addA1}, deltas)
		want := se.TagElement{
			AddID:       addA1,
			HouseholdID: minNonEmpty(deltas, func(e se.TagElement) string { return e.HouseholdID }),
			Category:    minNonEmpty(deltas, func(e se.TagElement) string { return e.Category }),
			Removed:     slices.ContainsFunc(deltas, func(e se.TagElement) bool { return e.Removed }),
			Clock:       slices.MaxFunc(deltas, func(x, y se.TagElement) int { return x.Clock.Compare(y.Clock) }).Clock,
		}
		if got != want {
			t.Fatalf("seed %d, round %d: tag element = %+v; want %+v\ndeltas %+v", seed, round, got, want, deltas)
		}

		// The set: adds and removes of several elements on three replicas
		// in random schedules end up with the same categories, those of the
		// adds that no replica removed.
		var ops []se.TagElement
		for range 1 + r.IntN(8) {
			ops = append(ops, randTag(r, poolAddIDs[r.IntN(len(poolAddIDs))]))
		}
		if err := checkTagSets(r, ops); err != nil {
			t.Fatalf("seed %d, round %d: tag set %v", seed, round, err)
		}
	}
}

// checkTagSets delivers ops to three replicas of a tag set in a random
// schedule, syncs them and compares their elements and categories.
func checkTagSets(r *rand.Rand, ops []se.TagElement) error {
	replicas := []tagReplica{{}, {}, {}}
	for _, i := range r.Perm(len(ops)) {
		replicas[r.IntN(len(replicas))].apply(ops[i])
		if r.IntN(3) == 0 {
			replicas[r.IntN(len(replicas))].apply(replicas[r.IntN(len(replicas))].elements()...)
		}
	}
	syncTags(replicas...)

	removed := make(map[string]bool)
	category := make(map[string]string)
	for _, op := range ops {
		removed[op.AddID] = removed[op.AddID] || op.Removed
		if c := category[op.AddID]; op.Category != "" && (c == "" || op.Category < c) {
			category[op.AddID] = op.Category
		}
	}
	var want []string
	for id := range category {
		if !removed[id] && !slices.Contains(want, category[id]) {
			want = append(want, category[id])
		}
	}
	for id := range removed {
		if _, ok := category[id]; !ok && !removed[id] && !slices.Contains(want, "") {
			want = append(want, "") // an add that carried no category
		}
	}
	slices.Sort(want)
	for i, rep := range replicas {
		if !maps.Equal(rep, replicas[0]) {
			return fmt.Errorf("replica %d diverged:\nops %+v\ngot  %+v\nwant %+v", i, ops, rep.elements(), replicas[0].elements())
		}
		if got := rep.categories(); !slices.Equal(got, want) {
			return fmt.Errorf("replica %d has categories %q; want %q\nops %+v", i, got, want, ops)
		}
	}
	return nil
}

// Dates for random amendments.
var poolDates = []time.Time{
	{},
	time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
	time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC),
}

// randAmendments are n amendments of visitID with distinct ids (in an order
// unrelated to their index) and clocks from the small space.
func randAmendments(r *rand.Rand, n int) []se.Amendment {
	out := make([]se.Amendment, n)
	for i, k := range r.Perm(n) {
		a := se.Amendment{
			ID: amendmentID(k), VisitID: visitID, AuthorID: authorID,
			Kind:      []se.AmendmentKind{se.AmendCorrect, se.AmendCorrect, se.AmendVoid, se.AmendUnspecified}[r.IntN(4)],
			Reason:    []string{"r1", "r2"}[r.IntN(2)],
			Form:      se.VisitForm(r.IntN(6)),
			VisitedAt: poolDates[r.IntN(len(poolDates))],
			Clock:     smallClock(r),
		}
		if r.IntN(2) == 0 {
			a.Notes = ptr(poolText[r.IntN(len(poolText))])
		}
		out[i] = a
	}
	return out
}

// checkEffective checks a view against a model: each corrected field holds
// the correction with the largest (clock, id) that sets it; the visit is
// voided if any amendment voids it, with the reason of one of the voids.
func checkEffective(v se.Visit, amendments []se.Amendment, got se.VisitView) error {
	want := v
	var last [3]*se.Amendment // newest correction of notes, form, date
	newer := func(a, b *se.Amendment) bool {
		return b == nil || cmp.Or(a.Clock.Compare(b.Clock), cmp.Compare(a.ID, b.ID)) > 0
	}
	voided, reasons := false, map[string]bool{}
	for i := range amendments {
		a := &amendments[i]
		switch a.Kind {
		case se.AmendVoid:
			voided, reasons[a.Reason] = true, true
		case se.AmendCorrect:
			if a.Notes != nil && newer(a, last[0]) {
				last[0] = a
			}
			if a.Form != se.FormUnspecified && newer(a, last[1]) {
				last[1] = a
			}
			if !a.VisitedAt.IsZero() && newer(a, last[2]) {
				last[2] = a
			}
		}
	}
	if last[0] != nil {
		want.Notes = *last[0].Notes
	}
	if last[1] != nil {
		want.Form = last[1].Form
	}
	if last[2] != nil {
		want.VisitedAt = last[2].VisitedAt
	}
	if !reflect.DeepEqual(got.Visit, want) {
		return fmt.Errorf("view = %+v; want %+v", got.Visit, want)
	}
	if got.Voided != voided || voided && !reasons[got.VoidReason] || !voided && got.VoidReason != "" {
		return fmt.Errorf("voided %v (%q); want %v with one of %v", got.Voided, got.VoidReason, voided, slices.Collect(maps.Keys(reasons)))
	}
	if len(got.Amendments) != len(amendments) {
		return fmt.Errorf("view keeps %d amendments of %d", len(got.Amendments), len(amendments))
	}
	if !slices.IsSortedFunc(got.Amendments, func(a, b se.Amendment) int { return a.Clock.Compare(b.Clock) }) {
		return fmt.Errorf("view's amendments are not in clock order: %+v", got.Amendments)
	}
	return nil
}

func TestPropertyEffective(t *testing.T) {
	t.Parallel()
	r, seed := propRand(t)
	v := validVisit()
	for round := range *roundsFlag {
		amendments := randAmendments(r, r.IntN(8))
		want := se.Effective(v, amendments)
		if err := checkEffective(v, amendments, want); err != nil {
			t.Fatalf("seed %d, round %d: %v\namendments %+v", seed, round, err, amendments)
		}
		for range 3 {
			perm := slices.Clone(amendments)
			r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
			if got := se.Effective(v, perm); !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d, round %d: view depends on the order of amendments\norder %v: %+v\norder %v: %+v",
					seed, round, ids(amendments), want, ids(perm), got)
			}
		}
		// An amendment delivered twice reads the same.
		if len(amendments) > 0 {
			again := append(slices.Clone(amendments), amendments[r.IntN(len(amendments))])
			got := se.Effective(v, again)
			got.Amendments, want.Amendments = nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d, round %d: an amendment delivered twice changes the view\n got %+v\nwant %+v", seed, round, got, want)
			}
		}
	}
}

// The flags must be sane, so that a typo does not silently test nothing.
func TestPropertyFlags(t *testing.T) {
	if *roundsFlag < 1 {
		t.Fatalf("-syncengine.rounds=%d: want at least 1", *roundsFlag)
	}
}
