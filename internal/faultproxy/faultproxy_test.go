package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// upstream is a test server that records what reached it.
type upstream struct {
	*httptest.Server
	mu      sync.Mutex
	arrived []string // X-Call of each request, in the order handled
	protos  []int
	handled chan string
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{handled: make(chan string, 100)}
	mux := http.NewServeMux()
	record := func(r *http.Request) {
		u.mu.Lock()
		u.arrived = append(u.arrived, r.Header.Get("X-Call"))
		u.protos = append(u.protos, r.ProtoMajor)
		u.mu.Unlock()
	}
	// /echo answers with the request body.
	mux.HandleFunc("/svc/Echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		record(r)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
		u.handled <- r.Header.Get("X-Call")
	})
	// /stream sends n chunks of size bytes, flushing each.
	mux.HandleFunc("/svc/Stream", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		size, _ := strconv.Atoi(r.URL.Query().Get("size"))
		rc := http.NewResponseController(w)
		for i := range n {
			w.Write(bytes.Repeat([]byte{byte('a' + i%26)}, size))
			rc.Flush()
		}
		u.handled <- r.Header.Get("X-Call")
	})
	u.Server = httptest.NewUnstartedServer(mux)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	u.Config.Protocols = &protocols
	u.Start()
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) calls() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.arrived)
}

// waitHandled waits until n requests have been handled upstream.
func (u *upstream) waitHandled(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for range n {
		select {
		case <-u.handled:
		case <-timeout:
			t.Fatalf("upstream handled %d calls, want %d", len(u.calls()), n)
		}
	}
}

func start(t *testing.T, u *upstream, cfg Config) *Proxy {
	t.Helper()
	p, err := Start(t.Context(), u.URL, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p
}

func post(ctx context.Context, c *http.Client, url, call, body string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Call", call)
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return string(b), err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), nil
}

func TestForwardsAndCounts(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	p := start(t, u, Config{Seed: 1})
	got, err := post(t.Context(), http.DefaultClient, p.URL()+"/svc/Echo", "1", "hello, proxy")
	if err != nil || got != "hello, proxy" {
		t.Fatalf("echo through the proxy = %q, %v; want the body back", got, err)
	}
	s := p.Stats()
	if s.Calls != 1 || s.Faults() != 0 || s.BytesUp != 12 || s.BytesDown != 12 {
		t.Errorf("stats = %v, want 1 call, no faults, 12 bytes each way", s)
	}
	if tr := s.Procedures["Echo"]; tr != (Traffic{Calls: 1, BytesUp: 12, BytesDown: 12}) {
		t.Errorf("Echo traffic = %+v", tr)
	}
}

