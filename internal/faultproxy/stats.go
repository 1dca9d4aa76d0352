package faultproxy

import (
	"fmt"
	"maps"
)

// Stats counts what the proxy did. Faults count only when they took effect:
// a cut planned for a call that failed earlier is not counted.
type Stats struct {
	// Calls is every request that arrived.
	Calls int64

	DroppedRequests  int64
	DroppedResponses int64
	Duplicated       int64
	// Delayed counts calls held for an injected delay (the link's round
	// trip is not a fault).
	Delayed int64
	// Reordered counts calls forwarded at another position in their batch
	// than the one they arrived at.
	Reordered int64
	Cut       int64

	// BytesUp and BytesDown are body bytes on the client's side of the
	// proxy, as they went over the wire (compressed if the endpoints
	// compress), without HTTP headers and without the server's copies of
	// duplicated calls.
	BytesUp   int64
	BytesDown int64

	// Procedures breaks calls and bytes down by procedure.
	Procedures map[string]Traffic
}

// Traffic is one procedure's share.
type Traffic struct {
	Calls     int64
	BytesUp   int64
	BytesDown int64
}

// Faults is how many faults took effect, of every kind.
func (s Stats) Faults() int64 {
	return s.DroppedRequests + s.DroppedResponses + s.Duplicated + s.Delayed + s.Reordered + s.Cut
}

// FaultString lists the faults by kind, e.g. for a test's summary line.
func (s Stats) FaultString() string {
	return fmt.Sprintf("drop_request=%d drop_response=%d duplicate=%d delay=%d reorder=%d cut=%d",
		s.DroppedRequests, s.DroppedResponses, s.Duplicated, s.Delayed, s.Reordered, s.Cut)
}

func (s Stats) String() string {
	return fmt.Sprintf("calls=%d faults=%d (%s) bytes_up=%d bytes_down=%d", s.Calls, s.Faults(), s.FaultString(), s.BytesUp, s.BytesDown)
}

// Sub is what happened between an earlier snapshot and s.
func (s Stats) Sub(earlier Stats) Stats { return combine(s, earlier, -1) }

// Add sums two snapshots, e.g. of several proxies.
func (s Stats) Add(o Stats) Stats { return combine(s, o, 1) }

func combine(a, b Stats, sign int64) Stats {
	out := Stats{
		Calls:            a.Calls + sign*b.Calls,
		DroppedRequests:  a.DroppedRequests + sign*b.DroppedRequests,
		DroppedResponses: a.DroppedResponses + sign*b.DroppedResponses,
		Duplicated:       a.Duplicated + sign*b.Duplicated,
		Delayed:          a.Delayed + sign*b.Delayed,
		Reordered:        a.Reordered + sign*b.Reordered,
		Cut:              a.Cut + sign*b.Cut,
		BytesUp:          a.BytesUp + sign*b.BytesUp,
		BytesDown:        a.BytesDown + sign*b.BytesDown,
		Procedures:       map[string]Traffic{},
	}
	for k := range a.Procedures {
		out.Procedures[k] = Traffic{}
	}
	for k := range b.Procedures {
		out.Procedures[k] = Traffic{}
	}
	for k := range out.Procedures {
		x, y := a.Procedures[k], b.Procedures[k]
		t := Traffic{Calls: x.Calls + sign*y.Calls, BytesUp: x.BytesUp + sign*y.BytesUp, BytesDown: x.BytesDown + sign*y.BytesDown}
		if t == (Traffic{}) {
			delete(out.Procedures, k)
			continue
		}
		out.Procedures[k] = t
	}
	return out
}

func (s *Stats) addProc(proc string, up, down int64) {
	t := s.Procedures[proc]
	t.BytesUp += up
	t.BytesDown += down
	s.Procedures[proc] = t
}

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Procedures = maps.Clone(p.stats.Procedures)
	return s
}
