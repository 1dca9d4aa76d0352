package faultproxy

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// reorderer holds calls that arrive close together and forwards them one at
// a time in a shuffled order. Releasing them all at once would not do: the
// goroutines would race to the server in whatever order the scheduler
// picks, and the shuffle would mean nothing.
type reorderer struct {
	p      *Proxy
	mu     sync.Mutex
	open   *batch
	closed bool
	// joined counts every call ever held (tests wait on it).
	joined int
	wg     sync.WaitGroup
}

type batch struct {
	held    []*ticket
	timer   *time.Timer
	shuffle uint64
}

// ticket is one held call.
type ticket struct {
	release chan struct{}
	done    chan struct{}
	once    sync.Once
}

// finish says the call has been forwarded (or has given up), so the next
// one may go.
func (t *ticket) finish() { t.once.Do(func() { close(t.done) }) }

func newReorderer(p *Proxy) *reorderer { return &reorderer{p: p} }

// hold adds a call to the open batch (opening one, whose shuffle seed is
// this call's, if none is) and waits until the call's turn.
func (g *reorderer) hold(ctx context.Context, window time.Duration, most int, shuffle uint64) (*ticket, error) {
	t := &ticket{release: make(chan struct{}), done: make(chan struct{})}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, context.Canceled
	}
	b := g.open
	if b == nil {
		b = &batch{shuffle: shuffle}
		g.open = b
		b.timer = time.AfterFunc(window, func() { g.flush(b) })
	}
	b.held = append(b.held, t)
	g.joined++
	full := len(b.held) >= most
	g.mu.Unlock()
	if full {
		g.flush(b)
	}
	select {
	case <-t.release:
		return t, nil
	case <-ctx.Done():
		t.finish()
		return nil, ctx.Err()
	}
}

// flush closes batch b (once) and releases its calls in shuffled order.
func (g *reorderer) flush(b *batch) {
	g.mu.Lock()
	if g.open != b {
		g.mu.Unlock()
		return
	}
	g.open = nil
	b.timer.Stop()
	closed := g.closed
	if !closed {
		g.wg.Add(1)
	}
	g.mu.Unlock()
	if closed {
		for _, t := range b.held {
			close(t.release)
		}
		return
	}
	order := rand.New(rand.NewPCG(b.shuffle, uint64(len(b.held)))).Perm(len(b.held))
	moved := int64(0)
	for pos, i := range order {
		if pos != i {
			moved++
		}
	}
	g.p.count(func(s *Stats) { s.Reordered += moved })
	go func() {
		defer g.wg.Done()
		for _, i := range order {
			t := b.held[i]
			close(t.release)
			select {
			case <-t.done:
			case <-g.p.ctx.Done():
			}
		}
	}()
}

// close releases whatever is held (the calls then fail on the proxy's ended
// context), refuses new holds, and waits for the releasing goroutines.
func (g *reorderer) close() {
	g.mu.Lock()
	g.closed = true
	b := g.open
	g.mu.Unlock()
	if b != nil {
		g.flush(b)
	}
	g.wg.Wait()
}
