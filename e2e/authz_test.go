package e2e

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql's driver "pgx", to read the server's PostgreSQL database
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/server"
)

// TestAuthzMatrix calls every RPC of the API as every kind of caller that
// must be refused, and checks the code of each refusal and that it changed
// nothing in the server's database. Positive controls (the worker on their
// own grid, this street's admin, the installation-wide admin) make the same
// requests and succeed, which shows that each refusal is due to who calls,
// not to what is asked.
//
// The procedures come from the registered file descriptors of package
// doorbook.v1: an RPC added to the API without a row here fails the test.
func TestAuthzMatrix(t *testing.T) {
	start := time.Now()
	s := newAuthzSetup(t)
	setup := time.Since(start)

	// Expected answers: ok, Unauthenticated, PermissionDenied.
	const (
		OK = authzWant(iota)
		UN
		PD
		IA
	)
	// What a successful call may change: nothing (a read), the audit log
	// (a report read, which must add one entry), the calling device's
	// record of what it was sent (a pull, which bounds its grace), anything
	// (a write). A public call needs no token: the enrolment code is its
	// credential.
	const (
		read = iota
		audited
		tracked
		write
		public
		// auditedForAdmins: audited for an admin, a read for a worker.
		auditedForAdmins
	)
	// The callers, the columns of the table below:
	//   anon     no token
	//   junk     a token that is not one
	//   badSecr  the installation-wide admin's credential id, a wrong secret
	//   revoked  a device of w1 revoked through RevokeDevice
	//   wGrid    w1, the worker of grid G0, acting on grid G1 of the same street
	//   wStreet  w3, the worker of grid H0 of the other street S2, acting on G0
	//   leader   a leader (read-only admin) of this street S
	//   aStreet  an admin of the other street S2, acting on S
	// and the positive controls, which run last as their writes change what
	// the others act on:
	//   wSelf    w1 on their own grid G0
	//   sAdmin   an admin of S
	//   root     the installation-wide admin
	callers := []*authzCaller{
		s.anon, s.junk, s.badSecret, s.revoked, s.wGrid, s.wStreet, s.leader, s.aStreet,
		s.wSelf, s.sAdmin, s.root,
	}
	type row struct {
		want [11]authzWant
		// name is the RPC's method name, then what the request asks.
		name string
		kind int
		call func(*authzCaller) ([]proto.Message, error)
	}
	type w = [11]authzWant
	// Requests name real objects of this street S (G0, G1, wV, devV, hM,
	// v0, camp; see authzSetup): they are valid for its admin, or for w1,
	// the worker of grid G0, as the positive controls show. A worker's
	// sync requests aim at a grid, household and visit not theirs.
	rows := []row{
		// ano jun bad rev wGr wSt lea aSt wSe sAd roo
		{w{UN, UN, UN, UN, PD, PD, PD, PD, OK, PD, PD}, "Push·register", write, s.pushRegister},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, OK, PD, PD}, "Push·edit", write, s.pushEdit},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, OK, PD, PD}, "Push·person", write, s.pushPerson},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, OK, PD, PD}, "Push·tag", write, s.pushTag},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, OK, PD, PD}, "Push·visit", write, s.pushVisit},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, OK, PD, PD}, "Push·amend", write, s.pushAmend},
		{w{UN, UN, UN, UN, OK, OK, PD, PD, OK, PD, PD}, "Pull", tracked, s.pull},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, OK, PD, PD}, "Bootstrap·grid", read, s.bootstrap},
		{w{UN, UN, UN, UN, UN, UN, UN, UN, UN, UN, UN}, "Enroll·spent", public, s.enrollSpent},
		{w{OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK}, "Enroll·fresh", public, s.enrollFresh},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, OK, OK}, "CreateOrgNode", write, s.createOrgNode},
		{w{UN, UN, UN, UN, PD, PD, OK, OK, PD, OK, OK}, "ListOrgNodes", read, s.listOrgNodes},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, OK, OK}, "CreateWorker", write, s.createWorker},
		{w{UN, UN, UN, UN, PD, PD, OK, OK, PD, OK, OK}, "ListWorkers", read, s.listWorkers},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, OK, OK}, "SetWorkerGrids", write, s.setWorkerGrids},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, OK, OK}, "CreateEnrollmentCode", write, s.createCode},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, OK, OK}, "MoveHousehold", write, s.moveHousehold},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, PD, OK}, "MoveHousehold·in", write, s.moveHouseholdIn},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, OK, OK}, "ErasePersonalData", write, s.erase},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, PD, OK}, "PutCategory", write, s.putCategory},
		{w{UN, UN, UN, UN, PD, PD, OK, OK, PD, OK, OK}, "ListCategories", read, s.listCategories},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, PD, OK}, "LoadDefaultCategories", write, s.loadDefaults},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, OK, OK}, "PutCampaign·edit", write, s.putCampaignEdit},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, OK, OK}, "PutCampaign·new", write, s.putCampaignNew},
		{w{UN, UN, UN, UN, PD, PD, OK, OK, PD, OK, OK}, "ListCampaigns", read, s.listCampaigns},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, OK, OK}, "UpdateItem", write, s.updateItem},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, OK, OK}, "PutZeroReport", write, s.putZeroReport},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, OK, OK}, "ImportLedger", write, s.importLedger},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, OK, OK}, "SetRanking", write, s.setRanking},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, OK, OK}, "CreateAdmin", write, s.createAdmin},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, PD, OK}, "CreateAdmin·global", write, s.createAdminGlobal},
		{w{UN, UN, UN, UN, PD, PD, OK, PD, PD, OK, OK}, "ListDevices·worker", read, s.listDevicesOf},
		{w{UN, UN, UN, UN, PD, PD, OK, OK, PD, OK, OK}, "ListDevices·all", read, s.listDevices},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, OK, OK}, "RevokeDevice", write, s.revokeDevice},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, PD, OK}, "SetDevicePolicy", write, s.setDevicePolicy},
		{w{UN, UN, UN, UN, PD, PD, OK, OK, PD, OK, OK}, "GetDevicePolicy", read, s.getDevicePolicy},
		{w{UN, UN, UN, UN, PD, PD, PD, PD, PD, PD, OK}, "SetItemPolicy", write, s.setItemPolicy},
		{w{UN, UN, UN, UN, PD, PD, OK, OK, PD, OK, OK}, "GetItemPolicy", read, s.getItemPolicy},
		{w{UN, UN, UN, UN, PD, PD, OK, PD, PD, OK, OK}, "GetProgress", audited, s.getProgress},
		{w{UN, UN, UN, UN, PD, PD, OK, PD, PD, OK, OK}, "GetProgress·campaign", audited, s.getProgressOfCampaign},
		{w{UN, UN, UN, UN, PD, PD, OK, PD, PD, OK, OK}, "ListReportHouseholds", audited, s.listReportHouseholds},
		{w{UN, UN, UN, UN, PD, PD, OK, PD, PD, OK, OK}, "Export·ledger", audited, s.exportLedger},
		{w{UN, UN, UN, UN, PD, PD, OK, PD, PD, OK, OK}, "Export·visits", audited, s.exportVisits},
		{w{UN, UN, UN, UN, PD, PD, OK, PD, PD, OK, OK}, "Export·progress", audited, s.exportProgress},
		{w{UN, UN, UN, UN, PD, PD, OK, PD, PD, OK, OK}, "Export·items", audited, s.exportItems},
		{w{UN, UN, UN, UN, PD, PD, OK, OK, PD, OK, OK}, "ListAuditLog", read, s.listAuditLog},
		{w{UN, UN, UN, UN, PD, PD, OK, PD, PD, OK, OK}, "GetHousehold", audited, s.getHousehold},
		{w{UN, UN, UN, UN, PD, PD, OK, PD, PD, OK, OK}, "ListItems", audited, s.listItems},
		{w{UN, UN, UN, UN, PD, PD, OK, PD, PD, OK, OK}, "ListReporting", audited, s.listReporting},
		// A worker uploads the files of their own visits; the grid's
		// workers and the subtree's admins read them.
		{w{UN, UN, UN, UN, PD, PD, PD, PD, OK, PD, PD}, "UploadAttachment", write, s.uploadAttachment},
		{w{UN, UN, UN, UN, PD, PD, OK, PD, OK, OK, OK}, "ListAttachments", auditedForAdmins, s.listAttachments},
		{w{UN, UN, UN, UN, PD, PD, OK, PD, OK, OK, OK}, "DownloadAttachment", auditedForAdmins, s.downloadAttachment},
		// A wrong password fails whoever asks; signing out is for a
		// session, and every admin here calls with its own token.
		{w{UN, UN, UN, UN, UN, UN, UN, UN, UN, UN, UN}, "SignIn·wrong", public, s.signInWrong},
		{w{UN, UN, UN, UN, PD, PD, IA, IA, PD, IA, IA}, "SignOut·token", read, s.signOut},
		{w{UN, UN, UN, UN, PD, PD, OK, OK, PD, OK, OK}, "GetSession", read, s.getSession},
	}

	// Each row names a method of the API; every procedure has a row. (Each
	// call is checked below to reach its row's procedure.)
	procs := authzProcedures(t)
	procOf := make([]string, len(rows))
	covered := map[string]bool{}
	for i, r := range rows {
		method, _, _ := strings.Cut(r.name, "·")
		for _, p := range procs {
			if strings.HasSuffix(p, "/"+method) {
				if procOf[i] != "" {
					t.Fatalf("row %s: method %s is in two services", r.name, method)
				}
				procOf[i] = p
			}
		}
		if procOf[i] == "" {
			t.Fatalf("row %s: no method %s in the API", r.name, method)
		}
		covered[procOf[i]] = true
	}
	for _, p := range procs {
		if !covered[p] {
			t.Errorf("procedure %s has no row in the authorisation matrix: add one", p)
		}
	}

	// Run the matrix column by column: the positive controls last.
	type result struct {
		got     connect.Code // 0: ok
		err     error
		msgs    []proto.Message
		changed []string // tables changed by a call that must change nothing
		leaked  []string // hidden ids in a successful answer
		notes   []string // other faults of the answer
	}
	results := make([][]result, len(rows))
	for i := range results {
		results[i] = make([]result, len(callers))
	}
	succeeded := make([]bool, len(rows)) // a write of the row succeeded before
	before := s.snapshot()
	for j, k := range callers {
		for i, r := range rows {
			k.procedure = ""
			msgs, err := r.call(k)
			after := s.snapshot()
			res := result{got: connect.CodeOf(err), err: err, msgs: msgs}
			if err == nil {
				res.got = 0
			}
			if k.procedure != procOf[i] {
				t.Fatalf("row %s called %q, not %s", r.name, k.procedure, procOf[i])
			}
			switch {
			case r.want[j] != OK || err != nil:
				// A call that must be refused changes nothing, the audit
				// log included, whatever the server answers; but a failed
				// enrolment counts against its address (the throttle).
				var allowed []string
				if r.kind == public {
					allowed = []string{"failures"}
				}
				res.changed = before.diff(after, allowed)
			case r.kind == write || r.kind == public:
				// The first success of a write shows that the snapshot
				// sees writes (later ones may repeat it).
				if !succeeded[i] && len(before.diff(after, nil)) == 0 {
					res.notes = append(res.notes, "a write that changed nothing: the request or the snapshot is wrong")
				}
				succeeded[i] = true
			default:
				var allowed []string
				if r.kind == tracked {
					allowed = []string{"credentials"}
				}
				isAdmin := k == s.leader || k == s.aStreet || k == s.sAdmin || k == s.root
				if r.kind == audited || r.kind == auditedForAdmins && isAdmin {
					allowed = []string{"audit_log"}
					if n := after["audit_log"].rows - before["audit_log"].rows; n != 1 {
						res.notes = append(res.notes, fmt.Sprintf("a report read served with %d audit entries, want 1", n))
					}
				}
				res.changed = before.diff(after, allowed)
			}
			if err == nil && r.kind != public {
				res.leaked = k.leaks(msgs)
			}
			// Only the holder of a revoked token learns that it is revoked.
			if r.kind != public && err != nil {
				if revoked := authzRevokedDetail(err); revoked != (k == s.revoked) {
					res.notes = append(res.notes, fmt.Sprintf("DeviceRevoked detail: %v, want %v", revoked, k == s.revoked))
				}
			}
			results[i][j] = res
			before = after
		}
	}
	// The leak check is not vacuous: where the other street's admin gets
	// an answer, the installation-wide admin's answer to the same request
	// shows ids hidden from them (categories and policies carry no ids; a
	// session, only its own admin's).
	for i, r := range rows {
		a, root := results[i][slices.Index(callers, s.aStreet)], results[i][slices.Index(callers, s.root)]
		if r.kind == public || a.got != 0 || root.got != 0 || r.name == "ListCategories" || r.name == "GetSession" ||
			r.name == "GetDevicePolicy" || r.name == "GetItemPolicy" {
			continue
		}
		if len(s.aStreet.leaks(root.msgs)) == 0 {
			results[i][slices.Index(callers, s.aStreet)].notes = append(a.notes, "the leak check is vacuous: root's answer shows nothing of this street")
		}
	}

	// Report: a table of the codes got, and every mismatch.
	var mismatches []string
	for i, r := range rows {
		for j, k := range callers {
			res := results[i][j]
			want := r.want[j].code()
			var what []string
			if res.got != want {
				w := fmt.Sprintf("got %s, want %s", authzLongName(res.got), authzLongName(want))
				if res.err != nil {
					w += fmt.Sprintf(" (%v)", res.err)
				}
				what = append(what, w)
			}
			if len(res.changed) > 0 {
				what = append(what, "changed "+strings.Join(res.changed, ", "))
			}
			if len(res.leaked) > 0 {
				what = append(what, "answer shows "+strings.Join(res.leaked, ", "))
			}
			what = append(what, res.notes...)
			if len(what) > 0 {
				mismatches = append(mismatches, fmt.Sprintf("%-22s × %-8s %s", r.name, k.name, strings.Join(what, "; ")))
			}
		}
	}
	var tb strings.Builder
	fmt.Fprintf(&tb, "%-22s", "")
	for _, k := range callers {
		fmt.Fprintf(&tb, " %-8s", k.name)
	}
	tb.WriteString("\n")
	for i, r := range rows {
		fmt.Fprintf(&tb, "%-22s", r.name)
		for j := range callers {
			res := results[i][j]
			cell := authzCodeName(res.got)
			if want := r.want[j].code(); res.got != want {
				cell += "≠" + authzCodeName(want)
			}
			if len(res.changed) > 0 {
				cell += "*"
			}
			if len(res.leaked) > 0 {
				cell += "L"
			}
			if len(res.notes) > 0 {
				cell += "!"
			}
			fmt.Fprintf(&tb, " %-8s", cell)
		}
		tb.WriteString("\n")
	}
	tb.WriteString("(cell: code got (NF NotFound, IA InvalidArgument); ≠want on a mismatch; * the call changed the state; L the answer shows ids hidden from the caller; ! see below)\n")
	t.Logf("%d rows (%d procedures) × %d callers: setup %s, matrix %s", len(rows), len(procs), len(callers),
		setup.Round(time.Millisecond), (time.Since(start) - setup).Round(time.Millisecond))
	if len(mismatches) > 0 {
		t.Errorf("authorisation matrix: %d mismatches\n%s\n%s", len(mismatches), tb.String(), strings.Join(mismatches, "\n"))
	} else {
		t.Logf("authorisation matrix\n%s", tb.String())
	}
}

