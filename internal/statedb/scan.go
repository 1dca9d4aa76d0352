package statedb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/syncengine"
)

// GridRows reads the rows the field rules need (fieldwork.Rows) about the
// households of a set of grids (or a set of households) from the statedb tables, in SQLite's
// dialect, for due lists and reports: they stream rows to a callback rather
// than building a bundle, so that a district's worth of rows is never held
// at once.
type GridRows struct {
	q Querier
	// grids are the keys of col ("grid_id", or "id" for households).
	grids []string
	col   string
	// walkLinks makes SpecialVisits walk the scope's links whatever the
	// counts say (for tests of that plan).
	walkLinks bool
	// specialLinks: the database keeps visit_special_links.
	specialLinks bool
}

// WithSpecialLinks has g find the scope's special and amended visits, and
// their amendments, from visit_special_links, which the database keeps
// (SpecialLinks): by household, whatever the database holds besides.
func (g *GridRows) WithSpecialLinks() *GridRows {
	g.specialLinks = true
	return g
}

var _ fieldwork.Rows = (*GridRows)(nil)

// FieldRows reads through q the rows of the households of grids, for
// fieldwork.Load.
func FieldRows(q Querier, grids []string) *GridRows {
	return &GridRows{q: q, grids: grids, col: "grid_id"}
}

// FieldRowsOf reads through q the rows of the given households (at most
// some thousands: they are bound as parameters of each statement), as
// FieldRows does those of grids.
func FieldRowsOf(q Querier, households []string) *GridRows {
	return &GridRows{q: q, grids: households, col: "id"}
}

