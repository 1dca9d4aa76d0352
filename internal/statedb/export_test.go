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

// AmendmentsQuery is the statement and arguments of g's Amendments, when
// it walks the amendments or else the scope's links.
func (g *GridRows) AmendmentsQuery(walkLinks bool) (string, []any) {
	return g.amendmentsQuery(walkLinks), toArgs(g.grids)
}

// SpecialVisitsQuery is the statement and arguments of g's SpecialVisits,
// when it walks the special visits or else the scope's links.
func (g *GridRows) SpecialVisitsQuery(walkLinks bool) (string, []any) {
	return g.specialVisitsQuery(!walkLinks), append(toArgs(g.grids), toArgs(g.grids)...)
}

// SpecialLinksQuery is the statement and arguments of g's SpecialVisits
// from the special links.
func (g *GridRows) SpecialLinksQuery() (string, []any) {
	return g.specialLinksQuery(), toArgs(g.grids)
}

// VisitTimesQueries are the queries of the window's visits by visitor.
var VisitTimesQueries = map[string]string{"since": visitTimesSince, "before": visitTimesBefore}
