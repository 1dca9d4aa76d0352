// Package deadline keeps a phone's (or the CLI's) calls from hanging on a
// dead link: an HTTP transport that gives up when a connection cannot be
// made, when the server takes too long to start answering once the request
// is sent, or when the bytes stop flowing either way in the middle of a
// call. A whole call has no deadline of its own: a bootstrap over 2G may
// rightly take many minutes, as long as it keeps moving.
package deadline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Timeouts bound the stages of one call.
type Timeouts struct {
	// Connect bounds making the connection (TCP and TLS).
	Connect time.Duration
	// FirstByte bounds the wait for the answer to begin once the request
	// is sent whole: the server's work on a push counts here.
	FirstByte time.Duration
	// Idle bounds a pause in the bytes of a request or an answer.
	Idle time.Duration
}

// Defaults suit a 2G link in a stairwell: slow, with long stalls, but
// never silent for a minute while it works.
var Defaults = Timeouts{Connect: 30 * time.Second, FirstByte: 60 * time.Second, Idle: 60 * time.Second}

func (t Timeouts) withDefaults() Timeouts {
	if t.Connect <= 0 {
		t.Connect = Defaults.Connect
	}
	if t.FirstByte <= 0 {
		t.FirstByte = Defaults.FirstByte
	}
	if t.Idle <= 0 {
		t.Idle = Defaults.Idle
	}
	return t
}

// Error is a call given up by a timeout: the server or the link went
// silent. It is a net.Error that times out, so that callers treat it as
// the network's failure, to retry later.
type Error struct {
	Stage string
	After time.Duration
}

func (e *Error) Error() string {
	return fmt.Sprintf("no %s from the server within %v: the link or the server is down; try again later", e.Stage, e.After)
}

func (e *Error) Timeout() bool   { return true }
func (e *Error) Temporary() bool { return true }

var _ net.Error = (*Error)(nil)

// NewTransport returns a transport of its own (cloned from Go's default,
// with tlsConfig if set) that enforces t.
func NewTransport(t Timeouts, configure func(*http.Transport)) http.RoundTripper {
	t = t.withDefaults()
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.DialContext = (&net.Dialer{Timeout: t.Connect, KeepAlive: 30 * time.Second}).DialContext
	base.TLSHandshakeTimeout = t.Connect
	if configure != nil {
		configure(base)
	}
	return Wrap(base, t)
}

// Wrap enforces t's first-byte and idle bounds on base's calls (the
// connect bound is the dialer's: see NewTransport).
func Wrap(base http.RoundTripper, t Timeouts) http.RoundTripper {
	if w, ok := base.(*transport); ok {
		base = w.base // the newer bounds replace the older
	}
	return &transport{base: base, t: t.withDefaults()}
}

type transport struct {
	base http.RoundTripper
	t    Timeouts
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancel(req.Context())
	w := &watchdog{cancel: cancel}
	if req.Body != nil && req.Body != http.NoBody {
		// Until the request is sent whole, the bytes must keep moving; after
		// it, the answer must begin within FirstByte.
		w.arm("progress sending the request", t.t.Idle)
		req = req.Clone(ctx)
		req.Body = &watchedBody{ReadCloser: req.Body, w: w, idle: t.t.Idle, onEOF: func() {
			w.arm("answer", t.t.FirstByte)
		}}
	} else {
		req = req.Clone(ctx)
		w.arm("answer", t.t.FirstByte)
	}
	res, err := t.base.RoundTrip(req)
	if err != nil {
		w.stop()
		cancel()
		if e := w.fired(); e != nil {
			return nil, e
		}
		return nil, err
	}
	w.arm("data", t.t.Idle)
	res.Body = &watchedBody{ReadCloser: res.Body, w: w, idle: t.t.Idle, onClose: func() {
		w.stop()
		cancel()
	}}
	return res, nil
}

// watchdog cancels a call when its timer runs out.
type watchdog struct {
	mu     sync.Mutex
	timer  *time.Timer
	stage  string
	after  time.Duration
	err    *Error
	cancel context.CancelFunc
}

func (w *watchdog) arm(stage string, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	w.stage, w.after = stage, d
	if w.timer == nil {
		w.timer = time.AfterFunc(d, w.fire)
		return
	}
	w.timer.Reset(d)
}

func (w *watchdog) fire() {
	w.mu.Lock()
	if w.err == nil {
		w.err = &Error{Stage: w.stage, After: w.after}
	}
	w.mu.Unlock()
	w.cancel()
}

func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
}

func (w *watchdog) fired() *Error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// watchedBody re-arms the watchdog whenever bytes move.
type watchedBody struct {
	io.ReadCloser
	w       *watchdog
	idle    time.Duration
	onEOF   func()
	onClose func()
	closed  sync.Once
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if e := b.w.fired(); e != nil && err != nil && !errors.Is(err, io.EOF) {
		return n, e
	}
	if n > 0 {
		b.w.arm(b.w.currentStage(), b.idle)
	}
	if errors.Is(err, io.EOF) && b.onEOF != nil {
		b.onEOF()
		b.onEOF = nil
	}
	return n, err
}

func (w *watchdog) currentStage() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stage
}

func (b *watchedBody) Close() error {
	err := b.ReadCloser.Close()
	if b.onClose != nil {
		b.closed.Do(b.onClose)
	}
	return err
}
