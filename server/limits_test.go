package server_test

import (
	"context"
	"errors"
	"maps"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/server"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/sqlite"
	se "github.com/doorbook/doorbook/syncengine"
)

// limitEnv is a real server over a SQLite file, served on a loopback
// httptest server, with an org tree, an admin and one enrolled worker's
// device; the worker's grid holds one household.
type limitEnv struct {
	path      string
	url       string
	admin     doorbookv1connect.AdminServiceClient
	reports   doorbookv1connect.ReportServiceClient
	sync      doorbookv1connect.SyncServiceClient
	anonSync  doorbookv1connect.SyncServiceClient
	grid      string
	worker    string
	household string
	seq       uint16
}

func newLimitEnv(t *testing.T) *limitEnv {
	t.Helper()
	ctx := context.Background()
	e := &limitEnv{path: filepath.Join(t.TempDir(), "server.db")}
	st, err := openService(ctx, e.path)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(server.New(st).Handler())
	t.Cleanup(func() {
		hs.Close()
		st.Close()
	})
	e.url = hs.URL
	client := hs.Client()
	_, adminToken, err := st.CreateAdmin(ctx, "root", "")
	if err != nil {
		t.Fatal(err)
	}
	e.admin = doorbookv1connect.NewAdminServiceClient(client, e.url, connect.WithInterceptors(bearer.Token(adminToken)))
	e.reports = doorbookv1connect.NewReportServiceClient(client, e.url, connect.WithInterceptors(bearer.Token(adminToken)))
	node := func(parent string, level pb.OrgLevel, name string) string {
		res, err := e.admin.CreateOrgNode(ctx, &pb.CreateOrgNodeRequest{ParentId: parent, Level: level, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetNode().GetId()
	}
	district := node("", pb.OrgLevel_ORG_LEVEL_DISTRICT, "District")
	street := node(district, pb.OrgLevel_ORG_LEVEL_STREET, "Street")
	community := node(street, pb.OrgLevel_ORG_LEVEL_COMMUNITY, "Community")
	e.grid = node(community, pb.OrgLevel_ORG_LEVEL_GRID, "Grid A")
	w, err := e.admin.CreateWorker(ctx, &pb.CreateWorkerRequest{Name: "worker", Role: pb.WorkerRole_WORKER_ROLE_GRID_WORKER, GridIds: []string{e.grid}})
	if err != nil {
		t.Fatal(err)
	}
	e.worker = w.GetWorker().GetId()
	code, err := e.admin.CreateEnrollmentCode(ctx, &pb.CreateEnrollmentCodeRequest{WorkerId: e.worker})
	if err != nil {
		t.Fatal(err)
	}
	enrolled, err := doorbookv1connect.NewEnrollmentServiceClient(client, e.url).Enroll(ctx, &pb.EnrollRequest{Code: code.GetCode(), DeviceName: "phone"})
	if err != nil {
		t.Fatal(err)
	}
	e.sync = doorbookv1connect.NewSyncServiceClient(client, e.url, connect.WithInterceptors(bearer.Token(enrolled.GetToken())))
	e.anonSync = doorbookv1connect.NewSyncServiceClient(client, e.url)
	e.household = uuid.NewString()
	if _, err := e.sync.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{e.newHousehold(e.household)}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// clock is a fresh clock of the device's, a little after the last.
func (e *limitEnv) clock() *pb.Clock {
	e.seq++
	return &pb.Clock{Hlc: se.PackHLC(time.Now().UnixMilli(), e.seq), Node: 7}
}

func (e *limitEnv) str(v string) *pb.StringField { return &pb.StringField{Value: v, Clock: e.clock()} }

// newHousehold is a valid change registering household id in the grid.
func (e *limitEnv) newHousehold(id string) *pb.Change {
	return &pb.Change{Id: uuid.NewString(), Payload: &pb.Change_Household{Household: &pb.Household{
		Id: id, GridId: e.str(e.grid), HeadName: e.str("张三"),
	}}}
}

// householdEdit is a change of the existing household, edited by edit.
func (e *limitEnv) householdEdit(edit func(*pb.Household)) *pb.Change {
	h := &pb.Household{Id: e.household, Address: e.str("1 Main St")}
	edit(h)
	return &pb.Change{Id: uuid.NewString(), Payload: &pb.Change_Household{Household: h}}
}

// newVisit is a valid visit of the existing household, edited by edit.
func (e *limitEnv) newVisit(edit func(*pb.Visit)) *pb.Change {
	v := &pb.Visit{
		Id: uuid.NewString(), HouseholdIds: []string{e.household}, VisitorId: e.worker,
		VisitedAt: timestamppb.Now(), Form: pb.VisitForm_VISIT_FORM_IN_PERSON, Clock: e.clock(),
	}
	edit(v)
	return &pb.Change{Id: uuid.NewString(), Payload: &pb.Change_Visit{Visit: v}}
}

// rowCounts counts the rows of every table of the server's file.
func (e *limitEnv) rowCounts(t *testing.T) map[string]int {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitex.Open(ctx, e.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.R.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, table := range tables {
		var n int
		if err := db.R.QueryRowContext(ctx, `SELECT count(*) FROM "`+table+`"`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		counts[table] = n
	}
	return counts
}

// limitStreamErr drains a server stream and returns its error.
func limitStreamErr[T any](stream *connect.ServerStreamForClient[T], err error) error {
	if err != nil {
		return err
	}
	for stream.Receive() {
	}
	return errors.Join(stream.Err(), stream.Close())
}

// TestLimitsRefuseWholeRequests: requests over a limit or breaking a rule
// declared in the protos are refused before any handler runs, with the
// code of the API's conventions (a size limit is ResourceExhausted, any
// other violation InvalidArgument), an error naming the field and the rule,
// a RejectedChange detail naming the bad change of a push, and nothing
// applied: the valid change pushed with the bad one is not on the server.
func TestLimitsRefuseWholeRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newLimitEnv(t)
	tooMany := make([]*pb.Change, se.MaxChangesPerPush+1)
	for i := range tooMany {
		tooMany[i] = e.newHousehold(uuid.NewString())
	}

	cases := []struct {
		name string
		// bad is the refused change of a push (nil for other calls).
		bad  *pb.Change
		call func(good, bad *pb.Change) error
		code connect.Code
		// want are substrings of the error message: the field and the limit.
		// A want[0] of "changes[1]..." names the bad change of a push,
		// which a RejectedChange detail must name too.
		want []string
	}{
		{
			name: "message over the max message size",
			bad:  e.householdEdit(func(h *pb.Household) { h.Notes = e.str(strings.Repeat("x", server.DefaultMaxMessageBytes)) }),
			code: connect.CodeResourceExhausted,
			want: []string{"a request message is at most", "4194304"},
		},
		{
			name: "push over the batch length",
			call: func(*pb.Change, *pb.Change) error {
				_, err := e.sync.Push(ctx, &pb.PushRequest{Changes: tooMany})
				return err
			},
			code: connect.CodeResourceExhausted,
			want: []string{"changes", "1000"},
		},
		{
			name: "household notes over 4000 bytes",
			bad:  e.householdEdit(func(h *pb.Household) { h.Notes = e.str(strings.Repeat("x", 4001)) }),
			code: connect.CodeResourceExhausted,
			want: []string{"changes[1].household.notes", "4000 bytes"},
		},
		{
			name: "household head name over 256 bytes",
			bad:  e.householdEdit(func(h *pb.Household) { h.HeadName = e.str(strings.Repeat("名", 86)) }),
			code: connect.CodeResourceExhausted,
			want: []string{"changes[1].household.head_name", "256 bytes"},
		},
		{
			name: "person name over 256 bytes",
			bad: &pb.Change{Id: uuid.NewString(), Payload: &pb.Change_Person{Person: &pb.Person{
				Id: uuid.NewString(), HouseholdId: e.household, Name: e.str(strings.Repeat("n", 257)),
			}}},
			code: connect.CodeResourceExhausted,
			want: []string{"changes[1].person.name", "256 bytes"},
		},
		{
			name: "visit notes over 4000 bytes",
			bad:  e.newVisit(func(v *pb.Visit) { v.Notes = strings.Repeat("x", 4001) }),
			code: connect.CodeResourceExhausted,
			want: []string{"changes[1].visit.notes", "4000 bytes"},
		},
		{
			name: "visit findings over their count",
			bad: e.newVisit(func(v *pb.Visit) {
				for range se.MaxFindings + 1 {
					v.Findings = append(v.Findings, &pb.Finding{Kind: pb.FindingKind_FINDING_KIND_HAZARD})
				}
			}),
			code: connect.CodeResourceExhausted,
			want: []string{"changes[1].visit.findings", "20"},
		},
		{
			name: "household id not a UUID",
			bad:  e.newVisit(func(v *pb.Visit) { v.HouseholdIds = []string{"not-a-uuid"} }),
			code: connect.CodeInvalidArgument,
			want: []string{"changes[1].visit.household_ids[0]", "UUID"},
		},
		{
			name: "change id not a UUID",
			bad:  &pb.Change{Id: "change-1", Payload: e.householdEdit(func(*pb.Household) {}).Payload},
			code: connect.CodeInvalidArgument,
			want: []string{"changes[1].id", "UUID"},
		},
		{
			name: "change without payload",
			bad:  &pb.Change{Id: uuid.NewString()},
			code: connect.CodeInvalidArgument,
			want: []string{"changes[1].payload", "required"},
		},
		{
			name: "unknown visit form",
			bad:  e.newVisit(func(v *pb.Visit) { v.Form = 99 }),
			code: connect.CodeInvalidArgument,
			want: []string{"changes[1].visit.form", "defined enum"},
		},
		{
			name: "unspecified visit form",
			bad:  e.newVisit(func(v *pb.Visit) { v.Form = pb.VisitForm_VISIT_FORM_UNSPECIFIED }),
			code: connect.CodeInvalidArgument,
			want: []string{"changes[1].visit.form", "not be in list [0]"},
		},
		{
			name: "unknown finding kind",
			bad: e.newVisit(func(v *pb.Visit) {
				v.Findings = []*pb.Finding{{Kind: 42}}
			}),
			code: connect.CodeInvalidArgument,
			want: []string{"changes[1].visit.findings[0].kind", "defined enum"},
		},
		{
			name: "visit dated before 2000",
			bad:  e.newVisit(func(v *pb.Visit) { v.VisitedAt = timestamppb.New(time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)) }),
			code: connect.CodeInvalidArgument,
			want: []string{"changes[1].visit.visited_at", "greater than or equal to 2000-01-01T00:00:00Z"},
		},
		{
			name: "visit dated after 2200",
			bad:  e.newVisit(func(v *pb.Visit) { v.VisitedAt = timestamppb.New(time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)) }),
			code: connect.CodeInvalidArgument,
			want: []string{"changes[1].visit.visited_at", "2200-01-01T00:00:00Z"},
		},
		{
			name: "visit without a date",
			bad:  e.newVisit(func(v *pb.Visit) { v.VisitedAt = nil }),
			code: connect.CodeInvalidArgument,
			want: []string{"changes[1].visit.visited_at", "required"},
		},
		{
			name: "unauthenticated push of a bad change",
			bad:  e.newVisit(func(v *pb.Visit) { v.HouseholdIds = []string{"not-a-uuid"} }),
			call: func(good, bad *pb.Change) error {
				_, err := e.anonSync.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{good, bad}})
				return err
			},
			code: connect.CodeUnauthenticated,
			want: []string{"bearer token"},
		},
		{
			name: "bootstrap of a grid id that is not a UUID",
			call: func(*pb.Change, *pb.Change) error {
				return limitStreamErr(e.sync.Bootstrap(ctx, &pb.BootstrapRequest{GridIds: []string{e.grid, "grid-b"}}))
			},
			code: connect.CodeInvalidArgument,
			want: []string{"grid_ids[1]", "UUID"},
		},
		{
			name: "unauthenticated bootstrap of a bad grid id",
			call: func(*pb.Change, *pb.Change) error {
				return limitStreamErr(e.anonSync.Bootstrap(ctx, &pb.BootstrapRequest{GridIds: []string{"grid-b"}}))
			},
			code: connect.CodeUnauthenticated,
			want: []string{"bearer token"},
		},
		{
			name: "export of an unknown kind",
			call: func(*pb.Change, *pb.Change) error {
				return limitStreamErr(e.reports.Export(ctx, &pb.ExportRequest{Kind: 9, Format: pb.ExportFormat_EXPORT_FORMAT_CSV}))
			},
			code: connect.CodeInvalidArgument,
			want: []string{"kind", "defined enum"},
		},
		{
			name: "worker name over 256 bytes",
			call: func(*pb.Change, *pb.Change) error {
				_, err := e.admin.CreateWorker(ctx, &pb.CreateWorkerRequest{Name: strings.Repeat("w", 257), Role: pb.WorkerRole_WORKER_ROLE_CADRE, GridIds: []string{e.grid}})
				return err
			},
			code: connect.CodeInvalidArgument,
			want: []string{"name", "1 to 256 bytes"},
		},
		{
			name: "worker of an unknown role",
			call: func(*pb.Change, *pb.Change) error {
				_, err := e.admin.CreateWorker(ctx, &pb.CreateWorkerRequest{Name: "w", Role: 77, GridIds: []string{e.grid}})
				return err
			},
			code: connect.CodeInvalidArgument,
			want: []string{"role", "defined enum"},
		},
		{
			name: "campaign name over 256 bytes",
			call: func(*pb.Change, *pb.Change) error {
				name := strings.Repeat("c", 257)
				_, err := e.admin.PutCampaign(ctx, &pb.PutCampaignRequest{NodeId: &e.grid, Name: &name})
				return err
			},
			code: connect.CodeResourceExhausted,
			want: []string{"name", "256 bytes"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A valid change that must not land with the refused one.
			good := e.householdEdit(func(h *pb.Household) { h.Notes = e.str("must not land: " + tc.name) })
			call := tc.call
			if call == nil {
				call = func(good, bad *pb.Change) error {
					_, err := e.sync.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{good, bad}})
					return err
				}
			}
			before := e.rowCounts(t)
			err := call(good, tc.bad)
			t.Log(err)
			if got := connect.CodeOf(err); got != tc.code {
				t.Fatalf("code %v (%v), want %v", got, err, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if after := e.rowCounts(t); !maps.Equal(before, after) {
				t.Errorf("a refused call changed the server's rows: before %v, after %v", before, after)
			}
			// A push refused for one change names it, so that the device
			// sets it aside (a push too big to read names none).
			if strings.HasPrefix(tc.want[0], "changes[1]") {
				var ce *connect.Error
				errors.As(err, &ce)
				named := ""
				for _, d := range ce.Details() {
					if m, derr := d.Value(); derr == nil {
						if rc, ok := m.(*pb.RejectedChange); ok {
							named = rc.GetChangeId()
						}
					}
				}
				if named != tc.bad.GetId() {
					t.Errorf("RejectedChange names %q, want the bad change %q", named, tc.bad.GetId())
				}
			}
		})
	}

	// The valid changes were refused only for their company: alone, they
	// apply.
	res, err := e.sync.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{
		e.householdEdit(func(h *pb.Household) { h.Notes = e.str(strings.Repeat("x", 4000)) }),
		e.newVisit(func(v *pb.Visit) { v.Notes = "ok" }),
	}})
	if err != nil || res.GetApplied() != 2 {
		t.Fatalf("valid push: %v, %d applied, want 2", err, res.GetApplied())
	}
}

