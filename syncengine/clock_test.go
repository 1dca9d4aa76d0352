package syncengine_test

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	se "github.com/doorbook/doorbook/syncengine"
)

// epoch is a fixed wall-clock reading for the clock tests.
var epoch = time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

// wall is a settable wall clock for one goroutine.
type wall struct{ t time.Time }

func (w *wall) now() time.Time { return w.t }

func TestClockCompare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b se.Clock
		want int
	}{
		{clk(1, 1), clk(1, 1), 0},
		{clk(1, 1), clk(2, 1), -1},
		{clk(2, 1), clk(1, 1), +1},
		{clk(1, 9), clk(2, 0), -1}, // HLC first
		{clk(2, 1), clk(2, 2), -1}, // then node
		{clk(2, 2), clk(2, 1), +1},
		{se.Clock{}, clk(0, 1), -1},
		{se.Clock{}, se.Clock{}, 0},
		{clk(math.MaxUint64, 0), clk(math.MaxUint64-1, math.MaxUint64), +1},
	}
	for _, tt := range tests {
		if got := tt.a.Compare(tt.b); got != tt.want {
			t.Errorf("%v.Compare(%v) = %d; want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestClockIsZero(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		c    se.Clock
		want bool
	}{
		{se.Clock{}, true},
		{clk(0, 1), false},
		{clk(1, 0), false},
	} {
		if got := tt.c.IsZero(); got != tt.want {
			t.Errorf("%#v.IsZero() = %v; want %v", tt.c, got, tt.want)
		}
	}
}

func TestPackHLC(t *testing.T) {
	t.Parallel()
	ms := epoch.UnixMilli()
	if got := se.HLCTime(se.PackHLC(ms, 42)); !got.Equal(epoch) {
		t.Errorf("HLCTime(PackHLC(%d, 42)) = %v; want %v", ms, got, epoch)
	}
	c := se.Clock{HLC: se.PackHLC(ms, 7), Node: 1}
	if !c.Time().Equal(epoch) {
		t.Errorf("%v.Time() = %v; want %v", c, c.Time(), epoch)
	}
	// The counter orders readings within one millisecond, below the next one.
	if !(se.PackHLC(ms, 0) < se.PackHLC(ms, 1) && se.PackHLC(ms, math.MaxUint16) < se.PackHLC(ms+1, 0)) {
		t.Error("PackHLC does not order by milliseconds, then counter")
	}
	if got := se.PackHLC(-5, 3); got != se.PackHLC(0, 3) {
		t.Errorf("PackHLC(-5, 3) = %d; want it clamped to PackHLC(0, 3) = %d", got, se.PackHLC(0, 3))
	}
}

func TestNodeID(t *testing.T) {
	t.Parallel()
	a, b := se.NodeID("replica-a"), se.NodeID("replica-b")
	if a != se.NodeID("replica-a") {
		t.Error("NodeID is not deterministic")
	}
	if a == b {
		t.Errorf("NodeID(replica-a) == NodeID(replica-b) == %x", a)
	}
}

func TestHybridClockMonotone(t *testing.T) {
	t.Parallel()
	w := &wall{t: epoch}
	h := se.NewHybridClock(7, 0, w.now)
	if h.Node() != 7 {
		t.Fatalf("Node() = %d; want 7", h.Node())
	}
	// The wall clock moves forward, stands still, jumps back an hour (NTP,
	// a user fiddling with settings) and moves again.
	steps := []time.Duration{0, 0, 0, time.Millisecond, 0, 5 * time.Second, -time.Hour, 0, time.Millisecond, 2 * time.Hour}
	var prev se.Clock
	for i, d := range steps {
		w.t = w.t.Add(d)
		c := h.Now()
		if c.Compare(prev) <= 0 {
			t.Fatalf("step %d: Now() = %v, not after the previous reading %v", i, c, prev)
		}
		if c.Node != 7 {
			t.Fatalf("step %d: Now().Node = %d; want 7", i, c.Node)
		}
		if floor := se.PackHLC(w.t.UnixMilli(), 0); c.HLC < floor {
			t.Fatalf("step %d: Now() = %v, below the wall clock %v", i, c, w.t)
		}
		if h.Peek() != c.HLC {
			t.Fatalf("step %d: Peek() = %d; want the last reading %d", i, h.Peek(), c.HLC)
		}
		prev = c
	}
	// After the jump back and two hours forward, the clock follows the wall
	// again exactly.
	if want := se.PackHLC(w.t.UnixMilli(), 0); prev.HLC != want {
		t.Errorf("after the wall clock moved ahead, Now() = %d; want the wall reading %d", prev.HLC, want)
	}
}

func TestHybridClockResumesFromLast(t *testing.T) {
	t.Parallel()
	last := se.PackHLC(epoch.Add(time.Minute).UnixMilli(), 3) // persisted, ahead of the wall
	h := se.NewHybridClock(1, last, func() time.Time { return epoch })
	if got := h.Now(); got.HLC != last+1 {
		t.Errorf("Now() = %d; want last+1 = %d", got.HLC, last+1)
	}
}

func TestHybridClockCounterCarries(t *testing.T) {
	t.Parallel()
	ms := epoch.UnixMilli()
	h := se.NewHybridClock(1, se.PackHLC(ms, math.MaxUint16), func() time.Time { return epoch })
	if got, want := h.Now().HLC, se.PackHLC(ms+1, 0); got != want {
		t.Errorf("Now() after a full counter = %d; want %d (carry into the milliseconds)", got, want)
	}
}

func TestHybridClockObserve(t *testing.T) {
	t.Parallel()
	h := se.NewHybridClock(1, 0, func() time.Time { return epoch })
	local := h.Now()

	remote := se.PackHLC(epoch.Add(10*time.Second).UnixMilli(), 5)
	h.Observe(remote)
	if h.Peek() != remote {
		t.Errorf("Peek() after Observe(%d) = %d; want %d", remote, h.Peek(), remote)
	}
	if c := h.Now(); c.HLC <= remote {
		t.Errorf("Now() after Observe(%d) = %d; want a later reading", remote, c.HLC)
	}

	// Observing an older reading never moves the clock back.
	before := h.Peek()
	h.Observe(local.HLC)
	h.Observe(0)
	if h.Peek() != before {
		t.Errorf("Peek() after observing older readings = %d; want unchanged %d", h.Peek(), before)
	}
}

func TestHybridClockOffset(t *testing.T) {
	t.Parallel()
	for _, off := range []time.Duration{2 * time.Hour, -90 * time.Second} {
		h := se.NewHybridClock(1, 0, func() time.Time { return epoch })
		h.SetOffset(off)
		if h.Offset() != off {
			t.Errorf("Offset() = %v; want %v", h.Offset(), off)
		}
		want := se.PackHLC(epoch.Add(off).UnixMilli(), 0)
		if got := h.Now(); got.HLC != want {
			t.Errorf("offset %v: Now() = %v (%v); want the shifted wall %v", off, got, got.Time(), epoch.Add(off))
		}
	}
}

func TestHybridClockReset(t *testing.T) {
	t.Parallel()
	w := &wall{t: epoch}
	ahead := se.PackHLC(epoch.AddDate(3, 0, 0).UnixMilli(), 0)
	h := se.NewHybridClock(1, ahead, w.now)
	h.Reset(0)
	if h.Peek() != 0 {
		t.Errorf("Peek() after Reset(0) = %d; want 0", h.Peek())
	}
	if got, want := h.Now().HLC, se.PackHLC(epoch.UnixMilli(), 0); got != want {
		t.Errorf("Now() after Reset = %d; want the wall reading %d", got, want)
	}
}

// Readings are unique even when many goroutines tick one clock.
func TestHybridClockConcurrent(t *testing.T) {
	t.Parallel()
	h := se.NewHybridClock(1, 0, func() time.Time { return epoch })
	const workers, each = 4, 250
	readings := make([][]se.Clock, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for range each {
				readings[i] = append(readings[i], h.Now())
			}
		})
	}
	wg.Wait()
	seen := make(map[se.Clock]bool)
	for _, rs := range readings {
		for j, c := range rs {
			if seen[c] {
				t.Fatalf("reading %v issued twice", c)
			}
			seen[c] = true
			if j > 0 && c.Compare(rs[j-1]) <= 0 {
				t.Fatalf("one goroutine saw %v after %v", c, rs[j-1])
			}
		}
	}
	if h.Peek() != se.PackHLC(epoch.UnixMilli(), 0)+workers*each-1 {
		t.Errorf("Peek() = %d after %d readings in one millisecond; want %d", h.Peek(), workers*each, se.PackHLC(epoch.UnixMilli(), 0)+workers*each-1)
	}
}

