package e2e

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/internal/demo"
	"github.com/doorbook/doorbook/internal/faultproxy"
	"github.com/doorbook/doorbook/server/store"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
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
		if err := a.AddTag(ctx, h, "five_guarantees"); err != nil {
			t.Fatal(err)
		}
		for range 3 + i {
			if _, err := a.RecordVisit(ctx, sdkVisit(h)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := a.RemoveTag(ctx, hs[1], "five_guarantees"); err != nil {
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

	// Two campaigns of the scope, of two windows: the file carries the
	// visits summed over each (Check, in dump, compares them with a
	// recomputation on the phone).
	for _, win := range [][2]time.Duration{{-24 * time.Hour, 30 * 24 * time.Hour}, {-60 * 24 * time.Hour, -30 * 24 * time.Hour}} {
		now := time.Now()
		if _, err := e.Admin.PutCampaign(ctx, &pb.PutCampaignRequest{NodeId: proto.String(e.Grids[0]), Name: proto.String("campaign"),
			StartsAt: timestamppb.New(now.Add(win[0])), EndsAt: timestamppb.New(now.Add(win[1]))}); err != nil {
			t.Fatal(err)
		}
	}

	e.now.Set(0)
	e.stop()
	e.start()
	rows := e.device("li-rows", w)
	snap := e.device("li-snapshot", w, sdk.WithSnapshotBootstrap())
	if rep := mustSync(t, rows); rep.Snapshot || rep.Adopted {
		t.Errorf("a phone bootstrapping by rows reports snapshot %v, adopted %v", rep.Snapshot, rep.Adopted)
	}
	rep := mustSync(t, snap)
	if rep.Bootstrapped != len(hs) {
		t.Errorf("snapshot bootstrap reported %d households, want %d", rep.Bootstrapped, len(hs))
	}
	// A new replica takes the file as its database, on a backend that
	// writes files; on one that does not, it takes pages.
	files := true
	sn, err := e.Store.Snapshot(ctx, store.Principal{Kind: store.KindWorker, ID: w}, 0)
	switch {
	case errors.Is(err, store.ErrNoSnapshot):
		files = false
	case err != nil:
		t.Fatal(err)
	default:
		sn.Release()
	}
	if rep.Snapshot != files || rep.Adopted != files {
		t.Errorf("a new phone's snapshot bootstrap: snapshot %v, adopted %v; want both %v, as the backend writes files", rep.Snapshot, rep.Adopted, files)
	}
	if cs, err := snap.Campaigns(ctx); err != nil || len(cs) != 2 {
		t.Errorf("campaigns on the snapshot phone: %d (%v), want 2", len(cs), err)
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

// TestSnapshotCutResumes: a snapshot download cut half way applies
// nothing; the next sync fetches only the rest of the same file (the part
// held beside the replica meanwhile), and the phone ends equal to the
// server. Reopened, the replica drops a part it held
// (TestOpenRemovesAnUnfinishedSnapshot).
func TestSnapshotCutResumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 2)
	worker, _ := e.worker("li", e.Grids...)
	gen := demo.NewGenerator(7, time.Now().Add(-time.Hour))
	for _, g := range e.Grids {
		b := gen.Grid(g, demo.Shape{HouseholdsPerGrid: 60, PersonsPerHousehold: 2, VisitsPerHousehold: 2, NotesBytes: 300}, "li", worker)
		e.importRows(b)
	}
	snap, err := e.Store.Snapshot(ctx, store.Principal{Kind: store.KindWorker, ID: worker}, 0)
	if errors.Is(err, store.ErrNoSnapshot) {
		t.Skip("this backend offers no snapshots: a cut bootstrap by pages resumes by pages (TestBootstrapCutMidStreamResumes)")
	}
	if err != nil {
		t.Fatal(err)
	}
	snap.Release()
	p := startProxy(t, e, faultproxy.Config{Seed: 7})
	whole := enrollVia(t, e, p, "whole", worker, sdk.WithSnapshotBootstrap())
	before := p.Stats()
	mustSync(t, whole)
	full := p.Stats().Sub(before).Procedures["Bootstrap"].BytesDown

	cut := enrollVia(t, e, p, "cut", worker, sdk.WithSnapshotBootstrap())
	if err := p.SetFaults(faultproxy.Faults{Procedures: []string{"Bootstrap"}, Cut: 1, CutMinBytes: full / 2, CutMaxBytes: full / 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := cut.Sync(ctx); err == nil || !networkError(err) {
		t.Fatalf("sync with the snapshot cut after %d of %d bytes: err = %v, want a network error", full/2, full, err)
	}
	st, err := cut.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Households != 0 || !st.Bootstrapping {
		t.Errorf("after the cut: %d households, bootstrapping=%v; want none applied and the bootstrap still to do", st.Households, st.Bootstrapping)
	}
	if info, err := os.Stat(cut.Path() + ".snapshot"); err != nil || info.Size() == 0 {
		t.Errorf("the cut download's part beside the replica: %v, %v; want what it got", info, err)
	}
	if err := p.SetFaults(faultproxy.Faults{}); err != nil {
		t.Fatal(err)
	}
	before = p.Stats()
	rep := mustSync(t, cut)
	if rest := p.Stats().Sub(before).Procedures["Bootstrap"].BytesDown; rest > full*3/4 {
		t.Errorf("the resumed download took %d bytes of the %d of a whole one, want about half", rest, full)
	}
	if _, err := os.Stat(cut.Path() + ".snapshot"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the finished download is still beside the replica (%v)", err)
	}
	want := e.serverState(e.Grids...)
	if rep.Bootstrapped != len(want.Households) {
		t.Errorf("second sync bootstrapped %d households, want %d", rep.Bootstrapped, len(want.Households))
	}
	assertSameState(t, "phone after the cut and a whole snapshot", want, dump(t, cut))
	assertSameState(t, "phone with a whole snapshot", want, dump(t, whole))
}

// TestSnapshotReused: a second new device of the same scope, a little
// later, is given the file written for the first (one copy of the rows,
// not two), with that file's cursor: what changed since (a visit, an
// edit) reaches it through the feed, and it ends equal to the server. A
// device of another scope, or one after an erasure, gets a file of its
// own.
func TestSnapshotReused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 2)
	worker, _ := e.worker("li", e.Grids[0])
	other, _ := e.worker("wang", e.Grids...)
	gen := demo.NewGenerator(11, time.Now().Add(-time.Hour))
	b := gen.Grid(e.Grids[0], demo.Shape{HouseholdsPerGrid: 20, PersonsPerHousehold: 2, VisitsPerHousehold: 2, NotesBytes: 50}, "li", worker)
	e.importRows(b)
	li := store.Principal{Kind: store.KindWorker, ID: worker}
	first, err := e.Store.Snapshot(ctx, li, 0)
	if errors.Is(err, store.ErrNoSnapshot) {
		t.Skip("this backend offers no snapshots: phones bootstrap by pages")
	}
	if err != nil {
		t.Fatal(err)
	}
	if first.Reused {
		t.Fatal("the first snapshot of a scope was reused")
	}
	first.Release()

	// The scope changes after the file was written.
	writer := e.device("li-writer", worker)
	mustSync(t, writer)
	h := b.Households[0].ID
	if _, err := writer.RecordVisit(ctx, sdkVisit(h)); err != nil {
		t.Fatal(err)
	}
	if err := writer.EditHousehold(ctx, h, map[string]string{"phone_mobile": "13900000000"}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, writer)

	again, err := e.Store.Snapshot(ctx, li, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Reused || again.Path != first.Path || again.Cursor != first.Cursor {
		t.Errorf("second snapshot of the scope: reused %v, %s at %d; want %s at %d again", again.Reused, again.Path, again.Cursor, first.Path, first.Cursor)
	}
	again.Release()
	if _, err := os.Stat(first.Path); err != nil {
		t.Errorf("the kept snapshot is gone once sent: %v", err)
	}
	theirs, err := e.Store.Snapshot(ctx, store.Principal{Kind: store.KindWorker, ID: other}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if theirs.Reused || theirs.Path == first.Path {
		t.Errorf("another scope's snapshot: reused %v, %s", theirs.Reused, theirs.Path)
	}
	theirs.Release()

	// A phone bootstrapping from the reused file ends as the server is.
	phone := e.device("li-phone", worker, sdk.WithSnapshotBootstrap())
	mustSync(t, phone)
	assertSameState(t, "phone from a reused snapshot", e.serverState(e.Grids[0]), dump(t, phone))

	// An erasure: the kept files go, and the next device's is new.
	if _, err := e.Admin.ErasePersonalData(ctx, &pb.ErasePersonalDataRequest{Target: &pb.ErasePersonalDataRequest_HouseholdId{HouseholdId: h}, Reason: "request"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(first.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a snapshot holding erased data is kept after the erasure (%v)", err)
	}
	after, err := e.Store.Snapshot(ctx, li, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer after.Release()
	if after.Reused {
		t.Error("a snapshot written before an erasure was given after it")
	}
}

// TestSnapshotFromSize: by default a new phone takes its scope as a file
// only from sdk.DefaultSnapshotHouseholds households; below the size it
// asks for (sdk.WithSnapshotBootstrapFrom) it gets pages of rows, from it
// a file; either way it ends as the server is.
func TestSnapshotFromSize(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	worker, _ := e.worker("li", e.Grids[0])
	gen := demo.NewGenerator(5, time.Now().Add(-time.Hour))
	e.importRows(gen.Grid(e.Grids[0], demo.Shape{HouseholdsPerGrid: 60, PersonsPerHousehold: 1, VisitsPerHousehold: 1}, "li", worker))
	if _, err := e.Store.Snapshot(ctx, store.Principal{Kind: store.KindWorker, ID: worker}, 0); errors.Is(err, store.ErrNoSnapshot) {
		t.Skip("this backend offers no snapshots: phones bootstrap by pages")
	} else if err != nil {
		t.Fatal(err)
	}
	want := e.serverState(e.Grids[0])
	for _, c := range []struct {
		name string
		opts []sdk.Option
		file bool
	}{
		{"default", nil, false},
		{"from 61", []sdk.Option{sdk.WithSnapshotBootstrapFrom(61)}, false},
		{"from 60", []sdk.Option{sdk.WithSnapshotBootstrapFrom(60)}, true},
		{"always", []sdk.Option{sdk.WithSnapshotBootstrap()}, true},
		{"rows", []sdk.Option{sdk.WithRowBootstrap()}, false},
	} {
		r := e.device("li "+c.name, worker, c.opts...)
		rep := mustSync(t, r)
		if rep.Snapshot != c.file || rep.Bootstrapped != 60 {
			t.Errorf("%s: a file: %v, %d households; want %v, 60", c.name, rep.Snapshot, rep.Bootstrapped, c.file)
		}
		assertSameState(t, c.name, want, dump(t, r))
	}
}
