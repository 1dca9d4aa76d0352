// Package wire converts between the API's protobuf messages and syncengine's
// types. It is the one place where the two meet: the server and the SDK both
// convert here, so the engine never sees generated code and the API can
// evolve under `buf breaking` without shaking it.
package wire

import (
	"fmt"
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
	}
}

// TagToProto converts a tag element.
func TagToProto(t *syncengine.TagElement) *pb.TagElement {
	return &pb.TagElement{AddId: t.AddID, HouseholdId: t.HouseholdID, CategoryCode: t.Category, Removed: t.Removed, Clock: clockToProto(t.Clock)}
}

// TagFromProto converts a tag element.
func TagFromProto(t *pb.TagElement) syncengine.TagElement {
	return syncengine.TagElement{AddID: t.GetAddId(), HouseholdID: t.GetHouseholdId(), Category: t.GetCategoryCode(), Removed: t.GetRemoved(), Clock: clockFromProto(t.GetClock())}
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
		Id:           v.ID,
		HouseholdIds: v.HouseholdIDs,
		VisitorId:    v.VisitorID,
		VisitedAt:    timeToProto(v.VisitedAt),
		Form:         pb.VisitForm(v.Form),
		Notes:        v.Notes,
		Clock:        clockToProto(v.Clock),
	}
}

// VisitFromProto converts a visit. Times are kept to the millisecond, the
// precision both databases store.
func VisitFromProto(v *pb.Visit) syncengine.Visit {
	return syncengine.Visit{
		ID:           v.GetId(),
		HouseholdIDs: v.GetHouseholdIds(),
		VisitorID:    v.GetVisitorId(),
		VisitedAt:    timeFromProto(v.GetVisitedAt()).Truncate(time.Millisecond),
		Form:         syncengine.VisitForm(v.GetForm()),
		Notes:        v.GetNotes(),
		Clock:        clockFromProto(v.GetClock()),
	}
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
