package main

import (
	"slices"
	"testing"
)

// TestMemoryLimitFollowsConnections: the soft memory limit holds the base
// and each connection open, moving in steps of connStep connections,
// rounded up: none set again while the open ones stay within a step, nor
// past maxCountedConns.
func TestMemoryLimitFollowsConnections(t *testing.T) {
	t.Parallel()
	var set []int64
	m := &memoryLimit{base: 100 << 20, set: func(n int64) int64 { set = append(set, n); return 0 }, step: -1}
	for _, open := range []int{0, 1, 2, connStep, connStep + 1, 5000, 100000, maxCountedConns + 1, connStep + 1, 3, 0} {
		m.connections(open)
	}
	step := int64(connStep) * connBytes
	most := int64(maxCountedConns) * connBytes
	want := []int64{100 << 20, 100<<20 + step, 100<<20 + 2*step, 100<<20 + 20*step, 100<<20 + most, 100<<20 + 2*step, 100<<20 + step, 100 << 20}
	if !slices.Equal(set, want) {
		t.Errorf("limits set %v, want %v", set, want)
	}
}
