package syncengine

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Reference data is written by admins on the server and read by every
// replica in scope: must-visit categories and campaigns. Each row is a set of
// registers, like a household, so two admins changing different fields of
// the same row both keep their change.

// Category is a must-visit category (五必访 and any other). Code is its key.
type Category struct {
	Code       string
	NameZH     Register[string]
	NameEN     Register[string]
	ParentCode Register[string] // a sub-group names its group
	// RevisitDays: a household in the category is due again this many days
	// after its last visit; 0 means no interval.
	RevisitDays Register[int64]
	// KeyGroup: the category needs a 100% visit rate.
	KeyGroup Register[bool]
	Deleted  Register[bool]
}

var categoryFields = []field[Category]{
	{name: "name_zh", str: func(c *Category) *Register[string] { return &c.NameZH }},
	{name: "name_en", str: func(c *Category) *Register[string] { return &c.NameEN }},
	{name: "parent_code", str: func(c *Category) *Register[string] { return &c.ParentCode }},
	{name: "revisit_days", num: func(c *Category) *Register[int64] { return &c.RevisitDays }},
	{name: "key_group", flag: func(c *Category) *Register[bool] { return &c.KeyGroup }},
	{name: "deleted", flag: func(c *Category) *Register[bool] { return &c.Deleted }},
}

// Merge joins o into c field by field and reports whether c changed.
func (c *Category) Merge(o Category) bool { return mergeFields(categoryFields, c, &o) }

// Clocks returns the clock of every field, in storage order.
func (c *Category) Clocks() []Clock { return clocksOf(categoryFields, c) }

// SetClocks restores the clocks returned by Clocks.
func (c *Category) SetClocks(cl []Clock) { setClocks(categoryFields, c, cl) }

// Name is the category's name in a language ("zh" or "en"), falling back to
// the other and then to the code.
func (c *Category) Name(lang string) string {
	first, second := c.NameZH.Value, c.NameEN.Value
	if lang == "en" {
		first, second = second, first
	}
	switch {
	case first != "":
		return first
	case second != "":
		return second
	}
	return c.Code
}

// MaxRevisitDays bounds a category's interval (ten years).
const MaxRevisitDays = 3650

// Validate checks a category.
func (c *Category) Validate() error {
	if err := ValidateCategoryCode(c.Code); err != nil {
		return err
	}
	if p := c.ParentCode.Value; p != "" {
		if err := ValidateCategoryCode(p); err != nil {
			return err
		}
		if p == c.Code {
			return fmt.Errorf("%w: category %s cannot be its own group", ErrInvalid, c.Code)
		}
	}
	for _, f := range []field[Category]{categoryFields[0], categoryFields[1]} {
		if err := checkText(f.name, f.str(c).Value, maxNameLen); err != nil {
			return err
		}
	}
	if d := c.RevisitDays.Value; d < 0 || d > MaxRevisitDays {
		return fmt.Errorf("%w: revisit_days %d out of range 0..%d", ErrInvalid, d, MaxRevisitDays)
	}
	return nil
}

// Question is one question of a campaign's questionnaire. Answers run from 1
// to Scale; PositiveFrom and above count as positive in the rates.
type Question struct {
	Code         string `json:"code"`
	TextZH       string `json:"zh,omitempty"`
	TextEN       string `json:"en,omitempty"`
	Scale        int32  `json:"scale"`
	PositiveFrom int32  `json:"positive_from"`
}

// MaxScale bounds a question's scale.
const MaxScale = 10

// Campaign is a visiting campaign of an org node and everything under it:
// a window, quotas of distinct households per role, and a questionnaire.
// Quotas and Questionnaire are registers of their canonical encodings
// (EncodeQuotas, EncodeQuestionnaire): each is replaced whole.
type Campaign struct {
	ID            string
	NodeID        Register[string]
	Name          Register[string]
	StartsAt      Register[int64] // Unix milliseconds, inclusive
	EndsAt        Register[int64] // Unix milliseconds, exclusive
	Quotas        Register[string]
	Questionnaire Register[string]
	Deleted       Register[bool]
}

