// Package wire converts between the API's protobuf messages and syncengine's
// types. It is the one place where the two meet: the server and the SDK both
// convert here, so the engine never sees generated code and the API can
// evolve under `buf breaking` without shaking it.
package wire

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

func clockToProto(c syncengine.Clock) *pb.Clock {
	if c.IsZero() {
		return nil
	}
	return &pb.Clock{Hlc: c.HLC, Node: c.Node}
}

func clockFromProto(c *pb.Clock) syncengine.Clock {
	return syncengine.Clock{HLC: c.GetHlc(), Node: c.GetNode()}
}

// unset reports whether a field is not written: absent, or with no clock or
// a zero one. A value under a zero clock is dropped, not stored: it would
// never be sent on (an unset register is not), so it would be a value the
// server holds and phones never see.
func unset(c *pb.Clock) bool { return c.GetHlc() == 0 && c.GetNode() == 0 }

func strToProto(r syncengine.Register[string]) *pb.StringField {
	if !r.Set() {
		return nil
	}
	return &pb.StringField{Value: r.Value, Clock: clockToProto(r.Clock)}
}

func strFromProto(f *pb.StringField) syncengine.Register[string] {
	if unset(f.GetClock()) {
		return syncengine.Register[string]{}
	}
	return syncengine.NewRegister(f.Value, clockFromProto(f.Clock))
}

func intToProto(r syncengine.Register[int64]) *pb.Int64Field {
	if !r.Set() {
		return nil
	}
	return &pb.Int64Field{Value: r.Value, Clock: clockToProto(r.Clock)}
}

func intFromProto(f *pb.Int64Field) syncengine.Register[int64] {
	if unset(f.GetClock()) {
		return syncengine.Register[int64]{}
	}
	return syncengine.NewRegister(f.Value, clockFromProto(f.Clock))
}

func boolToProto(r syncengine.Register[bool]) *pb.BoolField {
	if !r.Set() {
		return nil
	}
	return &pb.BoolField{Value: r.Value, Clock: clockToProto(r.Clock)}
}

func boolFromProto(f *pb.BoolField) syncengine.Register[bool] {
	if unset(f.GetClock()) {
		return syncengine.Register[bool]{}
	}
	return syncengine.NewRegister(f.Value, clockFromProto(f.Clock))
}

// HouseholdToProto converts a household state or delta.
func HouseholdToProto(h *syncengine.Household) *pb.Household {
	return &pb.Household{
		Id:                h.ID,
		GridId:            strToProto(h.GridID),
		HeadName:          strToProto(h.HeadName),
		Address:           strToProto(h.Address),
		PhoneMobile:       strToProto(h.PhoneMobile),
		PhoneLandline:     strToProto(h.PhoneLandline),
		ResponsibleWorker: strToProto(h.ResponsibleWorker),
		ResponsibleLeader: strToProto(h.ResponsibleLeader),
		ResponsibleUnit:   strToProto(h.ResponsibleUnit),
		MemberCount:       intToProto(h.MemberCount),
		HousingType:       strToProto(h.HousingType),
		Notes:             strToProto(h.Notes),
		Deleted:           boolToProto(h.Deleted),
	}
}

// HouseholdFromProto converts a household state or delta.
func HouseholdFromProto(h *pb.Household) syncengine.Household {
	return syncengine.Household{
		ID:                h.GetId(),
		GridID:            strFromProto(h.GetGridId()),
		HeadName:          strFromProto(h.GetHeadName()),
		Address:           strFromProto(h.GetAddress()),
		PhoneMobile:       strFromProto(h.GetPhoneMobile()),
		PhoneLandline:     strFromProto(h.GetPhoneLandline()),
		ResponsibleWorker: strFromProto(h.GetResponsibleWorker()),
		ResponsibleLeader: strFromProto(h.GetResponsibleLeader()),
		ResponsibleUnit:   strFromProto(h.GetResponsibleUnit()),
		MemberCount:       intFromProto(h.GetMemberCount()),
		HousingType:       strFromProto(h.GetHousingType()),
		Notes:             strFromProto(h.GetNotes()),
		Deleted:           boolFromProto(h.GetDeleted()),
	}
}

