package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// VisitsBy lists, per household, the visits of workers made in [from, to)
// or amended. PostgreSQL keeps no sums, so inside changes nothing.
func (r *repo) VisitsBy(ctx context.Context, workers []string, from, to time.Time, except []string, _ map[string]int) ([]store.WorkerVisit, error) {
	if len(workers) == 0 {
		return nil, nil
	}
	out, err := queryAll(ctx, r.q, `SELECT v.id, v.visitor_id, v.visited_at, vh.household_id, COALESCE(h.grid_id, ''),
			EXISTS (SELECT 1 FROM visit_amendments a WHERE a.visit_id = v.id)
		FROM visits v JOIN visit_households vh ON vh.visit_id = v.id LEFT JOIN households h ON h.id = vh.household_id
		WHERE v.visitor_id = ANY($1)
		AND ((v.visited_at >= $2 AND v.visited_at < $3) OR EXISTS (SELECT 1 FROM visit_amendments a WHERE a.visit_id = v.id))
		AND (h.grid_id IS NULL OR NOT (h.grid_id = ANY($4)))`,
		func(s scanner) (store.WorkerVisit, error) {
			var w store.WorkerVisit
			var at int64
			err := s.Scan(&w.VisitID, &w.VisitorID, &at, &w.HouseholdID, &w.GridID, &w.Amended)
			w.At = time.UnixMilli(at)
			return w, err
		}, workers, from.UnixMilli(), to.UnixMilli(), append([]string{}, except...))
	if err != nil {
		return nil, fmt.Errorf("read visits: %w", err)
	}
	return out, nil
}

func (r *repo) AmendmentsOfVisits(ctx context.Context, visitIDs []string) ([]syncengine.Amendment, error) {
	if len(visitIDs) == 0 {
		return nil, nil
	}
	as, err := queryAll(ctx, r.q, `SELECT `+amendmentCols+` FROM visit_amendments WHERE visit_id = ANY($1) ORDER BY visit_id, id`, scanAmendment, visitIDs)
	if err != nil {
		return nil, fmt.Errorf("read amendments: %w", err)
	}
	return as, nil
}

func (r *repo) TrackedHouseholds(ctx context.Context, grids []string) ([]string, error) {
	if len(grids) == 0 {
		return nil, nil
	}
	out, err := collectStrings(ctx, r.q, `SELECT DISTINCT vh.household_id FROM visits v JOIN visit_households vh ON vh.visit_id = v.id
		JOIN households h ON h.id = vh.household_id
		WHERE v.tracked <> 0 AND (v.revisit_due <> 0 OR v.tracked <> 0 OR v.details <> '') AND NOT h.deleted AND h.grid_id = ANY($1)
		ORDER BY vh.household_id`, grids)
	if err != nil {
		return nil, fmt.Errorf("read households: %w", err)
	}
	return out, nil
}

func (r *repo) LiveHouseholdIDs(ctx context.Context, grids []string, after string, limit int) ([]string, error) {
	if len(grids) == 0 {
		return nil, nil
	}
	out, err := collectStrings(ctx, r.q, `SELECT id FROM households WHERE NOT deleted AND grid_id = ANY($1) AND id > $2 ORDER BY id LIMIT $3`,
		grids, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read households: %w", err)
	}
	return out, nil
}

func (r *repo) VisitKeys(ctx context.Context, grids []string, after store.VisitKey, limit int) ([]store.VisitKey, error) {
	if len(grids) == 0 {
		return nil, nil
	}
	at := int64(-1 << 62)
	if !after.At.IsZero() {
		at = after.At.UnixMilli()
	}
	// As on SQLite: the register's index walked from the page's start.
	out, err := queryAll(ctx, r.q, `SELECT v.id, v.visitor_id, v.visited_at FROM visits v
		WHERE (v.visitor_id, v.visited_at, v.id) > ($2::text, $3::bigint, $4::text)
			AND EXISTS (SELECT 1 FROM visit_households vh JOIN households h ON h.id = vh.household_id
				WHERE vh.visit_id = v.id AND NOT h.deleted AND h.grid_id = ANY($1))
		ORDER BY v.visitor_id, v.visited_at, v.id LIMIT $5`,
		func(s scanner) (store.VisitKey, error) {
			var k store.VisitKey
			var ms int64
			err := s.Scan(&k.ID, &k.VisitorID, &ms)
			k.At = time.UnixMilli(ms).UTC()
			return k, err
		}, grids, after.VisitorID, at, after.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("read visits: %w", err)
	}
	return out, nil
}

