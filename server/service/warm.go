package service

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// warm reads whole again, in the background, what the next reports of
// the scope of grids (sorted) for [from, to) will take, if kept
// (fieldCache.toWarm): its rows when they near their age, so that a scope in
// use is not read whole by a report an office waits for, and for a
// campaign's window its plain visits one by one, which a campaign's weeks
// take: the console's dashboard links to them.
func (s *Service) warm(grids []string, from, to time.Time) {
	now := s.now()
	rows, timeline := s.fields.toWarm(grids, from, to, now)
	if !rows && !timeline {
		return
	}
	s.background.goIfOpen(func(ctx context.Context) {
		// Nothing waits for these: a failure leaves the next report to
		// read what it needs itself.
		if rows && s.fields.fill(ctx, s.db, grids, from, to, now, behindReport) != nil {
			return
		}
		if timeline {
			_ = s.fields.fillTimeline(ctx, s.db, grids, from, to, now, behindReport)
		}
	})
}

// WarmCampaigns reads, in the background, the scopes of the campaigns
// running now (each campaign's node) and keeps them as their reports
// would: their rows, and their plain visits one by one for their weeks.
// The campaigns that started last come first, as many as the report cache
// holds; scopes too large to keep are left. A server just started thus
// answers an office's first dashboard or weeks page from kept rows. done
// is closed once all are read, or the reading given up.
func (s *Service) WarmCampaigns() (done <-chan struct{}) {
	ch := make(chan struct{})
	warm := func(ctx context.Context) {
		defer close(ch)
		// A failure leaves the first reports to read what they need.
		_ = s.warmCampaigns(ctx, s.now())
	}
	if s.fields.households == 0 || !s.background.goIfOpen(warm) {
		close(ch)
	}
	return ch
}

// warmCampaigns is WarmCampaigns' reading, as of now.
func (s *Service) warmCampaigns(ctx context.Context, now time.Time) error {
	type scope struct {
		grids    []string
		from, to time.Time
	}
	var scopes []scope
	err := s.db.View(ctx, func(tx store.Tx) error {
		cs, err := tx.Campaigns(ctx)
		if err != nil {
			return err
		}
		slices.SortStableFunc(cs, func(a, b syncengine.Campaign) int { return -cmp.Compare(a.StartsAt.Value, b.StartsAt.Value) })
		room := s.fields.households
		for _, c := range cs {
			if c.Deleted.Value || !c.In(now) {
				continue
			}
			sub, err := tx.Subtree(ctx, c.NodeID.Value)
			if err != nil {
				return err
			}
			nodes := make(map[string]store.OrgNode, len(sub))
			for _, n := range sub {
				nodes[n.ID] = n
			}
			grids := gridsOf(nodes)
			n, err := tx.CountHouseholds(ctx, grids, "")
			if err != nil {
				return err
			}
			if len(grids) < 2 || n > room {
				// One grid is read as its reports read it (fill).
				continue
			}
			room -= n
			from, to := c.Window()
			scopes = append(scopes, scope{grids, from, to})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, sc := range scopes {
		if err := s.fields.fill(ctx, s.db, sc.grids, sc.from, sc.to, now, forReport); err != nil {
			return err
		}
		if err := s.fields.fillTimeline(ctx, s.db, sc.grids, sc.from, sc.to, now, forReport); err != nil {
			return err
		}
	}
	return nil
}

// background runs work no request waits for, and ends it before the
// database closes.
type background struct {
	mu   sync.Mutex
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// goIfOpen runs f in its own goroutine with a context that ends on close,
// unless closed, and reports whether it does.
func (b *background) goIfOpen(f func(ctx context.Context)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctx.Err() != nil {
		return false
	}
	b.wg.Go(func() { f(b.ctx) })
	return true
}

// close ends the work under way and waits for it.
func (b *background) close() {
	b.mu.Lock()
	b.stop()
	b.mu.Unlock()
	b.wg.Wait()
}
