package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
)

// TestRestampStaysAboveOwnAcknowledgedWrite: a phone four minutes ahead
// (within the bound) edits a field and pushes it; the pull of that sync is
// lost, so the phone never receives its own row back. Its clock then jumps
// further ahead and it edits the same field again; that push is refused for
// skew. The re-stamped second edit must still come after the first (whose
// clock the server acknowledged), or the user's latest write would be lost.
func TestRestampStaysAboveOwnAcknowledgedWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	w, _ := e.worker("a", e.Grids[0])
	aNow := &fakeNow{}
	ft := &faultTransport{base: http.DefaultTransport}
	a := e.device("a", w, sdk.WithNow(aNow.Now), sdk.WithHTTPClient(&http.Client{Transport: ft}))
	mustSync(t, a)
	h, err := a.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "x"})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, a)

	aNow.Set(4 * time.Minute) // the phone's clock runs 4 minutes ahead: within the bound
	if err := a.EditHousehold(ctx, h, map[string]string{"notes": "first"}); err != nil {
		t.Fatal(err)
	}
	ft.set(once("Pull", dropRequest)) // the push goes through, the pull is lost
	if _, err := a.Sync(ctx); err == nil {
		t.Fatal("expected the injected pull fault")
	}
	if n, _ := a.Pending(ctx); n != 0 {
		t.Fatalf("pending = %d, want the first edit acknowledged", n)
	}

	aNow.Set(4*time.Minute + time.Hour) // the phone's clock jumps again
	if err := a.EditHousehold(ctx, h, map[string]string{"notes": "second"}); err != nil {
		t.Fatal(err)
	}
	rep := mustSync(t, a)
	if rep.Restamped != 1 {
		t.Fatalf("restamped %d, want 1", rep.Restamped)
	}
	mustSync(t, a)

	d, err := a.Household(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	srv := e.serverState(e.Grids[0])
	var srvNotes string
	for _, x := range srv.Households {
		if x.ID == h {
			srvNotes = x.Notes.Value
		}
	}
	if d.Household.Notes.Value != "second" || srvNotes != "second" {
		t.Errorf("notes: phone %q, server %q; want the phone user's later edit \"second\" everywhere", d.Household.Notes.Value, srvNotes)
	}
}