func TestH2CPassesThroughAsH2C(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	p := start(t, u, Config{})
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	if got, err := post(t.Context(), c, p.URL()+"/svc/Echo", "h2", "x"); err != nil || got != "x" {
		t.Fatalf("h2c echo = %q, %v", got, err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if !slices.Equal(u.protos, []int{2}) {
		t.Errorf("upstream saw HTTP/%v, want HTTP/2 (h2c) as the client spoke", u.protos)
	}
}

func TestDropRequestNeverReachesServer(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	p := start(t, u, Config{Seed: 2, Faults: Faults{DropRequest: 1}})
	_, err := post(t.Context(), http.DefaultClient, p.URL()+"/svc/Echo", "1", "lost")
	var ue *url.Error
	if err == nil || !errors.As(err, &ue) {
		t.Fatalf("err = %v, want a connection error (no HTTP answer)", err)
	}
	// A call after it must get through: heal, call, and the upstream must
	// have seen that one only.
	if err := p.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := post(t.Context(), http.DefaultClient, p.URL()+"/svc/Echo", "2", "ok"); err != nil {
		t.Fatal(err)
	}
	if got := u.calls(); !slices.Equal(got, []string{"2"}) {
		t.Errorf("upstream saw calls %v, want only [2]", got)
	}
	if s := p.Stats(); s.DroppedRequests != 1 || s.Calls != 2 {
		t.Errorf("stats = %v, want 1 dropped request of 2 calls", s)
	}
}

func TestDropResponseAfterServerHandled(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	p := start(t, u, Config{Seed: 3, Faults: Faults{DropResponse: 1}})
	if _, err := post(t.Context(), http.DefaultClient, p.URL()+"/svc/Echo", "1", "done"); err == nil {
		t.Fatal("the client got an answer; want a connection error")
	}
	if got := u.calls(); !slices.Equal(got, []string{"1"}) {
		t.Errorf("upstream saw %v, want the call handled once", got)
	}
	if s := p.Stats(); s.DroppedResponses != 1 || s.BytesDown != 0 {
		t.Errorf("stats = %v, want 1 dropped response and no bytes down", s)
	}
}

func TestDuplicateReachesServerTwiceClientOnce(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	p := start(t, u, Config{Seed: 4, Faults: Faults{Duplicate: 1}})
	for i := range 4 { // both the concurrent and the late copy, by the seed
		got, err := post(t.Context(), http.DefaultClient, p.URL()+"/svc/Echo", fmt.Sprint(i), "twice")
		if err != nil || got != "twice" {
			t.Fatalf("call %d: %q, %v; want one normal answer", i, got, err)
		}
	}
	u.waitHandled(t, 8)
	got := u.calls()
	slices.Sort(got)
	if !slices.Equal(got, []string{"0", "0", "1", "1", "2", "2", "3", "3"}) {
		t.Errorf("upstream saw %v, want each call twice", got)
	}
	if s := p.Stats(); s.Duplicated != 4 || s.BytesDown != 4*5 || s.BytesUp != 4*5 {
		t.Errorf("stats = %v, want 4 duplicates and the client's bytes counted once", s)
	}
}

func TestCutStreamMidway(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	p := start(t, u, Config{Seed: 5, Faults: Faults{Cut: 1, CutMinBytes: 3500, CutMaxBytes: 3500}})
	for _, tc := range []struct {
		name     string
		n, size  int
		wantRead int
	}{
		{"long stream cut at 3500", 10, 1000, 3500},
		{"short body loses its last byte", 3, 100, 299},
		{"body of exactly the cut point still loses its last byte", 35, 100, 3499},
	} {
		target := fmt.Sprintf("%s/svc/Stream?n=%d&size=%d", p.URL(), tc.n, tc.size)
		got, err := post(t.Context(), http.DefaultClient, target, tc.name, "")
		if err == nil || len(got) != tc.wantRead {
			t.Errorf("%s: read %d bytes, err %v; want %d bytes and an error", tc.name, len(got), err, tc.wantRead)
		}
	}
	if s := p.Stats(); s.Cut != 3 || s.BytesDown != 3500+299+3499 {
		t.Errorf("stats = %v, want 3 cuts and %d bytes down", s, 3500+299+3499)
	}
}

func TestCutBodyByteByByte(t *testing.T) {
	t.Parallel()
	// A reader handing out one byte at a time must not defeat the
	// hold-back: the last byte never arrives.
	body := &cutBody{rc: io.NopCloser(&oneByteReader{r: strings.NewReader("abcdef")}), left: 100}
	got, err := io.ReadAll(body)
	if string(got) != "abcde" || !errors.Is(err, errCut) {
		t.Errorf("read %q, %v; want %q and the cut", got, err, "abcde")
	}
}

type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p[:min(1, len(p))]) }

