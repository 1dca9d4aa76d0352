package statedb

import (
	"context"
	"fmt"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/syncengine"
)

// GridRows reads the rows the field rules need (fieldwork.Rows) about the
// households of a set of grids from the statedb tables, in SQLite's
// dialect, for due lists and reports: they stream rows to a callback rather
// than building a bundle, so that a district's worth of rows is never held
// at once.
type GridRows struct {
	q     Querier
	grids []string
}

var _ fieldwork.Rows = (*GridRows)(nil)

// FieldRows reads through q the rows of the households of grids, for
// fieldwork.Load.
func FieldRows(q Querier, grids []string) *GridRows { return &GridRows{q: q, grids: grids} }

// Households calls fn for each undeleted household of the grids, by id.
func (g *GridRows) Households(ctx context.Context, fn func(*fieldwork.HouseholdRow) error) error {
	q, grids := g.q, g.grids
	if len(grids) == 0 {
		return nil
	}
	in := sqlitex.InPlaceholders(len(grids))
	tags := map[string][]string{}
	rows, err := q.QueryContext(ctx, `SELECT DISTINCT t.household_id, t.category FROM tag_elements t
		JOIN households h ON h.id = t.household_id
		WHERE t.removed = 0 AND h.deleted = 0 AND h.grid_id IN (`+in+`)`, toArgs(grids)...)
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
	rows, err = q.QueryContext(ctx, `SELECT id, grid_id, head_name, address FROM households
		WHERE deleted = 0 AND grid_id IN (`+in+`) ORDER BY id`, toArgs(grids)...)
	if err != nil {
		return fmt.Errorf("read households: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h fieldwork.HouseholdRow
		if err := rows.Scan(&h.ID, &h.GridID, &h.HeadName, &h.Address); err != nil {
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
// are. A due list or report reads their sum rather than every row;
// SpecialVisits returns the others one by one.
func (g *GridRows) PlainVisits(ctx context.Context, from, to time.Time, fn func(*fieldwork.VisitAggregate) error) error {
	q, grids := g.q, g.grids
	if len(grids) == 0 {
		return nil
	}
	args := append([]any{from.UnixMilli(), to.UnixMilli()}, toArgs(grids)...)
	rows, err := q.QueryContext(ctx, `SELECT vh.household_id, v.visitor_id, MAX(v.visited_at), SUM(v.visited_at >= ? AND v.visited_at < ?)
		FROM households h JOIN visit_households vh ON vh.household_id = h.id JOIN visits v INDEXED BY visits_scan ON v.id = vh.visit_id
		WHERE h.deleted = 0 AND h.grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`)
			AND v.revisit_due = 0 AND v.tracked = 0 AND NOT (v.details != '')
			AND v.id NOT IN (SELECT visit_id FROM visit_amendments)
		GROUP BY vh.household_id, v.visitor_id`, args...)
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
	// The rows come from the covering index visits_scan; the few with
	// details have them read in a second pass, by id.
	rows, err := q.QueryContext(ctx, `SELECT vh.household_id, vh.ord, v.id, v.visitor_id, v.visited_at, v.form, v.hlc, v.node,
			v.revisit_due, v.tracked, v.details != ''
		FROM (SELECT id FROM visits INDEXED BY visits_special WHERE revisit_due != 0 OR tracked != 0 OR details != ''
				UNION SELECT visit_id FROM visit_amendments) s
			JOIN visit_households vh ON vh.visit_id = s.id JOIN households h ON h.id = vh.household_id
			JOIN visits v INDEXED BY visits_scan ON v.id = s.id
		WHERE h.deleted = 0 AND h.grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`)`, toArgs(grids)...)
	if err != nil {
		return fmt.Errorf("read visits: %w", err)
	}
	var detailed []fieldwork.VisitRow
	err = func() error {
		defer rows.Close()
		for rows.Next() {
			var r fieldwork.VisitRow
			var at, hlc, node, due int64
			var hasDetails bool
			v := &r.Visit
			if err := rows.Scan(&r.HouseholdID, &r.Ord, &v.ID, &v.VisitorID, &at, &v.Form, &hlc, &node, &due, &r.Tracked, &hasDetails); err != nil {
				return err
			}
			v.VisitedAt = time.UnixMilli(at).UTC()
			v.Clock = syncengine.Clock{HLC: uint64(hlc), Node: uint64(node)}
			if due != 0 {
				v.RevisitDue = time.UnixMilli(due).UTC()
			}
			if hasDetails && (r.Ord == 0 || due != 0) {
				detailed = append(detailed, r)
				continue
			}
			if err := fn(&r); err != nil {
				return err
			}
		}
		return rows.Err()
	}()
	if err != nil {
		return err
	}
	for start := 0; start < len(detailed); start += chunk {
		part := detailed[start:min(start+chunk, len(detailed))]
		ids := make([]string, len(part))
		for i := range part {
			ids[i] = part[i].Visit.ID
		}
		texts := map[string]string{}
		rows, err := q.QueryContext(ctx, `SELECT id, details FROM visits WHERE id IN (`+sqlitex.InPlaceholders(len(ids))+`)`, toArgs(ids)...)
		if err != nil {
			return fmt.Errorf("read visit details: %w", err)
		}
		for rows.Next() {
			var id, text string
			if err := rows.Scan(&id, &text); err != nil {
				rows.Close()
				return err
			}
			texts[id] = text
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for i := range part {
			if err := syncengine.DecodeDetails(texts[part[i].Visit.ID], &part[i].Visit); err != nil {
				return fmt.Errorf("visit %s: %w", part[i].Visit.ID, err)
			}
			if err := fn(&part[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Amendments loads the amendments of visits to the undeleted households of
// the grids, by visit.
func (g *GridRows) Amendments(ctx context.Context) (map[string][]syncengine.Amendment, error) {
	q, grids := g.q, g.grids
	out := map[string][]syncengine.Amendment{}
	if len(grids) == 0 {
		return out, nil
	}
	// Amendments are few: walk them and keep those of the scope.
	rows, err := q.QueryContext(ctx, `SELECT `+amendmentCols+` FROM visit_amendments a WHERE EXISTS (
			SELECT 1 FROM visit_households vh JOIN households h ON h.id = vh.household_id
			WHERE vh.visit_id = a.visit_id AND h.deleted = 0 AND h.grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`))`, toArgs(grids)...)
	if err != nil {
		return nil, fmt.Errorf("read amendments: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		a, err := scanAmendment(rows)
		if err != nil {
			return nil, err
		}
		out[a.VisitID] = append(out[a.VisitID], a)
	}
	return out, rows.Err()
}

// Visits loads visits whole, by id.
func (g *GridRows) Visits(ctx context.Context, ids []string) ([]syncengine.Visit, error) {
	return Visits(ctx, g.q, ids)
}
