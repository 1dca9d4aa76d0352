package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/doorbook/doorbook/server/store"
)

// TestPhoneOfflinePastTheHorizon: a phone with unsent visits and edits is
// off for longer than the server's horizon, while its co-worker goes on
// and the server collects its history. Back online, the phone is told to
// start over, does, and loses none of its writes; both phones end equal to
// the server.
func TestPhoneOfflinePastTheHorizon(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, a, b, _, h := sharedKeyPerson(t)

	// a goes offline with work; b goes on, and takes the tag off again.
	var visits []string
	for range 3 {
		id, err := a.RecordVisit(ctx, sdkVisit(h))
		if err != nil {
			t.Fatal(err)
		}
		visits = append(visits, id)
	}
	if err := a.EditHousehold(ctx, h, map[string]string{"phone_mobile": "13900000001"}); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveTag(ctx, h, "key_person"); err != nil {
		t.Fatal(err)
	}
	mustSync(t, b)

	// A hundred days pass on the server's clock; b syncs now and then, and
	// the server collects what only a phone like a's still needed.
	e.now.Add(100 * 24 * time.Hour)
	if err := b.EditHousehold(ctx, h, map[string]string{"notes": "a hundred days on"}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, b)
	c, err := e.Store.Collect(ctx, store.DefaultHorizon)
	if err != nil {
		t.Fatal(err)
	}
	if c.Tombstones == 0 || c.Commits == 0 {
		t.Fatalf("collected %+v: want the removed tag and the old commits", c)
	}

	rep := mustSync(t, a)
	if !rep.Reset {
		t.Errorf("a's sync past the horizon did not start over: %+v", rep)
	}
	mustSync(t, b)
	mustSync(t, a)
	server := e.serverState(e.Grids[0])
	onServer := map[string]bool{}
	for _, v := range server.Visits {
		onServer[v.ID] = true
	}
	for _, id := range visits {
		if !onServer[id] {
			t.Errorf("a's offline visit %s is not on the server", id)
		}
	}
	for _, hh := range server.Households {
		if hh.ID == h && (hh.PhoneMobile.Value != "13900000001" || hh.Notes.Value != "a hundred days on") {
			t.Errorf("household after both phones synced: phone %q notes %q; want a's and b's edits", hh.PhoneMobile.Value, hh.Notes.Value)
		}
	}
	assertSameState(t, "a vs the server", server, dump(t, a))
	assertSameState(t, "b vs the server", server, dump(t, b))
}

// TestHorizonBringsNothingBack: a phone back after the horizon starts over
// without pushing again what the server acknowledged long ago, so a tag a
// co-worker removed stays removed; and its pending edit of a person a
// co-worker deleted does not bring the person back, though the server has
// forgotten the deletion's tombstone: the edit is set aside, visible.
func TestHorizonBringsNothingBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, a, b, _, h := sharedKeyPerson(t)
	p, err := a.AddPerson(ctx, h, map[string]string{"name": "张三"})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, a)
	mustSync(t, b)

	// a edits the person offline; b removes the tag and deletes the person.
	if err := a.EditPerson(ctx, p, map[string]string{"name": "张三丰"}); err != nil {
		t.Fatal(err)
	}
	if err := b.RemoveTag(ctx, h, "key_person"); err != nil {
		t.Fatal(err)
	}
	if err := b.EditPerson(ctx, p, map[string]string{"deleted": "true"}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, b)
	e.now.Add(100 * 24 * time.Hour)
	if err := b.EditHousehold(ctx, h, map[string]string{"notes": "later"}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, b)
	if _, err := e.Store.Collect(ctx, store.DefaultHorizon); err != nil {
		t.Fatal(err)
	}

	rep := mustSync(t, a)
	if !rep.Reset || rep.Pushed != 0 || rep.Rejected != 1 {
		t.Errorf("a's sync after the horizon: %+v; want a start over pushing nothing again, its edit of the deleted person set aside", rep)
	}
	mustSync(t, b)
	mustSync(t, a)
	server := e.serverState(e.Grids[0])
	for _, tag := range server.Tags {
		if !tag.Removed {
			t.Errorf("tag %+v is live on the server again", tag)
		}
	}
	for _, pr := range server.Persons {
		if pr.ID == p && !pr.Deleted.Value {
			t.Errorf("the deleted person is back on the server: %+v", pr)
		}
	}
	assertSameState(t, "a vs the server", server, dump(t, a))
	assertSameState(t, "b vs the server", server, dump(t, b))
}
