package statedb

// The all-time window, for tests that recompute the sums.
const (
	AllTimeFrom = allTimeFrom
	AllTimeTo   = allTimeTo
)
