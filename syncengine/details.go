package syncengine

import (
	"fmt"
	"slices"
	"time"
)

// An enumeration the API numbers and the CLI and exports name. The numbers
// are those of the proto enums.
type enum[T ~int32] struct {
	what  string
	names map[T]string
}

func (e enum[T]) name(v T) string {
	if n, ok := e.names[v]; ok {
		return n
	}
	return fmt.Sprintf("%s(%d)", e.what, int32(v))
}

func (e enum[T]) valid(v T) bool { _, ok := e.names[v]; return ok }

func (e enum[T]) parse(s string) (T, error) {
	for v, n := range e.names {
		if n == s {
			return v, nil
		}
	}
	known := make([]string, 0, len(e.names))
	for _, n := range e.names {
		known = append(known, n)
	}
	slices.Sort(known)
	return 0, fmt.Errorf("%w: unknown %s %q (known: %v)", ErrInvalid, e.what, truncate(s), known)
}

// Material is something a visitor hands out.
type Material int32

const (
	MaterialOpenLetter     Material = 1 // 公开信
	MaterialSafetyCalendar Material = 2 // 平安历书
	MaterialPledgeForm     Material = 3 // 承诺书
)

var materials = enum[Material]{"material", map[Material]string{
	MaterialOpenLetter: "open_letter", MaterialSafetyCalendar: "safety_calendar", MaterialPledgeForm: "pledge_form",
}}

func (m Material) String() string { return materials.name(m) }

// ParseMaterial reads a material by name.
func ParseMaterial(s string) (Material, error) { return materials.parse(s) }

// FindingKind is what a visit found.
type FindingKind int32

const (
	FindingDispute         FindingKind = 1 // 矛盾纠纷
	FindingPetitionBacklog FindingKind = 2 // 信访积案
	FindingHazard          FindingKind = 3 // 治安隐患
	FindingHardship        FindingKind = 4 // 困难群众
	FindingHelpRequest     FindingKind = 5 // 民生实事
)

var findingKinds = enum[FindingKind]{"finding", map[FindingKind]string{
	FindingDispute: "dispute", FindingPetitionBacklog: "petition_backlog", FindingHazard: "hazard",
	FindingHardship: "hardship", FindingHelpRequest: "help_request",
}}

func (k FindingKind) String() string { return findingKinds.name(k) }

// ParseFindingKind reads a finding kind by name.
func ParseFindingKind(s string) (FindingKind, error) { return findingKinds.parse(s) }

// Tracked reports whether a finding of this kind needs action, and so
// becomes a tracked item (registered, assigned, solved and closed off:
// 登记造册, 挂牌督办, 销号).
func (k FindingKind) Tracked() bool { return k == FindingHazard || k == FindingDispute }

// Finding is one thing a visit found, with a note.
type Finding struct {
	Kind FindingKind
	Note string
}

// RevisitReason is why a visit calls for a follow-up visit (回访).
type RevisitReason int32

const (
	RevisitSpecialDifficulty RevisitReason = 1
	RevisitImportantRequest  RevisitReason = 2
	RevisitUnstableMood      RevisitReason = 3
	RevisitStrongComplaint   RevisitReason = 4
)

var revisitReasons = enum[RevisitReason]{"revisit reason", map[RevisitReason]string{
	RevisitSpecialDifficulty: "special_difficulty", RevisitImportantRequest: "important_request",
	RevisitUnstableMood: "unstable_mood", RevisitStrongComplaint: "strong_complaint",
}}

func (r RevisitReason) String() string { return revisitReasons.name(r) }

// ParseRevisitReason reads a revisit reason by name.
func ParseRevisitReason(s string) (RevisitReason, error) { return revisitReasons.parse(s) }

// SurveyAnswer answers one question of a campaign's questionnaire.
type SurveyAnswer struct {
	Question string
	Value    int32
}

