package intake

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
)

// budget is the memory the bodies of requests in flight may hold.
//
// A request is charged as its body arrives (a promise of 4 MiB costs
// nothing until the bytes come), so a request may hold part of the budget
// and wait for more. Were that all, a burst could deadlock: every request
// holding a slice, every one waiting for another, none able to finish
// until the queue wait refused them all. So:
//
//   - a request that already holds some of the budget goes before one
//     that holds none, and the oldest of them first;
//   - when every request that holds some is waiting, the oldest of them
//     may go past the budget (one request at a time) and finish; what it
//     frees lets the rest drain behind it.
//
// The process therefore holds at most the budget plus one request.
type budget struct {
	size int64
	now  func() time.Time

	mu sync.Mutex
	// used is what requests hold within the size.
	used int64
	// over is the one request allowed past the size, or nil.
	over *account
	// running counts the requests that hold some of the budget, are still
	// reading their body and are not waiting for more: while one runs, room
	// may yet free up without the lane. A request whose body is read (in its
	// handler, perhaps streaming an answer for minutes) is not counted.
	running int
	// holders wait for more, oldest first; newcomers wait for their first
	// bytes, first come first served.
	holders   []*waiter
	newcomers []*waiter
	admitted  uint64
}

type waiter struct {
	acct    *account
	need    int64
	ready   chan struct{}
	granted bool
}

func newBudget(size int64, now func() time.Time) *budget { return &budget{size: size, now: now} }

// account is what one request holds of a budget.
type account struct {
	b *budget
	// seq orders requests by when they first got room (0: not yet).
	seq  uint64
	held int64
	// over is what the request holds past the budget's size.
	over int64
	// waited is how long the request has waited for room: time its body's
	// slow-sender rules do not count against the caller.
	waited time.Duration
	// beforeWait, if set, runs before the request waits for room.
	beforeWait func()
	// read: the body is read whole (see bodyRead).
	read bool
	// decoded is what the request's message will cost decoded, charged
	// only once its procedure's gate lets it in (see Procedure.MaxInFlight).
	decoded int64
}

func (b *budget) account() *account { return &account{b: b} }

// grow takes n more bytes of the budget, waiting at most wait for room.
func (a *account) grow(ctx context.Context, n int64, wait time.Duration) error {
	if n <= 0 {
		return nil
	}
	b := a.b
	// Read before joining the queue: a waiter is seen waiting from then.
	start := b.now()
	b.mu.Lock()
	if a.read {
		// Charged again after its body: reading again, as far as the lane
		// is concerned.
		a.read = false
		b.running++
	}
	switch {
	case b.over == a:
		a.over += n
		b.mu.Unlock()
		return nil
	case b.used+n <= b.size && len(b.holders) == 0 && (a.seq != 0 || len(b.newcomers) == 0):
		b.grant(a, n)
		b.mu.Unlock()
		return nil
	}
	w := &waiter{acct: a, need: n, ready: make(chan struct{})}
	if a.seq != 0 {
		b.running--
		i, _ := slices.BinarySearchFunc(b.holders, a.seq, func(w *waiter, seq uint64) int { return cmp.Compare(w.acct.seq, seq) })
		b.holders = slices.Insert(b.holders, i, w)
	} else {
		b.newcomers = append(b.newcomers, w)
	}
	b.settle()
	b.mu.Unlock()

	if a.beforeWait != nil {
		a.beforeWait()
	}
	defer func() { a.waited += b.now().Sub(start) }()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var err error
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("the server is busy: its %d MiB for request bodies are in use; try again shortly", b.size>>20))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if w.granted {
		return nil
	}
	if a.seq != 0 {
		b.holders = slices.DeleteFunc(b.holders, func(x *waiter) bool { return x == w })
		b.running++
	} else {
		b.newcomers = slices.DeleteFunc(b.newcomers, func(x *waiter) bool { return x == w })
	}
	// The head of a queue leaving may let those behind it in.
	b.settle()
	return err
}

// grant gives a n bytes within the size. Call with b.mu held.
func (b *budget) grant(a *account, n int64) {
	b.used += n
	a.held += n
	if a.seq == 0 {
		b.admitted++
		a.seq = b.admitted
		b.running++
	}
}

// settle lets in the waiters that fit, holders first, and breaks a
// deadlock. Call with b.mu held.
func (b *budget) settle() {
	for {
		if len(b.holders) > 0 {
			w := b.holders[0]
			switch {
			case b.used+w.need <= b.size:
				b.grant(w.acct, w.need)
			case b.running == 0 && b.over == nil:
				// Every holder still reading waits: none would ever
				// finish its body. The oldest goes past the size, one
				// request at a time (the one past it may be in its
				// handler by now, no longer running but holding).
				b.over = w.acct
				w.acct.over += w.need
			default:
				return // newcomers wait behind holders
			}
			b.holders = b.holders[1:]
			b.running++
			w.granted = true
			close(w.ready)
			continue
		}
		if len(b.newcomers) == 0 || b.used+b.newcomers[0].need > b.size {
			return
		}
		w := b.newcomers[0]
		b.newcomers = b.newcomers[1:]
		b.grant(w.acct, w.need)
		w.granted = true
		close(w.ready)
	}
}

// bodyRead marks a's body as read whole: it keeps what it holds until
// releaseAll, but no longer counts as a request that may yet free room by
// reading on, so that requests waiting for room are not left waiting on a
// handler that streams for minutes.
func (a *account) bodyRead() {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if a.seq == 0 || a.read {
		return
	}
	a.read = true
	b.running--
	b.settle()
}

// releaseAll gives back all a holds.
func (a *account) releaseAll() {
	b := a.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if a.seq == 0 {
		return
	}
	b.used -= a.held
	a.held, a.over = 0, 0
	if b.over == a {
		b.over = nil
	}
	a.seq = 0
	if !a.read {
		b.running--
	}
	a.read = false
	b.settle()
}

// idle reports whether no request holds any of b.
func (b *budget) idle() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used == 0 && b.over == nil && b.running == 0 && len(b.holders) == 0 && len(b.newcomers) == 0
}

// free is the room left within the size.
func (b *budget) free() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size - b.used
}
