package statedb

import (
	"context"
	"fmt"
	"time"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/syncengine"
)

// Reads over the households of a set of grids, for reports and due lists:
// they stream rows to a callback rather than building a bundle, so that a
// district's worth of rows is never held at once.

// HouseholdRow is a household as reports read it.
type HouseholdRow struct {
	ID, GridID, HeadName, Address string
	// Categories: the codes of its present tags.
	Categories []string
}

// ScanHouseholds calls fn for each undeleted household of grids, by id.
func ScanHouseholds(ctx context.Context, q Querier, grids []string, fn func(*HouseholdRow) error) error {
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
		var h HouseholdRow
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

// VisitRow is a visit as seen from one household it covers. Visit lacks
// HouseholdIDs; Tracked counts its tracked findings.
type VisitRow struct {
	HouseholdID string
	Ord         int
	Visit       syncengine.Visit
	Tracked     int
}

// ScanVisits calls fn for each (household, visit) pair of the undeleted
// households of grids. Details are decoded for the first household of a
// visit and for visits that call for a revisit; other rows leave them empty.
func ScanVisits(ctx context.Context, q Querier, grids []string, fn func(*VisitRow) error) error {
	if len(grids) == 0 {
		return nil
	}
	rows, err := q.QueryContext(ctx, `SELECT vh.household_id, vh.ord, v.id, v.visitor_id, v.visited_at, v.form, v.hlc, v.node,
			v.revisit_due, v.tracked, v.details
		FROM households h JOIN visit_households vh ON vh.household_id = h.id JOIN visits v ON v.id = vh.visit_id
		WHERE h.deleted = 0 AND h.grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`)`, toArgs(grids)...)
	if err != nil {
		return fmt.Errorf("read visits: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r VisitRow
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
			if err := decodeDetails(details, v); err != nil {
				return fmt.Errorf("visit %s: %w", v.ID, err)
			}
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// AmendmentsInGrids loads the amendments of visits to the undeleted
// households of grids, by visit.
func AmendmentsInGrids(ctx context.Context, q Querier, grids []string) (map[string][]syncengine.Amendment, error) {
	out := map[string][]syncengine.Amendment{}
	if len(grids) == 0 {
		return out, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT `+amendmentCols+` FROM visit_amendments WHERE visit_id IN (
			SELECT vh.visit_id FROM households h JOIN visit_households vh ON vh.household_id = h.id
			WHERE h.deleted = 0 AND h.grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`))`, toArgs(grids)...)
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