type authzWant uint8

// authzRevokedDetail reports whether err carries a DeviceRevoked detail.
func authzRevokedDetail(err error) bool {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return false
	}
	for _, d := range ce.Details() {
		if m, err := d.Value(); err == nil {
			if _, ok := m.(*pb.DeviceRevoked); ok {
				return true
			}
		}
	}
	return false
}

func (w authzWant) code() connect.Code {
	return [...]connect.Code{0, connect.CodeUnauthenticated, connect.CodePermissionDenied, connect.CodeInvalidArgument}[w]
}

func authzCodeName(c connect.Code) string {
	switch c {
	case 0:
		return "OK"
	case connect.CodeUnauthenticated:
		return "UN"
	case connect.CodePermissionDenied:
		return "PD"
	case connect.CodeNotFound:
		return "NF"
	case connect.CodeInvalidArgument:
		return "IA"
	}
	return c.String()
}

func authzLongName(c connect.Code) string {
	if c == 0 {
		return "ok"
	}
	return c.String()
}

// authzProcedures lists every RPC of package doorbook.v1, from the file
// descriptors the generated code registers.
func authzProcedures(t *testing.T) []string {
	var out []string
	protoregistry.GlobalFiles.RangeFilesByPackage("doorbook.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			svc := fd.Services().Get(i)
			for j := range svc.Methods().Len() {
				out = append(out, "/"+string(svc.FullName())+"/"+string(svc.Methods().Get(j).Name()))
			}
		}
		return true
	})
	// The generated files are linked in: the registry must know them.
	for _, fd := range []protoreflect.FileDescriptor{pb.File_doorbook_v1_sync_proto, pb.File_doorbook_v1_enrollment_proto,
		pb.File_doorbook_v1_admin_proto, pb.File_doorbook_v1_report_proto, pb.File_doorbook_v1_session_proto} {
		if fd.Services().Len() == 0 {
			t.Fatalf("%s declares no service", fd.Path())
		}
	}
	if len(out) == 0 {
		t.Fatal("no procedures registered in package doorbook.v1")
	}
	slices.Sort(out)
	return out
}

