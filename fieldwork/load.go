package fieldwork

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/doorbook/doorbook/syncengine"
)

// Rows reads the replicated rows of one scope (a worker's grids, an org
// node's) that Load needs, from wherever a backend keeps them: the SQLite
// tables of a phone or of the server (statedb.FieldRows), or another
// database in its own dialect. Each visit reaches Load once per household
// of the scope it covers, either summed by PlainVisits or as a row of
// SpecialVisits.
//
// The methods that take a callback call it once per row, in any order
// unless said otherwise, and stop at the first error it returns, returning
// it. The row passed is only valid during the call: fn copies what it
// keeps, so an implementation may reuse one row for the next.
// fieldworktest.Run holds an implementation to this contract.
type Rows interface {
	// Households calls fn for each household of the scope that is not
	// deleted.
	Households(ctx context.Context, fn func(*HouseholdRow) error) error
	// Amendments returns the amendments of the visits to the scope's
	// households, by visit id.
	Amendments(ctx context.Context) (map[string][]syncengine.Amendment, error)
	// PlainVisits calls fn, for each household of the scope and each of its
	// visitors, with the sum of their plain visits to it: those with no
	// amendment, no revisit, no tracked finding and no details (materials,
	// findings, revisit reasons, campaign or answers), which is what most
	// visits are. InWindow counts those visited at from or later and before
	// to. Visits at until or later are left out altogether (a zero until
	// leaves none out): a report as of until. A backend may leave some
	// plain visits to SpecialVisits instead, never a visit that is not
	// plain.
	PlainVisits(ctx context.Context, from, to, until time.Time, fn func(*VisitAggregate) error) error
	// SpecialVisits calls fn for each (household of the scope, visit) pair
	// whose visit PlainVisits leaves out. Visit lacks HouseholdIDs; its
	// details may be left out too, except for the visit's first household
	// (Ord 0) and for a visit that calls for a revisit.
	SpecialVisits(ctx context.Context, fn func(*VisitRow) error) error
	// Visits returns the visits with the given ids whole, with all their
	// households, by id.
	Visits(ctx context.Context, ids []string) ([]syncengine.Visit, error)
}

// HouseholdRow is a household as reports read it.
type HouseholdRow struct {
	ID, GridID, HeadName, Address string
	// Categories: the codes of its present tags.
	Categories []string
	// MemberCount is the ledger's member count (人口数; 0 when not given),
	// Persons how many of its persons are listed (not deleted, not moved
	// away); Migrants of them are migrants (流动人口), and MovedAway more
	// persons have moved away (迁出).
	MemberCount                  int64
	Persons, Migrants, MovedAway int
}

// VisitRow is a visit as seen from one household it covers (Ord is that
// household's place in the visit's list, 0 for the first). Visit lacks
// HouseholdIDs; Tracked counts its tracked findings.
type VisitRow struct {
	HouseholdID string
	Ord         int
	Visit       syncengine.Visit
	Tracked     int
}

// VisitAggregate sums up one visitor's plain visits to one household.
type VisitAggregate struct {
	HouseholdID, VisitorID string
	Last                   time.Time
	// InWindow counts the visits in the window asked for.
	InWindow int
}

// Load analyses the households of the scope rows reads, for campaign (nil
// for none).
func Load(ctx context.Context, rows Rows, campaign *syncengine.Campaign, cats []syncengine.Category) (*Analysis, error) {
	return LoadUntil(ctx, rows, campaign, cats, time.Time{})
}

