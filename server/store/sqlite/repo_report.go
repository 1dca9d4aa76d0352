package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

func (t *tx) FieldRows(grids []string) fieldwork.Rows {
	return statedb.FieldRows(t.Tx, grids).WithSpecialLinks()
}

func (t *tx) HouseholdRows(ids []string) fieldwork.Rows {
	return statedb.FieldRowsOf(t.Tx, ids).WithSpecialLinks()
}

func (t *tx) WorkersOfGrids(ctx context.Context, grids []string) ([]string, error) {
	if len(grids) == 0 {
		return nil, nil
	}
	return queryStrings(ctx, t.Tx, `SELECT DISTINCT worker_id FROM worker_grids WHERE grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`)`, anys(grids)...)
}

func (t *tx) VisitsBy(ctx context.Context, workers []string, from, to time.Time, except []string, inside map[string]int) ([]store.WorkerVisit, error) {
	if len(workers) == 0 {
		return nil, nil
	}
	// The plain visits come folded from their sums when the caller
	// counted what it read of them and the window is one kept.
	kept := false
	if inside != nil {
		var err error
		if kept, err = statedb.WindowKept(ctx, t.Tx, from.UnixMilli(), to.UnixMilli()); err != nil {
			return nil, fmt.Errorf("read visits: %w", err)
		}
	}
	// The lists as JSON arrays, however long. Not null: NOT IN a list
	// holding a null keeps nothing.
	list, err := json.Marshal(workers)
	if err != nil {
		return nil, err
	}
	outside, err := json.Marshal(append([]string{}, except...))
	if err != nil {
		return nil, err
	}
	query, args := visitsByRaw, []any{from.UnixMilli(), to.UnixMilli(), string(list), string(outside)}
	if kept {
		summed, err := t.reachingOutside(ctx, workers, from, to, inside)
		if err != nil {
			return nil, err
		}
		summedList, err := json.Marshal(append([]string{}, summed...))
		if err != nil {
			return nil, err
		}
		query, args = visitsBySums, append(args, string(summedList))
	}
	rows, err := t.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read visits: %w", err)
	}
	defer rows.Close()
	var out []store.WorkerVisit
	for rows.Next() {
		var w store.WorkerVisit
		var at int64
		if err := rows.Scan(&w.VisitID, &w.VisitorID, &at, &w.HouseholdID, &w.GridID, &w.Amended); err != nil {
			return nil, fmt.Errorf("read visits: %w", err)
		}
		w.At = time.UnixMilli(at)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read visits: %w", err)
	}
	return out, nil
}

// reachingOutside keeps the workers whose sums of the kept window [from,
// to) reach more households than inside counts for them: those whose
// plain visits reached a household elsewhere. Counting a worker's sums
// reads their index alone; finding where each household is reads a
// household row per sum.
func (t *tx) reachingOutside(ctx context.Context, workers []string, from, to time.Time, inside map[string]int) ([]string, error) {
	list, err := json.Marshal(workers)
	if err != nil {
		return nil, err
	}
	rows, err := t.QueryContext(ctx, sumsPerVisitor, string(list), from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read visit sums: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var w string
		var n int
		if err := rows.Scan(&w, &n); err != nil {
			return nil, fmt.Errorf("read visit sums: %w", err)
		}
		if n > inside[w] {
			out = append(out, w)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read visit sums: %w", err)
	}
	return out, nil
}

// The queries of VisitsBy: ?1 and ?2 the window, ?3 the workers, ?4 the
// grids left out and ?5 the workers whose sums to read, as JSON arrays.
// Each reads the visits by the workers and then their households, keeping
// those outside the grids: most are inside.
const (
	// visitsOutsideHead and Tail keep the rows of s (visit id, visitor,
	// time, amended) whose households are outside the grids of ?4.
	visitsOutsideHead = `SELECT s.id, s.visitor_id, s.visited_at, vh.household_id, COALESCE(h.grid_id, ''), s.amended FROM (`
	visitsOutsideTail = `) s CROSS JOIN visit_households vh ON vh.visit_id = s.id LEFT JOIN households h ON h.id = vh.household_id
		WHERE h.grid_id IS NULL OR h.grid_id NOT IN (SELECT value FROM json_each(?4))`
	// amendedBy are the amended visits of the workers, whenever made (an
	// amendment may move one into the window).
	amendedBy = `SELECT v.id, v.visitor_id, v.visited_at, 1 AS amended FROM (SELECT DISTINCT visit_id FROM visit_amendments) a
		CROSS JOIN visits v ON v.id = a.visit_id WHERE v.visitor_id IN (SELECT value FROM json_each(?3))`
	// visitsByRaw reads every visit of the window by the workers, through
	// the visitors' covering index, then the amended ones outside it: one
	// OR over both would read every visit of each visitor.
	visitsByRaw = visitsOutsideHead + `SELECT id, visitor_id, visited_at,
			EXISTS (SELECT 1 FROM visit_amendments a WHERE a.visit_id = visits.id) AS amended
		FROM visits WHERE visited_at >= ?1 AND visited_at < ?2 AND visitor_id IN (SELECT value FROM json_each(?3))
		UNION ALL ` + amendedBy + ` AND NOT (v.visited_at >= ?1 AND v.visited_at < ?2)` + visitsOutsideTail
	// visitsBySums answers a kept window (a campaign's) without reading
	// its plain visits: the households each worker's plain visits reached
	// come from their sums, one row per household and worker with no visit
	// id and the newest time; the special visits of the window come from
	// their index by visitor, and the amended ones as above.
	visitsBySums = `SELECT '', s.visitor_id, s.last, s.household_id, COALESCE(h.grid_id, ''), 0
		FROM visit_sums s INDEXED BY visit_sums_visitor LEFT JOIN households h ON h.id = s.household_id
		WHERE s.visitor_id IN (SELECT value FROM json_each(?5)) AND s.win_from = ?1 AND s.win_to = ?2
			AND (h.grid_id IS NULL OR h.grid_id NOT IN (SELECT value FROM json_each(?4)))
		UNION ALL ` + visitsOutsideHead + `SELECT id, visitor_id, visited_at, 0 AS amended FROM visits INDEXED BY visits_special_visitor
			WHERE visitor_id IN (SELECT value FROM json_each(?3)) AND visited_at >= ?1 AND visited_at < ?2
			AND (revisit_due != 0 OR tracked != 0 OR details != '')
			AND NOT EXISTS (SELECT 1 FROM visit_amendments a WHERE a.visit_id = visits.id)
		UNION ALL ` + amendedBy + visitsOutsideTail
	// sumsPerVisitor counts the households of each worker of ?1 in the
	// window [?2, ?3).
	sumsPerVisitor = `SELECT visitor_id, count(*) FROM visit_sums INDEXED BY visit_sums_visitor
		WHERE visitor_id IN (SELECT value FROM json_each(?1)) AND win_from = ?2 AND win_to = ?3 GROUP BY visitor_id`
)

func (t *tx) AmendmentsOfVisits(ctx context.Context, ids []string) ([]syncengine.Amendment, error) {
	return statedb.AmendmentsOfVisits(ctx, t.Tx, ids)
}

func (t *tx) TrackedHouseholds(ctx context.Context, grids []string) ([]string, error) {
	if len(grids) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(grids)
	if err != nil {
		return nil, err
	}
	return queryStrings(ctx, t.Tx, trackedHouseholds, string(list))
}

// trackedHouseholds are the live households of the grids ?1 (a JSON array)
// with a tracked visit, found by walking the special visits' index: tracked
// visits are few, the scope's visits many. Each household is found by id
// and its grid then checked: the unary pluses keep SQLite from building an
// index of every household on deleted, or probing the grids' index once
// per grid for each visit (585 ms for a street's 5,000 items, against 33).
const trackedHouseholds = `SELECT DISTINCT vh.household_id FROM visits v INDEXED BY visits_special
	CROSS JOIN visit_households vh ON vh.visit_id = v.id CROSS JOIN households h ON h.id = vh.household_id
	WHERE v.tracked != 0 AND +h.deleted = 0 AND +h.grid_id IN (SELECT value FROM json_each(?1))
	ORDER BY vh.household_id`

func (t *tx) LiveHouseholdIDs(ctx context.Context, grids []string, after string, limit int) ([]string, error) {
	if len(grids) == 0 {
		return nil, nil
	}
	return queryStrings(ctx, t.Tx, `SELECT id FROM households WHERE deleted = 0 AND grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`)
		AND id > ? ORDER BY id LIMIT +?`, append(anys(grids), after, limit)...)
}