// authzCaller is one column of the matrix: a token and what the caller's
// sync requests aim at.
type authzCaller struct {
	name  string
	token string // "" sends no Authorization header
	// worker is the visitor and author of pushed visits and amendments:
	// the caller's own worker for a worker, w1 (of grid G0) otherwise.
	worker string
	// grid, household, visit: what sync requests act on.
	grid, household, visit string
	// hidden are ids the caller must not see in any answer, with their
	// labels.
	hidden map[string]string

	sync    doorbookv1connect.SyncServiceClient
	admin   doorbookv1connect.AdminServiceClient
	report  doorbookv1connect.ReportServiceClient
	enroll  doorbookv1connect.EnrollmentServiceClient
	session doorbookv1connect.SessionServiceClient
	attach  doorbookv1connect.AttachmentServiceClient
	ledger  doorbookv1connect.LedgerServiceClient
	// procedure is the last procedure called.
	procedure string
}

func (k *authzCaller) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		k.procedure = req.Spec().Procedure
		return next(ctx, req)
	}
}

func (k *authzCaller) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		k.procedure = spec.Procedure
		return next(ctx, spec)
	}
}

func (k *authzCaller) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

func (k *authzCaller) connectClients(url string) {
	opts := []connect.ClientOption{connect.WithInterceptors(k)}
	if k.token != "" {
		opts = []connect.ClientOption{connect.WithInterceptors(k, bearer.Token(k.token))}
	}
	k.sync = doorbookv1connect.NewSyncServiceClient(http.DefaultClient, url, opts...)
	k.admin = doorbookv1connect.NewAdminServiceClient(http.DefaultClient, url, opts...)
	k.report = doorbookv1connect.NewReportServiceClient(http.DefaultClient, url, opts...)
	k.enroll = doorbookv1connect.NewEnrollmentServiceClient(http.DefaultClient, url, opts...)
	k.session = doorbookv1connect.NewSessionServiceClient(http.DefaultClient, url, opts...)
	k.attach = doorbookv1connect.NewAttachmentServiceClient(http.DefaultClient, url, opts...)
	k.ledger = doorbookv1connect.NewLedgerServiceClient(http.DefaultClient, url, opts...)
}

