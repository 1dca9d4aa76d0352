package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/internal/wire"
	"github.com/doorbook/doorbook/server"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/sqlite"
	se "github.com/doorbook/doorbook/syncengine"
)

// The ids the server makes up (grids, workers) differ from run to run, so
// the corpus names them by placeholders that pushEnv.substitute replaces.
const (
	phGridMine    = "ffffffff-0000-4000-8000-000000000001"
	phGridOther   = "ffffffff-0000-4000-8000-000000000002"
	phWorkerMe    = "ffffffff-0000-4000-8000-000000000003"
	phWorkerOther = "ffffffff-0000-4000-8000-000000000004"
)

// Rows every pushEnv starts with, under fixed ids: a household of my grid
// with a person, a tag, a visit with a hazard and a correction of it, and a
// household of the other worker's grid with a visit.
const (
	hhMine      = "01950000-0000-7000-8000-00000000a001"
	personMine  = "01950000-0000-7000-8000-00000000a002"
	tagMine     = "01950000-0000-7000-8000-00000000a003"
	visitMine   = "01950000-0000-7000-8000-00000000a004"
	amendMine   = "01950000-0000-7000-8000-00000000a005"
	hhForeign   = "01950000-0000-7000-8000-00000000b001"
	visitForeig = "01950000-0000-7000-8000-00000000b004"
)

// seedTime is when the corpus' clocks and visits are: in the past, so that
// the skew bound never refuses them.
var seedTime = time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)

func seedClock(n uint16) se.Clock {
	return se.Clock{HLC: se.PackHLC(seedTime.UnixMilli(), n), Node: 0x5eed}
}

// pushEnv is a real server over a SQLite file with an org tree of two grids,
// a worker in each with an enrolled device, and a second connection to the
// file to read the state with.
type pushEnv struct {
	ctx                            context.Context
	path                           string
	st                             store.Store
	db                             *sqlitex.DB
	sync, otherSync                doorbookv1connect.SyncServiceClient
	raw                            *connect.Client[rawRequest, pb.PushResponse]
	replace                        map[string]string
	gridMine, gridTheirs, me, them string
}

// handlerTransport serves requests with the handler in process: no sockets.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	res := rec.Result()
	res.Request = r
	return res, nil
}

// rawRequest is a request body sent as it is, so that the server is the one
// to decode the fuzz input.
type rawRequest struct{ b []byte }

type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(m any) ([]byte, error) {
	if r, ok := m.(*rawRequest); ok {
		return r.b, nil
	}
	return proto.Marshal(m.(proto.Message))
}

func (rawCodec) Unmarshal(b []byte, m any) error { return proto.Unmarshal(b, m.(proto.Message)) }

