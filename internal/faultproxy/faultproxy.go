// Package faultproxy is a fault-injecting HTTP reverse proxy for tests. It
// listens on a loopback port between a Doorbook client (the SDK) and the
// server, forwards every call over a real connection, and breaks calls the
// way a field network does: requests lost before the server sees them,
// answers lost after the server committed, requests delivered twice,
// delays, concurrent requests reordered, responses cut mid-way, and a slow,
// distant link.
//
// The package owns the listener, the forwarding (HTTP/1.1, which the SDK's
// default client speaks, and h2c, which gRPC clients need), the per-call
// fault plan, the link shaping and the counters. It knows nothing of the
// Doorbook API beyond this: a call is one HTTP request, and its procedure is
// the last element of the URL path ("Push", "Pull", "Bootstrap").
//
// Every fault is decided by a plan drawn at the call's arrival from a
// generator seeded with (Config.Seed, the call's arrival number). A client
// making calls one after the other therefore meets the same faults for the
// same seed; concurrent clients meet the same sequence of plans, handed out
// in whatever order their calls arrive.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the reorder fault.
const (
	// DefaultReorderWindow is how long the first held call waits for
	// others to arrive before the batch is released.
	DefaultReorderWindow = 20 * time.Millisecond
	// DefaultReorderMax releases a batch as soon as this many are held.
	DefaultReorderMax = 8
)

// Faults says how often each fault strikes a call. Probabilities are per
// call, in [0, 1], drawn independently; the zero value injects nothing.
//
// When several strike the same call they combine in the order a call
// travels: delay, then the reorder hold, then the request drop (which ends
// the call), then the duplicate, then the response drop (which wins over a
// cut).
type Faults struct {
	// Procedures limits the faults to calls of these procedures (the last
	// path element, e.g. "Bootstrap"); empty means every call. The link
	// shaping applies to every call regardless.
	Procedures []string

	// DropRequest: the proxy reads the request, then closes the
	// connection; the server never sees it.
	DropRequest float64
	// DropResponse: the server handles the call to the end (and commits),
	// then the proxy closes the client's connection instead of answering.
	DropResponse float64
	// Duplicate: the server gets the call twice, the client one answer.
	// Half of the copies travel alongside the original, half arrive after
	// the original's answer (a late retransmission).
	Duplicate float64
	// Delay holds a call for Latency plus up to Jitter before forwarding.
	Delay   float64
	Latency time.Duration
	Jitter  time.Duration
	// Reorder holds a call with the others that arrive within
	// ReorderWindow (at most ReorderMax of them), then forwards them one by
	// one in a shuffled order: each is forwarded once the previous one's
	// response headers have come back, so the server handles them in that
	// order.
	Reorder       float64
	ReorderWindow time.Duration
	ReorderMax    int
	// Cut sends part of the response body, then aborts the connection. The
	// cut comes after a uniform number of body bytes in
	// [CutMinBytes, CutMaxBytes]; a body shorter than that loses its last
	// byte, so a cut response never arrives whole.
	Cut         float64
	CutMinBytes int64
	CutMaxBytes int64
}

func (f *Faults) validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"DropRequest", f.DropRequest}, {"DropResponse", f.DropResponse}, {"Duplicate", f.Duplicate},
		{"Delay", f.Delay}, {"Reorder", f.Reorder}, {"Cut", f.Cut}} {
		if !(p.v >= 0 && p.v <= 1) {
			return fmt.Errorf("faultproxy: %s = %v, want a probability in [0, 1]", p.name, p.v)
		}
	}
	if f.Latency < 0 || f.Jitter < 0 || f.ReorderWindow < 0 || f.ReorderMax < 0 || f.CutMinBytes < 0 || f.CutMaxBytes < 0 {
		return errors.New("faultproxy: negative duration, size or count")
	}
	return nil
}

// withDefaults fills the reorder and cut settings left zero.
func (f Faults) withDefaults() Faults {
	if f.ReorderWindow == 0 {
		f.ReorderWindow = DefaultReorderWindow
	}
	if f.ReorderMax == 0 {
		f.ReorderMax = DefaultReorderMax
	}
	f.CutMaxBytes = max(f.CutMaxBytes, f.CutMinBytes)
	f.Procedures = append([]string(nil), f.Procedures...)
	return f
}