// leaks lists the hidden ids that msgs show.
func (k *authzCaller) leaks(msgs []proto.Message) []string {
	var text strings.Builder
	for _, m := range msgs {
		text.WriteString(prototext.Format(m))
	}
	var out []string
	for id, label := range k.hidden {
		if strings.Contains(text.String(), id) {
			out = append(out, label+" "+id)
		}
	}
	slices.Sort(out)
	return out
}

// authzSetup is a server with two streets of one district, their workers,
// devices, households, visits, campaigns and admins.
type authzSetup struct {
	t *testing.T
	e *env
	// db is a connection to the server's database (read-only on SQLite).
	db *sql.Conn
	// versionQuery reads a number that changes when the server commits;
	// version is its value at the last snapshot, last.
	versionQuery string
	version      int64
	last         authzSnapshot
	// tablesQuery lists the database's tables.
	tablesQuery string

	district, street, community, g0, g1 string // this street, S
	street2, community2, h0grid         string // the other street, S2, and its grid H0

	w1, w2, wV, w3 string            // workers of G0, G1, G0 (the victim of admin calls), H0
	devV           string            // wV's device, the victim of RevokeDevice
	hh0, hh1, hhM  string            // households of G0 (w1's), G1 (w2's), G0 (to be moved)
	hhX            string            // a household of H0
	v0, v1, vX     string            // visits with a tracked finding to hh0, hh1, hhX
	files          map[string]string // the SHA-256 of a photo of v0, and of v1, by visit
	camp, camp2    string            // campaigns of S and S2
	category       string

	spentCode  string
	freshCodes []string

	anon, junk, badSecret, revoked, wGrid, wStreet, leader, aStreet, wSelf, sAdmin, root *authzCaller
}