// TestLimitRulesCompile: the rules of every message of the API compile (a
// rule that does not would fail requests at run time with a compilation
// error instead of a violation).
func TestLimitRulesCompile(t *testing.T) {
	t.Parallel()
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []protoreflect.FileDescriptor{
		pb.File_doorbook_v1_types_proto, pb.File_doorbook_v1_sync_proto, pb.File_doorbook_v1_admin_proto,
		pb.File_doorbook_v1_enrollment_proto, pb.File_doorbook_v1_report_proto,
	} {
		for i := range f.Messages().Len() {
			md := f.Messages().Get(i)
			err := v.Validate(dynamicpb.NewMessage(md))
			var verr *protovalidate.ValidationError
			if err != nil && !errors.As(err, &verr) {
				t.Errorf("%s: %v", md.FullName(), err)
			}
		}
	}
}

// TestChangeIDReuseOverTheWire: the server fingerprints each change as it
// arrives, so the same change id pushed again with other content is
// AlreadyExists, naming the change (the phone sets it aside), while the
// very same change again is a duplicate.
func TestChangeIDReuseOverTheWire(t *testing.T) {
	ctx := context.Background()
	e := newLimitEnv(t)
	c := e.householdEdit(func(h *pb.Household) { h.Notes = e.str("first") })
	if _, err := e.sync.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{c}}); err != nil {
		t.Fatal(err)
	}
	res, err := e.sync.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{c}})
	if err != nil || res.GetDuplicates() != 1 {
		t.Fatalf("the same change again: %v, %v; want 1 duplicate", res, err)
	}
	other := e.householdEdit(func(h *pb.Household) { h.Notes = e.str("other") })
	other.Id = c.GetId()
	_, err = e.sync.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{other}})
	if connect.CodeOf(err) != connect.CodeAlreadyExists || !strings.Contains(err.Error(), "with other content") {
		t.Fatalf("the same id with other content: %v, want AlreadyExists", err)
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatal(err)
	}
	named := false
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if rc, ok := v.(*pb.RejectedChange); ok && rc.GetChangeId() == c.GetId() {
				named = true
			}
		}
	}
	if !named {
		t.Errorf("the refusal does not name change %s in a RejectedChange detail", c.GetId())
	}
}

// openService opens a SQLite server database under the server's rules.
func openService(ctx context.Context, path string, opts ...sqlite.Option) (store.Store, error) {
	backend, err := sqlite.Open(ctx, path, opts...)
	if err != nil {
		return nil, err
	}
	return service.New(backend), nil
}
