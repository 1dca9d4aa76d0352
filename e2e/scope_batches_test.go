package e2e

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	sdk "github.com/doorbook/doorbook/client-sdk"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

// TestMoveOutOfAGridLostLaterLeavesInTheSameBatch: a household H of grid a
// is moved to another worker's grid (seq m); then, after a full pull batch
// of other changes, grid a is taken from the worker (seq s). Batch 1 covers
// m but not s. The move must still count (a was the worker's after the
// cursor), so H leaves the phone in batch 1 — not later. Before the fix it
// stayed; the request for batch 2 reached the server (moving the device's
// known cursor past m) but its response was lost; an offline edit of H
// was then refused at every push, and the outbox was stuck for good.
func TestMoveOutOfAGridLostLaterLeavesInTheSameBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 3)
	a, b, c := e.Grids[0], e.Grids[1], e.Grids[2]
	me, _ := e.worker("me", a, c)
	e.worker("other", b)
	ft := &faultTransport{base: http.DefaultTransport}
	r := e.device("me", me, sdk.WithHTTPClient(&http.Client{Transport: ft}))
	mustSync(t, r)
	h, err := r.RegisterHousehold(ctx, a, map[string]string{"head_name": "moving"})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)

	if _, err := e.Admin.MoveHousehold(ctx, &pb.MoveHouseholdRequest{HouseholdId: h, GridId: b}); err != nil {
		t.Fatal(err)
	}
	admin, err := e.Store.Authenticate(ctx, e.adminToken)
	if err != nil {
		t.Fatal(err)
	}
	var bulk syncengine.Bundle
	for range 1000 { // exactly one pull batch (the SDK's limit) of other changes in my grid c
		clk := syncengine.Clock{HLC: syncengine.PackHLC(e.now.Now().UnixMilli(), 0), Node: 7}
		bulk.Households = append(bulk.Households, syncengine.Household{ID: newID(), GridID: syncengine.NewRegister(c, clk)})
	}
	if err := e.Store.Import(ctx, admin, bulk); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Admin.SetWorkerGrids(ctx, &pb.SetWorkerGridsRequest{WorkerId: me, GridIds: []string{c}}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	pulls := 0
	ft.set(func(p string) fault {
		mu.Lock()
		defer mu.Unlock()
		if p != "Pull" {
			return pass
		}
		pulls++
		if pulls == 2 {
			return dropResponse // the server handles batch 2's request; the phone never sees the answer
		}
		return pass
	})
	if _, err := r.Sync(ctx); err == nil {
		t.Fatal("expected the injected fault on the second pull")
	}
	ft.set(nil)
	if _, err := r.Household(ctx, h); !errors.Is(err, syncengine.ErrNotFound) {
		t.Fatalf("H is still in the replica after the batch that saw its move: %v", err)
	}
	if err := r.EditHousehold(ctx, h, map[string]string{"notes": "edited offline"}); !errors.Is(err, syncengine.ErrNotFound) {
		t.Fatalf("an offline edit of a household that left the phone: %v", err)
	}
	var lastErr error
	for range 3 {
		_, lastErr = r.Sync(ctx)
	}
	if n, _ := r.Pending(ctx); lastErr != nil || n != 0 {
		t.Fatalf("after 3 syncs: err = %v, pending = %d: the outbox is stuck", lastErr, n)
	}
}
