package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/internal/demo"
	"github.com/doorbook/doorbook/syncengine"
)

// fault is what faultTransport does to one call.
type fault int

const (
	pass fault = iota
	// dropRequest fails the call before it reaches the server.
	dropRequest
	// dropResponse lets the server handle the call (and commit), then
	// loses the response: the client sees a network error.
	dropResponse
	// cutStream delivers part of the response body, then fails.
	cutStream
)

var errInjected = errors.New("injected network fault")

// faultTransport sits between the SDK and the server and breaks calls as
// decide says, by procedure ("Push", "Pull", "Bootstrap").
type faultTransport struct {
	base   http.RoundTripper
	mu     sync.Mutex
	decide func(procedure string) fault
	// cutAfter is how many whole response frames cutStream lets through.
	cutAfter int
	injected int
}

func (f *faultTransport) set(decide func(string) fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decide = decide
}

func (f *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	procedure := req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]
	f.mu.Lock()
	what := pass
	if f.decide != nil {
		what = f.decide(procedure)
	}
	if what != pass {
		f.injected++
	}
	cut := f.cutAfter
	f.mu.Unlock()
	switch what {
	case dropRequest:
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errInjected
	case dropResponse:
		resp, err := f.base.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errInjected
	case cutStream:
		resp, err := f.base.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		resp.Body = &cutBody{rc: resp.Body, frames: cut}
		return resp, nil
	}
	return f.base.RoundTrip(req)
}

// cutBody passes whole Connect stream frames (a 5-byte envelope header,
// then the message) until frames have gone through, then a few bytes of the
// next frame, then fails: a connection cut in the middle of a message.
type cutBody struct {
	rc      io.ReadCloser
	frames  int
	header  []byte
	body    int
	partial int
	dead    bool
}

func (c *cutBody) Read(p []byte) (int, error) {
	if c.dead {
		return 0, errInjected
	}
	n, err := c.rc.Read(p)
	for i := 0; i < n; i++ {
		switch {
		case c.frames == 0:
			// All wanted frames are through: let 3 bytes of the next go.
			if c.partial == 3 {
				c.dead = true
				return i, nil
			}
			c.partial++
		case c.body > 0:
			c.body--
			if c.body == 0 {
				c.frames--
			}
		default:
			c.header = append(c.header, p[i])
			if len(c.header) == 5 {
				c.body = int(binary.BigEndian.Uint32(c.header[1:]))
				c.header = c.header[:0]
				if c.body == 0 {
					c.frames--
				}
			}
		}
	}
	return n, err
}

func (c *cutBody) Close() error { return c.rc.Close() }

func once(procedure string, f fault) func(string) fault {
	done := false
	return func(p string) fault {
		if p == procedure && !done {
			done = true
			return f
		}
		return pass
	}
}

// reopen closes a replica as a killed app would leave it and opens its file
// again.
func reopen(t *testing.T, r *sdk.Replica, opts ...sdk.Option) *sdk.Replica {
	t.Helper()
	path := r.Path()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2, err := sdk.Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r2.Close() })
	return r2
}

func (e *env) visitCount(id string) int {
	n := 0
	for _, v := range e.serverState().Visits {
		if v.ID == id {
			n++
		}
	}
	return n
}

func TestPushResponseLostIsNotAppliedTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	w, _ := e.worker("li", e.Grids[0])
	ft := &faultTransport{base: http.DefaultTransport}
	r := e.device("li", w, sdk.WithHTTPClient(&http.Client{Transport: ft}))
	mustSync(t, r)
	h, err := r.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "赵"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.RecordVisit(ctx, sdkVisit(h))
	if err != nil {
		t.Fatal(err)
	}

	ft.set(once("Push", dropResponse))
	if _, err := r.Sync(ctx); !errors.Is(err, errInjected) {
		t.Fatalf("sync with a lost push response: err = %v, want the injected fault", err)
	}
	if got := e.visitCount(v); got != 1 {
		t.Fatalf("server has the visit %d times after the lost response, want 1 (the push committed)", got)
	}
	if n, _ := r.Pending(ctx); n != 2 {
		t.Fatalf("pending = %d after a lost acknowledgement, want 2 (kept until acknowledged)", n)
	}

	// The app is killed here and started again.
	r = reopen(t, r)
	rep := mustSync(t, r)
	if rep.Pushed != 0 || rep.Duplicates != 2 {
		t.Errorf("retry pushed %d, duplicates %d; want 0 applied, 2 recognised", rep.Pushed, rep.Duplicates)
	}
	if got := e.visitCount(v); got != 1 {
		t.Errorf("server has the visit %d times, want exactly 1", got)
	}
	if n, _ := r.Pending(ctx); n != 0 {
		t.Errorf("pending = %d after the retry, want 0", n)
	}
}

