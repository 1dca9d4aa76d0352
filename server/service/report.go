package service

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/server/authz"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// reportNode resolves the node of a report, p's own root when id is "",
// and the nodes of its subtree by id.
func reportNode(ctx context.Context, tx store.Tx, p store.Principal, id string) (store.OrgNode, map[string]store.OrgNode, error) {
	if err := authz.Decide(p, authz.ReadReport, authz.Anywhere); err != nil {
		return store.OrgNode{}, nil, err
	}
	if id == "" {
		id = p.Node
	}
	var n store.OrgNode
	if id != "" {
		var err error
		if n, err = node(ctx, tx, p, authz.ReadReport, id); err != nil {
			return n, nil, err
		}
	}
	sub, err := tx.Subtree(ctx, id)
	if err != nil {
		return n, nil, err
	}
	nodes := make(map[string]store.OrgNode, len(sub))
	for _, x := range sub {
		nodes[x.ID] = x
	}
	return n, nodes, nil
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

// Analyze reads what a report on node for campaign needs, in one snapshot,
// and runs the field rules over it.
//
// With a non-zero until the analysis is as of until: only the visits made
// and the amendments recorded before it count (fieldwork.LoadUntil).
func (s *Service) Analyze(ctx context.Context, p store.Principal, nodeID, campaignID string, until time.Time) (*store.Analysis, error) {
	if until.IsZero() {
		if err := s.fillRows(ctx, p, nodeID, campaignID); err != nil {
			return nil, fmt.Errorf("analyze: %w", err)
		}
	} else if campaignID != "" && s.fields.households > 0 {
		// As of a moment of the campaign's window: a series of one, from
		// the scope's kept rows and plain visits rather than every visit,
		// when the scope is small enough to keep.
		_, ans, kept, err := s.analyzeSeries(ctx, p, nodeID, campaignID, func(from, to time.Time) []time.Time {
			if !within([]time.Time{until}, from, to) {
				return nil
			}
			return []time.Time{until}
		}, true)
		if err != nil {
			return nil, err
		}
		if kept && len(ans) == 1 {
			return ans[0], nil
		}
	}
	an := &store.Analysis{}
	era := s.fields.era()
	var warm func()
	err := s.db.View(ctx, func(tx store.Tx) error {
		cats, err := readFrame(ctx, tx, p, nodeID, campaignID, an)
		if err != nil {
			return err
		}
		grids := gridsOf(an.Nodes)
		rows := &countingRows{Rows: tx.FieldRows(grids)}
		if until.IsZero() {
			var from, to time.Time
			if an.Campaign != nil {
				from, to = an.Campaign.Window()
				rows.from, rows.to, rows.inside = from, to, map[string]int{}
			}
			if rows.Rows, err = s.fields.rows(ctx, tx, era, grids, from, to, s.now()); err != nil {
				return err
			}
			warm = func() { s.warm(grids, from, to) }
		}
		if an.Fieldwork, err = fieldwork.LoadUntil(ctx, rows, an.Campaign, cats, until); err != nil {
			return err
		}
		ids, err := reportWorkers(ctx, tx, grids, an.Fieldwork)
		if err != nil {
			return err
		}
		var e *elsewhere
		if an.Campaign != nil {
			from, to := an.Campaign.Window()
			if e, err = readElsewhere(ctx, tx, ids, grids, from, clip(from, to, until), rows.inside, false); err != nil {
				return err
			}
		}
		return finishAnalysis(ctx, tx, an, grids, ids, e, until)
	})
	if err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	if warm != nil {
		warm()
	}
	return an, nil
}

// AnalyzeSeries is Analyze as of each of the moments for the campaign's
// window (none zero), in one snapshot that reads the scope's rows once
// (fieldwork.LoadSeries): a campaign's weeks, each as of its end.
func (s *Service) AnalyzeSeries(ctx context.Context, p store.Principal, nodeID, campaignID string, moments func(from, to time.Time) []time.Time) ([]time.Time, []*store.Analysis, error) {
	untils, out, _, err := s.analyzeSeries(ctx, p, nodeID, campaignID, moments, false)
	return untils, out, err
}

// analyzeSeries is AnalyzeSeries; with keptOnly it reads nothing and
// reports false unless the scope's rows are kept once read ahead (a scope
// too large to keep is better read a row at a time).
func (s *Service) analyzeSeries(ctx context.Context, p store.Principal, nodeID, campaignID string, moments func(from, to time.Time) []time.Time, keptOnly bool) ([]time.Time, []*store.Analysis, bool, error) {
	// The scope's rows, and its plain visits one by one when the series
	// reads them so, read ahead in parts at once when none are kept.
	grids, from, to, err := s.reportScope(ctx, p, nodeID, campaignID)
	m := moments(from, to)
	if err == nil && len(grids) > 0 && len(m) > 0 {
		if err = s.fields.fill(ctx, s.db, grids, from, to, s.now(), forReport); err == nil && within(m, from, to) {
			err = s.fields.fillTimeline(ctx, s.db, grids, from, to, s.now(), forReport)
		}
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("analyze: %w", err)
	}
	if keptOnly && (len(grids) == 0 || len(m) == 0 || !s.fields.keeps(grids, from, to)) {
		return nil, nil, false, nil
	}
	var untils []time.Time
	var out []*store.Analysis
	var warm func()
	era := s.fields.era()
	err = s.db.View(ctx, func(tx store.Tx) error {
		frame := &store.Analysis{}
		cats, err := readFrame(ctx, tx, p, nodeID, campaignID, frame)
		if err != nil {
			return err
		}
		var from, to time.Time
		if frame.Campaign != nil {
			from, to = frame.Campaign.Window()
		}
		// The moments of the campaign as this snapshot holds it.
		if untils = moments(from, to); len(untils) == 0 {
			return nil
		}
		out = make([]*store.Analysis, len(untils))
		grids := gridsOf(frame.Nodes)
		// All but the plain visits come from the rows a report of the
		// scope keeps (read whole if none are).
		shared, err := s.fields.rows(ctx, tx, era, grids, from, to, s.now())
		if err != nil {
			return err
		}
		warm = func() { s.warm(grids, from, to) }
		// The plain visits one by one, when the moments lie in the
		// campaign's window (a campaign's weeks do).
		var t *fieldwork.Timeline
		if frame.Campaign != nil && within(untils, from, to) {
			if t, err = s.fields.timeline(ctx, tx, era, grids, from, to, s.now()); err != nil {
				return err
			}
		}
		fws, err := fieldwork.LoadSeries(ctx, tx.FieldRows(grids), shared, t, frame.Campaign, cats, untils)
		if err != nil {
			return err
		}
		ids := make([][]string, len(untils))
		var all []string
		for i, fw := range fws {
			if ids[i], err = reportWorkers(ctx, tx, grids, fw); err != nil {
				return err
			}
			all = append(all, ids[i]...)
		}
		slices.Sort(all)
		all = slices.Compact(all)
		// The visits elsewhere of the whole window, one row per visit,
		// hold those of every moment. Counted as a report counts them
		// (countingRows), the households each worker reached in the
		// street leave out the plain visits of those whose sums reach
		// none elsewhere, in the window and so in any part of it.
		var e *elsewhere
		if frame.Campaign != nil {
			inside := map[string]int{}
			err := shared.PlainVisits(ctx, from, to, time.Time{}, func(a *fieldwork.VisitAggregate) error {
				if a.InWindow > 0 {
					inside[a.VisitorID]++
				}
				return nil
			})
			if err != nil {
				return err
			}
			if e, err = readElsewhere(ctx, tx, all, grids, from, to, inside, true); err != nil {
				return err
			}
		}
		for i, until := range untils {
			an := *frame
			an.Fieldwork = fws[i]
			if err := finishAnalysis(ctx, tx, &an, grids, ids[i], e, until); err != nil {
				return err
			}
			out[i] = &an
		}
		return nil
	})
	if err != nil {
		return nil, nil, false, fmt.Errorf("analyze: %w", err)
	}
	if warm != nil {
		warm()
	}
	return untils, out, true, nil
}

// within reports whether each of untils lies in [from, to], a window
// (not zero): what a fieldwork.Timeline answers.
func within(untils []time.Time, from, to time.Time) bool {
	return from.Before(to) && !slices.ContainsFunc(untils, func(u time.Time) bool { return u.Before(from) || u.After(to) })
}

// readFrame reads into an what a report on node for campaign needs besides
// its rows: the node and its subtree, the campaign and its ranking, each
// checked against p, and returns the categories.
func readFrame(ctx context.Context, tx store.Tx, p store.Principal, nodeID, campaignID string, an *store.Analysis) ([]syncengine.Category, error) {
	var err error
	if an.Node, an.Nodes, err = reportNode(ctx, tx, p, nodeID); err != nil {
		return nil, err
	}
	if campaignID != "" {
		c, ok, err := tx.Campaign(ctx, campaignID)
		if err != nil {
			return nil, err
		}
		if !ok || c.Deleted.Value {
			return nil, fmt.Errorf("%w: campaign %s", syncengine.ErrNotFound, campaignID)
		}
		path, err := tx.NodePath(ctx, c.NodeID.Value)
		if err != nil {
			return nil, err
		}
		if authz.Decide(p, authz.ReadCampaign, authz.Node(path)) != nil {
			return nil, fmt.Errorf("%w: campaign %s is outside your subtree", syncengine.ErrOutOfScope, campaignID)
		}
		an.Campaign = &c
		spec, err := tx.Ranking(ctx, campaignID)
		if err != nil {
			return nil, err
		}
		if an.Ranking, err = fieldwork.DecodeRanking(spec); err != nil {
			return nil, err
		}
	}
	return tx.Categories(ctx, 0)
}

// reportWorkers lists the workers of grids and the visitors of fw without
// grids here (a cadre, a police officer): each counts in the quotas.
func reportWorkers(ctx context.Context, tx store.Tx, grids []string, fw *fieldwork.Analysis) ([]string, error) {
	ids, err := tx.WorkersOfGrids(ctx, grids)
	if err != nil {
		return nil, err
	}
	for _, v := range fw.Visitors() {
		if !slices.Contains(ids, v) {
			ids = append(ids, v)
		}
	}
	return ids, nil
}

// finishAnalysis adds to an, whose field rules have run as of until (zero:
// now), the item policy, the visits of workers elsewhere (e, nil without
// a campaign), the visits with a position and the workers of ids.
func finishAnalysis(ctx context.Context, tx store.Tx, an *store.Analysis, grids, ids []string, e *elsewhere, until time.Time) error {
	policy, err := tx.ItemPolicy(ctx)
	if err != nil {
		return err
	}
	an.Fieldwork.EscalationPeriod = policy.Escalation()
	e.addTo(an.Fieldwork, ids, until)
	from, to := time.UnixMilli(0), time.UnixMilli(1<<62)
	if an.Campaign != nil {
		from, to = an.Campaign.Window()
	}
	to = clip(from, to, until)
	if an.Placed, err = tx.PlacedVisits(ctx, grids, from, to); err != nil {
		return err
	}
	for _, id := range ids {
		w, err := tx.Worker(ctx, id)
		if err != nil {
			w = store.Worker{ID: id, Name: id}
		}
		an.Workers = append(an.Workers, w)
	}
	slices.SortFunc(an.Workers, func(a, b store.Worker) int { return strings.Compare(a.Name+a.ID, b.Name+b.ID) })
	return nil
}

// fillRows has the rows of node's grids, for the window of campaign (none
// if ""), read and kept ahead of Analyze when none are (fieldCache.fill),
// if p may read reports of node. Analyze checks the campaign.
func (s *Service) fillRows(ctx context.Context, p store.Principal, nodeID, campaignID string) error {
	grids, from, to, err := s.reportScope(ctx, p, nodeID, campaignID)
	if err != nil || len(grids) == 0 {
		return err
	}
	return s.fields.fill(ctx, s.db, grids, from, to, s.now(), forReport)
}

// reportScope reads the grids of node and the window of campaign (none if
// "" or not found: Analyze says it is not), if p may read reports of node.
func (s *Service) reportScope(ctx context.Context, p store.Principal, nodeID, campaignID string) (grids []string, from, to time.Time, err error) {
	err = s.db.View(ctx, func(tx store.Tx) error {
		_, nodes, err := reportNode(ctx, tx, p, nodeID)
		if err != nil {
			return err
		}
		if campaignID != "" {
			c, ok, err := tx.Campaign(ctx, campaignID)
			if err != nil || !ok {
				return err
			}
			from, to = c.Window()
		}
		grids = gridsOf(nodes)
		return nil
	})
	return grids, from, to, err
}

// AnalyzeItems runs the field rules over the households of node with a
// tracked item, a page of them per read of their rows, in one snapshot:
// the items register needs their items alone, not a street's households.
// With a non-zero until it is as of until, as Analyze.
func (s *Service) AnalyzeItems(ctx context.Context, p store.Principal, nodeID string, until time.Time) (*store.Analysis, error) {
	an := &store.Analysis{}
	err := s.db.View(ctx, func(tx store.Tx) error {
		var err error
		if an.Node, an.Nodes, err = reportNode(ctx, tx, p, nodeID); err != nil {
			return err
		}
		ids, err := tx.TrackedHouseholds(ctx, gridsOf(an.Nodes))
		if err != nil {
			return err
		}
		var pages []fieldwork.Rows
		for page := range slices.Chunk(ids, pageSize) {
			pages = append(pages, tx.HouseholdRows(page))
		}
		cats, err := tx.Categories(ctx, 0)
		if err != nil {
			return err
		}
		if an.Fieldwork, err = fieldwork.LoadUntil(ctx, fieldwork.Pages(pages...), nil, cats, until); err != nil {
			return err
		}
		policy, err := tx.ItemPolicy(ctx)
		if err != nil {
			return err
		}
		an.Fieldwork.EscalationPeriod = policy.Escalation()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("analyze items: %w", err)
	}
	return an, nil
}

// countingRows counts, per visitor, the households whose plain visits in
// [from, to) it passes on (inside is nil when it does not count): what
// VisitsBy may take to leave alone the visitors whose plain visits reached
// no other household.
type countingRows struct {
	fieldwork.Rows
	from, to time.Time
	inside   map[string]int
}

func (r *countingRows) PlainVisits(ctx context.Context, from, to, until time.Time, fn func(*fieldwork.VisitAggregate) error) error {
	if r.inside == nil || !from.Equal(r.from) || !to.Equal(r.to) || !until.IsZero() {
		r.inside = nil
		return r.Rows.PlainVisits(ctx, from, to, until, fn)
	}
	return r.Rows.PlainVisits(ctx, from, to, until, func(a *fieldwork.VisitAggregate) error {
		if a.InWindow > 0 {
			r.inside[a.VisitorID]++
		}
		return fn(a)
	})
}

// elsewhere holds the visits of workers to households outside a report's
// grids (moved away since), which count in the workers' quotas as the
// phones count them: in the campaign's window once amendments are applied,
// voided ones left out.
type elsewhere struct {
	plain   []store.WorkerVisit
	amended []syncengine.Visit
	// amendments are those of amended, by visit.
	amendments map[string][]syncengine.Amendment
}

// readElsewhere reads the visits of workers made in [from, to) to
// households outside grids, and their amended ones whenever made. inside
// is what countingRows counted, or nil (VisitsBy). With perVisit each
// visit comes with its own time, for a series of moments: the workers
// whose plain visits a backend folded are read again one visit a row.
func readElsewhere(ctx context.Context, tx store.Tx, workers, grids []string, from, to time.Time, inside map[string]int, perVisit bool) (*elsewhere, error) {
	e := &elsewhere{amendments: map[string][]syncengine.Amendment{}}
	if len(workers) == 0 {
		return e, nil
	}
	visits, err := tx.VisitsBy(ctx, workers, from, to, grids, inside)
	if err != nil {
		return nil, err
	}
	if perVisit {
		if visits, err = unfold(ctx, tx, visits, grids, from, to); err != nil {
			return nil, err
		}
	}
	var amended []string
	for _, v := range visits {
		if v.Amended {
			amended = append(amended, v.VisitID)
		} else {
			e.plain = append(e.plain, v)
		}
	}
	slices.Sort(amended)
	amended = slices.Compact(amended)
	for part := range slices.Chunk(amended, pageSize) {
		vs, err := tx.Visits(ctx, part)
		if err != nil {
			return nil, err
		}
		as, err := tx.AmendmentsOfVisits(ctx, part)
		if err != nil {
			return nil, err
		}
		e.amended = append(e.amended, vs...)
		for _, a := range as {
			e.amendments[a.VisitID] = append(e.amendments[a.VisitID], a)
		}
	}
	return e, nil
}

// unfold replaces the folded rows of visits (plain visits summed per
// household and visitor, with no visit id) by the visits of their workers
// one a row, read again with nothing folded.
func unfold(ctx context.Context, tx store.Tx, visits []store.WorkerVisit, grids []string, from, to time.Time) ([]store.WorkerVisit, error) {
	folded := map[string]bool{}
	type link struct{ visit, household string }
	seen := map[link]bool{}
	out := visits[:0:0]
	for _, v := range visits {
		if v.VisitID == "" {
			folded[v.VisitorID] = true
			continue
		}
		seen[link{v.VisitID, v.HouseholdID}] = true
		out = append(out, v)
	}
	if len(folded) == 0 {
		return out, nil
	}
	more, err := tx.VisitsBy(ctx, slices.Sorted(maps.Keys(folded)), from, to, grids, nil)
	if err != nil {
		return nil, err
	}
	for _, v := range more {
		if !seen[link{v.VisitID, v.HouseholdID}] {
			out = append(out, v)
		}
	}
	return out, nil
}

// addTo adds to fw's quotas the visits of e by workers as of until (zero:
// all of them): made before it, with the amendments recorded before it.
func (e *elsewhere) addTo(fw *fieldwork.Analysis, workers []string, until time.Time) {
	if e == nil {
		return
	}
	of := make(map[string]bool, len(workers))
	for _, w := range workers {
		of[w] = true
	}
	for _, v := range e.plain {
		if (until.IsZero() || v.At.Before(until)) && of[v.VisitorID] {
			fw.AddVisitedElsewhere(v.VisitorID, v.HouseholdID, v.At)
		}
	}
	byVisit := e.amendments
	if !until.IsZero() {
		byVisit = fieldwork.AmendmentsUntil(byVisit, until)
	}
	for _, v := range e.amended {
		if !of[v.VisitorID] {
			continue
		}
		view := syncengine.Effective(v, byVisit[v.ID])
		if view.Voided || !until.IsZero() && !view.VisitedAt.Before(until) {
			continue
		}
		for _, h := range v.HouseholdIDs {
			fw.AddVisitedElsewhere(v.VisitorID, h, view.VisitedAt)
		}
	}
}

// pageSize is how many households or visits an export reads at a time.
const pageSize = 500

// LedgerPages sends node's households but their visits, with when each was
// last visited, a page per read transaction. The last visits come from the
// field rules over the page's rows (fieldwork.Load), which read a sum per
// household and visitor rather than every visit.
func (s *Service) LedgerPages(ctx context.Context, p store.Principal, nodeID string, fn func(store.LedgerPage) error) error {
	var grids []string
	err := s.db.View(ctx, func(tx store.Tx) error {
		_, nodes, err := reportNode(ctx, tx, p, nodeID)
		grids = gridsOf(nodes)
		return err
	})
	if err != nil || len(grids) == 0 {
		return err
	}
	after := ""
	return readAhead(ctx, func(ctx context.Context) (store.LedgerPage, bool, error) {
		var page store.LedgerPage
		var ids []string
		err := s.db.View(ctx, func(tx store.Tx) error {
			var err error
			if ids, err = tx.LiveHouseholdIDs(ctx, grids, after, pageSize); err != nil || len(ids) == 0 {
				return err
			}
			if page.Bundle, err = tx.Ledgers(ctx, ids); err != nil {
				return err
			}
			an, err := fieldwork.Load(ctx, ledgerRows{tx.HouseholdRows(ids), page.Households}, nil, nil)
			if err != nil {
				return err
			}
			page.LastVisit = make(map[string]time.Time, len(an.Households))
			for _, h := range an.Households {
				if !h.LastVisit.IsZero() {
					page.LastVisit[h.ID] = h.LastVisit
				}
			}
			return nil
		})
		if err != nil {
			return page, false, fmt.Errorf("ledger: %w", err)
		}
		if len(ids) == 0 {
			return page, false, nil
		}
		after = ids[len(ids)-1]
		return page, true, nil
	}, fn)
}

// readAhead calls fn with each page read returns until it returns no more
// (ok false), while the next page is read: a page of an export is read by
// one goroutine and written by another, each on its own core, with one
// page in hand at most besides the one being written.
func readAhead[T any](ctx context.Context, read func(context.Context) (T, bool, error), fn func(T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan T)
	var readErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(pages)
		// A panic here is no handler's to recover: it would end the
		// process, not the export.
		defer func() {
			if p := recover(); p != nil {
				readErr = fmt.Errorf("read a page: %v", p)
			}
		}()
		for {
			page, ok, err := read(ctx)
			if err != nil || !ok {
				readErr = err
				return
			}
			select {
			case pages <- page:
			case <-ctx.Done():
				readErr = ctx.Err()
				return
			}
		}
	}()
	for page := range pages {
		if err := fn(page); err != nil {
			cancel()
			<-done
			return err
		}
	}
	<-done
	return readErr
}

// ledgerRows are a ledger page's rows for the field rules, with its
// households as the page holds them: the last visits need neither their
// persons nor their categories, which reading them again for the rules
// cost an eighth of an export.
type ledgerRows struct {
	fieldwork.Rows
	households []syncengine.Household
}

func (r ledgerRows) Households(ctx context.Context, fn func(*fieldwork.HouseholdRow) error) error {
	for i := range r.households {
		h := &r.households[i]
		if h.Deleted.Value {
			continue
		}
		if err := fn(&fieldwork.HouseholdRow{ID: h.ID, GridID: h.GridID.Value, HeadName: h.HeadName.Value, Address: h.Address.Value}); err != nil {
			return err
		}
	}
	return nil
}

// VisitPages sends the visits to node's households, by visitor and date,
// a page per read transaction.
func (s *Service) VisitPages(ctx context.Context, p store.Principal, nodeID string, fn func(syncengine.Bundle) error) error {
	var grids []string
	err := s.db.View(ctx, func(tx store.Tx) error {
		_, nodes, err := reportNode(ctx, tx, p, nodeID)
		grids = gridsOf(nodes)
		return err
	})
	if err != nil || len(grids) == 0 {
		return err
	}
	var after store.VisitKey
	last := false
	return readAhead(ctx, func(ctx context.Context) (syncengine.Bundle, bool, error) {
		var b syncengine.Bundle
		if last {
			return b, false, nil
		}
		var keys []store.VisitKey
		err := s.db.View(ctx, func(tx store.Tx) error {
			var err error
			if keys, err = tx.VisitKeys(ctx, grids, after, pageSize); err != nil || len(keys) == 0 {
				return err
			}
			ids := make([]string, len(keys))
			for i, k := range keys {
				ids[i] = k.ID
			}
			if b.Visits, err = tx.Visits(ctx, ids); err != nil {
				return err
			}
			var hh []string
			for _, v := range b.Visits {
				hh = append(hh, v.HouseholdIDs...)
			}
			all, err := tx.Households(ctx, dedupe(hh))
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
			b.Amendments, err = tx.AmendmentsOfVisits(ctx, ids)
			return err
		})
		if err != nil {
			return b, false, fmt.Errorf("visit register: %w", err)
		}
		if len(keys) == 0 {
			return b, false, nil
		}
		after, last = keys[len(keys)-1], len(keys) < pageSize
		slices.SortFunc(b.Visits, func(a, b syncengine.Visit) int {
			if c := strings.Compare(a.VisitorID, b.VisitorID); c != 0 {
				return c
			}
			if c := a.VisitedAt.Compare(b.VisitedAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		return b, true, nil
	}, fn)
}

// Audit records that p read something (a report, an export).
func (s *Service) Audit(ctx context.Context, p store.Principal, e store.AuditEntry) error {
	if err := authz.Decide(p, authz.ReadReport, authz.Anywhere); err != nil {
		return err
	}
	e.ID, e.AdminID = newID(), p.ID
	return s.db.Update(ctx, func(tx store.Tx) error { return tx.InsertAudit(ctx, e) })
}

// AuditLog lists the newest entries of admins whose node lies in p's
// subtree.
func (s *Service) AuditLog(ctx context.Context, p store.Principal, limit int) ([]store.AuditEntry, error) {
	if err := authz.Decide(p, authz.ReadReport, authz.Anywhere); err != nil {
		return nil, err
	}
	limit = max(1, min(limit, 10000))
	var out []store.AuditEntry
	err := s.db.View(ctx, func(tx store.Tx) error {
		sub, err := tx.Subtree(ctx, p.Node)
		if err != nil {
			return err
		}
		nodes := map[string]bool{}
		for _, n := range sub {
			nodes[n.ID] = true
		}
		return tx.AuditEntries(ctx, func(e store.AuditEntry, adminNode string) bool {
			if p.Node == "" || nodes[adminNode] {
				out = append(out, e)
			}
			return len(out) < limit
		})
	})
	return out, err
}

// Collect deletes what is kept only for devices whose feed position is
// older than horizon on the server's clock (see store.Collector); such a
// device is then told to start over.
func (s *Service) Collect(ctx context.Context, horizon time.Duration) (store.Collected, error) {
	now := s.now()
	var before uint64
	err := s.db.View(ctx, func(tx store.Tx) error {
		var err error
		before, err = tx.PositionBefore(ctx, now.Add(-horizon))
		return err
	})
	if err != nil || before == 0 {
		return store.Collected{}, err
	}
	// The collected table remembers deleted tombstones for longer: a
	// phone back after several horizons still finds its write refused.
	return s.db.Collect(ctx, store.CollectRequest{Before: before, At: now, ForgetBefore: now.Add(-4 * horizon), CodesBefore: now.Add(-horizon)})
}

// Household reads one household whole, with the field rules' reading of
// it, if p may read reports of its grid.
func (s *Service) Household(ctx context.Context, p store.Principal, id string) (*store.HouseholdView, error) {
	if err := authz.Decide(p, authz.ReadReport, authz.Anywhere); err != nil {
		return nil, err
	}
	v := &store.HouseholdView{}
	err := s.db.View(ctx, func(tx store.Tx) error {
		b, err := tx.Bundle(ctx, []string{id})
		if err != nil {
			return err
		}
		if len(b.Households) == 0 || b.Households[0].Deleted.Value {
			return fmt.Errorf("%w: household %s", syncengine.ErrNotFound, id)
		}
		if v.Grid, err = node(ctx, tx, p, authz.ReadReport, b.Households[0].GridID.Value); err != nil {
			return err
		}
		cats, err := tx.Categories(ctx, 0)
		if err != nil {
			return err
		}
		an, err := fieldwork.Load(ctx, tx.HouseholdRows([]string{id}), nil, cats)
		if err != nil {
			return err
		}
		if len(an.Households) == 1 {
			v.Fieldwork = *an.Households[0]
		}
		v.Bundle = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("household: %w", err)
	}
	return v, nil
}

// clip is the end of the window [from, to) as of until (zero: to).
func clip(from, to, until time.Time) time.Time {
	switch {
	case until.IsZero() || !until.Before(to):
		return to
	case until.Before(from):
		return from
	}
	return until
}