func newPushEnv(tb testing.TB, dir string) *pushEnv {
	tb.Helper()
	ctx := context.Background()
	e := &pushEnv{ctx: ctx, path: filepath.Join(dir, "server.db")}
	var err error
	backend, err := sqlite.Open(ctx, e.path)
	if err != nil {
		tb.Fatal(err)
	}
	e.st = service.New(backend)
	tb.Cleanup(func() { e.st.Close() })
	root, _, err := e.st.CreateAdmin(ctx, "root", "")
	if err != nil {
		tb.Fatal(err)
	}
	for i, code := range []string{"elderly", "disabled", "low_income"} {
		c := se.Category{Code: code, NameEN: se.NewRegister(code, se.Clock{HLC: se.PackHLC(1, uint16(i)), Node: 1})}
		if _, _, err := e.st.PutCategory(ctx, root, c, false); err != nil {
			tb.Fatal(err)
		}
	}
	node := func(parent string, level store.OrgLevel, name string) string {
		n, err := e.st.CreateOrgNode(ctx, root, store.OrgNode{ParentID: parent, Level: level, Name: name})
		if err != nil {
			tb.Fatal(err)
		}
		return n.ID
	}
	community := node(node(node("", store.LevelDistrict, "D"), store.LevelStreet, "S"), store.LevelCommunity, "C")
	e.gridMine, e.gridTheirs = node(community, store.LevelGrid, "G1"), node(community, store.LevelGrid, "G2")
	device := func(name, grid string) (string, string) {
		w, err := e.st.CreateWorker(ctx, root, store.Worker{Name: name, Role: 1, GridIDs: []string{grid}})
		if err != nil {
			tb.Fatal(err)
		}
		code, err := e.st.CreateEnrollmentCode(ctx, root, w.ID, time.Now().Add(time.Hour))
		if err != nil {
			tb.Fatal(err)
		}
		en, err := e.st.Enroll(ctx, code, name+"'s phone", time.Now())
		if err != nil {
			tb.Fatal(err)
		}
		return w.ID, en.Token
	}
	var myToken, theirToken string
	e.me, myToken = device("me", e.gridMine)
	e.them, theirToken = device("them", e.gridTheirs)
	e.replace = map[string]string{phGridMine: e.gridMine, phGridOther: e.gridTheirs, phWorkerMe: e.me, phWorkerOther: e.them}

	client := &http.Client{Transport: handlerTransport{server.New(e.st).Handler()}}
	const base = "http://doorbook.test"
	e.sync = doorbookv1connect.NewSyncServiceClient(client, base, connect.WithInterceptors(bearer.Token(myToken)))
	e.otherSync = doorbookv1connect.NewSyncServiceClient(client, base, connect.WithInterceptors(bearer.Token(theirToken)))
	e.raw = connect.NewClient[rawRequest, pb.PushResponse](client, base+"/doorbook.v1.SyncService/Push",
		connect.WithCodec(rawCodec{}), connect.WithInterceptors(bearer.Token(myToken)))
	if e.db, err = sqlitex.Open(ctx, e.path, nil); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.db.Close() })

	for _, push := range []struct {
		c  doorbookv1connect.SyncServiceClient
		pr *pb.PushRequest
	}{{e.sync, initialMine()}, {e.otherSync, initialTheirs()}} {
		e.substitute(push.pr)
		if _, err := push.c.Push(ctx, push.pr); err != nil {
			tb.Fatalf("initial push: %v", err)
		}
	}
	return e
}

func changeOf(id string, payload any) *pb.Change {
	c := se.Change{ID: id}
	switch p := payload.(type) {
	case *se.Household:
		c.Household = p
	case *se.Person:
		c.Person = p
	case *se.TagElement:
		c.Tag = p
	case *se.Visit:
		c.Visit = p
	case *se.Amendment:
		c.Amendment = p
	default:
		panic(fmt.Sprintf("changeOf(%T)", payload))
	}
	return wire.ChangeToProto(&c)
}

func changeID(n int) string { return fmt.Sprintf("01950000-0000-7000-8000-0000000c%04x", n) }

func household(id, grid, head string, c se.Clock) *se.Household {
	h := &se.Household{ID: id, HeadName: se.NewRegister(head, c)}
	if grid != "" {
		h.GridID = se.NewRegister(grid, c)
	}
	return h
}

func visit(id, visitor string, c se.Clock, households ...string) *se.Visit {
	return &se.Visit{ID: id, HouseholdIDs: households, VisitorID: visitor, VisitedAt: seedTime, Form: se.FormInPerson, Clock: c}
}

func initialMine() *pb.PushRequest {
	v := visit(visitMine, phWorkerMe, seedClock(4), hhMine)
	v.Findings = []se.Finding{{Kind: se.FindingHazard, Note: "loose wiring"}}
	return &pb.PushRequest{Changes: []*pb.Change{
		changeOf(changeID(1), household(hhMine, phGridMine, "head", seedClock(1))),
		changeOf(changeID(2), &se.Person{ID: personMine, HouseholdID: hhMine, Name: se.NewRegister("resident", seedClock(2))}),
		changeOf(changeID(3), &se.TagElement{AddID: tagMine, HouseholdID: hhMine, Category: "elderly", Clock: seedClock(3)}),
		changeOf(changeID(4), v),
		changeOf(changeID(5), &se.Amendment{ID: amendMine, VisitID: visitMine, AuthorID: phWorkerMe, Kind: se.AmendCorrect, Reason: "typo", Notes: new("fixed"), Clock: seedClock(5)}),
	}}
}

func initialTheirs() *pb.PushRequest {
	return &pb.PushRequest{Changes: []*pb.Change{
		changeOf(changeID(6), household(hhForeign, phGridOther, "theirs", seedClock(6))),
		changeOf(changeID(7), visit(visitForeig, phWorkerOther, seedClock(7), hhForeign)),
	}}
}

