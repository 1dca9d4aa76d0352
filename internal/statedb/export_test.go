package statedb

// FieldRowsWalkingLinks is FieldRows with SpecialVisits walking the
// scope's links, the plan taken when special visits are many.
func FieldRowsWalkingLinks(q Querier, grids []string) *GridRows {
	g := FieldRows(q, grids)
	g.walkLinks = true
	return g
}

// The all-time window, for tests that recompute the sums.
const (
	AllTimeFrom = allTimeFrom
	AllTimeTo   = allTimeTo
)

// AmendmentsQuery is the statement and arguments of g's Amendments.
func (g *GridRows) AmendmentsQuery() (string, []any) { return g.amendmentsQuery(), toArgs(g.grids) }
