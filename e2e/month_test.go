package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sdk "github.com/doorbook/doorbook/client-sdk"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

// TestCampaignMonth runs the cycle an office runs, over a fake month: it
// imports the street's ledger, starts a campaign of four weeks with
// quotas, its own ranking and seed 000's rewards and fines, and three
// grid workers' phones visit week by week; a hazard is found, assigned and
// left past its deadline. Then, cell by cell: the reports as of each
// week's end, the weekly series, the ranking with its rewards, the
// hazard's escalation week by week and its line in the register export,
// and the phone that stopped syncing.
func TestCampaignMonth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 2) // Community: Grid A, Grid B
	street := e.nodeAt(pb.OrgLevel_ORG_LEVEL_STREET)
	comm2 := e.node(street, pb.OrgLevel_ORG_LEVEL_COMMUNITY, "Community 2")
	gridC := e.node(comm2, pb.OrgLevel_ORG_LEVEL_GRID, "Grid C")
	grids := []string{e.Grids[0], e.Grids[1], gridC}
	const day, week = 24 * time.Hour, 7 * 24 * time.Hour
	t0 := e.now.Now().UTC().Truncate(time.Millisecond)

	// Day one: the street's ledger, four households a grid, as the office
	// keeps it.
	var ledger strings.Builder
	ledger.WriteString("社区,网格,户主姓名,地址,五必访类别\n")
	for g, name := range []string{"Grid A", "Grid B", "Grid C"} {
		comm := "Community"
		if g == 2 {
			comm = "Community 2"
		}
		for i := range 4 {
			cat := ""
			if i == 0 {
				cat = "重点对象"
			}
			fmt.Fprintf(&ledger, "%s,%s,户主%c%d,幸福路 %d 号,%s\n", comm, name, 'A'+g, i+1, 10*g+i+1, cat)
		}
	}
	imported, err := e.ledgerClient("").ImportLedger(ctx, &pb.ImportLedgerRequest{NodeId: street, FileName: "台账.csv", File: []byte(ledger.String())})
	if err != nil || imported.GetCreated() != 12 || !imported.GetApplied() {
		t.Fatalf("import: %v, %d created", err, imported.GetCreated())
	}
	hh := map[string]string{} // 户主A1 → id
	for i, r := range imported.GetRows() {
		hh[fmt.Sprintf("户主%c%d", 'A'+i/4, i%4+1)] = r.GetHouseholdId()
	}

	// The campaign: four weeks, 4 households a grid worker, ranked by
	// coverage, with seed 000's reward for the first and a fine after.
	pc, err := e.Admin.PutCampaign(ctx, &pb.PutCampaignRequest{NodeId: proto.String(street), Name: proto.String("平安大走访"),
		StartsAt: timestamppb.New(t0), EndsAt: timestamppb.New(t0.Add(4 * week)),
		SetQuotas: true, Quotas: []*pb.Quota{{Role: pb.WorkerRole_WORKER_ROLE_GRID_WORKER, Households: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	camp := pc.GetCampaign().GetId()
	if _, err := e.Admin.SetRanking(ctx, &pb.SetRankingRequest{CampaignId: camp, Ranking: &pb.Ranking{
		Weights: []*pb.RankingWeight{{Metric: "coverage", Weight: 1}},
		Bands:   []*pb.RewardBand{{FromRank: 1, ToRank: 1, CommunityYuan: 3000, LinkCadreYuan: 300}, {FromRank: 2, CommunityYuan: -1000, LinkCadreYuan: -100}},
	}}); err != nil {
		t.Fatal(err)
	}

	// Three grid workers, a phone each, on the fake clock.
	phones := map[string]*sdk.Replica{}
	for g, name := range []string{"A", "B", "C"} {
		id := e.roleWorker("网格员"+name, pb.WorkerRole_WORKER_ROLE_GRID_WORKER, grids[g])
		phones[name] = e.device("phone "+name, id, sdk.WithNow(e.now.Now))
		mustSync(t, phones[name])
	}
	visit := func(phone, head string, findings ...syncengine.Finding) string {
		t.Helper()
		id, err := phones[phone].RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{hh[head]}, Form: syncengine.FormInPerson, Findings: findings})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	// Week 1: A visits two (the first finds a hazard), B one.
	e.now.Set(1 * day)
	hazard := visit("A", "户主A1", syncengine.Finding{Kind: syncengine.FindingHazard, Note: "电动车楼道充电"})
	visit("A", "户主A2")
	visit("B", "户主B1")
	// Week 2: A one more, C three; the office assigns the hazard, due on
	// day 10. C's phone syncs for the last time.
	e.now.Set(week + day)
	for _, p := range phones {
		mustSync(t, p)
	}
	visit("A", "户主A3")
	visit("C", "户主C1")
	visit("C", "户主C2")
	visit("C", "户主C3")
	for _, p := range phones {
		mustSync(t, p)
	}
	deadline := t0.Add(10 * day)
	if _, err := e.Admin.UpdateItem(ctx, &pb.UpdateItemRequest{VisitId: hazard, Kind: pb.AmendmentKind_AMENDMENT_KIND_ITEM_ASSIGN,
		Unit: "消防中队", CoUnits: []string{"物业公司", "社区居委会"}, Deadline: timestamppb.New(deadline)}); err != nil {
		t.Fatal(err)
	}
	// Week 3: B two more. Week 4: A and B sync; C does not.
	e.now.Set(2*week + day)
	visit("B", "户主B2")
	visit("B", "户主B3")
	mustSync(t, phones["A"])
	mustSync(t, phones["B"])
	e.now.Set(3*week + 5*day) // day 26
	mustSync(t, phones["A"])
	mustSync(t, phones["B"])
	rc := e.reports(e.adminToken)

	// As of each week's end: the street's coverage, the quota of each
	// worker, and where the hazard stands.
	type asOf struct {
		visited   uint32
		quotas    string
		escalated uint32
	}
	for i, want := range []asOf{
		{3, "网格员A 2, 网格员B 1, 网格员C 0", 0},
		{7, "网格员A 3, 网格员B 1, 网格员C 3", 0},
		{9, "网格员A 3, 网格员B 3, 网格员C 3", 1},
	} {
		at := t0.Add(time.Duration(i+1) * week)
		rep, err := rc.GetProgress(ctx, &pb.GetProgressRequest{NodeId: street, CampaignId: camp, At: timestamppb.New(at)})
		if err != nil {
			t.Fatal(err)
		}
		var quotas []string
		for _, q := range rep.GetReport().GetQuotas() {
			quotas = append(quotas, fmt.Sprintf("%s %d", q.GetName(), q.GetVisited()))
		}
		tot := rep.GetReport().GetTotal()
		got := asOf{tot.GetVisited(), strings.Join(quotas, ", "), tot.GetItemsEscalated()}
		if got != want || tot.GetHouseholds() != 12 {
			t.Errorf("as of week %d's end: %+v of %d households, want %+v of 12", i+1, got, tot.GetHouseholds(), want)
		}
	}

	// The weekly series, up to day 26.
	rep, err := rc.GetProgress(ctx, &pb.GetProgressRequest{NodeId: street, CampaignId: camp, Weekly: true})
	if err != nil {
		t.Fatal(err)
	}
	var weeks []string
	for _, w := range rep.GetReport().GetWeeks() {
		f := w.GetTotal()
		weeks = append(weeks, fmt.Sprintf("visited %d key %d/%d quota %d/%d found %d closed %d open %d", f.GetVisited(),
			f.GetKeyGroupVisited(), f.GetKeyGroupHouseholds(), w.GetQuotaVisited(), w.GetQuotaTotal(), w.GetItemsOpened(), w.GetItemsClosed(), f.GetItemsOpen()))
	}
	wantWeeks := []string{
		"visited 3 key 2/3 quota 3/12 found 1 closed 0 open 1",
		"visited 7 key 3/3 quota 7/12 found 0 closed 0 open 1",
		"visited 9 key 3/3 quota 9/12 found 0 closed 0 open 1",
		"visited 9 key 3/3 quota 9/12 found 0 closed 0 open 1",
	}
	if !slices.Equal(weeks, wantWeeks) {
		t.Errorf("weeks:\n got %q\nwant %q", weeks, wantWeeks)
	}

	// The ranking at day 26, by coverage: both communities at 75% (6 of
	// 8, 3 of 4), so by name; the first rewarded, the second fined.
	var ranked []string
	for _, c := range rep.GetReport().GetCommunities() {
		ranked = append(ranked, fmt.Sprintf("%d %s %d/%d %.2f %d/%d", c.GetRank(), c.GetNode().GetName(), c.GetVisited(), c.GetHouseholds(),
			c.GetScore(), c.GetRewardCommunityYuan(), c.GetRewardLinkCadreYuan()))
	}
	if want := []string{"1 Community 6/8 0.75 3000/300", "2 Community 2 3/4 0.75 -1000/-100"}; !slices.Equal(ranked, want) {
		t.Errorf("ranking: %q, want %q", ranked, want)
	}

	// The hazard escalates a level a week past its deadline (day 10): the
	// community at once, the street on day 17, the district on day 24.
	// Then the installation's admins make it go up every 3 days: on day 14
	// it is with the street, on day 16 with the district.
	for _, tc := range []struct {
		day    int
		node   string
		policy uint32
	}{{11, "Community", 0}, {18, "Street", 0}, {26, "District", 0}, {14, "Street", 3}, {16, "District", 3}} {
		if tc.policy != 0 {
			if _, err := e.Admin.SetItemPolicy(ctx, &pb.SetItemPolicyRequest{Policy: &pb.ItemPolicy{EscalationDays: tc.policy}}); err != nil {
				t.Fatal(err)
			}
		}
		_, data, err := exportFile(ctx, rc, &pb.ExportRequest{NodeId: street, Kind: pb.ExportKind_EXPORT_KIND_ITEMS,
			Format: pb.ExportFormat_EXPORT_FORMAT_CSV, Language: pb.Language_LANGUAGE_ZH, At: timestamppb.New(t0.Add(time.Duration(tc.day) * day))})
		if err != nil {
			t.Fatal(err)
		}
		records, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff")))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		china := func(t time.Time) string { return t.In(syncengine.ChinaTime).Format("2006-01-02") }
		want := [][]string{
			{"户主姓名", "地址", "网格", "问题类型", "问题描述", "登记日期", "登记人", "责任单位", "配合单位", "办结时限", "状态", "办理情况", "逾期天数", "升级督办至"},
			{"户主A1", "幸福路 1 号", "Grid A", "治安隐患", "电动车楼道充电", china(t0.Add(day)), "网格员A", "消防中队", "物业公司、社区居委会", china(deadline), "挂牌督办", "",
				fmt.Sprint(tc.day - 10), tc.node},
		}
		if diff := deepDiff(want, records); diff != "" {
			t.Errorf("the hazard register on day %d:\n%s", tc.day, diff)
		}
	}

	// The console's register says where the item has gone up to (the
	// district, by day 26 on a 3-day period), and the street's dashboard
	// counts it.
	browser := e.rootBrowser()
	_, _, page := browser.get("/console/items?state=open&node=" + street)
	if !strings.Contains(page, `<td class="escalated">District</td>`) || !strings.Contains(page, "配合单位：物业公司、社区居委会") {
		t.Errorf("the console's register lacks the escalation to District or the co-units:\n%s", page)
	}
	_, _, page = browser.get("/console/?node=" + street + "&campaign=" + camp)
	if got := figure(page, "items-escalated"); got != "1" {
		t.Errorf("the dashboard's items escalated: %q, want 1", got)
	}

	// A's phone shows the item with its lead unit and co-units.
	items, err := phones["A"].Items(ctx, e.now.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].Unit != "消防中队" || !slices.Equal(items[0].CoUnits, []string{"物业公司", "社区居委会"}) {
		t.Errorf("A's phone's items: %+v; want the hazard with 消防中队 leading, 物业公司 and 社区居委会 helping", items)
	}

	// C's phone has not synced since day 8: silent for a week by day 26;
	// A's and B's synced today.
	silent, err := e.Admin.ListDevices(ctx, &pb.ListDevicesRequest{SilentDays: 7})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range silent.GetDevices() {
		names = append(names, d.GetName())
		if got := d.GetLastSyncAt().AsTime(); got.Before(t0.Add(week+day)) || got.After(t0.Add(week+2*day)) {
			t.Errorf("%s last synced at %s, want on day 8", d.GetName(), got)
		}
	}
	if !slices.Equal(names, []string{"phone C"}) {
		t.Errorf("silent for 7 days: %q, want phone C", names)
	}
}