// PersonToProto converts a person state or delta.
func PersonToProto(p *syncengine.Person) *pb.Person {
	return &pb.Person{
		Id:          p.ID,
		HouseholdId: p.HouseholdID,
		Name:        strToProto(p.Name),
		IdNumber:    strToProto(p.IDNumber),
		Gender:      strToProto(p.Gender),
		BirthDate:   strToProto(p.BirthDate),
		Phone:       strToProto(p.Phone),
		Relation:    strToProto(p.Relation),
		Notes:       strToProto(p.Notes),
		Deleted:     boolToProto(p.Deleted),
		Residence:   strToProto(p.Residence),
	}
}

// PersonFromProto converts a person state or delta.
func PersonFromProto(p *pb.Person) syncengine.Person {
	return syncengine.Person{
		ID:          p.GetId(),
		HouseholdID: p.GetHouseholdId(),
		Name:        strFromProto(p.GetName()),
		IDNumber:    strFromProto(p.GetIdNumber()),
		Gender:      strFromProto(p.GetGender()),
		BirthDate:   strFromProto(p.GetBirthDate()),
		Phone:       strFromProto(p.GetPhone()),
		Relation:    strFromProto(p.GetRelation()),
		Notes:       strFromProto(p.GetNotes()),
		Deleted:     boolFromProto(p.GetDeleted()),
		Residence:   strFromProto(p.GetResidence()),
	}
}

// TagToProto converts a tag element.
func TagToProto(t *syncengine.TagElement) *pb.TagElement {
	return &pb.TagElement{AddId: t.AddID, HouseholdId: t.HouseholdID, CategoryCode: t.Category, Removed: t.Removed, Clock: clockToProto(t.Clock),
		PersonId: t.PersonID}
}

// TagFromProto converts a tag element.
func TagFromProto(t *pb.TagElement) syncengine.TagElement {
	return syncengine.TagElement{AddID: t.GetAddId(), HouseholdID: t.GetHouseholdId(), Category: t.GetCategoryCode(), Removed: t.GetRemoved(),
		Clock: clockFromProto(t.GetClock()), PersonID: t.GetPersonId()}
}

func timeToProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func timeFromProto(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime().UTC()
}

// VisitToProto converts a visit.
func VisitToProto(v *syncengine.Visit) *pb.Visit {
	return &pb.Visit{
		Id:             v.ID,
		HouseholdIds:   v.HouseholdIDs,
		VisitorId:      v.VisitorID,
		VisitedAt:      timeToProto(v.VisitedAt),
		Form:           pb.VisitForm(v.Form),
		Notes:          v.Notes,
		Clock:          clockToProto(v.Clock),
		Materials:      enumsToProto[pb.Material](v.Materials),
		Findings:       findingsToProto(v.Findings),
		RevisitReasons: enumsToProto[pb.RevisitReason](v.RevisitReasons),
		RevisitDue:     timeToProto(v.RevisitDue),
		CampaignId:     v.CampaignID,
		Answers:        answersToProto(v.Answers),
		Position:       positionToProto(v.Position),
	}
}

func positionToProto(p *syncengine.Position) *pb.Position {
	if p == nil {
		return nil
	}
	return &pb.Position{Latitude: p.Latitude, Longitude: p.Longitude, AccuracyMeters: p.AccuracyMeters, FixedAt: timeToProto(p.FixedAt)}
}

// positionFromProto keeps the fix's time to the millisecond, as the
// databases store it.
func positionFromProto(p *pb.Position) *syncengine.Position {
	if p == nil {
		return nil
	}
	return &syncengine.Position{Latitude: p.GetLatitude(), Longitude: p.GetLongitude(), AccuracyMeters: p.GetAccuracyMeters(),
		FixedAt: timeFromProto(p.GetFixedAt()).Truncate(time.Millisecond)}
}

// VisitFromProto converts a visit. Times are kept to the millisecond, the
// precision both databases store.
func VisitFromProto(v *pb.Visit) syncengine.Visit {
	return syncengine.Visit{
		ID:             v.GetId(),
		HouseholdIDs:   v.GetHouseholdIds(),
		VisitorID:      v.GetVisitorId(),
		VisitedAt:      timeFromProto(v.GetVisitedAt()).Truncate(time.Millisecond),
		Form:           syncengine.VisitForm(v.GetForm()),
		Notes:          v.GetNotes(),
		Clock:          clockFromProto(v.GetClock()),
		Materials:      enumsFromProto[syncengine.Material](v.GetMaterials()),
		Findings:       findingsFromProto(v.GetFindings()),
		RevisitReasons: enumsFromProto[syncengine.RevisitReason](v.GetRevisitReasons()),
		RevisitDue:     timeFromProto(v.GetRevisitDue()).Truncate(time.Millisecond),
		CampaignID:     v.GetCampaignId(),
		Answers:        answersFromProto(v.GetAnswers()),
		Position:       positionFromProto(v.GetPosition()),
	}
}

