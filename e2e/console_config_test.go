package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

// TestConsoleConfig: the configuration page shows a street's admin its
// tree and lets them add to it and run campaigns (quotas and questionnaire
// included) through plain forms, but not define categories, which is a
// district's: the form is not offered and posting it anyway is refused. A
// district's admin defines categories and loads the default ones.
func TestConsoleConfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newConsoleEnv(t)
	admin := e.browser()
	admin.signIn(streetAdmin, streetAdminPass)
	_, _, page := admin.get("/console/config")
	if !strings.Contains(page, `id="new-node"`) || !strings.Contains(page, "平安大走访") || !strings.Contains(page, `id="new-campaign"`) {
		t.Fatalf("the street admin's configuration lacks the tree's form or the campaigns:\n%s", page)
	}
	if strings.Contains(page, `id="new-category"`) || strings.Contains(page, "do-defaults") {
		t.Errorf("a street's admin is offered the category forms:\n%s", page)
	}
	csrf := admin.csrf(page)
	if status, _, _ := admin.post("/console/config/category", url.Values{"csrf": {csrf}, "do": {"put"}, "code": {"x"}, "name_zh": {"某类"}}); status != http.StatusForbidden {
		t.Errorf("a street admin defining a category: %d, want 403", status)
	}

	// A community under the street.
	status, h, _ := admin.post("/console/config/node", url.Values{"csrf": {csrf}, "parent": {e.street},
		"level": {"3"}, "name": {"和平社区"}})
	if status != http.StatusSeeOther || h.Get("Location") != "/console/config#org" {
		t.Fatalf("adding a community: %d to %q", status, h.Get("Location"))
	}
	nodes, err := e.Admin.ListOrgNodes(ctx, &pb.ListOrgNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var added *pb.OrgNode
	for _, n := range nodes.GetNodes() {
		if n.GetName() == "和平社区" {
			added = n
		}
	}
	if added == nil || added.GetParentId() != e.street || added.GetLevel() != pb.OrgLevel_ORG_LEVEL_COMMUNITY {
		t.Fatalf("the community added: %v", added)
	}
	if _, _, page = admin.get("/console/config"); !strings.Contains(page, "└ 和平社区</td><td>社区") {
		t.Errorf("the tree does not show the new community under the street:\n%s", page)
	}

	// A campaign with quotas and a question, then changed, then deleted.
	_, _, page = admin.get("/console/campaign")
	if !strings.Contains(page, `id="campaign-form"`) || !strings.Contains(page, `name="quota_1"`) {
		t.Fatalf("the new campaign's form:\n%s", page)
	}
	form := url.Values{"csrf": {csrf}, "name": {"冬季走访"}, "node": {e.street}, "from": {"2026-12-01"}, "until": {"2027-02-28"},
		"quota_1": {"80"}, "quota_3": {"50"}, "quota_2": {""},
		"q_code": {"safe", "", ""}, "q_zh": {"您对本区治安是否满意？", "", ""}, "q_en": {"Do you feel safe?", "", ""},
		"q_scale": {"5", "", ""}, "q_from": {"4", "", ""}}
	if status, h, page := admin.post("/console/campaign", form); status != http.StatusSeeOther || h.Get("Location") != "/console/config#campaigns" {
		t.Fatalf("saving a new campaign: %d to %q\n%s", status, h.Get("Location"), page)
	}
	winter := campaignNamed(t, e, "冬季走访")
	if got := winter.GetQuotas().GetQuotas(); len(got) != 2 || got[0].GetRole() != pb.WorkerRole_WORKER_ROLE_GRID_WORKER || got[0].GetHouseholds() != 80 ||
		got[1].GetRole() != pb.WorkerRole_WORKER_ROLE_CADRE || got[1].GetHouseholds() != 50 {
		t.Errorf("the campaign's quotas: %v", got)
	}
	if q := winter.GetQuestionnaire().GetQuestions(); len(q) != 1 || q[0].GetCode() != "safe" || q[0].GetScale() != 5 || q[0].GetPositiveFrom() != 4 {
		t.Errorf("the campaign's questionnaire: %v", q)
	}
	from, until := campaignDaysOf(winter)
	if from != "2026-12-01" || until != "2027-02-28" {
		t.Errorf("the campaign runs %s to %s, want 2026-12-01 to 2027-02-28", from, until)
	}
	if _, _, page = admin.get("/console/config"); !strings.Contains(page, "网格员 80、干部 50") {
		t.Errorf("the campaigns listed lack the quotas:\n%s", page)
	}
	_, _, page = admin.get("/console/campaign?id=" + winter.GetId())
	for _, want := range []string{`value="冬季走访"`, `name="quota_1" type="number" min="0" max="100000" value="80"`, `value="safe"`, `value="2027-02-28"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the campaign's form lacks %s:\n%s", want, page)
		}
	}
	form.Set("id", winter.GetId())
	form.Set("quota_1", "100")
	form.Set("quota_3", "")
	if status, _, _ := admin.post("/console/campaign", form); status != http.StatusSeeOther {
		t.Fatalf("changing the campaign: %d", status)
	}
	if got := campaignNamed(t, e, "冬季走访").GetQuotas().GetQuotas(); len(got) != 1 || got[0].GetHouseholds() != 100 {
		t.Errorf("the quotas after the change: %v", got)
	}
	bad := url.Values{"csrf": {csrf}, "name": {"坏日期"}, "node": {e.street}, "from": {"2026-13-01"}, "until": {"2027-02-28"}}
	if status, _, _ := admin.post("/console/campaign", bad); status != http.StatusBadRequest {
		t.Errorf("a campaign with a month 13: %d, want 400", status)
	}
	if status, _, _ := admin.post("/console/campaign", url.Values{"csrf": {csrf}, "id": {winter.GetId()}, "do": {"delete"}}); status != http.StatusSeeOther {
		t.Fatalf("deleting the campaign: %d", status)
	}
	if _, _, page = admin.get("/console/config"); strings.Contains(page, "冬季走访") {
		t.Errorf("the deleted campaign is still listed:\n%s", page)
	}

	// The district's admin defines a category and loads the defaults.
	var district string
	for _, n := range nodes.GetNodes() {
		if n.GetLevel() == pb.OrgLevel_ORG_LEVEL_DISTRICT {
			district = n.GetId()
		}
	}
	// A campaign of the district: the street's admin reads it, and is not
	// offered to change it.
	dc, err := e.Admin.PutCampaign(ctx, &pb.PutCampaignRequest{NodeId: proto.String(district), Name: proto.String("全区大走访"),
		StartsAt: timestamppb.New(e.now.Now()), EndsAt: timestamppb.New(e.now.Now().Add(90 * 24 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, page = admin.get("/console/campaign?id=" + dc.GetCampaign().GetId()); !strings.Contains(page, "全区大走访") ||
		strings.Contains(page, "save-campaign") || strings.Contains(page, "delete-campaign") || !strings.Contains(page, "<fieldset disabled>") {
		t.Errorf("the street admin is offered to change the district's campaign:\n%s", page)
	}
	if _, err := e.Admin.CreateAdmin(ctx, &pb.CreateAdminRequest{Name: "区管理员", NodeId: district, Role: pb.AdminRole_ADMIN_ROLE_ADMIN}); err != nil {
		t.Fatal(err)
	}
	if err := e.Store.SetAdminPassword(ctx, "区管理员", "the district's password"); err != nil {
		t.Fatal(err)
	}
	dist := e.browser()
	dist.signIn("区管理员", "the district's password")
	_, _, page = dist.get("/console/config")
	if !strings.Contains(page, `id="new-category"`) {
		t.Fatalf("the district's admin is not offered the category form:\n%s", page)
	}
	csrf = dist.csrf(page)
	if status, _, _ := dist.post("/console/config/category", url.Values{"csrf": {csrf}, "do": {"put"}, "code": {"flood_risk"},
		"name_zh": {"低洼易涝户"}, "name_en": {"flood risk"}, "revisit_days": {"30"}, "key_group": {"1"}}); status != http.StatusSeeOther {
		t.Fatalf("defining a category: %d", status)
	}
	if status, _, _ := dist.post("/console/config/category", url.Values{"csrf": {csrf}, "do": {"defaults"}}); status != http.StatusSeeOther {
		t.Fatalf("loading the default categories: %d", status)
	}
	cats, err := e.Admin.ListCategories(ctx, &pb.ListCategoriesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var flood *pb.Category
	for _, k := range cats.GetCategories() {
		if k.GetCode() == "flood_risk" {
			flood = k
		}
	}
	if flood == nil || flood.GetNameZh().GetValue() != "低洼易涝户" || flood.GetRevisitDays().GetValue() != 30 || !flood.GetKeyGroup().GetValue() {
		t.Errorf("the category defined: %v", flood)
	}
	if len(cats.GetCategories()) < 5 {
		t.Errorf("%d categories after loading the defaults", len(cats.GetCategories()))
	}
	if status, _, _ := dist.post("/console/config/category", url.Values{"csrf": {csrf}, "do": {"delete"}, "code": {"flood_risk"}}); status != http.StatusSeeOther {
		t.Fatalf("deleting a category: %d", status)
	}
	if _, _, page = dist.get("/console/config"); !strings.Contains(page, "低洼易涝户 <span class=\"badge\">已删除</span>") {
		t.Errorf("the deleted category is not shown as deleted:\n%s", page)
	}

	// The lost-phone policy: shown to the district's admin, set by the
	// installation's only.
	if strings.Contains(page, `id="set-policy"`) || figure(page, "lock-days") != "不设" {
		t.Errorf("the district admin's policy section:\n%s", page)
	}
	if err := e.Store.SetAdminPassword(ctx, "root", "the installation's password"); err != nil {
		t.Fatal(err)
	}
	root := e.browser()
	root.signIn("root", "the installation's password")
	_, _, page = root.get("/console/config")
	if !strings.Contains(page, `id="set-policy"`) {
		t.Fatalf("the installation's admin is not offered the policy form:\n%s", page)
	}
	if status, _, _ := root.post("/console/config/policy", url.Values{"csrf": {root.csrf(page)}, "lock_days": {"14"}, "wipe_days": {"30"}}); status != http.StatusSeeOther {
		t.Fatalf("setting the policy: %d", status)
	}
	if status, _, _ := root.post("/console/config/policy", url.Values{"csrf": {root.csrf(page)}, "lock_days": {"14"}, "wipe_days": {"7"}}); status != http.StatusBadRequest {
		t.Errorf("a wipe before the lock: %d, want 400", status)
	}
	if _, _, page = dist.get("/console/config"); figure(page, "lock-days") != "14 天" || figure(page, "wipe-days") != "30 天" {
		t.Errorf("the policy after setting it:\n%s", page)
	}
}

// TestConsoleLeaderOffersNothing: a leader's pages read everything of the
// street and offer no form but signing out.
func TestConsoleLeaderOffersNothing(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	leader := e.browser()
	leader.signIn(streetLeader, leaderPass)
	for _, path := range []string{"/console/", "/console/items?state=open", "/console/workers", "/console/config",
		"/console/campaign?id=" + e.campaign, "/console/household/" + e.households[0]} {
		status, _, page := leader.get(path)
		if status != http.StatusOK {
			t.Errorf("%s: %d", path, status)
			continue
		}
		if n := strings.Count(page, `method="post"`); n != 1 {
			t.Errorf("%s offers a leader %d forms that post, want only signing out:\n%s", path, n, page)
		}
	}
	if _, _, page := leader.get("/console/config"); !strings.Contains(page, "平安大走访") || !strings.Contains(page, `id="me">李领导<`) {
		t.Errorf("the leader's configuration page lacks the campaign or who is signed in:\n%s", page)
	}
}

func campaignNamed(t *testing.T, e *consoleEnv, name string) *pb.Campaign {
	t.Helper()
	res, err := e.Admin.ListCampaigns(context.Background(), &pb.ListCampaignsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range res.GetCampaigns() {
		if k.GetName().GetValue() == name && !k.GetDeleted().GetValue() {
			return k
		}
	}
	t.Fatalf("no campaign named %s", name)
	return nil
}

// campaignDaysOf is a campaign's first and last day in China's time.
func campaignDaysOf(k *pb.Campaign) (string, string) {
	from := timeOfMillis(k.GetStartsAt().GetValue())
	until := timeOfMillis(k.GetEndsAt().GetValue() - 1)
	return from.Format("2006-01-02"), until.Format("2006-01-02")
}

func timeOfMillis(ms int64) time.Time { return time.UnixMilli(ms).In(syncengine.ChinaTime) }
