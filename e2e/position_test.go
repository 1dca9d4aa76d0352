package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"slices"
	"testing"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

// TestVisitPosition: a visit recorded with the phone's fix reaches the
// server and another phone exactly, and the visit register shows it; a
// visit without one shows nothing, and a fix off the globe is refused on
// the phone.
func TestVisitPosition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	worker, _ := e.worker("李明", e.Grids[0])
	a, b := e.device("a", worker), e.device("b", worker)
	h, err := a.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "张伟", "address": "幸福路 1 号"})
	if err != nil {
		t.Fatal(err)
	}
	fix := &syncengine.Position{Latitude: 28.194012, Longitude: 112.976033, AccuracyMeters: 12,
		FixedAt: time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)}
	placed, err := a.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson, Position: fix})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormPhone}); err != nil {
		t.Fatal(err)
	}
	off := &syncengine.Position{Latitude: 95, Longitude: 0, FixedAt: fix.FixedAt}
	if _, err := a.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson, Position: off}); !errors.Is(err, syncengine.ErrInvalid) {
		t.Errorf("a fix at latitude 95: %v, want ErrInvalid", err)
	}
	mustSync(t, a)
	mustSync(t, b)
	got, err := b.Household(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	positions := 0
	for _, v := range got.Visits {
		switch {
		case v.ID == placed && (v.Position == nil || *v.Position != *fix):
			t.Errorf("the other phone has the visit at %+v, want %+v", v.Position, fix)
		case v.ID != placed && v.Position != nil:
			t.Errorf("a visit recorded without a fix has one: %+v", v.Position)
		}
		if v.Position != nil {
			positions++
		}
	}
	if len(got.Visits) != 2 || positions != 1 {
		t.Errorf("the other phone has %d visits, %d with a position; want 2 and 1", len(got.Visits), positions)
	}

	_, data, err := exportFile(ctx, e.reports(e.adminToken), &pb.ExportRequest{Kind: pb.ExportKind_EXPORT_KIND_VISITS,
		Format: pb.ExportFormat_EXPORT_FORMAT_CSV, Language: pb.Language_LANGUAGE_EN})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := -1
	var cells []string
	for _, row := range rows {
		if i := slices.Index(row, "position"); i >= 0 && col < 0 {
			col = i
			continue
		}
		if col >= 0 && col < len(row) {
			cells = append(cells, row[col])
		}
	}
	slices.Sort(cells)
	if col < 0 || !slices.Equal(cells, []string{"", "28.194012, 112.976033 ±12 m"}) {
		t.Errorf("the visit register's positions: column %d, %q", col, cells)
	}

	// The report counts the campaign's visits with a position.
	district := e.nodeAt(pb.OrgLevel_ORG_LEVEL_DISTRICT)
	now := time.Now()
	camp, err := e.Admin.PutCampaign(ctx, &pb.PutCampaignRequest{NodeId: proto.String(district), Name: proto.String("大走访"),
		StartsAt: timestamppb.New(now.Add(-24 * time.Hour)), EndsAt: timestamppb.New(now.Add(24 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.reports(e.adminToken).GetProgress(ctx, &pb.GetProgressRequest{CampaignId: camp.GetCampaign().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.GetReport()
	if r.GetTotal().GetVisitsWithPosition() != 1 || len(r.GetCommunities()) != 1 || r.GetCommunities()[0].GetVisitsWithPosition() != 1 {
		t.Errorf("the report counts %d visits with a position (communities %v), want 1", r.GetTotal().GetVisitsWithPosition(), r.GetCommunities())
	}
}