// enumsToProto converts between an engine enum and its proto enum, which
// share their numbers.
func enumsToProto[P, E ~int32](es []E) []P {
	if len(es) == 0 {
		return nil
	}
	out := make([]P, len(es))
	for i, e := range es {
		out[i] = P(e)
	}
	return out
}

func enumsFromProto[E, P ~int32](ps []P) []E { return enumsToProto[E](ps) }

func findingsToProto(fs []syncengine.Finding) []*pb.Finding {
	var out []*pb.Finding
	for _, f := range fs {
		out = append(out, &pb.Finding{Kind: pb.FindingKind(f.Kind), Note: f.Note})
	}
	return out
}

func findingsFromProto(fs []*pb.Finding) []syncengine.Finding {
	var out []syncengine.Finding
	for _, f := range fs {
		out = append(out, syncengine.Finding{Kind: syncengine.FindingKind(f.GetKind()), Note: f.GetNote()})
	}
	return out
}

func answersToProto(as []syncengine.SurveyAnswer) []*pb.SurveyAnswer {
	var out []*pb.SurveyAnswer
	for _, a := range as {
		out = append(out, &pb.SurveyAnswer{Question: a.Question, Value: a.Value})
	}
	return out
}

func answersFromProto(as []*pb.SurveyAnswer) []syncengine.SurveyAnswer {
	var out []syncengine.SurveyAnswer
	for _, a := range as {
		out = append(out, syncengine.SurveyAnswer{Question: a.GetQuestion(), Value: a.GetValue()})
	}
	return out
}

// AmendmentToProto converts an amendment.
func AmendmentToProto(a *syncengine.Amendment) *pb.VisitAmendment {
	return &pb.VisitAmendment{
		Id:        a.ID,
		VisitId:   a.VisitID,
		AuthorId:  a.AuthorID,
		Kind:      pb.AmendmentKind(a.Kind),
		Reason:    a.Reason,
		Notes:     a.Notes,
		Form:      pb.VisitForm(a.Form),
		VisitedAt: timeToProto(a.VisitedAt),
		Clock:     clockToProto(a.Clock),
		Finding:   a.Finding,
		Unit:      a.Unit,
		Deadline:  timeToProto(a.Deadline),
		CoUnits:   a.CoUnits,
	}
}

// AmendmentFromProto converts an amendment.
func AmendmentFromProto(a *pb.VisitAmendment) syncengine.Amendment {
	return syncengine.Amendment{
		ID:        a.GetId(),
		VisitID:   a.GetVisitId(),
		AuthorID:  a.GetAuthorId(),
		Kind:      syncengine.AmendmentKind(a.GetKind()),
		Reason:    a.GetReason(),
		Notes:     a.Notes,
		Form:      syncengine.VisitForm(a.GetForm()),
		VisitedAt: timeFromProto(a.GetVisitedAt()).Truncate(time.Millisecond),
		Clock:     clockFromProto(a.GetClock()),
		Finding:   a.GetFinding(),
		Unit:      a.GetUnit(),
		Deadline:  timeFromProto(a.GetDeadline()).Truncate(time.Millisecond),
		CoUnits:   a.GetCoUnits(),
	}
}

// ChangeToProto converts an outbox change.
func ChangeToProto(c *syncengine.Change) *pb.Change {
	out := &pb.Change{Id: c.ID}
	switch {
	case c.Household != nil:
		out.Payload = &pb.Change_Household{Household: HouseholdToProto(c.Household)}
	case c.Person != nil:
		out.Payload = &pb.Change_Person{Person: PersonToProto(c.Person)}
	case c.Tag != nil:
		out.Payload = &pb.Change_Tag{Tag: TagToProto(c.Tag)}
	case c.Visit != nil:
		out.Payload = &pb.Change_Visit{Visit: VisitToProto(c.Visit)}
	case c.Amendment != nil:
		out.Payload = &pb.Change_VisitAmendment{VisitAmendment: AmendmentToProto(c.Amendment)}
	}
	return out
}

