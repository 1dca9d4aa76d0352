package service

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// scope reads a worker's grids and their names.
func scope(ctx context.Context, tx store.Tx, workerID string) (store.Scope, error) {
	w, err := tx.Worker(ctx, workerID)
	if err != nil {
		return store.Scope{}, err
	}
	sc := store.Scope{Worker: w}
	for _, g := range w.GridIDs {
		n, err := tx.Node(ctx, g)
		if err != nil {
			return sc, err
		}
		sc.Grids = append(sc.Grids, n)
	}
	return sc, nil
}

// Scope returns a worker's grids.
func (s *Service) Scope(ctx context.Context, p store.Principal) (store.Scope, error) {
	if err := requireWorker(p); err != nil {
		return store.Scope{}, err
	}
	var sc store.Scope
	err := s.db.View(ctx, func(tx store.Tx) error {
		var err error
		sc, err = scope(ctx, tx, p.ID)
		return err
	})
	return sc, err
}

// reference reads the reference data of a worker's grids changed after
// feed position since (all of it with 0). Rows changed after the batch's
// end come now and again with a later batch: merging is idempotent.
func reference(ctx context.Context, tx store.Tx, grids []string, since uint64) (syncengine.Reference, error) {
	var r syncengine.Reference
	var err error
	if r.Categories, err = tx.Categories(ctx, since); err != nil {
		return r, err
	}
	r.Campaigns, err = tx.CampaignsAbove(ctx, grids, since)
	return r, err
}

// Pull returns the feed after cursor within p's scope.
func (s *Service) Pull(ctx context.Context, p store.Principal, cursor uint64, limit int) (*store.PullBatch, error) {
	if err := requireWorker(p); err != nil {
		return nil, err
	}
	limit = max(1, min(limit, store.MaxPullLimit))
	b := &store.PullBatch{}
	var from uint64 // the feed position of cursor
	var note bool   // from must be written as the device's known position
	err := s.db.View(ctx, func(tx store.Tx) error {
		top, err := tx.Head(ctx)
		if err != nil {
			return err
		}
		if from, err = tx.Position(ctx, cursor, top); err != nil {
			return err
		}
		if note, err = s.shownPositionMatters(ctx, tx, p, from); err != nil {
			return err
		}
		if b.Scope, err = scope(ctx, tx, p.ID); err != nil {
			return err
		}
		if b.Policy, err = tx.DevicePolicy(ctx); err != nil {
			return err
		}
		mine := map[string]bool{}
		for _, g := range b.Scope.Worker.GridIDs {
			mine[g] = true
		}
		// The device's own visits and amendments are on it already: a pull
		// that sent them back would double the work of every sync.
		var entries []store.FeedEntry
		if len(b.Scope.Worker.GridIDs) > 0 && top > from {
			entries, err = tx.Entries(ctx, store.FeedQuery{Grids: b.Scope.Worker.GridIDs, Origin: p.CredentialID, After: from, Upto: top, Limit: limit})
			if err != nil {
				return err
			}
		}
		upto := top
		if len(entries) == limit {
			upto, b.More = entries[len(entries)-1].Seq, true
		}
		if b.Cursor, err = tx.Cursor(ctx, upto); err != nil {
			return err
		}
		whole, err := scopeChanges(ctx, tx, b, p.ID, mine, from, upto, top)
		if err != nil {
			return err
		}
		since := from
		if len(b.AddedGrids) > 0 {
			since = 0 // campaigns of the new grids' nodes may be older
		}
		if b.Reference, err = reference(ctx, tx, b.Scope.Worker.GridIDs, since); err != nil {
			return err
		}
		return loadEntries(ctx, tx, b, entries, whole)
	})
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	// Best effort: a failure here only widens the grace, which the
	// server's clock still bounds.
	if note {
		_ = s.db.Update(ctx, func(tx store.Tx) error { return tx.RaiseKnownCursor(ctx, p.CredentialID, from) })
	}
	return b, nil
}

