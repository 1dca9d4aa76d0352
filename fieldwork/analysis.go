package fieldwork

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/doorbook/doorbook/syncengine"
)

// Analysis is the households of a scope (a worker's grids, an org node) with
// what the rules derive for each, for one campaign (or none).
type Analysis struct {
	Campaign   *syncengine.Campaign
	Households []*Household // by id
	byID       map[string]*Household
	// visited: visitor → households they visited in the window.
	visited map[string]map[string]bool
	// answers: household → answers of campaign visits first covering it.
	answers map[string][]syncengine.SurveyAnswer
	items   int
	// EscalationPeriod is how long an overdue item stays with a level
	// before it goes up (syncengine.EscalationPeriod when zero): the
	// installation's item policy, set by whoever loads the analysis.
	EscalationPeriod time.Duration
}

// Builder gathers an Analysis from rows in any order: households first,
// then visits and items.
type Builder struct {
	a   *Analysis
	idx CategoryIndex
	fu  map[string]*FollowUp // newest follow-up visit per household
}

// NewBuilder starts an analysis for campaign (nil for none) under the given
// category definitions.
func NewBuilder(campaign *syncengine.Campaign, cats []syncengine.Category) *Builder {
	return &Builder{
		a: &Analysis{Campaign: campaign, byID: map[string]*Household{}, visited: map[string]map[string]bool{},
			answers: map[string][]syncengine.SurveyAnswer{}},
		idx: NewCategoryIndex(cats),
		fu:  map[string]*FollowUp{},
	}
}

// AddHousehold adds a household of the scope with its tags' categories.
func (b *Builder) AddHousehold(h Household, tags []string) {
	hh := h
	b.idx.classify(&hh, tags)
	b.a.Households = append(b.a.Households, &hh)
	b.a.byID[hh.ID] = &hh
}

// AddVisit accounts for a visit (as it now reads) to one of the households
// it covers; first tells whether that is the visit's first household, which
// its survey answers are counted against. Voided visits and households
// outside the scope are ignored.
func (b *Builder) AddVisit(householdID string, first bool, v *syncengine.VisitView) {
	h := b.a.byID[householdID]
	if h == nil || v.Voided {
		return
	}
	if v.VisitedAt.After(h.LastVisit) {
		h.LastVisit = v.VisitedAt
	}
	if len(v.RevisitReasons) > 0 {
		cur := b.fu[householdID]
		if cur == nil || v.VisitedAt.After(cur.At) || (v.VisitedAt.Equal(cur.At) && v.ID > cur.VisitID) {
			b.fu[householdID] = &FollowUp{VisitID: v.ID, At: v.VisitedAt, Due: v.RevisitDue, Reasons: v.RevisitReasons}
		}
	}
	c := b.a.Campaign
	if c == nil || !c.In(v.VisitedAt) {
		return
	}
	h.CampaignVisits++
	if b.a.visited[v.VisitorID] == nil {
		b.a.visited[v.VisitorID] = map[string]bool{}
	}
	b.a.visited[v.VisitorID][householdID] = true
	if first && v.CampaignID == c.ID && len(v.Answers) > 0 {
		b.a.answers[householdID] = append(b.a.answers[householdID], v.Answers...)
	}
}

// AddVisits accounts for a visitor's plain visits to a household (not
// voided, no revisit, no answers) by their sum: the newest, and how many
// fall in the campaign's window (Analysis counts them as AddVisit would).
func (b *Builder) AddVisits(householdID, visitorID string, last time.Time, inWindow int) {
	h := b.a.byID[householdID]
	if h == nil {
		return
	}
	if last.After(h.LastVisit) {
		h.LastVisit = last
	}
	if b.a.Campaign == nil || inWindow == 0 {
		return
	}
	h.CampaignVisits += inWindow
	if b.a.visited[visitorID] == nil {
		b.a.visited[visitorID] = map[string]bool{}
	}
	b.a.visited[visitorID][householdID] = true
}

// AddItem attributes a tracked item to the first of its households in scope.
func (b *Builder) AddItem(it syncengine.Item) {
	for _, id := range it.HouseholdIDs {
		if h := b.a.byID[id]; h != nil {
			h.Items = append(h.Items, it)
			b.a.items++
			return
		}
	}
}

// Finish settles the follow-ups and returns the analysis.
func (b *Builder) Finish() *Analysis {
	for id, fu := range b.fu {
		h := b.a.byID[id]
		// A visit after the follow-up's visit closes it.
		if !h.LastVisit.After(fu.At) {
			h.FollowUp = fu
		}
	}
	slices.SortFunc(b.a.Households, func(x, y *Household) int { return cmp.Compare(x.ID, y.ID) })
	return b.a
}

// Household returns a household of the analysis.
func (a *Analysis) Household(id string) *Household { return a.byID[id] }