func TestCheckSkew(t *testing.T) {
	t.Parallel()
	const maxSkew = 5 * time.Minute
	at := func(t time.Time, logical uint16) se.Clock {
		return se.Clock{HLC: se.PackHLC(t.UnixMilli(), logical), Node: 1}
	}
	limit := at(epoch.Add(maxSkew), math.MaxUint16)
	tests := []struct {
		name    string
		c       se.Clock
		wantErr bool
	}{
		{"server time", at(epoch, 0), false},
		{"behind the server", at(epoch.AddDate(-1, 0, 0), 0), false},
		{"zero clock", se.Clock{}, false},
		{"within the bound", at(epoch.Add(4*time.Minute), 9), false},
		{"at the bound", limit, false},
		{"just past the bound", se.Clock{HLC: limit.HLC + 1, Node: 1}, true},
		{"a second past the bound", at(epoch.Add(maxSkew+time.Second), 0), true},
		{"a phone set years ahead", at(epoch.AddDate(5, 0, 0), 0), true},
		{"the largest clock", clk(math.MaxUint64, math.MaxUint64), true},
	}
	for _, tt := range tests {
		err := se.CheckSkew(tt.c, epoch, maxSkew)
		switch {
		case tt.wantErr && !errors.Is(err, se.ErrClockSkew):
			t.Errorf("%s: CheckSkew(%v) = %v; want an error wrapping ErrClockSkew", tt.name, tt.c, err)
		case !tt.wantErr && err != nil:
			t.Errorf("%s: CheckSkew(%v) = %v; want nil", tt.name, tt.c, err)
		}
	}
}