// substitute replaces the placeholders in every string of m.
func (e *pushEnv) substitute(m proto.Message) { substitute(m.ProtoReflect(), e.replace) }

func substitute(m protoreflect.Message, replace map[string]string) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.StringKind:
			l := v.List()
			for i := range l.Len() {
				if r, ok := replace[l.Get(i).String()]; ok {
					l.Set(i, protoreflect.ValueOfString(r))
				}
			}
		case fd.IsList() && (fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind):
			l := v.List()
			for i := range l.Len() {
				substitute(l.Get(i).Message(), replace)
			}
		case fd.IsMap():
			// No maps in the push messages.
		case fd.Kind() == protoreflect.StringKind:
			if r, ok := replace[v.String()]; ok {
				m.Set(fd, protoreflect.ValueOfString(r))
			}
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			substitute(v.Message(), replace)
		}
		return true
	})
}

// dump is every row of every table of the server's file, rendered, by
// table: what "nothing changed" compares.
func (e *pushEnv) dump(tb testing.TB) map[string][]string {
	tb.Helper()
	out := map[string][]string{}
	names, err := e.db.R.QueryContext(e.ctx, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		tb.Fatal(err)
	}
	var tables []string
	for names.Next() {
		var n string
		if err := names.Scan(&n); err != nil {
			tb.Fatal(err)
		}
		tables = append(tables, n)
	}
	if err := names.Close(); err != nil {
		tb.Fatal(err)
	}
	for _, table := range tables {
		out[table] = dumpTable(tb, e.ctx, e.db.R, table)
	}
	return out
}

