package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	sdk "github.com/doorbook/doorbook/client-sdk"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/server"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/syncengine"
)

func TestEnrolmentCodesAreSingleUseAndExpire(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 1)
	workerID, code := e.worker("Li", e.Grids[0])
	enroll := doorbookv1connect.NewEnrollmentServiceClient(http.DefaultClient, e.URL)
	res, err := enroll.Enroll(ctx, &pb.EnrollRequest{Code: code, DeviceName: "first"})
	if err != nil {
		t.Fatal(err)
	}
	// The server keeps hashes only: neither the code nor the token's
	// secret is anywhere in its files.
	_, secret, _ := strings.Cut(res.GetToken(), ".")
	for _, s := range []string{secret, code, strings.ReplaceAll(code, "-", ""), e.adminToken[strings.Index(e.adminToken, ".")+1:]} {
		if len(s) < 12 || e.serverHolds(t, s) {
			t.Fatalf("the server's database holds a secret in the clear (or the secret is too short): %q", s)
		}
	}
	// The same code again, also written the way people type it.
	for _, again := range []string{code, strings.ToLower(strings.ReplaceAll(code, "-", " "))} {
		if _, err := enroll.Enroll(ctx, &pb.EnrollRequest{Code: again, DeviceName: "second"}); connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("a used code %q: %v, want Unauthenticated", again, err)
		}
	}
	short, err := e.Admin.CreateEnrollmentCode(ctx, &pb.CreateEnrollmentCodeRequest{WorkerId: workerID, TtlSeconds: 60})
	if err != nil {
		t.Fatal(err)
	}
	e.now.Add(61 * time.Second)
	if _, err := enroll.Enroll(ctx, &pb.EnrollRequest{Code: short.GetCode(), DeviceName: "late"}); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("an expired code: %v, want Unauthenticated", err)
	}
	devs, err := e.Admin.ListDevices(ctx, &pb.ListDevicesRequest{WorkerId: workerID})
	if err != nil {
		t.Fatal(err)
	}
	if len(devs.GetDevices()) != 1 {
		t.Fatalf("%d devices enrolled, want 1", len(devs.GetDevices()))
	}
}

func TestFailedEnrolmentsAreThrottled(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 1)
	_, code := e.worker("Li", e.Grids[0])
	enroll := doorbookv1connect.NewEnrollmentServiceClient(http.DefaultClient, e.URL)
	for i := range server.DefaultEnrollFailures {
		_, err := enroll.Enroll(ctx, &pb.EnrollRequest{Code: "AAAA-BBBB-CCC" + string(rune('A'+i)), DeviceName: "guess"})
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("guess %d: %v, want Unauthenticated", i, err)
		}
	}
	// Past the limit even a right code waits: the guesser cannot tell.
	_, err := enroll.Enroll(ctx, &pb.EnrollRequest{Code: code, DeviceName: "guess"})
	if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "too many failed enrolments") {
		t.Fatalf("after %d failures: %v, want ResourceExhausted naming the limit", server.DefaultEnrollFailures, err)
	}
	// The SDK says so in its own terms.
	r, err := sdk.Open(ctx, t.TempDir()+"/r.db")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Enroll(ctx, e.URL, code, "phone"); !errors.Is(err, syncengine.ErrLimit) || !strings.Contains(err.Error(), "too many") {
		t.Fatalf("SDK enrol while throttled: %v", err)
	}
	// The window passes; the right code works and was not spent.
	e.now.Add(server.DefaultEnrollWindow)
	if err := r.Enroll(ctx, e.URL, code, "phone"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// TestEnrolmentThrottleIsShared: two server processes on one database
// share the budget of failures, so a guesser spreading its attempts over
// them gains nothing.
func TestEnrolmentThrottleIsShared(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 1)
	_, code := e.worker("Li", e.Grids[0])
	backend, err := e.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	other := httptest.NewServer(server.New(service.New(backend, service.WithClock(e.now.Now)), server.WithNow(e.now.Now)).Handler())
	defer other.Close()
	servers := []doorbookv1connect.EnrollmentServiceClient{
		doorbookv1connect.NewEnrollmentServiceClient(http.DefaultClient, e.URL),
		doorbookv1connect.NewEnrollmentServiceClient(http.DefaultClient, other.URL),
	}
	for i := range server.DefaultEnrollFailures {
		_, err := servers[i%2].Enroll(ctx, &pb.EnrollRequest{Code: "AAAA-BBBB-CCC" + string(rune('A'+i)), DeviceName: "guess"})
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("guess %d: %v, want Unauthenticated", i, err)
		}
	}
	for i, s := range servers {
		_, err := s.Enroll(ctx, &pb.EnrollRequest{Code: code, DeviceName: "guess"})
		if connect.CodeOf(err) != connect.CodeResourceExhausted {
			t.Fatalf("server %d after %d failures spread over both: %v, want ResourceExhausted", i, server.DefaultEnrollFailures, err)
		}
	}
	e.now.Add(server.DefaultEnrollWindow)
	if _, err := servers[1].Enroll(ctx, &pb.EnrollRequest{Code: code, DeviceName: "phone"}); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}