var campaignFields = []field[Campaign]{
	{name: "node_id", str: func(c *Campaign) *Register[string] { return &c.NodeID }},
	{name: "name", str: func(c *Campaign) *Register[string] { return &c.Name }},
	{name: "starts_at", num: func(c *Campaign) *Register[int64] { return &c.StartsAt }},
	{name: "ends_at", num: func(c *Campaign) *Register[int64] { return &c.EndsAt }},
	{name: "quotas", str: func(c *Campaign) *Register[string] { return &c.Quotas }},
	{name: "questionnaire", str: func(c *Campaign) *Register[string] { return &c.Questionnaire }},
	{name: "deleted", flag: func(c *Campaign) *Register[bool] { return &c.Deleted }},
}

// Merge joins o into c field by field and reports whether c changed.
func (c *Campaign) Merge(o Campaign) bool { return mergeFields(campaignFields, c, &o) }

// Clocks returns the clock of every field, in storage order.
func (c *Campaign) Clocks() []Clock { return clocksOf(campaignFields, c) }

// SetClocks restores the clocks returned by Clocks.
func (c *Campaign) SetClocks(cl []Clock) { setClocks(campaignFields, c, cl) }

// Window is the campaign's window [start, end).
func (c *Campaign) Window() (start, end time.Time) {
	return time.UnixMilli(c.StartsAt.Value), time.UnixMilli(c.EndsAt.Value)
}

// In reports whether t falls in the campaign's window.
func (c *Campaign) In(t time.Time) bool {
	start, end := c.Window()
	return !t.Before(start) && t.Before(end)
}

// QuotaFor is the quota of a role (a WorkerRole number); 0 when none.
func (c *Campaign) QuotaFor(role int32) uint32 {
	q, _ := DecodeQuotas(c.Quotas.Value)
	return q[role]
}

// Questions decodes the questionnaire.
func (c *Campaign) Questions() []Question {
	q, _ := DecodeQuestionnaire(c.Questionnaire.Value)
	return q
}

// Validate checks a campaign.
func (c *Campaign) Validate() error {
	if err := checkID("campaign id", c.ID); err != nil {
		return err
	}
	if c.NodeID.Set() {
		if err := checkID("node_id", c.NodeID.Value); err != nil {
			return err
		}
	}
	if err := checkText("name", c.Name.Value, maxNameLen); err != nil {
		return err
	}
	if c.StartsAt.Set() && c.EndsAt.Set() && c.EndsAt.Value <= c.StartsAt.Value {
		return fmt.Errorf("%w: campaign ends before it starts", ErrInvalid)
	}
	if _, err := DecodeQuotas(c.Quotas.Value); err != nil {
		return err
	}
	_, err := DecodeQuestionnaire(c.Questionnaire.Value)
	return err
}

// EncodeQuotas renders quotas canonically: "role=households,..." by role.
func EncodeQuotas(q map[int32]uint32) string {
	roles := make([]int32, 0, len(q))
	for r, n := range q {
		if n > 0 {
			roles = append(roles, r)
		}
	}
	slices.Sort(roles)
	parts := make([]string, len(roles))
	for i, r := range roles {
		parts[i] = fmt.Sprintf("%d=%d", r, q[r])
	}
	return strings.Join(parts, ",")
}

// MaxQuota bounds one role's quota.
const MaxQuota = 100000

// DecodeQuotas reads EncodeQuotas's text.
func DecodeQuotas(s string) (map[int32]uint32, error) {
	q := map[int32]uint32{}
	if s == "" {
		return q, nil
	}
	for _, part := range strings.Split(s, ",") {
		role, n, ok := strings.Cut(part, "=")
		r, err1 := strconv.ParseInt(role, 10, 32)
		v, err2 := strconv.ParseUint(n, 10, 32)
		if !ok || err1 != nil || err2 != nil || r <= 0 || v > MaxQuota {
			return nil, fmt.Errorf("%w: bad quota %q", ErrInvalid, truncate(part))
		}
		q[int32(r)] = uint32(v)
	}
	return q, nil
}

// MaxQuestions bounds a questionnaire.
const MaxQuestions = 20

// EncodeQuestionnaire renders questions canonically, after checking them.
func EncodeQuestionnaire(qs []Question) (string, error) {
	if len(qs) == 0 {
		return "", nil
	}
	if err := validateQuestions(qs); err != nil {
		return "", err
	}
	b, err := json.Marshal(qs)
	return string(b), err
}