func dumpTable(tb testing.TB, ctx context.Context, q statedb.Querier, table string) []string {
	tb.Helper()
	rows, err := q.QueryContext(ctx, `SELECT * FROM "`+table+`"`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			tb.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%q", vals))
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// diffDumps names the tables that differ.
func diffDumps(before, after map[string][]string) string {
	var b strings.Builder
	for table, rows := range after {
		if !slices.Equal(before[table], rows) {
			fmt.Fprintf(&b, "table %s: %d rows before, %d after\n", table, len(before[table]), len(rows))
			for _, r := range rows {
				if !slices.Contains(before[table], r) {
					fmt.Fprintf(&b, "  + %s\n", r)
				}
			}
			for _, r := range before[table] {
				if !slices.Contains(rows, r) {
					fmt.Fprintf(&b, "  - %s\n", r)
				}
			}
		}
	}
	return b.String()
}

// badInputCodes are the codes a push of bad input may fail with: never
// Unknown or Internal.
var badInputCodes = []connect.Code{
	connect.CodeInvalidArgument, connect.CodeFailedPrecondition, connect.CodePermissionDenied,
	connect.CodeResourceExhausted, connect.CodeNotFound, connect.CodeAlreadyExists,
}

// rejectedIDs are the change ids the error's RejectedChange and ClockSkew
// details name.
func rejectedIDs(err error) []string {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return nil
	}
	var ids []string
	for _, d := range ce.Details() {
		switch m, _ := d.Value(); m := m.(type) {
		case *pb.RejectedChange:
			ids = append(ids, m.GetChangeId())
		case *pb.ClockSkew:
			ids = append(ids, m.GetChangeId())
		}
	}
	return ids
}

// wasApplied reports whether the server holds change c as applied: its
// visit, for a visit (a visit never changes, and keeps no change id), else
// its change id.
func (e *pushEnv) wasApplied(tb testing.TB, c *pb.Change) bool {
	tb.Helper()
	q, id := `SELECT COUNT(*) FROM applied_changes WHERE change_id = ?`, c.GetId()
	if v := c.GetVisit(); v != nil {
		q, id = `SELECT COUNT(*) FROM visits WHERE id = ?`, v.GetId()
	}
	var n int
	if err := e.db.R.QueryRowContext(e.ctx, q, id).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n > 0
}

// appliedKey names what proves c applied (see wasApplied).
func appliedKey(c *pb.Change) string {
	if v := c.GetVisit(); v != nil {
		return "visit " + v.GetId()
	}
	return c.GetId()
}

// checkAbsorbed checks that the server's state holds change c: merging it
// into the stored row changes nothing.
func (e *pushEnv) checkAbsorbed(tb testing.TB, c *se.Change) {
	tb.Helper()
	ctx, q := e.ctx, e.db.R
	switch {
	case c.Household != nil:
		h, ok, err := statedb.GetHousehold(ctx, q, c.Household.ID)
		if err != nil || !ok {
			tb.Fatalf("household %s of applied change %s: found %v, %v", c.Household.ID, c.ID, ok, err)
		}
		if merged := h; merged.Merge(*c.Household) {
			tb.Fatalf("applied change %s is not in household %s:\nstored %+v\nchange %+v", c.ID, h.ID, h, *c.Household)
		}
	case c.Person != nil:
		p, ok, err := statedb.GetPerson(ctx, q, c.Person.ID)
		if err != nil || !ok {
			tb.Fatalf("person %s of applied change %s: found %v, %v", c.Person.ID, c.ID, ok, err)
		}
		if merged := p; merged.Merge(*c.Person) {
			tb.Fatalf("applied change %s is not in person %s:\nstored %+v\nchange %+v", c.ID, p.ID, p, *c.Person)
		}
	case c.Tag != nil:
		ts, err := statedb.Tags(ctx, q, []string{c.Tag.AddID})
		if err != nil || len(ts) != 1 {
			tb.Fatalf("tag %s of applied change %s: %v, %v", c.Tag.AddID, c.ID, ts, err)
		}
		if merged := ts[0]; merged.Merge(*c.Tag) {
			tb.Fatalf("applied change %s is not in tag %s:\nstored %+v\nchange %+v", c.ID, c.Tag.AddID, ts[0], *c.Tag)
		}
	case c.Visit != nil:
		vs, err := statedb.Visits(ctx, q, []string{c.Visit.ID})
		if err != nil || len(vs) != 1 || !vs[0].Equal(c.Visit) {
			tb.Fatalf("visit of applied change %s: stored %+v, %v; want %+v", c.ID, vs, err, *c.Visit)
		}
	case c.Amendment != nil:
		as, err := statedb.Amendments(ctx, q, []string{c.Amendment.ID})
		if err != nil || len(as) != 1 || !as[0].Equal(c.Amendment) {
			tb.Fatalf("amendment of applied change %s: stored %+v, %v; want %+v", c.ID, as, err, *c.Amendment)
		}
	}
}

// push sends body (a PushRequest's encoding, or not) as the worker's device
// and checks the outcome: a proper code and no change at all on failure;
// on success, every change applied or a duplicate, and in the state.
func (e *pushEnv) push(t *testing.T, body []byte) {
	var req pb.PushRequest
	decoded := proto.Unmarshal(body, &req) == nil
	if decoded {
		e.substitute(&req)
		var err error
		body, err = proto.MarshalOptions{Deterministic: true}.Marshal(&req)
		if err != nil {
			t.Fatalf("re-encode the request: %v", err)
		}
	}
	// What the server already had, to tell new changes from duplicates.
	seen := map[string]bool{}
	var fresh []se.Change
	for _, pc := range req.GetChanges() {
		key := appliedKey(pc)
		if seen[key] {
			continue
		}
		seen[key] = true
		if c, err := wire.ChangeFromProto(pc); err == nil && !e.wasApplied(t, pc) {
			fresh = append(fresh, c)
		}
	}
	before := e.dump(t)

	res, err := e.raw.CallUnary(e.ctx, connect.NewRequest(&rawRequest{b: body}))

	after := e.dump(t)
	if err != nil {
		code := connect.CodeOf(err)
		t.Logf("push of %d changes: %v", len(req.GetChanges()), err)
		if !slices.Contains(badInputCodes, code) {
			t.Fatalf("push of %d changes failed with %v: %v; want one of %v", len(req.GetChanges()), code, err, badInputCodes)
		}
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("push failed (%v) but changed the server's state:\n%s", err, diffDumps(before, after))
		}
		for _, id := range rejectedIDs(err) {
			if !slices.ContainsFunc(req.GetChanges(), func(c *pb.Change) bool { return c.GetId() == id }) {
				t.Fatalf("push failed (%v) naming change %q, which it does not hold", err, id)
			}
		}
		return
	}
	if !decoded {
		t.Fatalf("the server accepted a body that does not decode as a PushRequest: %x", body)
	}
	n := len(req.GetChanges())
	t.Logf("push of %d changes: %d applied, %d duplicates", n, res.Msg.GetApplied(), res.Msg.GetDuplicates())
	if got := int(res.Msg.GetApplied() + res.Msg.GetDuplicates()); got != n {
		t.Fatalf("push of %d changes answered %d applied + %d duplicates", n, res.Msg.GetApplied(), res.Msg.GetDuplicates())
	}
	if int(res.Msg.GetApplied()) != len(fresh) {
		t.Fatalf("push of %d new changes (of %d) answered %d applied", len(fresh), n, res.Msg.GetApplied())
	}
	for _, pc := range req.GetChanges() {
		if !e.wasApplied(t, pc) {
			t.Fatalf("push succeeded but change %s is not recorded as applied", pc.GetId())
		}
	}
	for i := range fresh {
		e.checkAbsorbed(t, &fresh[i])
	}
}

