package faultproxy

import (
	"context"
	"sync"
	"time"
)

// bucket is a token bucket of bytes. A transfer reserves its bytes first
// and then waits out the deficit, so concurrent transfers share the rate
// instead of each getting all of it.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // bytes per second; 0: unlimited
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(bytesPerSecond int64) *bucket {
	b := &bucket{}
	b.setRate(bytesPerSecond)
	return b
}

func (b *bucket) setRate(bytesPerSecond int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rate = float64(bytesPerSecond)
	// A twentieth of a second's worth (at least a packet or two), so that
	// a transfer flows in small steps rather than in bursts a second long.
	b.burst = max(b.rate/20, 4096)
	b.tokens, b.last = b.burst, time.Now()
}

// chunk is the most bytes one read should move: no more than the burst.
func (b *bucket) chunk() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate <= 0 {
		return 1 << 20
	}
	return int(b.burst)
}

// wait charges n bytes and sleeps until they have fitted through the link.
func (b *bucket) wait(ctx context.Context, n int) error {
	b.mu.Lock()
	if b.rate <= 0 {
		b.mu.Unlock()
		return nil
	}
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens -= float64(n)
	var d time.Duration
	if b.tokens < 0 {
		d = time.Duration(-b.tokens / b.rate * float64(time.Second))
	}
	b.mu.Unlock()
	return sleep(ctx, d)
}
