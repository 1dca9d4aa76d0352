package e2e

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/syncengine"
)

// protocols are the wire protocols the API is tested over.
var protocols = []struct {
	name   string
	client *http.Client
	opts   []connect.ClientOption
}{
	{"connect", http.DefaultClient, nil},
	{"grpc", h2cClient(), []connect.ClientOption{connect.WithGRPC()}},
	{"grpcweb", http.DefaultClient, []connect.ClientOption{connect.WithGRPCWeb()}},
}

// h2cClient speaks HTTP/2 without TLS, as gRPC clients do on loopback.
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func nowClock() *pb.Clock {
	return &pb.Clock{Hlc: syncengine.PackHLC(time.Now().UnixMilli(), 0), Node: 42}
}

func str(v string) *pb.StringField { return &pb.StringField{Value: v, Clock: nowClock()} }

func householdChange(id, grid, head string) *pb.Change {
	h := &pb.Household{Id: id, HeadName: str(head)}
	if grid != "" {
		h.GridId = str(grid)
	}
	return &pb.Change{Id: newID(), Payload: &pb.Change_Household{Household: h}}
}

func visitChange(household, visitor string) *pb.Change {
	return &pb.Change{Id: newID(), Payload: &pb.Change_Visit{Visit: &pb.Visit{
		Id: newID(), HouseholdIds: []string{household}, VisitorId: visitor, VisitedAt: timestamppb.Now(),
		Form: pb.VisitForm_VISIT_FORM_IN_PERSON, Clock: nowClock(),
	}}}
}

