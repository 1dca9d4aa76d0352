package e2e

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

// TestZeroReports: a grid that found a hazard reported it, one whose
// office made a zero report (零报告) for the week reported that; the rest
// of the week's units are silent, and every unit is silent in a week with
// neither. A zero report is a grid's or a community's, not a street's.
func TestZeroReports(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 3)
	li, _ := e.worker("李明", e.Grids[0])
	phone := e.device("li", li)
	h, err := phone.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "张伟"})
	if err != nil {
		t.Fatal(err)
	}
	in := sdkVisit(h)
	in.Findings = []syncengine.Finding{{Kind: syncengine.FindingHazard, Note: "楼道堆物"}}
	if _, err := phone.RecordVisit(ctx, in); err != nil {
		t.Fatal(err)
	}
	mustSync(t, phone)
	now := time.Now()
	weekStart := now.Add(-24 * time.Hour)
	week := []*timestamppb.Timestamp{timestamppb.New(weekStart), timestamppb.New(weekStart.Add(7 * 24 * time.Hour))}
	if _, err := e.Admin.PutZeroReport(ctx, &pb.PutZeroReportRequest{NodeId: e.Grids[1], From: week[0], Until: week[1], Note: "本周排查无矛盾纠纷"}); err != nil {
		t.Fatal(err)
	}
	_, err = e.Admin.PutZeroReport(ctx, &pb.PutZeroReportRequest{NodeId: e.nodeAt(pb.OrgLevel_ORG_LEVEL_STREET), From: week[0], Until: week[1]})
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("a street's zero report: %v, want InvalidArgument", err)
	}
	_, err = e.Admin.PutZeroReport(ctx, &pb.PutZeroReportRequest{NodeId: e.Grids[1], From: week[1], Until: week[0]})
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("a zero report of a period running backwards: %v, want InvalidArgument", err)
	}

	reporting := func(from, until *timestamppb.Timestamp) map[string]*pb.ReportingUnit {
		t.Helper()
		res, err := e.reports(e.adminToken).ListReporting(ctx, &pb.ListReportingRequest{From: from, Until: until})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*pb.ReportingUnit{}
		for _, u := range res.GetUnits() {
			out[u.GetNode().GetName()] = u
		}
		return out
	}
	units := reporting(week[0], week[1])
	for name, want := range map[string]struct {
		items  uint32
		zeros  int
		silent bool
	}{
		"Community": {1, 0, false},
		"Grid A":    {1, 0, false},
		"Grid B":    {0, 1, false},
		"Grid C":    {0, 0, true},
	} {
		u := units[name]
		if u.GetItems() != want.items || len(u.GetZeroReports()) != want.zeros || u.GetSilent() != want.silent {
			t.Errorf("%s in the week: %v; want items %d, zero reports %d, silent %v", name, u, want.items, want.zeros, want.silent)
		}
	}
	if z := units["Grid B"].GetZeroReports(); len(z) == 1 && (z[0].GetNote() != "本周排查无矛盾纠纷" || z[0].GetReportedBy() != "root") {
		t.Errorf("Grid B's zero report: %v", z[0])
	}
	before := reporting(timestamppb.New(weekStart.Add(-7*24*time.Hour)), week[0])
	for name, u := range before {
		if !u.GetSilent() {
			t.Errorf("%s the week before: %v; want silent", name, u)
		}
	}
	if len(units) != 4 {
		t.Errorf("units: %v; want the community and its three grids", units)
	}
}
