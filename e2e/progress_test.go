package e2e

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sdk "github.com/doorbook/doorbook/client-sdk"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

// TestProgressAgreesAfterAMove: a worker visits households of their grid;
// one then moves to another grid of the street, others to another street.
// The phone drops them, yet its progress still counts the households the
// worker visited, as does the server's report of the street:
// a person's quota counts the households they visited, wherever those are
// now.
func TestProgressAgreesAfterAMove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 2)
	nodes, err := e.Admin.ListOrgNodes(ctx, &pb.ListOrgNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var street, district string
	for _, n := range nodes.GetNodes() {
		switch n.GetLevel() {
		case pb.OrgLevel_ORG_LEVEL_STREET:
			street = n.GetId()
		case pb.OrgLevel_ORG_LEVEL_DISTRICT:
			district = n.GetId()
		}
	}
	otherStreet := e.node(district, pb.OrgLevel_ORG_LEVEL_STREET, "Other street")
	farGrid := e.node(e.node(otherStreet, pb.OrgLevel_ORG_LEVEL_COMMUNITY, "Other community"), pb.OrgLevel_ORG_LEVEL_GRID, "Far grid")
	now := e.now.Now()
	camp, err := e.Admin.PutCampaign(ctx, &pb.PutCampaignRequest{NodeId: proto.String(street), Name: proto.String("大走访"),
		StartsAt: timestamppb.New(now.Add(-24 * time.Hour)), EndsAt: timestamppb.New(now.Add(24 * time.Hour)),
		SetQuotas: true, Quotas: []*pb.Quota{{Role: pb.WorkerRole_WORKER_ROLE_GRID_WORKER, Households: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	li, _ := e.worker("li", e.Grids[0])
	r := e.device("li", li)
	mustSync(t, r)
	// Three plain visits; one calling for a revisit, one corrected and one
	// voided (the server reads these apart from the plain ones, which it
	// sums), all but the first household then moving out of the grid.
	var hs, visits []string
	for i := range 6 {
		h, err := r.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "户主"})
		if err != nil {
			t.Fatal(err)
		}
		in := sdkVisit(h)
		if i == 3 {
			in.RevisitDue = now.Add(48 * time.Hour)
			in.RevisitReasons = []syncengine.RevisitReason{syncengine.RevisitSpecialDifficulty}
		}
		v, err := r.RecordVisit(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		hs, visits = append(hs, h), append(visits, v)
	}
	if _, err := r.AmendVisit(ctx, visits[4], "typo", sdk.Correction{Notes: proto.String("corrected")}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.VoidVisit(ctx, visits[5], "wrong door"); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)
	for h, grid := range map[string]string{hs[1]: e.Grids[1], hs[2]: farGrid, hs[3]: farGrid, hs[4]: farGrid, hs[5]: farGrid} {
		if _, err := e.Admin.MoveHousehold(ctx, &pb.MoveHouseholdRequest{HouseholdId: h, GridId: grid}); err != nil {
			t.Fatal(err)
		}
	}
	if rep := mustSync(t, r); rep.Evicted != 5 {
		t.Fatalf("evicted %d households, want 5", rep.Evicted)
	}
	p, _, err := r.Progress(ctx, camp.GetCampaign().GetId(), e.now.Now())
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.reports(e.adminToken).GetProgress(ctx, &pb.GetProgressRequest{NodeId: street, CampaignId: camp.GetCampaign().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	server := -1
	for _, q := range res.GetReport().GetQuotas() {
		if q.GetWorkerId() == li {
			server = int(q.GetVisited())
		}
	}
	if p.Visited != 5 || server != 5 {
		t.Errorf("after the moves the phone counts %d households visited, the server's report of the street %d; want 5 and 5 (the voided visit not)", p.Visited, server)
	}
}