func (r *repo) InsertAudit(ctx context.Context, e store.AuditEntry) error {
	if _, err := r.q.Exec(ctx, `INSERT INTO audit_log (id, at, admin_id, action, node_id, campaign_id) VALUES ($1, $2, $3, $4, $5, $6)`,
		e.ID, e.At.UnixMilli(), e.AdminID, e.Action, e.NodeID, e.CampaignID); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// auditPage is how many audit entries AuditEntries reads at a time: the
// caller stops when it has enough, and a result PostgreSQL has sent is
// read to its end.
const auditPage = 500

// AuditEntries reads the audit log newest first, a page at a time.
func (r *repo) AuditEntries(ctx context.Context, fn func(store.AuditEntry, string) bool) error {
	type entry struct {
		store.AuditEntry
		at        int64
		adminNode string
	}
	afterAt, afterID := int64(1<<62), ""
	for {
		page, err := queryAll(ctx, r.q, `SELECT l.id, l.at, l.admin_id, a.name, a.node_id, l.action, l.node_id, l.campaign_id
			FROM audit_log l JOIN admins a ON a.id = l.admin_id
			WHERE (l.at, l.id) < ($1::bigint, $2::text)
			ORDER BY l.at DESC, l.id DESC LIMIT $3`,
			func(s scanner) (entry, error) {
				var e entry
				err := s.Scan(&e.ID, &e.at, &e.AdminID, &e.AdminName, &e.adminNode, &e.Action, &e.NodeID, &e.CampaignID)
				e.At = time.UnixMilli(e.at).UTC()
				return e, err
			}, afterAt, afterID, auditPage)
		if err != nil {
			return fmt.Errorf("read audit log: %w", err)
		}
		for _, e := range page {
			if !fn(e.AuditEntry, e.adminNode) {
				return nil
			}
		}
		if len(page) < auditPage {
			return nil
		}
		last := page[len(page)-1]
		afterAt, afterID = last.at, last.ID
	}
}

var _ store.Reports = (*repo)(nil)

func (r *repo) PlacedVisits(ctx context.Context, grids []string, from, to time.Time) (store.PlacedVisits, error) {
	out := store.PlacedVisits{ByGrid: map[string]int{}}
	if len(grids) == 0 {
		return out, nil
	}
	// Through the partial index of placed visits (009): the cost follows
	// the visits with a position in the window, not every visit.
	const placed = ` FROM visits v JOIN visit_households vh ON vh.visit_id = v.id JOIN households h ON h.id = vh.household_id
		WHERE v.position <> '' AND v.visited_at >= $1 AND v.visited_at < $2
		AND NOT EXISTS (SELECT 1 FROM visit_amendments a WHERE a.visit_id = v.id AND a.kind = 2)
		AND h.grid_id = ANY($3)`
	args := []any{from.UnixMilli(), to.UnixMilli(), grids}
	rows, err := r.q.Query(ctx, `SELECT h.grid_id, count(DISTINCT v.id)`+placed+` GROUP BY h.grid_id`, args...)
	if err != nil {
		return out, fmt.Errorf("count placed visits: %w", err)
	}
	for rows.Next() {
		var grid string
		var n int64
		if err := rows.Scan(&grid, &n); err != nil {
			rows.Close()
			return out, fmt.Errorf("count placed visits: %w", err)
		}
		out.ByGrid[grid] = int(n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("count placed visits: %w", err)
	}
	var total int64
	if err := r.q.QueryRow(ctx, `SELECT count(DISTINCT v.id)`+placed, args...).Scan(&total); err != nil {
		return out, fmt.Errorf("count placed visits: %w", err)
	}
	out.Total = int(total)
	return out, nil
}

func (r *repo) InsertZeroReport(ctx context.Context, z store.ZeroReport) error {
	if _, err := r.q.Exec(ctx, `INSERT INTO zero_reports (id, node_id, from_at, until_at, note, admin_id, admin_name, reported_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, z.ID, z.NodeID, z.From.UnixMilli(), z.Until.UnixMilli(), z.Note, z.AdminID, z.AdminName,
		z.ReportedAt.UnixMilli()); err != nil {
		return fmt.Errorf("record a zero report: %w", err)
	}
	return nil
}

func (r *repo) ZeroReports(ctx context.Context, nodeIDs []string, from, until time.Time) ([]store.ZeroReport, error) {
	if len(nodeIDs) == 0 {
		return nil, nil
	}
	out, err := queryAll(ctx, r.q, `SELECT id, node_id, from_at, until_at, note, admin_id, admin_name, reported_at FROM zero_reports
		WHERE node_id = ANY($1) AND from_at < $2 AND until_at > $3 ORDER BY node_id, from_at, id`,
		func(s scanner) (store.ZeroReport, error) {
			var z store.ZeroReport
			var f, u, at int64
			err := s.Scan(&z.ID, &z.NodeID, &f, &u, &z.Note, &z.AdminID, &z.AdminName, &at)
			z.From, z.Until, z.ReportedAt = time.UnixMilli(f).UTC(), time.UnixMilli(u).UTC(), time.UnixMilli(at).UTC()
			return z, err
		}, nodeIDs, until.UnixMilli(), from.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("read zero reports: %w", err)
	}
	return out, nil
}

func (r *repo) Ranking(ctx context.Context, campaignID string) (string, error) {
	var spec string
	err := r.q.QueryRow(ctx, `SELECT spec FROM campaign_rankings WHERE campaign_id = $1`, campaignID).Scan(&spec)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read a ranking: %w", err)
	}
	return spec, nil
}

func (r *repo) PutRanking(ctx context.Context, campaignID, spec string) error {
	if _, err := r.q.Exec(ctx, `INSERT INTO campaign_rankings (campaign_id, spec) VALUES ($1, $2)
		ON CONFLICT (campaign_id) DO UPDATE SET spec = excluded.spec`, campaignID, spec); err != nil {
		return fmt.Errorf("set a ranking: %w", err)
	}
	return nil
}