// TestScopeAndErrorsThroughTheAPI calls the real API as a worker's device,
// over Connect, gRPC and gRPC-Web: everything outside the worker's grids is
// PermissionDenied, bad credentials are Unauthenticated, bad input is
// InvalidArgument or ResourceExhausted, and none of it changes anything.
func TestScopeAndErrorsThroughTheAPI(t *testing.T) {
	t.Parallel()
	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t, 2)
			mine, theirs := e.Grids[0], e.Grids[1]
			me, code := e.worker("me", mine)
			other, _ := e.worker("other", theirs)
			enroll := doorbookv1connect.NewEnrollmentServiceClient(proto.client, e.URL, proto.opts...)
			res, err := enroll.Enroll(ctx, &pb.EnrollRequest{Code: code, DeviceName: "test"})
			if err != nil {
				t.Fatal(err)
			}
			syncAs := func(token string) doorbookv1connect.SyncServiceClient {
				return doorbookv1connect.NewSyncServiceClient(proto.client, e.URL, append(proto.opts, connect.WithInterceptors(bearer.Token(token)))...)
			}
			sc := syncAs(res.GetToken())

			// A household of mine and one of the other worker's grid.
			own, foreign := newID(), newID()
			if _, err := sc.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{householdChange(own, mine, "mine")}}); err != nil {
				t.Fatal(err)
			}
			oa := e.device("other", other)
			if _, err := oa.RegisterHousehold(ctx, theirs, map[string]string{"head_name": "theirs"}); err != nil {
				t.Fatal(err)
			}
			mustSync(t, oa)
			hs, _ := oa.Households(ctx)
			foreign = hs[0].ID
			before := e.serverState()

			tooMany := make([]*pb.Change, syncengine.MaxChangesPerPush+1)
			for i := range tooMany {
				tooMany[i] = householdChange(own, "", "x")
			}
			future := householdChange(own, "", "from 2030")
			future.GetHousehold().HeadName.Clock.Hlc = syncengine.PackHLC(time.Now().AddDate(4, 0, 0).UnixMilli(), 0)
			worse := visitChange(own, me)
			worse.GetVisit().HouseholdIds = []string{"not-a-uuid"}

			for _, tc := range []struct {
				name    string
				call    func() error
				code    connect.Code
				changes bool
			}{
				{"edit a household of another grid", func() error {
					_, err := sc.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{householdChange(foreign, "", "hijacked")}})
					return err
				}, connect.CodePermissionDenied, false},
				{"register in another grid", func() error {
					_, err := sc.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{householdChange(newID(), theirs, "new")}})
					return err
				}, connect.CodePermissionDenied, false},
				{"move my household to another grid", func() error {
					_, err := sc.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{householdChange(own, theirs, "moved")}})
					return err
				}, connect.CodePermissionDenied, false},
				{"visit a household of another grid", func() error {
					_, err := sc.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{visitChange(foreign, me)}})
					return err
				}, connect.CodePermissionDenied, false},
				{"record a visit as another worker", func() error {
					_, err := sc.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{visitChange(own, other)}})
					return err
				}, connect.CodePermissionDenied, false},
				{"half-valid push is refused whole", func() error {
					_, err := sc.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{householdChange(own, "", "applied?"), visitChange(foreign, me)}})
					return err
				}, connect.CodePermissionDenied, false},
				{"bootstrap another grid", func() error {
					stream, err := sc.Bootstrap(ctx, &pb.BootstrapRequest{GridIds: []string{theirs}})
					if err != nil {
						return err
					}
					for stream.Receive() {
					}
					return stream.Err()
				}, connect.CodePermissionDenied, false},
				{"admin call with a device token", func() error {
					admin := doorbookv1connect.NewAdminServiceClient(proto.client, e.URL, append(proto.opts, connect.WithInterceptors(bearer.Token(res.GetToken())))...)
					_, err := admin.ListWorkers(ctx, &pb.ListWorkersRequest{})
					return err
				}, connect.CodePermissionDenied, false},
				{"pull with an admin token", func() error {
					_, err := syncAs(e.adminToken).Pull(ctx, &pb.PullRequest{})
					return err
				}, connect.CodePermissionDenied, false},
				{"no token", func() error {
					_, err := doorbookv1connect.NewSyncServiceClient(proto.client, e.URL, proto.opts...).Pull(ctx, &pb.PullRequest{})
					return err
				}, connect.CodeUnauthenticated, false},
				{"malformed token", func() error {
					_, err := syncAs("garbage").Pull(ctx, &pb.PullRequest{})
					return err
				}, connect.CodeUnauthenticated, false},
				{"right device, wrong secret", func() error {
					_, err := syncAs(res.GetDeviceId()+".AAAA").Pull(ctx, &pb.PullRequest{})
					return err
				}, connect.CodeUnauthenticated, false},
				{"enrolment code used twice", func() error {
					_, err := enroll.Enroll(ctx, &pb.EnrollRequest{Code: code})
					return err
				}, connect.CodeUnauthenticated, false},
				{"ids must be UUIDs", func() error {
					_, err := sc.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{worse}})
					return err
				}, connect.CodeInvalidArgument, false},
				{"too many changes in one push", func() error {
					_, err := sc.Push(ctx, &pb.PushRequest{Changes: tooMany})
					return err
				}, connect.CodeResourceExhausted, false},
				{"clock years ahead", func() error {
					_, err := sc.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{future}})
					var ce *connect.Error
					if errors.As(err, &ce) && len(ce.Details()) == 0 {
						t.Error("clock skew error carries no ClockSkew detail")
					}
					return err
				}, connect.CodeFailedPrecondition, false},
			} {
				err := tc.call()
				if got := connect.CodeOf(err); got != tc.code {
					t.Errorf("%s: code %v (%v), want %v", tc.name, got, err, tc.code)
				}
			}
			assertSameState(t, "server after refused calls", before, e.serverState())

			// What a pull returns is only the worker's own grid.
			pulled, err := sc.Pull(ctx, &pb.PullRequest{})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range pulled.GetHouseholds() {
				if h.GetGridId().GetValue() != mine {
					t.Errorf("pull returned household %s of grid %s", h.GetId(), h.GetGridId().GetValue())
				}
			}
			if len(pulled.GetHouseholds()) != 1 {
				t.Errorf("pull returned %d households, want my 1", len(pulled.GetHouseholds()))
			}
		})
	}
}

