package server

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
)

// pushRules is every field of a push that declares a rule, and a digest of
// the rules themselves. When a rule of the protos changes, this test
// fails: make surelyValidPush keep the new rule (or refuse what it cannot
// judge), add cases below, then set the new digest here.
var pushRules = []string{
	"doorbook.v1.Change.id", "doorbook.v1.Change.payload",
	"doorbook.v1.Finding.kind", "doorbook.v1.Finding.note",
	"doorbook.v1.Household.address", "doorbook.v1.Household.head_name", "doorbook.v1.Household.housing_type",
	"doorbook.v1.Household.id", "doorbook.v1.Household.member_count", "doorbook.v1.Household.notes",
	"doorbook.v1.Household.phone_landline", "doorbook.v1.Household.phone_mobile",
	"doorbook.v1.Household.responsible_leader", "doorbook.v1.Household.responsible_unit",
	"doorbook.v1.Household.responsible_worker",
	"doorbook.v1.Person.birth_date", "doorbook.v1.Person.gender", "doorbook.v1.Person.household_id",
	"doorbook.v1.Person.id", "doorbook.v1.Person.id_number", "doorbook.v1.Person.name", "doorbook.v1.Person.notes",
	"doorbook.v1.Person.phone", "doorbook.v1.Person.relation", "doorbook.v1.Person.residence",
	"doorbook.v1.Position.accuracy_meters", "doorbook.v1.Position.fixed_at", "doorbook.v1.Position.latitude",
	"doorbook.v1.Position.longitude",
	"doorbook.v1.PushRequest.changes",
	"doorbook.v1.SurveyAnswer.question", "doorbook.v1.SurveyAnswer.value",
	"doorbook.v1.TagElement.add_id", "doorbook.v1.TagElement.category_code", "doorbook.v1.TagElement.household_id",
	"doorbook.v1.TagElement.person_id",
	"doorbook.v1.Visit.answers", "doorbook.v1.Visit.campaign_id", "doorbook.v1.Visit.findings", "doorbook.v1.Visit.form",
	"doorbook.v1.Visit.household_ids", "doorbook.v1.Visit.id", "doorbook.v1.Visit.materials", "doorbook.v1.Visit.notes",
	"doorbook.v1.Visit.revisit_due", "doorbook.v1.Visit.revisit_reasons", "doorbook.v1.Visit.visited_at",
	"doorbook.v1.Visit.visitor_id",
	"doorbook.v1.VisitAmendment.author_id", "doorbook.v1.VisitAmendment.co_units", "doorbook.v1.VisitAmendment.deadline",
	"doorbook.v1.VisitAmendment.finding", "doorbook.v1.VisitAmendment.form", "doorbook.v1.VisitAmendment.id",
	"doorbook.v1.VisitAmendment.kind", "doorbook.v1.VisitAmendment.notes", "doorbook.v1.VisitAmendment.reason",
	"doorbook.v1.VisitAmendment.unit", "doorbook.v1.VisitAmendment.visit_id", "doorbook.v1.VisitAmendment.visited_at",
}

const pushRulesDigest = "0e1bacbce30c4496b5e2a2774fc09aa80edae7a9519d04ef17ac447bf409c6a3"

// rulesOf walks the messages a push holds and returns each field (or
// oneof) that declares a rule, with the rule's bytes.
func rulesOf(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool, out map[string][]byte) {
	if seen[md.FullName()] {
		return
	}
	seen[md.FullName()] = true
	if r, ok := proto.GetExtension(md.Options(), validatepb.E_Message).(*validatepb.MessageRules); ok && r != nil && proto.Size(r) > 0 {
		out[string(md.FullName())], _ = proto.MarshalOptions{Deterministic: true}.Marshal(r)
	}
	for i := range md.Oneofs().Len() {
		od := md.Oneofs().Get(i)
		if r, ok := proto.GetExtension(od.Options(), validatepb.E_Oneof).(*validatepb.OneofRules); ok && r != nil && proto.Size(r) > 0 {
			out[string(od.FullName())], _ = proto.MarshalOptions{Deterministic: true}.Marshal(r)
		}
	}
	for i := range md.Fields().Len() {
		fd := md.Fields().Get(i)
		if r, ok := proto.GetExtension(fd.Options(), validatepb.E_Field).(*validatepb.FieldRules); ok && r != nil && proto.Size(r) > 0 {
			out[string(fd.FullName())], _ = proto.MarshalOptions{Deterministic: true}.Marshal(r)
		}
		if fd.Message() != nil && !fd.IsMap() {
			rulesOf(fd.Message(), seen, out)
		}
	}
}

