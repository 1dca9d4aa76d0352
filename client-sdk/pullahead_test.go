package sdk_test

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/syncengine"
)

// holdAfterPush holds a replica's writer from the moment a push's answer
// arrives until its next pull reaches the transport, and counts the pulls.
type holdAfterPush struct {
	t      *testing.T
	writer *sql.DB
	armed  bool
	held   *sql.Tx
	pulled chan struct{} // closed by a pull that came while the writer was held
	pulls  atomic.Int32
}

func (h *holdAfterPush) RoundTrip(req *http.Request) (*http.Response, error) {
	if h.armed && strings.HasSuffix(req.URL.Path, "/Pull") {
		h.pulls.Add(1)
		if h.held != nil {
			h.held.Rollback()
			h.held = nil
			close(h.pulled)
		}
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if h.armed && err == nil && strings.HasSuffix(req.URL.Path, "/Push") {
		tx, err := h.writer.BeginTx(context.Background(), nil)
		if err != nil {
			h.t.Errorf("hold the writer: %v", err)
		}
		h.held = tx
	}
	return res, err
}

// TestPullGoesOutWithTheLastDrop: a sync that pushed sends its pull while
// the batch the server acknowledged leaves the outbox, not after: the pull
// reaches the server while the phone's writer, which that drop needs, is
// held from the push's answer on. Its answer is the sync's pull, applied
// once the drop is done.
func TestPullGoesOutWithTheLastDrop(t *testing.T) {
	ctx := t.Context()
	a, b, grid := twoPhones(t)
	h := &holdAfterPush{t: t, pulled: make(chan struct{})}
	a = sdk.Reopen(t, a, sdk.WithHTTPClient(&http.Client{Transport: h}))
	h.writer = sdk.WriterDB(a)
	syncAll(t, a, b)
	// B's household is what A's pull brings.
	if _, err := b.RegisterHousehold(ctx, grid, map[string]string{"head_name": "Qian"}); err != nil {
		t.Fatal(err)
	}
	syncAll(t, b)
	mine, err := a.RegisterHousehold(ctx, grid, map[string]string{"head_name": "Zhao"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{mine}, Form: syncengine.FormInPerson, Notes: "at home"}); err != nil {
		t.Fatal(err)
	}

	h.armed = true
	type result struct {
		rep sdk.SyncReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := a.Sync(ctx)
		done <- result{rep, err}
	}()
	select {
	case <-h.pulled:
	case <-time.After(30 * time.Second):
		// The drop waits for the writer, and the pull for the drop.
		t.Error("no pull came while the pushed batch waited to leave the outbox")
		if h.held != nil {
			h.held.Rollback()
		}
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	if n := h.pulls.Load(); n != 1 {
		t.Errorf("the sync sent %d pulls; want 1, sent ahead and used", n)
	}
	if res.rep.Pushed != 2 || res.rep.Pulled < 1 {
		t.Errorf("sync: pushed %d, pulled %d; want A's household and visit, and B's household", res.rep.Pushed, res.rep.Pulled)
	}
	if n, err := a.Pending(ctx); err != nil || n != 0 {
		t.Errorf("outbox after the sync: %d (%v); want 0", n, err)
	}
	if hs, err := a.Households(ctx); err != nil || len(hs) != 2 {
		t.Errorf("households after the sync: %d (%v); want 2, A's and B's", len(hs), err)
	}
}
