package fieldwork

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/syncengine"
)

// Load analyses the households of grids as stored in q's statedb tables, for
// campaign (nil for none).
func Load(ctx context.Context, q statedb.Querier, grids []string, campaign *syncengine.Campaign, cats []syncengine.Category) (*Analysis, error) {
	b := NewBuilder(campaign, cats)
	err := statedb.ScanHouseholds(ctx, q, grids, func(r *statedb.HouseholdRow) error {
		b.AddHousehold(Household{ID: r.ID, GridID: r.GridID, HeadName: r.HeadName, Address: r.Address}, r.Categories)
		return nil
	})
	if err != nil {
		return nil, err
	}
	amendments, err := statedb.AmendmentsInGrids(ctx, q, grids)
	if err != nil {
		return nil, err
	}
	// Most visits are plain: summed up by SQL per household and visitor.
	var from, to time.Time
	if campaign != nil {
		from, to = campaign.Window()
	}
	err = statedb.ScanPlainVisits(ctx, q, grids, from, to, func(a *statedb.VisitAggregate) error {
		b.AddVisits(a.HouseholdID, a.VisitorID, a.Last, a.InWindow)
		return nil
	})
	if err != nil {
		return nil, err
	}
	tracked := map[string]bool{}
	err = statedb.ScanSpecialVisits(ctx, q, grids, func(r *statedb.VisitRow) error {
		view := syncengine.VisitView{Visit: r.Visit}
		if as := amendments[r.Visit.ID]; len(as) > 0 {
			view = syncengine.Effective(r.Visit, as)
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
	visits, err := statedb.Visits(ctx, q, slices.Sorted(maps.Keys(tracked)))
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