// TestPushRulesKnown fails when the protos' rules for a push change, so
// that surelyValidPush never lags behind them.
func TestPushRulesKnown(t *testing.T) {
	out := map[string][]byte{}
	rulesOf((&pb.PushRequest{}).ProtoReflect().Descriptor(), map[protoreflect.FullName]bool{}, out)
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range out {
			if !yield(k) {
				return
			}
		}
	})
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write(out[n])
	}
	want := slices.Sorted(slices.Values(pushRules))
	if !slices.Equal(names, want) {
		t.Errorf("the fields of a push with rules are\n%q\nsurelyValidPush knows\n%q", names, want)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != pushRulesDigest {
		t.Errorf("the rules of a push are not those surelyValidPush was written for (digest %s, want %s): check it against them, then update pushRulesDigest", got, pushRulesDigest)
	}
}

const (
	uuidA = "01950000-0000-7000-8000-00000000000a"
	uuidB = "01950000-0000-7000-8000-00000000000b"
	uuidC = "01950000-0000-7000-8000-00000000000c"
)

func ts(sec int64, nanos int32) *timestamppb.Timestamp {
	return &timestamppb.Timestamp{Seconds: sec, Nanos: nanos}
}

func reg(s string) *pb.StringField {
	return &pb.StringField{Value: s, Clock: &pb.Clock{Hlc: 1, Node: 1}}
}

// fullPush is a valid push with every kind of change and every field
// with a rule set.
func fullPush() *pb.PushRequest {
	h := &pb.Household{Id: uuidA, GridId: reg(uuidB), HeadName: reg("王"), Address: reg("1 Elm St"), PhoneMobile: reg("138"),
		PhoneLandline: reg("010"), ResponsibleWorker: reg("w"), ResponsibleLeader: reg("l"), ResponsibleUnit: reg("u"),
		MemberCount: &pb.Int64Field{Value: 3, Clock: &pb.Clock{Hlc: 1}}, HousingType: reg("own"), Notes: reg("n"),
		Deleted: &pb.BoolField{Value: false}}
	p := &pb.Person{Id: uuidB, HouseholdId: uuidA, Name: reg("n"), IdNumber: reg("1"), Gender: reg("f"), BirthDate: reg("1990-01-01"),
		Phone: reg("1"), Relation: reg("head"), Notes: reg("n"), Residence: reg("migrant")}
	tag := &pb.TagElement{AddId: uuidC, HouseholdId: uuidA, CategoryCode: "elderly", PersonId: uuidB}
	v := &pb.Visit{Id: uuidC, HouseholdIds: []string{uuidA, uuidB}, VisitorId: uuidB, VisitedAt: ts(1764000000, 5),
		Form: pb.VisitForm_VISIT_FORM_TALK, Notes: "n", Clock: &pb.Clock{Hlc: 2},
		Materials:      []pb.Material{pb.Material_MATERIAL_OPEN_LETTER, pb.Material_MATERIAL_PLEDGE_FORM},
		Findings:       []*pb.Finding{{Kind: pb.FindingKind_FINDING_KIND_HAZARD, Note: "gas"}},
		RevisitReasons: []pb.RevisitReason{pb.RevisitReason_REVISIT_REASON_UNSTABLE_MOOD},
		RevisitDue:     ts(1765000000, 0), CampaignId: uuidA,
		Answers:  []*pb.SurveyAnswer{{Question: "satisfied", Value: 5}},
		Position: &pb.Position{Latitude: 39.9, Longitude: 116.4, AccuracyMeters: 10, FixedAt: ts(1764000000, 0)}}
	notes := "corrected"
	a := &pb.VisitAmendment{Id: uuidA, VisitId: uuidC, AuthorId: uuidB, Kind: pb.AmendmentKind_AMENDMENT_KIND_ITEM_ASSIGN,
		Reason: "r", Notes: &notes, Form: pb.VisitForm_VISIT_FORM_PHONE, VisitedAt: ts(1764000000, 0), Finding: 19,
		Unit: "unit", Deadline: ts(1766000000, 0), CoUnits: []string{"a", "b"}}
	return &pb.PushRequest{Changes: []*pb.Change{
		{Id: uuidA, Payload: &pb.Change_Household{Household: h}},
		{Id: uuidB, Payload: &pb.Change_Person{Person: p}},
		{Id: uuidC, Payload: &pb.Change_Tag{Tag: tag}},
		{Id: "01950000-0000-7000-8000-0000000000d1", Payload: &pb.Change_Visit{Visit: v}},
		{Id: "01950000-0000-7000-8000-0000000000d2", Payload: &pb.Change_VisitAmendment{VisitAmendment: a}},
	}}
}