// Rate is how a question was answered.
type Rate struct {
	Question syncengine.Question
	Answered int
	Positive int
}

// Figures are a campaign's progress over a set of households.
type Figures struct {
	Households         int
	Visited            int
	KeyGroupHouseholds int
	KeyGroupVisited    int
	MustVisitOverdue   int
	RevisitsOpen       int
	RevisitsOverdue    int
	ItemsOpen          int
	ItemsOverdue       int
	Survey             []Rate
	// The person–house linkage (人房关联, seed 001): Members sums the
	// member counts the ledger gives, MembersLinked how many of them have
	// a person listed in their household (each household counts up to its
	// count), MembersMismatch the households whose persons listed are not
	// their member count.
	Members, MembersLinked, MembersMismatch int
	// Persons listed (not moved away), of them migrants (流动人口), and
	// persons moved away (迁出).
	Persons, Migrants, MovedAway int
}

// LinkageRate is the people linked to their household over the people
// the ledger counts (人房关联率), 0 when it counts none.
func (f *Figures) LinkageRate() float64 { return ratio(f.MembersLinked, f.Members) }

// Coverage is visited households over all, 0 when there are none.
func (f *Figures) Coverage() float64 { return ratio(f.Visited, f.Households) }

// KeyGroupRate is visited key-group households over all of them.
func (f *Figures) KeyGroupRate() float64 { return ratio(f.KeyGroupVisited, f.KeyGroupHouseholds) }

