package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

// TestResidenceAndLinkage: a phone lists a household's people with their
// residence status (a migrant, one moved away); the report counts them and
// the person–house linkage (members listed against the ledger's count),
// the console's household page says each one's status in Chinese, and a
// status that is none of the three is refused on the phone.
func TestResidenceAndLinkage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	street := e.nodeAt(pb.OrgLevel_ORG_LEVEL_STREET)
	w, _ := e.worker("li", e.Grids[0])
	phone := e.device("li", w)
	mustSync(t, phone)
	h, err := phone.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "张伟", "member_count": "3"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []map[string]string{
		{"name": "张伟", "residence": syncengine.ResidenceResident},
		{"name": "王小花", "residence": syncengine.ResidenceMigrant},
		{"name": "张大伟", "residence": syncengine.ResidenceMovedAway},
	} {
		if _, err := phone.AddPerson(ctx, h, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := phone.AddPerson(ctx, h, map[string]string{"name": "游客", "residence": "tourist"}); !errors.Is(err, syncengine.ErrInvalid) {
		t.Errorf("a person of residence tourist: err = %v, want ErrInvalid", err)
	}
	mustSync(t, phone)
	assertSameState(t, "phone vs server", e.serverState(e.Grids[0]), dump(t, phone))

	camp := e.campaignNow(street, "入户走访", 7)
	rep, err := e.reports(e.adminToken).GetProgress(ctx, &pb.GetProgressRequest{NodeId: street, CampaignId: camp})
	if err != nil {
		t.Fatal(err)
	}
	tot := rep.GetReport().GetTotal()
	if tot.GetPersons() != 2 || tot.GetPersonsMigrant() != 1 || tot.GetPersonsMovedAway() != 1 ||
		tot.GetMembers() != 3 || tot.GetMembersLinked() != 2 || tot.GetMembersMismatch() != 1 {
		t.Errorf("persons %d (migrants %d, moved away %d), members %d linked %d mismatched %d; want 2 (1, 1), 3, 2, 1",
			tot.GetPersons(), tot.GetPersonsMigrant(), tot.GetPersonsMovedAway(), tot.GetMembers(), tot.GetMembersLinked(), tot.GetMembersMismatch())
	}

	// The office's ledger says 王小花 is a resident now and 张大伟 has come
	// back: two changes of status, which the phone learns, and the export
	// says the rest.
	imp, err := e.ledgerClient("").ImportLedger(ctx, &pb.ImportLedgerRequest{NodeId: street, FileName: "台账.csv",
		File: []byte("户编号,家庭成员\n" + h + ",张伟、王小花（户籍人口）、张大伟（户籍）\n")})
	if err != nil {
		t.Fatal(err)
	}
	if imp.GetResidenceChanges() != 2 || imp.GetUpdated() != 1 || !imp.GetApplied() {
		t.Errorf("import of the statuses: %d changes, %d updated, applied %v; want 2, 1, true", imp.GetResidenceChanges(), imp.GetUpdated(), imp.GetApplied())
	}
	mustSync(t, phone)
	assertSameState(t, "phone vs server after the import", e.serverState(e.Grids[0]), dump(t, phone))
	residence := map[string]string{}
	for _, p := range dump(t, phone).Persons {
		residence[p.Name.Value] = p.Residence.Value
	}
	if residence["王小花"] != syncengine.ResidenceResident || residence["张大伟"] != syncengine.ResidenceResident {
		t.Errorf("on the phone after the import: %v", residence)
	}
	if err := phone.EditPerson(ctx, personID(t, dump(t, phone).Persons, "王小花"), map[string]string{"residence": syncengine.ResidenceMigrant}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, phone)
	if rows := e.ledgerRows(ctx, street); len(rows) != 1 || rows[0][11] != "张伟、王小花(migrant)、张大伟" {
		t.Errorf("the ledger's persons: %q, want 张伟、王小花(migrant)、张大伟", rows)
	}

	b := e.rootBrowser()
	_, _, page := b.get("/console/household/" + h)
	for _, want := range []string{`<td class="residence">户籍人口</td>`, `<td class="residence">流动人口</td>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the household page lacks %s", want)
		}
	}
}

// personID is the id of the person named name among ps.
func personID(t *testing.T, ps []syncengine.Person, name string) string {
	t.Helper()
	for _, p := range ps {
		if p.Name.Value == name {
			return p.ID
		}
	}
	t.Fatalf("no person %s", name)
	return ""
}
