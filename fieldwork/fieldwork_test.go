package fieldwork_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	se "github.com/doorbook/doorbook/syncengine"
)

// Fixed ids of the tests. Households hh1..hh8 are in the scope of the
// scenarios that name them; hhOut never is.
const (
	campaignID      = "00000000-0000-7000-8000-00000000c001"
	otherCampaignID = "00000000-0000-7000-8000-00000000c002"
	workerA         = "00000000-0000-7000-8000-00000000b001"
	workerB         = "00000000-0000-7000-8000-00000000b002"
	grid1           = "00000000-0000-7000-8000-00000000a001"
	grid2           = "00000000-0000-7000-8000-00000000a002"
	hh1             = "00000000-0000-7000-8000-000000000001"
	hh2             = "00000000-0000-7000-8000-000000000002"
	hh3             = "00000000-0000-7000-8000-000000000003"
	hh4             = "00000000-0000-7000-8000-000000000004"
	hh5             = "00000000-0000-7000-8000-000000000005"
	hh6             = "00000000-0000-7000-8000-000000000006"
	hh7             = "00000000-0000-7000-8000-000000000007"
	hh8             = "00000000-0000-7000-8000-000000000008"
	hhOut           = "00000000-0000-7000-8000-000000000099"
)

// The campaign runs through April 2026: [Apr 1 00:00, May 1 00:00) UTC.
var (
	campStart = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	campEnd   = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
)

// apr is a time on day d of April 2026, at hour h UTC.
func apr(d, h int) time.Time { return time.Date(2026, 4, d, h, 0, 0, 0, time.UTC) }

// mar is a time on day d of March 2026, at hour h UTC (before the campaign).
func mar(d, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.UTC) }

func clock(n uint64) se.Clock { return se.Clock{HLC: n, Node: 1} }

// visitID is the id of the n-th visit of a test.
func visitID(n int) string { return fmt.Sprintf("00000000-0000-7000-8000-0000000f%04d", n) }

// cat defines a category.
func cat(code, parent string, days int64, key bool) se.Category {
	return se.Category{
		Code:        code,
		NameEN:      se.NewRegister(code, clock(1)),
		ParentCode:  se.NewRegister(parent, clock(1)),
		RevisitDays: se.NewRegister(days, clock(1)),
		KeyGroup:    se.NewRegister(key, clock(1)),
	}
}

// categories is the catalogue of the tests.
func categories() []se.Category {
	retired := cat("retired", "", 7, true)
	retired.Deleted = se.NewRegister(true, clock(2))
	return []se.Category{
		cat("petitioner", "", 30, true),
		cat("key_person", "", 30, true),
		cat("drug_user", "key_person", 0, false),  // inherits 30 days, key group
		cat("probation", "key_person", 14, false), // own interval, inherits key group
		cat("vulnerable", "", 90, false),
		cat("relocated", "vulnerable", 0, false), // inherits 90 days
		cat("notable", "", 180, false),
		cat("listed", "", 0, false),                 // a category without an interval
		retired,                                     // deleted
		cat("retired_teacher", "retired", 0, false), // group deleted
	}
}

var (
	qSatisfied = se.Question{Code: "satisfied", TextEN: "Satisfied?", Scale: 5, PositiveFrom: 4}
	qSafe      = se.Question{Code: "safe", TextEN: "Feel safe?", Scale: 10, PositiveFrom: 7}
)

// campaign is the April campaign with quotas by role and a questionnaire.
func campaign(tb testing.TB, quotas map[int32]uint32, qs ...se.Question) *se.Campaign {
	tb.Helper()
	questionnaire, err := se.EncodeQuestionnaire(qs)
	if err != nil {
		tb.Fatalf("EncodeQuestionnaire: %v", err)
	}
	return &se.Campaign{
		ID:            campaignID,
		Name:          se.NewRegister("April visits", clock(1)),
		StartsAt:      se.NewRegister(campStart.UnixMilli(), clock(1)),
		EndsAt:        se.NewRegister(campEnd.UnixMilli(), clock(1)),
		Quotas:        se.NewRegister(se.EncodeQuotas(quotas), clock(1)),
		Questionnaire: se.NewRegister(questionnaire, clock(1)),
	}
}

// hh is a household of a scenario.
type hh struct {
	id, grid, address string
	tags              []string
}

// in is a household in grid1 with the given tags.
func in(id string, tags ...string) hh { return hh{id: id, grid: grid1, tags: tags} }

// visitOpt edits a visit of a scenario.
type visitOpt func(*se.VisitView)

// visit is the n-th visit of a test, by workerA at the door of household at
// time at, unless opts say otherwise.
func visit(n int, household string, at time.Time, opts ...visitOpt) se.VisitView {
	v := se.VisitView{Visit: se.Visit{
		ID: visitID(n), HouseholdIDs: []string{household}, VisitorID: workerA,
		VisitedAt: at, Form: se.FormInPerson, Clock: clock(uint64(100 + n)),
	}}
	for _, o := range opts {
		o(&v)
	}
	return v
}

// by makes the visitor someone else.
func by(visitor string) visitOpt { return func(v *se.VisitView) { v.VisitorID = visitor } }

// covering makes the visit a group visit (a talk) of several households,
// the first of them first.
func covering(households ...string) visitOpt {
	return func(v *se.VisitView) { v.HouseholdIDs, v.Form = households, se.FormTalk }
}

// revisit makes the visit call for a follow-up due at due.
func revisit(due time.Time, reasons ...se.RevisitReason) visitOpt {
	if len(reasons) == 0 {
		reasons = []se.RevisitReason{se.RevisitUnstableMood}
	}
	return func(v *se.VisitView) { v.RevisitReasons, v.RevisitDue = reasons, due }
}

// voided voids the visit.
func voided(v *se.VisitView) { v.Voided, v.VoidReason = true, "wrong household" }

// answers attaches survey answers of campaign id: question, value, ...
func answers(id string, qv ...any) visitOpt {
	return func(v *se.VisitView) {
		v.CampaignID = id
		for i := 0; i+1 < len(qv); i += 2 {
			v.Answers = append(v.Answers, se.SurveyAnswer{Question: qv[i].(string), Value: int32(qv[i+1].(int))})
		}
	}
}

// scenario is what an analysis is built from.
type scenario struct {
	campaign   *se.Campaign
	households []hh
	visits     []se.VisitView
	items      []se.Item
}

// build runs the Builder over a scenario as Load does: one AddVisit per
// household a visit covers, the first flagged.
func (s scenario) build() *fieldwork.Analysis {
	b := fieldwork.NewBuilder(s.campaign, categories())
	for _, h := range s.households {
		b.AddHousehold(fieldwork.Household{ID: h.id, GridID: h.grid, Address: h.address, HeadName: "head of " + h.id[len(h.id)-2:]},
			slices.Clone(h.tags))
	}
	for i := range s.visits {
		v := s.visits[i]
		for ord, id := range v.HouseholdIDs {
			b.AddVisit(id, ord == 0, &v)
		}
	}
	for _, it := range s.items {
		b.AddItem(it)
	}
	return b.Finish()
}

// household returns a household of the analysis or fails.
func household(tb testing.TB, a *fieldwork.Analysis, id string) *fieldwork.Household {
	tb.Helper()
	h := a.Household(id)
	if h == nil {
		tb.Fatalf("household %s not in the analysis", id)
	}
	return h
}