// Limits of a visit's details.
const (
	MaxFindings = 20
	MaxAnswers  = 50
)

// validateDetails checks what a visit records beyond who, where and when.
func (v *Visit) validateDetails() error {
	for i, m := range v.Materials {
		if !materials.valid(m) {
			return fmt.Errorf("%w: unknown material %d", ErrInvalid, m)
		}
		if slices.Contains(v.Materials[:i], m) {
			return fmt.Errorf("%w: material %s listed twice", ErrInvalid, m)
		}
	}
	if len(v.Findings) > MaxFindings {
		return fmt.Errorf("%w: %d findings, over the limit of %d", ErrLimit, len(v.Findings), MaxFindings)
	}
	for _, f := range v.Findings {
		if !findingKinds.valid(f.Kind) {
			return fmt.Errorf("%w: unknown finding kind %d", ErrInvalid, f.Kind)
		}
		if err := checkText("finding note", f.Note, maxTextLen); err != nil {
			return err
		}
	}
	for i, r := range v.RevisitReasons {
		if !revisitReasons.valid(r) {
			return fmt.Errorf("%w: unknown revisit reason %d", ErrInvalid, r)
		}
		if slices.Contains(v.RevisitReasons[:i], r) {
			return fmt.Errorf("%w: revisit reason %s listed twice", ErrInvalid, r)
		}
	}
	switch {
	case len(v.RevisitReasons) > 0 && v.RevisitDue.IsZero():
		return fmt.Errorf("%w: a visit that calls for a revisit needs a due date", ErrInvalid)
	case len(v.RevisitReasons) == 0 && !v.RevisitDue.IsZero():
		return fmt.Errorf("%w: a revisit due date needs a reason", ErrInvalid)
	case !v.RevisitDue.IsZero() && v.RevisitDue.Before(v.VisitedAt):
		return fmt.Errorf("%w: revisit due %s is before the visit", ErrInvalid, v.RevisitDue.Format(time.RFC3339))
	case !v.RevisitDue.IsZero() && v.RevisitDue.After(maxVisitTime):
		return fmt.Errorf("%w: revisit due %s is not a plausible date", ErrInvalid, v.RevisitDue.Format(time.RFC3339))
	}
	if len(v.Answers) > 0 || v.CampaignID != "" {
		if err := checkID("campaign_id", v.CampaignID); err != nil {
			return err
		}
	}
	if len(v.Answers) > MaxAnswers {
		return fmt.Errorf("%w: %d answers, over the limit of %d", ErrLimit, len(v.Answers), MaxAnswers)
	}
	for i, a := range v.Answers {
		if err := checkCode("question", a.Question); err != nil {
			return err
		}
		if a.Value < 1 || a.Value > MaxScale {
			return fmt.Errorf("%w: answer to %s is %d, want 1..%d", ErrInvalid, a.Question, a.Value, MaxScale)
		}
		for _, b := range v.Answers[:i] {
			if b.Question == a.Question {
				return fmt.Errorf("%w: question %s answered twice", ErrInvalid, a.Question)
			}
		}
	}
	return nil
}

func (v *Visit) detailsEqual(o *Visit) bool {
	return slices.Equal(v.Materials, o.Materials) && slices.Equal(v.Findings, o.Findings) &&
		slices.Equal(v.RevisitReasons, o.RevisitReasons) && v.RevisitDue.Equal(o.RevisitDue) &&
		v.CampaignID == o.CampaignID && slices.Equal(v.Answers, o.Answers)
}

// checkCode checks a short machine name (a category code, a question code):
// 1–64 characters of ASCII letters, digits, '_', '-' and '.'.
func checkCode(what, s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("%w: %s must be 1–64 characters, got %d", ErrInvalid, what, len(s))
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-' || r == '.') {
			return fmt.Errorf("%w: %s %q may hold only letters, digits, '_', '-' and '.'", ErrInvalid, what, truncate(s))
		}
	}
	return nil
}
