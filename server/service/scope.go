package service

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// pushScope decides which households a push may write. A household is
// writable if it is in one of the worker's grids now, or if it was in the
// worker's scope at some moment inside the device's grace: after the feed
// position the device has shown it applied (see store.Sync.Push), and
// within the scope grace on the server's clock. Such writes were made
// while, as far as the device knew, the household was theirs, and must not
// be lost (DESIGN.md, partial replication); beyond that, they would be a
// standing permission. (A position merely sent is not enough: a phone that
// finds a pending change to a household in a pull's evictions pushes it
// before it applies the pull, and that push must be taken.)
type pushScope struct {
	tx  store.Tx
	now map[string]bool // the worker's grids now
	// since: the feed position after which a write is judged: what the
	// device applied, or the last position committed before the grace
	// began, whichever is later.
	since uint64
	// recent: the grids the worker has held at some moment after since
	// (where a device may still register a household).
	recent map[string]bool
	// events: the worker's grid changes after since, oldest first.
	events    []store.ScopeEvent
	decisions map[string]bool
	// erased: rows this push blanked on arrival, being older than an
	// erasure of their household (see erasedBefore).
	erased []store.ErasureMark
	// anyErased: the server has erased some household (else nothing
	// pushed needs checking against erasures).
	anyErased bool
	// visits counts all the visits to the households the push's visits
	// name (prefetch), those it inserts among them (admitVisit).
	visits map[string]int
}