// ChangeFromProto converts a pushed change; an empty payload is an error.
func ChangeFromProto(c *pb.Change) (syncengine.Change, error) {
	out := syncengine.Change{ID: c.GetId()}
	switch p := c.GetPayload().(type) {
	case *pb.Change_Household:
		h := HouseholdFromProto(p.Household)
		out.Household = &h
	case *pb.Change_Person:
		v := PersonFromProto(p.Person)
		out.Person = &v
	case *pb.Change_Tag:
		t := TagFromProto(p.Tag)
		out.Tag = &t
	case *pb.Change_Visit:
		v := VisitFromProto(p.Visit)
		out.Visit = &v
	case *pb.Change_VisitAmendment:
		a := AmendmentFromProto(p.VisitAmendment)
		out.Amendment = &a
	default:
		return out, fmt.Errorf("%w: change %q has no payload", syncengine.ErrInvalid, c.GetId())
	}
	return out, nil
}

// Rows is the row lists a pull batch and a bootstrap page share.
type Rows struct {
	Households []*pb.Household
	Persons    []*pb.Person
	Tags       []*pb.TagElement
	Visits     []*pb.Visit
	Amendments []*pb.VisitAmendment
}

// BundleToProto converts rows for sending.
func BundleToProto(b *syncengine.Bundle) Rows {
	var r Rows
	for i := range b.Households {
		r.Households = append(r.Households, HouseholdToProto(&b.Households[i]))
	}
	for i := range b.Persons {
		r.Persons = append(r.Persons, PersonToProto(&b.Persons[i]))
	}
	for i := range b.Tags {
		r.Tags = append(r.Tags, TagToProto(&b.Tags[i]))
	}
	for i := range b.Visits {
		r.Visits = append(r.Visits, VisitToProto(&b.Visits[i]))
	}
	for i := range b.Amendments {
		r.Amendments = append(r.Amendments, AmendmentToProto(&b.Amendments[i]))
	}
	return r
}

// BundleFromProto converts received rows.
func BundleFromProto(r Rows) syncengine.Bundle {
	var b syncengine.Bundle
	for _, h := range r.Households {
		b.Households = append(b.Households, HouseholdFromProto(h))
	}
	for _, p := range r.Persons {
		b.Persons = append(b.Persons, PersonFromProto(p))
	}
	for _, t := range r.Tags {
		b.Tags = append(b.Tags, TagFromProto(t))
	}
	for _, v := range r.Visits {
		b.Visits = append(b.Visits, VisitFromProto(v))
	}
	for _, a := range r.Amendments {
		b.Amendments = append(b.Amendments, AmendmentFromProto(a))
	}
	return b
}

// CategoryToProto converts a category.
func CategoryToProto(c *syncengine.Category) *pb.Category {
	return &pb.Category{
		Code:        c.Code,
		NameZh:      strToProto(c.NameZH),
		NameEn:      strToProto(c.NameEN),
		ParentCode:  strToProto(c.ParentCode),
		RevisitDays: intToProto(c.RevisitDays),
		KeyGroup:    boolToProto(c.KeyGroup),
		Deleted:     boolToProto(c.Deleted),
	}
}

// CategoryFromProto converts a category.
func CategoryFromProto(c *pb.Category) syncengine.Category {
	return syncengine.Category{
		Code:        c.GetCode(),
		NameZH:      strFromProto(c.GetNameZh()),
		NameEN:      strFromProto(c.GetNameEn()),
		ParentCode:  strFromProto(c.GetParentCode()),
		RevisitDays: intFromProto(c.GetRevisitDays()),
		KeyGroup:    boolFromProto(c.GetKeyGroup()),
		Deleted:     boolFromProto(c.GetDeleted()),
	}
}

// QuotasToProto lists quotas by role.
func QuotasToProto(text string) []*pb.Quota {
	q, _ := syncengine.DecodeQuotas(text)
	var out []*pb.Quota
	for _, r := range slices.Sorted(maps.Keys(q)) {
		out = append(out, &pb.Quota{Role: pb.WorkerRole(r), Households: q[r]})
	}
	return out
}

// QuotasFromProto encodes quotas; a role listed twice keeps its last quota.
func QuotasFromProto(qs []*pb.Quota) (string, error) {
	m := map[int32]uint32{}
	for _, q := range qs {
		if q.GetRole() <= 0 || q.GetHouseholds() > syncengine.MaxQuota {
			return "", fmt.Errorf("%w: quota %d for role %s", syncengine.ErrInvalid, q.GetHouseholds(), q.GetRole())
		}
		m[int32(q.GetRole())] = q.GetHouseholds()
	}
	return syncengine.EncodeQuotas(m), nil
}