func hh(r *pb.PushRequest) *pb.Household      { return r.Changes[0].GetHousehold() }
func pe(r *pb.PushRequest) *pb.Person         { return r.Changes[1].GetPerson() }
func tg(r *pb.PushRequest) *pb.TagElement     { return r.Changes[2].GetTag() }
func vi(r *pb.PushRequest) *pb.Visit          { return r.Changes[3].GetVisit() }
func am(r *pb.PushRequest) *pb.VisitAmendment { return r.Changes[4].GetVisitAmendment() }

// TestSurelyValidPush: a full valid push passes by hand; each rule broken
// (the least past its bound) sends the push to protovalidate, which
// refuses it; values at a bound pass both.
func TestSurelyValidPush(t *testing.T) {
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	uuids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = strings.Replace(uuidA, "00000000000a", strings.Repeat("0", 4)+hex.EncodeToString([]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}), 1)
		}
		return out
	}
	bad := map[string]func(r *pb.PushRequest){
		"too many changes": func(r *pb.PushRequest) {
			for len(r.Changes) <= 1000 {
				r.Changes = append(r.Changes, r.Changes[0])
			}
		},
		"change id not a UUID":       func(r *pb.PushRequest) { r.Changes[0].Id = uuidA[:35] + "g" },
		"change id too short":        func(r *pb.PushRequest) { r.Changes[0].Id = uuidA[:35] },
		"change id hyphen misplaced": func(r *pb.PushRequest) { r.Changes[0].Id = "0195000-00000-7000-8000-00000000000a" },
		"no payload":                 func(r *pb.PushRequest) { r.Changes[1].Payload = nil },
		"household id":               func(r *pb.PushRequest) { hh(r).Id = "" },
		"household head name":        func(r *pb.PushRequest) { hh(r).HeadName = reg(strings.Repeat("x", 257)) },
		"household address":          func(r *pb.PushRequest) { hh(r).Address = reg(strings.Repeat("x", 4001)) },
		"household phone mobile":     func(r *pb.PushRequest) { hh(r).PhoneMobile = reg(strings.Repeat("名", 86)) },
		"household phone landline":   func(r *pb.PushRequest) { hh(r).PhoneLandline = reg(strings.Repeat("x", 257)) },
		"household worker":           func(r *pb.PushRequest) { hh(r).ResponsibleWorker = reg(strings.Repeat("x", 257)) },
		"household leader":           func(r *pb.PushRequest) { hh(r).ResponsibleLeader = reg(strings.Repeat("x", 257)) },
		"household unit":             func(r *pb.PushRequest) { hh(r).ResponsibleUnit = reg(strings.Repeat("x", 257)) },
		"household housing":          func(r *pb.PushRequest) { hh(r).HousingType = reg(strings.Repeat("x", 257)) },
		"household notes":            func(r *pb.PushRequest) { hh(r).Notes = reg(strings.Repeat("x", 4001)) },
		"household members below":    func(r *pb.PushRequest) { hh(r).MemberCount.Value = -1 },
		"household members above":    func(r *pb.PushRequest) { hh(r).MemberCount.Value = 1001 },
		"person id":                  func(r *pb.PushRequest) { pe(r).Id = "x" },
		"person household":           func(r *pb.PushRequest) { pe(r).HouseholdId = "" },
		"person name":                func(r *pb.PushRequest) { pe(r).Name = reg(strings.Repeat("x", 257)) },
		"person id number":           func(r *pb.PushRequest) { pe(r).IdNumber = reg(strings.Repeat("x", 257)) },
		"person gender":              func(r *pb.PushRequest) { pe(r).Gender = reg(strings.Repeat("x", 257)) },
		"person birth date":          func(r *pb.PushRequest) { pe(r).BirthDate = reg(strings.Repeat("x", 257)) },
		"person phone":               func(r *pb.PushRequest) { pe(r).Phone = reg(strings.Repeat("x", 257)) },
		"person relation":            func(r *pb.PushRequest) { pe(r).Relation = reg(strings.Repeat("x", 257)) },
		"person notes":               func(r *pb.PushRequest) { pe(r).Notes = reg(strings.Repeat("x", 4001)) },
		"person residence":           func(r *pb.PushRequest) { pe(r).Residence = reg("abroad") },
		"tag add id":                 func(r *pb.PushRequest) { tg(r).AddId = "" },
		"tag household":              func(r *pb.PushRequest) { tg(r).HouseholdId = "x" },
		"tag code empty":             func(r *pb.PushRequest) { tg(r).CategoryCode = "" },
		"tag code long":              func(r *pb.PushRequest) { tg(r).CategoryCode = strings.Repeat("a", 65) },
		"tag code space":             func(r *pb.PushRequest) { tg(r).CategoryCode = "a b" },
		"tag person":                 func(r *pb.PushRequest) { tg(r).PersonId = "x" },
		"visit id":                   func(r *pb.PushRequest) { vi(r).Id = "" },
		"visit no household":         func(r *pb.PushRequest) { vi(r).HouseholdIds = nil },
		"visit too many households":  func(r *pb.PushRequest) { vi(r).HouseholdIds = uuids(501) },
		"visit household twice":      func(r *pb.PushRequest) { vi(r).HouseholdIds = []string{uuidA, uuidB, uuidA} },
		"visit household not UUID":   func(r *pb.PushRequest) { vi(r).HouseholdIds[1] = "x" },
		"visit visitor":              func(r *pb.PushRequest) { vi(r).VisitorId = "x" },
		"visit no date":              func(r *pb.PushRequest) { vi(r).VisitedAt = nil },
		"visit before 2000":          func(r *pb.PushRequest) { vi(r).VisitedAt = ts(minSeconds-1, 999999999) },
		"visit after 2200":           func(r *pb.PushRequest) { vi(r).VisitedAt = ts(maxSeconds, 1) },
		"visit form unspecified":     func(r *pb.PushRequest) { vi(r).Form = 0 },
		"visit form undefined":       func(r *pb.PushRequest) { vi(r).Form = 6 },
		"visit notes":                func(r *pb.PushRequest) { vi(r).Notes = strings.Repeat("x", 4001) },
		"visit material twice": func(r *pb.PushRequest) {
			vi(r).Materials = []pb.Material{1, 1}
		},
		"visit material unspecified": func(r *pb.PushRequest) { vi(r).Materials = []pb.Material{0} },
		"visit material undefined":   func(r *pb.PushRequest) { vi(r).Materials = []pb.Material{4} },
		"visit material far":         func(r *pb.PushRequest) { vi(r).Materials = []pb.Material{70} },
		"visit material negative":    func(r *pb.PushRequest) { vi(r).Materials = []pb.Material{-1} },
		"visit findings": func(r *pb.PushRequest) {
			for range 20 {
				vi(r).Findings = append(vi(r).Findings, &pb.Finding{Kind: 1})
			}
		},
		"finding kind unspecified": func(r *pb.PushRequest) { vi(r).Findings[0].Kind = 0 },
		"finding kind undefined":   func(r *pb.PushRequest) { vi(r).Findings[0].Kind = 6 },
		"finding note":             func(r *pb.PushRequest) { vi(r).Findings[0].Note = strings.Repeat("x", 4001) },
		"visit reason twice":       func(r *pb.PushRequest) { vi(r).RevisitReasons = []pb.RevisitReason{2, 2} },
		"visit reason undefined":   func(r *pb.PushRequest) { vi(r).RevisitReasons = []pb.RevisitReason{5} },
		"visit reason unspecified": func(r *pb.PushRequest) { vi(r).RevisitReasons = []pb.RevisitReason{0} },
		"visit due after 2200":     func(r *pb.PushRequest) { vi(r).RevisitDue = ts(maxSeconds, 1) },
		"visit campaign":           func(r *pb.PushRequest) { vi(r).CampaignId = "x" },
		"visit answers": func(r *pb.PushRequest) {
			for range 50 {
				vi(r).Answers = append(vi(r).Answers, &pb.SurveyAnswer{Question: "q", Value: 1})
			}
		},
		"answer question":      func(r *pb.PushRequest) { vi(r).Answers[0].Question = "" },
		"answer question long": func(r *pb.PushRequest) { vi(r).Answers[0].Question = strings.Repeat("q", 65) },
		"answer below":         func(r *pb.PushRequest) { vi(r).Answers[0].Value = 0 },
		"answer above":         func(r *pb.PushRequest) { vi(r).Answers[0].Value = 11 },
		"latitude":             func(r *pb.PushRequest) { vi(r).Position.Latitude = 90.000001 },
		"latitude NaN":         func(r *pb.PushRequest) { vi(r).Position.Latitude = math.NaN() },
		"longitude":            func(r *pb.PushRequest) { vi(r).Position.Longitude = -180.000001 },
		"longitude infinite":   func(r *pb.PushRequest) { vi(r).Position.Longitude = math.Inf(1) },
		"accuracy below":       func(r *pb.PushRequest) { vi(r).Position.AccuracyMeters = -0.1 },
		"accuracy above":       func(r *pb.PushRequest) { vi(r).Position.AccuracyMeters = 100000.1 },
		"position no fix time": func(r *pb.PushRequest) { vi(r).Position.FixedAt = nil },
		"amendment id":         func(r *pb.PushRequest) { am(r).Id = "" },
		"amendment visit":      func(r *pb.PushRequest) { am(r).VisitId = "x" },
		"amendment author":     func(r *pb.PushRequest) { am(r).AuthorId = "x" },
		"amendment kind":       func(r *pb.PushRequest) { am(r).Kind = 0 },
		"amendment kind undefined": func(r *pb.PushRequest) {
			am(r).Kind = 6
		},
		"amendment reason": func(r *pb.PushRequest) { am(r).Reason = strings.Repeat("x", 4001) },
		"amendment notes": func(r *pb.PushRequest) {
			n := strings.Repeat("x", 4001)
			am(r).Notes = &n
		},
		"amendment form":     func(r *pb.PushRequest) { am(r).Form = 6 },
		"amendment date":     func(r *pb.PushRequest) { am(r).VisitedAt = ts(minSeconds-1, 0) },
		"amendment finding":  func(r *pb.PushRequest) { am(r).Finding = 20 },
		"amendment unit":     func(r *pb.PushRequest) { am(r).Unit = strings.Repeat("x", 257) },
		"amendment deadline": func(r *pb.PushRequest) { am(r).Deadline = ts(maxSeconds+1, 0) },
		"amendment co-units": func(r *pb.PushRequest) { am(r).CoUnits = make([]string, 9) },
		"amendment co-unit":  func(r *pb.PushRequest) { am(r).CoUnits = []string{strings.Repeat("x", 257)} },
	}
	good := map[string]func(r *pb.PushRequest){
		"as it is": func(*pb.PushRequest) {},
		"1000 changes": func(r *pb.PushRequest) {
			for len(r.Changes) < 1000 {
				r.Changes = append(r.Changes, r.Changes[0])
			}
		},
		"upper-case ids": func(r *pb.PushRequest) { r.Changes[0].Id = strings.ToUpper(uuidA) },
		"registers at their bounds": func(r *pb.PushRequest) {
			hh(r).HeadName, hh(r).Notes = reg(strings.Repeat("x", 256)), reg(strings.Repeat("x", 4000))
		},
		"registers absent": func(r *pb.PushRequest) {
			r.Changes[0].Payload = &pb.Change_Household{Household: &pb.Household{Id: uuidA}}
		},
		"members at their bounds": func(r *pb.PushRequest) { hh(r).MemberCount.Value = 1000 },
		"residence unsaid":        func(r *pb.PushRequest) { pe(r).Residence = reg("") },
		"the household's own tag": func(r *pb.PushRequest) { tg(r).PersonId, tg(r).CategoryCode = "", strings.Repeat("A", 64) },
		"500 households":          func(r *pb.PushRequest) { vi(r).HouseholdIds = uuids(500) },
		"a plain visit": func(r *pb.PushRequest) {
			x := vi(r)
			x.Materials, x.Findings, x.RevisitReasons, x.RevisitDue, x.CampaignId, x.Answers, x.Position = nil, nil, nil, nil, "", nil, nil
		},
		"dates at their bounds": func(r *pb.PushRequest) {
			vi(r).VisitedAt, am(r).Deadline = ts(minSeconds, 0), ts(maxSeconds-1, 999999999)
		},
		"20 findings, 50 answers": func(r *pb.PushRequest) {
			for range 19 {
				vi(r).Findings = append(vi(r).Findings, &pb.Finding{Kind: 5, Note: strings.Repeat("x", 4000)})
			}
			for range 49 {
				vi(r).Answers = append(vi(r).Answers, &pb.SurveyAnswer{Question: "q", Value: 10})
			}
		},
		"a position at its bounds": func(r *pb.PushRequest) {
			p := vi(r).Position
			p.Latitude, p.Longitude, p.AccuracyMeters = -90, 180, 100000
		},
		"a bare amendment": func(r *pb.PushRequest) {
			r.Changes[4].Payload = &pb.Change_VisitAmendment{VisitAmendment: &pb.VisitAmendment{Id: uuidA, VisitId: uuidB, AuthorId: uuidC, Kind: 2, Reason: "twice"}}
		},
	}
	for name, mutate := range bad {
		r := fullPush()
		mutate(r)
		if surelyValidPush(r) {
			t.Errorf("%s: surely valid", name)
		}
		if err := v.Validate(r); err == nil {
			t.Errorf("%s: protovalidate finds the push valid: the case breaks no rule", name)
		}
	}
	for name, mutate := range good {
		r := fullPush()
		mutate(r)
		if err := v.Validate(r); err != nil {
			t.Errorf("%s: protovalidate refuses the push: %v", name, err)
		}
		if !surelyValidPush(r) {
			t.Errorf("%s: not surely valid; want a valid push past protovalidate's walk", name)
		}
	}
}

