package e2e

import (
	"context"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/xuri/excelize/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/syncengine"
)

// consoleEnv is a server with a street of two grids, a campaign on it,
// visits to half its households, and people to sign in to the console:
// the street's admin, its leader, and the admin of another street.
type consoleEnv struct {
	*env
	street, otherStreet, campaign string
	households                    []string
	hazardVisit                   string
}

const (
	streetAdmin, streetAdminPass = "王街道", "幸福街道管理员的登录密码"
	streetLeader, leaderPass     = "李领导", "leader's own password"
	otherAdmin, otherAdminPass   = "赵其他", "the other street's password"
)

func newConsoleEnv(t *testing.T) *consoleEnv {
	t.Helper()
	ctx := context.Background()
	e := &consoleEnv{env: newEnv(t, 2)}
	nodes, err := e.Admin.ListOrgNodes(ctx, &pb.ListOrgNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var district string
	for _, n := range nodes.GetNodes() {
		switch n.GetLevel() {
		case pb.OrgLevel_ORG_LEVEL_STREET:
			e.street = n.GetId()
		case pb.OrgLevel_ORG_LEVEL_DISTRICT:
			district = n.GetId()
		}
	}
	e.otherStreet = e.node(district, pb.OrgLevel_ORG_LEVEL_STREET, "另一街道")
	for _, a := range []struct {
		name, node, password string
		role                 pb.AdminRole
	}{
		{streetAdmin, e.street, streetAdminPass, pb.AdminRole_ADMIN_ROLE_ADMIN},
		{streetLeader, e.street, leaderPass, pb.AdminRole_ADMIN_ROLE_LEADER},
		{otherAdmin, e.otherStreet, otherAdminPass, pb.AdminRole_ADMIN_ROLE_ADMIN},
	} {
		if _, err := e.Admin.CreateAdmin(ctx, &pb.CreateAdminRequest{Name: a.name, NodeId: a.node, Role: a.role}); err != nil {
			t.Fatal(err)
		}
		if err := e.Store.SetAdminPassword(ctx, a.name, a.password); err != nil {
			t.Fatal(err)
		}
	}
	now := e.now.Now()
	pc, err := e.Admin.PutCampaign(ctx, &pb.PutCampaignRequest{NodeId: proto.String(e.street), Name: proto.String("平安大走访"),
		StartsAt: timestamppb.New(now.Add(-24 * time.Hour)), EndsAt: timestamppb.New(now.Add(30 * 24 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	e.campaign = pc.GetCampaign().GetId()
	w, code := e.worker("李明", e.Grids...)
	_ = code
	phone := e.device("li-phone", w)
	mustSync(t, phone)
	for i := range 4 {
		h, err := phone.RegisterHousehold(ctx, e.Grids[i%2], map[string]string{"head_name": "户主" + string(rune('甲'+i)), "address": "幸福路 " + string(rune('1'+i)) + " 号"})
		if err != nil {
			t.Fatal(err)
		}
		e.households = append(e.households, h)
	}
	// The first household: a key person, a person, and a visit that found
	// a hazard; the third: a visit recorded by mistake and voided, then a
	// real one.
	h0, h2 := e.households[0], e.households[2]
	if err := phone.AddTag(ctx, h0, "five_guarantees"); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.AddPerson(ctx, h0, map[string]string{"name": "张三", "relation": "户主", "id_number": "110101195001011234"}); err != nil {
		t.Fatal(err)
	}
	in := sdkVisit(h0)
	in.Findings = []syncengine.Finding{{Kind: syncengine.FindingHazard, Note: "楼道堆物"}}
	if e.hazardVisit, err = phone.RecordVisit(ctx, in); err != nil {
		t.Fatal(err)
	}
	wrong, err := phone.RecordVisit(ctx, sdkVisit(h2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := phone.VoidVisit(ctx, wrong, "录错户"); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.RecordVisit(ctx, sdkVisit(h2)); err != nil {
		t.Fatal(err)
	}
	mustSync(t, phone)
	return e
}

// browser is a cookie-keeping HTTP client of the console that does not
// follow redirects, so that tests see them.
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func (e *consoleEnv) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t.(*testing.T), base: e.URL, hc: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) (int, http.Header, string) {
	b.t.Helper()
	res, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return res.StatusCode, res.Header, string(body)
}

func (b *browser) get(path string) (int, http.Header, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) (int, http.Header, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// figure is the text of the element with the given id in a page.
func figure(page, id string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return m[1]
}

// csrf is the CSRF token of a page's form.
func (b *browser) csrf(page string) string {
	b.t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return m[1]
}

// signIn signs in through the sign-in form and returns the dashboard.
func (b *browser) signIn(name, password string) string {
	b.t.Helper()
	_, _, page := b.get("/console/signin")
	status, h, _ := b.post("/console/signin", url.Values{"csrf": {b.csrf(page)}, "name": {name}, "password": {password}})
	if status != http.StatusSeeOther || h.Get("Location") != "/console/" {
		b.t.Fatalf("signing in as %s: %d to %q", name, status, h.Get("Location"))
	}
	status, _, page = b.get("/console/")
	if status != http.StatusOK {
		b.t.Fatalf("the dashboard after signing in: %d\n%s", status, page)
	}
	return page
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.base + "/console/")
	for _, c := range b.hc.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestConsoleSignInAndDashboard: the console sends a stranger to sign in,
// refuses a form without its CSRF token, shows a signed-in admin the
// street's progress (audited like the API's report), and signing out ends
// the session on the server: its cookie stops working.
func TestConsoleSignInAndDashboard(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	b := e.browser()
	if status, h, _ := b.get("/console/"); status != http.StatusSeeOther || h.Get("Location") != "/console/signin" {
		t.Errorf("the dashboard without a session: %d to %q, want 303 to the sign-in page", status, h.Get("Location"))
	}
	if status, h, _ := b.get("/"); status != http.StatusSeeOther || h.Get("Location") != "/console/" {
		t.Errorf("the server's root: %d to %q, want 303 to the console", status, h.Get("Location"))
	}
	// The sign-in form without its token, or with another browser's.
	status, _, _ := b.post("/console/signin", url.Values{"name": {streetAdmin}, "password": {streetAdminPass}})
	if status != http.StatusForbidden {
		t.Errorf("signing in without the form's CSRF token: %d, want 403", status)
	}
	_, _, page := e.browser().get("/console/signin")
	status, _, _ = b.post("/console/signin", url.Values{"csrf": {b.csrf(page)}, "name": {streetAdmin}, "password": {streetAdminPass}})
	if status != http.StatusForbidden {
		t.Errorf("signing in with another browser's CSRF token: %d, want 403", status)
	}
	_, _, page = b.get("/console/signin")
	status, _, page = b.post("/console/signin", url.Values{"csrf": {b.csrf(page)}, "name": {streetAdmin}, "password": {"wrong password"}})
	if status != http.StatusUnauthorized || !strings.Contains(page, "用户名或密码不正确") {
		t.Errorf("a wrong password: %d, want 401 and the reason in Chinese\n%s", status, page)
	}

	page = b.signIn(streetAdmin, streetAdminPass)
	if got := figure(page, "coverage"); got != "50.0%" {
		t.Errorf("coverage on the dashboard: %q, want 50.0%%", got)
	}
	for _, want := range []string{"平安大走访", "走访覆盖率", "社区排名", "Community", `id="signout"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the dashboard lacks %q:\n%s", want, page)
		}
	}
	// A figure links to its households: the two not visited, of four.
	link := regexp.MustCompile(`id="coverage" href="([^"]+)"`).FindStringSubmatch(page)
	if link == nil {
		t.Fatalf("the coverage figure links nowhere:\n%s", page)
	}
	status, _, page = b.get(strings.ReplaceAll(link[1], "&amp;", "&"))
	if status != http.StatusOK || strings.Count(page, "幸福路") != 2 || !strings.Contains(page, "/ 2 户") || !strings.Contains(page, "未走访的户") {
		t.Errorf("the households behind the coverage: %d\n%s", status, page)
	}
	// A household of the list opens whole: its ledger, category, person
	// (the id number masked), the visit and its hazard.
	status, _, page = b.get("/console/household/" + e.households[0])
	for _, want := range []string{"户主甲", "幸福路 1 号", "五保户", "张三", "**************1234", "上门个访", "李明", "治安隐患：楼道堆物", "登记"} {
		if !strings.Contains(page, want) {
			t.Errorf("the household page lacks %q:\n%s", want, page)
		}
	}
	if status != http.StatusOK || strings.Contains(page, "110101195001011234") {
		t.Errorf("the household page: %d, or shows the whole id number", status)
	}
	// A voided visit stays in the register, shown as voided with its reason.
	if _, _, page = b.get("/console/household/" + e.households[2]); !strings.Contains(page, "visit void") || !strings.Contains(page, "已作废") || !strings.Contains(page, "录错户") {
		t.Errorf("the household with a voided visit:\n%s", page)
	}
	if status, _, _ := b.get("/console/household/" + e.Grids[0]); status != http.StatusBadRequest {
		t.Errorf("the household page of a grid's id: %d, want 400", status)
	}
	if status, _, _ := b.get("/console/households?metric=no_such_metric"); status != http.StatusBadRequest {
		t.Errorf("households of an unknown metric: %d, want 400", status)
	}
	ck := b.cookie("doorbook_session")
	if ck == nil {
		t.Fatal("no session cookie")
	}
	// Cookie attributes as the browser was told them.
	req, _ := http.NewRequest(http.MethodGet, e.URL+"/console/signin", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for _, c := range res.Cookies() {
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/console/" {
			t.Errorf("cookie %s: HttpOnly %v, SameSite %v, Path %q; want HttpOnly, Strict, /console/", c.Name, c.HttpOnly, c.SameSite, c.Path)
		}
	}
	// The page's read is in the audit log, as the API's report is.
	reports := doorbookv1connect.NewReportServiceClient(http.DefaultClient, e.URL, connect.WithInterceptors(bearer.Token(e.adminToken)))
	audit, err := reports.ListAuditLog(context.Background(), &pb.ListAuditLogRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range audit.GetEntries() {
		found = found || (a.GetAdminName() == streetAdmin && a.GetCampaignId() == e.campaign)
	}
	if !found {
		t.Errorf("the dashboard's report is not in the audit log: %v", audit.GetEntries())
	}
	// English on request, kept in a cookie.
	if _, _, page := b.get("/console/?lang=en"); !strings.Contains(page, "Coverage (every household)") || !strings.Contains(page, `lang="en"`) {
		t.Errorf("the dashboard in English lacks its labels")
	}
	if _, _, page := b.get("/console/"); !strings.Contains(page, "Coverage (every household)") {
		t.Errorf("the language chosen was not kept")
	}
	if _, _, page := b.get("/console/?lang=zh"); !strings.Contains(page, "走访覆盖率") {
		t.Errorf("switching back to Chinese did not")
	}
	if _, _, page := b.get("/console/"); !strings.Contains(page, "走访覆盖率") {
		t.Errorf("Chinese, chosen again, was not kept")
	}

	// Sign-out: without the token it is refused and the session goes on;
	// with it, the session ends on the server.
	_, _, page = b.get("/console/")
	if status, _, _ := b.post("/console/signout", url.Values{}); status != http.StatusForbidden {
		t.Errorf("signing out without the CSRF token: %d, want 403", status)
	}
	if status, _, _ := b.get("/console/"); status != http.StatusOK {
		t.Errorf("the session after a refused sign-out: %d, want 200", status)
	}
	if status, h, _ := b.post("/console/signout", url.Values{"csrf": {b.csrf(page)}}); status != http.StatusSeeOther || h.Get("Location") != "/console/signin" {
		t.Errorf("signing out: %d to %q", status, h.Get("Location"))
	}
	stale := e.browser()
	u, _ := url.Parse(e.URL + "/console/")
	stale.hc.Jar.SetCookies(u, []*http.Cookie{{Name: "doorbook_session", Value: ck.Value, Path: "/console/"}})
	if status, h, _ := stale.get("/console/"); status != http.StatusSeeOther || h.Get("Location") != "/console/signin" {
		t.Errorf("the session cookie after signing out: %d to %q, want 303 to the sign-in page", status, h.Get("Location"))
	}
}

// TestConsoleSubtrees: a leader sees the street's progress; the admin of
// another street sees nothing of it, even by asking for its node.
func TestConsoleSubtrees(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	leader := e.browser()
	if page := leader.signIn(streetLeader, leaderPass); figure(page, "coverage") != "50.0%" {
		t.Errorf("the leader's dashboard lacks the street's coverage:\n%s", page)
	}
	other := e.browser()
	page := other.signIn(otherAdmin, otherAdminPass)
	for _, secret := range []string{"平安大走访", "Community", e.Grids[0]} {
		if strings.Contains(page, secret) {
			t.Errorf("the other street's admin sees %q:\n%s", secret, page)
		}
	}
	if status, _, page := other.get("/console/household/" + e.households[0]); status != http.StatusForbidden || strings.Contains(page, "幸福路") {
		t.Errorf("the other street's admin opening this street's household: %d\n%s", status, page)
	}
	status, _, page := other.get("/console/?node=" + e.street + "&campaign=" + e.campaign)
	if status != http.StatusForbidden || strings.Contains(page, "50.0%") {
		t.Errorf("the other street's admin asking for this street: %d\n%s", status, page)
	}
}

// TestConsoleItems: the tracked items register lists the hazard found; the
// street's admin assigns it to a unit with a deadline, resolves it and
// closes it off through the register's forms; a leader's forms are
// refused and change nothing, as is a form without its CSRF token.
func TestConsoleItems(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	update := func(b *browser, page, do string, extra url.Values) (int, http.Header) {
		t.Helper()
		form := url.Values{"csrf": {b.csrf(page)}, "visit": {e.hazardVisit}, "finding": {"0"}, "do": {do}, "back": {"/console/items"}}
		for k, v := range extra {
			form[k] = v
		}
		status, h, _ := b.post("/console/items/update", form)
		return status, h
	}
	state := func(b *browser) string {
		t.Helper()
		_, _, page := b.get("/console/items")
		m := regexp.MustCompile(`class="item-state">([^<]*)<`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("the register lists no item:\n%s", page)
		}
		return m[1]
	}

	leader := e.browser()
	leader.signIn(streetLeader, leaderPass)
	_, _, page := leader.get("/console/items?state=open")
	if !strings.Contains(page, "治安隐患：楼道堆物") || !strings.Contains(page, "户主甲") {
		t.Fatalf("the leader's register lacks the hazard:\n%s", page)
	}
	if status, _ := update(leader, page, "assign", url.Values{"unit": {"城管科"}, "deadline": {"2030-01-31"}}); status != http.StatusForbidden {
		t.Errorf("a leader assigning an item: %d, want 403", status)
	}
	if got := state(leader); got != "登记" {
		t.Errorf("the item after a leader's refused update: %q, want 登记", got)
	}

	admin := e.browser()
	admin.signIn(streetAdmin, streetAdminPass)
	if status, _, _ := admin.post("/console/items/update", url.Values{"visit": {e.hazardVisit}, "finding": {"0"}, "do": {"assign"},
		"unit": {"城管科"}, "deadline": {"2030-01-31"}}); status != http.StatusForbidden {
		t.Errorf("an update without its CSRF token: %d, want 403", status)
	}
	for _, step := range []struct {
		do    string
		extra url.Values
		want  string
	}{
		{"assign", url.Values{"unit": {"城管科"}, "co_units": {"物业公司、 社区居委会"}, "deadline": {"2030-01-31"}}, "挂牌督办"},
		{"resolve", url.Values{"note": {"已清理"}}, "已解决"},
		{"close", nil, "已销号"},
	} {
		_, _, page = admin.get("/console/items")
		status, h := update(admin, page, step.do, step.extra)
		if status != http.StatusSeeOther || h.Get("Location") != "/console/items" {
			t.Fatalf("%s: %d to %q", step.do, status, h.Get("Location"))
		}
		if got := state(admin); got != step.want {
			t.Errorf("after %s the item is %q, want %q", step.do, got, step.want)
		}
	}
	_, _, page = admin.get("/console/items?state=closed&unit=" + url.QueryEscape("城管科"))
	if !strings.Contains(page, "2030-01-31") || !strings.Contains(page, ">1 项") || !strings.Contains(page, "配合单位：物业公司、社区居委会") {
		t.Errorf("the register of closed items of the unit:\n%s", page)
	}
	if _, _, page = admin.get("/console/items?state=open"); !strings.Contains(page, ">0 项") {
		t.Errorf("the open items after closing the only one:\n%s", page)
	}
}

// TestConsoleExport: the dashboard's export form downloads the ledger as a
// workbook that excelize opens, with Chinese headers and this street's
// households, and the visit register as CSV with English headers; each
// download is in the audit log.
func TestConsoleExport(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t)
	b := e.browser()
	page := b.signIn(streetAdmin, streetAdminPass)
	if !strings.Contains(page, `id="export"`) {
		t.Fatalf("the dashboard has no export form:\n%s", page)
	}
	q := url.Values{"campaign": {e.campaign}, "kind": {"ledger"}, "format": {"xlsx"}, "headers": {"zh"}}
	req, _ := http.NewRequest(http.MethodGet, e.URL+"/console/export?"+q.Encode(), nil)
	res, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("the ledger download: %d, %q", res.StatusCode, res.Header.Get("Content-Disposition"))
	}
	f, err := excelize.OpenReader(res.Body)
	if err != nil {
		t.Fatalf("the downloaded ledger does not open: %v", err)
	}
	defer f.Close()
	rows, err := f.GetRows(f.GetSheetList()[0])
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, r := range rows {
		all = append(all, strings.Join(r, "|"))
	}
	text := strings.Join(all, "\n")
	for _, want := range []string{"户主姓名", "幸福路 1 号", "幸福路 4 号"} {
		if !strings.Contains(text, want) {
			t.Errorf("the ledger lacks %q:\n%s", want, text)
		}
	}
	q = url.Values{"campaign": {e.campaign}, "kind": {"visits"}, "format": {"csv"}, "headers": {"en"}}
	status, h, body := b.get("/console/export?" + q.Encode())
	if status != http.StatusOK || !strings.Contains(h.Get("Content-Type"), "csv") || !strings.Contains(body, "visitor") || strings.Count(body, "李明") != 3 {
		t.Errorf("the visit register download: %d %q\n%s", status, h.Get("Content-Type"), body)
	}
	if status, _, _ := b.get("/console/export?kind=ledger&format=pdf"); status != http.StatusBadRequest {
		t.Errorf("an export of an unknown format: %d, want 400", status)
	}
	reports := doorbookv1connect.NewReportServiceClient(http.DefaultClient, e.URL, connect.WithInterceptors(bearer.Token(e.adminToken)))
	audit, err := reports.ListAuditLog(context.Background(), &pb.ListAuditLogRequest{})
	if err != nil {
		t.Fatal(err)
	}
	exports := 0
	for _, a := range audit.GetEntries() {
		if a.GetAdminName() == streetAdmin && strings.HasPrefix(a.GetAction(), "export") {
			exports++
		}
	}
	if exports != 2 {
		t.Errorf("%d exports by the admin in the audit log, want 2", exports)
	}
	// The console's own audit page shows them, by name.
	_, _, page = b.get("/console/audit")
	if strings.Count(page, `class="audit-action">export`) != 2 || !strings.Contains(page, "平安大走访") || !strings.Contains(page, streetAdmin) {
		t.Errorf("the audit page:\n%s", page)
	}
}

// decodeQR reads the QR code of a page's data: image.
func decodeQR(t *testing.T, page string) string {
	t.Helper()
	m := regexp.MustCompile(`src="data:image/png;base64,([^"]+)"`).FindStringSubmatch(page)
	b64 := ""
	if m != nil {
		b64 = m[1]
	}
	raw, err := base64.StdEncoding.DecodeString(html.UnescapeString(b64))
	if err != nil || b64 == "" {
		t.Fatalf("no QR image in the page (%v):\n%s", err, page)
	}
	return decodePNG(t, raw)
}

// TestConsoleWorkers: the workers' page shows each worker's grids and
// devices with their last sync; an enrolment code made there comes as a
// QR code that decodes to the server and the code, with which a new phone
// enrols; revoking a device with a reason stops it at its next sync. A
// leader can do neither.
func TestConsoleWorkers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newConsoleEnv(t)
	leader := e.browser()
	leader.signIn(streetLeader, leaderPass)
	_, _, page := leader.get("/console/workers")
	if !strings.Contains(page, "李明") || !strings.Contains(page, "li-phone") {
		t.Fatalf("the leader's workers page:\n%s", page)
	}
	if strings.Contains(page, `name="worker"`) || strings.Contains(page, "do-revoke") {
		t.Errorf("the leader is offered enrolment codes or revocation:\n%s", page)
	}
	ws, err := e.Admin.ListWorkers(ctx, &pb.ListWorkersRequest{})
	if err != nil || len(ws.GetWorkers()) == 0 {
		t.Fatalf("the workers: %v %v", ws, err)
	}
	worker := []string{"", ws.GetWorkers()[0].GetId()}
	// Posted anyway, the form is refused.
	if status, _, _ := leader.post("/console/workers/code", url.Values{"csrf": {leader.csrf(page)}, "worker": {worker[1]}}); status != http.StatusForbidden {
		t.Errorf("a leader making an enrolment code: %d, want 403", status)
	}

	admin := e.browser()
	admin.signIn(streetAdmin, streetAdminPass)
	_, _, page = admin.get("/console/workers")
	if strings.Contains(page, `class="last-sync">从未`) || !strings.Contains(page, "Grid A") {
		t.Errorf("the workers page lacks the phone's last sync or the grids:\n%s", page)
	}
	status, _, page := admin.post("/console/workers/code", url.Values{"csrf": {admin.csrf(page)}, "worker": {worker[1]}, "name": {"李明"}})
	if status != http.StatusOK {
		t.Fatalf("making an enrolment code: %d\n%s", status, page)
	}
	link, err := url.Parse(decodeQR(t, page))
	if err != nil || link.Scheme != "doorbook" || link.Query().Get("server") != e.URL || link.Query().Get("code") != figure(page, "code") {
		t.Fatalf("the QR code holds %v (%v); want the server %s and the code shown, %q", link, err, e.URL, figure(page, "code"))
	}
	phone := e.enroll("li-second-phone", link.Query().Get("code"))
	mustSync(t, phone)

	_, _, page = admin.get("/console/workers")
	device := regexp.MustCompile(`name="device" value="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(device) != 2 {
		t.Fatalf("the workers page lists %d devices that may be revoked, want 2:\n%s", len(device), page)
	}
	// Revoke the newest device (the list is oldest first).
	if status, _, _ := admin.post("/console/workers/revoke", url.Values{"csrf": {admin.csrf(page)}, "device": {device[1][1]}, "reason": {"手机丢失"}}); status != http.StatusSeeOther {
		t.Fatalf("revoking a device: %d", status)
	}
	if _, _, page = admin.get("/console/workers"); !strings.Contains(page, "已停用") || !strings.Contains(page, "手机丢失") {
		t.Errorf("the revoked device is not shown as such:\n%s", page)
	}
	if _, err := phone.Sync(ctx); err == nil {
		t.Errorf("the revoked phone still syncs")
	}
}