// TestHouseholdMoveLeavesAndArrivesWhole: a household moved by an admin
// leaves the old grid's replica (after its pending edit is pushed, not lost)
// and arrives whole — persons, tags, visits, amendments — in the new one.
func TestHouseholdMoveLeavesAndArrivesWhole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 2)
	wa, _ := e.worker("a", e.Grids[0])
	wb, _ := e.worker("b", e.Grids[1])
	a, b := e.device("a", wa), e.device("b", wb)
	mustSync(t, a)
	mustSync(t, b)
	h, err := a.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "搬家户"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddPerson(ctx, h, map[string]string{"name": "孩子"}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddTag(ctx, h, "vulnerable"); err != nil {
		t.Fatal(err)
	}
	v, err := a.RecordVisit(ctx, sdkVisit(h))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.VoidVisit(ctx, v, "wrong door"); err != nil {
		t.Fatal(err)
	}
	mustSync(t, a)

	// a edits the household offline, not knowing it is about to move.
	if err := a.EditHousehold(ctx, h, map[string]string{"notes": "edited before the move was known"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Admin.MoveHousehold(ctx, &pb.MoveHouseholdRequest{HouseholdId: h, GridId: e.Grids[1]}); err != nil {
		t.Fatal(err)
	}
	rep := mustSync(t, a)
	if rep.Pushed != 1 || rep.Evicted != 1 {
		t.Errorf("a's sync pushed %d and evicted %d, want the pending edit pushed and the household evicted", rep.Pushed, rep.Evicted)
	}
	if _, err := a.Household(ctx, h); !errors.Is(err, syncengine.ErrNotFound) {
		t.Errorf("a still has the moved household: %v", err)
	}
	if got := dump(t, a); got.Rows() != 0 {
		t.Errorf("a's replica still holds %d rows of the moved household", got.Rows())
	}

	mustSync(t, b)
	d, err := b.Household(ctx, h)
	if err != nil {
		t.Fatalf("b did not receive the moved household: %v", err)
	}
	if len(d.Persons) != 1 || !slices.Equal(d.Categories, []string{"vulnerable"}) || len(d.Visits) != 1 || !d.Visits[0].Voided {
		t.Errorf("household arrived incomplete: %d persons, categories %v, %d visits", len(d.Persons), d.Categories, len(d.Visits))
	}
	if d.Household.Notes.Value != "edited before the move was known" {
		t.Errorf("the edit a made before learning of the move was lost: notes = %q", d.Household.Notes.Value)
	}
	assertSameState(t, "b vs server", e.serverState(e.Grids[1]), dump(t, b))
}

// TestWorkerGivenAGridReceivesItWhole: a grid given to a worker arrives
// whole at the next sync, and leaves when taken away.
func TestWorkerGivenAGridReceivesItWhole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 2)
	wa, _ := e.worker("a", e.Grids[0])
	wb, _ := e.worker("b", e.Grids[1])
	a, b := e.device("a", wa), e.device("b", wb)
	mustSync(t, a)
	mustSync(t, b)
	for i := range 3 {
		h, err := b.RegisterHousehold(ctx, e.Grids[1], map[string]string{"head_name": string(rune('A' + i))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.RecordVisit(ctx, sdkVisit(h)); err != nil {
			t.Fatal(err)
		}
		if err := b.AddTag(ctx, h, "notable"); err != nil {
			t.Fatal(err)
		}
	}
	mustSync(t, b)

	if _, err := e.Admin.SetWorkerGrids(ctx, &pb.SetWorkerGridsRequest{WorkerId: wa, GridIds: e.Grids}); err != nil {
		t.Fatal(err)
	}
	rep := mustSync(t, a)
	if rep.Bootstrapped != 3 {
		t.Errorf("a received %d households whole, want 3", rep.Bootstrapped)
	}
	assertSameState(t, "a with both grids vs server", e.serverState(e.Grids...), dump(t, a))

	if _, err := e.Admin.SetWorkerGrids(ctx, &pb.SetWorkerGridsRequest{WorkerId: wa, GridIds: e.Grids[:1]}); err != nil {
		t.Fatal(err)
	}
	rep = mustSync(t, a)
	if rep.Evicted != 3 {
		t.Errorf("a dropped %d households, want 3", rep.Evicted)
	}
	assertSameState(t, "a with grid 0 vs server", e.serverState(e.Grids[0]), dump(t, a))
}
