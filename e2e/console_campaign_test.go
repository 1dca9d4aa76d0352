package e2e

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
)

// upload posts a multipart form with a file, as a browser does.
func (b *browser) upload(path string, fields map[string]string, fileName string, file []byte) (int, string) {
	b.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	fw, err := mw.CreateFormFile("file", fileName)
	if err != nil {
		b.t.Fatal(err)
	}
	_, _ = fw.Write(file)
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	status, _, page := b.do(req)
	return status, page
}

// TestConsoleImport: the street's admin tries a ledger in the console,
// sees each row's fate in Chinese, then imports it; a leader is offered
// no import and is refused one posted anyway; a form without its CSRF
// token, and a file without the ledger's header, are refused.
func TestConsoleImport(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	file := []byte("所属网格,户主,住址,联系电话\n" +
		"Grid A,钱多多,幸福路 9 号,0571-88886666\n" +
		"Grid A,户主甲,幸福路 1 号,13800138000\n" + // an existing household, by grid, address and head
		"Grid Q,孙少少,幸福路 10 号,\n")
	b := e.browser()
	b.signIn(streetAdmin, streetAdminPass)
	status, _, page := b.get("/console/import")
	if status != http.StatusOK || !strings.Contains(page, `id="nav-import"`) || !strings.Contains(page, `id="import-form"`) {
		t.Fatalf("import page: %d, nav link and form %v %v", status, strings.Contains(page, `id="nav-import"`), strings.Contains(page, `id="import-form"`))
	}
	fields := map[string]string{"csrf": b.csrf(page), "node": e.street, "dry_run": "1"}
	status, page = b.upload("/console/import", fields, "台账.csv", file)
	if status != http.StatusOK {
		t.Fatalf("dry run: %d\n%s", status, page)
	}
	for id, want := range map[string]string{"import-summary": "试导入结果（未写入） · 台账.csv"} {
		if got := figure(page, id); got != want {
			t.Errorf("dry run's %s: %q, want %q", id, got, want)
		}
	}
	for _, want := range []string{`<td class="created">1</td>`, `<td class="updated">1</td>`, `<td class="refused">1</td>`,
		"本级下没有此网格: Grid Q", "<td>手机</td>", "<td>网格、户主姓名、地址、固定电话</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("dry run's page lacks %q", want)
		}
	}
	if rows := e.ledgerRows(context.Background(), e.street); len(rows) != len(e.households) {
		t.Errorf("the dry run wrote: %d households, want %d", len(rows), len(e.households))
	}

	delete(fields, "dry_run")
	if status, _ = b.upload("/console/import", map[string]string{"node": e.street}, "台账.csv", file); status != http.StatusForbidden {
		t.Errorf("import without the CSRF token: %d, want 403", status)
	}
	status, page = b.upload("/console/import", fields, "台账.csv", file)
	if status != http.StatusOK || figure(page, "import-summary") != "已导入 · 台账.csv" {
		t.Fatalf("import: %d, summary %q", status, figure(page, "import-summary"))
	}
	if rows := e.ledgerRows(context.Background(), e.street); len(rows) != len(e.households)+1 {
		t.Errorf("after the import: %d households, want %d", len(rows), len(e.households)+1)
	}
	status, page = b.upload("/console/import", fields, "notes.csv", []byte("日期,内容\n1,2\n"))
	if status != http.StatusBadRequest || !strings.Contains(page, `id="import-problem"`) {
		t.Errorf("a file without the ledger's header: %d, problem shown %v", status, strings.Contains(page, `id="import-problem"`))
	}

	l := e.browser()
	page = l.signIn(streetLeader, leaderPass)
	if strings.Contains(page, `id="nav-import"`) {
		t.Error("a leader is offered the import")
	}
	status, page = l.upload("/console/import", map[string]string{"csrf": l.csrf(page), "node": e.street}, "台账.csv", file)
	if status != http.StatusForbidden {
		t.Errorf("a leader's import: %d, want 403\n%s", status, page)
	}
}

// TestConsoleRanking: the dashboard's ranking shows each community's score
// and what its rank brings once the campaign has a ranking of its own.
func TestConsoleRanking(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	b := e.browser()
	page := b.signIn(streetAdmin, streetAdminPass)
	if strings.Contains(page, `class="reward`) {
		t.Error("the dashboard shows rewards before the campaign has a ranking")
	}
	if _, err := e.Admin.SetRanking(context.Background(), &pb.SetRankingRequest{CampaignId: e.campaign, Ranking: &pb.Ranking{
		Weights: []*pb.RankingWeight{{Metric: "coverage", Weight: 1}},
		Bands:   []*pb.RewardBand{{FromRank: 1, CommunityYuan: 500, LinkCadreYuan: 50}},
	}}); err != nil {
		t.Fatal(err)
	}
	_, _, page = b.get("/console/?campaign=" + e.campaign)
	for _, want := range []string{`<td class="score">50.0%</td>`, `<td class="reward">500 / 50</td>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the dashboard lacks %s", want)
		}
	}
}

// TestConsoleItemPolicy: the installation's admins set on the
// configuration page after how many days an overdue item goes up a
// level; a street's admin sees it and is offered no form.
func TestConsoleItemPolicy(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	street := e.browser()
	street.signIn(streetAdmin, streetAdminPass)
	_, _, page := street.get("/console/config")
	if strings.Contains(page, `id="set-item-policy"`) || figure(page, "escalation-days") == "" {
		t.Errorf("a street's admin: form offered %v, policy shown %q", strings.Contains(page, `id="set-item-policy"`), figure(page, "escalation-days"))
	}
	root := e.env.rootBrowser()
	_, _, page = root.get("/console/config")
	status, _, _ := root.post("/console/config/items", url.Values{"csrf": {root.csrf(page)}, "escalation_days": {"3"}})
	if status != http.StatusSeeOther {
		t.Fatalf("setting the item policy: %d", status)
	}
	_, _, page = root.get("/console/config")
	if got := figure(page, "escalation-days"); got != "每级停留天数: 3 天" {
		t.Errorf("the policy shown: %q", got)
	}
	res, err := e.Admin.GetItemPolicy(context.Background(), &pb.GetItemPolicyRequest{})
	if err != nil || res.GetPolicy().GetEscalationDays() != 3 {
		t.Errorf("GetItemPolicy: %v, %v; want 3 days", res, err)
	}
}

// rootBrowser is a browser signed in to the console as the env's
// installation-wide admin.
func (e *env) rootBrowser() *browser {
	e.t.Helper()
	const password = "the root admin's password"
	if err := e.Store.SetAdminPassword(context.Background(), "root", password); err != nil {
		e.t.Fatal(err)
	}
	b := (&consoleEnv{env: e}).browser()
	b.signIn("root", password)
	return b
}

// campaignNow starts a campaign of node named name, from an hour ago for
// days days, and returns its id.
func (e *env) campaignNow(node, name string, days int) string {
	e.t.Helper()
	now := e.now.Now()
	pc, err := e.Admin.PutCampaign(context.Background(), &pb.PutCampaignRequest{NodeId: proto.String(node), Name: proto.String(name),
		StartsAt: timestamppb.New(now.Add(-time.Hour)), EndsAt: timestamppb.New(now.Add(time.Duration(days) * 24 * time.Hour))})
	if err != nil {
		e.t.Fatal(err)
	}
	return pc.GetCampaign().GetId()
}
