package server

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/doorbook/doorbook/server/store"
)

// Enrolment throttling: a code is 60 random bits, so guessing is hopeless,
// but a client that keeps failing is either broken or probing. Failures
// are counted in the database, so that every server process of an
// installation shares one budget: a prober spreading its attempts over
// several servers gains nothing. A refused attempt costs one read; only a
// failure costs a write, and failures are bounded by the limits below.
const (
	// DefaultEnrollFailures is how many failed enrolments one address may
	// make per DefaultEnrollWindow.
	DefaultEnrollFailures = 5
	// DefaultEnrollFailuresAll bounds failures from all addresses together,
	// against guessing spread over many addresses.
	DefaultEnrollFailuresAll = 200
	DefaultEnrollWindow      = time.Minute
)

// Sign-in throttling: a password is guessed offline only from its hash,
// which never leaves the database, so the limits bound online guessing
// of one name and from one address. Locking a name out is the price: an
// office whose admin is locked out waits a quarter of an hour.
const (
	DefaultSignInFailures        = 10
	DefaultSignInFailuresPerAddr = 30
	DefaultSignInFailuresAll     = 1000
	DefaultSignInWindow          = 15 * time.Minute
)

// failureLimiter counts failures per key over a sliding window, in the
// store.
type failureLimiter struct {
	st     store.Store
	max    int
	maxAll int
	window time.Duration
	now    func() time.Time
}

func newFailureLimiter(st store.Store, max, maxAll int, window time.Duration, now func() time.Time) *failureLimiter {
	return &failureLimiter{st: st, max: max, maxAll: maxAll, window: window, now: now}
}

// allow says whether key may try again, and if not, within how long it
// may (at most the window: the oldest failure in it leaves by then).
func (l *failureLimiter) allow(ctx context.Context, key string) (time.Duration, bool, error) {
	ofKey, all, err := l.st.Failures(ctx, key, l.now().Add(-l.window))
	if err != nil {
		return 0, false, err
	}
	if ofKey >= l.max || all >= l.maxAll {
		return l.window, false, nil
	}
	return 0, true, nil
}

// forgetFailures is how long failures are kept: at least every limiter's
// window, since one table holds them all and each failure recorded
// deletes the old ones of every key.
const forgetFailures = time.Hour

// fail records a failure of key.
func (l *failureLimiter) fail(ctx context.Context, key string) error {
	now := l.now()
	return l.st.RecordFailure(ctx, key, now, now.Add(-max(forgetFailures, l.window)))
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
