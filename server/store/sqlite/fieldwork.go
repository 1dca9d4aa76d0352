package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// subtree lists the nodes under root (root included; every node for "").
func subtree(ctx context.Context, q statedb.Querier, root string) (map[string]store.OrgNode, error) {
	query := `SELECT id, parent_id, level, name FROM org_nodes`
	var args []any
	if root != "" {
		query = `WITH RECURSIVE down(id) AS (SELECT ? UNION ALL SELECT o.id FROM org_nodes o JOIN down ON o.parent_id = down.id)
			SELECT id, parent_id, level, name FROM org_nodes WHERE id IN (SELECT id FROM down)`
		args = append(args, root)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read org tree: %w", err)
	}
	defer rows.Close()
	out := map[string]store.OrgNode{}
	for rows.Next() {
		var n store.OrgNode
		var parent sql.NullString
		if err := rows.Scan(&n.ID, &parent, &n.Level, &n.Name); err != nil {
			return nil, err
		}
		n.ParentID = parent.String
		out[n.ID] = n
	}
	return out, rows.Err()
}

func gridsOf(nodes map[string]store.OrgNode) []string {
	var grids []string
	for id, n := range nodes {
		if n.Level == store.LevelGrid {
			grids = append(grids, id)
		}
	}
	slices.Sort(grids)
	return grids
}

// ancestors lists the nodes above each of ids, and ids themselves.
func ancestors(ctx context.Context, q statedb.Querier, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, id := range ids {
		cur := id
		for cur != "" && !out[cur] {
			out[cur] = true
			var parent sql.NullString
			if err := q.QueryRowContext(ctx, `SELECT parent_id FROM org_nodes WHERE id = ?`, cur).Scan(&parent); err != nil {
				return nil, fmt.Errorf("read org node %s: %w", cur, err)
			}
			cur = parent.String
		}
	}
	return out, nil
}

// campaignsFor lists the campaigns relevant to a worker's grids (of a node
// at or above one of them) changed after feed position since.
func campaignsFor(ctx context.Context, q statedb.Querier, grids []string, since uint64) ([]syncengine.Campaign, error) {
	all, err := statedb.Campaigns(ctx, q, since)
	if err != nil || len(all) == 0 {
		return nil, err
	}
	above, err := ancestors(ctx, q, grids)
	if err != nil {
		return nil, err
	}
	var out []syncengine.Campaign
	for _, c := range all {
		if above[c.NodeID.Value] {
			out = append(out, c)
		}
	}
	return out, nil
}

// reference reads the reference data of a worker's grids changed after
// feed position since (all of it with 0). Rows changed after the batch's
// end come now and again with a later batch: merging is idempotent.
func reference(ctx context.Context, q statedb.Querier, grids []string, since uint64) (syncengine.Reference, error) {
	var r syncengine.Reference
	cats, err := statedb.Categories(ctx, q, since)
	if err != nil {
		return r, err
	}
	camps, err := campaignsFor(ctx, q, grids, since)
	if err != nil {
		return r, err
	}
	r.Categories, r.Campaigns = cats, camps
	return r, nil
}

// reportNode resolves the node of a report: p's own root when id is "".
func reportNode(ctx context.Context, q statedb.Querier, p store.Principal, id string) (store.OrgNode, map[string]store.OrgNode, error) {
	if err := requireAdmin(p); err != nil {
		return store.OrgNode{}, nil, err
	}
	if id == "" {
		id = p.Node
	}
	var n store.OrgNode
	if id != "" {
		var err error
		if n, err = adminNode(ctx, q, p, id); err != nil {
			return n, nil, err
		}
	}
	nodes, err := subtree(ctx, q, id)
	return n, nodes, err
}

