package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/xuri/excelize/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/fieldwork"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/syncengine"
)

const oneDay = 24 * time.Hour

// roleWorker creates a worker with a role and grids and returns their id.
func (e *env) roleWorker(name string, role pb.WorkerRole, grids ...string) string {
	e.t.Helper()
	w, err := e.Admin.CreateWorker(context.Background(), &pb.CreateWorkerRequest{Name: name, Role: role, GridIds: grids})
	if err != nil {
		e.t.Fatal(err)
	}
	return w.GetWorker().GetId()
}

// reports is a ReportService client with token.
func (e *env) reports(token string) doorbookv1connect.ReportServiceClient {
	return doorbookv1connect.NewReportServiceClient(http.DefaultClient, e.URL, connect.WithInterceptors(bearer.Token(token)))
}

// deviceToken enrols a bare device for workerID and returns its token.
func (e *env) deviceToken(workerID string) string {
	e.t.Helper()
	ctx := context.Background()
	c, err := e.Admin.CreateEnrollmentCode(ctx, &pb.CreateEnrollmentCodeRequest{WorkerId: workerID})
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := doorbookv1connect.NewEnrollmentServiceClient(http.DefaultClient, e.URL).Enroll(ctx, &pb.EnrollRequest{Code: c.GetCode(), DeviceName: "raw"})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.GetToken()
}