func (t *tx) VisitKeys(ctx context.Context, grids []string, after store.VisitKey, limit int) ([]store.VisitKey, error) {
	if len(grids) == 0 {
		return nil, nil
	}
	var scope, all int64
	err := t.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM households WHERE grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`)),
		(SELECT coalesce(max(rowid), 0) FROM households)`, anys(grids)...).Scan(&scope, &all)
	if err != nil {
		return nil, fmt.Errorf("read visits: %w", err)
	}
	// A page sorted from the scope's visits costs the scope's visits; one
	// walked along the register's index costs the visits it skips, about
	// all/scope per visit it keeps. Sorting the scope per page is cheaper
	// while the scope is under about 7·√all households.
	return visitKeys(ctx, t.Tx, grids, after, limit, scope*scope < 50*all)
}

// visitKeys reads a page of the visit register, from the scope's visits
// sorted (byScope) or by walking the register's index.
func visitKeys(ctx context.Context, q *sqlitex.Tx, grids []string, after store.VisitKey, limit int, byScope bool) ([]store.VisitKey, error) {
	at := int64(-1 << 62)
	if !after.At.IsZero() {
		at = after.At.UnixMilli()
	}
	in := sqlitex.InPlaceholders(len(grids))
	// Walk the register's index from the page's start and keep the visits
	// of the grids, until the page is full: each page costs what it skips
	// and returns, not the whole scope sorted again.
	query := `SELECT v.id, v.visitor_id, v.visited_at FROM visits v INDEXED BY visits_visitor
		WHERE (v.visitor_id, v.visited_at, v.id) > (?, ?, ?)
			AND EXISTS (SELECT 1 FROM visit_households vh CROSS JOIN households h ON h.id = vh.household_id
				WHERE vh.visit_id = v.id AND h.deleted = 0 AND +h.grid_id IN (` + in + `))
		ORDER BY v.visitor_id, v.visited_at, v.id LIMIT +?`
	if byScope {
		query = `SELECT DISTINCT v.id, v.visitor_id, v.visited_at FROM households h
			JOIN visit_households vh ON vh.household_id = h.id JOIN visits v ON v.id = vh.visit_id
			WHERE (v.visitor_id, v.visited_at, v.id) > (?, ?, ?) AND h.deleted = 0 AND h.grid_id IN (` + in + `)
			ORDER BY v.visitor_id, v.visited_at, v.id LIMIT +?`
	}
	rows, err := q.QueryContext(ctx, query, append(append([]any{after.VisitorID, at, after.ID}, anys(grids)...), limit)...)
	if err != nil {
		return nil, fmt.Errorf("read visits: %w", err)
	}
	defer rows.Close()
	var out []store.VisitKey
	for rows.Next() {
		var k store.VisitKey
		var ms int64
		if err := rows.Scan(&k.ID, &k.VisitorID, &ms); err != nil {
			return nil, fmt.Errorf("read visits: %w", err)
		}
		k.At = time.UnixMilli(ms).UTC()
		out = append(out, k)
	}
	return out, rows.Err()
}

