package e2e

import (
	"context"
	"testing"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
)

// TestSnapshotBootstrapEqualsRows: a new phone that takes its scope as a
// SQLite file (sdk.WithSnapshotBootstrap) ends with exactly what a phone
// that takes it as pages of rows has, and what the server holds: persons,
// tags and their tombstones, a deleted household, amendments, and a group
// visit that also covers a household outside the scope. It then syncs on
// from the snapshot's cursor like any replica, and its clock has observed
// the newest clock in the file: an edit made on it after the bootstrap wins
// over the one it replaces, even if that was stamped ahead of its clock.
func TestSnapshotBootstrapEqualsRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 3)
	mine := []string{e.Grids[0], e.Grids[1]}
	w, _ := e.worker("li", mine...)
	// The scope is written while the server's clock runs three minutes
	// ahead (phones set theirs by it); it is then set right and the server
	// restarted, so that a new phone's clock starts behind every clock of
	// the scope.
	e.now.Set(3 * time.Minute)
	a := e.device("li", w)
	mustSync(t, a)
	var hs []string
	for i, g := range []string{e.Grids[0], e.Grids[0], e.Grids[1], e.Grids[1]} {
		h, err := a.RegisterHousehold(ctx, g, map[string]string{"head_name": "household", "address": "no. 1"})
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
		if _, err := a.AddPerson(ctx, h, map[string]string{"name": "resident", "relation": "self"}); err != nil {
			t.Fatal(err)
		}
		if err := a.AddTag(ctx, h, "elderly_alone"); err != nil {
			t.Fatal(err)
		}
		for range 3 + i {
			if _, err := a.RecordVisit(ctx, sdkVisit(h)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := a.RemoveTag(ctx, hs[1], "elderly_alone"); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteHousehold(ctx, hs[3]); err != nil {
		t.Fatal(err)
	}
	group, err := a.RecordVisit(ctx, sdkVisit(hs[0], hs[2]))
	if err != nil {
		t.Fatal(err)
	}
	notes := "corrected"
	if _, err := a.AmendVisit(ctx, group, "typo", sdk.Correction{Notes: &notes}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, a)
	// Another worker's group visit covers a household of li's scope and one
	// of a grid li does not have.
	w2, _ := e.worker("wang", e.Grids[0], e.Grids[2])
	b := e.device("wang", w2)
	mustSync(t, b)
	outside, err := b.RegisterHousehold(ctx, e.Grids[2], map[string]string{"head_name": "outside"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.RecordVisit(ctx, sdkVisit(hs[0], outside)); err != nil {
		t.Fatal(err)
	}
	mustSync(t, b)

	e.now.Set(0)
	e.stop()
	e.start()
	rows := e.device("li-rows", w)
	snap := e.device("li-snapshot", w, sdk.WithSnapshotBootstrap())
	mustSync(t, rows)
	rep := mustSync(t, snap)
	if rep.Bootstrapped != len(hs) {
		t.Errorf("snapshot bootstrap reported %d households, want %d", rep.Bootstrapped, len(hs))
	}
	server := e.serverState(mine...)
	assertSameState(t, "row bootstrap vs server", server, dump(t, rows))
	assertSameState(t, "snapshot bootstrap vs server", server, dump(t, snap))

	// Before any pull: the snapshot phone's edit of a field that a's fast
	// clock wrote must win.
	if err := snap.EditHousehold(ctx, hs[0], map[string]string{"address": "no. 2, after the move"}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, snap)
	mustSync(t, a)
	d, err := a.Household(ctx, hs[0])
	if err != nil {
		t.Fatal(err)
	}
	if d.Household.Address.Value != "no. 2, after the move" {
		t.Errorf("address after the snapshot phone's edit: %q; its clock did not observe the snapshot's", d.Household.Address.Value)
	}
	// On from the snapshot's cursor: a's next edit and visit arrive by pull.
	if err := a.EditHousehold(ctx, hs[2], map[string]string{"phone_mobile": "13800000000"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RecordVisit(ctx, sdkVisit(hs[2])); err != nil {
		t.Fatal(err)
	}
	mustSync(t, a)
	mustSync(t, snap)
	assertSameState(t, "snapshot replica after a pull", e.serverState(mine...), dump(t, snap))

	assertSameState(t, "snapshot replica at the end", e.serverState(mine...), dump(t, snap))
}
