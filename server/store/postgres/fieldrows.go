package postgres

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/syncengine"
)

// gridRows reads the rows the field rules need (fieldwork.Rows) about the
// households of a set of grids, in PostgreSQL's dialect: statedb.GridRows'
// queries, each one statement streamed to the callback. SQLite's version
// reads the rows of visits with details in a second pass to stay within a
// covering index; here one pass reads the details only where they are
// used (the visit's first household, or a revisit), which TOAST keeps out
// of the way of the rest.
type gridRows struct {
	q querier
	// grids are the keys of col (h.grid_id, or h.id for households).
	grids []string
	col   string
}

var _ fieldwork.Rows = (*gridRows)(nil)

// FieldRows reads the rows of grids in this transaction. Its callbacks
// must not run statements of their own on it (none do: fieldwork.Load's
// collect what they are given).
func (r *repo) FieldRows(grids []string) fieldwork.Rows {
	return &gridRows{q: r.q, grids: grids, col: "h.grid_id"}
}

// HouseholdRows reads the rows of the given households, as FieldRows does
// those of grids.
func (r *repo) HouseholdRows(households []string) fieldwork.Rows {
	return &gridRows{q: r.q, grids: households, col: "h.id"}
}

// forEach runs a query and calls fn with each row, scanned into dest, until
// it returns an error.
func forEach(ctx context.Context, q querier, sql string, args []any, dest []any, fn func() error) error {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	_, err = pgx.ForEachRow(rows, dest, fn)
	return err
}

// Households calls fn for each undeleted household of the grids, by id,
// with the categories of its present tags.
func (g *gridRows) Households(ctx context.Context, fn func(*fieldwork.HouseholdRow) error) error {
	if len(g.grids) == 0 {
		return nil
	}
	var h fieldwork.HouseholdRow
	err := forEach(ctx, g.q, `SELECT h.id, h.grid_id, h.head_name, h.address,
			(SELECT array_agg(DISTINCT t.category ORDER BY t.category) FROM tag_elements t WHERE t.household_id = h.id AND NOT t.removed),
			h.member_count, p.listed, p.migrants, p.moved_away
		FROM households h LEFT JOIN LATERAL (SELECT count(*) FILTER (WHERE residence <> 'moved_away') AS listed,
				count(*) FILTER (WHERE residence = 'migrant') AS migrants, count(*) FILTER (WHERE residence = 'moved_away') AS moved_away
			FROM persons WHERE household_id = h.id AND NOT deleted) p ON true
		WHERE NOT h.deleted AND `+g.col+` = ANY($1) ORDER BY h.id`, []any{g.grids},
		[]any{&h.ID, &h.GridID, &h.HeadName, &h.Address, &h.Categories, &h.MemberCount, &h.Persons, &h.Migrants, &h.MovedAway}, func() error {
			row := h
			return fn(&row)
		})
	if err != nil {
		return fmt.Errorf("read households: %w", err)
	}
	return nil
}

// plainVisit is the condition of a visit PlainVisits sums up.
const plainVisit = `v.revisit_due = 0 AND v.tracked = 0 AND v.details = ''
	AND NOT EXISTS (SELECT 1 FROM visit_amendments a WHERE a.visit_id = v.id)`

// PlainVisits sums up, per household and visitor, the plain visits to the
// undeleted households of the grids.
func (g *gridRows) PlainVisits(ctx context.Context, from, to, until time.Time, fn func(*fieldwork.VisitAggregate) error) error {
	if len(g.grids) == 0 {
		return nil
	}
	cut := int64(math.MaxInt64)
	if !until.IsZero() {
		cut = until.UnixMilli()
	}
	var a fieldwork.VisitAggregate
	var last int64
	err := forEach(ctx, g.q, `SELECT vh.household_id, v.visitor_id, max(v.visited_at),
			count(*) FILTER (WHERE v.visited_at >= $1 AND v.visited_at < $2)
		FROM households h JOIN visit_households vh ON vh.household_id = h.id JOIN visits v ON v.id = vh.visit_id
		WHERE NOT h.deleted AND `+g.col+` = ANY($3) AND v.visited_at < $4 AND `+plainVisit+`
		GROUP BY vh.household_id, v.visitor_id`, []any{from.UnixMilli(), to.UnixMilli(), g.grids, cut},
		[]any{&a.HouseholdID, &a.VisitorID, &last, &a.InWindow}, func() error {
			row := a
			row.Last = time.UnixMilli(last).UTC()
			return fn(&row)
		})
	if err != nil {
		return fmt.Errorf("read visits: %w", err)
	}
	return nil
}

// SpecialVisits calls fn for each (household, visit) pair of the undeleted
// households of the grids whose visit is not plain, with its details where
// the contract asks for them.
func (g *gridRows) SpecialVisits(ctx context.Context, fn func(*fieldwork.VisitRow) error) error {
	if len(g.grids) == 0 {
		return nil
	}
	var (
		r                     fieldwork.VisitRow
		at, hlc, node, due    int64
		form                  int32
		details, visitID, who string
		household             string
		ord, tracked          int
	)
	err := forEach(ctx, g.q, `SELECT vh.household_id, vh.ord, v.id, v.visitor_id, v.visited_at, v.form, v.hlc, v.node,
			v.revisit_due, v.tracked, CASE WHEN vh.ord = 0 OR v.revisit_due <> 0 THEN v.details ELSE '' END
		FROM visits v JOIN visit_households vh ON vh.visit_id = v.id JOIN households h ON h.id = vh.household_id
		WHERE NOT h.deleted AND `+g.col+` = ANY($1) AND NOT (`+plainVisit+`)`, []any{g.grids},
		[]any{&household, &ord, &visitID, &who, &at, &form, &hlc, &node, &due, &tracked, &details}, func() error {
			r = fieldwork.VisitRow{HouseholdID: household, Ord: ord, Tracked: tracked}
			v := &r.Visit
			v.ID, v.VisitorID, v.Form = visitID, who, syncengine.VisitForm(form)
			v.VisitedAt = time.UnixMilli(at).UTC()
			v.Clock = syncengine.Clock{HLC: uint64(hlc), Node: uint64(node)}
			if due != 0 {
				v.RevisitDue = time.UnixMilli(due).UTC()
			}
			if err := syncengine.DecodeDetails(details, v); err != nil {
				return fmt.Errorf("visit %s: %w", v.ID, err)
			}
			return fn(&r)
		})
	if err != nil {
		return fmt.Errorf("read visits: %w", err)
	}
	return nil
}

// Amendments loads the amendments of visits to the undeleted households of
// the grids, by visit.
func (g *gridRows) Amendments(ctx context.Context) (map[string][]syncengine.Amendment, error) {
	out := map[string][]syncengine.Amendment{}
	if len(g.grids) == 0 {
		return out, nil
	}
	as, err := queryAll(ctx, g.q, `SELECT `+amendmentCols+` FROM visit_amendments a WHERE EXISTS (
			SELECT 1 FROM visit_households vh JOIN households h ON h.id = vh.household_id
			WHERE vh.visit_id = a.visit_id AND NOT h.deleted AND `+g.col+` = ANY($1))
		ORDER BY a.visit_id, a.id`, scanAmendment, g.grids)
	if err != nil {
		return nil, fmt.Errorf("read amendments: %w", err)
	}
	for _, a := range as {
		out[a.VisitID] = append(out[a.VisitID], a)
	}
	return out, nil
}

// Visits loads visits whole, by id.
func (g *gridRows) Visits(ctx context.Context, ids []string) ([]syncengine.Visit, error) {
	return visits(ctx, g.q, ids)
}
