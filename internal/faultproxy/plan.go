package faultproxy

import (
	"math/rand/v2"
	"slices"
	"time"
)

// plan is what will happen to one call, decided when it arrives.
type plan struct {
	dropRequest  bool
	dropResponse bool
	duplicate    bool
	// lateCopy: the duplicate goes after the original's answer, not
	// alongside it.
	lateCopy bool
	reorder  bool
	cut      bool
	cutAfter int64
	delay    time.Duration
	// shuffle seeds the order of the reorder batch this call opens.
	shuffle uint64
}

// newPlan draws call n's plan from its own generator, seeded with (seed, n):
// a call's plan depends on nothing but the seed and its arrival number, not
// on which faults earlier calls met or which settings they saw. Every number
// is drawn whether or not its fault is enabled, for the same reason.
func newPlan(seed, n uint64, f *Faults, procedure string) plan {
	rng := rand.New(rand.NewPCG(seed, n))
	var u [6]float64
	for i := range u {
		u[i] = rng.Float64()
	}
	jitter := rng.Float64()
	cutSpan := rng.Uint64()
	lateCopy := rng.IntN(2) == 1
	shuffle := rng.Uint64()
	if len(f.Procedures) > 0 && !slices.Contains(f.Procedures, procedure) {
		return plan{}
	}
	pl := plan{
		dropRequest:  u[0] < f.DropRequest,
		dropResponse: u[1] < f.DropResponse,
		duplicate:    u[2] < f.Duplicate,
		lateCopy:     lateCopy,
		reorder:      u[4] < f.Reorder,
		cut:          u[5] < f.Cut,
		shuffle:      shuffle,
	}
	if u[3] < f.Delay {
		pl.delay = f.Latency + time.Duration(jitter*float64(f.Jitter))
	}
	if pl.cut {
		pl.cutAfter = f.CutMinBytes + int64(cutSpan%uint64(f.CutMaxBytes-f.CutMinBytes+1))
	}
	return pl
}