func newAuthzSetup(t *testing.T) *authzSetup {
	ctx := context.Background()
	e := newBareEnv(t, 2)
	s := &authzSetup{t: t, e: e, g0: e.Grids[0], g1: e.Grids[1], category: "authz_cat"}
	nodes, err := e.Admin.ListOrgNodes(ctx, &pb.ListOrgNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes.GetNodes() {
		switch n.GetName() {
		case "District":
			s.district = n.GetId()
		case "Street":
			s.street = n.GetId()
		case "Community":
			s.community = n.GetId()
		}
	}
	s.street2 = e.node(s.district, pb.OrgLevel_ORG_LEVEL_STREET, "Other street")
	s.community2 = e.node(s.street2, pb.OrgLevel_ORG_LEVEL_COMMUNITY, "Other community")
	s.h0grid = e.node(s.community2, pb.OrgLevel_ORG_LEVEL_GRID, "Grid H0")

	s.w1 = e.roleWorker("w1", pb.WorkerRole_WORKER_ROLE_GRID_WORKER, s.g0)
	s.w2 = e.roleWorker("w2", pb.WorkerRole_WORKER_ROLE_GRID_WORKER, s.g1)
	s.wV = e.roleWorker("victim", pb.WorkerRole_WORKER_ROLE_GRID_WORKER, s.g0)
	s.w3 = e.roleWorker("w3", pb.WorkerRole_WORKER_ROLE_GRID_WORKER, s.h0grid)
	tokW1, tokW2, tokW3 := e.deviceToken(s.w1), e.deviceToken(s.w2), e.deviceToken(s.w3)
	s.devV, _, _ = strings.Cut(e.deviceToken(s.wV), ".")
	tokRevoked := e.deviceToken(s.w1)

	// Households and visits with a tracked finding, pushed by their workers.
	push := func(token string, changes ...*pb.Change) {
		t.Helper()
		c := doorbookv1connect.NewSyncServiceClient(http.DefaultClient, e.URL, connect.WithInterceptors(bearer.Token(token)))
		if _, err := c.Push(ctx, &pb.PushRequest{Changes: changes}); err != nil {
			t.Fatal(err)
		}
	}
	s.hh0, s.hhM, s.hh1, s.hhX = newID(), newID(), newID(), newID()
	push(tokW1, householdChange(s.hh0, s.g0, "h0"), householdChange(s.hhM, s.g0, "hM"))
	push(tokW2, householdChange(s.hh1, s.g1, "h1"))
	push(tokW3, householdChange(s.hhX, s.h0grid, "hX"))
	hazard := func(household, visitor string) (*pb.Change, string) {
		c := visitChange(household, visitor)
		c.GetVisit().Findings = []*pb.Finding{{Kind: pb.FindingKind_FINDING_KIND_HAZARD, Note: "blocked stairwell"}}
		return c, c.GetVisit().GetId()
	}
	var c0, c1, cX *pb.Change
	c0, s.v0 = hazard(s.hh0, s.w1)
	c1, s.v1 = hazard(s.hh1, s.w2)
	cX, s.vX = hazard(s.hhX, s.w3)
	push(tokW1, c0)
	push(tokW2, c1)
	push(tokW3, cX)
	// A photo of v0 and one of v1, uploaded whole by their workers.
	s.files = map[string]string{}
	for _, f := range []struct{ token, visit string }{{tokW1, s.v0}, {tokW2, s.v1}} {
		photo := []byte("a photo of the blocked stairwell of visit " + f.visit)
		sum := sha256.Sum256(photo)
		s.files[f.visit] = hex.EncodeToString(sum[:])
		files := doorbookv1connect.NewAttachmentServiceClient(http.DefaultClient, e.URL, connect.WithInterceptors(bearer.Token(f.token)))
		if res, err := files.UploadAttachment(ctx, &pb.UploadAttachmentRequest{Data: photo, Attachment: &pb.Attachment{
			VisitId: f.visit, Sha256: s.files[f.visit], Size: uint64(len(photo)), Name: "stairwell.jpg", MediaType: "image/jpeg"}}); err != nil || !res.GetComplete() {
			t.Fatalf("upload a photo of %s: %v, %v", f.visit, res, err)
		}
	}

	// Reference data.
	if _, err := e.Admin.PutCategory(ctx, &pb.PutCategoryRequest{Code: s.category, NameZh: proto.String("测试"), NameEn: proto.String("test")}); err != nil {
		t.Fatal(err)
	}
	campaign := func(node, name string) string {
		t.Helper()
		now := e.now.Now()
		res, err := e.Admin.PutCampaign(ctx, &pb.PutCampaignRequest{NodeId: proto.String(node), Name: proto.String(name),
			StartsAt: timestamppb.New(now.Add(-oneDay)), EndsAt: timestamppb.New(now.Add(30 * oneDay))})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetCampaign().GetId()
	}
	s.camp, s.camp2 = campaign(s.street, "this street's"), campaign(s.street2, "the other street's")

	// Admins.
	admin := func(name, node string, role pb.AdminRole) (id, token string) {
		t.Helper()
		res, err := e.Admin.CreateAdmin(ctx, &pb.CreateAdminRequest{Name: name, NodeId: node, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetAdminId(), res.GetToken()
	}
	leaderID, tokLeader := admin("leader of S", s.street, pb.AdminRole_ADMIN_ROLE_LEADER)
	sAdminID, tokSAdmin := admin("admin of S", s.street, pb.AdminRole_ADMIN_ROLE_ADMIN)
	aStreetID, tokAStreet := admin("admin of S2", s.street2, pb.AdminRole_ADMIN_ROLE_ADMIN)

	// A revoked device of w1, and enrolment codes: one spent, fresh ones.
	revokedID, _, _ := strings.Cut(tokRevoked, ".")
	if _, err := e.Admin.RevokeDevice(ctx, &pb.RevokeDeviceRequest{DeviceId: revokedID, Reason: "lost"}); err != nil {
		t.Fatal(err)
	}
	code := func() string {
		t.Helper()
		res, err := e.Admin.CreateEnrollmentCode(ctx, &pb.CreateEnrollmentCodeRequest{WorkerId: s.wV})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetCode()
	}
	s.spentCode = code()
	if _, err := doorbookv1connect.NewEnrollmentServiceClient(http.DefaultClient, e.URL).Enroll(ctx, &pb.EnrollRequest{Code: s.spentCode, DeviceName: "spent"}); err != nil {
		t.Fatal(err)
	}
	for range 11 {
		s.freshCodes = append(s.freshCodes, code())
	}

	rootID, _, _ := strings.Cut(e.adminToken, ".")
	labels := map[string]string{
		s.street: "S", s.community: "C", s.g0: "G0", s.g1: "G1", s.w1: "w1", s.w2: "w2", s.wV: "wV", s.devV: "devV",
		s.hh0: "h0", s.hh1: "h1", s.hhM: "hM", s.v0: "v0", s.v1: "v1", s.camp: "camp", leaderID: "leader", sAdminID: "sAdmin",
		s.street2: "S2", s.community2: "C2", s.h0grid: "H0", s.w3: "w3", s.hhX: "hX", s.vX: "vX", s.camp2: "camp2", aStreetID: "aStreet",
	}
	hide := func(ids ...string) map[string]string {
		m := map[string]string{}
		for _, id := range ids {
			m[id] = labels[id]
		}
		return m
	}
	thisStreet := hide(s.street, s.community, s.g0, s.g1, s.w1, s.w2, s.wV, s.devV, s.hh0, s.hh1, s.hhM, s.v0, s.v1, s.camp, leaderID, sAdminID)
	otherStreet := hide(s.street2, s.community2, s.h0grid, s.w3, s.hhX, s.vX, s.camp2, aStreetID)
	notW1 := hide(s.g1, s.h0grid, s.w2, s.w3, s.hh1, s.hhX, s.v1, s.vX, s.camp2)
	// Sync requests of non-workers aim at w1's grid: valid for w1 (wSelf).
	mine := func(k *authzCaller) *authzCaller {
		k.worker, k.grid, k.household, k.visit = s.w1, s.g0, s.hh0, s.v0
		return k
	}
	s.anon = mine(&authzCaller{name: "anon"})
	s.junk = mine(&authzCaller{name: "junk", token: "not-a-token"})
	s.badSecret = mine(&authzCaller{name: "badSecr", token: rootID + ".AAAAwrongsecretAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
	s.revoked = mine(&authzCaller{name: "revoked", token: tokRevoked})
	s.wGrid = &authzCaller{name: "wGrid", token: tokW1, worker: s.w1, grid: s.g1, household: s.hh1, visit: s.v1, hidden: notW1}
	s.wStreet = &authzCaller{name: "wStreet", token: tokW3, worker: s.w3, grid: s.g0, household: s.hh0, visit: s.v0,
		hidden: hide(s.street, s.community, s.g0, s.g1, s.w1, s.w2, s.wV, s.hh0, s.hh1, s.hhM, s.v0, s.v1, s.camp)}
	s.leader = mine(&authzCaller{name: "leader", token: tokLeader, hidden: otherStreet})
	s.aStreet = mine(&authzCaller{name: "aStreet", token: tokAStreet, hidden: thisStreet})
	s.wSelf = &authzCaller{name: "wSelf", token: tokW1, worker: s.w1, grid: s.g0, household: s.hh0, visit: s.v0, hidden: notW1}
	s.sAdmin = mine(&authzCaller{name: "sAdmin", token: tokSAdmin, hidden: otherStreet})
	s.root = mine(&authzCaller{name: "root", token: e.adminToken})
	for _, k := range []*authzCaller{s.anon, s.junk, s.badSecret, s.revoked, s.wGrid, s.wStreet, s.leader, s.aStreet, s.wSelf, s.sAdmin, s.root} {
		k.connectClients(e.URL)
	}

	if e.pgDSN != "" {
		db, err := sql.Open("pgx", e.pgDSN)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if s.db, err = db.Conn(ctx); err != nil {
			t.Fatal(err)
		}
		// Every commit writes to the write-ahead log; a read-only
		// transaction does not.
		s.versionQuery = `SELECT pg_current_wal_insert_lsn() - '0/0'`
		s.tablesQuery = `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename`
	} else {
		db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: e.dbPath}).EscapedPath()+"?mode=ro&_pragma=busy_timeout(10000)&_pragma=query_only(1)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if s.db, err = db.Conn(ctx); err != nil {
			t.Fatal(err)
		}
		s.versionQuery = `PRAGMA data_version`
		s.tablesQuery = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	}
	t.Cleanup(func() { s.db.Close() })
	// The snapshot reads the tables again only when the version says
	// that the server committed something: check that it does.
	v := s.dataVersion()
	if _, err := e.Admin.CreateEnrollmentCode(ctx, &pb.CreateEnrollmentCodeRequest{WorkerId: s.wV}); err != nil {
		t.Fatal(err)
	}
	if s.dataVersion() == v {
		t.Fatalf("%s did not change over a write of the server", s.versionQuery)
	}
	return s
}

func (s *authzSetup) dataVersion() int64 {
	s.t.Helper()
	var v int64
	if err := s.db.QueryRowContext(context.Background(), s.versionQuery).Scan(&v); err != nil {
		s.t.Fatal(err)
	}
	return v
}

// authzSnapshot is the server's database: per table, its row count and a
// hash of its rows.
type authzSnapshot map[string]authzTable

type authzTable struct {
	rows int
	sum  [32]byte
	max  int64 // MAX(seq) of the feed
}

func (s *authzSetup) snapshot() authzSnapshot {
	s.t.Helper()
	ctx := context.Background()
	v := s.dataVersion()
	if s.last != nil && v == s.version {
		return s.last // nothing committed since
	}
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		s.t.Fatal(err)
	}
	defer tx.Rollback()
	var tables []string
	rows, err := tx.QueryContext(ctx, s.tablesQuery)
	if err != nil {
		s.t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			s.t.Fatal(err)
		}
		tables = append(tables, n)
	}
	if err := rows.Close(); err != nil {
		s.t.Fatal(err)
	}
	snap := authzSnapshot{}
	for _, name := range tables {
		rows, err := tx.QueryContext(ctx, `SELECT * FROM "`+name+`"`)
		if err != nil {
			s.t.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			s.t.Fatal(err)
		}
		var lines []string
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		// When a credential was last seen is written by any authenticated
		// call, refused or not: it says the caller called, not what it did.
		seen := slices.Index(cols, "last_seen_at")
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				s.t.Fatal(err)
			}
			if name == "credentials" && seen >= 0 {
				vals[seen] = nil
			}
			// %#v, not %q: %q prints an integer as a character, the same
			// for every one past Unicode (every clock and cursor).
			lines = append(lines, fmt.Sprintf("%#v", vals))
		}
		if err := rows.Close(); err != nil {
			s.t.Fatal(err)
		}
		slices.Sort(lines)
		tab := authzTable{rows: len(lines), sum: sha256.Sum256([]byte(strings.Join(lines, "\n")))}
		if name == "feed" {
			var m sql.NullInt64
			if err := tx.QueryRowContext(ctx, `SELECT MAX(seq) FROM feed`).Scan(&m); err != nil {
				s.t.Fatal(err)
			}
			tab.max = m.Int64
		}
		snap[name] = tab
	}
	if _, ok := snap["feed"]; !ok || len(snap) < 10 {
		s.t.Fatalf("snapshot: tables %d, feed missing: not the server's database?", len(snap))
	}
	s.last, s.version = snap, v
	return snap
}