// DecodeQuestionnaire reads EncodeQuestionnaire's text.
func DecodeQuestionnaire(s string) ([]Question, error) {
	if s == "" {
		return nil, nil
	}
	var qs []Question
	if err := json.Unmarshal([]byte(s), &qs); err != nil {
		return nil, fmt.Errorf("%w: bad questionnaire: %v", ErrInvalid, err)
	}
	return qs, validateQuestions(qs)
}

func validateQuestions(qs []Question) error {
	if len(qs) > MaxQuestions {
		return fmt.Errorf("%w: %d questions, over the limit of %d", ErrLimit, len(qs), MaxQuestions)
	}
	for i, q := range qs {
		if err := checkCode("question code", q.Code); err != nil {
			return err
		}
		for _, p := range qs[:i] {
			if p.Code == q.Code {
				return fmt.Errorf("%w: question %s twice", ErrInvalid, q.Code)
			}
		}
		if err := checkText("question text", q.TextZH+q.TextEN, maxTextLen); err != nil {
			return err
		}
		if q.Scale < 2 || q.Scale > MaxScale || q.PositiveFrom < 1 || q.PositiveFrom > q.Scale {
			return fmt.Errorf("%w: question %s: scale %d, positive from %d (want 2..%d, 1..scale)", ErrInvalid, q.Code, q.Scale, q.PositiveFrom, MaxScale)
		}
	}
	return nil
}

// Reference is the reference data a replica holds.
type Reference struct {
	Categories []Category
	Campaigns  []Campaign
}

// Validate checks every row.
func (r *Reference) Validate() error {
	for i := range r.Categories {
		if err := r.Categories[i].Validate(); err != nil {
			return err
		}
	}
	for i := range r.Campaigns {
		if err := r.Campaigns[i].Validate(); err != nil {
			return err
		}
	}
	return nil
}

// CheckAnswers checks a visit's survey answers against the campaign's
// questionnaire: known questions, values within each question's scale.
func (c *Campaign) CheckAnswers(answers []SurveyAnswer) error {
	questions := map[string]Question{}
	for _, q := range c.Questions() {
		questions[q.Code] = q
	}
	for _, a := range answers {
		q, ok := questions[a.Question]
		if !ok {
			return fmt.Errorf("%w: campaign %q asks no question %q", ErrInvalid, c.Name.Value, truncate(a.Question))
		}
		if a.Value < 1 || a.Value > q.Scale {
			return fmt.Errorf("%w: answer %d to %s is outside 1..%d", ErrInvalid, a.Value, a.Question, q.Scale)
		}
	}
	return nil
}

// CheckAuthority checks that a's author may record it on visit v. A visit
// is evidence of what its visitor did: only the visitor corrects or voids
// it (from their own devices). A tracked item (a hazard, a dispute) may be
// assigned or resolved by a worker whose grids hold one of the visit's
// households or by an admin over it; closing it off (销号) is an admin's
// decision alone. admin says whether an admin records a.
func (a *Amendment) CheckAuthority(v *Visit, admin bool) error {
	switch {
	case a.Kind == AmendItemClose && !admin:
		return fmt.Errorf("%w: closing off an item (销号) is for an admin", ErrOutOfScope)
	case !a.Kind.IsItemUpdate() && admin:
		return fmt.Errorf("%w: a visit is corrected or voided by its visitor", ErrOutOfScope)
	case !a.Kind.IsItemUpdate() && a.AuthorID != v.VisitorID:
		return fmt.Errorf("%w: only the visitor corrects or voids visit %s", ErrOutOfScope, v.ID)
	}
	return nil
}

// CheckItemUpdate checks that an item update names a tracked finding of v.
func (a *Amendment) CheckItemUpdate(v *Visit) error {
	if !a.Kind.IsItemUpdate() {
		return nil
	}
	if int(a.Finding) >= len(v.Findings) || !v.Findings[a.Finding].Kind.Tracked() {
		return fmt.Errorf("%w: visit %s has no tracked finding %d", ErrNotFound, v.ID, a.Finding)
	}
	return nil
}
