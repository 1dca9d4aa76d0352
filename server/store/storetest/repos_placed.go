package storetest

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// testReposPlaced: PlacedVisits counts the window's visits with a position
// to households of the grids asked for, leaving out voided ones and those
// without a fix; a group visit counts once in all and once in each grid.
func testReposPlaced(t *testing.T, newEnv func(BackendOptions) *repoEnv) {
	e := newEnv(BackendOptions{})
	ctx := e.ctx
	tr := e.tree()
	g1, g2, g3 := tr.g1.ID, tr.g2.ID, tr.g3.ID
	w := e.worker("A", tr.s1.ID)
	h1, h2, h3 := e.household(g1), e.household(g2), e.household(g3)
	t0 := time.Date(2026, 4, 10, 10, 0, 0, 0, time.UTC)
	fix := func(v *syncengine.Visit) *syncengine.Visit {
		v.Position = &syncengine.Position{Latitude: 28.19, Longitude: 112.97, AccuracyMeters: 10, FixedAt: v.VisitedAt}
		return v
	}
	group := fix(e.visit(w.ID, t0, h1.ID, h2.ID))
	voided := fix(e.visit(w.ID, t0, h1.ID))
	visits := []*syncengine.Visit{
		group,
		fix(e.visit(w.ID, t0.Add(time.Hour), h1.ID)),
		fix(e.visit(w.ID, t0.Add(-48*time.Hour), h1.ID)), // before the window
		fix(e.visit(w.ID, t0, h3.ID)),                    // another grid
		e.visit(w.ID, t0, h1.ID),                         // no fix
		voided,
	}
	e.update("PutHousehold, InsertVisit, InsertAmendment", func(tx store.Tx) error {
		var errs []error
		for _, h := range []*syncengine.Household{h1, h2, h3} {
			errs = append(errs, tx.PutHousehold(ctx, h))
		}
		for _, v := range visits {
			_, err := tx.InsertVisit(ctx, v)
			errs = append(errs, err)
		}
		_, err := tx.InsertAmendment(ctx, e.void(voided.ID, w.ID))
		return errors.Join(append(errs, err)...)
	})
	got := inView(e, "PlacedVisits", func(tx store.Tx) (store.PlacedVisits, error) {
		return tx.PlacedVisits(ctx, []string{g1, g2}, t0.Add(-time.Hour), t0.Add(24*time.Hour))
	})
	want := store.PlacedVisits{Total: 2, ByGrid: map[string]int{g1: 2, g2: 1}}
	if got.Total != want.Total || !maps.Equal(got.ByGrid, want.ByGrid) {
		t.Errorf("PlacedVisits = %+v; want %+v", got, want)
	}
	none := inView(e, "PlacedVisits of no grid", func(tx store.Tx) (store.PlacedVisits, error) {
		return tx.PlacedVisits(ctx, nil, t0.Add(-time.Hour), t0.Add(24*time.Hour))
	})
	if none.Total != 0 || len(none.ByGrid) != 0 {
		t.Errorf("PlacedVisits of no grid = %+v", none)
	}
}

func (r *recordingTx) PlacedVisits(ctx context.Context, grids []string, from, to time.Time) (store.PlacedVisits, error) {
	r.use("PlacedVisits")
	return r.Tx.PlacedVisits(ctx, grids, from, to)
}