// diff names the tables that differ between two snapshots, but those in
// allowed.
func (a authzSnapshot) diff(b authzSnapshot, allowed []string) []string {
	var out []string
	for name, ta := range a {
		tb := b[name]
		if ta == tb || slices.Contains(allowed, name) {
			continue
		}
		d := fmt.Sprintf("%s (rows %d→%d", name, ta.rows, tb.rows)
		if ta.max != tb.max {
			d += fmt.Sprintf(", max seq %d→%d", ta.max, tb.max)
		}
		out = append(out, d+")")
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			out = append(out, name+" (new table)")
		}
	}
	slices.Sort(out)
	return out
}

// The calls of the matrix. Each makes one call, returns the answer's
// messages and the error.

func authzOne[M proto.Message](m M, err error) ([]proto.Message, error) {
	if err != nil {
		return nil, err
	}
	return []proto.Message{m}, nil
}

func (s *authzSetup) push(k *authzCaller, c *pb.Change) ([]proto.Message, error) {
	return authzOne(k.sync.Push(context.Background(), &pb.PushRequest{Changes: []*pb.Change{c}}))
}

func (s *authzSetup) pushRegister(k *authzCaller) ([]proto.Message, error) {
	return s.push(k, householdChange(newID(), k.grid, "registered by "+k.name))
}

func (s *authzSetup) pushEdit(k *authzCaller) ([]proto.Message, error) {
	return s.push(k, householdChange(k.household, "", "edited by "+k.name))
}

func (s *authzSetup) pushPerson(k *authzCaller) ([]proto.Message, error) {
	return s.push(k, &pb.Change{Id: newID(), Payload: &pb.Change_Person{Person: &pb.Person{
		Id: newID(), HouseholdId: k.household, Name: str("added by " + k.name)}}})
}

func (s *authzSetup) pushTag(k *authzCaller) ([]proto.Message, error) {
	return s.push(k, &pb.Change{Id: newID(), Payload: &pb.Change_Tag{Tag: &pb.TagElement{
		AddId: newID(), HouseholdId: k.household, CategoryCode: s.category, Clock: nowClock()}}})
}

func (s *authzSetup) pushVisit(k *authzCaller) ([]proto.Message, error) {
	return s.push(k, visitChange(k.household, k.worker))
}

func (s *authzSetup) pushAmend(k *authzCaller) ([]proto.Message, error) {
	return s.push(k, &pb.Change{Id: newID(), Payload: &pb.Change_VisitAmendment{VisitAmendment: &pb.VisitAmendment{
		Id: newID(), VisitId: k.visit, AuthorId: k.worker, Kind: pb.AmendmentKind_AMENDMENT_KIND_ITEM_RESOLVE,
		Reason: "resolved by " + k.name, Finding: 0, Clock: nowClock()}}})
}

