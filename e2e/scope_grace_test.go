package e2e

import (
	"context"
	"net/http"
	"testing"

	"connectrpc.com/connect"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
)

// TestGraceDoesNotCoverHouseholdsNeverInScope: grace lets a device write a
// household that was in its worker's scope at some moment after the
// device's cursor. A household moved into a grid after that grid was taken
// from the worker never was, and the device may not write it (it once
// could: grace went by the household's current grid alone).
func TestGraceDoesNotCoverHouseholdsNeverInScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 3)
	a, b, c := e.Grids[0], e.Grids[1], e.Grids[2]
	me, code := e.worker("me", a, c)
	other, _ := e.worker("other", b)

	enroll := doorbookv1connect.NewEnrollmentServiceClient(http.DefaultClient, e.URL)
	res, err := enroll.Enroll(ctx, &pb.EnrollRequest{Code: code, DeviceName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	sc := doorbookv1connect.NewSyncServiceClient(http.DefaultClient, e.URL, connect.WithInterceptors(bearer.Token(res.GetToken())))
	pull, err := sc.Pull(ctx, &pb.PullRequest{Cursor: 0, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// The device applies that batch and pulls again: the server now knows
	// the device has applied everything up to this cursor.
	if _, err := sc.Pull(ctx, &pb.PullRequest{Cursor: pull.GetCursor(), Limit: 1000}); err != nil {
		t.Fatal(err)
	}

	od := e.device("other", other)
	mustSync(t, od)
	foreign, err := od.RegisterHousehold(ctx, b, map[string]string{"head_name": "theirs"})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, od)

	// Grid a is taken from me; afterwards the other worker's household is
	// moved into grid a. It was never in my scope.
	if _, err := e.Admin.SetWorkerGrids(ctx, &pb.SetWorkerGridsRequest{WorkerId: me, GridIds: []string{c}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Admin.MoveHousehold(ctx, &pb.MoveHouseholdRequest{HouseholdId: foreign, GridId: a}); err != nil {
		t.Fatal(err)
	}

	_, err = sc.Push(ctx, &pb.PushRequest{Changes: []*pb.Change{householdChange(foreign, "", "hijacked"), visitChange(foreign, me)}})
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("push to a household that was never in my scope: err = %v, want PermissionDenied", err)
	}
}
