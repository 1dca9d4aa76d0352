package server

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

// surelyValidPush reports whether req keeps every rule the protos declare
// for a push (types.proto, sync.proto), checked by hand: a push is the
// request phones send most, and protovalidate's generic walk cost an eighth
// of a push's CPU. It may say false of a valid push, never true of an
// invalid one: false sends the push through protovalidate, which finds the
// violation and names it. TestSurelyValidPush holds it to the protos' rules
// and to protovalidate's verdicts.
func surelyValidPush(req *pb.PushRequest) bool {
	if len(req.GetChanges()) > 1000 {
		return false
	}
	for _, c := range req.GetChanges() {
		if !syncengine.IsID(c.GetId()) {
			return false
		}
		var ok bool
		switch p := c.GetPayload().(type) {
		case *pb.Change_Household:
			ok = validHousehold(p.Household)
		case *pb.Change_Person:
			ok = validPerson(p.Person)
		case *pb.Change_Tag:
			ok = validTag(p.Tag)
		case *pb.Change_Visit:
			ok = validVisit(p.Visit)
		case *pb.Change_VisitAmendment:
			ok = validAmendment(p.VisitAmendment)
		}
		if !ok {
			return false
		}
	}
	return true
}

// The bounds the protos give dates: 2000-01-01 to 2200-01-01 UTC.
const (
	minSeconds = 946684800
	maxSeconds = 7258118400
)

func validHousehold(h *pb.Household) bool {
	if h == nil || !syncengine.IsID(h.GetId()) {
		return false
	}
	for _, r := range [...]struct {
		f     *pb.StringField
		limit int
	}{
		{h.GetHeadName(), 256}, {h.GetAddress(), 4000}, {h.GetPhoneMobile(), 256}, {h.GetPhoneLandline(), 256},
		{h.GetResponsibleWorker(), 256}, {h.GetResponsibleLeader(), 256}, {h.GetResponsibleUnit(), 256},
		{h.GetHousingType(), 256}, {h.GetNotes(), 4000},
	} {
		if len(r.f.GetValue()) > r.limit {
			return false
		}
	}
	n := h.GetMemberCount().GetValue()
	return n >= 0 && n <= 1000
}

func validPerson(p *pb.Person) bool {
	if p == nil || !syncengine.IsID(p.GetId()) || !syncengine.IsID(p.GetHouseholdId()) {
		return false
	}
	for _, r := range [...]struct {
		f     *pb.StringField
		limit int
	}{
		{p.GetName(), 256}, {p.GetIdNumber(), 256}, {p.GetGender(), 256}, {p.GetBirthDate(), 256},
		{p.GetPhone(), 256}, {p.GetRelation(), 256}, {p.GetNotes(), 4000},
	} {
		if len(r.f.GetValue()) > r.limit {
			return false
		}
	}
	switch p.GetResidence().GetValue() {
	case "", "resident", "migrant", "moved_away":
		return true
	}
	return false
}

func validTag(t *pb.TagElement) bool {
	return t != nil && syncengine.IsID(t.GetAddId()) && syncengine.IsID(t.GetHouseholdId()) && isCode(t.GetCategoryCode()) &&
		(t.GetPersonId() == "" || syncengine.IsID(t.GetPersonId()))
}

func validVisit(v *pb.Visit) bool {
	if v == nil || !syncengine.IsID(v.GetId()) || !syncengine.IsID(v.GetVisitorId()) || len(v.GetNotes()) > 4000 {
		return false
	}
	hh := v.GetHouseholdIds()
	if len(hh) < 1 || len(hh) > 500 {
		return false
	}
	for i, id := range hh {
		if !syncengine.IsID(id) {
			return false
		}
		for _, before := range hh[:i] {
			if before == id {
				return false
			}
		}
	}
	if v.GetVisitedAt() == nil || !inBounds(v.GetVisitedAt()) || !definedNotZero(pb.VisitForm_name, int32(v.GetForm())) {
		return false
	}
	var materials, reasons uint64 // bit sets: the few defined values are small numbers
	for _, m := range v.GetMaterials() {
		if !definedNotZero(pb.Material_name, int32(m)) || m >= 64 || materials&(1<<m) != 0 {
			return false
		}
		materials |= 1 << m
	}
	for _, r := range v.GetRevisitReasons() {
		if !definedNotZero(pb.RevisitReason_name, int32(r)) || r >= 64 || reasons&(1<<r) != 0 {
			return false
		}
		reasons |= 1 << r
	}
	if len(v.GetFindings()) > 20 || len(v.GetAnswers()) > 50 {
		return false
	}
	for _, f := range v.GetFindings() {
		if !definedNotZero(pb.FindingKind_name, int32(f.GetKind())) || len(f.GetNote()) > 4000 {
			return false
		}
	}
	for _, a := range v.GetAnswers() {
		if !isCode(a.GetQuestion()) || a.GetValue() < 1 || a.GetValue() > 10 {
			return false
		}
	}
	if d := v.GetRevisitDue(); d != nil && !notAfterBound(d) {
		return false
	}
	if v.GetCampaignId() != "" && !syncengine.IsID(v.GetCampaignId()) {
		return false
	}
	if p := v.GetPosition(); p != nil {
		// Written so that NaN fails every bound.
		if !(p.GetLatitude() >= -90 && p.GetLatitude() <= 90) || !(p.GetLongitude() >= -180 && p.GetLongitude() <= 180) ||
			!(p.GetAccuracyMeters() >= 0 && p.GetAccuracyMeters() <= 100000) || p.GetFixedAt() == nil {
			return false
		}
	}
	return true
}

func validAmendment(a *pb.VisitAmendment) bool {
	if a == nil || !syncengine.IsID(a.GetId()) || !syncengine.IsID(a.GetVisitId()) || !syncengine.IsID(a.GetAuthorId()) ||
		!definedNotZero(pb.AmendmentKind_name, int32(a.GetKind())) || len(a.GetReason()) > 4000 || len(a.GetNotes()) > 4000 ||
		!defined(pb.VisitForm_name, int32(a.GetForm())) || a.GetFinding() >= 20 || len(a.GetUnit()) > 256 || len(a.GetCoUnits()) > 8 {
		return false
	}
	if at := a.GetVisitedAt(); at != nil && !inBounds(at) {
		return false
	}
	if d := a.GetDeadline(); d != nil && !inBounds(d) {
		return false
	}
	for _, u := range a.GetCoUnits() {
		if len(u) > 256 {
			return false
		}
	}
	return true
}

// inBounds: a valid timestamp from 2000 to 2200, both included.
func inBounds(t *timestamppb.Timestamp) bool {
	return t.GetSeconds() >= minSeconds && notAfterBound(t)
}

func notAfterBound(t *timestamppb.Timestamp) bool {
	return validTimestamp(t) && (t.GetSeconds() < maxSeconds || t.GetSeconds() == maxSeconds && t.GetNanos() == 0)
}

func validTimestamp(t *timestamppb.Timestamp) bool {
	return t.GetNanos() >= 0 && t.GetNanos() < 1e9
}

func defined(names map[int32]string, v int32) bool {
	_, ok := names[v]
	return ok
}

func definedNotZero(names map[int32]string, v int32) bool {
	return v != 0 && defined(names, v)
}

// isCode matches ^[A-Za-z0-9_.-]{1,64}$.
func isCode(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
