package syncengine

import (
	"fmt"
	"slices"
	"time"
)

// VisitForm is how a visit reached the household (走访形式). The numbers are
// those of the API.
type VisitForm int32

const (
	FormUnspecified    VisitForm = 0
	FormInPerson       VisitForm = 1 // at the door, 上门个访
	FormPhone          VisitForm = 2 // 电话
	FormTalk           VisitForm = 3 // 恳谈会
	FormOpinionMeeting VisitForm = 4 // 意见征求会
	FormQASession      VisitForm = 5 // 疑难解答会
)

var formNames = map[VisitForm]string{
	FormInPerson:       "in_person",
	FormPhone:          "phone",
	FormTalk:           "talk",
	FormOpinionMeeting: "meeting",
	FormQASession:      "qa",
}

func (f VisitForm) String() string {
	if n, ok := formNames[f]; ok {
		return n
	}
	return fmt.Sprintf("form(%d)", int32(f))
}

// Valid reports whether f is a known form.
func (f VisitForm) Valid() bool { _, ok := formNames[f]; return ok }

// IsGroup reports whether the form reaches several households in one session.
func (f VisitForm) IsGroup() bool {
	return f == FormTalk || f == FormOpinionMeeting || f == FormQASession
}

// ParseVisitForm reads a form by its short name (in_person, phone, talk,
// meeting, qa).
func ParseVisitForm(s string) (VisitForm, error) {
	for f, n := range formNames {
		if n == s {
			return f, nil
		}
	}
	return FormUnspecified, fmt.Errorf("%w: unknown visit form %q (in_person, phone, talk, meeting, qa)", ErrInvalid, truncate(s))
}

// Visit is an immutable record of one visit, evidence in the visit register
// (入户下访登记表). A group form covers several households and counts for
// each. Once written, a visit id names this record forever.
type Visit struct {
	ID           string
	HouseholdIDs []string
	VisitorID    string
	VisitedAt    time.Time
	Form         VisitForm
	Notes        string
	Clock        Clock

	Materials []Material
	Findings  []Finding
	// A follow-up (回访) is open from this visit until a later visit to the
	// household, due by RevisitDue.
	RevisitReasons []RevisitReason
	RevisitDue     time.Time
	// Answers follow the questionnaire of campaign CampaignID.
	CampaignID string
	Answers    []SurveyAnswer
	// Position is where the phone was, if it knew (nil otherwise).
	Position *Position
}

// Equal reports whether two records of the same visit agree; a visit sent
// again with other content is refused rather than merged.
func (v *Visit) Equal(o *Visit) bool {
	return v.ID == o.ID && slices.Equal(v.HouseholdIDs, o.HouseholdIDs) && v.VisitorID == o.VisitorID &&
		v.VisitedAt.Equal(o.VisitedAt) && v.Form == o.Form && v.Notes == o.Notes && v.Clock == o.Clock &&
		v.detailsEqual(o) && v.Position.equal(o.Position)
}

