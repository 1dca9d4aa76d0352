package server

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// Enrolment throttling: a code is 60 random bits, so guessing is hopeless,
// but a client that keeps failing is either broken or probing, and neither
// should cost the database a write transaction per attempt.
const (
	// DefaultEnrollFailures is how many failed enrolments one address may
	// make per DefaultEnrollWindow.
	DefaultEnrollFailures = 5
	// DefaultEnrollFailuresAll bounds failures from all addresses together,
	// against guessing spread over many addresses.
	DefaultEnrollFailuresAll = 200
	DefaultEnrollWindow      = time.Minute
	// maxThrottleKeys bounds the limiter's memory; past it, windows that
	// have ended are dropped, and if none has, the oldest is.
	maxThrottleKeys = 10_000
)

// failureLimiter counts failures per key in fixed windows.
type failureLimiter struct {
	mu     sync.Mutex
	max    int
	maxAll int
	window time.Duration
	now    func() time.Time
	keys   map[string]*failureWindow
	all    failureWindow
}

type failureWindow struct {
	start time.Time
	n     int
}

func newFailureLimiter(max, maxAll int, window time.Duration, now func() time.Time) *failureLimiter {
	return &failureLimiter{max: max, maxAll: maxAll, window: window, now: now, keys: map[string]*failureWindow{}}
}

// allow says whether key may try again, and if not, when it may.
func (l *failureLimiter) allow(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if wait, ok := l.check(&l.all, l.maxAll, now); !ok {
		return wait, false
	}
	if w := l.keys[key]; w != nil {
		if wait, ok := l.check(w, l.max, now); !ok {
			return wait, false
		}
	}
	return 0, true
}

func (l *failureLimiter) check(w *failureWindow, max int, now time.Time) (time.Duration, bool) {
	if now.Sub(w.start) >= l.window {
		*w = failureWindow{start: now}
	}
	if w.n < max {
		return 0, true
	}
	return w.start.Add(l.window).Sub(now), false
}

// fail records a failure of key.
func (l *failureLimiter) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.check(&l.all, l.maxAll, now)
	l.all.n++
	w := l.keys[key]
	if w == nil {
		if len(l.keys) >= maxThrottleKeys {
			l.prune(now)
		}
		w = &failureWindow{start: now}
		l.keys[key] = w
	}
	l.check(w, l.max, now)
	w.n++
}

func (l *failureLimiter) prune(now time.Time) {
	var oldest string
	for k, w := range l.keys {
		if now.Sub(w.start) >= l.window {
			delete(l.keys, k)
		} else if oldest == "" || w.start.Before(l.keys[oldest].start) {
			oldest = k
		}
	}
	if len(l.keys) >= maxThrottleKeys {
		delete(l.keys, oldest)
	}
}

// peerHost is the address part of a peer ("host:port"): a phone behind a
// carrier's NAT shares it with others, which is why the limit is generous.
func peerHost(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

func (l *failureLimiter) String() string {
	return fmt.Sprintf("%d failures per %s per address, %d in all", l.max, l.window, l.maxAll)
}
