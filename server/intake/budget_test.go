package intake

import (
	"context"
	"flag"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
)

var budgetSeeds = flag.Int("intake.budget-seeds", 20, "random schedules TestBudgetSchedules runs")

// patience is a queue wait no test should reach: a grow that waits it out
// was deadlocked.
const patience = time.Minute

// TestBudgetHoldersWaitingOnEachOther is the deadlock a burst made: two
// requests share the whole budget and each waits for more.
func TestBudgetHoldersWaitingOnEachOther(t *testing.T) {
	t.Parallel()
	b := newBudget(100, time.Now)
	first, second := b.account(), b.account()
	if err := first.grow(t.Context(), 60, patience); err != nil {
		t.Fatal(err)
	}
	if err := second.grow(t.Context(), 40, patience); err != nil {
		t.Fatal(err)
	}
	secondDone := make(chan error, 1)
	go func() { secondDone <- second.grow(t.Context(), 50, patience) }()
	waitFor(t, b, func() bool { return len(b.holders) == 1 })
	// The first is the oldest: with every holder waiting, it goes past
	// the budget and finishes.
	if err := first.grow(t.Context(), 50, patience); err != nil {
		t.Fatalf("the oldest holder: %v", err)
	}
	b.mu.Lock()
	over, used := first.over, b.used
	b.mu.Unlock()
	if over != 50 || used != 100 {
		t.Errorf("past the budget %d, within %d; want 50 and 100", over, used)
	}
	first.releaseAll()
	if err := <-secondDone; err != nil {
		t.Fatalf("the second holder, once the first ended: %v", err)
	}
	second.releaseAll()
	if !b.idle() {
		t.Error("the budget is not idle once both ended")
	}
}

// TestBudgetHandlerDoesNotHoldTheLaneShut: a request in its handler (its
// body read, perhaps streaming an answer for minutes) holds its bytes but
// does not keep holders that wait on each other from the lane.
func TestBudgetHandlerDoesNotHoldTheLaneShut(t *testing.T) {
	t.Parallel()
	b := newBudget(1000, time.Now)
	handler, first, second := b.account(), b.account(), b.account()
	for _, g := range []struct {
		a *account
		n int64
	}{{handler, 10}, {first, 490}, {second, 490}} {
		if err := g.a.grow(t.Context(), g.n, patience); err != nil {
			t.Fatal(err)
		}
	}
	handler.bodyRead()
	secondDone := make(chan error, 1)
	go func() { secondDone <- second.grow(t.Context(), 400, patience) }()
	waitFor(t, b, func() bool { return len(b.holders) == 1 })
	if err := first.grow(t.Context(), 400, patience); err != nil {
		t.Fatalf("the oldest holder, beside a request in its handler: %v", err)
	}
	first.releaseAll()
	if err := <-secondDone; err != nil {
		t.Fatalf("the second holder: %v", err)
	}
	second.releaseAll()
	handler.releaseAll()
	if !b.idle() {
		t.Error("the budget is not idle")
	}
}

// TestBudgetHoldersFirst: room that frees goes to a request already
// holding some before one that holds none, even one that came first.
func TestBudgetHoldersFirst(t *testing.T) {
	t.Parallel()
	b := newBudget(100, time.Now)
	running, holder, newcomer := b.account(), b.account(), b.account()
	for _, g := range []struct {
		a *account
		n int64
	}{{running, 70}, {holder, 30}} {
		if err := g.a.grow(t.Context(), g.n, patience); err != nil {
			t.Fatal(err)
		}
	}
	newDone, holderDone := make(chan error, 1), make(chan error, 1)
	go func() { newDone <- newcomer.grow(t.Context(), 40, patience) }()
	waitFor(t, b, func() bool { return len(b.newcomers) == 1 })
	go func() { holderDone <- holder.grow(t.Context(), 40, patience) }()
	waitFor(t, b, func() bool { return len(b.holders) == 1 })
	running.releaseAll()
	if err := <-holderDone; err != nil {
		t.Fatalf("the holder: %v", err)
	}
	b.mu.Lock()
	waiting := len(b.newcomers)
	b.mu.Unlock()
	if waiting != 1 {
		t.Fatalf("%d newcomers wait, want 1: it came in before the holder got its room", waiting)
	}
	holder.releaseAll()
	if err := <-newDone; err != nil {
		t.Fatalf("the newcomer: %v", err)
	}
	newcomer.releaseAll()
	if !b.idle() {
		t.Error("the budget is not idle")
	}
}