// TestSurelyValidPushAgrees: over random pushes, mostly valid, some
// fields drawn from values at or past a bound, a push surely valid is
// valid to protovalidate, and every valid push is surely valid.
// (Timestamps out of their own range, which protovalidate takes as their
// normal form, go through it: see the fuzz target.)
func TestSurelyValidPushAgrees(t *testing.T) {
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var valid, passed int
	for range 3000 {
		r := randomPush(rng)
		err := v.Validate(r)
		sure := surelyValidPush(r)
		if sure && err != nil {
			t.Fatalf("a push surely valid breaks a rule: %v\n%v", err, r)
		}
		if err == nil {
			valid++
		}
		if sure {
			passed++
		}
	}
	t.Logf("%d pushes valid of 3000, %d of them surely", valid, passed)
	if valid < 300 || passed != valid {
		t.Errorf("%d valid, %d surely valid: the draw should hold enough valid pushes, all passing by hand", valid, passed)
	}
}

// FuzzSurelyValidPush: whatever bytes decode to a push surely valid are
// valid to protovalidate.
func FuzzSurelyValidPush(f *testing.F) {
	v, err := protovalidate.New()
	if err != nil {
		f.Fatal(err)
	}
	b, err := proto.Marshal(fullPush())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r pb.PushRequest
		if proto.Unmarshal(b, &r) != nil {
			return
		}
		if surelyValidPush(&r) {
			if err := v.Validate(&r); err != nil {
				t.Fatalf("a push surely valid breaks a rule: %v", err)
			}
		}
	})
}

