package sdk

import (
	"context"
	"math/rand/v2"
	"time"
)

// LoopOptions configure RunSync.
type LoopOptions struct {
	// Interval between syncs while they succeed (default 1 minute).
	Interval time.Duration
	// MaxBackoff caps the wait after failures (default 15 minutes).
	MaxBackoff time.Duration
	// Trigger, if set, starts a sync at once when it receives (an app
	// sends on it after a write, or when the network returns).
	Trigger <-chan struct{}
	// OnResult, if set, is called after every attempt.
	OnResult func(SyncReport, error)
}

// RunSync syncs in the background until ctx ends: every Interval while syncs
// succeed, and after a failure with exponential backoff (doubling from
// Interval/8, with jitter so that a street of phones regaining the network
// together does not hit the server together). It returns ctx's error.
func (r *Replica) RunSync(ctx context.Context, o LoopOptions) error {
	if o.Interval <= 0 {
		o.Interval = time.Minute
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 15 * time.Minute
	}
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		case <-o.Trigger:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		// Offline too, the app running keeps the highest time seen (the
		// lost-phone policy counts by it).
		r.seeTime(ctx)
		rep, err := r.Sync(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if o.OnResult != nil {
			o.OnResult(rep, err)
		}
		wait := o.Interval
		if err != nil {
			failures++
			wait = backoff(o.Interval/8, o.MaxBackoff, failures)
		} else {
			failures = 0
		}
		timer.Reset(wait)
	}
}

// backoff is base·2^(failures-1), capped, with ±25% jitter.
func backoff(base, limit time.Duration, failures int) time.Duration {
	if base <= 0 {
		base = time.Second
	}
	d := base
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	jitter := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
	return max(time.Millisecond, d+jitter)
}
