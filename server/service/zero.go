package service

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/doorbook/doorbook/server/authz"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// The rules of zero reports (零报告, seed 003: 随排查、随调处和零报告):
// the office of a grid or community reports, for a period of at most a
// year, that it found nothing to report; an admin who may update the
// subtree's items makes it. A unit that reported neither a tracked item
// (a dispute, a hazard) nor a zero report for a period is silent.

// maxZeroPeriod bounds a zero report's period.
const maxZeroPeriod = 366 * 24 * time.Hour

// PutZeroReport records a zero report of a grid or community of p's
// subtree.
func (s *Service) PutZeroReport(ctx context.Context, p store.Principal, z store.ZeroReport) (store.ZeroReport, error) {
	if err := authz.Decide(p, authz.UpdateItem, authz.Anywhere); err != nil {
		return store.ZeroReport{}, err
	}
	switch {
	case !z.From.Before(z.Until) || z.Until.Sub(z.From) > maxZeroPeriod:
		return store.ZeroReport{}, fmt.Errorf("%w: a zero report's period runs forward, for at most a year", syncengine.ErrInvalid)
	case len(z.Note) > 1000 || !utf8.ValidString(z.Note):
		return store.ZeroReport{}, fmt.Errorf("%w: a zero report's note is at most 1000 bytes of text", syncengine.ErrInvalid)
	}
	z.ID, z.AdminID, z.AdminName, z.ReportedAt = newID(), p.ID, p.Name, s.now()
	z.Note = strings.TrimSpace(z.Note)
	err := s.db.Update(ctx, func(tx store.Tx) error {
		n, err := node(ctx, tx, p, authz.UpdateItem, z.NodeID)
		if err != nil {
			return err
		}
		if n.Level != store.LevelGrid && n.Level != store.LevelCommunity {
			return fmt.Errorf("%w: a zero report is a grid's or a community's, not a %s's", syncengine.ErrInvalid, n.Level)
		}
		return tx.InsertZeroReport(ctx, z)
	})
	if err != nil {
		return store.ZeroReport{}, fmt.Errorf("zero report: %w", err)
	}
	return z, nil
}

// Reporting tells, for each community and grid of node, what it reported
// in [from, until): the tracked items found in its households (reported in
// the period), and its zero reports; silent are those with neither.
// Communities come by name, each followed by its grids by name.
func (s *Service) Reporting(ctx context.Context, p store.Principal, nodeID string, from, until time.Time) ([]store.ReportingUnit, error) {
	if !from.Before(until) || until.Sub(from) > maxZeroPeriod {
		return nil, fmt.Errorf("%w: a period runs forward, for at most a year", syncengine.ErrInvalid)
	}
	an, err := s.Analyze(ctx, p, nodeID, "", time.Time{})
	if err != nil {
		return nil, err
	}
	var units []store.OrgNode
	for _, n := range an.Nodes {
		if n.Level == store.LevelGrid || n.Level == store.LevelCommunity {
			units = append(units, n)
		}
	}
	ids := make([]string, len(units))
	for i, n := range units {
		ids[i] = n.ID
	}
	var zeros []store.ZeroReport
	err = s.db.View(ctx, func(tx store.Tx) error {
		var err error
		zeros, err = tx.ZeroReports(ctx, ids, from, until)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reporting: %w", err)
	}
	items := map[string]int{} // by grid and by community
	seen := map[string]bool{}
	for _, h := range an.Fieldwork.Households {
		for _, it := range h.Items {
			key := fmt.Sprint(it.VisitID, "/", it.Finding, "/", h.GridID)
			if seen[key] || it.ReportedAt.Before(from) || !it.ReportedAt.Before(until) {
				continue
			}
			seen[key] = true
			items[h.GridID]++
			items[an.Nodes[h.GridID].ParentID]++
		}
	}
	byNode := map[string][]store.ZeroReport{}
	for _, z := range zeros {
		byNode[z.NodeID] = append(byNode[z.NodeID], z)
	}
	// Communities by name, each followed by its grids by name.
	rank := func(n store.OrgNode) string {
		if n.Level == store.LevelCommunity {
			return n.Name + "\x00" + n.ID
		}
		c := an.Nodes[n.ParentID]
		return c.Name + "\x00" + c.ID + "\x01" + n.Name + "\x00" + n.ID
	}
	slices.SortFunc(units, func(a, b store.OrgNode) int { return strings.Compare(rank(a), rank(b)) })
	out := make([]store.ReportingUnit, len(units))
	for i, n := range units {
		out[i] = store.ReportingUnit{Node: n, Items: items[n.ID], ZeroReports: byNode[n.ID]}
		out[i].Silent = out[i].Items == 0 && len(out[i].ZeroReports) == 0
	}
	return out, nil
}