func TestFollowUps(t *testing.T) {
	t.Parallel()
	// fu is what is expected of one household's follow-up: none (visit 0),
	// or open from visit n, due at due.
	type fu struct {
		visit int
		due   time.Time
	}
	// A later visit with a corrected date that moves it before the follow-up.
	movedBack := se.Effective(visit(2, hh1, apr(5, 10)).Visit, []se.Amendment{{
		ID: "00000000-0000-7000-8000-0000000e0001", VisitID: visitID(2), Kind: se.AmendCorrect,
		Reason: "wrong date", VisitedAt: apr(1, 10), Clock: clock(500),
	}})
	tests := []struct {
		name       string
		households []hh
		visits     []se.VisitView
		want       map[string]fu
	}{
		{
			name:       "revisit reasons open a follow-up due at RevisitDue",
			households: []hh{in(hh1)},
			visits:     []se.VisitView{visit(1, hh1, apr(2, 10), revisit(apr(9, 12)))},
			want:       map[string]fu{hh1: {1, apr(9, 12)}},
		},
		{
			name:       "a visit without reasons opens none",
			households: []hh{in(hh1)},
			visits:     []se.VisitView{visit(1, hh1, apr(2, 10))},
			want:       map[string]fu{hh1: {}},
		},
		{
			name:       "a follow-up before the campaign still opens",
			households: []hh{in(hh1)},
			visits:     []se.VisitView{visit(1, hh1, mar(2, 10), revisit(mar(9, 12)))},
			want:       map[string]fu{hh1: {1, mar(9, 12)}},
		},
		{
			name:       "a later visit closes it",
			households: []hh{in(hh1)},
			visits:     []se.VisitView{visit(1, hh1, apr(2, 10), revisit(apr(9, 12))), visit(2, hh1, apr(5, 10))},
			want:       map[string]fu{hh1: {}},
		},
		{
			name:       "a later visit added first closes it too",
			households: []hh{in(hh1)},
			visits:     []se.VisitView{visit(2, hh1, apr(5, 10)), visit(1, hh1, apr(2, 10), revisit(apr(9, 12)))},
			want:       map[string]fu{hh1: {}},
		},
		{
			name:       "a later visit by someone else closes it",
			households: []hh{in(hh1)},
			visits:     []se.VisitView{visit(1, hh1, apr(2, 10), revisit(apr(9, 12))), visit(2, hh1, apr(3, 10), by(workerB))},
			want:       map[string]fu{hh1: {}},
		},
		{
			name:       "a visit at the same instant does not close it",
			households: []hh{in(hh1)},
			visits:     []se.VisitView{visit(1, hh1, apr(2, 10), revisit(apr(9, 12))), visit(2, hh1, apr(2, 10))},
			want:       map[string]fu{hh1: {1, apr(9, 12)}},
		},
		{
			name:       "an earlier visit does not close it",
			households: []hh{in(hh1)},
			visits:     []se.VisitView{visit(1, hh1, apr(1, 10)), visit(2, hh1, apr(2, 10), revisit(apr(9, 12)))},
			want:       map[string]fu{hh1: {2, apr(9, 12)}},
		},
		{
			name:       "a later visit corrected to an earlier date does not close it",
			households: []hh{in(hh1)},
			visits:     []se.VisitView{visit(1, hh1, apr(2, 10), revisit(apr(9, 12))), movedBack},
			want:       map[string]fu{hh1: {1, apr(9, 12)}},
		},
		{
			name:       "a voided visit opens none",
			households: []hh{in(hh1)},
			visits:     []se.VisitView{visit(1, hh1, apr(2, 10), revisit(apr(9, 12)), voided)},
			want:       map[string]fu{hh1: {}},
		},
		{
			name:       "a voided later visit does not close it",
			households: []hh{in(hh1)},
			visits:     []se.VisitView{visit(1, hh1, apr(2, 10), revisit(apr(9, 12))), visit(2, hh1, apr(5, 10), voided)},
			want:       map[string]fu{hh1: {1, apr(9, 12)}},
		},
		{
			name:       "a voided newer follow-up leaves the older one open",
			households: []hh{in(hh1)},
			visits: []se.VisitView{
				visit(1, hh1, apr(2, 10), revisit(apr(9, 12))),
				visit(2, hh1, apr(4, 10), revisit(apr(20, 12)), voided),
			},
			want: map[string]fu{hh1: {1, apr(9, 12)}},
		},
		{
			name:       "the newest follow-up visit wins",
			households: []hh{in(hh1)},
			visits: []se.VisitView{
				visit(1, hh1, apr(2, 10), revisit(apr(9, 12))),
				visit(2, hh1, apr(4, 10), revisit(apr(20, 12))),
			},
			want: map[string]fu{hh1: {2, apr(20, 12)}},
		},
		{
			name:       "the newest follow-up visit wins whatever the order",
			households: []hh{in(hh1)},
			visits: []se.VisitView{
				visit(2, hh1, apr(4, 10), revisit(apr(20, 12))),
				visit(1, hh1, apr(2, 10), revisit(apr(9, 12))),
			},
			want: map[string]fu{hh1: {2, apr(20, 12)}},
		},
		{
			name:       "the newest follow-up wins even when due earlier",
			households: []hh{in(hh1)},
			visits: []se.VisitView{
				visit(1, hh1, apr(2, 10), revisit(apr(20, 12))),
				visit(2, hh1, apr(4, 10), revisit(apr(6, 12))),
			},
			want: map[string]fu{hh1: {2, apr(6, 12)}},
		},
		{
			name:       "two follow-ups at the same instant: the larger visit id wins",
			households: []hh{in(hh1)},
			visits: []se.VisitView{
				visit(2, hh1, apr(2, 10), revisit(apr(20, 12))),
				visit(1, hh1, apr(2, 10), revisit(apr(9, 12))),
			},
			want: map[string]fu{hh1: {2, apr(20, 12)}},
		},
		{
			name:       "a group visit opens one follow-up per household",
			households: []hh{in(hh1), in(hh2), in(hh3)},
			visits:     []se.VisitView{visit(1, hh1, apr(2, 10), covering(hh1, hh2, hh3), revisit(apr(9, 12)))},
			want:       map[string]fu{hh1: {1, apr(9, 12)}, hh2: {1, apr(9, 12)}, hh3: {1, apr(9, 12)}},
		},
		{
			name:       "a later visit to one household of the group closes only its follow-up",
			households: []hh{in(hh1), in(hh2), in(hh3)},
			visits: []se.VisitView{
				visit(1, hh1, apr(2, 10), covering(hh1, hh2, hh3), revisit(apr(9, 12))),
				visit(2, hh2, apr(3, 10)),
			},
			want: map[string]fu{hh1: {1, apr(9, 12)}, hh2: {}, hh3: {1, apr(9, 12)}},
		},
		{
			name:       "a later group visit closes the follow-ups of the households it covers",
			households: []hh{in(hh1), in(hh2), in(hh3)},
			visits: []se.VisitView{
				visit(1, hh1, apr(2, 10), covering(hh1, hh2, hh3), revisit(apr(9, 12))),
				visit(2, hh3, apr(3, 10), covering(hh3, hh1)),
			},
			want: map[string]fu{hh1: {}, hh2: {1, apr(9, 12)}, hh3: {}},
		},
		{
			name:       "a group visit reaching beyond the scope opens follow-ups only in it",
			households: []hh{in(hh2)},
			visits:     []se.VisitView{visit(1, hhOut, apr(2, 10), covering(hhOut, hh2), revisit(apr(9, 12)))},
			want:       map[string]fu{hh2: {1, apr(9, 12)}},
		},
		{
			name:       "a visit to a household outside the scope is ignored",
			households: []hh{in(hh1)},
			visits:     []se.VisitView{visit(1, hhOut, apr(2, 10), revisit(apr(9, 12)))},
			want:       map[string]fu{hh1: {}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := scenario{campaign: campaign(t, nil), households: tt.households, visits: tt.visits}.build()
			if a.Household(hhOut) != nil {
				t.Errorf("a household outside the scope entered the analysis")
			}
			for id, want := range tt.want {
				got := household(t, a, id).FollowUp
				switch {
				case want.visit == 0 && got != nil:
					t.Errorf("%s: follow-up open from visit %s due %s, want none", id, got.VisitID, got.Due)
				case want.visit == 0:
				case got == nil:
					t.Errorf("%s: no follow-up, want one from visit %s", id, visitID(want.visit))
				default:
					if got.VisitID != visitID(want.visit) || !got.Due.Equal(want.due) {
						t.Errorf("%s: follow-up from visit %s due %s, want visit %s due %s", id, got.VisitID, got.Due, visitID(want.visit), want.due)
					}
					if len(got.Reasons) == 0 {
						t.Errorf("%s: follow-up without reasons", id)
					}
				}
			}
		})
	}
}

