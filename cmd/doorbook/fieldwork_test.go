package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

type dueOut struct {
	Kind        string `json:"kind"`
	HouseholdID string `json:"household_id"`
	Reason      string `json:"reason"`
}

type progressOut struct {
	CampaignID string `json:"campaign_id"`
	Visited    int    `json:"visited"`
	Quota      int    `json:"quota"`
	Grids      []struct {
		GridID     string `json:"grid_id"`
		Households int    `json:"households"`
		Visited    int    `json:"visited"`
	} `json:"grids"`
}

type itemOut struct {
	VisitID string `json:"visit_id"`
	Kind    string `json:"kind"`
	State   string `json:"state"`
	Unit    string `json:"unit"`
}

// fieldRulesStep walks the field rules through the CLI, on the demo's
// campaign: a worker's due list and progress offline, a visit with
// materials, a hazard, a revisit and survey answers; then the admin's
// report, tracked item, exports and audit log.
func fieldRulesStep(t *testing.T, srv *testServer, li replica, campaign string) {
	li.t = t
	if campaign == "" {
		t.Fatal("the demo credentials name no campaign")
	}
	if cats := li.run("categories"); !strings.Contains(cats, `"key_person"`) {
		t.Fatalf("the phone has no default categories: %s", cats)
	}
	before := doorbookJSON[progressOut](t, li.args("progress")...)
	if before.CampaignID != campaign || before.Quota != 200 {
		t.Errorf("progress before: campaign %s quota %d, want %s and 200", before.CampaignID, before.Quota, campaign)
	}
	due := doorbookJSON[[]dueOut](t, li.args("due")...)
	if len(due) < 3 {
		t.Fatalf("due lists %d households, want many", len(due))
	}
	first, second, third := due[0].HouseholdID, due[1].HouseholdID, due[2].HouseholdID
	visit := li.write("visit", "--household", first, "--notes", "楼道堆放杂物", "--material", "open_letter",
		"--finding", "hazard:楼道堆物", "--revisit", "unstable_mood", "--answer", "aware=2", "--answer", "satisfied=4", "--answer", "safe=2")
	li.write("visit", "--household", second, "--household", third, "--form", "talk", "--notes", "恳谈会")
	after := doorbookJSON[progressOut](t, li.args("progress")...)
	if after.Visited != before.Visited+3 {
		t.Errorf("progress offline: visited %d, want %d (the talk counts for both households)", after.Visited, before.Visited+3)
	}
	for _, d := range doorbookJSON[[]dueOut](t, li.args("due")...) {
		if d.HouseholdID == first || d.HouseholdID == second {
			t.Errorf("a household just visited is still due: %+v", d)
		}
	}
	if _, _, err := doorbook(t, li.args("visit", "--household", first, "--answer", "aware=9")...); err == nil {
		t.Error("an answer outside the question's scale was accepted")
	}
	// A photo of the hazard goes with the visit, after it.
	photo := filepath.Join(t.TempDir(), "楼道.jpg")
	content := append([]byte("\xff\xd8\xff\xe0 a photo of the stairwell "), bytes.Repeat([]byte{1, 2, 3}, 200_000)...)
	if err := os.WriteFile(photo, content, 0o600); err != nil {
		t.Fatal(err)
	}
	attached := doorbookJSON[struct {
		SHA256    string `json:"sha256"`
		MediaType string `json:"media_type"`
	}](t, li.args("attach", "--visit", visit, "--file", photo)...)
	if attached.MediaType != "image/jpeg" || len(attached.SHA256) != 64 {
		t.Errorf("attach: %+v", attached)
	}
	if synced := li.sync(); synced.FilesUploaded != 1 || synced.FilesPending != 0 {
		t.Errorf("sync uploaded %d files, %d to go; want the photo", synced.FilesUploaded, synced.FilesPending)
	}
	listed := doorbookJSON[[]struct {
		VisitID string `json:"visit_id"`
		SHA256  string `json:"sha256"`
		Name    string `json:"name"`
	}](t, srv.admin("attachment", "list", "--visit", visit)...)
	if len(listed) != 1 || listed[0].SHA256 != attached.SHA256 || listed[0].Name != "楼道.jpg" {
		t.Errorf("attachment list: %+v", listed)
	}
	// A zero report of one of li's grids, and the week's reporting.
	grids := doorbookJSON[[]struct {
		ID string `json:"id"`
	}](t, li.args("grids")...)
	if len(grids) == 0 {
		t.Fatal("li has no grid")
	}
	doorbookJSON[map[string]string](t, srv.admin("zero", "--node", grids[0].ID, "--from", "2020-01-06", "--until", "2020-01-13", "--note", "无矛盾纠纷")...)
	units := doorbookJSON[[]struct {
		Node struct {
			ID string `json:"id"`
		} `json:"node"`
		ZeroReports []struct {
			Note string `json:"note"`
		} `json:"zero_reports"`
		Silent bool `json:"silent"`
	}](t, srv.admin("report", "reporting", "--from", "2020-01-06", "--until", "2020-01-13")...)
	silent, zero := 0, false
	for _, u := range units {
		if u.Silent {
			silent++
		}
		zero = zero || (u.Node.ID == grids[0].ID && len(u.ZeroReports) == 1 && u.ZeroReports[0].Note == "无矛盾纠纷")
	}
	if !zero || silent != len(units)-1 {
		t.Errorf("report reporting: %d units, %d silent, the zero report found: %v; want all silent but li's grid", len(units), silent, zero)
	}
	got := filepath.Join(t.TempDir(), "got.jpg")
	doorbook(t, srv.admin("attachment", "get", "--sha256", attached.SHA256, "--out", got)...)
	if data, err := os.ReadFile(got); err != nil || !bytes.Equal(data, content) {
		t.Errorf("attachment get wrote %d bytes (%v), want the photo", len(data), err)
	}

	doorbookJSON[map[string]string](t, srv.admin("item", "--visit", visit, "--to", "assigned", "--unit", "东风派出所", "--deadline", "2030-01-01")...)
	li.sync()
	items := doorbookJSON[[]itemOut](t, li.args("items")...)
	if len(items) != 1 || items[0].VisitID != visit || items[0].Kind != "hazard" || items[0].State != "assigned" || items[0].Unit != "东风派出所" {
		t.Errorf("items on the phone: %+v, want the hazard assigned to 东风派出所", items)
	}

	type figures struct {
		Households      int `json:"households"`
		Visited         int `json:"visited"`
		RevisitsOpen    int `json:"revisits_open"`
		ItemsOpen       int `json:"items_open"`
		SurveyQuestions []struct {
			Question string `json:"question"`
			Answered int    `json:"answered"`
			Positive int    `json:"positive"`
		} `json:"survey"`
	}
	rep := doorbookJSON[struct {
		Total       figures   `json:"total"`
		Communities []figures `json:"communities"`
	}](t, srv.admin("report", "--campaign", campaign)...)
	if rep.Total.Visited < 3 || rep.Total.RevisitsOpen != 1 || rep.Total.ItemsOpen != 1 || len(rep.Communities) != 3 {
		t.Errorf("report: %+v", rep)
	}
	if s := rep.Total.SurveyQuestions; len(s) != 3 || s[0].Answered != 1 || s[0].Positive != 1 || s[2].Positive != 0 {
		t.Errorf("report survey: %+v", s)
	}
	doorbookJSON[map[string]any](t, srv.admin("campaign", "ranking", "--id", campaign, "--weight", "coverage=1",
		"--reward", "1-1=3000/300", "--reward", "2-=-1000/-100")...)
	ranked := doorbookJSON[struct {
		Communities []struct {
			Rank   int   `json:"rank"`
			Reward int64 `json:"reward_community_yuan"`
		} `json:"communities"`
	}](t, srv.admin("report", "--campaign", campaign)...)
	if c := ranked.Communities; len(c) != 3 || c[0].Rank != 1 || c[0].Reward != 3000 || c[1].Rank != 2 || c[1].Reward != -1000 || c[2].Reward != -1000 {
		t.Errorf("report after campaign ranking: %+v, want 3 communities ranked, 3000 for the first and -1000 for the others", c)
	}
	if got := doorbookJSON[map[string]int](t, srv.admin("item", "policy", "--escalation-days", "3")...); got["escalation_days"] != 3 {
		t.Errorf("item policy --escalation-days 3: %v", got)
	}
	if got := doorbookJSON[map[string]int](t, srv.admin("item", "policy")...); got["escalation_days"] != 3 {
		t.Errorf("item policy: %v, want 3 days", got)
	}
	weekly, _, err := doorbook(t, "admin", "--credentials", srv.credsPath, "report", "--campaign", campaign, "--weekly")
	if err != nil || !regexp.MustCompile(`(?m)^WEEK +FROM +UNTIL +VISITED`).MatchString(weekly) || !regexp.MustCompile(`(?m)^1 +\d{4}-\d\d-\d\d +\d{4}-\d\d-\d\d +\d+/\d+ `).MatchString(weekly) {
		t.Errorf("admin report --weekly (%v):\n%s\nwant a table of weeks", err, weekly)
	}
	if _, _, err := doorbook(t, srv.admin("campaign", "ranking", "--id", campaign, "--reward", "first=3000")...); err == nil {
		t.Error("campaign ranking --reward first=3000 was taken")
	}

	dir := t.TempDir()
	ledger := filepath.Join(dir, "ledger.csv")
	doorbook(t, srv.admin("export", "--campaign", campaign, "--kind", "ledger", "--format", "csv", "--lang", "en", "--out", ledger)...)
	data, err := os.ReadFile(ledger)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != rep.Total.Households+1 || rows[0][3] != "head of household" {
		t.Errorf("ledger CSV: %d rows, header %v; want %d households and a header", len(rows), rows[0], rep.Total.Households)
	}
	// The ledger imported back into the street changes nothing; one row
	// edited is one update, which the dry run says and does not write.
	var street string
	for _, n := range doorbookJSON[[]nodeOutJSON](t, srv.admin("org", "list")...) {
		if n.Level == "street" {
			street = n.ID
		}
	}
	type imported struct {
		Created, Updated, Unchanged, Refused int
		Applied                              bool
	}
	back := doorbookJSON[imported](t, srv.admin("import", "--node", street, "--file", ledger)...)
	if back != (imported{Unchanged: rep.Total.Households}) {
		t.Errorf("admin import of the ledger exported: %+v, want %d unchanged", back, rep.Total.Households)
	}
	rows[1][6] = "0571-88886666" // the first household's landline
	var edited bytes.Buffer
	w := csv.NewWriter(&edited)
	if err := w.WriteAll(rows); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ledger, edited.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := doorbook(t, "admin", "--credentials", srv.credsPath, "import", "--node", street, "--file", ledger, "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^2 +update +`+rows[1][0]+` +landline$`).MatchString(stdout) || !strings.Contains(stdout, "dry run: nothing was written") {
		t.Errorf("admin import --dry-run prints:\n%s\nwant line 2's update of the landline, and that nothing was written", stdout)
	}
	for _, dry := range []bool{true, false} {
		args := []string{"import", "--node", street, "--file", ledger}
		if dry {
			args = append(args, "--dry-run")
		}
		got := doorbookJSON[imported](t, srv.admin(args...)...)
		if want := (imported{Updated: 1, Unchanged: rep.Total.Households - 1, Applied: !dry}); got != want {
			t.Errorf("admin %s: %+v, want %+v", strings.Join(args, " "), got, want)
		}
	}
	book := filepath.Join(dir, "all.xlsx")
	doorbook(t, srv.admin("export", "--campaign", campaign, "--kind", "all", "--format", "xlsx", "--out", book)...)
	f, err := excelize.OpenFile(book)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, want := f.GetSheetList(), []string{"台账", "入户下访登记表", "进度", "任务完成", "民调", "周进度", "挂牌督办台账"}; !slices.Equal(got, want) {
		t.Errorf("workbook sheets %v, want %v", got, want)
	}
	visits, err := f.GetRows("入户下访登记表")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(visits, func(r []string) bool {
		return slices.Contains(r, "楼道堆放杂物") && slices.Contains(r, "公开信")
	}) {
		t.Errorf("visit register lacks the visit: %v", visits)
	}
	audit, _, err := doorbook(t, srv.admin("audit")...)
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"report progress", "export ledger csv", "export all xlsx"} {
		if !strings.Contains(audit, action) {
			t.Errorf("audit log lacks %q: %s", action, audit)
		}
	}
}
