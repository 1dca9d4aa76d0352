package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/fieldwork"
)

const threeYears = 3 * 365 * 24 * time.Hour

// TestPhoneClockAheadDoesNotWinLaterEdits: a phone whose clock jumps years
// ahead while offline edits a field; its push is refused for clock skew, it
// re-stamps its unsent change with the server's time and pushes again; a
// later edit by another worker then wins, everywhere.
func TestPhoneClockAheadDoesNotWinLaterEdits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	wa, _ := e.worker("a", e.Grids[0])
	wb, _ := e.worker("b", e.Grids[0])
	aNow := &fakeNow{}
	a := e.device("a", wa, sdk.WithNow(aNow.Now))
	b := e.device("b", wb)
	mustSync(t, a)
	mustSync(t, b)
	h, err := b.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "first"})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, b)
	mustSync(t, a)

	aNow.Set(threeYears) // the phone's clock is set to three years ahead
	if err := a.EditHousehold(ctx, h, map[string]string{"head_name": "from the future", "phone_mobile": "139"}); err != nil {
		t.Fatal(err)
	}
	rep := mustSync(t, a)
	if rep.Restamped != 1 || rep.Pushed != 1 {
		t.Fatalf("a's sync re-stamped %d and pushed %d changes, want 1 and 1", rep.Restamped, rep.Pushed)
	}
	if err := b.EditHousehold(ctx, h, map[string]string{"head_name": "later"}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, b)
	mustSync(t, a)
	for name, r := range map[string]*sdk.Replica{"a": a, "b": b} {
		d, err := r.Household(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if d.Household.HeadName.Value != "later" {
			t.Errorf("%s: head_name = %q: the phone set years ahead won a later edit", name, d.Household.HeadName.Value)
		}
		if d.Household.PhoneMobile.Value != "139" {
			t.Errorf("%s: phone_mobile = %q: the re-stamped edit was lost", name, d.Household.PhoneMobile.Value)
		}
		if limit := time.Now().Add(time.Hour); d.Household.HeadName.Clock.Time().After(limit) || d.Household.PhoneMobile.Clock.Time().After(limit) {
			t.Errorf("%s: a clock from the future was stored", name)
		}
	}
	assertSameState(t, "a vs server", e.serverState(e.Grids[0]), dump(t, a))
	assertSameState(t, "b vs server", e.serverState(e.Grids[0]), dump(t, b))
}

// TestPhoneEnrolledWithClockAheadStampsServerTime: a phone that was already
// years ahead when enrolled learns the server's time at enrolment and stamps
// its writes with it, so nothing needs re-stamping.
func TestPhoneEnrolledWithClockAheadStampsServerTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	wa, _ := e.worker("a", e.Grids[0])
	aNow := &fakeNow{}
	aNow.Set(threeYears)
	a := e.device("a", wa, sdk.WithNow(aNow.Now))
	mustSync(t, a)
	h, err := a.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "x"})
	if err != nil {
		t.Fatal(err)
	}
	rep := mustSync(t, a)
	if rep.Restamped != 0 {
		t.Errorf("re-stamped %d changes; the offset learned at enrolment should have prevented skew", rep.Restamped)
	}
	d, _ := a.Household(ctx, h)
	if d.Household.HeadName.Clock.Time().After(time.Now().Add(time.Minute)) {
		t.Errorf("write stamped %s, in the phone's wrong future", d.Household.HeadName.Clock.Time())
	}
}