func TestRevisitOverdue(t *testing.T) {
	t.Parallel()
	due := apr(9, 12)
	a := scenario{
		households: []hh{in(hh1), in(hh2)},
		visits:     []se.VisitView{visit(1, hh1, apr(2, 10), revisit(due, se.RevisitStrongComplaint))},
	}.build()
	tests := []struct {
		name      string
		household string
		now       time.Time
		want      bool
	}{
		{"well before the due date", hh1, apr(3, 0), false},
		{"just before the due date", hh1, due.Add(-time.Nanosecond), false},
		{"at the due date", hh1, due, false},
		{"just after the due date", hh1, due.Add(time.Nanosecond), true},
		{"long after the due date", hh1, apr(30, 0), true},
		{"no follow-up", hh2, apr(30, 0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := household(t, a, tt.household)
			if got := h.RevisitOverdue(tt.now); got != tt.want {
				t.Errorf("RevisitOverdue(%s) = %v, want %v", tt.now, got, tt.want)
			}
			f := a.Figures(tt.now, func(x *fieldwork.Household) bool { return x.ID == tt.household })
			want := 0
			if tt.want {
				want = 1
			}
			if f.RevisitsOverdue != want {
				t.Errorf("Figures.RevisitsOverdue = %d, want %d", f.RevisitsOverdue, want)
			}
		})
	}
}

func TestCategoryRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		tags     []string
		wantCats []string
		wantKey  bool
		wantDays int64
	}{
		{"no tags", nil, nil, false, 0},
		{"one category", []string{"vulnerable"}, []string{"vulnerable"}, false, 90},
		{"key group", []string{"petitioner"}, []string{"petitioner"}, true, 30},
		{"shortest interval among categories", []string{"notable", "vulnerable", "petitioner"}, []string{"notable", "petitioner", "vulnerable"}, true, 30},
		{"shortest interval whatever the tag order", []string{"vulnerable", "notable"}, []string{"notable", "vulnerable"}, false, 90},
		{"sub-group inherits the group's interval and key flag", []string{"drug_user"}, []string{"drug_user"}, true, 30},
		{"sub-group inherits the interval of a non-key group", []string{"relocated"}, []string{"relocated"}, false, 90},
		{"sub-group keeps its own interval, inherits the key flag", []string{"probation"}, []string{"probation"}, true, 14},
		{"sub-group's own interval is the shortest", []string{"probation", "petitioner"}, []string{"petitioner", "probation"}, true, 14},
		{"sub-group and its group", []string{"key_person", "drug_user"}, []string{"drug_user", "key_person"}, true, 30},
		{"category without an interval", []string{"listed"}, []string{"listed"}, false, 0},
		{"category without an interval beside one with", []string{"listed", "notable"}, []string{"listed", "notable"}, false, 180},
		{"deleted category ignored", []string{"retired", "vulnerable"}, []string{"vulnerable"}, false, 90},
		{"deleted category alone", []string{"retired"}, nil, false, 0},
		{"sub-group of a deleted group inherits nothing", []string{"retired_teacher"}, []string{"retired_teacher"}, false, 0},
		{"unknown tag ignored", []string{"stranger", "relocated"}, []string{"relocated"}, false, 90},
		{"duplicate tag counted once", []string{"notable", "notable"}, []string{"notable"}, false, 180},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := scenario{households: []hh{in(hh1, tt.tags...)}}.build()
			h := household(t, a, hh1)
			if !slices.Equal(h.Categories, tt.wantCats) {
				t.Errorf("Categories = %q, want %q", h.Categories, tt.wantCats)
			}
			if h.KeyGroup != tt.wantKey {
				t.Errorf("KeyGroup = %v, want %v", h.KeyGroup, tt.wantKey)
			}
			if h.IntervalDays != tt.wantDays {
				t.Errorf("IntervalDays = %d, want %d", h.IntervalDays, tt.wantDays)
			}
			if got, want := h.MustVisit(), len(tt.wantCats) > 0; got != want {
				t.Errorf("MustVisit = %v, want %v", got, want)
			}
		})
	}
}

func TestAddHouseholdLeavesTagsAlone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		tags []string
	}{
		{"unsorted", []string{"vulnerable", "notable"}},
		{"with a duplicate", []string{"vulnerable", "notable", "notable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tags := slices.Clone(tt.tags)
			b := fieldwork.NewBuilder(nil, categories())
			b.AddHousehold(fieldwork.Household{ID: hh1}, tags)
			if !slices.Equal(tags, tt.tags) {
				t.Errorf("AddHousehold changed the caller's tags from %q to %q", tt.tags, tags)
			}
			if h := household(t, b.Finish(), hh1); !slices.Equal(h.Categories, []string{"notable", "vulnerable"}) {
				t.Errorf("Categories = %q", h.Categories)
			}
		})
	}
}

func TestDefaultCategories(t *testing.T) {
	t.Parallel()
	n := uint64(0)
	cats := fieldwork.DefaultCategorySet(func() se.Clock { n++; return clock(n) })
	if len(cats) != len(fieldwork.DefaultCategories) {
		t.Fatalf("DefaultCategorySet has %d categories, want %d", len(cats), len(fieldwork.DefaultCategories))
	}
	for i, c := range cats {
		if err := c.Validate(); err != nil {
			t.Errorf("default category %s: %v", c.Code, err)
		}
		if c.Code != fieldwork.DefaultCategories[i].Code || c.Name("zh") != fieldwork.DefaultCategories[i].NameZH || c.Name("en") != fieldwork.DefaultCategories[i].NameEN {
			t.Errorf("category %d is %s (%s, %s), want %+v", i, c.Code, c.Name("zh"), c.Name("en"), fieldwork.DefaultCategories[i])
		}
		if p := c.ParentCode.Value; p != "" && !slices.ContainsFunc(cats, func(o se.Category) bool { return o.Code == p && o.ParentCode.Value == "" }) {
			t.Errorf("category %s names group %q, not a top-level default", c.Code, p)
		}
		if !c.NameZH.Set() || !c.RevisitDays.Set() || !c.KeyGroup.Set() || c.Deleted.Set() {
			t.Errorf("category %s: fields not all stamped (or deleted stamped)", c.Code)
		}
	}
	if _, err := se.EncodeQuestionnaire(fieldwork.StandardSurvey); err != nil {
		t.Errorf("StandardSurvey is not a valid questionnaire: %v", err)
	}
	tests := []struct {
		tag      string
		wantKey  bool
		wantDays int64
	}{
		{"petitioner", true, 30},
		{"released_prisoner", true, 30},
		{"crime_victim_family", true, 60},
		{"five_guarantees", false, 90},
		{"retired_teacher", false, 180},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			t.Parallel()
			b := fieldwork.NewBuilder(nil, cats)
			b.AddHousehold(fieldwork.Household{ID: hh1}, []string{tt.tag})
			h := household(t, b.Finish(), hh1)
			if h.KeyGroup != tt.wantKey || h.IntervalDays != tt.wantDays {
				t.Errorf("key group %v, every %d days; want %v, %d", h.KeyGroup, h.IntervalDays, tt.wantKey, tt.wantDays)
			}
		})
	}
}