// QuestionsToProto converts a questionnaire.
func QuestionsToProto(text string) []*pb.Question {
	qs, _ := syncengine.DecodeQuestionnaire(text)
	var out []*pb.Question
	for _, q := range qs {
		out = append(out, &pb.Question{Code: q.Code, TextZh: q.TextZH, TextEn: q.TextEN, Scale: uint32(q.Scale), PositiveFrom: uint32(q.PositiveFrom)})
	}
	return out
}

// QuestionsFromProto encodes a questionnaire.
func QuestionsFromProto(ps []*pb.Question) (string, error) {
	var qs []syncengine.Question
	for _, q := range ps {
		if q.GetScale() > syncengine.MaxScale || q.GetPositiveFrom() > syncengine.MaxScale {
			return "", fmt.Errorf("%w: question %s: scale %d, positive from %d", syncengine.ErrInvalid, q.GetCode(), q.GetScale(), q.GetPositiveFrom())
		}
		qs = append(qs, syncengine.Question{Code: q.GetCode(), TextZH: q.GetTextZh(), TextEN: q.GetTextEn(), Scale: int32(q.GetScale()), PositiveFrom: int32(q.GetPositiveFrom())})
	}
	return syncengine.EncodeQuestionnaire(qs)
}

// CampaignToProto converts a campaign.
func CampaignToProto(c *syncengine.Campaign) *pb.Campaign {
	return &pb.Campaign{
		Id:            c.ID,
		NodeId:        strToProto(c.NodeID),
		Name:          strToProto(c.Name),
		StartsAt:      intToProto(c.StartsAt),
		EndsAt:        intToProto(c.EndsAt),
		Quotas:        &pb.QuotasField{Quotas: QuotasToProto(c.Quotas.Value), Clock: clockToProto(c.Quotas.Clock)},
		Questionnaire: &pb.QuestionnaireField{Questions: QuestionsToProto(c.Questionnaire.Value), Clock: clockToProto(c.Questionnaire.Clock)},
		Deleted:       boolToProto(c.Deleted),
	}
}

// CampaignFromProto converts a campaign; quotas or questions it cannot
// encode are an error.
func CampaignFromProto(c *pb.Campaign) (syncengine.Campaign, error) {
	out := syncengine.Campaign{
		ID:       c.GetId(),
		NodeID:   strFromProto(c.GetNodeId()),
		Name:     strFromProto(c.GetName()),
		StartsAt: intFromProto(c.GetStartsAt()),
		EndsAt:   intFromProto(c.GetEndsAt()),
		Deleted:  boolFromProto(c.GetDeleted()),
	}
	quotas, err := QuotasFromProto(c.GetQuotas().GetQuotas())
	if err != nil {
		return out, err
	}
	questions, err := QuestionsFromProto(c.GetQuestionnaire().GetQuestions())
	if err != nil {
		return out, err
	}
	if cl := c.GetQuotas().GetClock(); !unset(cl) {
		out.Quotas = syncengine.NewRegister(quotas, clockFromProto(cl))
	}
	if cl := c.GetQuestionnaire().GetClock(); !unset(cl) {
		out.Questionnaire = syncengine.NewRegister(questions, clockFromProto(cl))
	}
	return out, nil
}

// ReferenceToProto converts reference data.
func ReferenceToProto(r *syncengine.Reference) ([]*pb.Category, []*pb.Campaign) {
	var cats []*pb.Category
	for i := range r.Categories {
		cats = append(cats, CategoryToProto(&r.Categories[i]))
	}
	var camps []*pb.Campaign
	for i := range r.Campaigns {
		camps = append(camps, CampaignToProto(&r.Campaigns[i]))
	}
	return cats, camps
}

// ReferenceFromProto converts reference data.
func ReferenceFromProto(cats []*pb.Category, camps []*pb.Campaign) (syncengine.Reference, error) {
	var r syncengine.Reference
	for _, c := range cats {
		r.Categories = append(r.Categories, CategoryFromProto(c))
	}
	for _, c := range camps {
		camp, err := CampaignFromProto(c)
		if err != nil {
			return r, err
		}
		r.Campaigns = append(r.Campaigns, camp)
	}
	return r, nil
}