// pushSeeds are valid pushes and half-valid ones (a valid change and a bad
// one), encoded, with placeholders for the server's ids.
func pushSeeds() [][]byte {
	h := "01950000-0000-7000-8000-00000000d001"
	hazard := visit("01950000-0000-7000-8000-00000000d004", phWorkerMe, seedClock(13), h)
	hazard.Findings = []se.Finding{{Kind: se.FindingHazard, Note: "gas"}, {Kind: se.FindingHardship}}
	hazard.Materials = []se.Material{se.MaterialOpenLetter}
	hazard.RevisitReasons, hazard.RevisitDue = []se.RevisitReason{se.RevisitUnstableMood}, seedTime.AddDate(0, 1, 0)
	edit := &se.Household{ID: hhMine, Address: se.NewRegister("1 Elm St", seedClock(20)), MemberCount: se.NewRegister[int64](3, seedClock(20))}
	valid := []*pb.PushRequest{
		// A registration with a person, a tag and a visit with details.
		{Changes: []*pb.Change{
			changeOf(changeID(10), household(h, phGridMine, "new", seedClock(10))),
			changeOf(changeID(11), &se.Person{ID: "01950000-0000-7000-8000-00000000d002", HouseholdID: h, Name: se.NewRegister("p", seedClock(11)), Gender: se.NewRegister("f", seedClock(11))}),
			changeOf(changeID(12), &se.TagElement{AddID: "01950000-0000-7000-8000-00000000d003", HouseholdID: h, Category: "disabled", Clock: seedClock(12)}),
			changeOf(changeID(13), hazard),
		}},
		// A household edit.
		{Changes: []*pb.Change{changeOf(changeID(20), edit)}},
		// Tags: another add and a remove of the existing one.
		{Changes: []*pb.Change{
			changeOf(changeID(30), &se.TagElement{AddID: "01950000-0000-7000-8000-00000000d030", HouseholdID: hhMine, Category: "low_income", Clock: seedClock(30)}),
			changeOf(changeID(31), &se.TagElement{AddID: tagMine, HouseholdID: hhMine, Category: "elderly", Removed: true, Clock: seedClock(3)}),
		}},
		// An item update and a void.
		{Changes: []*pb.Change{
			changeOf(changeID(40), &se.Amendment{ID: "01950000-0000-7000-8000-00000000d040", VisitID: visitMine, AuthorID: phWorkerMe, Kind: se.AmendItemAssign, Reason: "to the unit", Unit: "housing office", Deadline: seedTime.AddDate(0, 0, 14), Clock: seedClock(40)}),
			changeOf(changeID(41), &se.Amendment{ID: "01950000-0000-7000-8000-00000000d041", VisitID: visitMine, AuthorID: phWorkerMe, Kind: se.AmendVoid, Reason: "wrong door", Clock: seedClock(41)}),
		}},
		// A person edit.
		{Changes: []*pb.Change{changeOf(changeID(50), &se.Person{ID: personMine, HouseholdID: hhMine, Phone: se.NewRegister("555", seedClock(50))})}},
	}
	good := changeOf(changeID(60), &se.Household{ID: hhMine, Notes: se.NewRegister("half-valid", seedClock(60))})
	bad := []*pb.Change{
		changeOf(changeID(61), household(hhForeign, "", "hijacked", seedClock(61))),                                                                                                   // another grid's household
		changeOf(changeID(62), visit("01950000-0000-7000-8000-00000000d062", phWorkerOther, seedClock(62), hhMine)),                                                                   // as another worker
		changeOf(changeID(63), &se.Person{ID: "01950000-0000-7000-8000-00000000d063", HouseholdID: "01950000-0000-7000-8000-00000000dead", Name: se.NewRegister("x", seedClock(63))}), // unknown household
		changeOf(changeID(64), visit(visitMine, phWorkerMe, seedClock(64), hhMine)),                                                                                                   // a visit rewritten
		changeOf(changeID(65), household(hhMine, phGridOther, "moved", seedClock(65))),                                                                                                // moved out of my grids
		changeOf(changeID(66), visit("01950000-0000-7000-8000-00000000d066", phWorkerMe, seedClock(66), "not-a-uuid")),                                                                // invalid
		{Id: changeID(67)}, // no payload
		changeOf(changeID(68), &se.Amendment{ID: "01950000-0000-7000-8000-00000000d068", VisitID: visitForeig, AuthorID: phWorkerMe, Kind: se.AmendVoid, Reason: "x", Clock: seedClock(68)}),  // amends another grid's visit
		changeOf(changeID(69), &se.Household{ID: hhMine, Notes: se.NewRegister("from 2100", se.Clock{HLC: se.PackHLC(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), 0), Node: 1})}), // clock far ahead
		changeOf(changeID(70), &se.Amendment{ID: "01950000-0000-7000-8000-00000000d070", VisitID: visitMine, AuthorID: phWorkerMe, Kind: se.AmendItemClose, Finding: 7, Reason: "no such finding", Clock: seedClock(70)}),
	}
	var out [][]byte
	for _, r := range valid {
		out = append(out, must(proto.Marshal(r)))
	}
	for _, b := range bad {
		out = append(out, must(proto.Marshal(&pb.PushRequest{Changes: []*pb.Change{good, b}})))
	}
	// The same change id twice, and an empty push.
	out = append(out, must(proto.Marshal(&pb.PushRequest{Changes: []*pb.Change{good, good}})), nil)
	return out
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// FuzzPush sends the input, decoded as a PushRequest, to a real server (a
// SQLite store, created once per fuzz worker) as an enrolled worker's
// device. Whatever the input: no panic; a failure has a proper code
// (InvalidArgument, FailedPrecondition, PermissionDenied, ResourceExhausted,
// NotFound, AlreadyExists: never Unknown or Internal), names only changes
// the push holds, and leaves every table of the server's file as it was; a
// success records every change as applied or a duplicate, and the state
// holds each new one. The store's state carries over from input to input
// within a worker.
//
// Run: go test -run XXX -fuzz '^FuzzPush$' -fuzztime 10s -parallel 1 ./server
func FuzzPush(f *testing.F) {
	for _, s := range pushSeeds() {
		f.Add(s)
	}
	e := newPushEnv(f, f.TempDir())
	f.Fuzz(func(t *testing.T, body []byte) {
		e.push(t, body)
	})
}