func TestPastInterval(t *testing.T) {
	t.Parallel()
	last := mar(1, 10)
	due := last.AddDate(0, 0, 30) // 2026-03-31 10:00
	tests := []struct {
		name    string
		tags    []string
		visits  []se.VisitView
		now     time.Time
		wantDue time.Time
		want    bool
	}{
		{"within the interval", []string{"petitioner"}, []se.VisitView{visit(1, hh1, last)}, mar(20, 0), due, false},
		{"exactly at the boundary", []string{"petitioner"}, []se.VisitView{visit(1, hh1, last)}, due, due, false},
		{"just past the boundary", []string{"petitioner"}, []se.VisitView{visit(1, hh1, last)}, due.Add(time.Nanosecond), due, true},
		{"from the newest visit", []string{"petitioner"}, []se.VisitView{visit(2, hh1, apr(10, 10)), visit(1, hh1, last)}, apr(20, 0), apr(10, 10).AddDate(0, 0, 30), false},
		{"never visited counts as past", []string{"petitioner"}, nil, mar(1, 0), time.Unix(0, 0).UTC(), true},
		{"only voided visits: never visited", []string{"petitioner"}, []se.VisitView{visit(1, hh1, apr(10, 10), voided)}, apr(11, 0), time.Unix(0, 0).UTC(), true},
		{"no interval: never past", []string{"listed"}, nil, apr(30, 0), time.Time{}, false},
		{"no category: never past", nil, nil, apr(30, 0), time.Time{}, false},
		{"shortest interval decides", []string{"vulnerable", "probation"}, []se.VisitView{visit(1, hh1, last)}, mar(15, 11), last.AddDate(0, 0, 14), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := scenario{households: []hh{in(hh1, tt.tags...)}, visits: tt.visits}.build()
			h := household(t, a, hh1)
			if got := h.NextDue(); !got.Equal(tt.wantDue) {
				t.Errorf("NextDue = %s, want %s", got, tt.wantDue)
			}
			if got := h.PastInterval(tt.now); got != tt.want {
				t.Errorf("PastInterval(%s) = %v, want %v", tt.now, got, tt.want)
			}
		})
	}
}

func TestQuotas(t *testing.T) {
	t.Parallel()
	scope := []hh{in(hh1), in(hh2), in(hh3), in(hh4)}
	tests := []struct {
		name         string
		visits       []se.VisitView
		want         map[string]int
		wantVisitors []string
	}{
		{"no visits", nil, map[string]int{workerA: 0}, []string{}},
		{"one visit", []se.VisitView{visit(1, hh1, apr(2, 10))}, map[string]int{workerA: 1, workerB: 0}, []string{workerA}},
		{
			"a group visit counts each household it covers",
			[]se.VisitView{visit(1, hh1, apr(2, 10), covering(hh1, hh2, hh3))},
			map[string]int{workerA: 3}, []string{workerA},
		},
		{
			"two visits to one household count once",
			[]se.VisitView{visit(1, hh1, apr(2, 10)), visit(2, hh1, apr(9, 10))},
			map[string]int{workerA: 1}, []string{workerA},
		},
		{
			"a group visit and a single visit overlapping",
			[]se.VisitView{visit(1, hh1, apr(2, 10), covering(hh1, hh2)), visit(2, hh2, apr(3, 10))},
			map[string]int{workerA: 2}, []string{workerA},
		},
		{
			"each visitor counts their own",
			[]se.VisitView{visit(1, hh1, apr(2, 10)), visit(2, hh1, apr(3, 10), by(workerB)), visit(3, hh2, apr(3, 11), by(workerB))},
			map[string]int{workerA: 1, workerB: 2}, []string{workerA, workerB},
		},
		{"at the start of the window", []se.VisitView{visit(1, hh1, campStart)}, map[string]int{workerA: 1}, []string{workerA}},
		{"just before the start", []se.VisitView{visit(1, hh1, campStart.Add(-time.Millisecond))}, map[string]int{workerA: 0}, []string{}},
		{"just before the end", []se.VisitView{visit(1, hh1, campEnd.Add(-time.Millisecond))}, map[string]int{workerA: 1}, []string{workerA}},
		{"at the end of the window", []se.VisitView{visit(1, hh1, campEnd)}, map[string]int{workerA: 0}, []string{}},
		{"a voided visit does not count", []se.VisitView{visit(1, hh1, apr(2, 10), voided)}, map[string]int{workerA: 0}, []string{}},
		{"a household outside the scope does not count", []se.VisitView{visit(1, hhOut, apr(2, 10))}, map[string]int{workerA: 0}, []string{}},
		{
			"a group visit reaching beyond the scope counts the households in it",
			[]se.VisitView{visit(1, hhOut, apr(2, 10), covering(hhOut, hh1, hh2))},
			map[string]int{workerA: 2}, []string{workerA},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := scenario{campaign: campaign(t, nil), households: scope, visits: tt.visits}.build()
			for who, want := range tt.want {
				if got := a.VisitedBy(who); got != want {
					t.Errorf("VisitedBy(%s) = %d, want %d", who, got, want)
				}
			}
			if got := a.Visitors(); !slices.Equal(got, tt.wantVisitors) {
				t.Errorf("Visitors = %q, want %q", got, tt.wantVisitors)
			}
		})
	}
}

func TestQuotasWithoutCampaign(t *testing.T) {
	t.Parallel()
	a := scenario{households: []hh{in(hh1)}, visits: []se.VisitView{visit(1, hh1, apr(2, 10))}}.build()
	if got := a.VisitedBy(workerA); got != 0 {
		t.Errorf("VisitedBy = %d without a campaign, want 0", got)
	}
	if got := a.Progress(workerA, 1); got.Quota != 0 || got.Visited != 0 {
		t.Errorf("Progress = %+v without a campaign, want no quota and no visits", got)
	}
	if h := household(t, a, hh1); h.CampaignVisits != 0 || !h.LastVisit.Equal(apr(2, 10)) {
		t.Errorf("household: %d campaign visits, last visit %s; want 0 and %s", h.CampaignVisits, h.LastVisit, apr(2, 10))
	}
}

func TestProgress(t *testing.T) {
	t.Parallel()
	c := campaign(t, map[int32]uint32{1: 20, 2: 50})
	a := scenario{
		campaign: c,
		households: []hh{
			{id: hh1, grid: grid1}, {id: hh2, grid: grid1}, {id: hh3, grid: grid1},
			{id: hh4, grid: grid2}, {id: hh5, grid: grid2},
		},
		visits: []se.VisitView{
			visit(1, hh1, apr(2, 10), covering(hh1, hh2, hh4)),
			visit(2, hh1, apr(3, 10)),
			visit(3, hh3, apr(3, 11), by(workerB)),
		},
	}.build()
	wantGrids := []fieldwork.GridCoverage{{GridID: grid1, Households: 3, Visited: 3}, {GridID: grid2, Households: 2, Visited: 1}}
	tests := []struct {
		name        string
		visitor     string
		role        int32
		wantVisited int
		wantQuota   uint32
	}{
		{"role with a quota", workerA, 1, 3, 20},
		{"another role's quota", workerA, 2, 3, 50},
		{"role without a quota", workerA, 3, 3, 0},
		{"unspecified role", workerA, 0, 3, 0},
		{"other visitor", workerB, 1, 1, 20},
		{"visitor with no visits", "00000000-0000-7000-8000-00000000b0ff", 2, 0, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := a.Progress(tt.visitor, tt.role)
			if p.Visited != tt.wantVisited || p.Quota != tt.wantQuota {
				t.Errorf("Progress = %d visited of quota %d, want %d of %d", p.Visited, p.Quota, tt.wantVisited, tt.wantQuota)
			}
			if !slices.Equal(p.Grids, wantGrids) {
				t.Errorf("Grids = %+v, want %+v", p.Grids, wantGrids)
			}
		})
	}
}

