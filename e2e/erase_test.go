package e2e

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

// TestErasePersonalData: on a request, an admin erases a household's
// personal data. On the server and, after their next sync, on both phones
// that hold it, its fields, its resident's and its visits' notes are blank,
// and the words are gone from every file's bytes, write-ahead logs
// included; the visits stay, and the erasure is in the audit log. A
// person's erasure blanks that person only.
func TestErasePersonalData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	li, _ := e.worker("li", e.Grids[0])
	wang, _ := e.worker("wang", e.Grids[0])
	a, b := e.device("li", li), e.device("wang", wang)
	mustSync(t, a)
	mustSync(t, b)
	const marker = "Erase-Me-7f3a"
	h, err := a.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": marker + " head", "address": marker + " Lane", "phone_mobile": "13811112222"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddPerson(ctx, h, map[string]string{"name": marker + " resident", "id_number": "110101199001011234"}); err != nil {
		t.Fatal(err)
	}
	// Where the phone stood is where the household lives: erased too.
	const place = "31.2345678"
	v, err := a.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson, Notes: "notes about " + marker,
		Findings: []syncengine.Finding{{Kind: syncengine.FindingDispute, Note: marker + " dispute"}},
		Position: &syncengine.Position{Latitude: 31.2345678, Longitude: 121.8765432, FixedAt: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	notes := "corrected: " + marker
	if _, err := a.AmendVisit(ctx, v, "typo", sdk.Correction{Notes: &notes}); err != nil {
		t.Fatal(err)
	}
	other, err := a.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "Neighbour"})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := a.AddPerson(ctx, other, map[string]string{"name": "Kept Neighbour"})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := a.AddPerson(ctx, other, map[string]string{"name": "Gone-Resident-11"})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, a)
	mustSync(t, b)
	if !e.serverHolds(t, marker) || !e.serverHolds(t, "Gone-Resident-11") || !e.serverHolds(t, place) {
		t.Fatal("the markers are not in the server's database: the test cannot see an erasure")
	}
	for _, r := range []*sdk.Replica{a, b} {
		if !fileHolds(t, r.Path(), marker) {
			t.Fatal("the marker is not in the replica's files: the test cannot see an erasure")
		}
	}

	res, err := e.Admin.ErasePersonalData(ctx, &pb.ErasePersonalDataRequest{Target: &pb.ErasePersonalDataRequest_HouseholdId{HouseholdId: h}, Reason: "申请删除 2026-12"})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetHouseholds() != 1 || res.GetPersons() != 1 || res.GetVisits() != 1 || res.GetAmendments() != 1 {
		t.Errorf("erasure = %v; want 1 household, 1 person, 1 visit, 1 amendment", res)
	}
	if _, err := e.Admin.ErasePersonalData(ctx, &pb.ErasePersonalDataRequest{Target: &pb.ErasePersonalDataRequest_PersonId{PersonId: gone}, Reason: "申请删除 2026-13"}); err != nil {
		t.Fatal(err)
	}
	if e.serverHolds(t, marker) || e.serverHolds(t, "Gone-Resident-11") || e.serverHolds(t, place) {
		t.Error("the erased words are still in the server's files")
	}
	for name, r := range map[string]*sdk.Replica{"li": a, "wang": b} {
		mustSync(t, r)
		d, err := r.Household(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if d.Household.HeadName.Value != "" || d.Household.Address.Value != "" || d.Household.PhoneMobile.Value != "" {
			t.Errorf("%s: household after the erasure %+v; want its fields blank", name, d.Household)
		}
		if len(d.Persons) != 1 || d.Persons[0].Name.Value != "" || d.Persons[0].IDNumber.Value != "" {
			t.Errorf("%s: persons after the erasure %+v; want one, blank", name, d.Persons)
		}
		if len(d.Visits) != 1 || d.Visits[0].Notes != "" || d.Visits[0].Findings[0].Note != "" || d.Visits[0].Form != syncengine.FormInPerson ||
			d.Visits[0].Position != nil {
			t.Errorf("%s: visits after the erasure %+v; want the visit kept, its notes blank", name, d.Visits)
		}
		if fileHolds(t, r.Path(), marker) || fileHolds(t, r.Path(), "Gone-Resident-11") || fileHolds(t, r.Path(), place) {
			t.Errorf("%s: the erased words are still in the replica's files", name)
		}
		n, err := r.Household(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range n.Persons {
			if (p.ID == kept) != (p.Name.Value == "Kept Neighbour") {
				t.Errorf("%s: after a person's erasure the neighbour's persons are %+v; want only %s blank", name, n.Persons, gone)
			}
		}
	}
	assertSameState(t, "li vs the server", e.serverState(e.Grids[0]), dump(t, a))
	assertSameState(t, "wang vs the server", e.serverState(e.Grids[0]), dump(t, b))
	log, err := e.reports(e.adminToken).ListAuditLog(ctx, &pb.ListAuditLogRequest{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var erasures int
	for _, entry := range log.GetEntries() {
		if strings.HasPrefix(entry.GetAction(), "erase ") && strings.Contains(entry.GetAction(), "申请删除") {
			erasures++
		}
	}
	if erasures != 2 {
		t.Errorf("the audit log holds %d erasures, want 2: %v", erasures, log.GetEntries())
	}
}

// TestErasureReachesWorkMadeBefore: a phone records a visit and links a
// resident offline; the household is erased before the phone syncs. What
// it pushes afterwards was made before the erasure, and arrives blank: on
// the server, and in the phone's own file once it syncs again.
func TestErasureReachesWorkMadeBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	li, _ := e.worker("li", e.Grids[0])
	a := e.device("li", li)
	mustSync(t, a)
	h, err := a.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "户主"})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, a)
	const marker = "Late-Marker-5b1d"
	if _, err := a.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson, Notes: "talked to " + marker,
		Position: &syncengine.Position{Latitude: 30.5, Longitude: 114.25, FixedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddPerson(ctx, h, map[string]string{"name": marker + " resident"}); err != nil {
		t.Fatal(err)
	}
	// The erasure comes after the work, by the clocks too: in the same
	// millisecond the two tie, and a tie is not before (a flake of one run
	// in four under load).
	made, err := a.Household(ctx, h)
	if err != nil || len(made.Persons) != 1 {
		t.Fatalf("the resident added: %+v, %v", made.Persons, err)
	}
	for !time.Now().After(made.Persons[0].Name.Clock.Time()) {
		runtime.Gosched()
	}
	if _, err := e.Admin.ErasePersonalData(ctx, &pb.ErasePersonalDataRequest{Target: &pb.ErasePersonalDataRequest_HouseholdId{HouseholdId: h}, Reason: "request"}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, a)
	mustSync(t, a)
	if e.serverHolds(t, marker) {
		t.Error("work made before the erasure and pushed after it holds the erased words on the server")
	}
	if fileHolds(t, a.Path(), marker) {
		t.Error("the phone that made it still holds the erased words")
	}
	d, err := a.Household(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Visits) != 1 || d.Visits[0].Notes != "" || d.Visits[0].Position != nil || len(d.Persons) != 1 || d.Persons[0].Name.Value != "" {
		t.Errorf("after the sync: visits %+v, persons %+v; want one of each, blank", d.Visits, d.Persons)
	}

	// A visit recorded after the erasure keeps its notes.
	if _, err := a.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormPhone, Notes: "after the erasure"}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, a)
	if !e.serverHolds(t, "after the erasure") {
		t.Error("a visit recorded after the erasure lost its notes")
	}
	assertSameState(t, "li vs the server", e.serverState(e.Grids[0]), dump(t, a))
}
