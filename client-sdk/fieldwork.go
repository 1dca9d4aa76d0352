package sdk

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/syncengine"
)

// Field rules on the phone: what is due and how the campaign goes, computed
// from the local replica with no network (package fieldwork holds the
// rules, shared with the server's reports).

// Categories lists the must-visit categories the admins defined.
func (r *Replica) Categories(ctx context.Context) ([]syncengine.Category, error) {
	if err := r.unlocked(ctx); err != nil {
		return nil, err
	}
	cats, err := statedb.Categories(ctx, r.db.R, 0)
	if err != nil {
		return nil, fmt.Errorf("categories: %w", err)
	}
	out := cats[:0]
	for _, c := range cats {
		if !c.Deleted.Value {
			out = append(out, c)
		}
	}
	return out, nil
}

// Campaigns lists the campaigns of the worker's nodes, by start.
func (r *Replica) Campaigns(ctx context.Context) ([]syncengine.Campaign, error) {
	if err := r.unlocked(ctx); err != nil {
		return nil, err
	}
	cs, err := statedb.Campaigns(ctx, r.db.R, 0)
	if err != nil {
		return nil, fmt.Errorf("campaigns: %w", err)
	}
	out := cs[:0]
	for _, c := range cs {
		if !c.Deleted.Value {
			out = append(out, c)
		}
	}
	return out, nil
}

// campaign picks a campaign by id, or with "" the one running at now (the
// latest to start, if several); nil when none runs.
func campaign(ctx context.Context, q statedb.Querier, id string, now time.Time) (*syncengine.Campaign, error) {
	if id != "" {
		c, ok, err := statedb.GetCampaign(ctx, q, id)
		if err != nil {
			return nil, err
		}
		if !ok || c.Deleted.Value {
			return nil, fmt.Errorf("%w: campaign %s is not in this replica", syncengine.ErrNotFound, id)
		}
		return &c, nil
	}
	cs, err := statedb.Campaigns(ctx, q, 0)
	if err != nil {
		return nil, err
	}
	return running(cs, now), nil
}

// running picks of cs the campaign running at now: the latest to start, if
// several (cs is in start order); nil when none runs.
func running(cs []syncengine.Campaign, now time.Time) *syncengine.Campaign {
	var found *syncengine.Campaign
	for i := range cs {
		if !cs[i].Deleted.Value && cs[i].In(now) {
			found = &cs[i]
		}
	}
	return found
}

// checkAnswers checks a visit's survey answers against its campaign's
// questionnaire.
func checkAnswers(ctx context.Context, q statedb.Querier, v *syncengine.Visit) error {
	c, err := campaign(ctx, q, v.CampaignID, time.Time{})
	if err != nil {
		return err
	}
	return c.CheckAnswers(v.Answers)
}

// Analysis is the worker's scope under the field rules, for one campaign.
type Analysis struct {
	*fieldwork.Analysis
	WorkerID string
	Role     int32
	At       time.Time
}

// Analyze reads the replica's households under the field rules, for the
// campaign with the given id ("" for the one running at now, if any), in one
// snapshot. The analysis is the caller's to change.
func (r *Replica) Analyze(ctx context.Context, campaignID string, now time.Time) (*Analysis, error) {
	if err := r.unlocked(ctx); err != nil {
		return nil, err
	}
	e, err := r.analyze(ctx, campaignID, now, false, nil, nil)
	if err != nil {
		return nil, err
	}
	return e.an, nil
}

// analysisCache keeps the last analysis Due, Progress and Items made, with
// the rows it read and the replica's count of writes when it began to
// read. Asked for again with no write since (a worker scrolling the list, a
// screen and its badge), it is given again; after writes that each said
// which households they changed (recording a visit, amending one), those
// households are read again and the rest kept. Shared, an analysis is
// read and never changed.
type analysisCache struct {
	mu    sync.Mutex
	entry *cachedAnalysis
}

type cachedAnalysis struct {
	writes uint64
	// campaignID is what the analysis was asked for ("" for the campaign
	// running then); campaigns are the replica's then, to tell which one
	// runs at another time.
	campaignID string
	campaigns  []syncengine.Campaign
	an         *Analysis
	// snap holds the rows of grids the analysis read, with plain visits
	// summed over [from, to).
	snap     *fieldwork.Snapshot
	grids    []string
	from, to time.Time
}

// sharedAnalysis is Analyze, given again while the replica has had no
// write and asks for the same campaign. It must not be changed.
func (r *Replica) sharedAnalysis(ctx context.Context, campaignID string, now time.Time) (*Analysis, error) {
	if err := r.unlocked(ctx); err != nil {
		return nil, err
	}
	writes := r.db.Writes()
	r.analyses.mu.Lock()
	e := r.analyses.entry
	r.analyses.mu.Unlock()
	var prev *cachedAnalysis
	var changed []string
	if e != nil && e.campaignID == campaignID &&
		(campaignID != "" || campaignOf(running(e.campaigns, now)) == campaignOf(e.an.Campaign)) {
		if e.writes == writes {
			out := *e.an
			out.At = now
			return &out, nil
		}
		// More than half the households changed (a sync after long
		// offline): read whole, which costs less than by id.
		var ok bool
		if changed, ok = r.db.ChangedSince(e.writes, writes); ok && len(changed) <= max(500, e.snap.Len()/2) {
			prev = e
		}
	}
	next, err := r.analyze(ctx, campaignID, now, true, prev, changed)
	if err != nil {
		return nil, err
	}
	next.writes = writes
	r.analyses.mu.Lock()
	r.analyses.entry = next
	r.analyses.mu.Unlock()
	return next.an, nil
}