func TestCoverage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		households  []hh
		visits      []se.VisitView
		wantVisited int
		wantAll     int
		wantGrids   []fieldwork.GridCoverage
	}{
		{
			name:        "all visited",
			households:  []hh{in(hh1), in(hh2)},
			visits:      []se.VisitView{visit(1, hh1, apr(2, 10)), visit(2, hh2, apr(3, 10))},
			wantVisited: 2, wantAll: 2,
			wantGrids: []fieldwork.GridCoverage{{GridID: grid1, Households: 2, Visited: 2}},
		},
		{
			name:        "a household added mid-campaign without a visit lowers coverage",
			households:  []hh{in(hh1), in(hh2), {id: hh3, grid: grid2}},
			visits:      []se.VisitView{visit(1, hh1, apr(2, 10)), visit(2, hh2, apr(3, 10))},
			wantVisited: 2, wantAll: 3,
			wantGrids: []fieldwork.GridCoverage{{GridID: grid1, Households: 2, Visited: 2}, {GridID: grid2, Households: 1, Visited: 0}},
		},
		{
			// hh3 was visited in grid2, then moved into grid1: the scope
			// now has it in grid1, visits included.
			name:        "a household moved in counts as visited where it is now",
			households:  []hh{in(hh1), in(hh3)},
			visits:      []se.VisitView{visit(1, hh3, apr(2, 10), by(workerB))},
			wantVisited: 1, wantAll: 2,
			wantGrids: []fieldwork.GridCoverage{{GridID: grid1, Households: 2, Visited: 1}},
		},
		{
			name:        "a household moved out is not counted",
			households:  []hh{in(hh1)},
			visits:      []se.VisitView{visit(1, hh1, apr(2, 10)), visit(2, hh3, apr(2, 11))},
			wantVisited: 1, wantAll: 1,
			wantGrids: []fieldwork.GridCoverage{{GridID: grid1, Households: 1, Visited: 1}},
		},
		{
			name:        "a visit to a household not in the scope is ignored",
			households:  []hh{in(hh1)},
			visits:      []se.VisitView{visit(1, hhOut, apr(2, 10))},
			wantVisited: 0, wantAll: 1,
			wantGrids: []fieldwork.GridCoverage{{GridID: grid1, Households: 1, Visited: 0}},
		},
		{
			name:        "a visit before the campaign does not cover",
			households:  []hh{in(hh1)},
			visits:      []se.VisitView{visit(1, hh1, mar(31, 23))},
			wantVisited: 0, wantAll: 1,
			wantGrids: []fieldwork.GridCoverage{{GridID: grid1, Households: 1, Visited: 0}},
		},
		{
			name:        "a voided visit does not cover",
			households:  []hh{in(hh1)},
			visits:      []se.VisitView{visit(1, hh1, apr(2, 10), voided)},
			wantVisited: 0, wantAll: 1,
			wantGrids: []fieldwork.GridCoverage{{GridID: grid1, Households: 1, Visited: 0}},
		},
		{
			name:        "an empty scope",
			wantVisited: 0, wantAll: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := scenario{campaign: campaign(t, nil), households: tt.households, visits: tt.visits}.build()
			f := a.Figures(apr(20, 0), nil)
			if f.Visited != tt.wantVisited || f.Households != tt.wantAll {
				t.Errorf("Figures: %d of %d visited, want %d of %d", f.Visited, f.Households, tt.wantVisited, tt.wantAll)
			}
			want := 0.0
			if tt.wantAll > 0 {
				want = float64(tt.wantVisited) / float64(tt.wantAll)
			}
			if got := f.Coverage(); got != want {
				t.Errorf("Coverage = %v, want %v", got, want)
			}
			if got := a.Progress(workerA, 1).Grids; !slices.Equal(got, tt.wantGrids) {
				t.Errorf("Progress grids = %+v, want %+v", got, tt.wantGrids)
			}
		})
	}
}

func TestFiguresInclude(t *testing.T) {
	t.Parallel()
	a := scenario{
		campaign: campaign(t, nil),
		households: []hh{
			{id: hh1, grid: grid1, tags: []string{"petitioner"}},
			{id: hh2, grid: grid1, tags: []string{"petitioner"}},
			{id: hh3, grid: grid2},
		},
		visits: []se.VisitView{visit(1, hh1, apr(2, 10)), visit(2, hh3, apr(3, 10))},
	}.build()
	inGrid := func(g string) func(*fieldwork.Household) bool {
		return func(h *fieldwork.Household) bool { return h.GridID == g }
	}
	tests := []struct {
		name                         string
		include                      func(*fieldwork.Household) bool
		wantAll, wantVisited         int
		wantKeyGroup, wantKeyVisited int
		wantCoverage, wantKeyRate    float64
	}{
		{"everything (nil)", nil, 3, 2, 2, 1, 2.0 / 3, 0.5},
		{"grid 1", inGrid(grid1), 2, 1, 2, 1, 0.5, 0.5},
		{"grid 2", inGrid(grid2), 1, 1, 0, 0, 1, 0},
		{"nothing", func(*fieldwork.Household) bool { return false }, 0, 0, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := a.Figures(apr(20, 0), tt.include)
			if f.Households != tt.wantAll || f.Visited != tt.wantVisited || f.KeyGroupHouseholds != tt.wantKeyGroup || f.KeyGroupVisited != tt.wantKeyVisited {
				t.Errorf("Figures = %d households, %d visited, %d key group, %d key visited; want %d, %d, %d, %d",
					f.Households, f.Visited, f.KeyGroupHouseholds, f.KeyGroupVisited, tt.wantAll, tt.wantVisited, tt.wantKeyGroup, tt.wantKeyVisited)
			}
			if f.Coverage() != tt.wantCoverage || f.KeyGroupRate() != tt.wantKeyRate {
				t.Errorf("Coverage %v, KeyGroupRate %v; want %v, %v", f.Coverage(), f.KeyGroupRate(), tt.wantCoverage, tt.wantKeyRate)
			}
		})
	}
}

// item is a tracked item of a visit to households.
func item(state se.ItemState, deadline time.Time, households ...string) se.Item {
	return se.Item{
		VisitID: visitID(90), Kind: se.FindingHazard, HouseholdIDs: households,
		ReportedAt: mar(20, 10), ReportedBy: workerA, State: state, Deadline: deadline,
	}
}

