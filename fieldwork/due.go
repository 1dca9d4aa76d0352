package fieldwork

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// DueKind orders what a worker should do next.
type DueKind int

const (
	// DueRevisit: a follow-up past its due date.
	DueRevisit DueKind = iota + 1
	// DueInterval: a household in a category with a revisit interval, past
	// it (never visited counts).
	DueInterval
	// DueMustVisit: a must-visit household not yet visited in the campaign.
	DueMustVisit
	// DueCampaign: any other household not yet visited in the campaign.
	DueCampaign
)

func (k DueKind) String() string {
	switch k {
	case DueRevisit:
		return "revisit"
	case DueInterval:
		return "interval"
	case DueMustVisit:
		return "must_visit"
	case DueCampaign:
		return "campaign"
	}
	return fmt.Sprintf("due(%d)", int(k))
}

// DueItem is one household to visit, and why.
type DueItem struct {
	Kind      DueKind
	Household *Household
	Reason    string
	// Since is when it became due (zero if it always was).
	Since time.Time
}

// Due lists what to visit at now, most urgent first: overdue revisits
// (oldest due first), households past their category's interval (longest
// past first), must-visit households not yet visited in the campaign, then
// the campaign's other unvisited households (by grid and address). A
// household is listed once, under its most urgent reason. Without a
// campaign only the first two kinds apply.
func (a *Analysis) Due(now time.Time) []DueItem {
	var out []DueItem
	for _, h := range a.Households {
		switch {
		case h.RevisitOverdue(now):
			out = append(out, DueItem{DueRevisit, h, revisitReason(h), h.FollowUp.Due})
		case h.MustVisit() && h.PastInterval(now):
			out = append(out, DueItem{DueInterval, h, intervalReason(h), h.NextDue()})
		case a.Campaign != nil && !h.VisitedInCampaign() && h.MustVisit():
			out = append(out, DueItem{DueMustVisit, h, fmt.Sprintf("%s: not yet visited in %s", strings.Join(h.Categories, ","), a.Campaign.Name.Value), time.Time{}})
		case a.Campaign != nil && !h.VisitedInCampaign():
			out = append(out, DueItem{DueCampaign, h, "not yet visited in " + a.Campaign.Name.Value, time.Time{}})
		}
	}
	slices.SortStableFunc(out, func(x, y DueItem) int {
		return cmp.Or(cmp.Compare(x.Kind, y.Kind), x.Since.Compare(y.Since),
			cmp.Compare(x.Household.GridID, y.Household.GridID), cmp.Compare(x.Household.Address, y.Household.Address),
			cmp.Compare(x.Household.ID, y.Household.ID))
	})
	return out
}

// GridCoverage is a grid's coverage in the campaign.
type GridCoverage struct {
	GridID     string
	Households int
	Visited    int
}

// Progress is a worker's progress in the campaign.
type Progress struct {
	// Visited counts the distinct households the worker visited in the
	// window; Quota is their role's quota (0 when none).
	Visited int
	Quota   uint32
	Grids   []GridCoverage
}

// Progress computes visitor's progress against the quota of role (a
// WorkerRole number), and the coverage of each grid of the analysis.
func (a *Analysis) Progress(visitor string, role int32) Progress {
	p := Progress{Visited: a.VisitedBy(visitor)}
	if a.Campaign != nil {
		p.Quota = a.Campaign.QuotaFor(role)
	}
	byGrid := map[string]*GridCoverage{}
	for _, h := range a.Households {
		g := byGrid[h.GridID]
		if g == nil {
			g = &GridCoverage{GridID: h.GridID}
			byGrid[h.GridID] = g
		}
		g.Households++
		if h.VisitedInCampaign() {
			g.Visited++
		}
	}
	for _, g := range byGrid {
		p.Grids = append(p.Grids, *g)
	}
	slices.SortFunc(p.Grids, func(x, y GridCoverage) int { return cmp.Compare(x.GridID, y.GridID) })
	return p
}
