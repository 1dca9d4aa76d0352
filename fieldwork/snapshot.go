package fieldwork

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/doorbook/doorbook/syncengine"
)

// Snapshot holds what Rows reads of a scope, by household, for one window
// of plain visits and no until: a scope's rows read once and kept, so that
// a later analysis reads again only the households changed since (With)
// and runs the field rules over the rest from memory (Rows). A Snapshot is
// never changed once made; With makes another that shares the rows of the
// households it keeps.
type Snapshot struct {
	from, to   time.Time
	households map[string]*snapshotHousehold
	// order holds the households by id: an analysis keeps its households
	// in that order, and sorting a street's takes longer than walking
	// them sorted (a series makes one analysis a week).
	order []*snapshotHousehold
}

// snapshotHousehold is what Rows reads of one household.
type snapshotHousehold struct {
	row     HouseholdRow
	plain   []VisitAggregate
	special []VisitRow
	// amendments are those of the visits of special, by visit; visits the
	// tracked ones whole, by id.
	amendments map[string][]syncengine.Amendment
	visits     map[string]syncengine.Visit
}

// ReadSnapshot reads through rows what an analysis with plain visits
// summed over [from, to) needs, keeping the households keep accepts (all
// with nil).
func ReadSnapshot(ctx context.Context, rows Rows, from, to time.Time, keep func(*HouseholdRow) bool) (*Snapshot, error) {
	return readSnapshot(ctx, rows, from, to, keep, true)
}

// readSnapshot is ReadSnapshot, with the plain visits left unread unless
// plain.
func readSnapshot(ctx context.Context, rows Rows, from, to time.Time, keep func(*HouseholdRow) bool, plain bool) (*Snapshot, error) {
	s := &Snapshot{from: from, to: to, households: map[string]*snapshotHousehold{}}
	err := rows.Households(ctx, func(r *HouseholdRow) error {
		if keep == nil || keep(r) {
			s.households[r.ID] = &snapshotHousehold{row: *r}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	amendments, err := rows.Amendments(ctx)
	if err != nil {
		return nil, err
	}
	if plain {
		err = rows.PlainVisits(ctx, from, to, time.Time{}, func(a *VisitAggregate) error {
			if h := s.households[a.HouseholdID]; h != nil {
				h.plain = append(h.plain, *a)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	trackedBy := map[string][]*snapshotHousehold{}
	err = rows.SpecialVisits(ctx, func(r *VisitRow) error {
		h := s.households[r.HouseholdID]
		if h == nil {
			return nil
		}
		h.special = append(h.special, *r)
		if as := amendments[r.Visit.ID]; len(as) > 0 {
			if h.amendments == nil {
				h.amendments = map[string][]syncengine.Amendment{}
			}
			h.amendments[r.Visit.ID] = as
		}
		if r.Tracked > 0 {
			trackedBy[r.Visit.ID] = append(trackedBy[r.Visit.ID], h)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.sort()
	if len(trackedBy) == 0 {
		return s, nil
	}
	visits, err := rows.Visits(ctx, slices.Sorted(maps.Keys(trackedBy)))
	if err != nil {
		return nil, err
	}
	for _, v := range visits {
		for _, h := range trackedBy[v.ID] {
			if h.visits == nil {
				h.visits = map[string]syncengine.Visit{}
			}
			h.visits[v.ID] = v
		}
	}
	return s, nil
}

// With is s with the households of ids as fresh holds them: those of ids
// that fresh lacks (deleted, or moved out of the scope) are left out. fresh
// must be read over the same window.
func (s *Snapshot) With(fresh *Snapshot, ids []string) (*Snapshot, error) {
	if !fresh.from.Equal(s.from) || !fresh.to.Equal(s.to) {
		return nil, fmt.Errorf("fieldwork: a snapshot of [%v, %v) cannot take rows of [%v, %v)", s.from, s.to, fresh.from, fresh.to)
	}
	out := &Snapshot{from: s.from, to: s.to, households: maps.Clone(s.households)}
	for _, id := range ids {
		delete(out.households, id)
	}
	for id, h := range fresh.households {
		out.households[id] = h
	}
	// The households kept, then those taken from fresh, in one order.
	gone := make(map[string]bool, len(ids)+len(fresh.households))
	for _, id := range ids {
		gone[id] = true
	}
	for id := range fresh.households {
		gone[id] = true
	}
	out.order = make([]*snapshotHousehold, 0, len(out.households))
	old, add := s.order, fresh.order
	for len(old) > 0 || len(add) > 0 {
		switch {
		case len(old) > 0 && gone[old[0].row.ID]:
			old = old[1:]
		case len(add) == 0 || len(old) > 0 && old[0].row.ID < add[0].row.ID:
			out.order, old = append(out.order, old[0]), old[1:]
		default:
			out.order, add = append(out.order, add[0]), add[1:]
		}
	}
	return out, nil
}

// sort makes s.order.
func (s *Snapshot) sort() {
	s.order = slices.SortedFunc(maps.Values(s.households), func(a, b *snapshotHousehold) int { return strings.Compare(a.row.ID, b.row.ID) })
}

// Len is how many households s holds.
func (s *Snapshot) Len() int { return len(s.households) }

// Rows reads s as the scope it was read from. Its PlainVisits answers
// s's window alone, with no until.
func (s *Snapshot) Rows() Rows { return snapshotRows{s} }

type snapshotRows struct{ s *Snapshot }

func (r snapshotRows) Households(ctx context.Context, fn func(*HouseholdRow) error) error {
	for _, h := range r.s.order {
		row := h.row
		if err := fn(&row); err != nil {
			return err
		}
	}
	return nil
}

func (r snapshotRows) Amendments(ctx context.Context) (map[string][]syncengine.Amendment, error) {
	out := map[string][]syncengine.Amendment{}
	for _, h := range r.s.order {
		for id, as := range h.amendments {
			out[id] = as
		}
	}
	return out, nil
}

func (r snapshotRows) PlainVisits(ctx context.Context, from, to, until time.Time, fn func(*VisitAggregate) error) error {
	if !from.Equal(r.s.from) || !to.Equal(r.s.to) || !until.IsZero() {
		return fmt.Errorf("fieldwork: a snapshot of [%v, %v) read for [%v, %v) until %v", r.s.from, r.s.to, from, to, until)
	}
	for _, h := range r.s.order {
		for i := range h.plain {
			a := h.plain[i]
			if err := fn(&a); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r snapshotRows) SpecialVisits(ctx context.Context, fn func(*VisitRow) error) error {
	for _, h := range r.s.order {
		for i := range h.special {
			v := h.special[i]
			if err := fn(&v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r snapshotRows) Visits(ctx context.Context, ids []string) ([]syncengine.Visit, error) {
	found := map[string]syncengine.Visit{}
	for _, h := range r.s.order {
		for id, v := range h.visits {
			found[id] = v
		}
	}
	out := make([]syncengine.Visit, 0, len(ids))
	for _, id := range ids {
		v, ok := found[id]
		if !ok {
			return nil, fmt.Errorf("fieldwork: visit %s is not a tracked visit of the snapshot", id)
		}
		out = append(out, v)
	}
	return out, nil
}
