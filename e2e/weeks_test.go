package e2e

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sdk "github.com/doorbook/doorbook/client-sdk"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

// TestCampaignWeeks: a campaign of four weeks on the server's fake clock.
// A grid worker visits a household a week for three weeks; the first
// visit finds a hazard, which the office assigns in the second week and
// closes off in the third. Reports as of each week's end count only what
// was done by then (coverage, the item's state), and the weekly series,
// in the API and as the export's 周进度 sheet, says each week's figures.
func TestCampaignWeeks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	street := e.nodeAt(pb.OrgLevel_ORG_LEVEL_STREET)
	const week = 7 * 24 * time.Hour
	t0 := e.now.Now().UTC().Truncate(time.Millisecond)
	pc, err := e.Admin.PutCampaign(ctx, &pb.PutCampaignRequest{NodeId: proto.String(street), Name: proto.String("四周走访"),
		StartsAt: timestamppb.New(t0), EndsAt: timestamppb.New(t0.Add(4 * week)),
		SetQuotas: true, Quotas: []*pb.Quota{{Role: pb.WorkerRole_WORKER_ROLE_GRID_WORKER, Households: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	camp := pc.GetCampaign().GetId()
	liID := e.roleWorker("李明", pb.WorkerRole_WORKER_ROLE_GRID_WORKER, e.Grids[0])
	li := e.device("li-phone", liID, sdk.WithNow(e.now.Now))
	mustSync(t, li)
	var hh []string
	for i := range 4 {
		h, err := li.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": fmt.Sprintf("户主%d", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		hh = append(hh, h)
	}
	// A visit a day into each of the first three weeks.
	var hazard string
	for w := range 3 {
		e.now.Set(time.Duration(w)*week + 24*time.Hour)
		in := sdk.VisitInput{HouseholdIDs: []string{hh[w]}, Form: syncengine.FormInPerson}
		if w == 0 {
			in.Findings = []syncengine.Finding{{Kind: syncengine.FindingHazard, Note: "楼道堆放杂物"}}
		}
		v, err := li.RecordVisit(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if w == 0 {
			hazard = v
		}
		mustSync(t, li)
		switch w {
		case 1: // assigned in the second week
			if _, err := e.Admin.UpdateItem(ctx, &pb.UpdateItemRequest{VisitId: hazard, Kind: pb.AmendmentKind_AMENDMENT_KIND_ITEM_ASSIGN,
				Unit: "和平派出所", Deadline: timestamppb.New(t0.Add(3 * week))}); err != nil {
				t.Fatal(err)
			}
		case 2: // resolved and closed off in the third
			for _, k := range []pb.AmendmentKind{pb.AmendmentKind_AMENDMENT_KIND_ITEM_RESOLVE, pb.AmendmentKind_AMENDMENT_KIND_ITEM_CLOSE} {
				if _, err := e.Admin.UpdateItem(ctx, &pb.UpdateItemRequest{VisitId: hazard, Kind: k, Note: "已清理"}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	e.now.Set(3*week + 24*time.Hour) // a day into the fourth week
	rc := e.reports(e.adminToken)

	// As of each week's end: the visits made by then, the item as it stood.
	for _, tc := range []struct {
		at                 time.Time
		visited, itemsOpen uint32
	}{
		{t0.Add(week), 1, 1}, {t0.Add(2 * week), 2, 1}, {t0.Add(3 * week), 3, 0}, {time.Time{}, 3, 0},
	} {
		req := &pb.GetProgressRequest{NodeId: street, CampaignId: camp}
		if !tc.at.IsZero() {
			req.At = timestamppb.New(tc.at)
		}
		rep, err := rc.GetProgress(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		tot := rep.GetReport().GetTotal()
		if tot.GetVisited() != tc.visited || tot.GetItemsOpen() != tc.itemsOpen || tot.GetHouseholds() != 4 {
			t.Errorf("as of %s: %d of %d visited, %d items open; want %d of 4, %d", tc.at, tot.GetVisited(), tot.GetHouseholds(), tot.GetItemsOpen(), tc.visited, tc.itemsOpen)
		}
		if q := rep.GetReport().GetQuotas(); len(q) != 1 || q[0].GetVisited() != tc.visited {
			t.Errorf("as of %s: quotas %v, want 李明 with %d", tc.at, q, tc.visited)
		}
	}

	// The weekly series: four weeks, the last up to now.
	rep, err := rc.GetProgress(ctx, &pb.GetProgressRequest{NodeId: street, CampaignId: camp, Weekly: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range rep.GetReport().GetWeeks() {
		got = append(got, fmt.Sprintf("%s–%s visited %d/%d quota %d/%d found %d closed %d open %d",
			w.GetFrom().AsTime().Sub(t0), w.GetUntil().AsTime().Sub(t0).Truncate(time.Hour), w.GetTotal().GetVisited(), w.GetTotal().GetHouseholds(),
			w.GetQuotaVisited(), w.GetQuotaTotal(), w.GetItemsOpened(), w.GetItemsClosed(), w.GetTotal().GetItemsOpen()))
	}
	want := []string{
		"0s–168h0m0s visited 1/4 quota 1/4 found 1 closed 0 open 1",
		"168h0m0s–336h0m0s visited 2/4 quota 2/4 found 0 closed 0 open 1",
		"336h0m0s–504h0m0s visited 3/4 quota 3/4 found 0 closed 1 open 0",
		"504h0m0s–528h0m0s visited 3/4 quota 3/4 found 0 closed 0 open 0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("weeks:\n got %q\nwant %q", got, want)
	}

	// The export's 周进度 sheet says the same, as an office reads it.
	_, data, err := exportFile(ctx, rc, &pb.ExportRequest{NodeId: street, CampaignId: camp, Kind: pb.ExportKind_EXPORT_KIND_PROGRESS,
		Format: pb.ExportFormat_EXPORT_FORMAT_XLSX, Language: pb.Language_LANGUAGE_ZH})
	if err != nil {
		t.Fatal(err)
	}
	book, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := book.GetRows("周进度")
	if err != nil {
		t.Fatal(err)
	}
	day := func(d time.Duration) string { return t0.Add(d).In(syncengine.ChinaTime).Format("2006-01-02") }
	lastDay := "?"
	if ws := rep.GetReport().GetWeeks(); len(ws) == 4 {
		// The last week ends now (the fake clock runs on).
		lastDay = ws[3].GetUntil().AsTime().Add(-time.Millisecond).In(syncengine.ChinaTime).Format("2006-01-02")
	}
	wantRows := [][]string{
		{"周次", "开始日期", "结束日期", "户数", "已走访户数", "覆盖率", "重点人群走访率", "任务完成率", "本周发现事项", "本周销号事项", "未办结事项"},
		{"1", day(0), day(week - time.Millisecond), "4", "1", "25.0%", "0.0%", "25.0%", "1", "0", "1"},
		{"2", day(week), day(2*week - time.Millisecond), "4", "2", "50.0%", "0.0%", "50.0%", "0", "0", "1"},
		{"3", day(2 * week), day(3*week - time.Millisecond), "4", "3", "75.0%", "0.0%", "75.0%", "0", "1", "0"},
		{"4", day(3 * week), lastDay, "4", "3", "75.0%", "0.0%", "75.0%", "0", "0", "0"},
	}
	// The sheet's first row is its title (node, campaign, date).
	if len(rows) > 0 {
		rows = rows[1:]
	}
	if diff := deepDiff(wantRows, rows); diff != "" {
		t.Errorf("周进度:\n%s", diff)
	}

	// The console's weeks: a line per rate, a row per week.
	b := e.rootBrowser()
	status, _, page := b.get("/console/weeks?node=" + street + "&campaign=" + camp)
	coverage := regexp.MustCompile(`<td class="coverage">([^<]*)</td>`).FindAllStringSubmatch(page, -1)
	var cells []string
	for _, m := range coverage {
		cells = append(cells, m[1])
	}
	line := regexp.MustCompile(`id="line-coverage" points="([^"]*)"`).FindStringSubmatch(page)
	if status != 200 || !slices.Equal(cells, []string{"25.0%", "50.0%", "75.0%", "75.0%"}) || line == nil || len(strings.Fields(line[1])) != 4 {
		t.Errorf("the console's weeks: %d, coverage cells %q, coverage line %q", status, cells, line)
	}
}