// Sane visit dates: nothing before the system could exist, nothing far in the
// future.
var (
	minVisitTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxVisitTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// MaxVisitHouseholds bounds a group visit.
const MaxVisitHouseholds = 500

// Validate checks a visit.
func (v *Visit) Validate() error {
	if err := checkID("visit id", v.ID); err != nil {
		return err
	}
	if len(v.HouseholdIDs) == 0 {
		return fmt.Errorf("%w: visit %s covers no household", ErrInvalid, v.ID)
	}
	if len(v.HouseholdIDs) > MaxVisitHouseholds {
		return fmt.Errorf("%w: visit covers %d households, over the limit of %d", ErrLimit, len(v.HouseholdIDs), MaxVisitHouseholds)
	}
	if len(v.HouseholdIDs) > 1 && !v.Form.IsGroup() {
		return fmt.Errorf("%w: a %s visit covers one household, not %d", ErrInvalid, v.Form, len(v.HouseholdIDs))
	}
	for i, id := range v.HouseholdIDs {
		if err := checkID("household_id", id); err != nil {
			return err
		}
		if slices.Contains(v.HouseholdIDs[:i], id) {
			return fmt.Errorf("%w: household %s listed twice in visit", ErrInvalid, id)
		}
	}
	if err := checkID("visitor_id", v.VisitorID); err != nil {
		return err
	}
	if !v.Form.Valid() {
		return fmt.Errorf("%w: unknown visit form %d", ErrInvalid, v.Form)
	}
	if v.VisitedAt.Before(minVisitTime) || v.VisitedAt.After(maxVisitTime) {
		return fmt.Errorf("%w: visited_at %s is not a plausible date", ErrInvalid, v.VisitedAt.Format(time.RFC3339))
	}
	if v.Clock.IsZero() {
		return fmt.Errorf("%w: visit %s has no clock", ErrInvalid, v.ID)
	}
	if err := checkText("notes", v.Notes, maxTextLen); err != nil {
		return err
	}
	if err := v.Position.validate(); err != nil {
		return err
	}
	return v.validateDetails()
}

// AmendmentKind says whether an amendment corrects or voids a visit, or
// moves one of its tracked items forward.
type AmendmentKind int32

const (
	AmendUnspecified AmendmentKind = 0
	AmendCorrect     AmendmentKind = 1
	AmendVoid        AmendmentKind = 2
	AmendItemAssign  AmendmentKind = 3
	AmendItemResolve AmendmentKind = 4
	AmendItemClose   AmendmentKind = 5
)

// IsItemUpdate reports whether k updates a tracked item rather than the visit.
func (k AmendmentKind) IsItemUpdate() bool {
	return k == AmendItemAssign || k == AmendItemResolve || k == AmendItemClose
}

// Amendment corrects or voids a visit, with a reason. Like a visit it is an
// immutable record; the original stays as evidence.
type Amendment struct {
	ID       string
	VisitID  string
	AuthorID string
	Kind     AmendmentKind
	Reason   string
	// Corrections; nil or zero means "unchanged".
	Notes     *string
	Form      VisitForm
	VisitedAt time.Time
	Clock     Clock

	// Item updates: the finding's index in the visit; an assignment names
	// the responsible unit and a deadline.
	Finding  uint32
	Unit     string
	Deadline time.Time
	// CoUnits are the units an assignment also names (配合单位): the lead
	// (Unit) answers for the item, they help.
	CoUnits []string
}

// Equal reports whether two records of the same amendment agree.
func (a *Amendment) Equal(o *Amendment) bool {
	notesEqual := (a.Notes == nil) == (o.Notes == nil) && (a.Notes == nil || *a.Notes == *o.Notes)
	return a.ID == o.ID && a.VisitID == o.VisitID && a.AuthorID == o.AuthorID && a.Kind == o.Kind &&
		a.Reason == o.Reason && notesEqual && a.Form == o.Form && a.VisitedAt.Equal(o.VisitedAt) && a.Clock == o.Clock &&
		a.Finding == o.Finding && a.Unit == o.Unit && a.Deadline.Equal(o.Deadline) && slices.Equal(a.CoUnits, o.CoUnits)
}

// Validate checks an amendment.
func (a *Amendment) Validate() error {
	if err := checkID("amendment id", a.ID); err != nil {
		return err
	}
	if err := checkID("visit_id", a.VisitID); err != nil {
		return err
	}
	if err := checkID("author_id", a.AuthorID); err != nil {
		return err
	}
	if a.Kind.IsItemUpdate() {
		return a.validateItemUpdate()
	}
	if a.Kind != AmendCorrect && a.Kind != AmendVoid {
		return fmt.Errorf("%w: unknown amendment kind %d", ErrInvalid, a.Kind)
	}
	if a.Finding != 0 || a.Unit != "" || !a.Deadline.IsZero() || len(a.CoUnits) > 0 {
		return fmt.Errorf("%w: a correction or void carries no item fields", ErrInvalid)
	}
	if a.Reason == "" {
		return fmt.Errorf("%w: an amendment needs a reason", ErrInvalid)
	}
	if err := checkText("reason", a.Reason, maxNameLen*4); err != nil {
		return err
	}
	if a.Notes != nil {
		if err := checkText("notes", *a.Notes, maxTextLen); err != nil {
			return err
		}
	}
	if a.Form != FormUnspecified && !a.Form.Valid() {
		return fmt.Errorf("%w: unknown visit form %d", ErrInvalid, a.Form)
	}
	if !a.VisitedAt.IsZero() && (a.VisitedAt.Before(minVisitTime) || a.VisitedAt.After(maxVisitTime)) {
		return fmt.Errorf("%w: visited_at %s is not a plausible date", ErrInvalid, a.VisitedAt.Format(time.RFC3339))
	}
	if a.Clock.IsZero() {
		return fmt.Errorf("%w: amendment %s has no clock", ErrInvalid, a.ID)
	}
	return nil
}

// VisitView is a visit as it now reads: the original with its corrections
// applied in clock order, and voided if any amendment voids it.
type VisitView struct {
	Visit
	Voided     bool
	VoidReason string
	Amendments []Amendment
}

// Effective computes the current view of v from all its amendments, in any
// order: the result depends only on the set.
func Effective(v Visit, amendments []Amendment) VisitView {
	sorted := slices.Clone(amendments)
	slices.SortFunc(sorted, func(a, b Amendment) int {
		if c := a.Clock.Compare(b.Clock); c != 0 {
			return c
		}
		return compareStrings(a.ID, b.ID)
	})
	view := VisitView{Visit: v, Amendments: sorted}
	for _, a := range sorted {
		switch a.Kind {
		case AmendVoid:
			if !view.Voided {
				view.Voided, view.VoidReason = true, a.Reason
			}
		case AmendCorrect:
			if a.Notes != nil {
				view.Notes = *a.Notes
			}
			if a.Form != FormUnspecified {
				view.Form = a.Form
			}
			if !a.VisitedAt.IsZero() {
				view.VisitedAt = a.VisitedAt
			}
		}
	}
	return view
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