// Analyze reads what a report on node for campaign needs, in one snapshot.
func (s *Store) Analyze(ctx context.Context, p store.Principal, nodeID, campaignID string) (*store.Analysis, error) {
	an := &store.Analysis{}
	err := s.db.Read(ctx, func(tx *sqlitex.Tx) error {
		var err error
		if an.Node, an.Nodes, err = reportNode(ctx, tx, p, nodeID); err != nil {
			return err
		}
		if campaignID != "" {
			c, ok, err := statedb.GetCampaign(ctx, tx, campaignID)
			if err != nil {
				return err
			}
			if !ok || c.Deleted.Value {
				return fmt.Errorf("%w: campaign %s", syncengine.ErrNotFound, campaignID)
			}
			visible, err := campaignVisible(ctx, tx, p, c.NodeID.Value)
			if err != nil {
				return err
			}
			if !visible {
				return fmt.Errorf("%w: campaign %s is outside your subtree", syncengine.ErrOutOfScope, campaignID)
			}
			an.Campaign = &c
		}
		cats, err := statedb.Categories(ctx, tx, 0)
		if err != nil {
			return err
		}
		grids := gridsOf(an.Nodes)
		if an.Fieldwork, err = fieldwork.Load(ctx, statedb.FieldRows(tx, grids), an.Campaign, cats); err != nil {
			return err
		}
		ids, err := queryStrings(ctx, tx, `SELECT DISTINCT worker_id FROM worker_grids WHERE grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`)`, anys(grids)...)
		if err != nil {
			return err
		}
		// Visitors without grids here (a cadre, a police officer) count too.
		for _, v := range an.Fieldwork.Visitors() {
			if !slices.Contains(ids, v) {
				ids = append(ids, v)
			}
		}
		if err := visitedElsewhere(ctx, tx, an, ids, grids); err != nil {
			return err
		}
		for _, id := range ids {
			w, err := getWorker(ctx, tx, id)
			if err != nil {
				w = store.Worker{ID: id, Name: id}
			}
			an.Workers = append(an.Workers, w)
		}
		slices.SortFunc(an.Workers, func(a, b store.Worker) int { return compareStrings(a.Name+a.ID, b.Name+b.ID) })
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	return an, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// exportPage is how many households or visits an export reads at a time.
const exportPage = 500

// LedgerPages sends node's households whole, a page per read transaction.
func (s *Store) LedgerPages(ctx context.Context, p store.Principal, nodeID string, fn func(syncengine.Bundle) error) error {
	var grids []string
	err := s.db.Read(ctx, func(tx *sqlitex.Tx) error {
		_, nodes, err := reportNode(ctx, tx, p, nodeID)
		grids = gridsOf(nodes)
		return err
	})
	if err != nil || len(grids) == 0 {
		return err
	}
	after := ""
	for {
		var b syncengine.Bundle
		var ids []string
		err := s.db.Read(ctx, func(tx *sqlitex.Tx) error {
			var err error
			ids, err = queryStrings(ctx, tx, `SELECT id FROM households WHERE deleted = 0 AND grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`)
				AND id > ? ORDER BY id LIMIT ?`, append(anys(grids), after, exportPage)...)
			if err != nil || len(ids) == 0 {
				return err
			}
			b, err = statedb.LoadBundle(ctx, tx, ids)
			return err
		})
		if err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		if err := fn(b); err != nil {
			return err
		}
		after = ids[len(ids)-1]
	}
}

// VisitPages sends the visits to node's households, by visitor and date,
// a page per read transaction.
func (s *Store) VisitPages(ctx context.Context, p store.Principal, nodeID string, fn func(syncengine.Bundle) error) error {
	var grids []string
	err := s.db.Read(ctx, func(tx *sqlitex.Tx) error {
		_, nodes, err := reportNode(ctx, tx, p, nodeID)
		grids = gridsOf(nodes)
		return err
	})
	if err != nil || len(grids) == 0 {
		return err
	}
	// Keyset pagination over (visitor, date, id).
	var lastVisitor, lastID string
	var lastAt int64 = -1 << 62
	for {
		var b syncengine.Bundle
		err := s.db.Read(ctx, func(tx *sqlitex.Tx) error {
			rows, err := tx.QueryContext(ctx, `SELECT DISTINCT v.id, v.visitor_id, v.visited_at FROM visits v
				JOIN visit_households vh ON vh.visit_id = v.id JOIN households h ON h.id = vh.household_id
				WHERE h.deleted = 0 AND h.grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`)
				AND (v.visitor_id, v.visited_at, v.id) > (?, ?, ?)
				ORDER BY v.visitor_id, v.visited_at, v.id LIMIT ?`, append(anys(grids), lastVisitor, lastAt, lastID, exportPage)...)
			if err != nil {
				return err
			}
			var ids []string
			for rows.Next() {
				if err := rows.Scan(&lastID, &lastVisitor, &lastAt); err != nil {
					rows.Close()
					return err
				}
				ids = append(ids, lastID)
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if b.Visits, err = statedb.Visits(ctx, tx, ids); err != nil {
				return err
			}
			var hh []string
			for _, v := range b.Visits {
				hh = append(hh, v.HouseholdIDs...)
			}
			all, err := statedb.Households(ctx, tx, dedupe(hh))
			if err != nil {
				return err
			}
			// A group visit may cover households of other subtrees: the
			// register names only the caller's.
			for _, h := range all {
				if slices.Contains(grids, h.GridID.Value) {
					b.Households = append(b.Households, h)
				}
			}
			b.Amendments, err = statedb.AmendmentsOfVisits(ctx, tx, ids)
			return err
		})
		if err != nil {
			return fmt.Errorf("visit register: %w", err)
		}
		vs := b.Visits
		if len(vs) == 0 {
			return nil
		}
		slices.SortFunc(vs, func(a, b syncengine.Visit) int {
			if c := compareStrings(a.VisitorID, b.VisitorID); c != 0 {
				return c
			}
			if c := a.VisitedAt.Compare(b.VisitedAt); c != 0 {
				return c
			}
			return compareStrings(a.ID, b.ID)
		})
		if err := fn(b); err != nil {
			return err
		}
		if len(vs) < exportPage {
			return nil
		}
	}
}

// Audit records a read.
func (s *Store) Audit(ctx context.Context, p store.Principal, e store.AuditEntry) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	return s.db.Write(ctx, func(tx *sqlitex.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_log (id, at, admin_id, action, node_id, campaign_id) VALUES (?, ?, ?, ?, ?, ?)`,
			newID(), e.At.UnixMilli(), p.ID, e.Action, e.NodeID, e.CampaignID)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		return nil
	})
}

