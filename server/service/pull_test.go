package service

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/doorbook/doorbook/internal/demo"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/sqlite"
	"github.com/doorbook/doorbook/syncengine"
)

// TestPullWritesOnlyWhatJudges: a pull from a cursor answers while the one
// writer is held by another write, when no household moved and no grid
// changed hands since the position the store holds for its device (the
// position would judge no push otherwise: before, every such pull queued
// behind the writer to note it). After a move, a pull past it writes the
// position it shows, which ends the device's grace (storetest's
// GraceEndsWhenApplied, MoveGrace and GridRemovalGrace hold the verdicts).
func TestPullWritesOnlyWhatJudges(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	backend, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	s := New(backend, WithClock(func() time.Time { return now }))
	t.Cleanup(func() { s.Close() })
	admin, _, err := s.CreateAdmin(ctx, "root", "")
	if err != nil {
		t.Fatal(err)
	}
	var community string
	for _, n := range []store.OrgNode{{Level: store.LevelDistrict, Name: "区"}, {Level: store.LevelStreet, Name: "街道"},
		{Level: store.LevelCommunity, Name: "社区"}} {
		n.ParentID = community
		made, err := s.CreateOrgNode(ctx, admin, n)
		if err != nil {
			t.Fatal(err)
		}
		community = made.ID
	}
	var grids []string
	for _, name := range []string{"一网格", "二网格"} {
		g, err := s.CreateOrgNode(ctx, admin, store.OrgNode{ParentID: community, Level: store.LevelGrid, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		grids = append(grids, g.ID)
	}
	w, err := s.CreateWorker(ctx, admin, store.Worker{Name: "网格员", Role: 1, GridIDs: grids[:1]})
	if err != nil {
		t.Fatal(err)
	}
	code, err := s.CreateEnrollmentCode(ctx, admin, w.ID, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Enroll(ctx, code, "phone", now)
	if err != nil {
		t.Fatal(err)
	}
	dev := store.Principal{Kind: store.KindWorker, ID: w.ID, Name: w.Name, CredentialID: e.DeviceID}
	grid := demo.NewGenerator(1, now.AddDate(0, 0, -10)).Grid(grids[0], demo.Shape{HouseholdsPerGrid: 3, VisitsPerHousehold: 1}, w.Name, w.ID)
	if err := s.Import(ctx, admin, grid); err != nil {
		t.Fatal(err)
	}
	pull := func(cursor uint64) uint64 {
		t.Helper()
		b, err := s.Pull(ctx, dev, cursor, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return b.Cursor
	}
	// known reads the position the store holds for the device, and the
	// feed position of cursor c.
	known := func(c uint64) (known, position uint64) {
		t.Helper()
		err := s.db.View(ctx, func(tx store.Tx) error {
			var err error
			if known, err = tx.KnownCursor(ctx, dev.CredentialID); err != nil {
				return err
			}
			top, err := tx.Head(ctx)
			if err != nil {
				return err
			}
			position, err = tx.Position(ctx, c, top)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return known, position
	}
	c1 := pull(0)

	holding, release, held := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		held <- s.db.Update(ctx, func(store.Tx) error {
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	pulled := make(chan uint64, 1)
	go func() {
		b, err := s.Pull(ctx, dev, c1, 1000)
		if err != nil {
			t.Error(err)
			pulled <- 0
			return
		}
		pulled <- b.Cursor
	}()
	var c2 uint64
	select {
	case c2 = <-pulled:
	case <-time.After(30 * time.Second): // a failure, not a wait: the pull is stuck
		close(release)
		t.Fatal("a pull from a cursor, nothing moved, waited for the writer")
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if k, p := known(c1); k >= p {
		t.Fatalf("known position %d after a pull from %d with nothing moved; the rest of the test needs it below", k, p)
	}

	// A move after the held position: a pull past it writes its position.
	if _, err := s.MoveHousehold(ctx, admin, grid.Households[0].ID, grids[1], func(o syncengine.Clock) syncengine.Clock {
		return syncengine.Clock{HLC: o.HLC + 1, Node: 1}
	}); err != nil {
		t.Fatal(err)
	}
	c3 := pull(c2)
	pull(c3)
	if k, p := known(c3); k != p {
		t.Errorf("known position %d after a pull from past a move; want %d", k, p)
	}
}