// LoadUntil is Load as of until: only the visits made before it count
// (by when they were made, as amended), and only the amendments recorded
// before it (by their clocks): an item closed off after until is still
// open, a visit voided after it still counts. A zero until is Load.
func LoadUntil(ctx context.Context, rows Rows, campaign *syncengine.Campaign, cats []syncengine.Category, until time.Time) (*Analysis, error) {
	b := NewBuilder(campaign, cats)
	err := rows.Households(ctx, func(r *HouseholdRow) error {
		b.AddHousehold(Household{ID: r.ID, GridID: r.GridID, HeadName: r.HeadName, Address: r.Address, MemberCount: r.MemberCount, Persons: r.Persons,
			Migrants: r.Migrants, MovedAway: r.MovedAway}, r.Categories)
		return nil
	})
	if err != nil {
		return nil, err
	}
	amendments, err := rows.Amendments(ctx)
	if err != nil {
		return nil, err
	}
	if !until.IsZero() {
		amendments = AmendmentsUntil(amendments, until)
	}
	// Most visits are plain: summed up by the backend per household and
	// visitor.
	var from, to time.Time
	if campaign != nil {
		from, to = campaign.Window()
	}
	err = rows.PlainVisits(ctx, from, to, until, func(a *VisitAggregate) error {
		b.AddVisits(a.HouseholdID, a.VisitorID, a.Last, a.InWindow)
		return nil
	})
	if err != nil {
		return nil, err
	}
	tracked := map[string]bool{}
	err = rows.SpecialVisits(ctx, func(r *VisitRow) error {
		view := syncengine.VisitView{Visit: r.Visit}
		if as := amendments[r.Visit.ID]; len(as) > 0 {
			view = syncengine.Effective(r.Visit, as)
		}
		if !until.IsZero() && !view.VisitedAt.Before(until) {
			return nil
		}
		b.AddVisit(r.HouseholdID, r.Ord == 0, &view)
		if r.Tracked > 0 && !view.Voided {
			tracked[r.Visit.ID] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Tracked items are few: load their visits whole.
	visits, err := rows.Visits(ctx, slices.Sorted(maps.Keys(tracked)))
	if err != nil {
		return nil, err
	}
	for _, v := range visits {
		for _, it := range syncengine.Items(syncengine.Effective(v, amendments[v.ID])) {
			b.AddItem(it)
		}
	}
	return b.Finish(), nil
}

// AmendmentsUntil keeps, of each visit's amendments, those recorded before
// until (by their clocks).
func AmendmentsUntil(byVisit map[string][]syncengine.Amendment, until time.Time) map[string][]syncengine.Amendment {
	out := make(map[string][]syncengine.Amendment, len(byVisit))
	for id, as := range byVisit {
		var kept []syncengine.Amendment
		for _, a := range as {
			if a.Clock.Time().Before(until) {
				kept = append(kept, a)
			}
		}
		if len(kept) > 0 {
			out[id] = kept
		}
	}
	return out
}

// Pages reads several pages of households as one scope: each page's rows
// for its own households, and the visits whole from the first. The pages
// must not share a household.
func Pages(pages ...Rows) Rows { return pagedRows(pages) }

type pagedRows []Rows

func (p pagedRows) Households(ctx context.Context, fn func(*HouseholdRow) error) error {
	for _, r := range p {
		if err := r.Households(ctx, fn); err != nil {
			return err
		}
	}
	return nil
}

func (p pagedRows) Amendments(ctx context.Context) (map[string][]syncengine.Amendment, error) {
	out := map[string][]syncengine.Amendment{}
	for _, r := range p {
		as, err := r.Amendments(ctx)
		if err != nil {
			return nil, err
		}
		// A group visit's amendments come with each page of its
		// households: keep them once.
		for id, a := range as {
			out[id] = a
		}
	}
	return out, nil
}

func (p pagedRows) PlainVisits(ctx context.Context, from, to, until time.Time, fn func(*VisitAggregate) error) error {
	for _, r := range p {
		if err := r.PlainVisits(ctx, from, to, until, fn); err != nil {
			return err
		}
	}
	return nil
}

func (p pagedRows) SpecialVisits(ctx context.Context, fn func(*VisitRow) error) error {
	for _, r := range p {
		if err := r.SpecialVisits(ctx, fn); err != nil {
			return err
		}
	}
	return nil
}

func (p pagedRows) Visits(ctx context.Context, ids []string) ([]syncengine.Visit, error) {
	if len(p) == 0 || len(ids) == 0 {
		return nil, nil
	}
	return p[0].Visits(ctx, ids)
}
