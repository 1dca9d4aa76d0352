package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/xuri/excelize/v2"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/syncengine"
)

// importRow is what a test expects of one row of an import.
type importRow struct {
	line    uint32
	action  pb.ImportAction
	refusal pb.ImportRefusal
	detail  string
}

func checkImport(t *testing.T, what string, res *pb.ImportLedgerResponse, want []importRow) {
	t.Helper()
	var got []importRow
	for _, r := range res.GetRows() {
		got = append(got, importRow{r.GetLine(), r.GetAction(), r.GetRefusal(), r.GetDetail()})
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: rows\n got %v\nwant %v", what, got, want)
	}
}

// ledgerClient is a LedgerService client of the env's installation-wide
// admin (or of token).
func (e *env) ledgerClient(token string) doorbookv1connect.LedgerServiceClient {
	if token == "" {
		token = e.adminToken
	}
	return doorbookv1connect.NewLedgerServiceClient(http.DefaultClient, e.URL, connect.WithInterceptors(bearer.Token(token)), connect.WithSendGzip())
}

// TestLedgerImport: an office's ledger, as a clerk keeps it (a title row,
// its own column order, a column Doorbook has no use for), is checked row
// by row in a dry run that writes nothing, then imported; what it created
// reaches a phone of the grid; the same file imported again changes
// nothing; and the ledger exported as .xlsx, edited and imported back
// changes only the cell edited, which the phone then shows too.
func TestLedgerImport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 2)
	street := e.nodeAt(pb.OrgLevel_ORG_LEVEL_STREET)
	lc := e.ledgerClient("")

	file := "和平街道 户籍台账 2026年12月\n" +
		"\n" +
		"网格,户主姓名,地址,手机,备注,人口数,家庭成员,五必访类别\n" +
		"Grid A,张伟,幸福路 1 号,138 0013 8000,老党员,3,张伟、李娜、张小伟,重点对象\n" + // line 4
		"Grid A,王芳,幸福路 2 号,,,2,王芳,\n" +
		"Grid B,刘洋,和平路 9 号,0571-88886666,,1,,刑释人员、弱势困难户\n" +
		"Grid B,赵磊,和平路 10 号,12345,,,,\n" + // a bad mobile
		"Grid Z,钱七,和平路 11 号,,,,,\n" + // no such grid
		"Grid A,,幸福路 3 号,,,,,\n" + // no head
		"Grid A, 张伟 ,幸福路1号,,,,,\n" + // line 4 again (spaces differ)
		"Grid B,孙八,和平路 12 号,,,,,独居老人\n" + // no such category
		"\n" +
		"Grid B,周九,和平路 13 号,,,four,,\n" // a bad member count
	want := []importRow{
		{4, pb.ImportAction_IMPORT_ACTION_CREATE, 0, ""},
		{5, pb.ImportAction_IMPORT_ACTION_CREATE, 0, ""},
		{6, pb.ImportAction_IMPORT_ACTION_CREATE, 0, ""},
		{7, pb.ImportAction_IMPORT_ACTION_REFUSE, pb.ImportRefusal_IMPORT_REFUSAL_BAD_MOBILE, "12345"},
		{8, pb.ImportAction_IMPORT_ACTION_REFUSE, pb.ImportRefusal_IMPORT_REFUSAL_UNKNOWN_GRID, "Grid Z"},
		{9, pb.ImportAction_IMPORT_ACTION_REFUSE, pb.ImportRefusal_IMPORT_REFUSAL_MISSING_HEAD, ""},
		{10, pb.ImportAction_IMPORT_ACTION_REFUSE, pb.ImportRefusal_IMPORT_REFUSAL_DUPLICATE, "4"},
		{11, pb.ImportAction_IMPORT_ACTION_REFUSE, pb.ImportRefusal_IMPORT_REFUSAL_UNKNOWN_CATEGORY, "独居老人"},
		{13, pb.ImportAction_IMPORT_ACTION_REFUSE, pb.ImportRefusal_IMPORT_REFUSAL_BAD_MEMBERS, "four"},
	}

	// 1. The dry run says what each row would do, and writes nothing.
	dry, err := lc.ImportLedger(ctx, &pb.ImportLedgerRequest{NodeId: street, FileName: "台账.csv", File: []byte(file), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	checkImport(t, "dry run", dry, want)
	if dry.GetApplied() || dry.GetCreated() != 3 || dry.GetRefused() != 6 || dry.GetPersonsAdded() != 4 || dry.GetCategoriesAdded() != 3 ||
		!slices.Equal(dry.GetUnknownColumns(), []string{"备注"}) {
		t.Errorf("dry run: applied %v, %d created, %d refused, %d persons, %d categories, unknown %q; want false, 3, 6, 4, 3, [备注]",
			dry.GetApplied(), dry.GetCreated(), dry.GetRefused(), dry.GetPersonsAdded(), dry.GetCategoriesAdded(), dry.GetUnknownColumns())
	}
	if rows := e.ledgerRows(ctx, street); len(rows) != 0 {
		t.Fatalf("the dry run wrote households: %q", rows)
	}

	// 2. The real run writes the rows not refused.
	_, code := e.worker("li", e.Grids[0])
	phone := e.enroll("li's phone", code)
	mustSync(t, phone)
	res, err := lc.ImportLedger(ctx, &pb.ImportLedgerRequest{NodeId: street, FileName: "台账.csv", File: []byte(file)})
	if err != nil {
		t.Fatal(err)
	}
	checkImport(t, "import", res, want)
	if !res.GetApplied() {
		t.Error("the import says it wrote nothing")
	}
	ids := map[string]string{}
	for _, r := range res.GetRows()[:3] {
		if r.GetHouseholdId() == "" {
			t.Fatalf("line %d created no household id", r.GetLine())
		}
		ids[r.GetHouseholdId()] = ""
	}
	rows := e.ledgerRows(ctx, street)
	wantRows := map[string][]string{
		"张伟": {"Community", "Grid A", "张伟", "幸福路 1 号", "13800138000", "", "", "", "", "3", "张伟、李娜、张小伟", "key person"},
		"王芳": {"Community", "Grid A", "王芳", "幸福路 2 号", "", "", "", "", "", "2", "王芳", ""},
		"刘洋": {"Community", "Grid B", "刘洋", "和平路 9 号", "", "0571-88886666", "", "", "", "1", "", "released prisoner、vulnerable household"},
	}
	if len(rows) != len(wantRows) {
		t.Fatalf("ledger after the import: %d households, want %d: %q", len(rows), len(wantRows), rows)
	}
	for _, row := range rows {
		if _, ok := ids[row[0]]; !ok {
			t.Errorf("the ledger has household %s, which the import did not name", row[0])
		}
		if got, want := row[1:13], wantRows[row[3]]; !slices.Equal(got, want) {
			t.Errorf("ledger row of %s:\n got %q\nwant %q", row[3], got, want)
		}
	}
	audit, err := e.reports(e.adminToken).ListAuditLog(ctx, &pb.ListAuditLogRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range audit.GetEntries() {
		if strings.HasPrefix(a.GetAction(), "import ledger") {
			actions = append(actions, a.GetAction())
		}
	}
	if !slices.Contains(actions, "import ledger") || !slices.Contains(actions, "import ledger (dry run)") {
		t.Errorf("audit log's imports: %q; want the dry run and the import", actions)
	}
	mustSync(t, phone)
	assertSameState(t, "phone of Grid A vs server after the import", e.serverState(e.Grids[0]), dump(t, phone))
	if n := len(dump(t, phone).Households); n != 2 {
		t.Errorf("the phone of Grid A has %d households, want the 2 imported into it", n)
	}

	// The person–house linkage (人房关联率) of what was imported: 张伟's
	// three members are all listed, 王芳 lists one of two, 刘洋 none of one.
	camp := e.campaignNow(street, "入户走访", 30)
	rep, err := e.reports(e.adminToken).GetProgress(ctx, &pb.GetProgressRequest{NodeId: street, CampaignId: camp})
	if err != nil {
		t.Fatal(err)
	}
	if tot := rep.GetReport().GetTotal(); tot.GetMembers() != 6 || tot.GetMembersLinked() != 4 || tot.GetMembersMismatch() != 2 {
		t.Errorf("linkage: %d of %d members linked, %d households mismatched; want 4 of 6, 2", tot.GetMembersLinked(), tot.GetMembers(), tot.GetMembersMismatch())
	}
	mismatched, err := e.reports(e.adminToken).ListReportHouseholds(ctx, &pb.ListReportHouseholdsRequest{NodeId: street, CampaignId: camp,
		Metric: pb.ReportMetric_REPORT_METRIC_MEMBERS_MISMATCH})
	if err != nil {
		t.Fatal(err)
	}
	var heads []string
	for _, h := range mismatched.GetHouseholds() {
		heads = append(heads, h.GetHeadName()+": "+h.GetDetail())
	}
	slices.Sort(heads)
	if want := []string{"刘洋: 0 persons listed of 1 members", "王芳: 1 persons listed of 2 members"}; !slices.Equal(heads, want) {
		t.Errorf("households whose members differ: %q, want %q", heads, want)
	}

	// 3. The same file again changes nothing.
	again, err := lc.ImportLedger(ctx, &pb.ImportLedgerRequest{NodeId: street, FileName: "台账.csv", File: []byte(file)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range want[:3] {
		want[i].action = pb.ImportAction_IMPORT_ACTION_UNCHANGED
	}
	checkImport(t, "the same file again", again, want)
	if again.GetApplied() {
		t.Error("the same file again wrote something")
	}
	// It is still an import in the audit log, not a dry run.
	if log, err := e.reports(e.adminToken).ListAuditLog(ctx, &pb.ListAuditLogRequest{Limit: 1}); err != nil || len(log.GetEntries()) != 1 ||
		log.GetEntries()[0].GetAction() != "import ledger" {
		t.Errorf("the audit log's newest entry after the same file again: %v (%v), want import ledger", log.GetEntries(), err)
	}

	// 4. The export, as .xlsx, edited in Excel and imported back: only the
	// cell edited changes.
	_, book, err := exportFile(ctx, e.reports(e.adminToken), &pb.ExportRequest{NodeId: street, Kind: pb.ExportKind_EXPORT_KIND_LEDGER,
		Format: pb.ExportFormat_EXPORT_FORMAT_XLSX, Language: pb.Language_LANGUAGE_ZH})
	if err != nil {
		t.Fatal(err)
	}
	x, err := excelize.OpenReader(bytes.NewReader(book))
	if err != nil {
		t.Fatal(err)
	}
	sheet := x.GetSheetList()[0]
	sheetRows, err := x.GetRows(sheet)
	if err != nil {
		t.Fatal(err)
	}
	edited := 0
	for i, r := range sheetRows {
		if len(r) > 3 && r[3] == "王芳" {
			edited = i + 1
			if err := x.SetCellValue(sheet, "F"+strconv.Itoa(edited), "13900139000"); err != nil {
				t.Fatal(err)
			}
		}
	}
	var buf bytes.Buffer
	if _, err := x.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := lc.ImportLedger(ctx, &pb.ImportLedgerRequest{NodeId: street, FileName: "台账.xlsx", File: buf.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	if back.GetUpdated() != 1 || back.GetUnchanged() != 2 || back.GetCreated()+back.GetRefused() != 0 || back.GetSheet() != "台账" {
		t.Errorf("edited export back: %d updated, %d unchanged, %d created, %d refused, sheet %q; want 1, 2, 0, 0, 台账",
			back.GetUpdated(), back.GetUnchanged(), back.GetCreated(), back.GetRefused(), back.GetSheet())
	}
	for _, r := range back.GetRows() {
		if r.GetAction() == pb.ImportAction_IMPORT_ACTION_UPDATE && (r.GetLine() != uint32(edited) || !slices.Equal(r.GetFields(), []string{"mobile"})) {
			t.Errorf("edited export back: line %d updates %q; want line %d, [mobile]", r.GetLine(), r.GetFields(), edited)
		}
	}
	mustSync(t, phone)
	assertSameState(t, "phone of Grid A vs server after the edit", e.serverState(e.Grids[0]), dump(t, phone))
	found := false
	for _, h := range dump(t, phone).Households {
		if h.HeadName.Value == "王芳" {
			found = h.PhoneMobile.Value == "13900139000"
		}
	}
	if !found {
		t.Error("the phone does not show 王芳's new mobile number")
	}
}

// TestLedgerImportLimits: an import's file may be far larger than any
// other call's message (up to 32 MiB), a larger one is refused whole, and
// only an admin who manages the node imports into it.
func TestLedgerImportLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	street := e.nodeAt(pb.OrgLevel_ORG_LEVEL_STREET)
	lc := e.ledgerClient("")

	// 6 MiB, over the 4 MiB of every other call: a column the import does
	// not read, and one household.
	var big bytes.Buffer
	cw := csv.NewWriter(&big)
	_ = cw.Write([]string{"网格", "户主姓名", "地址", "照片"})
	_ = cw.Write([]string{"Grid A", "张伟", "幸福路 1 号", strings.Repeat("x", 6<<20)})
	cw.Flush()
	res, err := lc.ImportLedger(ctx, &pb.ImportLedgerRequest{NodeId: street, FileName: "big.csv", File: big.Bytes(), DryRun: true})
	if err != nil {
		t.Fatalf("a 6 MiB ledger: %v", err)
	}
	if res.GetCreated() != 1 {
		t.Errorf("a 6 MiB ledger: %d created, want 1", res.GetCreated())
	}
	huge := make([]byte, 32<<20+1)
	if _, err := lc.ImportLedger(ctx, &pb.ImportLedgerRequest{NodeId: street, FileName: "huge.csv", File: huge}); connect.CodeOf(err) != connect.CodeResourceExhausted {
		t.Errorf("a file over 32 MiB: err = %v, want ResourceExhausted", err)
	}
	if _, err := lc.ImportLedger(ctx, &pb.ImportLedgerRequest{NodeId: street, FileName: "x.csv", File: []byte("no,header\n1,2\n")}); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("a file without the ledger's header: err = %v, want InvalidArgument", err)
	}

	// Another district's admin, and a leader of this street.
	d2 := e.node("", pb.OrgLevel_ORG_LEVEL_DISTRICT, "District 2")

	// A row naming a household of another district is refused, as one the
	// street cannot import into; none is written.
	g2 := e.node(e.node(e.node(d2, pb.OrgLevel_ORG_LEVEL_STREET, "Street 2"), pb.OrgLevel_ORG_LEVEL_COMMUNITY, "Community 2"), pb.OrgLevel_ORG_LEVEL_GRID, "Grid 2")
	theirs := newID()
	e.importRows(syncengine.Bundle{Households: []syncengine.Household{{ID: theirs, GridID: syncengine.NewRegister(g2, syncengine.Clock{HLC: syncengine.PackHLC(time.Now().UnixMilli(), 0), Node: 9})}}})
	res, err = lc.ImportLedger(ctx, &pb.ImportLedgerRequest{NodeId: street, FileName: "x.csv", File: []byte("户编号,户主姓名\n" + theirs + ",别人\n")})
	if err != nil || len(res.GetRows()) != 1 || res.GetRows()[0].GetRefusal() != pb.ImportRefusal_IMPORT_REFUSAL_NOT_HERE {
		t.Errorf("a household of another district: %v (%v), want it refused as not here", res.GetRows(), err)
	}
	ok := []byte("网格,户主姓名,地址\nGrid A,王芳,幸福路 2 号\n")
	for _, tc := range []struct {
		name   string
		leader bool
		node   string
	}{{"another district's admin", false, d2}, {"a leader of the street", true, street}} {
		role := pb.AdminRole_ADMIN_ROLE_ADMIN
		if tc.leader {
			role = pb.AdminRole_ADMIN_ROLE_LEADER
		}
		res, err := e.Admin.CreateAdmin(ctx, &pb.CreateAdminRequest{Name: tc.name, NodeId: tc.node, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.ledgerClient(res.GetToken()).ImportLedger(ctx, &pb.ImportLedgerRequest{NodeId: street, FileName: "x.csv", File: ok})
		if connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Errorf("%s imports into the street: err = %v, want PermissionDenied", tc.name, err)
		}
	}
	if rows := e.ledgerRows(ctx, street); len(rows) != 0 {
		t.Errorf("refused imports wrote households: %q", rows)
	}
}

// ledgerRows exports node's ledger as CSV (English headers) and returns
// its rows under the header.
func (e *env) ledgerRows(ctx context.Context, node string) [][]string {
	e.t.Helper()
	_, data, err := exportFile(ctx, e.reports(e.adminToken), &pb.ExportRequest{NodeId: node, Kind: pb.ExportKind_EXPORT_KIND_LEDGER,
		Format: pb.ExportFormat_EXPORT_FORMAT_CSV, Language: pb.Language_LANGUAGE_EN})
	if err != nil {
		e.t.Fatal(err)
	}
	records, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff")))).ReadAll()
	if err != nil {
		e.t.Fatal(err)
	}
	return records[1:]
}