func ratio(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// Figures computes the figures of the households include accepts (all with
// nil) at now.
func (a *Analysis) Figures(now time.Time, include func(*Household) bool) Figures {
	const in = "in"
	by := a.FiguresBy(now, func(h *Household) string {
		if include != nil && !include(h) {
			return ""
		}
		return in
	})
	if f := by[in]; f != nil {
		return *f
	}
	return a.EmptyFigures()
}

// FiguresBy computes at now the figures of each group of households, in
// one pass over them: key names a household's group, "" none. A group
// with no households has no entry.
func (a *Analysis) FiguresBy(now time.Time, key func(*Household) string) map[string]*Figures {
	by := map[string]*Figures{}
	for _, h := range a.Households {
		k := key(h)
		if k == "" {
			continue
		}
		f := by[k]
		if f == nil {
			nf := a.EmptyFigures()
			f = &nf
			by[k] = f
		}
		a.add(f, h, now)
	}
	return by
}

// EmptyFigures are the figures of no household: the campaign's questions,
// none answered.
func (a *Analysis) EmptyFigures() Figures {
	var f Figures
	if a.Campaign != nil {
		for _, q := range a.Campaign.Questions() {
			f.Survey = append(f.Survey, Rate{Question: q})
		}
	}
	return f
}

// add counts h into f at now.
func (a *Analysis) add(f *Figures, h *Household, now time.Time) {
	f.Households++
	if h.VisitedInCampaign() {
		f.Visited++
	}
	f.Persons += h.Persons
	f.Migrants += h.Migrants
	f.MovedAway += h.MovedAway
	if h.MemberCount > 0 {
		f.Members += int(h.MemberCount)
		f.MembersLinked += int(min(int64(h.Persons), h.MemberCount))
		if h.MembersMismatch() {
			f.MembersMismatch++
		}
	}
	if h.KeyGroup {
		f.KeyGroupHouseholds++
		if h.VisitedInCampaign() {
			f.KeyGroupVisited++
		}
	}
	if h.MustVisit() && h.PastInterval(now) {
		f.MustVisitOverdue++
	}
	if h.FollowUp != nil {
		f.RevisitsOpen++
		if h.RevisitOverdue(now) {
			f.RevisitsOverdue++
		}
	}
	open, overdue := h.OpenItems(now)
	f.ItemsOpen += open
	f.ItemsOverdue += overdue
	for _, ans := range a.answers[h.ID] {
		for i := range f.Survey {
			if q := f.Survey[i].Question; q.Code == ans.Question {
				f.Survey[i].Answered++
				if ans.Value >= q.PositiveFrom {
					f.Survey[i].Positive++
				}
			}
		}
	}
}

// Escalated counts the items of the included households that have been
// escalated, at now, to an org level of level or above (a smaller
// number): what a node of that level answers for (see
// syncengine.Item.EscalatedTo). Like the other item figures, an item of a
// group visit counts for each household.
func (a *Analysis) Escalated(now time.Time, level int32, include func(*Household) bool) int {
	return a.EscalatedBy(now, level, func(h *Household) string {
		if include != nil && !include(h) {
			return ""
		}
		return "in"
	})["in"]
}

// EscalatedBy is Escalated for each group of households, in one pass: key
// names a household's group, "" none.
func (a *Analysis) EscalatedBy(now time.Time, level int32, key func(*Household) string) map[string]int {
	by := map[string]int{}
	for _, h := range a.Households {
		k := ""
		for i := range h.Items {
			if l := h.Items[i].EscalatedAfter(now, a.EscalationPeriod); l != 0 && l <= level {
				if k == "" {
					if k = key(h); k == "" {
						break
					}
				}
				by[k]++
			}
		}
	}
	return by
}

// AddVisitedElsewhere counts, toward visitor's quota, a visit at at to a
// household the analysis does not hold (it has moved out of these grids): a
// person's quota counts the households they visited, wherever those are
// now, so that a phone after a move and the server's report agree.
func (a *Analysis) AddVisitedElsewhere(visitor, household string, at time.Time) {
	if a.Campaign == nil || !a.Campaign.In(at) {
		return
	}
	if a.visited[visitor] == nil {
		a.visited[visitor] = map[string]bool{}
	}
	a.visited[visitor][household] = true
}

// VisitedBy counts the distinct households visitor visited in the
// campaign's window (see AddVisitedElsewhere).
func (a *Analysis) VisitedBy(visitor string) int { return len(a.visited[visitor]) }

// Visitors lists who visited in the window, by id.
func (a *Analysis) Visitors() []string {
	ids := make([]string, 0, len(a.visited))
	for id := range a.visited {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Metric names the households behind one figure.
type Metric int

const (
	MetricNotVisited Metric = iota + 1
	MetricVisited
	MetricKeyGroupNotVisited
	MetricMustVisitOverdue
	MetricRevisitsOpen
	MetricRevisitsOverdue
	MetricItemsOpen
	MetricItemsOverdue
	// MetricMembersMismatch: households whose persons listed are not
	// their member count.
	MetricMembersMismatch
)

// Match reports whether h is behind the metric at now, and why.
func (m Metric) Match(h *Household, now time.Time) (bool, string) {
	switch m {
	case MetricNotVisited:
		return !h.VisitedInCampaign(), lastVisit(h)
	case MetricVisited:
		return h.VisitedInCampaign(), fmt.Sprintf("%d visits in the campaign", h.CampaignVisits)
	case MetricKeyGroupNotVisited:
		return h.KeyGroup && !h.VisitedInCampaign(), strings.Join(h.Categories, ",") + "; " + lastVisit(h)
	case MetricMustVisitOverdue:
		return h.MustVisit() && h.PastInterval(now), intervalReason(h)
	case MetricRevisitsOpen:
		return h.FollowUp != nil, revisitReason(h)
	case MetricRevisitsOverdue:
		return h.RevisitOverdue(now), revisitReason(h)
	case MetricItemsOpen:
		open, _ := h.OpenItems(now)
		return open > 0, itemsReason(h, now)
	case MetricItemsOverdue:
		_, overdue := h.OpenItems(now)
		return overdue > 0, itemsReason(h, now)
	case MetricMembersMismatch:
		return h.MembersMismatch(), fmt.Sprintf("%d persons listed of %d members", h.Persons, h.MemberCount)
	}
	return false, ""
}

const day = "2006-01-02"

func lastVisit(h *Household) string {
	if h.LastVisit.IsZero() {
		return "never visited"
	}
	return "last visited " + h.LastVisit.Format(day)
}

func intervalReason(h *Household) string {
	return fmt.Sprintf("%s: %s, every %d days", strings.Join(h.Categories, ","), lastVisit(h), h.IntervalDays)
}

func revisitReason(h *Household) string {
	if h.FollowUp == nil {
		return ""
	}
	reasons := make([]string, len(h.FollowUp.Reasons))
	for i, r := range h.FollowUp.Reasons {
		reasons[i] = r.String()
	}
	return fmt.Sprintf("revisit due %s (%s, visit of %s)", h.FollowUp.Due.Format(day), strings.Join(reasons, ","), h.FollowUp.At.Format(day))
}

func itemsReason(h *Household, now time.Time) string {
	var parts []string
	for _, it := range h.Items {
		if !it.State.Open() {
			continue
		}
		s := fmt.Sprintf("%s %s", it.Kind, it.State)
		if !it.Deadline.IsZero() {
			s += " by " + it.Deadline.Format(day)
			if it.Overdue(now) {
				s += " (overdue)"
			}
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// ItemTally counts the analysis's tracked items, each once however many
// households it covers: those reported in [from, until), and those closed
// off (销号).
func (a *Analysis) ItemTally(from, until time.Time) (reported, closedOff int) {
	seen := map[string]bool{}
	for _, h := range a.Households {
		for _, it := range h.Items {
			k := fmt.Sprint(it.VisitID, "/", it.Finding)
			if seen[k] {
				continue
			}
			seen[k] = true
			if !it.ReportedAt.Before(from) && it.ReportedAt.Before(until) {
				reported++
			}
			if it.State == syncengine.ItemClosed {
				closedOff++
			}
		}
	}
	return reported, closedOff
}
