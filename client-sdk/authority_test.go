package sdk_test

import (
	"context"
	"errors"
	"testing"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/syncengine"
)

// TestWorkerCannotCloseItems: closing off an item (销号) is an admin's; a
// phone refuses it at once, offline, instead of queueing a change the
// server would refuse.
func TestWorkerCannotCloseItems(t *testing.T) {
	ctx := context.Background()
	a, _, grid := twoPhones(t)
	h, err := a.RegisterHousehold(ctx, grid, map[string]string{"head_name": "Zhao"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := a.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson,
		Findings: []syncengine.Finding{{Kind: syncengine.FindingHazard, Note: "楼道堆物"}}})
	if err != nil {
		t.Fatal(err)
	}
	before, err := a.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.UpdateItem(ctx, v, 0, syncengine.AmendItemClose, "done", "", time.Time{}); !errors.Is(err, syncengine.ErrOutOfScope) {
		t.Fatalf("a worker closes an item: %v, want ErrOutOfScope", err)
	}
	if _, err := a.UpdateItem(ctx, v, 0, syncengine.AmendItemResolve, "cleared", "", time.Time{}); err != nil {
		t.Fatalf("a worker resolves an item: %v", err)
	}
	if after, err := a.Pending(ctx); err != nil || after != before+1 {
		t.Fatalf("pending %d then %d (%v): the refused close must queue nothing", before, after, err)
	}
}