func TestPullResponseLostResumesFromStoredCursor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	wa, _ := e.worker("a", e.Grids[0])
	wb, _ := e.worker("b", e.Grids[0])
	a := e.device("a", wa)
	ft := &faultTransport{base: http.DefaultTransport}
	b := e.device("b", wb, sdk.WithHTTPClient(&http.Client{Transport: ft}))
	mustSync(t, a)
	mustSync(t, b)
	h, err := a.RegisterHousehold(ctx, e.Grids[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	var visits []string
	for range 3 {
		v, err := a.RecordVisit(ctx, sdkVisit(h))
		if err != nil {
			t.Fatal(err)
		}
		visits = append(visits, v)
	}
	mustSync(t, a)

	before, _ := b.Status(ctx)
	ft.set(once("Pull", dropResponse))
	if _, err := b.Sync(ctx); !errors.Is(err, errInjected) {
		t.Fatalf("sync with a lost pull response: err = %v, want the injected fault", err)
	}
	after, _ := b.Status(ctx)
	if after.Cursor != before.Cursor {
		t.Fatalf("cursor moved from %d to %d without the batch being applied", before.Cursor, after.Cursor)
	}
	b = reopen(t, b)
	mustSync(t, b)
	d, err := b.Household(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Visits) != len(visits) {
		t.Errorf("b has %d visits, want exactly %d", len(d.Visits), len(visits))
	}
	assertSameState(t, "b vs server", e.serverState(e.Grids[0]), dump(t, b))
}

func dump(t testing.TB, r *sdk.Replica) syncengine.Bundle {
	t.Helper()
	b, err := r.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Check(context.Background()); err != nil {
		t.Fatalf("%s: %v", r.Path(), err)
	}
	return canonical(b)
}

func TestBootstrapCutMidStreamResumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	gen := demo.NewGenerator(7, time.Now().Add(-time.Hour))
	e.importRows(gen.Grid(e.Grids[0], demo.Shape{HouseholdsPerGrid: 300, PersonsPerHousehold: 1}, "", ""))
	w, code := e.worker("li", e.Grids[0])
	_ = w
	ft := &faultTransport{base: http.DefaultTransport, cutAfter: 1}
	r := e.enroll("li", code, sdk.WithHTTPClient(&http.Client{Transport: ft}))
	ft.set(once("Bootstrap", cutStream))
	rep, err := r.Sync(ctx)
	if !errors.Is(err, errInjected) && !strings.Contains(fmt.Sprint(err), errInjected.Error()) {
		t.Fatalf("sync with a cut bootstrap: err = %v, want the injected fault", err)
	}
	st, _ := r.Status(ctx)
	if !st.Bootstrapping || st.Households == 0 || st.Households >= 300 {
		t.Fatalf("after the cut: bootstrapping=%v with %d households; want a partial bootstrap", st.Bootstrapping, st.Households)
	}
	first := rep.Bootstrapped
	if first != st.Households {
		t.Fatalf("report says %d households arrived, replica holds %d", first, st.Households)
	}

	r = reopen(t, r)
	rep = mustSync(t, r)
	if rep.Bootstrapped != 300-first {
		t.Errorf("resumed bootstrap fetched %d households, want the %d missing ones only", rep.Bootstrapped, 300-first)
	}
	st, _ = r.Status(ctx)
	if st.Bootstrapping || st.Households != 300 {
		t.Errorf("after resuming: bootstrapping=%v with %d households, want 300 and done", st.Bootstrapping, st.Households)
	}
	assertSameState(t, "replica vs server", e.serverState(e.Grids[0]), dump(t, r))
}

// TestRandomFaultsExactlyOnce has three workers record visits while every
// call may be dropped before the server sees it or after the server
// committed, and apps are killed and restarted at random. In the end the
// server holds every recorded visit exactly once and the replicas agree.
func TestRandomFaultsExactlyOnce(t *testing.T) {
	t.Parallel()
	for _, seed := range seeds() {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			t.Logf("seed %d (reproduce: go test ./e2e -run 'TestRandomFaultsExactlyOnce/%d' -e2e.seed=%d)", seed, seed, seed)
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(seed, 99))
			var rngMu sync.Mutex
			e := newEnv(t, 1)
			ft := &faultTransport{base: http.DefaultTransport}
			client := sdk.WithHTTPClient(&http.Client{Transport: ft})
			var replicas []*sdk.Replica
			for i := range 3 {
				w, _ := e.worker(fmt.Sprint("w", i), e.Grids[0])
				r := e.device(fmt.Sprint("w", i), w, client)
				replicas = append(replicas, r)
			}
			ft.set(func(string) fault {
				rngMu.Lock()
				defer rngMu.Unlock()
				switch x := rng.IntN(10); {
				case x < 2:
					return dropRequest
				case x < 4:
					return dropResponse
				}
				return pass
			})
			h, err := replicas[0].RegisterHousehold(ctx, e.Grids[0], nil)
			if err != nil {
				t.Fatal(err)
			}
			recorded := map[string]bool{}
			syncs, failures := 0, 0
			for step := range *flagSteps {
				i := rng.IntN(len(replicas))
				r := replicas[i]
				switch x := rng.IntN(10); {
				case x < 4:
					if _, err := r.Household(ctx, h); err != nil {
						continue // not yet arrived here
					}
					v, err := r.RecordVisit(ctx, sdkVisit(h))
					if err != nil {
						t.Fatal(err)
					}
					recorded[v] = true
				case x < 9:
					syncs++
					if _, err := r.Sync(ctx); err != nil {
						if !strings.Contains(err.Error(), errInjected.Error()) {
							t.Fatalf("step %d: sync failed with %v, not an injected fault", step, err)
						}
						failures++
					}
				default:
					replicas[i] = reopen(t, r, client) // the app is killed
				}
			}
			ft.set(nil)
			for range 2 {
				for _, r := range replicas {
					mustSync(t, r)
				}
			}
			server := e.serverState()
			seen := map[string]int{}
			for _, v := range server.Visits {
				seen[v.ID]++
			}
			for id := range recorded {
				if seen[id] != 1 {
					t.Errorf("visit %s is on the server %d times, want 1", id, seen[id])
				}
			}
			if len(server.Visits) != len(recorded) {
				t.Errorf("server holds %d visits, workers recorded %d", len(server.Visits), len(recorded))
			}
			for _, r := range replicas {
				assertSameState(t, "replica vs server", server, dump(t, r))
			}
			t.Logf("%d visits, %d syncs, %d failed by %d injected faults", len(recorded), syncs, failures, ft.injected)
			if ft.injected == 0 {
				t.Error("no fault was injected: the test proved nothing")
			}
		})
	}
}