func (s *Service) newPushScope(ctx context.Context, tx store.Tx, p store.Principal, cursor uint64) (*pushScope, error) {
	ps := &pushScope{tx: tx, now: map[string]bool{}, recent: map[string]bool{}, decisions: map[string]bool{}}
	known, err := tx.KnownCursor(ctx, p.CredentialID)
	if err != nil {
		return nil, err
	}
	top, err := tx.Head(ctx)
	if err != nil {
		return nil, err
	}
	if cursor != 0 {
		applied, err := tx.Position(ctx, cursor, top)
		if err != nil {
			return nil, err
		}
		known = max(known, applied)
	}
	expired, err := tx.PositionBefore(ctx, s.now().Add(-s.grace))
	if err != nil {
		return nil, err
	}
	ps.since = max(known, expired)
	if ps.anyErased, err = tx.AnyHouseholdErased(ctx); err != nil {
		return nil, err
	}
	w, err := tx.Worker(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	for _, g := range w.GridIDs {
		ps.now[g], ps.recent[g] = true, true
	}
	if ps.events, err = tx.ScopeEvents(ctx, p.ID, ps.since, top); err != nil {
		return nil, err
	}
	for _, e := range ps.events {
		ps.recent[e.Grid] = true
	}
	return ps, nil
}

// judge fails unless the push may write household h, read by the caller.
func (ps *pushScope) judge(ctx context.Context, h syncengine.Household) error {
	allowed, seen := ps.decisions[h.ID]
	if !seen {
		var err error
		if allowed, err = ps.allowed(ctx, h.ID, h.GridID.Value); err != nil {
			return err
		}
		ps.decisions[h.ID] = allowed
	}
	if !allowed {
		return notYours(h.ID)
	}
	return nil
}

// notYours refuses a write to a household outside the worker's grids, or
// to one that does not exist: the two get the same answer, so that a
// worker learns nothing of which ids exist beyond their scope.
func notYours(household string) error {
	return fmt.Errorf("%w: household %s is not in your grids", syncengine.ErrOutOfScope, household)
}

// check is judge for callers that need only the verdict: a push of a
// day's visits names the same households again and again, and a household
// judged once in this push is not read again.
func (ps *pushScope) check(ctx context.Context, id string) error {
	if allowed, seen := ps.decisions[id]; seen {
		if !allowed {
			return notYours(id)
		}
		return nil
	}
	h, ok, err := ps.tx.Household(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		return notYours(id)
	}
	return ps.judge(ctx, h)
}

// prefetch judges at once every household that the changes not yet applied
// name and that exists. The verdicts are the ones check would reach one by
// one: within a push a household's grid cannot change (a device never moves
// one), and those registered by the push itself are judged as they come.
func (ps *pushScope) prefetch(ctx context.Context, changes []syncengine.Change, applied map[string]store.AppliedChange, stored map[string]syncengine.Visit) error {
	var ids, visited []string
	for i := range changes {
		c := &changes[i]
		if _, ok := applied[c.ID]; ok {
			continue
		}
		if c.Visit != nil {
			if _, ok := stored[c.Visit.ID]; ok {
				continue
			}
		}
		switch {
		case c.Person != nil:
			ids = append(ids, c.Person.HouseholdID)
		case c.Tag != nil:
			ids = append(ids, c.Tag.HouseholdID)
		case c.Visit != nil:
			ids = append(ids, c.Visit.HouseholdIDs...)
			visited = append(visited, c.Visit.HouseholdIDs...)
		}
	}
	if len(visited) > 0 {
		slices.Sort(visited)
		var err error
		if ps.visits, err = ps.tx.VisitCounts(ctx, slices.Compact(visited)); err != nil {
			return err
		}
		for _, hh := range visited {
			if _, ok := ps.visits[hh]; !ok {
				ps.visits[hh] = 0
			}
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	ids = slices.DeleteFunc(ids, func(id string) bool {
		_, seen := ps.decisions[id]
		return seen
	})
	// The grid is all a verdict reads of a household.
	grids, err := ps.tx.HouseholdGrids(ctx, ids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		grid, ok := grids[id]
		if !ok {
			continue
		}
		allowed, err := ps.allowed(ctx, id, grid)
		if err != nil {
			return err
		}
		ps.decisions[id] = allowed
	}
	return nil
}

// allowed replays, from the start of the device's grace to now, the
// worker's grid changes and the moves of household id, now in grid, and
// reports whether it was in one of the worker's grids at any moment of it.
func (ps *pushScope) allowed(ctx context.Context, id, grid string) (bool, error) {
	if ps.now[grid] {
		return true, nil
	}
	moves, err := ps.tx.HouseholdMoves(ctx, id, ps.since)
	if err != nil {
		return false, err
	}
	return wasInScope(ps.now, ps.events, grid, moves), nil
}

// wasInScope reports whether a household now in grid, moved by moves,
// lay in one of a worker's grids at some moment since the first of
// events and moves: grids are the worker's grids now, events the worker's
// grid changes since, both oldest first.
func wasInScope(now map[string]bool, events []store.ScopeEvent, grid string, moves []store.Move) bool {
	// Wind both back to the start...
	grids := maps.Clone(now)
	for i := len(events) - 1; i >= 0; i-- {
		grids[events[i].Grid] = !events[i].Added
	}
	if len(moves) > 0 {
		grid = moves[0].From
	}
	// ...then forward, event by event.
	if grids[grid] {
		return true
	}
	for i, j := 0, 0; i < len(events) || j < len(moves); {
		if j >= len(moves) || (i < len(events) && events[i].Seq < moves[j].Seq) {
			grids[events[i].Grid] = events[i].Added
			i++
		} else {
			grid = moves[j].To
			j++
		}
		if grids[grid] {
			return true
		}
	}
	return false
}

// erasedBefore is the clock of the newest erasure of any of households, 0
// if none was erased: a change older than it was made before the erasure
// and arrives after it, and its personal data is blanked on arrival.
func (ps *pushScope) erasedBefore(ctx context.Context, households []string) (uint64, error) {
	if !ps.anyErased {
		return 0, nil
	}
	return ps.tx.HouseholdErasure(ctx, households)
}

func (ps *pushScope) markErased(kind store.EntityKind, id string) {
	ps.erased = append(ps.erased, store.ErasureMark{Kind: kind, ID: id})
}
