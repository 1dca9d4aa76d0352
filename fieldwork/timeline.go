package fieldwork

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

// TimelineRows are Rows that can read their plain visits one by one.
type TimelineRows interface {
	Rows
	// PlainVisitTimes calls fn for each plain visit (as PlainVisits has
	// them) made in [from, to), and for at least the newest made before
	// from of each household and visitor that has one: with each of its
	// households of the scope, the household's grid, the visitor and the
	// time of the visit in Unix milliseconds. The byte slices are only
	// valid during the call.
	PlainVisitTimes(ctx context.Context, from, to time.Time, fn func(household, grid, visitor []byte, at int64) error) error
}

// Timeline holds a scope's plain visits over a window [from, to), as of
// any moment from from to to: per household and visitor, the newest made
// before from and the times of those made in the window. A campaign's weekly series
// reports as of each week's end; summing every visit of the scope once per
// series costs a street over a second, while a Timeline kept between
// series reads again only the households changed since (With), as a
// Snapshot does. A Timeline is never changed once made.
type Timeline struct {
	from, to   int64
	households map[string][]timelinePair
}

// timelinePair is what a Timeline holds of one household and visitor.
type timelinePair struct {
	visitor string
	// before is the newest visit made before the window, if any.
	before    int64
	hasBefore bool
	// times are those of the visits in the window, in order.
	times []int64
}

// ReadTimeline reads through rows the timeline of their plain visits over
// [from, to), keeping the households whose grid keep accepts (all with
// nil).
func ReadTimeline(ctx context.Context, rows TimelineRows, from, to time.Time, keep func(grid string) bool) (*Timeline, error) {
	t := &Timeline{from: from.UnixMilli(), to: to.UnixMilli(), households: map[string][]timelinePair{}}
	// Half a million visits come from some fifty thousand households and
	// a few hundred visitors: each id is made a string once.
	visitors := map[string]string{}
	grids := map[string]bool{}
	var cur []byte
	var pairs []timelinePair
	skip := false
	flush := func() {
		if !skip && len(pairs) > 0 {
			t.households[string(cur)] = pairs
		}
	}
	err := rows.PlainVisitTimes(ctx, from, to, func(household, grid, visitor []byte, at int64) error {
		if string(household) != string(cur) || cur == nil {
			flush()
			cur = append(cur[:0:0], household...)
			ok, seen := grids[string(grid)]
			if !seen {
				ok = keep == nil || keep(string(grid))
				grids[string(grid)] = ok
			}
			skip, pairs = !ok, t.households[string(household)]
		}
		if skip || at >= t.to {
			return nil
		}
		v, ok := visitors[string(visitor)]
		if !ok {
			v = string(visitor)
			visitors[v] = v
		}
		i := slices.IndexFunc(pairs, func(p timelinePair) bool { return p.visitor == v })
		if i < 0 {
			pairs = append(pairs, timelinePair{visitor: v})
			i = len(pairs) - 1
		}
		p := &pairs[i]
		if at >= t.from {
			p.times = append(p.times, at)
		} else if !p.hasBefore || at > p.before {
			p.before, p.hasBefore = at, true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	flush()
	for _, pairs := range t.households {
		for i := range pairs {
			slices.Sort(pairs[i].times)
		}
	}
	return t, nil
}

// With is t with the households of ids as fresh holds them: those of ids
// that fresh lacks are left out. fresh must be read over the same window.
func (t *Timeline) With(fresh *Timeline, ids []string) (*Timeline, error) {
	if fresh.from != t.from || fresh.to != t.to {
		return nil, fmt.Errorf("fieldwork: a timeline of [%d, %d) cannot take rows of [%d, %d)", t.from, t.to, fresh.from, fresh.to)
	}
	out := &Timeline{from: t.from, to: t.to, households: maps.Clone(t.households)}
	for _, id := range ids {
		delete(out.households, id)
	}
	maps.Copy(out.households, fresh.households)
	return out, nil
}

// Len is how many households t holds visits of.
func (t *Timeline) Len() int { return len(t.households) }

// Holds reports whether t answers a series over [from, to) as of untils:
// its own window, each until within it.
func (t *Timeline) Holds(from, to time.Time, untils []time.Time) bool {
	return from.UnixMilli() == t.from && to.UnixMilli() == t.to && inWindow(from, to, untils)
}

// inWindow reports whether each of untils lies from from to to, the
// moments a Timeline over [from, to) answers.
func inWindow(from, to time.Time, untils []time.Time) bool {
	for _, u := range untils {
		if u.UnixMilli() < from.UnixMilli() || u.UnixMilli() > to.UnixMilli() {
			return false
		}
	}
	return true
}

// PlainVisitsSeries calls fn(i, a) for each a that PlainVisits(ctx, from,
// to, untils[i], ...) would, for each i. t must hold them (Holds).
func (t *Timeline) PlainVisitsSeries(ctx context.Context, from, to time.Time, untils []time.Time, fn func(i int, a *VisitAggregate) error) error {
	if !t.Holds(from, to, untils) {
		return fmt.Errorf("fieldwork: a timeline of [%v, %v) asked for [%v, %v) as of %v", time.UnixMilli(t.from).UTC(), time.UnixMilli(t.to).UTC(), from, to, untils)
	}
	cuts := make([]int64, len(untils))
	for i, u := range untils {
		cuts[i] = u.UnixMilli()
	}
	for h, pairs := range t.households {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, p := range pairs {
			for i, cut := range cuts {
				// The visits in the window made before the cut, all of
				// them in the window's count.
				n, _ := slices.BinarySearch(p.times, cut)
				a := VisitAggregate{HouseholdID: h, VisitorID: p.visitor, InWindow: n}
				switch {
				case n > 0:
					a.Last = time.UnixMilli(p.times[n-1]).UTC()
				case p.hasBefore:
					a.Last = time.UnixMilli(p.before).UTC()
				default:
					continue
				}
				if err := fn(i, &a); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