// shownPositionMatters reports whether from, the position a device shows
// by pulling from it that it applied, must be written as its known position
// (see pushScope): whether a household moved, or its worker's grids
// changed, after the position the store holds and within the grace. Only
// then would a push be judged otherwise from it: pushScope replays the
// moves and grid changes after the position it starts from, and there are
// none between the two. Most pulls find none, and so do not queue behind
// every push for the one writer (under load, a pull's round trip was a
// push's). Positions up to from are all committed: none can come later.
func (s *Service) shownPositionMatters(ctx context.Context, tx store.Tx, p store.Principal, from uint64) (bool, error) {
	if from == 0 {
		return false, nil
	}
	known, err := tx.KnownCursor(ctx, p.CredentialID)
	if err != nil || known >= from {
		return false, err
	}
	expired, err := tx.PositionBefore(ctx, s.now().Add(-s.grace))
	if err != nil {
		return false, err
	}
	after := max(known, expired)
	if after >= from {
		return false, nil
	}
	events, err := tx.ScopeEvents(ctx, p.ID, after, from)
	if err != nil || len(events) > 0 {
		return len(events) > 0, err
	}
	moves, err := tx.Moves(ctx, after, from)
	return len(moves) > 0, err
}

// scopeChanges adds to b what changed in the worker's scope in (cursor,
// upto]: grids given and taken, households moved in and out. It judges each
// by the scope as it is now, so a household that moved out and back within
// the range arrives whole rather than being dropped. A move counts if it
// touches a grid the worker has now or held at any point after the cursor
// (up to top, beyond this batch): a household that left a grid the worker
// loses in a later batch must still leave the phone now. It returns the
// households to send whole.
func scopeChanges(ctx context.Context, tx store.Tx, b *store.PullBatch, workerID string, mine map[string]bool, cursor, upto, top uint64) ([]string, error) {
	events, err := tx.ScopeEvents(ctx, workerID, cursor, top)
	if err != nil {
		return nil, err
	}
	held := map[string]bool{}    // grids the worker held at some point after the cursor
	inRange := map[string]bool{} // grids given or taken within this batch
	for _, e := range events {
		held[e.Grid] = true
		if e.Seq <= upto {
			inRange[e.Grid] = true
		}
	}
	for _, g := range sortedKeys(inRange) {
		if mine[g] {
			b.AddedGrids = append(b.AddedGrids, g)
		} else {
			b.EvictedGrids = append(b.EvictedGrids, g)
		}
	}
	moves, err := tx.Moves(ctx, cursor, upto)
	if err != nil {
		return nil, err
	}
	var whole []string
	for _, m := range moves {
		if !(mine[m.From] || mine[m.To] || held[m.From] || held[m.To]) {
			continue
		}
		switch {
		case !mine[m.Now]:
			if !slices.Contains(b.EvictedHouseholds, m.Household) {
				b.EvictedHouseholds = append(b.EvictedHouseholds, m.Household)
			}
		case !slices.Contains(whole, m.Household):
			whole = append(whole, m.Household)
		}
	}
	return whole, nil
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// entityKey names a row of the feed, or (kind 0) a whole household.
type entityKey struct {
	kind store.EntityKind
	id   string
}

// loadEntries loads the rows behind feed entries, and whole households.
func loadEntries(ctx context.Context, tx store.Tx, b *store.PullBatch, entries []store.FeedEntry, whole []string) error {
	ids := map[store.EntityKind][]string{}
	seen := map[entityKey]bool{}
	for _, h := range whole {
		seen[entityKey{0, h}] = true
	}
	for _, e := range entries {
		k := entityKey{e.Kind, e.EntityID}
		if seen[k] || seen[entityKey{0, e.Household}] {
			continue // a group visit has an entry per household; whole households come below
		}
		seen[k] = true
		ids[e.Kind] = append(ids[e.Kind], e.EntityID)
	}
	var err error
	r := &b.Rows
	if r.Households, err = tx.Households(ctx, ids[store.EntityHousehold]); err != nil {
		return err
	}
	if r.Persons, err = tx.Persons(ctx, ids[store.EntityPerson]); err != nil {
		return err
	}
	if r.Tags, err = tx.Tags(ctx, ids[store.EntityTag]); err != nil {
		return err
	}
	// A feed entry without its row is a tombstone collected past the
	// horizon (see store.Collector).
	b.PurgedPersons = missing(ids[store.EntityPerson], len(r.Persons), func(i int) string { return r.Persons[i].ID })
	b.PurgedTags = missing(ids[store.EntityTag], len(r.Tags), func(i int) string { return r.Tags[i].AddID })
	if err := erasedIn(ctx, tx, b, entries); err != nil {
		return err
	}
	if r.Visits, err = tx.Visits(ctx, ids[store.EntityVisit]); err != nil {
		return err
	}
	if r.Amendments, err = tx.Amendments(ctx, ids[store.EntityAmendment]); err != nil {
		return err
	}
	if len(whole) == 0 {
		return nil
	}
	extra, err := tx.Bundle(ctx, whole)
	if err != nil {
		return err
	}
	r.Households = append(r.Households, extra.Households...)
	r.Persons = append(r.Persons, extra.Persons...)
	r.Tags = append(r.Tags, extra.Tags...)
	r.Visits = append(r.Visits, extra.Visits...)
	r.Amendments = append(r.Amendments, extra.Amendments...)
	return nil
}

// missing lists the ids of want that the n found rows (ids by id(i)) lack.
func missing(want []string, n int, id func(int) string) []string {
	if len(want) == n {
		return nil
	}
	found := make(map[string]bool, n)
	for i := range n {
		found[id(i)] = true
	}
	var out []string
	for _, w := range want {
		if !found[w] {
			out = append(out, w)
		}
	}
	return out
}

// erasedIn marks the rows of the batch whose personal data was erased, by
// the entries the erasure wrote: a later change of the row is no erasure.
func erasedIn(ctx context.Context, tx store.Tx, b *store.PullBatch, entries []store.FeedEntry) error {
	if len(entries) == 0 {
		return nil
	}
	out := map[store.EntityKind]*[]string{store.EntityHousehold: &b.ErasedHouseholds, store.EntityPerson: &b.ErasedPersons,
		store.EntityVisit: &b.ReplacedVisits, store.EntityAmendment: &b.ReplacedAmendments}
	ids := map[store.EntityKind][]string{}
	seen := map[entityKey]bool{}
	var lo uint64
	for _, e := range entries {
		key := entityKey{e.Kind, e.EntityID}
		if _, ok := out[e.Kind]; ok && !seen[key] {
			seen[key] = true
			ids[e.Kind] = append(ids[e.Kind], e.EntityID)
		}
		if lo == 0 || e.Seq < lo {
			lo = e.Seq
		}
	}
	of := map[entityKey]store.Erasure{}
	for _, kind := range []store.EntityKind{store.EntityHousehold, store.EntityPerson, store.EntityVisit, store.EntityAmendment} {
		erasures, err := tx.ErasuresOf(ctx, lo-1, kind, ids[kind])
		if err != nil {
			return err
		}
		for _, r := range erasures {
			of[entityKey{r.Kind, r.ID}] = r
		}
	}
	if len(of) == 0 {
		return nil
	}
	clear(seen)
	for _, e := range entries {
		list, ok := out[e.Kind]
		key := entityKey{e.Kind, e.EntityID}
		if !ok || seen[key] {
			continue
		}
		if r, ok := of[key]; ok && r.Announces(e) {
			seen[key] = true
			*list = append(*list, e.EntityID)
		}
	}
	return nil
}

// Bootstrap sends pages of whole households. Each page is read in its own
// transaction, so a slow client never holds a snapshot open; what changes
// between pages reaches the device through the feed from the first page's
// cursor.
func (s *Service) Bootstrap(ctx context.Context, p store.Principal, req store.BootstrapRequest, send func(*store.BootstrapPage) error) error {
	if err := requireWorker(p); err != nil {
		return err
	}
	pageSize := req.PageSize
	if pageSize <= 0 {
		pageSize = store.DefaultBootstrapPage
	}
	pageSize = min(pageSize, store.MaxBootstrapPage)
	var (
		sc store.Scope
		// cursor is the feed position read before the first page.
		cursor uint64
		total  int
		grids  []string
		ref    syncengine.Reference
	)
	err := s.db.View(ctx, func(tx store.Tx) error {
		top, err := tx.Head(ctx)
		if err != nil {
			return err
		}
		if cursor, err = tx.Cursor(ctx, top); err != nil {
			return err
		}
		if sc, err = scope(ctx, tx, p.ID); err != nil {
			return err
		}
		if ref, err = reference(ctx, tx, sc.Worker.GridIDs, 0); err != nil {
			return err
		}
		grids = sc.Worker.GridIDs
		if len(req.GridIDs) > 0 {
			grids = dedupe(req.GridIDs)
			for _, g := range grids {
				if !slices.Contains(sc.Worker.GridIDs, g) {
					return fmt.Errorf("%w: grid %s is not yours", syncengine.ErrOutOfScope, g)
				}
			}
		}
		total, err = tx.CountHouseholds(ctx, grids, req.AfterHouseholdID)
		return err
	})
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	after := req.AfterHouseholdID
	first := true
	for {
		page := &store.BootstrapPage{Cursor: cursor, Scope: sc}
		if first {
			page.TotalHouseholds, page.Reference = total, ref
		}
		var ids []string
		if len(grids) > 0 {
			err = s.db.View(ctx, func(tx store.Tx) error {
				if ids, err = tx.HouseholdIDs(ctx, grids, after, pageSize); err != nil {
					return err
				}
				page.Rows, err = tx.Bundle(ctx, ids)
				return err
			})
			if err != nil {
				return fmt.Errorf("bootstrap: %w", err)
			}
		}
		if len(ids) > 0 {
			after = ids[len(ids)-1]
			page.LastHouseholdID = after
		}
		// The first page goes out even when empty: it carries the cursor.
		if len(ids) > 0 || first {
			if err := send(page); err != nil {
				return err
			}
		}
		first = false
		if len(ids) < pageSize {
			return nil
		}
	}
}

func dedupe(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// Snapshot writes p's whole scope to a file, where the backend offers it
// (store.Snapshotter); else it is store.ErrNoSnapshot and the device
// bootstraps by pages. A file written for the same scope a little earlier
// is given again (see snapshotCache), with its own cursor.
//
// The cursor, scope and reference data are read first and the rows after,
// as Bootstrap's pages are: rows newer than the cursor come again through
// the feed, and merging them twice changes nothing.
func (s *Service) Snapshot(ctx context.Context, p store.Principal, minHouseholds int) (*store.Snapshot, error) {
	if err := requireWorker(p); err != nil {
		return nil, err
	}
	sn, ok := s.db.(store.Snapshotter)
	if !ok {
		return nil, store.ErrNoSnapshot
	}
	snap := &store.Snapshot{}
	var top uint64
	err := s.db.View(ctx, func(tx store.Tx) error {
		var err error
		if top, err = tx.Head(ctx); err != nil {
			return err
		}
		if snap.Cursor, err = tx.Cursor(ctx, top); err != nil {
			return err
		}
		if snap.Scope, err = scope(ctx, tx, p.ID); err != nil {
			return err
		}
		if minHouseholds > 0 {
			ids, err := tx.LiveHouseholdIDs(ctx, snap.Scope.Worker.GridIDs, "", minHouseholds)
			if err != nil {
				return err
			}
			if len(ids) < minHouseholds {
				return store.ErrNoSnapshot
			}
		}
		snap.Reference, err = reference(ctx, tx, snap.Scope.Worker.GridIDs, 0)
		return err
	})
	if errors.Is(err, store.ErrNoSnapshot) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	key, now := scopeKey(snap.Scope.Worker.GridIDs), s.now()
	if e := s.snapshots.take(key, top, now); e != nil {
		snap.ID, snap.Path, snap.Cursor, snap.Households, snap.Reused = e.id, e.path, e.cursor, e.households, true
		snap.Release = func() { s.snapshots.done(e) }
		return snap, nil
	}
	e := &cachedSnapshot{id: newSnapshotID(), cursor: snap.Cursor, head: top, built: now}
	campaigns := make([]string, len(snap.Reference.Campaigns))
	for i, c := range snap.Reference.Campaigns {
		campaigns[i] = c.ID
	}
	if e.path, e.households, e.release, err = sn.WriteSnapshot(ctx, snap.Scope.Worker.GridIDs, campaigns); err != nil {
		if errors.Is(err, store.ErrNoSnapshot) {
			return nil, err
		}
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	s.snapshots.put(key, e)
	snap.ID, snap.Path, snap.Households = e.id, e.path, e.households
	snap.Release = func() { s.snapshots.done(e) }
	return snap, nil
}