func TestDelayAndRoundTrip(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	p := start(t, u, Config{Seed: 6, Faults: Faults{Delay: 1, Latency: 150 * time.Millisecond}, Link: Link{RTT: 100 * time.Millisecond}})
	began := time.Now()
	if _, err := post(t.Context(), http.DefaultClient, p.URL()+"/svc/Echo", "1", "x"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < 250*time.Millisecond {
		t.Errorf("call took %v, want at least 150 ms delay + 100 ms round trip", took)
	}
	if s := p.Stats(); s.Delayed != 1 {
		t.Errorf("stats = %v, want 1 delayed call", s)
	}
}

func TestBandwidth(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	const rate = 100_000
	p := start(t, u, Config{Link: Link{BytesPerSecond: rate}})
	began := time.Now()
	got, err := post(t.Context(), http.DefaultClient, p.URL()+"/svc/Stream?n=10&size=5000", "1", "")
	if err != nil || len(got) != 50_000 {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	took := time.Since(began)
	// The bucket starts full (one burst), the rest flows at the rate.
	if want := time.Duration(float64(50_000-max(rate/20, 4096)) / rate * float64(time.Second)); took < want {
		t.Errorf("50 kB at 100 kB/s took %v, want at least %v", took, want)
	}
	if took > 5*time.Second {
		t.Errorf("50 kB at 100 kB/s took %v: shaping far too slow", took)
	}
}

// TestReorderIsShuffledAndReproducible holds four calls that arrive one by
// one, releases them in shuffled order, and checks the upstream handled them
// in that order, and that the same seed gives the same order again.
func TestReorderIsShuffledAndReproducible(t *testing.T) {
	t.Parallel()
	order := func(seed uint64) []string {
		u := newUpstream(t)
		p := start(t, u, Config{Seed: seed, Faults: Faults{Reorder: 1, ReorderWindow: time.Minute, ReorderMax: 4}})
		errs := make(chan error, 4)
		for i := range 4 {
			go func() {
				_, err := post(t.Context(), http.DefaultClient, p.URL()+"/svc/Echo", fmt.Sprint(i), "x")
				errs <- err
			}()
			// Wait until this call is held before sending the next, so
			// that they arrive in a known order.
			p.waitHeld(t, i+1)
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if s := p.Stats(); s.Reordered == 0 {
			t.Errorf("seed %d: stats = %v, want calls reordered", seed, s)
		}
		return u.calls()
	}
	for _, seed := range []uint64{7, 8} {
		first := order(seed)
		if slices.Equal(first, []string{"0", "1", "2", "3"}) {
			t.Errorf("seed %d: upstream handled %v, the arrival order", seed, first)
		}
		if again := order(seed); !slices.Equal(first, again) {
			t.Errorf("seed %d: order %v, then %v: not reproducible", seed, first, again)
		}
	}
}

// waitHeld waits until n calls have joined a reorder batch.
func (p *Proxy) waitHeld(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.reorder.mu.Lock()
		joined := p.reorder.joined
		p.reorder.mu.Unlock()
		if joined >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls held, want %d", joined, n)
		}
		time.Sleep(time.Millisecond) // polling the condition
	}
}

func TestCloseEndsHeldCalls(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	p, err := Start(t.Context(), u.URL, Config{Faults: Faults{Reorder: 1, ReorderWindow: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 1)
	go func() {
		_, err := post(t.Context(), http.DefaultClient, p.URL()+"/svc/Echo", "1", "x")
		errs <- err
	}()
	p.waitHeld(t, 1)
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while a call was held")
	}
	if err := <-errs; err == nil {
		t.Error("the held call succeeded after Close; want it to fail")
	}
	if got := u.calls(); len(got) != 0 {
		t.Errorf("upstream saw %v after Close, want nothing", got)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// TestCloseIgnoresSilentConnections: an HTTP/1.1 client may open a
// connection it never sends a request on (the Go transport dials ahead and
// parks the spare); Close must neither wait for it nor fail.
func TestCloseIgnoresSilentConnections(t *testing.T) {
	t.Parallel()
	u := newUpstream(t)
	p, err := Start(t.Context(), u.URL, Config{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	began := time.Now()
	if err := p.Close(); err != nil {
		t.Errorf("close with a silent connection open: %v", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("close took %v with a silent connection open", took)
	}
}

func TestPlansAreSeededAndFollowTheProbabilities(t *testing.T) {
	t.Parallel()
	f := Faults{DropRequest: 0.1, DropResponse: 0.2, Duplicate: 0.3, Delay: 0.4, Latency: time.Millisecond, Reorder: 0.5, Cut: 0.6, CutMinBytes: 10, CutMaxBytes: 20}.withDefaults()
	const n = 20000
	var counts [6]int
	for i := range uint64(n) {
		a, b := newPlan(42, i, &f, "Push"), newPlan(42, i, &f, "Push")
		if a != b {
			t.Fatalf("call %d: plans %+v and %+v from the same seed", i, a, b)
		}
		for k, on := range []bool{a.dropRequest, a.dropResponse, a.duplicate, a.delay > 0, a.reorder, a.cut} {
			if on {
				counts[k]++
			}
		}
		if a.cut && (a.cutAfter < 10 || a.cutAfter > 20) {
			t.Fatalf("cut after %d bytes, want within [10, 20]", a.cutAfter)
		}
	}
	for k, want := range []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6} {
		if got := float64(counts[k]) / n; got < want-0.02 || got > want+0.02 {
			t.Errorf("fault %d struck %.3f of calls, want %.2f", k, got, want)
		}
	}
	same := 0
	for i := range uint64(100) {
		if newPlan(42, i, &f, "Push") == newPlan(43, i, &f, "Push") {
			same++
		}
	}
	if same > 10 {
		t.Errorf("%d of 100 plans equal under seeds 42 and 43: the seed barely matters", same)
	}
	only := Faults{Procedures: []string{"Bootstrap"}, DropRequest: 1}.withDefaults()
	if pl := newPlan(1, 1, &only, "Push"); pl.dropRequest {
		t.Error("a fault limited to Bootstrap struck a Push")
	}
	if pl := newPlan(1, 1, &only, "Bootstrap"); !pl.dropRequest {
		t.Error("a certain fault limited to Bootstrap missed a Bootstrap")
	}
}

func TestConfigIsChecked(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{{Faults: Faults{DropRequest: 1.5}}, {Faults: Faults{Cut: -0.1}}, {Link: Link{RTT: -time.Second}}} {
		if p, err := Start(t.Context(), "http://127.0.0.1:1", cfg); err == nil {
			p.Close()
			t.Errorf("Start(%+v) accepted a bad config", cfg)
		}
	}
	if _, err := Start(t.Context(), "127.0.0.1:1", Config{}); err == nil {
		t.Error("Start accepted an upstream without a scheme")
	}
}