// Households calls fn for each undeleted household of the grids, by grid
// and id.
func (g *GridRows) Households(ctx context.Context, fn func(*fieldwork.HouseholdRow) error) error {
	q, grids := g.q, g.grids
	if len(grids) == 0 {
		return nil
	}
	in := sqlitex.InPlaceholders(len(grids))
	tags := map[string][]string{}
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT t.household_id, t.category FROM tag_elements t
		JOIN households h ON h.id = t.household_id
		WHERE t.removed = 0 AND h.deleted = 0 AND h.`+g.col+` IN (`+in+`)`, toArgs(grids)...)
	if err != nil {
		return fmt.Errorf("read tags: %w", err)
	}
	for rows.Next() {
		var h, c string
		if err := rows.Scan(&h, &c); err != nil {
			rows.Close()
			return err
		}
		tags[h] = append(tags[h], c)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	// One join counts the persons, not a subquery per count: each reads
	// the household's persons from their table. Grouped in the order of
	// the index the households are read by, which needs no sort (the
	// field rules sort them by id). Persons are counted by a column of
	// their household index (a server's covers the residence too), not by
	// id, which only their row holds.
	rows, err = q.QueryContext(ctx, `SELECT h.id, h.grid_id, h.head_name, h.address, h.member_count,
			count(p.household_id) FILTER (WHERE p.residence != 'moved_away'), count(p.household_id) FILTER (WHERE p.residence = 'migrant'),
			count(p.household_id) FILTER (WHERE p.residence = 'moved_away')
		FROM households h LEFT JOIN persons p ON p.household_id = h.id AND p.deleted = 0
		WHERE h.deleted = 0 AND h.`+g.col+` IN (`+in+`) GROUP BY h.`+g.col+`, h.id ORDER BY h.`+g.col+`, h.id`, toArgs(grids)...)
	if err != nil {
		return fmt.Errorf("read households: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h fieldwork.HouseholdRow
		if err := rows.Scan(&h.ID, &h.GridID, &h.HeadName, &h.Address, &h.MemberCount, &h.Persons, &h.Migrants, &h.MovedAway); err != nil {
			return err
		}
		h.Categories = tags[h.ID]
		if err := fn(&h); err != nil {
			return err
		}
	}
	return rows.Err()
}

// PlainVisits aggregates, per household and visitor, the plain visits to
// the undeleted households of the grids: those with no amendment, no
// details, no tracked finding and no revisit, which is what most visits
// are. A due list or report reads their sums (visit_sums) rather than every
// row, unless the window is one no campaign here has; SpecialVisits
// returns the others one by one.
func (g *GridRows) PlainVisits(ctx context.Context, from, to, until time.Time, fn func(*fieldwork.VisitAggregate) error) error {
	q, grids := g.q, g.grids
	if len(grids) == 0 {
		return nil
	}
	winFrom, winTo := from.UnixMilli(), to.UnixMilli()
	in := sqlitex.InPlaceholders(len(grids))
	args := append([]any{winFrom, winTo}, toArgs(grids)...)
	if !until.IsZero() {
		// As of until: the sums hold every visit, so the rows are read.
		// ?3 comes before the grids' placeholders in the text, which
		// SQLite numbers after it.
		return g.plainVisitsRaw(ctx, `SELECT vh.household_id, v.visitor_id, MAX(v.visited_at), SUM(v.visited_at >= ?1 AND v.visited_at < ?2)
		`+g.plainLinks(" AND v.visited_at < ?3")+`
		GROUP BY vh.household_id, v.visitor_id`, append([]any{winFrom, winTo, until.UnixMilli()}, toArgs(grids)...), fn)
	}
	// The all-time sums, and those of the window when it is kept (none
	// with no window, as without a campaign).
	allTime := fmt.Sprintf("a.win_from = %d AND a.win_to = %d", int64(allTimeFrom), int64(allTimeTo))
	query := `SELECT a.household_id, a.visitor_id, a.last, coalesce(w.n, 0)
		FROM households h JOIN visit_sums a ON a.household_id = h.id AND ` + allTime + `
			LEFT JOIN visit_sums w ON w.household_id = a.household_id AND w.win_from = ?1 AND w.win_to = ?2 AND w.visitor_id = a.visitor_id
		WHERE h.deleted = 0 AND h.` + g.col + ` IN (` + in + `)`
	kept := winFrom >= winTo
	if !kept {
		var err error
		if kept, err = WindowKept(ctx, q, winFrom, winTo); err != nil {
			return fmt.Errorf("read visits: %w", err)
		}
	}
	if !kept {
		query = `SELECT vh.household_id, v.visitor_id, MAX(v.visited_at), SUM(v.visited_at >= ?1 AND v.visited_at < ?2)
		` + g.plainLinks("") + `
		GROUP BY vh.household_id, v.visitor_id`
	}
	return g.plainVisitsRaw(ctx, query, args, fn)
}

var _ fieldwork.TimelineRows = (*GridRows)(nil)

// PlainVisitTimes reads the plain visits one by one: a campaign's weeks
// (fieldwork.Timeline) need each visit's time, which the sums fold. Grids
// of a database that keeps its special links read the window's visits
// alone (visitTimesByVisitor); otherwise, and for households by id (a few
// changed since a read, whose visitors' visits elsewhere would cost more
// than their own links), every plain visit before to is read. With special
// links, g.q must be a transaction: its reads must see one snapshot.
func (g *GridRows) PlainVisitTimes(ctx context.Context, from, to time.Time, fn func(household, grid, visitor []byte, at int64) error) error {
	if len(g.grids) == 0 {
		return nil
	}
	if g.specialLinks && g.col == "grid_id" {
		return g.visitTimesByVisitor(ctx, from.UnixMilli(), to.UnixMilli(), fn)
	}
	return g.visitTimesByLinks(ctx, to.UnixMilli(), fn)
}

// visitTimesByLinks is PlainVisitTimes from every plain visit before to,
// each household's links walked.
func (g *GridRows) visitTimesByLinks(ctx context.Context, to int64, fn func(household, grid, visitor []byte, at int64) error) error {
	rows, err := g.q.QueryContext(ctx, `SELECT vh.household_id, h.grid_id, v.visitor_id, v.visited_at `+g.plainLinks(" AND v.visited_at < ?1"),
		append([]any{to}, toArgs(g.grids)...)...)
	if err != nil {
		return fmt.Errorf("read visits: %w", err)
	}
	defer rows.Close()
	// Read as bytes, without a copy: a street has half a million rows.
	var hb, gb, vb sql.RawBytes
	for rows.Next() {
		var at int64
		if err := rows.Scan(&hb, &gb, &vb, &at); err != nil {
			return fmt.Errorf("read visits: %w", err)
		}
		if err := fn(hb, gb, vb, at); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read visits: %w", err)
	}
	return nil
}

// The queries of visitTimesByVisitor: a visitor's plain visits through
// the visitors' index, their links and the special links. visitTimesSince
// takes those of the visitors of ?1 (a JSON array) from ?2 on, and
// visitTimesBefore those of the visitor ?1 before ?2, the newest first.
const (
	plainOfVisitor = `FROM visits v INDEXED BY visits_visitor JOIN visit_households vh ON vh.visit_id = v.id
		WHERE NOT EXISTS (SELECT 1 FROM visit_special_links s WHERE s.household_id = vh.household_id AND s.visit_id = v.id)`
	visitTimesSince = `SELECT v.visitor_id, vh.household_id, v.visited_at ` + plainOfVisitor + `
		AND v.visitor_id IN (SELECT value FROM json_each(?1)) AND v.visited_at >= ?2`
	visitTimesBefore = `SELECT vh.household_id, v.visited_at ` + plainOfVisitor + `
		AND v.visitor_id = ?1 AND v.visited_at < ?2 ORDER BY v.visited_at DESC`
)

// visitTimesByVisitor is PlainVisitTimes from the window's visits rather
// than the scope's whole history, which walking each household's links
// reads: a street holds years of visits, a campaign's window weeks.
//
//  1. The scope's all-time sums, per household and visitor: a pair whose
//     newest plain visit is before from gives it, and is done.
//  2. The other pairs' visitors' plain visits from from on, through the
//     visitors' index (visitor, time, id), their links, and the special
//     links to leave out the special and amended ones: those in the window
//     are given, and each pair counts those it has from from on.
//  3. A pair whose sums count more than that has visits before from: its
//     visitor's visits are walked back from from until each such pair has
//     its newest.
//
// A window long past reads as visitTimesByLinks does: its visitors' visits
// since it would be read in step 2.
func (g *GridRows) visitTimesByVisitor(ctx context.Context, from, to int64, fn func(household, grid, visitor []byte, at int64) error) error {
	type pair struct {
		grid       []byte
		n, since   int
		wantBefore bool
	}
	type sum struct {
		household, grid, visitor []byte
		last                     int64
	}
	pairs := map[string]map[string]*pair{} // visitor → household → pair
	var before []sum
	since, after := 0, 0 // pairs with visits from from on, and from to on
	rows, err := g.q.QueryContext(ctx, `SELECT s.household_id, h.grid_id, s.visitor_id, s.last, s.n
		FROM households h JOIN visit_sums s ON s.household_id = h.id AND s.win_from = ?1 AND s.win_to = ?2
		WHERE h.deleted = 0 AND h.`+g.col+` IN (`+sqlitex.InPlaceholders(len(g.grids))+`)`,
		append([]any{int64(allTimeFrom), int64(allTimeTo)}, toArgs(g.grids)...)...)
	if err != nil {
		return fmt.Errorf("read visit sums: %w", err)
	}
	err = func() error {
		defer rows.Close()
		var hb, gb, vb sql.RawBytes
		for rows.Next() {
			var last int64
			var n int
			if err := rows.Scan(&hb, &gb, &vb, &last, &n); err != nil {
				return err
			}
			if last < from {
				before = append(before, sum{slices.Clone(hb), slices.Clone(gb), slices.Clone(vb), last})
				continue
			}
			since++
			if last >= to {
				after++
			}
			byHousehold := pairs[string(vb)]
			if byHousehold == nil {
				byHousehold = map[string]*pair{}
				pairs[string(vb)] = byHousehold
			}
			byHousehold[string(hb)] = &pair{grid: slices.Clone(gb), n: n}
		}
		return rows.Err()
	}()
	if err != nil {
		return fmt.Errorf("read visit sums: %w", err)
	}
	// A window long past (a quarter of the pairs visited since it ended):
	// its visitors' visits since may outnumber the history before it.
	if after*4 > len(before)+since {
		return g.visitTimesByLinks(ctx, to, fn)
	}
	for _, b := range before {
		if err := fn(b.household, b.grid, b.visitor, b.last); err != nil {
			return err
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	visitors := slices.Sorted(maps.Keys(pairs))
	list, err := json.Marshal(visitors)
	if err != nil {
		return err
	}
	rows, err = g.q.QueryContext(ctx, visitTimesSince, string(list), from)
	if err != nil {
		return fmt.Errorf("read visits: %w", err)
	}
	err = func() error {
		defer rows.Close()
		var vb, hb sql.RawBytes
		for rows.Next() {
			var at int64
			if err := rows.Scan(&vb, &hb, &at); err != nil {
				return err
			}
			p := pairs[string(vb)][string(hb)]
			if p == nil {
				continue // a household outside the scope
			}
			p.since++
			if at < to {
				if err := fn(hb, p.grid, vb, at); err != nil {
					return err
				}
			}
		}
		return rows.Err()
	}()
	if err != nil {
		return fmt.Errorf("read visits: %w", err)
	}
	for _, visitor := range visitors {
		left := 0
		for _, p := range pairs[visitor] {
			if p.wantBefore = p.n > p.since; p.wantBefore {
				left++
			}
		}
		if left == 0 {
			continue
		}
		rows, err := g.q.QueryContext(ctx, visitTimesBefore, visitor, from)
		if err != nil {
			return fmt.Errorf("read visits: %w", err)
		}
		err = func() error {
			defer rows.Close()
			var hb sql.RawBytes
			for left > 0 && rows.Next() {
				var at int64
				if err := rows.Scan(&hb, &at); err != nil {
					return err
				}
				if p := pairs[visitor][string(hb)]; p != nil && p.wantBefore {
					p.wantBefore = false
					left--
					if err := fn(hb, p.grid, []byte(visitor), at); err != nil {
						return err
					}
				}
			}
			return rows.Err()
		}()
		if err != nil {
			return fmt.Errorf("read visits: %w", err)
		}
	}
	return nil
}

// plainLinks is the FROM and WHERE of a read of the scope's plain visits
// one by one, each joined to its household's link: a visit's condition
// (cond, of v, "" for none) goes with its join. The grids' placeholders
// come last.
func (g *GridRows) plainLinks(cond string) string {
	return `FROM households h JOIN visit_households vh ON vh.household_id = h.id JOIN visits v ON v.id = vh.visit_id` + cond + `
		WHERE h.deleted = 0 AND h.` + g.col + ` IN (` + sqlitex.InPlaceholders(len(g.grids)) + `)
			AND v.revisit_due = 0 AND v.tracked = 0 AND NOT (v.details != '')
			AND v.id NOT IN (SELECT visit_id FROM visit_amendments)`
}

// plainVisitsRaw runs a query of PlainVisits's sums.
func (g *GridRows) plainVisitsRaw(ctx context.Context, query string, args []any, fn func(*fieldwork.VisitAggregate) error) error {
	rows, err := g.q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("read visits: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a fieldwork.VisitAggregate
		var last int64
		if err := rows.Scan(&a.HouseholdID, &a.VisitorID, &last, &a.InWindow); err != nil {
			return err
		}
		a.Last = time.UnixMilli(last).UTC()
		if err := fn(&a); err != nil {
			return err
		}
	}
	return rows.Err()
}

// SpecialVisits calls fn for each (household, visit) pair of the undeleted
// households of the grids whose visit PlainVisits leaves out: with details,
// a revisit, a tracked finding or an amendment. They are few, and found
// through their own index and the amendments, not by reading every visit.
// Details (materials, findings, revisit reasons, survey answers) are read
// for the first household of a visit and for visits that call for a
// revisit; other rows leave them empty.
func (g *GridRows) SpecialVisits(ctx context.Context, fn func(*fieldwork.VisitRow) error) error {
	q, grids := g.q, g.grids
	if len(grids) == 0 {
		return nil
	}
	var rows *sql.Rows
	var err error
	if g.specialLinks {
		rows, err = q.QueryContext(ctx, g.specialLinksQuery(), toArgs(grids)...)
	} else {
		var few bool
		if few, err = g.fewSpecial(ctx); err != nil {
			return err
		}
		rows, err = q.QueryContext(ctx, g.specialVisitsQuery(few && !g.walkLinks), append(toArgs(grids), toArgs(grids)...)...)
	}
	if err != nil {
		return fmt.Errorf("read visits: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r fieldwork.VisitRow
		var at, hlc, node, due int64
		var details string
		v := &r.Visit
		if err := rows.Scan(&r.HouseholdID, &r.Ord, &v.ID, &v.VisitorID, &at, &v.Form, &hlc, &node, &due, &r.Tracked, &details); err != nil {
			return err
		}
		v.VisitedAt = time.UnixMilli(at).UTC()
		v.Clock = syncengine.Clock{HLC: uint64(hlc), Node: uint64(node)}
		if due != 0 {
			v.RevisitDue = time.UnixMilli(due).UTC()
		}
		if details != "" && (r.Ord == 0 || due != 0) {
			if err := syncengine.DecodeDetails(details, v); err != nil {
				return fmt.Errorf("visit %s: %w", v.ID, err)
			}
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// specialLinksQuery selects the special and amended visits of the scope
// from each household's special links: a seek a household, and a row
// read for each of its few such visits.
func (g *GridRows) specialLinksQuery() string {
	return `SELECT s.household_id, s.ord, v.id, v.visitor_id, v.visited_at, v.form, v.hlc, v.node, v.revisit_due, v.tracked, v.details
		FROM households h JOIN visit_special_links s ON s.household_id = h.id CROSS JOIN visits v ON v.id = s.visit_id
		WHERE h.deleted = 0 AND h.` + g.col + ` IN (` + sqlitex.InPlaceholders(len(g.grids)) + `)`
}

// specialVisitsQuery selects the special visits of the scope and its
// amended plain ones. With few it walks the special visits and the
// amendments and keeps those of the scope (always so on a phone, which
// holds its scope alone); else the scope's links. SQLite, with no
// statistics, walks the links either way unless told.
func (g *GridRows) specialVisitsQuery(few bool) string {
	in := sqlitex.InPlaceholders(len(g.grids))
	// The special visits come from their covering index, details included;
	// plain visits with amendments from the table.
	const cols = `vh.household_id, vh.ord, v.id, v.visitor_id, v.visited_at, v.form, v.hlc, v.node, v.revisit_due, v.tracked, v.details`
	const special = `(v.revisit_due != 0 OR v.tracked != 0 OR v.details != '')`
	if few {
		// Each household by id, then its grid checked: not the grids'
		// index probed once per grid.
		return `SELECT ` + cols + `
		FROM visits v INDEXED BY visits_special CROSS JOIN visit_households vh ON vh.visit_id = v.id CROSS JOIN households h ON h.id = vh.household_id
		WHERE ` + special + ` AND h.deleted = 0 AND +h.` + g.col + ` IN (` + in + `)
		UNION ALL SELECT ` + cols + `
		FROM (SELECT DISTINCT visit_id FROM visit_amendments) s CROSS JOIN visits v ON v.id = s.visit_id
			CROSS JOIN visit_households vh ON vh.visit_id = v.id CROSS JOIN households h ON h.id = vh.household_id
		WHERE NOT ` + special + ` AND h.deleted = 0 AND +h.` + g.col + ` IN (` + in + `)`
	}
	// From each link its visit's amendments, by their index, and only
	// then the visit: looking up every visit of a page of an export in the
	// table to find the amended ones (and building an index of all the
	// amendments each time) cost 27 ms a page of 500 households.
	return `SELECT ` + cols + `
		FROM visits v INDEXED BY visits_special JOIN visit_households vh ON vh.visit_id = v.id JOIN households h ON h.id = vh.household_id
		WHERE ` + special + ` AND h.deleted = 0 AND h.` + g.col + ` IN (` + in + `)
		UNION ALL SELECT DISTINCT ` + cols + `
		FROM households h CROSS JOIN visit_households vh ON vh.household_id = h.id CROSS JOIN visit_amendments a ON a.visit_id = vh.visit_id
			CROSS JOIN visits v ON v.id = vh.visit_id
		WHERE NOT ` + special + ` AND h.deleted = 0 AND h.` + g.col + ` IN (` + in + `)`
}

// fewSpecial reports whether the database's special visits (and amended
// ones) number fewer than ten per household of the scope: a visit link
// costs about as much to walk as a special visit to look up, and a
// household has ten to twenty links.
func (g *GridRows) fewSpecial(ctx context.Context) (bool, error) {
	var households int64
	err := g.q.QueryRowContext(ctx, `SELECT count(*) FROM households WHERE `+g.col+` IN (`+sqlitex.InPlaceholders(len(g.grids))+`)`,
		toArgs(g.grids)...).Scan(&households)
	if err != nil {
		return false, fmt.Errorf("read visits: %w", err)
	}
	// Counted only up to the bound: a page of an export in a large
	// database must not count every special visit of it.
	bound := 10 * households
	var special int64
	err = g.q.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM visits INDEXED BY visits_special WHERE revisit_due != 0 OR tracked != 0 OR details != ''
		UNION ALL SELECT 1 FROM visit_amendments LIMIT +?)`, bound).Scan(&special)
	if err != nil {
		return false, fmt.Errorf("read visits: %w", err)
	}
	return special < bound, nil
}

