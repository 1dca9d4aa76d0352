package e2e

import (
	"context"
	"testing"

	"github.com/doorbook/doorbook/syncengine"
)

func TestTwoWorkersConverge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 2)
	w1, _ := e.worker("Li", e.Grids[0])
	w2, _ := e.worker("Wang", e.Grids[0], e.Grids[1])
	a := e.device("li-phone", w1)
	b := e.device("wang-phone", w2)
	mustSync(t, a)
	mustSync(t, b)

	hh, err := a.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "张伟", "address": "1 Road", "member_count": "3"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.RecordVisit(ctx, sdkVisit(hh)); err != nil {
		t.Fatal(err)
	}
	mustSync(t, a)
	mustSync(t, b)
	if err := a.EditHousehold(ctx, hh, map[string]string{"phone_mobile": "13800000000"}); err != nil {
		t.Fatal(err)
	}
	if err := b.EditHousehold(ctx, hh, map[string]string{"address": "2 Road"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		mustSync(t, a)
		mustSync(t, b)
	}
	da, err := a.Household(ctx, hh)
	if err != nil {
		t.Fatal(err)
	}
	db, err := b.Household(ctx, hh)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{da.Household.PhoneMobile.Value, db.Household.PhoneMobile.Value} {
		if d != "13800000000" {
			t.Errorf("phone = %q, want both edits kept", d)
		}
	}
	for _, d := range []string{da.Household.Address.Value, db.Household.Address.Value} {
		if d != "2 Road" {
			t.Errorf("address = %q, want both edits kept", d)
		}
	}
	if len(da.Visits) != 1 || len(db.Visits) != 1 {
		t.Errorf("visits: a has %d, b has %d, want 1 each", len(da.Visits), len(db.Visits))
	}
	_ = syncengine.FormInPerson
}
