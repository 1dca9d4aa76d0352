package intake

import (
	"context"
	"sync/atomic"
)

// gate lets at most a number of a procedure's calls past it at once. The
// others wait with their body read but not decoded: calls that queue for
// one resource behind the handler (a push for the one SQLite writer) would
// otherwise each hold their decoded message, several times their body,
// while they queue there.
type gate struct {
	slots   chan struct{}
	waiting atomic.Int64 // calls waiting for a slot
}

func newGate(n int) *gate { return &gate{slots: make(chan struct{}, n)} }

// enter waits for a slot as long as ctx lasts, and reports whether it got
// one; the caller then calls leave.
func (g *gate) enter(ctx context.Context) bool {
	select {
	case g.slots <- struct{}{}:
		return true
	default:
	}
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	select {
	case g.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (g *gate) leave() { <-g.slots }
