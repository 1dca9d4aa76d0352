package syncengine

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"sync"
	"time"
)

// logicalBits is the width of the logical counter in an HLC value. 48 bits of
// milliseconds last until the year 10889.
const logicalBits = 16

// Clock orders writes: the HLC value, then the node (a hash of the writing
// replica's id) to break ties between replicas. The zero Clock means "never
// written" and is older than any other.
type Clock struct {
	HLC  uint64
	Node uint64
}

// Compare returns -1, 0 or +1 as c is older than, equal to or newer than o.
func (c Clock) Compare(o Clock) int {
	if r := cmp.Compare(c.HLC, o.HLC); r != 0 {
		return r
	}
	return cmp.Compare(c.Node, o.Node)
}

// IsZero reports whether the clock was never set.
func (c Clock) IsZero() bool { return c == Clock{} }

// Time is the wall-clock part of the reading.
func (c Clock) Time() time.Time { return HLCTime(c.HLC) }

func (c Clock) String() string {
	return fmt.Sprintf("%d.%d@%x", c.HLC>>logicalBits, c.HLC&(1<<logicalBits-1), c.Node)
}

// PackHLC builds an HLC value from wall-clock milliseconds and a counter.
func PackHLC(unixMillis int64, logical uint16) uint64 {
	if unixMillis < 0 {
		unixMillis = 0
	}
	return uint64(unixMillis)<<logicalBits | uint64(logical)
}

// HLCTime is the wall-clock time an HLC value carries.
func HLCTime(hlc uint64) time.Time { return time.UnixMilli(int64(hlc >> logicalBits)) }

// NodeID derives the tie-breaking node of a replica from its id.
func NodeID(replicaID string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(replicaID))
	return h.Sum64()
}

// HybridClock issues Clocks for one replica: never below the wall clock
// (shifted by an offset learned from the server), never below any clock it
// has observed, and strictly increasing.
type HybridClock struct {
	mu     sync.Mutex
	last   uint64
	node   uint64
	offset time.Duration
	now    func() time.Time
}

// NewHybridClock starts a clock for node from the last value it issued or
// observed (persisted by the caller) and a wall clock (time.Now if nil).
func NewHybridClock(node, last uint64, now func() time.Time) *HybridClock {
	if now == nil {
		now = time.Now
	}
	return &HybridClock{node: node, last: last, now: now}
}

// Node is the clock's tie-breaking node id.
func (h *HybridClock) Node() uint64 { return h.node }

// Now issues a new clock reading, newer than every reading before it.
func (h *HybridClock) Now() Clock {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = nextHLC(h.last, h.wallLocked())
	return Clock{HLC: h.last, Node: h.node}
}

// Peek returns the newest value issued or observed, without ticking.
func (h *HybridClock) Peek() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// Observe moves the clock past a reading received from elsewhere, so that
// later local writes win over what this replica has seen.
func (h *HybridClock) Observe(hlc uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = max(h.last, hlc)
}

// Reset sets the clock back to a reading: used only when a device learns its
// wall clock was ahead of the server's and re-stamps its unsent changes.
func (h *HybridClock) Reset(hlc uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = hlc
}

// SetOffset shifts the wall clock, e.g. by the difference between the
// server's clock and the device's.
func (h *HybridClock) SetOffset(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.offset = d
}

// Offset is the current wall-clock shift.
func (h *HybridClock) Offset() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.offset
}

func (h *HybridClock) wallLocked() int64 { return h.now().Add(h.offset).UnixMilli() }

// nextHLC is the HLC send rule: the wall clock if it is ahead, else one more
// than the last reading (the counter carries into the milliseconds if it
// overflows, which keeps readings unique).
func nextHLC(last uint64, wallMillis int64) uint64 {
	if w := PackHLC(wallMillis, 0); w > last {
		return w
	}
	return last + 1
}

// CheckSkew refuses a clock more than maxSkew ahead of the server's wall
// clock: a phone set to 2030 must not win every merge forever.
func CheckSkew(c Clock, serverNow time.Time, maxSkew time.Duration) error {
	limit := PackHLC(serverNow.Add(maxSkew).UnixMilli(), 1<<logicalBits-1)
	if c.HLC > limit {
		ahead := c.Time().Sub(serverNow).Round(time.Second)
		return fmt.Errorf("%w: clock %s is %s ahead of the server (limit %s)", ErrClockSkew, c, ahead, maxSkew)
	}
	return nil
}

// clockSize is the encoded size of one Clock.
const clockSize = 16

// EncodeClocks packs clocks into bytes, 16 per clock, for storage beside the
// values they order.
func EncodeClocks(clocks []Clock) []byte {
	b := make([]byte, 0, len(clocks)*clockSize)
	for _, c := range clocks {
		b = binary.BigEndian.AppendUint64(b, c.HLC)
		b = binary.BigEndian.AppendUint64(b, c.Node)
	}
	return b
}

// DecodeClocks fills clocks from EncodeClocks' output. A shorter input (an
// older schema with fewer fields) leaves the remaining clocks zero.
func DecodeClocks(b []byte, clocks []Clock) error {
	if len(b)%clockSize != 0 {
		return fmt.Errorf("%w: clock column of %d bytes", ErrInvalid, len(b))
	}
	for i := range clocks {
		if len(b) < clockSize {
			clocks[i] = Clock{}
			continue
		}
		clocks[i] = Clock{HLC: binary.BigEndian.Uint64(b), Node: binary.BigEndian.Uint64(b[8:])}
		b = b[clockSize:]
	}
	return nil
}

// NewestEncodedHLC is the newest HLC in EncodeClocks' output, without
// decoding the rest.
func NewestEncodedHLC(b []byte) uint64 {
	var newest uint64
	for ; len(b) >= clockSize; b = b[clockSize:] {
		newest = max(newest, binary.BigEndian.Uint64(b))
	}
	return newest
}