func (t *tx) InsertAudit(ctx context.Context, e store.AuditEntry) error {
	if _, err := t.ExecContext(ctx, `INSERT INTO audit_log (id, at, admin_id, action, node_id, campaign_id) VALUES (?, ?, ?, ?, ?, ?)`,
		e.ID, e.At.UnixMilli(), e.AdminID, e.Action, e.NodeID, e.CampaignID); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

func (t *tx) AuditEntries(ctx context.Context, fn func(store.AuditEntry, string) bool) error {
	rows, err := t.QueryContext(ctx, `SELECT l.id, l.at, l.admin_id, a.name, a.node_id, l.action, l.node_id, l.campaign_id
		FROM audit_log l JOIN admins a ON a.id = l.admin_id ORDER BY l.at DESC, l.id DESC`)
	if err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e store.AuditEntry
		var at int64
		var adminNode string
		if err := rows.Scan(&e.ID, &at, &e.AdminID, &e.AdminName, &adminNode, &e.Action, &e.NodeID, &e.CampaignID); err != nil {
			return fmt.Errorf("read audit log: %w", err)
		}
		e.At = time.UnixMilli(at).UTC()
		if !fn(e, adminNode) {
			return nil
		}
	}
	return rows.Err()
}

func (t *tx) ReplaceVisit(ctx context.Context, v *syncengine.Visit) error {
	return statedb.ReplaceLinkedVisit(ctx, t.Tx, v)
}

func (t *tx) ReplaceAmendment(ctx context.Context, a *syncengine.Amendment) error {
	return statedb.ReplaceAmendment(ctx, t.Tx, a)
}