func (s *authzSetup) pull(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.sync.Pull(context.Background(), &pb.PullRequest{}))
}

func (s *authzSetup) bootstrap(k *authzCaller) ([]proto.Message, error) {
	return authzStream(k.sync.Bootstrap(context.Background(), &pb.BootstrapRequest{GridIds: []string{k.grid}}))
}

// authzStream reads a server stream whole, its messages for the leak check.
func authzStream[M any, PM interface {
	*M
	proto.Message
}](stream *connect.ServerStreamForClient[M], err error) ([]proto.Message, error) {
	if err != nil {
		return nil, err
	}
	defer stream.Close()
	var out []proto.Message
	for stream.Receive() {
		out = append(out, PM(stream.Msg()))
	}
	return out, stream.Err()
}

func (s *authzSetup) enrollSpent(k *authzCaller) ([]proto.Message, error) {
	// Failed enrolments are throttled per address: let the window pass.
	defer s.e.now.Add(server.DefaultEnrollWindow)
	return authzOne(k.enroll.Enroll(context.Background(), &pb.EnrollRequest{Code: s.spentCode, DeviceName: k.name}))
}

func (s *authzSetup) enrollFresh(k *authzCaller) ([]proto.Message, error) {
	code := s.freshCodes[0]
	s.freshCodes = s.freshCodes[1:]
	return authzOne(k.enroll.Enroll(context.Background(), &pb.EnrollRequest{Code: code, DeviceName: k.name}))
}

func (s *authzSetup) createOrgNode(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.CreateOrgNode(context.Background(), &pb.CreateOrgNodeRequest{
		ParentId: s.community, Level: pb.OrgLevel_ORG_LEVEL_GRID, Name: "grid by " + k.name}))
}

func (s *authzSetup) listOrgNodes(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.ListOrgNodes(context.Background(), &pb.ListOrgNodesRequest{}))
}

func (s *authzSetup) createWorker(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.CreateWorker(context.Background(), &pb.CreateWorkerRequest{
		Name: "worker by " + k.name, Role: pb.WorkerRole_WORKER_ROLE_GRID_WORKER, GridIds: []string{s.g0}}))
}

func (s *authzSetup) listWorkers(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.ListWorkers(context.Background(), &pb.ListWorkersRequest{}))
}

func (s *authzSetup) setWorkerGrids(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.SetWorkerGrids(context.Background(), &pb.SetWorkerGridsRequest{WorkerId: s.wV, GridIds: []string{s.g0, s.g1}}))
}

func (s *authzSetup) createCode(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.CreateEnrollmentCode(context.Background(), &pb.CreateEnrollmentCodeRequest{WorkerId: s.wV}))
}

func (s *authzSetup) moveHousehold(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.MoveHousehold(context.Background(), &pb.MoveHouseholdRequest{HouseholdId: s.hhM, GridId: s.g1}))
}

func (s *authzSetup) erase(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.ErasePersonalData(context.Background(), &pb.ErasePersonalDataRequest{
		Target: &pb.ErasePersonalDataRequest_HouseholdId{HouseholdId: s.hh1}, Reason: "request 2026-17"}))
}

// moveHouseholdIn moves the other street's household into this street.
func (s *authzSetup) moveHouseholdIn(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.MoveHousehold(context.Background(), &pb.MoveHouseholdRequest{HouseholdId: s.hhX, GridId: s.g0}))
}

func (s *authzSetup) putCategory(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.PutCategory(context.Background(), &pb.PutCategoryRequest{Code: s.category, NameEn: proto.String("renamed by " + k.name)}))
}

func (s *authzSetup) listCategories(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.ListCategories(context.Background(), &pb.ListCategoriesRequest{}))
}

func (s *authzSetup) loadDefaults(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.LoadDefaultCategories(context.Background(), &pb.LoadDefaultCategoriesRequest{}))
}

func (s *authzSetup) putCampaignEdit(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.PutCampaign(context.Background(), &pb.PutCampaignRequest{Id: s.camp, Name: proto.String("renamed by " + k.name)}))
}

func (s *authzSetup) putCampaignNew(k *authzCaller) ([]proto.Message, error) {
	now := s.e.now.Now()
	return authzOne(k.admin.PutCampaign(context.Background(), &pb.PutCampaignRequest{NodeId: proto.String(s.street), Name: proto.String("campaign by " + k.name),
		StartsAt: timestamppb.New(now), EndsAt: timestamppb.New(now.Add(oneDay))}))
}

func (s *authzSetup) listCampaigns(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.ListCampaigns(context.Background(), &pb.ListCampaignsRequest{}))
}

func (s *authzSetup) updateItem(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.UpdateItem(context.Background(), &pb.UpdateItemRequest{VisitId: s.v0, Finding: 0,
		Kind: pb.AmendmentKind_AMENDMENT_KIND_ITEM_ASSIGN, Unit: "police station", Deadline: timestamppb.New(s.e.now.Now().Add(7 * oneDay)),
		Note: "assigned by " + k.name}))
}

func (s *authzSetup) createAdmin(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.CreateAdmin(context.Background(), &pb.CreateAdminRequest{Name: "admin by " + k.name, NodeId: s.street, Role: pb.AdminRole_ADMIN_ROLE_ADMIN}))
}

// createAdminGlobal asks for an installation-wide admin.
func (s *authzSetup) createAdminGlobal(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.CreateAdmin(context.Background(), &pb.CreateAdminRequest{Name: "global admin by " + k.name, Role: pb.AdminRole_ADMIN_ROLE_ADMIN}))
}

func (s *authzSetup) listDevicesOf(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.ListDevices(context.Background(), &pb.ListDevicesRequest{WorkerId: s.wV}))
}

func (s *authzSetup) listDevices(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.ListDevices(context.Background(), &pb.ListDevicesRequest{}))
}

func (s *authzSetup) revokeDevice(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.RevokeDevice(context.Background(), &pb.RevokeDeviceRequest{DeviceId: s.devV, Reason: "revoked by " + k.name}))
}

func (s *authzSetup) getProgress(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.report.GetProgress(context.Background(), &pb.GetProgressRequest{NodeId: s.street, CampaignId: s.camp}))
}