func campaignOf(c *syncengine.Campaign) string {
	if c == nil {
		return ""
	}
	return c.ID
}

// analyze reads the analysis of campaignID at now. With keep, the rows it
// read come with it (a fieldwork.Snapshot); given an earlier one, prev,
// and the households changed since, it reads again only those.
func (r *Replica) analyze(ctx context.Context, campaignID string, now time.Time, keep bool, prev *cachedAnalysis, changed []string) (*cachedAnalysis, error) {
	out := &Analysis{At: now}
	e := &cachedAnalysis{campaignID: campaignID, an: out}
	err := r.db.Read(ctx, func(tx *sqlitex.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT worker_id, worker_role FROM sync_state WHERE id = 1`).Scan(&out.WorkerID, &out.Role); err != nil {
			return err
		}
		var err error
		if e.campaigns, err = statedb.Campaigns(ctx, tx, 0); err != nil {
			return err
		}
		c, err := campaign(ctx, tx, campaignID, now)
		if err != nil {
			return err
		}
		cats, err := statedb.Categories(ctx, tx, 0)
		if err != nil {
			return err
		}
		grids, err := queryStrings(ctx, tx, `SELECT grid_id FROM my_grids ORDER BY grid_id`)
		if err != nil {
			return err
		}
		var rows fieldwork.Rows = statedb.FieldRows(tx, grids)
		if keep {
			if c != nil {
				e.from, e.to = c.Window()
			}
			e.grids = grids
			if prev != nil && slices.Equal(prev.grids, grids) && prev.from.Equal(e.from) && prev.to.Equal(e.to) {
				inGrids := func(h *fieldwork.HouseholdRow) bool { return slices.Contains(grids, h.GridID) }
				// A page of households per statement: a sync may have
				// written thousands, each bound as a parameter.
				var pages []fieldwork.Rows
				for page := range slices.Chunk(changed, 500) {
					pages = append(pages, statedb.FieldRowsOf(tx, page))
				}
				fresh, err := fieldwork.ReadSnapshot(ctx, fieldwork.Pages(pages...), e.from, e.to, inGrids)
				if err != nil {
					return err
				}
				if e.snap, err = prev.snap.With(fresh, changed); err != nil {
					return err
				}
			} else if e.snap, err = fieldwork.ReadSnapshot(ctx, rows, e.from, e.to, nil); err != nil {
				return err
			}
			rows = e.snap.Rows()
		}
		if out.Analysis, err = fieldwork.Load(ctx, rows, c, cats); err != nil {
			return err
		}
		visited, err := tx.QueryContext(ctx, `SELECT household_id, visited_at FROM visited_elsewhere`)
		if err != nil {
			return err
		}
		defer visited.Close()
		for visited.Next() {
			var h string
			var at int64
			if err := visited.Scan(&h, &at); err != nil {
				return err
			}
			out.Analysis.AddVisitedElsewhere(out.WorkerID, h, time.UnixMilli(at))
		}
		return visited.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("analyze: %w", err)
	}
	return e, nil
}

// Due lists what the worker should visit next, most urgent first (see
// fieldwork.Analysis.Due).
func (r *Replica) Due(ctx context.Context, campaignID string, now time.Time) ([]fieldwork.DueItem, error) {
	a, err := r.sharedAnalysis(ctx, campaignID, now)
	if err != nil {
		return nil, err
	}
	due := a.Due(now)
	// Each its own copy of its household: the analysis is shared.
	for i := range due {
		due[i].Household = due[i].Household.Clone()
	}
	return due, nil
}

// Progress is the worker's progress in the campaign: their distinct
// households visited against their role's quota, and their grids' coverage.
func (r *Replica) Progress(ctx context.Context, campaignID string, now time.Time) (fieldwork.Progress, *syncengine.Campaign, error) {
	a, err := r.sharedAnalysis(ctx, campaignID, now)
	if err != nil {
		return fieldwork.Progress{}, nil, err
	}
	if a.Campaign == nil {
		return fieldwork.Progress{}, nil, fmt.Errorf("progress: %w: no campaign runs now", syncengine.ErrNotFound)
	}
	// The caller's own copy: the analysis is shared.
	c := *a.Campaign
	return a.Progress(a.WorkerID, a.Role), &c, nil
}

// Items lists the tracked items of the worker's households, open ones
// first.
func (r *Replica) Items(ctx context.Context, now time.Time) ([]syncengine.Item, error) {
	a, err := r.sharedAnalysis(ctx, "", now)
	if err != nil {
		return nil, err
	}
	var open, done []syncengine.Item
	for _, h := range a.Households {
		for _, it := range h.Items {
			// The caller's own lists: the analysis is shared.
			it.HouseholdIDs, it.CoUnits = slices.Clone(it.HouseholdIDs), slices.Clone(it.CoUnits)
			if it.State.Open() {
				open = append(open, it)
			} else {
				done = append(done, it)
			}
		}
	}
	return append(open, done...), nil
}

func queryStrings(ctx context.Context, q statedb.Querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