func TestEncodeDecodeClocks(t *testing.T) {
	t.Parallel()
	clocks := []se.Clock{clk(1, 2), {}, clk(math.MaxUint64, 0), clk(0, math.MaxUint64), clk(se.PackHLC(epoch.UnixMilli(), 3), se.NodeID("x"))}

	t.Run("round trip", func(t *testing.T) {
		t.Parallel()
		b := se.EncodeClocks(clocks)
		if len(b) != 16*len(clocks) {
			t.Fatalf("EncodeClocks: %d bytes; want %d", len(b), 16*len(clocks))
		}
		got := make([]se.Clock, len(clocks))
		if err := se.DecodeClocks(b, got); err != nil {
			t.Fatalf("DecodeClocks: %v", err)
		}
		for i := range clocks {
			if got[i] != clocks[i] {
				t.Errorf("clock %d: got %v; want %v", i, got[i], clocks[i])
			}
		}
	})

	t.Run("shorter input leaves the rest zero", func(t *testing.T) {
		t.Parallel()
		b := se.EncodeClocks(clocks[:2])
		got := []se.Clock{clk(9, 9), clk(9, 9), clk(9, 9), clk(9, 9)} // stale contents
		if err := se.DecodeClocks(b, got); err != nil {
			t.Fatalf("DecodeClocks: %v", err)
		}
		want := []se.Clock{clocks[0], clocks[1], {}, {}}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("clock %d: got %v; want %v", i, got[i], want[i])
			}
		}
	})

	t.Run("empty input", func(t *testing.T) {
		t.Parallel()
		got := []se.Clock{clk(1, 1)}
		if err := se.DecodeClocks(nil, got); err != nil || got[0] != (se.Clock{}) {
			t.Errorf("DecodeClocks(nil) = %v, clocks %v; want nil, all zero", err, got)
		}
		if b := se.EncodeClocks(nil); len(b) != 0 {
			t.Errorf("EncodeClocks(nil) = %x; want empty", b)
		}
	})

	t.Run("torn input", func(t *testing.T) {
		t.Parallel()
		b := se.EncodeClocks(clocks)
		for _, n := range []int{1, 15, 17, len(b) - 1} {
			if err := se.DecodeClocks(b[:n], make([]se.Clock, len(clocks))); !errors.Is(err, se.ErrInvalid) {
				t.Errorf("DecodeClocks(%d bytes) = %v; want ErrInvalid", n, err)
			}
		}
	})
}