// getProgressOfCampaign asks for this street's campaign over the caller's
// own subtree.
func (s *authzSetup) getProgressOfCampaign(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.report.GetProgress(context.Background(), &pb.GetProgressRequest{CampaignId: s.camp}))
}

func (s *authzSetup) listReportHouseholds(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.report.ListReportHouseholds(context.Background(), &pb.ListReportHouseholdsRequest{
		NodeId: s.street, CampaignId: s.camp, Metric: pb.ReportMetric_REPORT_METRIC_NOT_VISITED}))
}

func (s *authzSetup) export(k *authzCaller, req *pb.ExportRequest) ([]proto.Message, error) {
	first, data, err := exportFile(context.Background(), k.report, req)
	if err != nil {
		return nil, err
	}
	// The file's bytes, as a message the leak check reads.
	return []proto.Message{first, &pb.ExportResponse{Data: data}}, nil
}

func (s *authzSetup) exportLedger(k *authzCaller) ([]proto.Message, error) {
	return s.export(k, &pb.ExportRequest{NodeId: s.street, CampaignId: s.camp, Kind: pb.ExportKind_EXPORT_KIND_LEDGER, Format: pb.ExportFormat_EXPORT_FORMAT_CSV})
}

func (s *authzSetup) exportVisits(k *authzCaller) ([]proto.Message, error) {
	return s.export(k, &pb.ExportRequest{NodeId: s.street, Kind: pb.ExportKind_EXPORT_KIND_VISITS, Format: pb.ExportFormat_EXPORT_FORMAT_CSV})
}

func (s *authzSetup) exportItems(k *authzCaller) ([]proto.Message, error) {
	return s.export(k, &pb.ExportRequest{NodeId: s.street, Kind: pb.ExportKind_EXPORT_KIND_ITEMS, Format: pb.ExportFormat_EXPORT_FORMAT_CSV})
}

// exportProgress asks for this street's campaign over the caller's own
// subtree.
func (s *authzSetup) exportProgress(k *authzCaller) ([]proto.Message, error) {
	return s.export(k, &pb.ExportRequest{CampaignId: s.camp, Kind: pb.ExportKind_EXPORT_KIND_PROGRESS, Format: pb.ExportFormat_EXPORT_FORMAT_CSV})
}

func (s *authzSetup) getHousehold(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.report.GetHousehold(context.Background(), &pb.GetHouseholdRequest{HouseholdId: s.hh0}))
}

func (s *authzSetup) listItems(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.report.ListItems(context.Background(), &pb.ListItemsRequest{NodeId: s.street}))
}

// uploadAttachment uploads a small file whole for k's visit (which makes
// it the visit's).
func (s *authzSetup) uploadAttachment(k *authzCaller) ([]proto.Message, error) {
	data := []byte("a photo by " + k.name)
	sum := sha256.Sum256(data)
	return authzOne(k.attach.UploadAttachment(context.Background(), &pb.UploadAttachmentRequest{Data: data, Attachment: &pb.Attachment{
		VisitId: k.visit, Sha256: hex.EncodeToString(sum[:]), Size: uint64(len(data)), Name: "by " + k.name + ".jpg", MediaType: "image/jpeg"}}))
}

func (s *authzSetup) listAttachments(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.attach.ListAttachments(context.Background(), &pb.ListAttachmentsRequest{VisitIds: []string{k.visit}}))
}

func (s *authzSetup) downloadAttachment(k *authzCaller) ([]proto.Message, error) {
	return authzStream(k.attach.DownloadAttachment(context.Background(), &pb.DownloadAttachmentRequest{Sha256: s.files[k.visit]}))
}

func (s *authzSetup) putZeroReport(k *authzCaller) ([]proto.Message, error) {
	now := s.e.now.Now()
	return authzOne(k.admin.PutZeroReport(context.Background(), &pb.PutZeroReportRequest{NodeId: s.g0,
		From: timestamppb.New(now.Add(-7 * oneDay)), Until: timestamppb.New(now), Note: "nothing found by " + k.name}))
}

func (s *authzSetup) setRanking(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.SetRanking(context.Background(), &pb.SetRankingRequest{CampaignId: s.camp, Ranking: &pb.Ranking{
		Weights: []*pb.RankingWeight{{Metric: "coverage", Weight: uint32(len(k.name))}}}}))
}

func (s *authzSetup) setItemPolicy(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.SetItemPolicy(context.Background(), &pb.SetItemPolicyRequest{Policy: &pb.ItemPolicy{EscalationDays: uint32(len(k.name))}}))
}

func (s *authzSetup) getItemPolicy(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.GetItemPolicy(context.Background(), &pb.GetItemPolicyRequest{}))
}

func (s *authzSetup) importLedger(k *authzCaller) ([]proto.Message, error) {
	file := "网格,户主姓名,地址\nGrid A," + k.name + ",authz road\n"
	return authzOne(k.ledger.ImportLedger(context.Background(), &pb.ImportLedgerRequest{NodeId: s.street, FileName: "ledger.csv", File: []byte(file)}))
}

func (s *authzSetup) listReporting(k *authzCaller) ([]proto.Message, error) {
	now := s.e.now.Now()
	return authzOne(k.report.ListReporting(context.Background(), &pb.ListReportingRequest{NodeId: s.street,
		From: timestamppb.New(now.Add(-7 * oneDay)), Until: timestamppb.New(now.Add(oneDay))}))
}

func (s *authzSetup) signInWrong(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.session.SignIn(context.Background(), &pb.SignInRequest{Name: "admin " + k.name, Password: "not the password of " + k.name}))
}

func (s *authzSetup) signOut(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.session.SignOut(context.Background(), &pb.SignOutRequest{}))
}

func (s *authzSetup) setDevicePolicy(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.SetDevicePolicy(context.Background(), &pb.SetDevicePolicyRequest{Policy: &pb.DevicePolicy{LockAfterDays: 30, WipeAfterDays: 90}}))
}

func (s *authzSetup) getDevicePolicy(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.admin.GetDevicePolicy(context.Background(), &pb.GetDevicePolicyRequest{}))
}

func (s *authzSetup) getSession(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.session.GetSession(context.Background(), &pb.GetSessionRequest{}))
}

func (s *authzSetup) listAuditLog(k *authzCaller) ([]proto.Message, error) {
	return authzOne(k.report.ListAuditLog(context.Background(), &pb.ListAuditLogRequest{}))
}