// Link shapes every call, faulty or not.
type Link struct {
	// BytesPerSecond limits each direction (request bodies up, response
	// bodies down) with a token bucket shared by all calls, as one phone's
	// radio link is; 0 means unlimited.
	BytesPerSecond int64
	// RTT is the round-trip time: half of it is added before a request is
	// forwarded, half before its response headers are returned. It is paid
	// per call, not per connection (no handshake is modelled).
	RTT time.Duration
}

// Config configures a Proxy.
type Config struct {
	// Seed makes the fault plans reproducible.
	Seed   uint64
	Faults Faults
	Link   Link
	// ErrorLog receives the HTTP server's and forwarding's own errors
	// (default: discarded, since the proxy breaks connections on purpose).
	ErrorLog *log.Logger
}

// errInjected is what the forwarding returns for a call the plan breaks; the
// error handler turns it into an aborted connection.
var errInjected = errors.New("faultproxy: injected fault")

// Proxy is a running fault-injecting proxy. Its methods are safe for
// concurrent use.
type Proxy struct {
	seed     uint64
	upstream *url.URL
	ln       net.Listener
	srv      *http.Server
	rp       *httputil.ReverseProxy
	h1, h2c  *http.Transport
	// ctx ends when the proxy closes; every call's context derives from it,
	// so Close ends held, delayed and shaped calls at once.
	ctx    context.Context
	cancel context.CancelFunc

	calls   atomic.Uint64
	mu      sync.Mutex
	faults  Faults
	rtt     time.Duration
	up      *bucket
	down    *bucket
	stats   Stats
	reorder *reorderer
	// bg tracks the handlers and the work that outlives a call (the
	// duplicates' copies), so that Close can wait for them.
	bg sync.WaitGroup
	// closed (under mu) stops new background work once Close waits for bg.
	closed bool

	serveDone chan error
	closeOnce sync.Once
	closeErr  error
}

// Start listens on a free loopback port and forwards to upstream (a base URL
// such as "http://127.0.0.1:8080") until Close. ctx bounds only the start.
func Start(ctx context.Context, upstream string, cfg Config) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: upstream %q is not an http(s) base URL", upstream)
	}
	if err := cfg.Faults.validate(); err != nil {
		return nil, err
	}
	if cfg.Link.BytesPerSecond < 0 || cfg.Link.RTT < 0 {
		return nil, errors.New("faultproxy: negative link bandwidth or round trip")
	}
	errLog := cfg.ErrorLog
	if errLog == nil {
		errLog = log.New(io.Discard, "", 0)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	pctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		seed:      cfg.Seed,
		upstream:  u,
		ln:        ln,
		ctx:       pctx,
		cancel:    cancel,
		faults:    cfg.Faults.withDefaults(),
		rtt:       cfg.Link.RTT,
		up:        newBucket(cfg.Link.BytesPerSecond),
		down:      newBucket(cfg.Link.BytesPerSecond),
		stats:     Stats{Procedures: map[string]Traffic{}},
		serveDone: make(chan error, 1),
	}
	p.reorder = newReorderer(p)
	// Forward over the protocol the client chose: HTTP/1.1 as it came, h2c
	// (prior knowledge) for HTTP/2, so that gRPC keeps its trailers.
	// Compression is the endpoints' business: the proxy must neither ask
	// for it nor undo it, or its byte counts would not be the wire's.
	var h1, h2 http.Protocols
	h1.SetHTTP1(true)
	h2.SetUnencryptedHTTP2(true)
	p.h1 = &http.Transport{Protocols: &h1, DisableCompression: true, MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}
	p.h2c = &http.Transport{Protocols: &h2, DisableCompression: true, IdleConnTimeout: time.Minute}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
		},
		Transport: roundTripper{p},
		// Connect streams must reach the client frame by frame.
		FlushInterval: -1,
		ErrorLog:      errLog,
		ErrorHandler:  p.forwardError,
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	p.srv = &http.Server{
		Handler:           p,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          errLog,
		BaseContext:       func(net.Listener) context.Context { return pctx },
	}
	go func() { p.serveDone <- p.srv.Serve(ln) }()
	return p, nil
}

