// Package fieldwork owns the field rules of DOMAIN.md: what is due for a
// worker (the due list: revisits, categories' intervals, must-visit
// households, coverage), a campaign's progress (coverage, key-group rate,
// quotas, survey rates), the report metrics behind each figure, and the
// state of tracked items. The rules are pure functions of the replicated
// rows, so a phone computing its due list offline and the server computing
// an admin's report can never disagree.
//
// The package is pure: it imports no SQL, no database/sql, no storage and
// no server package, only syncengine. Load takes its rows from a Rows,
// which each backend implements in its own dialect (statedb.FieldRows for
// the SQLite tables of the phone and the server), and
// fieldwork/fieldworktest holds every implementation to the same contract.
//
// The rules, in one place:
//   - A visit counts as long as it is not voided, at its corrected date.
//   - A household's follow-up (回访) is open from the newest visit that
//     called for one until any later visit to the household; it is overdue
//     after its due date.
//   - A household's categories are its tags that name a defined, undeleted
//     category. A sub-group takes its group's interval and key-group flag
//     when it has none of its own. The household's interval is the shortest
//     of its categories'; it is past its interval when never visited or last
//     visited more than that many days ago.
//   - Coverage counts the households in a grid now (not deleted), visited at
//     least once in the campaign's window, whoever visited and wherever the
//     household was at the time: a household moved in mid-campaign counts
//     where it is, with its visits.
//   - A person's quota counts the distinct households they visited in the
//     window among the households reported on; a group visit counts for
//     each household it covers.
//   - Survey rates count each visit's answers once.
package fieldwork

import (
	"slices"
	"time"

	"github.com/doorbook/doorbook/syncengine"
)

// Household is one household as the rules see it.
type Household struct {
	ID       string
	GridID   string
	HeadName string
	Address  string
	// MemberCount is the ledger's member count (0 when not given);
	// Persons how many persons are listed in the household (not moved
	// away), Migrants how many of those are migrants, MovedAway how many
	// more have moved away.
	MemberCount                  int64
	Persons, Migrants, MovedAway int
	// Categories: the household's tags that name a defined category.
	Categories []string
	KeyGroup   bool
	// IntervalDays is the shortest revisit interval of its categories; 0
	// when none has one.
	IntervalDays int64

	LastVisit time.Time
	// CampaignVisits counts visits in the campaign's window.
	CampaignVisits int
	FollowUp       *FollowUp
	Items          []syncengine.Item
}

// Clone is a copy of h that shares nothing with it.
func (h *Household) Clone() *Household {
	c := *h
	c.Categories = slices.Clone(h.Categories)
	if h.FollowUp != nil {
		fu := *h.FollowUp
		fu.Reasons = slices.Clone(fu.Reasons)
		c.FollowUp = &fu
	}
	c.Items = slices.Clone(h.Items)
	for i := range c.Items {
		c.Items[i].HouseholdIDs, c.Items[i].CoUnits = slices.Clone(c.Items[i].HouseholdIDs), slices.Clone(c.Items[i].CoUnits)
	}
	return &c
}

// MembersMismatch reports whether the household's member count is given
// and its persons listed are another number: its people are not all
// linked to it (人房关联), or the count is wrong.
func (h *Household) MembersMismatch() bool {
	return h.MemberCount > 0 && int64(h.Persons) != h.MemberCount
}

// MustVisit reports whether the household is in a must-visit category.
func (h *Household) MustVisit() bool { return len(h.Categories) > 0 }

// VisitedInCampaign reports whether any visit in the window reached it.
func (h *Household) VisitedInCampaign() bool { return h.CampaignVisits > 0 }

// NextDue is when the household's interval lapses; zero when it has none,
// and the zero time's successor (always past) when never visited.
func (h *Household) NextDue() time.Time {
	if h.IntervalDays <= 0 {
		return time.Time{}
	}
	if h.LastVisit.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return h.LastVisit.AddDate(0, 0, int(h.IntervalDays))
}

// PastInterval reports whether the household's interval has lapsed at now.
func (h *Household) PastInterval(now time.Time) bool {
	due := h.NextDue()
	return !due.IsZero() && now.After(due)
}

// RevisitOverdue reports whether its follow-up is open past its due date.
func (h *Household) RevisitOverdue(now time.Time) bool {
	return h.FollowUp != nil && now.After(h.FollowUp.Due)
}

// OpenItems counts the household's items not yet resolved, and those of
// them past their deadline.
func (h *Household) OpenItems(now time.Time) (open, overdue int) {
	for i := range h.Items {
		if h.Items[i].State.Open() {
			open++
			if h.Items[i].Overdue(now) {
				overdue++
			}
		}
	}
	return open, overdue
}

// FollowUp is an open follow-up visit (回访) due for a household.
type FollowUp struct {
	VisitID string
	At      time.Time
	Due     time.Time
	Reasons []syncengine.RevisitReason
}

// CategoryIndex resolves a household's tags against the defined categories.
type CategoryIndex map[string]syncengine.Category

// NewCategoryIndex indexes the undeleted categories.
func NewCategoryIndex(cats []syncengine.Category) CategoryIndex {
	idx := CategoryIndex{}
	for _, c := range cats {
		if !c.Deleted.Value {
			idx[c.Code] = c
		}
	}
	return idx
}

// rule is a category's effective interval and key-group flag, its group's
// where it has none of its own.
func (idx CategoryIndex) rule(code string) (days int64, key bool, ok bool) {
	c, ok := idx[code]
	if !ok {
		return 0, false, false
	}
	days, key = c.RevisitDays.Value, c.KeyGroup.Value
	if parent, ok := idx[c.ParentCode.Value]; ok {
		if days == 0 {
			days = parent.RevisitDays.Value
		}
		key = key || parent.KeyGroup.Value
	}
	return days, key, true
}

// classify sets a household's categories, key-group flag and interval from
// its tags.
func (idx CategoryIndex) classify(h *Household, tags []string) {
	h.Categories, h.KeyGroup, h.IntervalDays = nil, false, 0
	tags = slices.Clone(tags) // the caller's slice stays as it was
	slices.Sort(tags)
	for _, t := range slices.Compact(tags) {
		days, key, ok := idx.rule(t)
		if !ok {
			continue
		}
		h.Categories = append(h.Categories, t)
		h.KeyGroup = h.KeyGroup || key
		if days > 0 && (h.IntervalDays == 0 || days < h.IntervalDays) {
			h.IntervalDays = days
		}
	}
}
