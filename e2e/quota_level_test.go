package e2e

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
)

// TestQuotasByLevel: seed 002's quotas, district leaders 30 households,
// department and town leaders 50, every cadre 80, are said per role, and
// the report holds each visitor to their own.
func TestQuotasByLevel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	district := e.nodeAt(pb.OrgLevel_ORG_LEVEL_DISTRICT)
	now := time.Now()
	camp, err := e.Admin.PutCampaign(ctx, &pb.PutCampaignRequest{NodeId: proto.String(district), Name: proto.String("大走访"),
		StartsAt: timestamppb.New(now.Add(-24 * time.Hour)), EndsAt: timestamppb.New(now.Add(30 * 24 * time.Hour)),
		SetQuotas: true, Quotas: []*pb.Quota{
			{Role: pb.WorkerRole_WORKER_ROLE_DISTRICT_LEADER, Households: 30},
			{Role: pb.WorkerRole_WORKER_ROLE_DEPARTMENT_LEADER, Households: 50},
			{Role: pb.WorkerRole_WORKER_ROLE_CADRE, Households: 80},
		}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint32{}
	for name, role := range map[string]pb.WorkerRole{
		"区长":  pb.WorkerRole_WORKER_ROLE_DISTRICT_LEADER,
		"局长":  pb.WorkerRole_WORKER_ROLE_DEPARTMENT_LEADER,
		"干部甲": pb.WorkerRole_WORKER_ROLE_CADRE,
		"网格员": pb.WorkerRole_WORKER_ROLE_GRID_WORKER,
	} {
		e.roleWorker(name, role, e.Grids[0])
		want[name] = map[pb.WorkerRole]uint32{pb.WorkerRole_WORKER_ROLE_DISTRICT_LEADER: 30, pb.WorkerRole_WORKER_ROLE_DEPARTMENT_LEADER: 50,
			pb.WorkerRole_WORKER_ROLE_CADRE: 80}[role]
	}
	rep, err := e.reports(e.adminToken).GetProgress(ctx, &pb.GetProgressRequest{CampaignId: camp.GetCampaign().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint32{}
	for _, q := range rep.GetReport().GetQuotas() {
		got[q.GetName()] = q.GetQuota()
	}
	for name, q := range want {
		if got[name] != q {
			t.Errorf("%s's quota: %d, want %d", name, got[name], q)
		}
	}
}