// sharedKeyPerson is two workers' phones sharing a grid, both showing a
// household of it tagged as a key person.
func sharedKeyPerson(t *testing.T) (*env, *sdk.Replica, *sdk.Replica, string, string) {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t, 1)
	wa, _ := e.worker("a", e.Grids[0])
	wb, _ := e.worker("b", e.Grids[0])
	a, b := e.device("a", wa), e.device("b", wb)
	mustSync(t, a)
	mustSync(t, b)
	h, err := a.RegisterHousehold(ctx, e.Grids[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AddTag(ctx, h, "key_person"); err != nil {
		t.Fatal(err)
	}
	mustSync(t, a)
	mustSync(t, b)
	return e, a, b, wa, h
}

// TestConcurrentTagAddAndRemoveKeepsTag: one worker removes a category while
// another, offline, adds it again: add wins; a remove only removes what it saw.
func TestConcurrentTagAddAndRemoveKeepsTag(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, a, b, _, h := sharedKeyPerson(t)

	if err := a.RemoveTag(ctx, h, "key_person"); err != nil { // a removes the tag it saw
		t.Fatal(err)
	}
	if err := b.RemoveTag(ctx, h, "key_person"); err != nil { // b removes it too...
		t.Fatal(err)
	}
	if err := b.AddTag(ctx, h, "key_person"); err != nil { // ...and adds it back, concurrently with a's remove
		t.Fatal(err)
	}
	for range 2 {
		mustSync(t, a)
		mustSync(t, b)
	}
	for name, r := range map[string]*sdk.Replica{"a": a, "b": b} {
		d, err := r.Household(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.Categories, []string{"key_person"}) {
			t.Errorf("%s: categories %v, want the concurrently added tag kept", name, d.Categories)
		}
	}
}

// TestReAddOfAShownTagWins: b re-adds a key-person tag its phone already
// shows while a removes it offline. The re-add is an add of its own, so it
// wins (add-wins): the household stays a key person on both phones and the
// server, and on the must-visit list.
func TestReAddOfAShownTagWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, a, b, wa, h := sharedKeyPerson(t)

	if err := a.RemoveTag(ctx, h, "key_person"); err != nil { // a removes the tag it saw, offline
		t.Fatal(err)
	}
	if err := b.AddTag(ctx, h, "key_person"); err != nil { // b, which shows it, adds it again
		t.Fatal(err)
	}
	for range 2 {
		mustSync(t, a)
		mustSync(t, b)
	}
	for name, r := range map[string]*sdk.Replica{"a": a, "b": b, "server's view (a new phone)": e.device("c", wa)} {
		mustSync(t, r)
		d, err := r.Household(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.Categories, []string{"key_person"}) {
			t.Errorf("%s: categories %v, want the re-added key-person tag kept", name, d.Categories)
		}
		due, err := r.Due(ctx, "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(due, func(d fieldwork.DueItem) bool { return d.Household.ID == h }) {
			t.Errorf("%s: the key person is not on the must-visit list", name)
		}
	}
}

// TestRestampedWriteStaysAfterWhatThePhoneSaw: b's clock runs four minutes
// ahead (within the bound), so a row a pulls from b carries a clock ahead of
// the server's time. a then writes the same field with its own clock years
// ahead; the re-stamped write must still come after b's, since a wrote it
// having seen b's — or a would show its value while everyone else keeps b's.
func TestRestampedWriteStaysAfterWhatThePhoneSaw(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	wa, _ := e.worker("a", e.Grids[0])
	wb, _ := e.worker("b", e.Grids[0])
	aNow, bNow := &fakeNow{}, &fakeNow{}
	a := e.device("a", wa, sdk.WithNow(aNow.Now))
	b := e.device("b", wb, sdk.WithNow(bNow.Now))
	mustSync(t, a)
	mustSync(t, b)
	h, err := b.RegisterHousehold(ctx, e.Grids[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	bNow.Set(4 * time.Minute)
	if err := b.EditHousehold(ctx, h, map[string]string{"head_name": "b, four minutes ahead"}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, b)
	mustSync(t, a)

	aNow.Set(threeYears)
	if err := a.EditHousehold(ctx, h, map[string]string{"head_name": "a, after seeing b's"}); err != nil {
		t.Fatal(err)
	}
	if rep := mustSync(t, a); rep.Restamped != 1 {
		t.Fatalf("re-stamped %d changes, want 1", rep.Restamped)
	}
	mustSync(t, b)
	for name, r := range map[string]*sdk.Replica{"a": a, "b": b} {
		d, err := r.Household(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if d.Household.HeadName.Value != "a, after seeing b's" {
			t.Errorf("%s: head_name = %q, want a's later write", name, d.Household.HeadName.Value)
		}
	}
	assertSameState(t, "a vs server", e.serverState(e.Grids[0]), dump(t, a))
}