// URL is the base URL clients use instead of the upstream's.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// SetFaults replaces the fault probabilities for calls that arrive from now
// on; SetFaults(Faults{}) heals the link.
func (p *Proxy) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f.withDefaults()
	return nil
}

// SetLink changes the link's shape, for transfers from now on.
func (p *Proxy) SetLink(l Link) error {
	if l.BytesPerSecond < 0 || l.RTT < 0 {
		return errors.New("faultproxy: negative link bandwidth or round trip")
	}
	p.mu.Lock()
	p.rtt = l.RTT
	p.mu.Unlock()
	p.up.setRate(l.BytesPerSecond)
	p.down.setRate(l.BytesPerSecond)
	return nil
}

// Close stops listening, closes every connection (calls in flight fail at
// once, as on a lost link), and waits for the handlers and the proxy's own
// goroutines. It is safe to call more than once.
//
// It does not shut down gracefully: waiting for calls the proxy may be
// holding on purpose would make no sense, and an HTTP/1.1 client may keep
// a connection open on which it never sends a request, which a graceful
// shutdown waits seconds for.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.cancel()
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.reorder.close()
		err := p.srv.Close()
		if serveErr := <-p.serveDone; !errors.Is(serveErr, http.ErrServerClosed) {
			err = errors.Join(err, serveErr)
		}
		p.bg.Wait()
		p.h1.CloseIdleConnections()
		p.h2c.CloseIdleConnections()
		p.closeErr = err
	})
	return p.closeErr
}

// call is what the forwarding knows about the call in flight.
type call struct {
	plan plan
	// forwarded tells the reorder gate that this call has been handled
	// upstream (or has failed), so the next held call may go. It may be
	// called more than once.
	forwarded func()
}

type callKey struct{}

// ServeHTTP runs one call through the link and its plan.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.background() {
		panic(http.ErrAbortHandler) // closing
	}
	defer p.bg.Done()
	n := p.calls.Add(1)
	proc := procedure(r.URL.Path)
	p.mu.Lock()
	f := p.faults
	rtt := p.rtt
	p.stats.Calls++
	t := p.stats.Procedures[proc]
	t.Calls++
	p.stats.Procedures[proc] = t
	p.mu.Unlock()
	c := &call{plan: newPlan(p.seed, n, &f, proc), forwarded: func() {}}
	ctx := r.Context()
	if err := sleep(ctx, rtt/2+c.plan.delay); err != nil {
		panic(http.ErrAbortHandler)
	}
	if c.plan.delay > 0 {
		p.count(func(s *Stats) { s.Delayed++ })
	}
	if c.plan.reorder {
		t, err := p.reorder.hold(ctx, f.ReorderWindow, f.ReorderMax, c.plan.shuffle)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		c.forwarded = t.finish
		defer t.finish()
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(ctx, callKey{}, c)))
}

// forwardError ends a call the forwarding could not complete. An injected
// fault, or a client or proxy gone, aborts the connection as a broken
// network would; a real upstream failure is answered 502 so that it is not
// mistaken for an injected one.
func (p *Proxy) forwardError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errInjected) || r.Context().Err() != nil {
		panic(http.ErrAbortHandler)
	}
	p.rp.ErrorLog.Printf("faultproxy: forward %s: %v", r.URL.Path, err)
	w.WriteHeader(http.StatusBadGateway)
}

func procedure(path string) string {
	return path[strings.LastIndex(path, "/")+1:]
}

func (p *Proxy) count(update func(*Stats)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	update(&p.stats)
}

// background registers work that may outlive its call, unless the proxy is
// closing; the caller must call p.bg.Done when it ends.
func (p *Proxy) background() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.bg.Add(1)
	return true
}

func (p *Proxy) halfRTT() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rtt / 2
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