// exportFile runs an Export and returns the first message (name and type)
// and the file, or the stream's error.
func exportFile(ctx context.Context, rc doorbookv1connect.ReportServiceClient, req *pb.ExportRequest) (*pb.ExportResponse, []byte, error) {
	stream, err := rc.Export(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	defer stream.Close()
	var first *pb.ExportResponse
	var data []byte
	for stream.Receive() {
		msg := stream.Msg()
		if first == nil {
			first = msg
		}
		data = append(data, msg.GetData()...)
	}
	if err := stream.Err(); err != nil {
		return nil, nil, err
	}
	return first, data, nil
}

// sheetCell reads column i of a row that excelize may have cut short (it drops
// trailing empty cells).
func sheetCell(row []string, i int) string {
	if i < len(row) {
		return row[i]
	}
	return ""
}

// padRow extends a row to n columns.
func padRow(row []string, n int) []string {
	out := slices.Clone(row)
	for len(out) < n {
		out = append(out, "")
	}
	return out
}

type dueRow struct {
	Kind      fieldwork.DueKind
	Household string
	Since     time.Time
}

func dueRows(items []fieldwork.DueItem) []dueRow {
	out := make([]dueRow, len(items))
	for i, it := range items {
		out[i] = dueRow{it.Kind, it.Household.ID, it.Since.UTC()}
	}
	return out
}

// progressFigures is the comparable part of pb.ProgressFigures.
type progressFigures struct {
	Node                                                             string
	Households, Visited, KeyGroup, KeyGroupVisited, MustVisitOverdue uint32
	RevisitsOpen, RevisitsOverdue, ItemsOpen, ItemsOverdue           uint32
	Survey                                                           []surveyRate
}

type surveyRate struct {
	Question           string
	Answered, Positive uint32
}

func figuresOf(f *pb.ProgressFigures) progressFigures {
	out := progressFigures{
		Node: f.GetNode().GetName(), Households: f.GetHouseholds(), Visited: f.GetVisited(),
		KeyGroup: f.GetKeyGroupHouseholds(), KeyGroupVisited: f.GetKeyGroupVisited(), MustVisitOverdue: f.GetMustVisitOverdue(),
		RevisitsOpen: f.GetRevisitsOpen(), RevisitsOverdue: f.GetRevisitsOverdue(), ItemsOpen: f.GetItemsOpen(), ItemsOverdue: f.GetItemsOverdue(),
	}
	for _, s := range f.GetSurvey() {
		out.Survey = append(out.Survey, surveyRate{s.GetQuestion(), s.GetAnswered(), s.GetPositive()})
	}
	return out
}

type personQuota struct {
	Worker         string
	Role           pb.WorkerRole
	Visited, Quota uint32
}

// TestCampaignEndToEnd runs a visiting campaign through the real server
// and two phones: reference data (categories, a campaign) reaches the
// phones, workers record visits offline and see what is due and how they
// stand, an admin tracks an item to resolution, and the reports, exports
// and audit log tell the same story with exact figures.
func TestCampaignEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newBareEnv(t, 0)
	admin, err := e.Store.Authenticate(ctx, e.adminToken)
	if err != nil {
		t.Fatal(err)
	}
	rc := e.reports(e.adminToken)
	t0 := e.now.Now().UTC().Truncate(time.Millisecond)
	d0 := t0.In(syncengine.ChinaTime).Format("2006-01-02") // exports write the offices' day

	// 1. The org tree, the categories, the campaign.
	district := e.node("", pb.OrgLevel_ORG_LEVEL_DISTRICT, "东城区")
	street := e.node(district, pb.OrgLevel_ORG_LEVEL_STREET, "和平街道")
	// A sorts before B by name; B will rank first by coverage.
	commA := e.node(street, pb.OrgLevel_ORG_LEVEL_COMMUNITY, "A社区")
	commB := e.node(street, pb.OrgLevel_ORG_LEVEL_COMMUNITY, "B社区")
	gridA1 := e.node(commA, pb.OrgLevel_ORG_LEVEL_GRID, "A1网格")
	gridB1 := e.node(commB, pb.OrgLevel_ORG_LEVEL_GRID, "B1网格")
	gridB2 := e.node(commB, pb.OrgLevel_ORG_LEVEL_GRID, "B2网格")
	gridName := map[string]string{gridA1: "A1网格", gridB1: "B1网格", gridB2: "B2网格"}
	commName := map[string]string{gridA1: "A社区", gridB1: "B社区", gridB2: "B社区"}

	def, err := e.Admin.LoadDefaultCategories(ctx, &pb.LoadDefaultCategoriesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if def.GetAdded() != 19 || len(def.GetCategories()) != 19 {
		t.Fatalf("first LoadDefaultCategories: added %d, lists %d; want 19, 19", def.GetAdded(), len(def.GetCategories()))
	}
	again, err := e.Admin.LoadDefaultCategories(ctx, &pb.LoadDefaultCategoriesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if again.GetAdded() != 0 || len(again.GetCategories()) != 19 {
		t.Errorf("second LoadDefaultCategories: added %d, lists %d; want 0, 19", again.GetAdded(), len(again.GetCategories()))
	}
	kp, err := e.Admin.PutCategory(ctx, &pb.PutCategoryRequest{Code: "key_person", RevisitDays: proto.Int64(14)})
	if err != nil {
		t.Fatal(err)
	}
	if c := kp.GetCategory(); c.GetRevisitDays().GetValue() != 14 || c.GetNameZh().GetValue() != "重点对象" || !c.GetKeyGroup().GetValue() {
		t.Errorf("key_person after PutCategory: %v; want 14 days, its name and key-group flag kept", c)
	}
	// A load after the change leaves it as it is.
	if res, err := e.Admin.LoadDefaultCategories(ctx, &pb.LoadDefaultCategoriesRequest{}); err != nil {
		t.Fatal(err)
	} else if i := slices.IndexFunc(res.GetCategories(), func(c *pb.Category) bool { return c.GetCode() == "key_person" }); res.GetAdded() != 0 || i < 0 || res.GetCategories()[i].GetRevisitDays().GetValue() != 14 {
		t.Errorf("a third load added %d and put key_person back to %v", res.GetAdded(), res.GetCategories())
	}

	questions := []*pb.Question{
		{Code: "aware", TextZh: "是否知晓平安建设", TextEn: "aware of the campaign", Scale: 2, PositiveFrom: 2},
		{Code: "satisfied", TextZh: "对社区工作满意度", TextEn: "satisfied with the community", Scale: 5, PositiveFrom: 4},
		{Code: "safe", TextZh: "安全感", TextEn: "feels safe", Scale: 5, PositiveFrom: 4},
	}
	start, end := t0.Add(-oneDay), t0.Add(30*oneDay)
	pc, err := e.Admin.PutCampaign(ctx, &pb.PutCampaignRequest{
		NodeId: proto.String(street), Name: proto.String("平安大走访"),
		StartsAt: timestamppb.New(start), EndsAt: timestamppb.New(end),
		SetQuotas: true, Quotas: []*pb.Quota{
			{Role: pb.WorkerRole_WORKER_ROLE_GRID_WORKER, Households: 2},
			{Role: pb.WorkerRole_WORKER_ROLE_COMMUNITY_WORKER, Households: 3},
		},
		SetQuestionnaire: true, Questions: questions,
	})
	if err != nil {
		t.Fatal(err)
	}
	camp := pc.GetCampaign().GetId()

	// 2. Two workers, their phones (on the server's fake clock), households.
	liID := e.roleWorker("李明", pb.WorkerRole_WORKER_ROLE_GRID_WORKER, gridA1)
	wangID := e.roleWorker("王强", pb.WorkerRole_WORKER_ROLE_COMMUNITY_WORKER, gridB1, gridB2)
	li := e.device("li-phone", liID, sdk.WithNow(e.now.Now))
	wang := e.device("wang-phone", wangID, sdk.WithNow(e.now.Now))
	mustSync(t, li)
	mustSync(t, wang)

	type household struct {
		id, grid, head, addr string
		tags                 []string
	}
	var hh []*household
	register := func(r *sdk.Replica, grid, head, addr string, tags ...string) *household {
		t.Helper()
		id, err := r.RegisterHousehold(ctx, grid, map[string]string{"head_name": head, "address": addr, "member_count": "3"})
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags {
			if err := r.AddTag(ctx, id, tag); err != nil {
				t.Fatal(err)
			}
		}
		h := &household{id, grid, head, addr, tags}
		hh = append(hh, h)
		return h
	}
	// Community A (李明): key person, petitioner, plain, released prisoner
	// (a sub-group of key person: its interval and key-group flag).
	h1 := register(li, gridA1, "张伟", "和平路1号", "key_person")
	h2 := register(li, gridA1, "李娜", "和平路2号", "petitioner")
	h3 := register(li, gridA1, "刘洋", "和平路3号")
	h4 := register(li, gridA1, "孙丽", "和平路4号", "released_prisoner")
	// Community B (王强).
	h5 := register(wang, gridB1, "陈静", "建设路5号", "key_person", "vulnerable")
	h6 := register(wang, gridB1, "杨磊", "建设路6号")
	h7 := register(wang, gridB1, "赵敏", "建设路7号")
	h8 := register(wang, gridB2, "黄勇", "幸福路8号", "petitioner")
	h9 := register(wang, gridB2, "周杰", "幸福路9号", "vulnerable")
	if _, err := li.AddPerson(ctx, h1.id, map[string]string{"name": "张小伟"}); err != nil {
		t.Fatal(err)
	}

	// 3. A sync takes the households up and brings the reference data down.
	mustSync(t, li)
	mustSync(t, wang)
	for _, r := range []*sdk.Replica{li, wang} {
		cats, err := r.Categories(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(cats, func(c syncengine.Category) bool { return c.Code == "key_person" })
		if len(cats) != 19 || i < 0 || cats[i].RevisitDays.Value != 14 || !cats[i].KeyGroup.Value || cats[i].NameZH.Value != "重点对象" {
			t.Errorf("%s: %d categories, key_person %+v; want 19 with key_person every 14 days", r.Path(), len(cats), cats[max(i, 0)])
		}
		cs, err := r.Campaigns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 {
			t.Fatalf("%s holds %d campaigns, want 1", r.Path(), len(cs))
		}
		c := cs[0]
		var qs []string
		for _, q := range c.Questions() {
			qs = append(qs, q.Code)
		}
		if c.ID != camp || c.Name.Value != "平安大走访" || c.NodeID.Value != street || !c.In(t0) || c.In(end) ||
			c.QuotaFor(int32(pb.WorkerRole_WORKER_ROLE_GRID_WORKER)) != 2 || c.QuotaFor(int32(pb.WorkerRole_WORKER_ROLE_COMMUNITY_WORKER)) != 3 ||
			!slices.Equal(qs, []string{"aware", "satisfied", "safe"}) {
			t.Errorf("%s: campaign %+v (questions %v), not the one the admin defined", r.Path(), c, qs)
		}
	}

	// 4. Offline: visits, a void, then what the phones compute on their own.
	visit := func(r *sdk.Replica, in sdk.VisitInput) string {
		t.Helper()
		in.VisitedAt = t0
		id, err := r.RecordVisit(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	answers := func(aware, satisfied, safe int32) []syncengine.SurveyAnswer {
		return []syncengine.SurveyAnswer{{Question: "aware", Value: aware}, {Question: "satisfied", Value: satisfied}, {Question: "safe", Value: safe}}
	}
	v1 := visit(li, sdk.VisitInput{HouseholdIDs: []string{h1.id}, Form: syncengine.FormInPerson, Notes: "张伟家走访",
		Materials:  []syncengine.Material{syncengine.MaterialOpenLetter, syncengine.MaterialSafetyCalendar},
		CampaignID: camp, Answers: answers(2, 5, 3)})
	hazardVisit := visit(li, sdk.VisitInput{HouseholdIDs: []string{h2.id}, Form: syncengine.FormInPerson, Notes: "李娜家走访",
		Findings:   []syncengine.Finding{{Kind: syncengine.FindingHazard, Note: "楼道堆放杂物"}},
		CampaignID: camp, Answers: answers(1, 4, 4)})
	wrong := visit(li, sdk.VisitInput{HouseholdIDs: []string{h3.id}, Form: syncengine.FormInPerson, Notes: "刘洋家走访",
		CampaignID: camp, Answers: answers(2, 5, 5)})
	if _, err := li.VoidVisit(ctx, wrong, "录入错误"); err != nil {
		t.Fatal(err)
	}
	// A talk with three households: counts for each, its answers once.
	talk := visit(wang, sdk.VisitInput{HouseholdIDs: []string{h5.id, h6.id, h7.id}, Form: syncengine.FormTalk, Notes: "建设路恳谈会",
		CampaignID: camp, Answers: answers(1, 4, 5)})
	revisitDue := t0.Add(3 * oneDay)
	followUp := visit(wang, sdk.VisitInput{HouseholdIDs: []string{h8.id}, Form: syncengine.FormInPerson, Notes: "黄勇家走访",
		RevisitReasons: []syncengine.RevisitReason{syncengine.RevisitUnstableMood}, RevisitDue: revisitDue})
	if n, err := li.Pending(ctx); err != nil || n == 0 {
		t.Fatalf("li's pending changes: %d, %v; the visits should wait offline", n, err)
	}

	now := e.now.Now()
	if p, c, err := li.Progress(ctx, camp, now); err != nil {
		t.Fatal(err)
	} else if diff := deepDiff(fieldwork.Progress{Visited: 2, Quota: 2, Grids: []fieldwork.GridCoverage{{GridID: gridA1, Households: 4, Visited: 2}}}, p); diff != "" || c.ID != camp {
		t.Errorf("li's progress offline:\n%s", diff)
	}
	wantGrids := []fieldwork.GridCoverage{{GridID: gridB1, Households: 3, Visited: 3}, {GridID: gridB2, Households: 2, Visited: 1}}
	slices.SortFunc(wantGrids, func(a, b fieldwork.GridCoverage) int { return strings.Compare(a.GridID, b.GridID) })
	if p, _, err := wang.Progress(ctx, camp, now); err != nil {
		t.Fatal(err)
	} else if diff := deepDiff(fieldwork.Progress{Visited: 4, Quota: 3, Grids: wantGrids}, p); diff != "" {
		t.Errorf("wang's progress offline:\n%s", diff)
	}
	never := time.Unix(0, 0).UTC()
	checkDue := func(who string, r *sdk.Replica, at time.Time, want []dueRow) {
		t.Helper()
		got, err := r.Due(ctx, camp, at)
		if err != nil {
			t.Fatal(err)
		}
		if diff := deepDiff(want, dueRows(got)); diff != "" {
			t.Errorf("%s's due list at %s:\n%s", who, at.Format(time.DateOnly), diff)
		}
	}
	// Today: the released prisoner was never visited (past the interval of
	// key_person, inherited), and the voided visit leaves 刘洋 unvisited.
	checkDue("li", li, now, []dueRow{{fieldwork.DueInterval, h4.id, never}, {fieldwork.DueCampaign, h3.id, time.Time{}}})
	// 黄勇's follow-up is not due yet; 周杰 (vulnerable) was never visited.
	checkDue("wang", wang, now, []dueRow{{fieldwork.DueInterval, h9.id, never}})
	if items, err := li.Items(ctx, now); err != nil {
		t.Fatal(err)
	} else if len(items) != 1 || items[0].VisitID != hazardVisit || items[0].Kind != syncengine.FindingHazard || items[0].State != syncengine.ItemReported ||
		!slices.Equal(items[0].HouseholdIDs, []string{h2.id}) {
		t.Errorf("li's items offline: %+v; want the hazard of 李娜's visit, reported", items)
	}

	// Twenty days on, still offline: the follow-up is overdue and comes
	// first; the key persons visited on day 0 are past their 14 days (the
	// admin's change, not the default 30), the petitioners are not.
	e.now.Add(20 * oneDay)
	now = e.now.Now()
	checkDue("li", li, now, []dueRow{
		{fieldwork.DueInterval, h4.id, never},
		{fieldwork.DueInterval, h1.id, t0.Add(14 * oneDay)},
		{fieldwork.DueCampaign, h3.id, time.Time{}},
	})
	checkDue("wang", wang, now, []dueRow{
		{fieldwork.DueRevisit, h8.id, revisitDue},
		{fieldwork.DueInterval, h9.id, never},
		{fieldwork.DueInterval, h5.id, t0.Add(14 * oneDay)},
	})

	// 5. Sync; the admin assigns the hazard, then resolves it.
	mustSync(t, li)
	mustSync(t, wang)
	deadline := t0.Add(10 * oneDay)
	if _, err := e.Admin.UpdateItem(ctx, &pb.UpdateItemRequest{VisitId: hazardVisit, Finding: 0, Kind: pb.AmendmentKind_AMENDMENT_KIND_ITEM_ASSIGN,
		Unit: "和平派出所", Deadline: timestamppb.New(deadline), Note: "挂牌督办"}); err != nil {
		t.Fatal(err)
	}
	assigned, err := rc.GetProgress(ctx, &pb.GetProgressRequest{NodeId: street, CampaignId: camp})
	if err != nil {
		t.Fatal(err)
	}
	if tot := assigned.GetReport().GetTotal(); tot.GetItemsOpen() != 1 || tot.GetItemsOverdue() != 1 {
		t.Errorf("assigned item past its deadline: items open %d, overdue %d; want 1, 1", tot.GetItemsOpen(), tot.GetItemsOverdue())
	}
	// The hazard register counts the days past the deadline.
	_, csvData, err := exportFile(ctx, rc, &pb.ExportRequest{NodeId: street, Kind: pb.ExportKind_EXPORT_KIND_ITEMS,
		Format: pb.ExportFormat_EXPORT_FORMAT_CSV, Language: pb.Language_LANGUAGE_EN})
	if err != nil {
		t.Fatal(err)
	}
	overdueDays := strconv.Itoa(int(math.Ceil(e.now.Now().Sub(deadline).Hours() / 24)))
	// Escalated a level up per week past the deadline, from the community.
	escalated := (&syncengine.Item{State: syncengine.ItemAssigned, Deadline: deadline}).EscalatedTo(e.now.Now())
	to := map[int32]string{1: "东城区", 2: "和平街道", 3: "A社区"}[escalated]
	if lines := strings.Split(strings.TrimSpace(string(csvData)), "\n"); len(lines) != 2 || escalated == 0 ||
		!strings.HasSuffix(strings.TrimSpace(lines[1]), ",assigned,挂牌督办,"+overdueDays+","+to) {
		t.Errorf("the hazard register while the item is overdue (%s days, escalated to level %d):\n%s", overdueDays, escalated, csvData)
	}
	wantEscalated := uint32(0)
	if escalated <= 2 {
		wantEscalated = 1 // the street answers for it
	}
	if got := assigned.GetReport().GetTotal().GetItemsEscalated(); got != wantEscalated {
		t.Errorf("the street's report: %d items escalated to it, want %d (escalated to level %d)", got, wantEscalated, escalated)
	}
	if c := assigned.GetReport().GetCommunities(); len(c) == 0 || c[0].GetItemsEscalated()+c[len(c)-1].GetItemsEscalated() != 1 {
		t.Errorf("the communities answer for %v escalated items, want 1 in all", c)
	}
	if _, err := e.Admin.UpdateItem(ctx, &pb.UpdateItemRequest{VisitId: hazardVisit, Finding: 0, Kind: pb.AmendmentKind_AMENDMENT_KIND_ITEM_RESOLVE,
		Note: "杂物已清理"}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, li)
	if items, err := li.Items(ctx, now); err != nil {
		t.Fatal(err)
	} else if len(items) != 1 || items[0].State != syncengine.ItemResolved || items[0].Unit != "和平派出所" ||
		!items[0].Deadline.Equal(deadline) || items[0].StateNote != "杂物已清理" {
		t.Errorf("li's items after the admin's updates: %+v; want the hazard resolved, assigned to 和平派出所 by %s", items, deadline)
	}

	// 6. The progress report, exact.
	rep, err := rc.GetProgress(ctx, &pb.GetProgressRequest{NodeId: street, CampaignId: camp})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.GetReport()
	if r.GetCampaign().GetId() != camp || r.GetTotal().GetNode().GetId() != street {
		t.Errorf("report of campaign %s on node %s; want %s on %s", r.GetCampaign().GetId(), r.GetTotal().GetNode().GetId(), camp, street)
	}
	wantTotal := progressFigures{Node: "和平街道", Households: 9, Visited: 6, KeyGroup: 5, KeyGroupVisited: 4, MustVisitOverdue: 4,
		RevisitsOpen: 1, RevisitsOverdue: 1, Survey: []surveyRate{{"aware", 3, 1}, {"satisfied", 3, 3}, {"safe", 3, 2}}}
	if diff := deepDiff(wantTotal, figuresOf(r.GetTotal())); diff != "" {
		t.Errorf("street total:\n%s", diff)
	}
	var comms []progressFigures
	for _, c := range r.GetCommunities() {
		comms = append(comms, figuresOf(c))
	}
	wantComms := []progressFigures{
		{Node: "B社区", Households: 5, Visited: 4, KeyGroup: 2, KeyGroupVisited: 2, MustVisitOverdue: 2, RevisitsOpen: 1, RevisitsOverdue: 1,
			Survey: []surveyRate{{"aware", 1, 0}, {"satisfied", 1, 1}, {"safe", 1, 1}}},
		{Node: "A社区", Households: 4, Visited: 2, KeyGroup: 3, KeyGroupVisited: 2, MustVisitOverdue: 2,
			Survey: []surveyRate{{"aware", 2, 1}, {"satisfied", 2, 2}, {"safe", 2, 1}}},
	}
	if diff := deepDiff(wantComms, comms); diff != "" {
		t.Errorf("communities, best coverage first:\n%s", diff)
	}
	// The campaign's own ranking (seed 000): the awareness rate alone, in
	// which A does better, and a reward for the first, a fine for the rest.
	_, err = e.Admin.SetRanking(ctx, &pb.SetRankingRequest{CampaignId: camp, Ranking: &pb.Ranking{Weights: []*pb.RankingWeight{{Metric: "happiness", Weight: 1}}}})
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("a ranking by a rate the campaign has not: err = %v, want InvalidArgument", err)
	}
	if _, err := e.Admin.SetRanking(ctx, &pb.SetRankingRequest{CampaignId: camp, Ranking: &pb.Ranking{
		Weights: []*pb.RankingWeight{{Metric: "aware", Weight: 1}},
		Bands:   []*pb.RewardBand{{FromRank: 1, ToRank: 1, CommunityYuan: 3000, LinkCadreYuan: 300}, {FromRank: 2, CommunityYuan: -1000, LinkCadreYuan: -100}},
	}}); err != nil {
		t.Fatal(err)
	}
	ranked, err := rc.GetProgress(ctx, &pb.GetProgressRequest{NodeId: street, CampaignId: camp})
	if err != nil {
		t.Fatal(err)
	}
	var places []string
	for _, c := range ranked.GetReport().GetCommunities() {
		places = append(places, fmt.Sprintf("%d %s %.2f %d/%d", c.GetRank(), c.GetNode().GetName(), c.GetScore(), c.GetRewardCommunityYuan(), c.GetRewardLinkCadreYuan()))
	}
	if want := []string{"1 A社区 0.50 3000/300", "2 B社区 0.00 -1000/-100"}; !slices.Equal(places, want) {
		t.Errorf("ranked by awareness: %q, want %q", places, want)
	}
	var quotas []personQuota
	for _, q := range r.GetQuotas() {
		quotas = append(quotas, personQuota{q.GetWorkerId() + " " + q.GetName(), q.GetRole(), q.GetVisited(), q.GetQuota()})
	}
	wantQuotas := []personQuota{
		{liID + " 李明", pb.WorkerRole_WORKER_ROLE_GRID_WORKER, 2, 2},
		{wangID + " 王强", pb.WorkerRole_WORKER_ROLE_COMMUNITY_WORKER, 4, 3},
	}
	if diff := deepDiff(wantQuotas, quotas); diff != "" {
		t.Errorf("quotas:\n%s", diff)
	}

	nv, err := rc.ListReportHouseholds(ctx, &pb.ListReportHouseholdsRequest{NodeId: street, CampaignId: camp, Metric: pb.ReportMetric_REPORT_METRIC_NOT_VISITED})
	if err != nil {
		t.Fatal(err)
	}
	var gotNV, wantNV []string
	for _, h := range nv.GetHouseholds() {
		gotNV = append(gotNV, h.GetHouseholdId()+" "+h.GetGridId()+" "+h.GetHeadName()+" "+h.GetAddress()+" "+h.GetDetail())
	}
	for _, h := range []*household{h3, h4, h9} {
		wantNV = append(wantNV, h.id+" "+h.grid+" "+h.head+" "+h.addr+" never visited")
	}
	slices.Sort(gotNV)
	slices.Sort(wantNV)
	if diff := deepDiff(wantNV, gotNV); diff != "" || nv.GetTotal() != 3 {
		t.Errorf("not-visited households: total %d:\n%s", nv.GetTotal(), diff)
	}

	// 7. The workbook.
	first, data, err := exportFile(ctx, rc, &pb.ExportRequest{NodeId: street, CampaignId: camp, Kind: pb.ExportKind_EXPORT_KIND_ALL,
		Format: pb.ExportFormat_EXPORT_FORMAT_XLSX, Language: pb.Language_LANGUAGE_ZH})
	if err != nil {
		t.Fatal(err)
	}
	if fn := first.GetFilename(); !strings.HasPrefix(fn, "和平街道-all-") || !strings.HasSuffix(fn, ".xlsx") ||
		first.GetContentType() != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" {
		t.Errorf("workbook named %q, type %q", fn, first.GetContentType())
	}
	book, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("open the workbook (%d bytes): %v", len(data), err)
	}
	defer book.Close()
	if got, want := book.GetSheetList(), []string{"台账", "入户下访登记表", "进度", "任务完成", "民调", "周进度", "挂牌督办台账"}; !slices.Equal(got, want) {
		t.Errorf("sheets %v, want %v", got, want)
	}
	// Each sheet opens with its title (the node, the campaign, the date),
	// then the header, frozen above the rows.
	rows := func(sheet string) [][]string {
		t.Helper()
		rs, err := book.GetRows(sheet)
		if err != nil {
			t.Fatalf("sheet %s: %v", sheet, err)
		}
		if len(rs) == 0 || len(rs[0]) == 0 || !strings.HasPrefix(rs[0][0], "和平街道 · 平安大走访 · 截至 ") {
			t.Fatalf("sheet %s has no title row: %q", sheet, rs)
		}
		return rs[1:]
	}

	ledger := rows("台账")
	ledgerHeader := []string{"户编号", "社区", "网格", "户主姓名", "地址", "手机", "固定电话", "包户责任人", "包户领导", "包户单位", "人口数", "家庭成员", "五必访类别", "最近走访"}
	if len(ledger) != 1+len(hh) || !slices.Equal(ledger[0], ledgerHeader) {
		t.Fatalf("台账: %d rows, header %q; want %d rows under %q", len(ledger), ledger[0], 1+len(hh), ledgerHeader)
	}
	catZH := map[string]string{"key_person": "重点对象", "petitioner": "上访老户", "released_prisoner": "刑释人员", "vulnerable": "弱势困难户"}
	visited := map[string]bool{h1.id: true, h2.id: true, h5.id: true, h6.id: true, h7.id: true, h8.id: true}
	byID := map[string][]string{}
	for _, row := range ledger[1:] {
		byID[sheetCell(row, 0)] = padRow(row, len(ledgerHeader))
	}
	for _, h := range hh {
		var cats []string
		for _, c := range h.tags {
			cats = append(cats, catZH[c])
		}
		persons, last := "", ""
		if h == h1 {
			persons = "张小伟"
		}
		if visited[h.id] {
			last = d0
		}
		want := []string{h.id, commName[h.grid], gridName[h.grid], h.head, h.addr, "", "", "", "", "", "3", persons, strings.Join(cats, "、"), last}
		if diff := deepDiff(want, byID[h.id]); diff != "" {
			t.Errorf("台账 row of %s:\n%s", h.head, diff)
		}
	}

	visitSheet := rows("入户下访登记表")
	visitHeader := []string{"走访人", "角色", "走访日期", "走访形式", "户数", "走访户", "地址", "发放资料", "发现问题", "回访", "民情日记", "状态", "走访定位", "附件"}
	if len(visitSheet) != 1+5 || !slices.Equal(visitSheet[0], visitHeader) {
		t.Fatalf("入户下访登记表: %d rows, header %q; want 6 rows under %q", len(visitSheet), visitSheet[0], visitHeader)
	}
	var gotVisits [][]string
	for _, row := range visitSheet[1:] {
		gotVisits = append(gotVisits, padRow(row, len(visitHeader)))
	}
	// By visitor, then date (all on day 0 here), then visit id.
	type visitRow struct {
		visitor, id string
		row         []string
	}
	visitRows := []visitRow{
		{liID, v1, []string{"李明", "网格员", d0, "上门个访", "1", "张伟", "和平路1号", "公开信、平安历书", "", "", "张伟家走访", ""}},
		{liID, hazardVisit, []string{"李明", "网格员", d0, "上门个访", "1", "李娜", "和平路2号", "", "治安隐患: 楼道堆放杂物", "", "李娜家走访", ""}},
		{liID, wrong, []string{"李明", "网格员", d0, "上门个访", "1", "刘洋", "和平路3号", "", "", "", "刘洋家走访", "作废: 录入错误"}},
		{wangID, talk, []string{"王强", "社区工作者", d0, "恳谈会", "3", "陈静、杨磊、赵敏", "建设路5号、建设路6号、建设路7号", "", "", "", "建设路恳谈会", ""}},
		{wangID, followUp, []string{"王强", "社区工作者", d0, "上门个访", "1", "黄勇", "幸福路8号", "", "", "情绪不稳 截止 " + revisitDue.In(syncengine.ChinaTime).Format("2006-01-02"), "黄勇家走访", ""}},
	}
	slices.SortFunc(visitRows, func(a, b visitRow) int { return strings.Compare(a.visitor+a.id, b.visitor+b.id) })
	var wantVisits [][]string
	for _, v := range visitRows {
		wantVisits = append(wantVisits, append(v.row, "", "")) // no position, no files
	}
	if diff := deepDiff(wantVisits, gotVisits); diff != "" {
		t.Errorf("入户下访登记表:\n%s", diff)
	}

	// The hazard register: the item, resolved, with its unit, deadline and
	// how it stands; not overdue any more.
	hazards := rows("挂牌督办台账")
	registerHeader := []string{"户主姓名", "地址", "网格", "问题类型", "问题描述", "登记日期", "登记人", "责任单位", "配合单位", "办结时限", "状态", "办理情况", "逾期天数", "升级督办至"}
	if len(hazards) != 2 || !slices.Equal(hazards[0], registerHeader) {
		t.Fatalf("挂牌督办台账: %q; want the header and one item", hazards)
	}
	if got, want := padRow(hazards[1], len(registerHeader)), []string{"李娜", "和平路2号", hazards[1][2], "治安隐患", "楼道堆放杂物", d0, "李明",
		"和平派出所", "", deadline.In(syncengine.ChinaTime).Format("2006-01-02"), "已解决", "杂物已清理", "", ""}; !slices.Equal(got, want) || got[2] == "" {
		t.Errorf("挂牌督办台账 row:\n got %q\nwant %q", got, want)
	}

	progress := rows("进度")
	progressHeader := []string{"排名", "单位", "层级", "户数", "已走访户数", "覆盖率", "重点人群户数", "重点人群已走访", "重点人群走访率",
		"逾期必访户", "待回访", "逾期回访", "未办结事项", "逾期事项", "得分", "社区奖惩（元）", "联点干部奖惩（元）"}
	wantProgress := [][]string{
		progressHeader,
		{"", "和平街道", "街道", "9", "6", "66.7%", "5", "4", "80.0%", "4", "1", "1", "0", "0"},
		{"1", "A社区", "社区", "4", "2", "50.0%", "3", "2", "66.7%", "2", "0", "0", "0", "0", "50.0%", "3000", "300"},
		{"2", "B社区", "社区", "5", "4", "80.0%", "2", "2", "100.0%", "2", "1", "1", "0", "0", "0.0%", "-1000", "-100"},
	}
	if diff := deepDiff(wantProgress, progress); diff != "" {
		t.Errorf("进度:\n%s", diff)
	}
	// The total row is the report's.
	if tot := r.GetTotal(); len(progress) > 1 && (sheetCell(progress[1], 3) != u32s(tot.GetHouseholds()) || sheetCell(progress[1], 4) != u32s(tot.GetVisited()) ||
		sheetCell(progress[1], 9) != u32s(tot.GetMustVisitOverdue()) || sheetCell(progress[1], 10) != u32s(tot.GetRevisitsOpen())) {
		t.Errorf("进度 total row %q disagrees with GetProgress %v", progress[1], tot)
	}
	wantQuotaSheet := [][]string{
		{"走访人", "角色", "已走访户数", "任务户数", "完成率"},
		{"李明", "网格员", "2", "2", "100.0%"},
		{"王强", "社区工作者", "4", "3", "133.3%"},
	}
	if diff := deepDiff(wantQuotaSheet, rows("任务完成")); diff != "" {
		t.Errorf("任务完成:\n%s", diff)
	}
	wantSurvey := [][]string{
		{"单位", "问题", "答复数", "正面数", "正面率"},
		{"和平街道", "是否知晓平安建设", "3", "1", "33.3%"},
		{"和平街道", "对社区工作满意度", "3", "3", "100.0%"},
		{"和平街道", "安全感", "3", "2", "66.7%"},
		{"A社区", "是否知晓平安建设", "2", "1", "50.0%"},
		{"A社区", "对社区工作满意度", "2", "2", "100.0%"},
		{"A社区", "安全感", "2", "1", "50.0%"},
		{"B社区", "是否知晓平安建设", "1", "0", "0.0%"},
		{"B社区", "对社区工作满意度", "1", "1", "100.0%"},
		{"B社区", "安全感", "1", "1", "100.0%"},
	}
	if diff := deepDiff(wantSurvey, rows("民调")); diff != "" {
		t.Errorf("民调:\n%s", diff)
	}

	// The ledger alone as CSV, in English.
	first, data, err = exportFile(ctx, rc, &pb.ExportRequest{NodeId: street, Kind: pb.ExportKind_EXPORT_KIND_LEDGER,
		Format: pb.ExportFormat_EXPORT_FORMAT_CSV, Language: pb.Language_LANGUAGE_EN})
	if err != nil {
		t.Fatal(err)
	}
	if fn := first.GetFilename(); !strings.HasPrefix(fn, "和平街道-ledger-") || !strings.HasSuffix(fn, ".csv") || first.GetContentType() != "text/csv; charset=utf-8" {
		t.Errorf("CSV named %q, type %q", fn, first.GetContentType())
	}
	if !bytes.HasPrefix(data, []byte("\ufeff")) {
		t.Errorf("CSV starts with %q, want a UTF-8 byte order mark", data[:min(len(data), 8)])
	}
	records, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	enHeader := []string{"household id", "community", "grid", "head of household", "address", "mobile", "landline", "responsible worker",
		"responsible leader", "responsible unit", "members", "persons", "categories", "last visit"}
	if len(records) != 1+len(hh) || !slices.Equal(records[0], enHeader) {
		t.Fatalf("CSV ledger: %d records, header %q; want %d under %q", len(records), records[0], 1+len(hh), enHeader)
	}
	for _, rec := range records[1:] {
		if rec[0] == h1.id && (rec[3] != "张伟" || rec[11] != "张小伟" || rec[12] != "key person" || rec[13] != d0) {
			t.Errorf("CSV row of 张伟: %q", rec)
		}
		if rec[0] == h3.id && rec[13] != "" {
			t.Errorf("CSV row of 刘洋 (only visit voided) shows last visit %q", rec[13])
		}
	}
	if _, _, err := exportFile(ctx, rc, &pb.ExportRequest{NodeId: street, CampaignId: camp, Kind: pb.ExportKind_EXPORT_KIND_ALL,
		Format: pb.ExportFormat_EXPORT_FORMAT_CSV, Language: pb.Language_LANGUAGE_ZH}); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("all sheets as CSV: err = %v, want InvalidArgument", err)
	}

	// 9. A worker's token gets no reports (and leaves no audit entry).
	wc := e.reports(e.deviceToken(liID))
	if _, err := wc.GetProgress(ctx, &pb.GetProgressRequest{NodeId: street, CampaignId: camp}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("GetProgress with a worker's token: err = %v, want PermissionDenied", err)
	}
	if _, _, err := exportFile(ctx, wc, &pb.ExportRequest{NodeId: street, CampaignId: camp, Kind: pb.ExportKind_EXPORT_KIND_LEDGER,
		Format: pb.ExportFormat_EXPORT_FORMAT_CSV}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("Export with a worker's token: err = %v, want PermissionDenied", err)
	}
	if _, err := wc.ListAuditLog(ctx, &pb.ListAuditLogRequest{}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("ListAuditLog with a worker's token: err = %v, want PermissionDenied", err)
	}

	// 8. The audit log: one entry per report or export served, newest
	// first; refused calls leave none.
	log, err := rc.ListAuditLog(ctx, &pb.ListAuditLogRequest{})
	if err != nil {
		t.Fatal(err)
	}
	type entry struct{ Admin, Name, Action, Node, Campaign string }
	var gotLog []entry
	for _, en := range log.GetEntries() {
		gotLog = append(gotLog, entry{en.GetAdminId(), en.GetAdminName(), en.GetAction(), en.GetNodeId(), en.GetCampaignId()})
		if at := en.GetAt().AsTime(); at.Before(t0.Add(20*oneDay)) || at.After(e.now.Now()) {
			t.Errorf("audit entry %q at %s, want on the server's (fake) clock, after %s", en.GetAction(), at, t0.Add(20*oneDay))
		}
	}
	wantLog := []entry{
		{admin.ID, "root", "export ledger csv", street, ""},
		{admin.ID, "root", "export all xlsx", street, camp},
		{admin.ID, "root", "report households not_visited", street, camp},
		{admin.ID, "root", "report progress", street, camp},
		{admin.ID, "root", "report progress", street, camp},
		{admin.ID, "root", "export items csv", street, ""},
		{admin.ID, "root", "report progress", street, camp},
	}
	if diff := deepDiff(wantLog, gotLog); diff != "" {
		t.Errorf("audit log:\n%s", diff)
	}
}

func u32s(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// deepDiff is empty when want and got are deeply equal, and shows both if not.
func deepDiff(want, got any) string {
	if reflect.DeepEqual(want, got) {
		return ""
	}
	return fmt.Sprintf("want %+v\n got %+v", want, got)
}

// TestCampaignReportOfAForeignCampaign: an admin reads reports of the
// campaigns of their subtree and of the nodes above it (ListCampaigns), and
// a report or export of any other campaign is PermissionDenied: none of
// another district's campaign (its name, window, quotas and questionnaire)
// reaches this district's admin.
func TestCampaignReportOfAForeignCampaign(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 0)
	now := e.now.Now()
	d1 := e.node("", pb.OrgLevel_ORG_LEVEL_DISTRICT, "东城区")
	s1 := e.node(d1, pb.OrgLevel_ORG_LEVEL_STREET, "和平街道")
	d2 := e.node("", pb.OrgLevel_ORG_LEVEL_DISTRICT, "西城区")
	pc, err := e.Admin.PutCampaign(ctx, &pb.PutCampaignRequest{NodeId: proto.String(s1), Name: proto.String("东城区专项走访"),
		StartsAt: timestamppb.New(now.Add(-oneDay)), EndsAt: timestamppb.New(now.Add(oneDay)),
		SetQuestionnaire: true, Questions: []*pb.Question{{Code: "aware", TextZh: "内部问题", Scale: 2, PositiveFrom: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	camp := pc.GetCampaign().GetId()
	_, token, err := e.Store.CreateAdmin(ctx, "西城区管理员", d2)
	if err != nil {
		t.Fatal(err)
	}
	rc := e.reports(token)
	admin := doorbookv1connect.NewAdminServiceClient(http.DefaultClient, e.URL, connect.WithInterceptors(bearer.Token(token)))
	if res, err := admin.ListCampaigns(ctx, &pb.ListCampaignsRequest{}); err != nil || len(res.GetCampaigns()) != 0 {
		t.Fatalf("西城区's admin lists campaigns %v, %v; want none", res.GetCampaigns(), err)
	}
	if _, _, err := exportFile(ctx, rc, &pb.ExportRequest{NodeId: d2, CampaignId: camp, Kind: pb.ExportKind_EXPORT_KIND_LEDGER,
		Format: pb.ExportFormat_EXPORT_FORMAT_CSV}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("ledger export with 东城区's campaign: err = %v, want PermissionDenied", err)
	}
	res, err := rc.GetProgress(ctx, &pb.GetProgressRequest{NodeId: d2, CampaignId: camp})
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("GetProgress with 东城区's campaign: err = %v, campaign %q; want PermissionDenied", err, res.GetReport().GetCampaign().GetName().GetValue())
	}
	if _, _, err := exportFile(ctx, rc, &pb.ExportRequest{NodeId: d2, CampaignId: camp, Kind: pb.ExportKind_EXPORT_KIND_PROGRESS,
		Format: pb.ExportFormat_EXPORT_FORMAT_CSV}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("progress export with 东城区's campaign: err = %v, want PermissionDenied", err)
	}
}

// TestCampaignVisitRegisterStaysInScope: a community worker's talk covers a
// household of each of two communities. The admin of one community sees
// the visit in their register, but not the head and address of the other
// community's household, which no other call shows them.
func TestCampaignVisitRegisterStaysInScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 0)
	d := e.node("", pb.OrgLevel_ORG_LEVEL_DISTRICT, "东城区")
	s := e.node(d, pb.OrgLevel_ORG_LEVEL_STREET, "和平街道")
	cA := e.node(s, pb.OrgLevel_ORG_LEVEL_COMMUNITY, "A社区")
	cB := e.node(s, pb.OrgLevel_ORG_LEVEL_COMMUNITY, "B社区")
	gA := e.node(cA, pb.OrgLevel_ORG_LEVEL_GRID, "A1网格")
	gB := e.node(cB, pb.OrgLevel_ORG_LEVEL_GRID, "B1网格")
	w := e.roleWorker("王强", pb.WorkerRole_WORKER_ROLE_COMMUNITY_WORKER, gA, gB)
	r := e.device("wang", w, sdk.WithNow(e.now.Now))
	mustSync(t, r)
	ha, err := r.RegisterHousehold(ctx, gA, map[string]string{"head_name": "张伟", "address": "和平路1号"})
	if err != nil {
		t.Fatal(err)
	}
	hb, err := r.RegisterHousehold(ctx, gB, map[string]string{"head_name": "黄勇", "address": "幸福路8号"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{ha, hb}, Form: syncengine.FormTalk, Notes: "恳谈会"}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)
	_, token, err := e.Store.CreateAdmin(ctx, "A社区管理员", cA)
	if err != nil {
		t.Fatal(err)
	}
	rc := e.reports(token)
	_, data, err := exportFile(ctx, rc, &pb.ExportRequest{Kind: pb.ExportKind_EXPORT_KIND_VISITS, Format: pb.ExportFormat_EXPORT_FORMAT_CSV})
	if err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 2 {
		t.Fatalf("A社区's register: %q; want the talk", records)
	}
	if row := strings.Join(records[1], ","); strings.Contains(row, "黄勇") || strings.Contains(row, "幸福路8号") {
		t.Errorf("A社区's admin sees B社区's household in the register: %q", records[1])
	}
	// The ledger, for comparison, keeps to the subtree.
	_, data, err = exportFile(ctx, rc, &pb.ExportRequest{Kind: pb.ExportKind_EXPORT_KIND_LEDGER, Format: pb.ExportFormat_EXPORT_FORMAT_CSV})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("黄勇")) {
		t.Errorf("A社区's ledger lists B社区's household:\n%s", data)
	}
}

// TestCampaignSurveyRatesKeepToTheScale: the phone refuses an answer
// outside its question's scale, but the server takes one pushed by any
// other client and counts it in the rates: an answer of 9 to a yes/no
// (scale 2) question counts as positive.
func TestCampaignSurveyRatesKeepToTheScale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	grid := e.Grids[0]
	now := e.now.Now()
	pc, err := e.Admin.PutCampaign(ctx, &pb.PutCampaignRequest{NodeId: proto.String(grid), Name: proto.String("平安大走访"),
		StartsAt: timestamppb.New(now.Add(-oneDay)), EndsAt: timestamppb.New(now.Add(oneDay)),
		SetQuestionnaire: true, Questions: []*pb.Question{{Code: "aware", Scale: 2, PositiveFrom: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	camp := pc.GetCampaign().GetId()
	w := e.roleWorker("李明", pb.WorkerRole_WORKER_ROLE_GRID_WORKER, grid)

	// The SDK refuses the answer.
	r := e.device("li", w, sdk.WithNow(e.now.Now))
	mustSync(t, r)
	h, err := r.RegisterHousehold(ctx, grid, map[string]string{"head_name": "张伟"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson, CampaignID: camp,
		Answers: []syncengine.SurveyAnswer{{Question: "aware", Value: 9}}}); err == nil {
		t.Error("the SDK recorded an answer of 9 to a question of scale 2")
	}
	mustSync(t, r)

	// Another client pushes it.
	sc := doorbookv1connect.NewSyncServiceClient(http.DefaultClient, e.URL, connect.WithInterceptors(bearer.Token(e.deviceToken(w))))
	v := visitChange(h, w)
	v.GetVisit().CampaignId = camp
	v.GetVisit().Answers = []*pb.SurveyAnswer{{Question: "aware", Value: 9}}
	_, pushErr := sc.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{v}})
	res, err := e.reports(e.adminToken).GetProgress(ctx, &pb.GetProgressRequest{NodeId: grid, CampaignId: camp})
	if err != nil {
		t.Fatal(err)
	}
	if s := res.GetReport().GetTotal().GetSurvey(); len(s) != 1 || s[0].GetAnswered() != 0 || s[0].GetPositive() != 0 {
		t.Errorf("push of an answer 9 on a 1..2 scale: push err %v; rates %v, want it refused or left out of the rates (0 answered)", pushErr, s)
	}
}

// Reference data changed after a phone's first sync reaches it with the
// next pull, not only with a bootstrap.
func TestReferenceChangesReachSyncedPhones(t *testing.T) {
	ctx := context.Background()
	e := newBareEnv(t, 1)
	_, code := e.worker("Li", e.Grids[0])
	phone := e.enroll("li", code)
	mustSync(t, phone)
	if _, err := e.Admin.PutCategory(ctx, &pb.PutCategoryRequest{Code: "new_cat", NameZh: proto.String("新类别"), RevisitDays: proto.Int64(10)}); err != nil {
		t.Fatal(err)
	}
	now := e.now.Now()
	if _, err := e.Admin.PutCampaign(ctx, &pb.PutCampaignRequest{NodeId: proto.String(e.Grids[0]), Name: proto.String("冬季走访"),
		StartsAt: timestamppb.New(now), EndsAt: timestamppb.New(now.Add(oneDay))}); err != nil {
		t.Fatal(err)
	}
	mustSync(t, phone)
	cats, err := phone.Categories(ctx)
	if err != nil {
		t.Fatal(err)
	}
	camps, err := phone.Campaigns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cats) != 1 || cats[0].Code != "new_cat" || cats[0].RevisitDays.Value != 10 || len(camps) != 1 || camps[0].Name.Value != "冬季走访" {
		t.Fatalf("after a pull the phone has categories %+v and campaigns %+v", cats, camps)
	}
}