// Amendments loads the amendments of visits to the undeleted households of
// the grids, by visit.
func (g *GridRows) Amendments(ctx context.Context) (map[string][]syncengine.Amendment, error) {
	q, grids := g.q, g.grids
	out := map[string][]syncengine.Amendment{}
	if len(grids) == 0 {
		return out, nil
	}
	// Walk the amendments when they are few, as SpecialVisits does the
	// special visits; else the scope's links (its special links, where
	// the database keeps them), where a group visit's amendments come once
	// per household of the scope.
	walkLinks := true
	if !g.specialLinks {
		few, err := g.fewSpecial(ctx)
		if err != nil {
			return nil, err
		}
		walkLinks = !few || g.walkLinks
	}
	rows, err := q.QueryContext(ctx, g.amendmentsQuery(walkLinks), toArgs(grids)...)
	if err != nil {
		return nil, fmt.Errorf("read amendments: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		a, err := scanAmendment(rows)
		if err != nil {
			return nil, err
		}
		if walkLinks {
			if seen[a.ID] {
				continue
			}
			seen[a.ID] = true
		}
		out[a.VisitID] = append(out[a.VisitID], a)
	}
	return out, rows.Err()
}

// amendmentsQuery selects the amendments of the scope. Walking the
// amendments, each visit's households are found by id and their grid then
// checked: without the unary plus SQLite walks every household of the
// grids for each amendment (2 s for 500 amendments in a street). Walking
// the links, from each household of the scope to its visits' amendments.
func (g *GridRows) amendmentsQuery(walkLinks bool) string {
	in := sqlitex.InPlaceholders(len(g.grids))
	if walkLinks {
		links := "visit_households"
		if g.specialLinks {
			links = "visit_special_links"
		}
		return `SELECT a.` + strings.ReplaceAll(amendmentCols, ", ", ", a.") + ` FROM households h
		JOIN ` + links + ` vh ON vh.household_id = h.id JOIN visit_amendments a ON a.visit_id = vh.visit_id
		WHERE h.deleted = 0 AND h.` + g.col + ` IN (` + in + `)`
	}
	return `SELECT ` + amendmentCols + ` FROM visit_amendments a WHERE EXISTS (
		SELECT 1 FROM visit_households vh CROSS JOIN households h ON h.id = vh.household_id
		WHERE vh.visit_id = a.visit_id AND h.deleted = 0 AND +h.` + g.col + ` IN (` + in + `))`
}

// Visits loads visits whole, by id.
func (g *GridRows) Visits(ctx context.Context, ids []string) ([]syncengine.Visit, error) {
	return Visits(ctx, g.q, ids)
}