// TestPushHalfValidRejectedWhole: a push of valid changes and one bad change,
// wherever it stands, applies nothing, fails with the bad change's code and
// names it in a RejectedChange detail (a ClockSkew one for a clock far
// ahead); the valid changes pushed alone then apply. (e2e's
// TestScopeAndErrorsThroughTheAPI checks the code and the state of one such
// push; storetest's PushAllOrNothing the store's side.)
func TestPushHalfValidRejectedWhole(t *testing.T) {
	t.Parallel()
	e := newPushEnv(t, t.TempDir())
	far := se.Clock{HLC: se.PackHLC(time.Now().AddDate(5, 0, 0).UnixMilli(), 0), Node: 1}
	var n int
	next := func() string { n++; return fmt.Sprintf("01950000-0000-7000-8000-0000000e%04x", n) }
	cases := []struct {
		name string
		bad  func() *pb.Change
		code connect.Code
		skew bool
	}{
		{"edit of another grid's household", func() *pb.Change {
			return changeOf(next(), household(hhForeign, "", "hijacked", seedClock(100)))
		}, connect.CodePermissionDenied, false},
		{"registration in another grid", func() *pb.Change {
			return changeOf(next(), household(next(), phGridOther, "there", seedClock(100)))
		}, connect.CodePermissionDenied, false},
		{"visit recorded as another worker", func() *pb.Change {
			return changeOf(next(), visit(next(), phWorkerOther, seedClock(100), hhMine))
		}, connect.CodePermissionDenied, false},
		{"amendment of another grid's visit", func() *pb.Change {
			return changeOf(next(), &se.Amendment{ID: next(), VisitID: visitForeig, AuthorID: phWorkerMe, Kind: se.AmendVoid, Reason: "x", Clock: seedClock(100)})
		}, connect.CodePermissionDenied, false},
		{"person of an unknown household", func() *pb.Change {
			return changeOf(next(), &se.Person{ID: next(), HouseholdID: next(), Name: se.NewRegister("x", seedClock(100))})
		}, connect.CodePermissionDenied, false}, // as a foreign household's
		{"visit rewritten", func() *pb.Change {
			return changeOf(next(), visit(visitMine, phWorkerMe, seedClock(100), hhMine))
		}, connect.CodeAlreadyExists, false},
		{"id that is not a UUID", func() *pb.Change {
			return changeOf(next(), visit(next(), phWorkerMe, seedClock(100), "not-a-uuid"))
		}, connect.CodeInvalidArgument, false},
		{"change without payload", func() *pb.Change { return &pb.Change{Id: next()} }, connect.CodeInvalidArgument, false},
		{"text over the limit", func() *pb.Change {
			return changeOf(next(), &se.Household{ID: hhMine, Notes: se.NewRegister(strings.Repeat("x", 5000), seedClock(100))})
		}, connect.CodeResourceExhausted, false},
		{"clock years ahead", func() *pb.Change {
			return changeOf(next(), &se.Household{ID: hhMine, Notes: se.NewRegister("future", far)})
		}, connect.CodeFailedPrecondition, true},
	}
	for _, tc := range cases {
		for _, at := range []int{0, 2, 5} {
			t.Run(fmt.Sprintf("%s at %d", tc.name, at), func(t *testing.T) {
				h := next()
				good := []*pb.Change{
					changeOf(next(), household(h, phGridMine, "all or nothing", seedClock(90))),
					changeOf(next(), &se.Person{ID: next(), HouseholdID: h, Name: se.NewRegister("resident", seedClock(91))}),
					changeOf(next(), &se.TagElement{AddID: next(), HouseholdID: h, Category: "elderly", Clock: seedClock(92)}),
					changeOf(next(), visit(next(), phWorkerMe, seedClock(93), h)),
					changeOf(next(), &se.Household{ID: hhMine, Notes: se.NewRegister("must not land: "+tc.name, seedClock(94))}),
				}
				bad := tc.bad()
				req := &pb.PushRequest{Changes: slices.Insert(slices.Clone(good), at, bad)}
				e.substitute(req)
				before := e.dump(t)
				_, err := e.sync.Push(e.ctx, req)
				if got := connect.CodeOf(err); got != tc.code {
					t.Fatalf("code %v (%v); want %v", got, err, tc.code)
				}
				var ce *connect.Error
				errors.As(err, &ce)
				found := false
				for _, d := range ce.Details() {
					m, derr := d.Value()
					if derr != nil {
						t.Fatalf("detail %s: %v", d.Type(), derr)
					}
					switch m := m.(type) {
					case *pb.RejectedChange:
						found = found || !tc.skew && m.GetChangeId() == bad.GetId()
						if m.GetChangeId() != bad.GetId() {
							t.Errorf("RejectedChange names %q; want the bad change %q", m.GetChangeId(), bad.GetId())
						}
					case *pb.ClockSkew:
						found = found || tc.skew && m.GetChangeId() == bad.GetId()
						if m.GetChangeId() != bad.GetId() {
							t.Errorf("ClockSkew names %q; want the bad change %q", m.GetChangeId(), bad.GetId())
						}
					}
				}
				if !found {
					t.Errorf("error %v carries no detail naming the bad change %s", err, bad.GetId())
				}
				if after := e.dump(t); !reflect.DeepEqual(before, after) {
					t.Fatalf("the refused push changed the server's state:\n%s", diffDumps(before, after))
				}
				for _, c := range good {
					if e.wasApplied(t, c) {
						t.Errorf("change %s of the refused push is recorded as applied", c.GetId())
					}
				}
				res, err := e.sync.Push(e.ctx, &pb.PushRequest{Changes: good})
				if err != nil || res.GetApplied() != uint32(len(good)) {
					t.Fatalf("the valid changes pushed alone: %v, %v; want %d applied", res, err, len(good))
				}
			})
		}
	}
}
