package e2e

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/syncengine"
)

// TestPersonCategories: key groups are people. A worker puts a key-person
// category on one person of a household of two; the household counts it
// (key-group households, its categories) on the server and on a
// co-worker's phone, with the person named; taking the category off the
// household leaves the person's; a push naming a person of another
// household is refused; and erasing the person takes the category with
// it.
func TestPersonCategories(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	street := e.nodeAt(pb.OrgLevel_ORG_LEVEL_STREET)
	li, _ := e.worker("li", e.Grids[0])
	wang, _ := e.worker("wang", e.Grids[0])
	a, b := e.device("li", li), e.device("wang", wang)
	mustSync(t, a)
	mustSync(t, b)
	h, err := a.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "张伟"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := a.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "李娜"})
	if err != nil {
		t.Fatal(err)
	}
	son, err := a.AddPerson(ctx, h, map[string]string{"name": "张小伟"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddPerson(ctx, h, map[string]string{"name": "张伟"}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddPersonTag(ctx, son, "released_prisoner"); err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveTag(ctx, h, "released_prisoner"); !errors.Is(err, syncengine.ErrNotFound) {
		t.Errorf("taking the category off the household, which has it only on a person: err = %v, want ErrNotFound", err)
	}
	mustSync(t, a)
	mustSync(t, b)
	assertSameState(t, "wang's phone vs server", e.serverState(e.Grids[0]), dump(t, b))
	var onPerson []string
	for _, tg := range dump(t, b).Tags {
		if tg.PersonID == son && !tg.Removed {
			onPerson = append(onPerson, tg.Category)
		}
	}
	if !slices.Equal(onPerson, []string{"released_prisoner"}) {
		t.Errorf("on wang's phone, the son's categories: %q", onPerson)
	}

	camp := e.campaignNow(street, "重点人群走访", 7)
	keyGroup := func() uint32 {
		t.Helper()
		rep, err := e.reports(e.adminToken).GetProgress(ctx, &pb.GetProgressRequest{NodeId: street, CampaignId: camp})
		if err != nil {
			t.Fatal(err)
		}
		return rep.GetReport().GetTotal().GetKeyGroupHouseholds()
	}
	if n := keyGroup(); n != 1 {
		t.Errorf("key-group households with a released prisoner among the persons: %d, want 1", n)
	}

	// A tag naming a person of another household is refused.
	sc := doorbookv1connect.NewSyncServiceClient(http.DefaultClient, e.URL, connect.WithInterceptors(bearer.Token(e.deviceToken(li))))
	_, err = sc.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{{Id: newID(), Payload: &pb.Change_Tag{Tag: &pb.TagElement{
		AddId: newID(), HouseholdId: other, PersonId: son, CategoryCode: "key_person", Clock: nowClock()}}}}})
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "not of household") {
		t.Errorf("a tag on another household's person: err = %v, want InvalidArgument", err)
	}

	// Erasing the person takes their category.
	if _, err := e.Admin.ErasePersonalData(ctx, &pb.ErasePersonalDataRequest{Target: &pb.ErasePersonalDataRequest_PersonId{PersonId: son}, Reason: "本人申请"}); err != nil {
		t.Fatal(err)
	}
	if n := keyGroup(); n != 0 {
		t.Errorf("key-group households once the person is erased: %d, want 0", n)
	}
	mustSync(t, b)
	assertSameState(t, "wang's phone vs server after the erasure", e.serverState(e.Grids[0]), dump(t, b))
}