// randomPush draws one change of each kind into a push, each field valid
// most of the time and otherwise drawn from values at or past its bounds.
func randomPush(rng *rand.Rand) *pb.PushRequest {
	r := fullPush()
	pick := func(valid string, others ...string) string {
		if rng.IntN(40) != 0 {
			return valid
		}
		return others[rng.IntN(len(others))]
	}
	id := func() string {
		return pick(uuidA, "", "x", strings.ToUpper(uuidB), uuidA[:35], uuidA+"0", strings.Replace(uuidA, "-", "0", 1), uuidA[:35]+"G", uuidA[:35]+"名"[:1])
	}
	text := func(limit int) string {
		return pick("ok", "", strings.Repeat("x", limit), strings.Repeat("x", limit+1), strings.Repeat("名", limit/3), strings.Repeat("名", limit/3+1))
	}
	regOf := func(limit int) *pb.StringField {
		if rng.IntN(10) == 0 {
			return nil
		}
		return reg(text(limit))
	}
	code := func() string {
		return pick("code", "", "a b", strings.Repeat("a", 64), strings.Repeat("a", 65), "名", "a.b-c_D9")
	}
	num := func(valid int64, others ...int64) int64 {
		if rng.IntN(40) != 0 {
			return valid
		}
		return others[rng.IntN(len(others))]
	}
	stamp := func(optional bool) *timestamppb.Timestamp {
		if optional && rng.IntN(5) == 0 {
			return nil
		}
		switch rng.IntN(40) {
		case 0:
			return nil
		case 1:
			return ts(minSeconds-1, 999999999)
		case 2:
			return ts(minSeconds, 0)
		case 3:
			return ts(maxSeconds, 0)
		case 4:
			return ts(maxSeconds, 1)
		}
		return ts(1764000000, 0)
	}
	float := func(valid float64, others ...float64) float64 {
		if rng.IntN(40) != 0 {
			return valid
		}
		return others[rng.IntN(len(others))]
	}
	r.Changes[0].Id = id()
	h := hh(r)
	h.Id, h.HeadName, h.Address, h.PhoneMobile, h.PhoneLandline = id(), regOf(256), regOf(4000), regOf(256), regOf(256)
	h.ResponsibleWorker, h.ResponsibleLeader, h.ResponsibleUnit, h.HousingType, h.Notes = regOf(256), regOf(256), regOf(256), regOf(256), regOf(4000)
	h.MemberCount = &pb.Int64Field{Value: num(3, -1, 0, 1000, 1001, math.MinInt64)}
	p := pe(r)
	p.Id, p.HouseholdId, p.Name, p.IdNumber, p.Gender = id(), id(), regOf(256), regOf(256), regOf(256)
	p.BirthDate, p.Phone, p.Relation, p.Notes = regOf(256), regOf(256), regOf(256), regOf(4000)
	p.Residence = reg(pick("resident", "", "migrant", "moved_away", "abroad", "Resident"))
	g := tg(r)
	g.AddId, g.HouseholdId, g.CategoryCode, g.PersonId = id(), id(), code(), pick("", uuidA, "x")
	x := vi(r)
	x.Id, x.VisitorId, x.Notes, x.CampaignId = id(), id(), text(4000), pick("", uuidA, "x")
	x.HouseholdIds = []string{id()}
	if rng.IntN(20) == 0 {
		x.HouseholdIds = append(x.HouseholdIds, x.HouseholdIds[0])
	}
	x.VisitedAt, x.RevisitDue = stamp(false), stamp(true)
	x.Form = pb.VisitForm(num(1, 0, 5, 6, -1))
	x.Materials = []pb.Material{pb.Material(num(1, 0, 3, 4, 64, -1))}
	if rng.IntN(20) == 0 {
		x.Materials = append(x.Materials, x.Materials[0])
	}
	x.RevisitReasons = []pb.RevisitReason{pb.RevisitReason(num(4, 0, 5, -1))}
	x.Findings = make([]*pb.Finding, num(1, 0, 20, 21))
	for i := range x.Findings {
		x.Findings[i] = &pb.Finding{Kind: pb.FindingKind(num(3, 0, 5, 6)), Note: text(4000)}
	}
	x.Answers = make([]*pb.SurveyAnswer, num(1, 0, 50, 51))
	for i := range x.Answers {
		x.Answers[i] = &pb.SurveyAnswer{Question: code(), Value: int32(num(5, 0, 1, 10, 11, -1))}
	}
	x.Position = &pb.Position{Latitude: float(39, -90, 90, 90.5, math.NaN()), Longitude: float(116, -180, 180, -181, math.Inf(-1)),
		AccuracyMeters: float(10, 0, 100000, -1, 100001, math.NaN()), FixedAt: stamp(false)}
	if rng.IntN(10) == 0 {
		x.Position = nil
	}
	a := am(r)
	a.Id, a.VisitId, a.AuthorId, a.Reason, a.Unit = id(), id(), id(), text(4000), text(256)
	a.Kind = pb.AmendmentKind(num(1, 0, 5, 6))
	a.Form = pb.VisitForm(num(0, 5, 6, -1))
	a.Finding = uint32(num(3, 19, 20))
	a.VisitedAt, a.Deadline = stamp(true), stamp(true)
	a.CoUnits = make([]string, num(2, 0, 8, 9))
	for i := range a.CoUnits {
		a.CoUnits[i] = text(256)
	}
	if rng.IntN(40) == 0 {
		r.Changes[rng.IntN(len(r.Changes))].Payload = nil
	}
	return r
}