// AuditLog lists the newest entries of admins whose subtree lies in p's.
func (s *Store) AuditLog(ctx context.Context, p store.Principal, limit int) ([]store.AuditEntry, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	limit = max(1, min(limit, 10000))
	var out []store.AuditEntry
	err := s.db.Read(ctx, func(tx *sqlitex.Tx) error {
		nodes, err := subtree(ctx, tx, p.Node)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT l.id, l.at, l.admin_id, a.name, a.node_id, l.action, l.node_id, l.campaign_id
			FROM audit_log l JOIN admins a ON a.id = l.admin_id ORDER BY l.at DESC, l.id DESC`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() && len(out) < limit {
			var e store.AuditEntry
			var at int64
			var adminNode string
			if err := rows.Scan(&e.ID, &at, &e.AdminID, &e.AdminName, &adminNode, &e.Action, &e.NodeID, &e.CampaignID); err != nil {
				return err
			}
			if _, in := nodes[adminNode]; p.Node != "" && !in {
				continue
			}
			e.At = time.UnixMilli(at).UTC()
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, err
}

// visitedElsewhere adds to an's quotas the visits of workers to households
// outside grids (moved away since), as the phones count them: in the
// campaign's window once amendments are applied, voided ones left out.
func visitedElsewhere(ctx context.Context, tx *sqlitex.Tx, an *store.Analysis, workers, grids []string) error {
	if an.Campaign == nil || len(workers) == 0 {
		return nil
	}
	from, to := an.Campaign.Window()
	inGrids := map[string]bool{}
	for _, g := range grids {
		inGrids[g] = true
	}
	type hit struct {
		visitor, household string
		at                 time.Time
	}
	var hits []hit
	var amended []string
	for start := 0; start < len(workers); start += maxInList {
		part := workers[start:min(start+maxInList, len(workers))]
		rows, err := tx.QueryContext(ctx, `SELECT v.id, v.visitor_id, v.visited_at, vh.household_id, COALESCE(h.grid_id, ''),
			EXISTS (SELECT 1 FROM visit_amendments a WHERE a.visit_id = v.id)
			FROM visits v JOIN visit_households vh ON vh.visit_id = v.id LEFT JOIN households h ON h.id = vh.household_id
			WHERE v.visitor_id IN (`+sqlitex.InPlaceholders(len(part))+`)
			AND ((v.visited_at >= ? AND v.visited_at < ?) OR EXISTS (SELECT 1 FROM visit_amendments a WHERE a.visit_id = v.id))`,
			append(anys(part), from.UnixMilli(), to.UnixMilli())...)
		if err != nil {
			return fmt.Errorf("visits elsewhere: %w", err)
		}
		for rows.Next() {
			var id, visitor, household, grid string
			var at int64
			var hasAmendments bool
			if err := rows.Scan(&id, &visitor, &at, &household, &grid, &hasAmendments); err != nil {
				rows.Close()
				return err
			}
			if inGrids[grid] {
				continue
			}
			if hasAmendments {
				amended = append(amended, id)
				continue
			}
			hits = append(hits, hit{visitor, household, time.UnixMilli(at)})
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	slices.Sort(amended)
	amended = slices.Compact(amended)
	for start := 0; start < len(amended); start += maxInList {
		part := amended[start:min(start+maxInList, len(amended))]
		vs, err := statedb.Visits(ctx, tx, part)
		if err != nil {
			return err
		}
		as, err := statedb.AmendmentsOfVisits(ctx, tx, part)
		if err != nil {
			return err
		}
		byVisit := map[string][]syncengine.Amendment{}
		for _, a := range as {
			byVisit[a.VisitID] = append(byVisit[a.VisitID], a)
		}
		for _, v := range vs {
			view := syncengine.Effective(v, byVisit[v.ID])
			if view.Voided {
				continue
			}
			for _, h := range v.HouseholdIDs {
				hits = append(hits, hit{v.VisitorID, h, view.VisitedAt})
			}
		}
	}
	for _, h := range hits {
		an.Fieldwork.AddVisitedElsewhere(h.visitor, h.household, h.at)
	}
	return nil
}

// campaignVisible reports whether an admin sees the campaign of node: one of
// their subtree or of a node above it.
func campaignVisible(ctx context.Context, q statedb.Querier, p store.Principal, node string) (bool, error) {
	if ok, err := inSubtree(ctx, q, p.Node, node); ok || err != nil {
		return ok, err
	}
	above, err := ancestors(ctx, q, []string{p.Node})
	return above[node], err
}
