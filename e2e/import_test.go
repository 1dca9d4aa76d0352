package e2e

import (
	"context"
	"testing"
	"time"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

// TestImportCannotReparentRowsAcrossSubtrees: like Push, Import refuses a
// person (or tag) whose id already belongs to another household. Otherwise
// an admin of another district could take a person out of a household
// outside their subtree, and the worker's phone would keep the person under
// the old household (its feed entry never moves): phone and server would
// disagree from then on.
func TestImportCannotReparentRowsAcrossSubtrees(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	d2 := e.node("", pb.OrgLevel_ORG_LEVEL_DISTRICT, "District 2")
	s2 := e.node(d2, pb.OrgLevel_ORG_LEVEL_STREET, "Street 2")
	c2 := e.node(s2, pb.OrgLevel_ORG_LEVEL_COMMUNITY, "Community 2")
	g2 := e.node(c2, pb.OrgLevel_ORG_LEVEL_GRID, "Grid 2")
	sub, _, err := e.Store.CreateAdmin(ctx, "district 2 admin", d2)
	if err != nil {
		t.Fatal(err)
	}
	clk := func() syncengine.Clock {
		return syncengine.Clock{HLC: syncengine.PackHLC(time.Now().UnixMilli(), 0), Node: 9}
	}
	// A household of district 2, created first so that its id sorts first.
	theirs := newID()
	if err := e.Store.Import(ctx, sub, syncengine.Bundle{Households: []syncengine.Household{{ID: theirs, GridID: syncengine.NewRegister(g2, clk())}}}); err != nil {
		t.Fatal(err)
	}

	w, _ := e.worker("li", e.Grids[0])
	r := e.device("li", w)
	mustSync(t, r)
	h, err := r.RegisterHousehold(ctx, e.Grids[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.AddPerson(ctx, h, map[string]string{"name": "张三"})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)

	err = e.Store.Import(ctx, sub, syncengine.Bundle{Persons: []syncengine.Person{{ID: p, HouseholdID: theirs, Notes: syncengine.NewRegister("imported", clk())}}})
	if err == nil {
		t.Errorf("district 2's admin re-linked person %s of a district 1 household to their own household", p)
	}
	mustSync(t, r)
	assertSameState(t, "replica vs server (grid of district 1)", e.serverState(e.Grids[0]), dump(t, r))
}