func (t *tx) PlacedVisits(ctx context.Context, grids []string, from, to time.Time) (store.PlacedVisits, error) {
	out := store.PlacedVisits{ByGrid: map[string]int{}}
	if len(grids) == 0 {
		return out, nil
	}
	// The grids as one JSON array, however many: a district has thousands,
	// and a visit is counted once across them all. The partial index of
	// placed visits (018) makes the cost follow the visits with a position
	// in the window, not every visit.
	list, err := json.Marshal(grids)
	if err != nil {
		return out, err
	}
	args := []any{from.UnixMilli(), to.UnixMilli(), string(list)}
	rows, err := t.QueryContext(ctx, placedByGrid, args...)
	if err != nil {
		return out, fmt.Errorf("count placed visits: %w", err)
	}
	for rows.Next() {
		var grid string
		var n int
		if err := rows.Scan(&grid, &n); err != nil {
			rows.Close()
			return out, fmt.Errorf("count placed visits: %w", err)
		}
		out.ByGrid[grid] = n
	}
	if err := errors.Join(rows.Close(), rows.Err()); err != nil {
		return out, fmt.Errorf("count placed visits: %w", err)
	}
	if err := t.QueryRowContext(ctx, placedTotal, args...).Scan(&out.Total); err != nil {
		return out, fmt.Errorf("count placed visits: %w", err)
	}
	return out, nil
}

// The counts of PlacedVisits: ?1 and ?2 the window, ?3 the grids as a JSON
// array. INDEXED BY: for a count(DISTINCT v.id) alone, SQLite (3.53) would
// rather walk every visit in id order than sort the few placed ones; the
// unary plus has each visit's household found by id, its grid then
// checked, rather than the grids' index probed once per grid.
const (
	placedByGrid = `SELECT h.grid_id, count(DISTINCT v.id)` + placedVisits + ` GROUP BY h.grid_id`
	placedTotal  = `SELECT count(DISTINCT v.id)` + placedVisits
	placedVisits = ` FROM visits v INDEXED BY visits_placed CROSS JOIN visit_households vh ON vh.visit_id = v.id
		CROSS JOIN households h ON h.id = vh.household_id
		WHERE v.position != '' AND v.visited_at >= ?1 AND v.visited_at < ?2
		AND NOT EXISTS (SELECT 1 FROM visit_amendments a WHERE a.visit_id = v.id AND a.kind = 2)
		AND +h.grid_id IN (SELECT value FROM json_each(?3))`
)

func (t *tx) InsertZeroReport(ctx context.Context, z store.ZeroReport) error {
	if _, err := t.ExecContext(ctx, `INSERT INTO zero_reports (id, node_id, from_at, until_at, note, admin_id, admin_name, reported_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, z.ID, z.NodeID, z.From.UnixMilli(), z.Until.UnixMilli(), z.Note, z.AdminID, z.AdminName,
		z.ReportedAt.UnixMilli()); err != nil {
		return fmt.Errorf("record a zero report: %w", err)
	}
	return nil
}

func (t *tx) ZeroReports(ctx context.Context, nodeIDs []string, from, until time.Time) ([]store.ZeroReport, error) {
	if len(nodeIDs) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(nodeIDs)
	if err != nil {
		return nil, err
	}
	rows, err := t.QueryContext(ctx, `SELECT id, node_id, from_at, until_at, note, admin_id, admin_name, reported_at FROM zero_reports
		WHERE node_id IN (SELECT value FROM json_each(?)) AND from_at < ? AND until_at > ? ORDER BY node_id, from_at, id`,
		string(list), until.UnixMilli(), from.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read zero reports: %w", err)
	}
	defer rows.Close()
	var out []store.ZeroReport
	for rows.Next() {
		var z store.ZeroReport
		var f, u, at int64
		if err := rows.Scan(&z.ID, &z.NodeID, &f, &u, &z.Note, &z.AdminID, &z.AdminName, &at); err != nil {
			return nil, fmt.Errorf("read zero reports: %w", err)
		}
		z.From, z.Until, z.ReportedAt = time.UnixMilli(f).UTC(), time.UnixMilli(u).UTC(), time.UnixMilli(at).UTC()
		out = append(out, z)
	}
	return out, rows.Err()
}

func (t *tx) Ranking(ctx context.Context, campaignID string) (string, error) {
	var spec string
	err := t.QueryRowContext(ctx, `SELECT spec FROM campaign_rankings WHERE campaign_id = ?`, campaignID).Scan(&spec)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read a ranking: %w", err)
	}
	return spec, nil
}

func (t *tx) PutRanking(ctx context.Context, campaignID, spec string) error {
	if _, err := t.ExecContext(ctx, `INSERT INTO campaign_rankings (campaign_id, spec) VALUES (?, ?)
		ON CONFLICT (campaign_id) DO UPDATE SET spec = excluded.spec`, campaignID, spec); err != nil {
		return fmt.Errorf("set a ranking: %w", err)
	}
	return nil
}