// TestBudgetRefusedWaiterLetsOthersIn: the head of the queue giving up
// lets those behind it in; the time it waited is counted.
func TestBudgetRefusedWaiterLetsOthersIn(t *testing.T) {
	t.Parallel()
	b := newBudget(100, time.Now)
	holder, big, small := b.account(), b.account(), b.account()
	if err := holder.grow(t.Context(), 90, patience); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	bigDone, smallDone := make(chan error, 1), make(chan error, 1)
	go func() { bigDone <- big.grow(ctx, 50, patience) }()
	waitFor(t, b, func() bool { return len(b.newcomers) == 1 })
	go func() { smallDone <- small.grow(t.Context(), 10, patience) }()
	waitFor(t, b, func() bool { return len(b.newcomers) == 2 })
	cancel()
	if err := <-bigDone; err != context.Canceled {
		t.Errorf("the cancelled waiter: %v", err)
	}
	if err := <-smallDone; err != nil {
		t.Errorf("the one behind it: %v", err)
	}
	if small.waited <= 0 {
		t.Error("the time the second waited was not counted")
	}
	if err := big.grow(t.Context(), 50, time.Millisecond); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Errorf("a wait that runs out: %v, want resource_exhausted", err)
	}
	holder.releaseAll()
	small.releaseAll()
	big.releaseAll()
	if !b.idle() {
		t.Error("the budget is not idle")
	}
}

// TestBudgetSchedules runs random bursts of requests that grow in random
// steps: every one finishes (no deadlock), the budget is never exceeded by
// more than one request, and it is whole again at the end.
func TestBudgetSchedules(t *testing.T) {
	t.Parallel()
	for seed := range uint64(*budgetSeeds) {
		rng := rand.New(rand.NewPCG(seed, 7))
		size := int64(50 + rng.IntN(200))
		b := newBudget(size, time.Now)
		requests := 2 + rng.IntN(30)
		var wg sync.WaitGroup
		errs := make(chan error, requests)
		for range requests {
			steps := make([]int64, 1+rng.IntN(5))
			for i := range steps {
				steps[i] = int64(1 + rng.IntN(int(size)))
			}
			wg.Go(func() {
				a := b.account()
				defer a.releaseAll()
				// Some then sit in their handler a while, holding.
				defer func() {
					if len(steps)%2 == 0 {
						a.bodyRead()
						runtime.Gosched()
					}
				}()
				for _, n := range steps {
					if err := a.grow(t.Context(), n, patience); err != nil {
						errs <- err
						return
					}
					b.mu.Lock()
					used, over, mine := b.used, b.over, a.over
					b.mu.Unlock()
					if used > size {
						t.Errorf("seed %d: %d of %d used", seed, used, size)
					}
					if mine > 0 && over != a {
						t.Errorf("seed %d: a request past the budget is not the one allowed", seed)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("seed %d: %v", seed, err)
		}
		if !b.idle() {
			t.Errorf("seed %d: the budget is not idle once every request ended", seed)
		}
	}
}

// waitFor waits until cond, read under b's lock, holds.
func waitFor(t *testing.T, b *budget, cond func() bool) {
	t.Helper()
	for {
		b.mu.Lock()
		ok := cond()
		b.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatal("gave up waiting")
		default:
		}
		runtime.Gosched()
	}
}