func TestFigures(t *testing.T) {
	t.Parallel()
	now := apr(20, 12)
	c := campaign(t, nil)
	tests := []struct {
		name string
		s    scenario
		want fieldwork.Figures // Survey aside
	}{
		{
			name: "key group households and visited",
			s: scenario{
				campaign:   c,
				households: []hh{in(hh1, "petitioner"), in(hh2, "drug_user"), in(hh3, "vulnerable"), in(hh4)},
				visits:     []se.VisitView{visit(1, hh1, apr(2, 10)), visit(2, hh3, apr(2, 11)), visit(3, hh4, apr(2, 12))},
			},
			// hh2 is key group, never visited: past its interval too.
			want: fieldwork.Figures{Households: 4, Visited: 3, KeyGroupHouseholds: 2, KeyGroupVisited: 1, MustVisitOverdue: 1},
		},
		{
			name: "key group visited only before the campaign",
			s: scenario{
				campaign:   c,
				households: []hh{in(hh1, "petitioner")},
				visits:     []se.VisitView{visit(1, hh1, mar(25, 10))},
			},
			want: fieldwork.Figures{Households: 1, KeyGroupHouseholds: 1},
		},
		{
			name: "must-visit overdue by interval",
			s: scenario{
				campaign:   c,
				households: []hh{in(hh1, "petitioner"), in(hh2, "vulnerable"), in(hh3), in(hh4, "listed"), in(hh5, "relocated")},
				// hh1 due Mar 31, hh2 due May 30, hh5 never visited.
				visits: []se.VisitView{visit(1, hh1, mar(1, 10)), visit(2, hh2, mar(1, 10))},
			},
			want: fieldwork.Figures{Households: 5, KeyGroupHouseholds: 1, MustVisitOverdue: 2},
		},
		{
			name: "revisits open and overdue",
			s: scenario{
				campaign:   c,
				households: []hh{in(hh1), in(hh2), in(hh3), in(hh4)},
				visits: []se.VisitView{
					visit(1, hh1, apr(3, 10), revisit(apr(10, 12))), // overdue
					visit(2, hh2, apr(3, 10), revisit(apr(25, 12))), // open, not yet due
					visit(3, hh3, apr(3, 10), revisit(apr(10, 12))), // closed by visit 4
					visit(4, hh3, apr(4, 10)),
					visit(5, hh4, apr(3, 10), revisit(now)), // due now: not yet overdue
				},
			},
			want: fieldwork.Figures{Households: 4, Visited: 4, RevisitsOpen: 3, RevisitsOverdue: 1},
		},
		{
			name: "items open and overdue",
			s: scenario{
				campaign:   c,
				households: []hh{in(hh1), in(hh2), in(hh3)},
				items: []se.Item{
					item(se.ItemAssigned, apr(10, 0), hh1),        // open, overdue
					item(se.ItemReported, time.Time{}, hh1),       // open
					item(se.ItemAssigned, apr(30, 0), hh2),        // open, not yet due
					item(se.ItemResolved, apr(10, 0), hh2),        // done
					item(se.ItemClosed, apr(10, 0), hh3),          // done
					item(se.ItemAssigned, apr(10, 0), hhOut, hh3), // attributed to hh3: open, overdue
					item(se.ItemAssigned, apr(10, 0), hh1, hh2),   // counted once, with hh1
					item(se.ItemReported, time.Time{}, hhOut),     // not in the scope
					item(se.ItemAssigned, now, hh3),               // due now: not yet overdue
				},
			},
			want: fieldwork.Figures{Households: 3, ItemsOpen: 6, ItemsOverdue: 3},
		},
		{
			name: "without a campaign nothing is visited in it",
			s: scenario{
				households: []hh{in(hh1, "petitioner")},
				visits:     []se.VisitView{visit(1, hh1, apr(2, 10))},
			},
			want: fieldwork.Figures{Households: 1, KeyGroupHouseholds: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.s.build().Figures(now, nil)
			if len(got.Survey) != 0 {
				t.Errorf("Survey = %+v without a questionnaire, want none", got.Survey)
			}
			got.Survey = nil
			if got.Households != tt.want.Households || got.Visited != tt.want.Visited ||
				got.KeyGroupHouseholds != tt.want.KeyGroupHouseholds || got.KeyGroupVisited != tt.want.KeyGroupVisited ||
				got.MustVisitOverdue != tt.want.MustVisitOverdue || got.RevisitsOpen != tt.want.RevisitsOpen ||
				got.RevisitsOverdue != tt.want.RevisitsOverdue || got.ItemsOpen != tt.want.ItemsOpen || got.ItemsOverdue != tt.want.ItemsOverdue {
				t.Errorf("Figures =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestSurveyRates(t *testing.T) {
	t.Parallel()
	// rate is one question's answered and positive counts.
	type rate struct{ answered, positive int }
	scope := []hh{in(hh1), in(hh2), {id: hh3, grid: grid2}}
	tests := []struct {
		name    string
		visits  []se.VisitView
		include func(*fieldwork.Household) bool
		want    [2]rate // satisfied, safe
	}{
		{
			name:   "one visit answering both",
			visits: []se.VisitView{visit(1, hh1, apr(2, 10), answers(campaignID, "satisfied", 5, "safe", 3))},
			want:   [2]rate{{1, 1}, {1, 0}},
		},
		{
			name:   "positive from the threshold",
			visits: []se.VisitView{visit(1, hh1, apr(2, 10), answers(campaignID, "satisfied", 4, "safe", 7))},
			want:   [2]rate{{1, 1}, {1, 1}},
		},
		{
			name:   "just below the threshold",
			visits: []se.VisitView{visit(1, hh1, apr(2, 10), answers(campaignID, "satisfied", 3, "safe", 6))},
			want:   [2]rate{{1, 0}, {1, 0}},
		},
		{
			name: "two visits each counted",
			visits: []se.VisitView{
				visit(1, hh1, apr(2, 10), answers(campaignID, "satisfied", 4)),
				visit(2, hh2, apr(2, 11), answers(campaignID, "satisfied", 2)),
			},
			want: [2]rate{{2, 1}, {0, 0}},
		},
		{
			name: "two visits to one household each counted",
			visits: []se.VisitView{
				visit(1, hh1, apr(2, 10), answers(campaignID, "satisfied", 4)),
				visit(2, hh1, apr(9, 11), answers(campaignID, "satisfied", 5)),
			},
			want: [2]rate{{2, 2}, {0, 0}},
		},
		{
			name:   "a group visit's answers counted once",
			visits: []se.VisitView{visit(1, hh1, apr(2, 10), covering(hh1, hh2, hh3), answers(campaignID, "safe", 9))},
			want:   [2]rate{{0, 0}, {1, 1}},
		},
		{
			name:    "a group visit's answers count with its first household",
			visits:  []se.VisitView{visit(1, hh3, apr(2, 10), covering(hh3, hh1), answers(campaignID, "safe", 9))},
			include: func(h *fieldwork.Household) bool { return h.GridID == grid1 },
			want:    [2]rate{{0, 0}, {0, 0}},
		},
		{
			name:   "another campaign's answers are not counted",
			visits: []se.VisitView{visit(1, hh1, apr(2, 10), answers(otherCampaignID, "satisfied", 5))},
			want:   [2]rate{{0, 0}, {0, 0}},
		},
		{
			name:   "answers before the window are not counted",
			visits: []se.VisitView{visit(1, hh1, campStart.Add(-time.Millisecond), answers(campaignID, "satisfied", 5))},
			want:   [2]rate{{0, 0}, {0, 0}},
		},
		{
			name:   "answers at the end of the window are not counted",
			visits: []se.VisitView{visit(1, hh1, campEnd, answers(campaignID, "satisfied", 5))},
			want:   [2]rate{{0, 0}, {0, 0}},
		},
		{
			name:   "answers at the start of the window are counted",
			visits: []se.VisitView{visit(1, hh1, campStart, answers(campaignID, "satisfied", 5))},
			want:   [2]rate{{1, 1}, {0, 0}},
		},
		{
			name:   "a voided visit's answers are not counted",
			visits: []se.VisitView{visit(1, hh1, apr(2, 10), answers(campaignID, "satisfied", 5), voided)},
			want:   [2]rate{{0, 0}, {0, 0}},
		},
		{
			name:   "an answer to a question not in the questionnaire is ignored",
			visits: []se.VisitView{visit(1, hh1, apr(2, 10), answers(campaignID, "unknown", 5, "safe", 8))},
			want:   [2]rate{{0, 0}, {1, 1}},
		},
		{
			name:   "answers of a household outside the scope are ignored",
			visits: []se.VisitView{visit(1, hhOut, apr(2, 10), answers(campaignID, "satisfied", 5))},
			want:   [2]rate{{0, 0}, {0, 0}},
		},
		{
			name: "include filters the households",
			visits: []se.VisitView{
				visit(1, hh1, apr(2, 10), answers(campaignID, "satisfied", 5)),
				visit(2, hh3, apr(2, 11), answers(campaignID, "satisfied", 1)),
			},
			include: func(h *fieldwork.Household) bool { return h.GridID == grid2 },
			want:    [2]rate{{1, 0}, {0, 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := scenario{campaign: campaign(t, nil, qSatisfied, qSafe), households: scope, visits: tt.visits}.build()
			f := a.Figures(apr(20, 0), tt.include)
			if len(f.Survey) != 2 {
				t.Fatalf("Survey has %d rates, want 2", len(f.Survey))
			}
			for i, q := range []se.Question{qSatisfied, qSafe} {
				got := f.Survey[i]
				if got.Question != q {
					t.Errorf("rate %d is of %+v, want %+v", i, got.Question, q)
				}
				if got.Answered != tt.want[i].answered || got.Positive != tt.want[i].positive {
					t.Errorf("%s: %d answered, %d positive; want %d, %d", q.Code, got.Answered, got.Positive, tt.want[i].answered, tt.want[i].positive)
				}
			}
		})
	}
}

func TestDue(t *testing.T) {
	t.Parallel()
	now := apr(20, 12)
	households := []hh{
		in(hh1),                          // follow-up overdue since Apr 10
		in(hh2),                          // follow-up overdue since Apr 5
		in(hh3, "petitioner"),            // past its interval since Mar 31
		in(hh4, "vulnerable"),            // never visited: past its interval
		in(hh5, "notable"),               // within its interval, not visited in the campaign
		in(hh6),                          // not visited in the campaign
		in(hh7),                          // visited in the campaign
		in(hh8, "petitioner", "notable"), // overdue follow-up and past its interval
	}
	visits := []se.VisitView{
		visit(1, hh1, apr(3, 10), revisit(apr(10, 12))),
		visit(2, hh2, apr(2, 10), revisit(apr(5, 12))),
		visit(3, hh3, mar(1, 10)),
		visit(4, hh5, mar(1, 10)),
		visit(5, hh7, apr(15, 10)),
		visit(6, hh8, mar(1, 10), revisit(mar(5, 12))),
	}
	type due struct {
		kind fieldwork.DueKind
		id   string
	}
	tests := []struct {
		name       string
		campaign   *se.Campaign
		households []hh
		visits     []se.VisitView
		want       []due
	}{
		{
			name:       "with a campaign",
			campaign:   campaign(t, nil),
			households: households,
			visits:     visits,
			want: []due{
				{fieldwork.DueRevisit, hh8}, {fieldwork.DueRevisit, hh2}, {fieldwork.DueRevisit, hh1},
				{fieldwork.DueInterval, hh4}, {fieldwork.DueInterval, hh3},
				{fieldwork.DueMustVisit, hh5},
				{fieldwork.DueCampaign, hh6},
			},
		},
		{
			name:       "without a campaign only revisits and intervals",
			households: households,
			visits:     visits,
			want: []due{
				{fieldwork.DueRevisit, hh8}, {fieldwork.DueRevisit, hh2}, {fieldwork.DueRevisit, hh1},
				{fieldwork.DueInterval, hh4}, {fieldwork.DueInterval, hh3},
			},
		},
		{
			name:     "not visited: by grid, then address",
			campaign: campaign(t, nil),
			households: []hh{
				{id: hh1, grid: grid2, address: "1 Elm Street"},
				{id: hh2, grid: grid1, address: "9 Oak Street"},
				{id: hh3, grid: grid1, address: "2 Oak Street"},
			},
			want: []due{{fieldwork.DueCampaign, hh3}, {fieldwork.DueCampaign, hh2}, {fieldwork.DueCampaign, hh1}},
		},
		{
			name:     "must-visit before other households whatever the grid",
			campaign: campaign(t, nil),
			households: []hh{
				{id: hh1, grid: grid1, address: "1 Elm Street"},
				{id: hh2, grid: grid2, address: "9 Oak Street", tags: []string{"listed"}},
			},
			want: []due{{fieldwork.DueMustVisit, hh2}, {fieldwork.DueCampaign, hh1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := scenario{campaign: tt.campaign, households: tt.households, visits: tt.visits}.build()
			items := a.Due(now)
			var got []due
			seen := map[string]bool{}
			for _, it := range items {
				got = append(got, due{it.Kind, it.Household.ID})
				if seen[it.Household.ID] {
					t.Errorf("household %s listed twice", it.Household.ID)
				}
				seen[it.Household.ID] = true
				if it.Reason == "" {
					t.Errorf("%s %s: no reason", it.Kind, it.Household.ID)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Due =\n %v\nwant\n %v", got, tt.want)
			}
		})
	}
}

func TestDueSinceAndReason(t *testing.T) {
	t.Parallel()
	now := apr(20, 12)
	a := scenario{
		campaign:   campaign(t, nil),
		households: []hh{in(hh1), in(hh2, "petitioner"), in(hh3, "notable")},
		visits:     []se.VisitView{visit(1, hh1, apr(3, 10), revisit(apr(10, 12), se.RevisitImportantRequest)), visit(2, hh2, mar(1, 10))},
	}.build()
	tests := []struct {
		name       string
		household  string
		wantKind   fieldwork.DueKind
		wantSince  time.Time
		wantReason string
	}{
		{"overdue revisit", hh1, fieldwork.DueRevisit, apr(10, 12), "revisit due 2026-04-10 (important_request, visit of 2026-04-03)"},
		{"interval lapsed", hh2, fieldwork.DueInterval, mar(31, 10), "petitioner: last visited 2026-03-01, every 30 days"},
		{"never visited", hh3, fieldwork.DueInterval, time.Unix(0, 0).UTC(), "notable: never visited, every 180 days"},
	}
	items := a.Due(now)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			i := slices.IndexFunc(items, func(it fieldwork.DueItem) bool { return it.Household.ID == tt.household })
			if i < 0 {
				t.Fatalf("%s not due", tt.household)
			}
			it := items[i]
			if it.Kind != tt.wantKind || !it.Since.Equal(tt.wantSince) || it.Reason != tt.wantReason {
				t.Errorf("got %s since %s (%q), want %s since %s (%q)", it.Kind, it.Since, it.Reason, tt.wantKind, tt.wantSince, tt.wantReason)
			}
		})
	}
}

func TestDueKindString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind fieldwork.DueKind
		want string
	}{
		{fieldwork.DueRevisit, "revisit"},
		{fieldwork.DueInterval, "interval"},
		{fieldwork.DueMustVisit, "must_visit"},
		{fieldwork.DueCampaign, "campaign"},
		{fieldwork.DueKind(9), "due(9)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := tt.kind.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMetricMatch(t *testing.T) {
	t.Parallel()
	now := apr(20, 12)
	followUp := &fieldwork.FollowUp{VisitID: visitID(1), At: apr(3, 10), Due: apr(10, 12), Reasons: []se.RevisitReason{se.RevisitUnstableMood, se.RevisitStrongComplaint}}
	laterFollowUp := &fieldwork.FollowUp{VisitID: visitID(2), At: apr(15, 10), Due: apr(25, 12), Reasons: []se.RevisitReason{se.RevisitSpecialDifficulty}}
	tests := []struct {
		name       string
		metric     fieldwork.Metric
		h          fieldwork.Household
		want       bool
		wantReason string
	}{
		{"not visited, never visited", fieldwork.MetricNotVisited, fieldwork.Household{}, true, "never visited"},
		{"not visited, visited before", fieldwork.MetricNotVisited, fieldwork.Household{LastVisit: mar(3, 10)}, true, "last visited 2026-03-03"},
		{"not visited, but visited", fieldwork.MetricNotVisited, fieldwork.Household{LastVisit: apr(3, 10), CampaignVisits: 1}, false, "last visited 2026-04-03"},
		{"visited", fieldwork.MetricVisited, fieldwork.Household{CampaignVisits: 2}, true, "2 visits in the campaign"},
		{"visited, but not", fieldwork.MetricVisited, fieldwork.Household{}, false, "0 visits in the campaign"},
		{"key group not visited", fieldwork.MetricKeyGroupNotVisited, fieldwork.Household{Categories: []string{"drug_user", "petitioner"}, KeyGroup: true}, true, "drug_user,petitioner; never visited"},
		{"key group visited", fieldwork.MetricKeyGroupNotVisited, fieldwork.Household{Categories: []string{"petitioner"}, KeyGroup: true, CampaignVisits: 1, LastVisit: apr(3, 10)}, false, "petitioner; last visited 2026-04-03"},
		{"not key group, not visited", fieldwork.MetricKeyGroupNotVisited, fieldwork.Household{Categories: []string{"notable"}}, false, "notable; never visited"},
		{"must-visit overdue", fieldwork.MetricMustVisitOverdue, fieldwork.Household{Categories: []string{"petitioner"}, IntervalDays: 30, LastVisit: mar(1, 10)}, true, "petitioner: last visited 2026-03-01, every 30 days"},
		{"must-visit never visited", fieldwork.MetricMustVisitOverdue, fieldwork.Household{Categories: []string{"petitioner"}, IntervalDays: 30}, true, "petitioner: never visited, every 30 days"},
		{"must-visit within its interval", fieldwork.MetricMustVisitOverdue, fieldwork.Household{Categories: []string{"petitioner"}, IntervalDays: 30, LastVisit: apr(1, 10)}, false, "petitioner: last visited 2026-04-01, every 30 days"},
		{"must-visit without interval", fieldwork.MetricMustVisitOverdue, fieldwork.Household{Categories: []string{"listed"}}, false, "listed: never visited, every 0 days"},
		{"interval without category", fieldwork.MetricMustVisitOverdue, fieldwork.Household{IntervalDays: 30}, false, ": never visited, every 30 days"},
		{"revisit open", fieldwork.MetricRevisitsOpen, fieldwork.Household{FollowUp: laterFollowUp}, true, "revisit due 2026-04-25 (special_difficulty, visit of 2026-04-15)"},
		{"revisit open and overdue", fieldwork.MetricRevisitsOpen, fieldwork.Household{FollowUp: followUp}, true, "revisit due 2026-04-10 (unstable_mood,strong_complaint, visit of 2026-04-03)"},
		{"no revisit open", fieldwork.MetricRevisitsOpen, fieldwork.Household{}, false, ""},
		{"revisit overdue", fieldwork.MetricRevisitsOverdue, fieldwork.Household{FollowUp: followUp}, true, "revisit due 2026-04-10 (unstable_mood,strong_complaint, visit of 2026-04-03)"},
		{"revisit not yet due", fieldwork.MetricRevisitsOverdue, fieldwork.Household{FollowUp: laterFollowUp}, false, "revisit due 2026-04-25 (special_difficulty, visit of 2026-04-15)"},
		{"no revisit overdue", fieldwork.MetricRevisitsOverdue, fieldwork.Household{}, false, ""},
		{
			"items open", fieldwork.MetricItemsOpen,
			fieldwork.Household{Items: []se.Item{item(se.ItemReported, time.Time{}, hh1), item(se.ItemClosed, apr(1, 0), hh1)}},
			true, "hazard reported",
		},
		{
			"items open, one overdue", fieldwork.MetricItemsOpen,
			fieldwork.Household{Items: []se.Item{item(se.ItemAssigned, apr(10, 0), hh1), item(se.ItemAssigned, apr(30, 0), hh1)}},
			true, "hazard assigned by 2026-04-10 (overdue); hazard assigned by 2026-04-30",
		},
		{"items all done", fieldwork.MetricItemsOpen, fieldwork.Household{Items: []se.Item{item(se.ItemResolved, apr(10, 0), hh1)}}, false, ""},
		{"no items", fieldwork.MetricItemsOpen, fieldwork.Household{}, false, ""},
		{"items overdue", fieldwork.MetricItemsOverdue, fieldwork.Household{Items: []se.Item{item(se.ItemAssigned, apr(10, 0), hh1)}}, true, "hazard assigned by 2026-04-10 (overdue)"},
		{"items open, not overdue", fieldwork.MetricItemsOverdue, fieldwork.Household{Items: []se.Item{item(se.ItemAssigned, apr(30, 0), hh1)}}, false, "hazard assigned by 2026-04-30"},
		{"items open without deadline", fieldwork.MetricItemsOverdue, fieldwork.Household{Items: []se.Item{item(se.ItemReported, time.Time{}, hh1)}}, false, "hazard reported"},
		{"items done past deadline", fieldwork.MetricItemsOverdue, fieldwork.Household{Items: []se.Item{item(se.ItemResolved, apr(10, 0), hh1)}}, false, ""},
		{"unknown metric", fieldwork.Metric(0), fieldwork.Household{}, false, ""},
		{"members mismatch", fieldwork.MetricMembersMismatch, fieldwork.Household{MemberCount: 5, Persons: 3}, true, "3 persons listed of 5 members"},
		{"members all listed", fieldwork.MetricMembersMismatch, fieldwork.Household{MemberCount: 3, Persons: 3}, false, "3 persons listed of 3 members"},
		{"no member count", fieldwork.MetricMembersMismatch, fieldwork.Household{Persons: 2}, false, "2 persons listed of 0 members"},
		{"metric past the last", fieldwork.MetricMembersMismatch + 1, fieldwork.Household{}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := tt.h
			got, reason := tt.metric.Match(&h, now)
			if got != tt.want || reason != tt.wantReason {
				t.Errorf("Match = %v, %q; want %v, %q", got, reason, tt.want, tt.wantReason)
			}
		})
	}
}

// TestMetricsAgreeWithFigures checks that each metric picks the households
// its figure counts.
func TestMetricsAgreeWithFigures(t *testing.T) {
	t.Parallel()
	now := apr(20, 12)
	a := scenario{
		campaign:   campaign(t, nil),
		households: []hh{in(hh1, "petitioner"), in(hh2, "drug_user"), in(hh3, "vulnerable"), in(hh4), in(hh5, "notable")},
		visits: []se.VisitView{
			visit(1, hh1, apr(3, 10), revisit(apr(10, 12))),
			visit(2, hh3, mar(1, 10), revisit(apr(25, 12))),
			visit(3, hh4, apr(4, 10)),
		},
		items: []se.Item{item(se.ItemAssigned, apr(10, 0), hh4), item(se.ItemReported, time.Time{}, hh5)},
	}.build()
	f := a.Figures(now, nil)
	tests := []struct {
		name   string
		metric fieldwork.Metric
		want   int
	}{
		{"not visited", fieldwork.MetricNotVisited, f.Households - f.Visited},
		{"visited", fieldwork.MetricVisited, f.Visited},
		{"key group not visited", fieldwork.MetricKeyGroupNotVisited, f.KeyGroupHouseholds - f.KeyGroupVisited},
		{"must-visit overdue", fieldwork.MetricMustVisitOverdue, f.MustVisitOverdue},
		{"revisits open", fieldwork.MetricRevisitsOpen, f.RevisitsOpen},
		{"revisits overdue", fieldwork.MetricRevisitsOverdue, f.RevisitsOverdue},
		{"items open (households, one item each)", fieldwork.MetricItemsOpen, f.ItemsOpen},
		{"items overdue", fieldwork.MetricItemsOverdue, f.ItemsOverdue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := 0
			for _, h := range a.Households {
				if ok, _ := tt.metric.Match(h, now); ok {
					n++
				}
			}
			if n != tt.want || n == 0 {
				t.Errorf("%d households match, want %d (and some)", n, tt.want)
			}
		})
	}
}

// TestFiguresByAgreesWithFigures: the figures of each group in one pass
// are those of the group alone, and a household keyed "" counts nowhere.
func TestFiguresByAgreesWithFigures(t *testing.T) {
	t.Parallel()
	now := apr(20, 12)
	a := scenario{
		campaign:   campaign(t, nil),
		households: []hh{in(hh1, "petitioner"), in(hh2, "drug_user"), in(hh3, "vulnerable"), in(hh4), in(hh5, "notable")},
		visits: []se.VisitView{
			visit(1, hh1, apr(3, 10), revisit(apr(10, 12))),
			visit(2, hh3, mar(1, 10), revisit(apr(25, 12))),
			visit(3, hh4, apr(4, 10)),
		},
		items: []se.Item{item(se.ItemAssigned, mar(1, 0), hh4), item(se.ItemReported, time.Time{}, hh5), item(se.ItemAssigned, mar(2, 0), hh1)},
	}.build()
	group := map[string]string{hh1: "a", hh3: "a", hh2: "b", hh4: "b"}
	key := func(h *fieldwork.Household) string { return group[h.ID] }
	by := a.FiguresBy(now, key)
	escalated := a.EscalatedBy(now, 3, key)
	if len(by) != 2 {
		t.Fatalf("FiguresBy gave groups %v; want a and b", slices.Collect(maps.Keys(by)))
	}
	for _, g := range []string{"a", "b"} {
		in := func(h *fieldwork.Household) bool { return group[h.ID] == g }
		if got, want := fmt.Sprint(*by[g]), fmt.Sprint(a.Figures(now, in)); got != want {
			t.Errorf("FiguresBy[%s] = %s; want %s", g, got, want)
		}
		if got, want := escalated[g], a.Escalated(now, 3, in); got != want {
			t.Errorf("EscalatedBy[%s] = %d; want %d", g, got, want)
		}
	}
	if f := a.Figures(now, nil); f.Households != by["a"].Households+by["b"].Households+1 {
		t.Errorf("the groups hold %d and %d households of %d; want all but hh5", by["a"].Households, by["b"].Households, f.Households)
	}
	if escalated["a"]+escalated["b"] == 0 {
		t.Errorf("no item escalated (%v): the case tests nothing of EscalatedBy", escalated)
	}
}
