package e2e

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/reflect/protoreflect"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/demo"
	"github.com/doorbook/doorbook/syncengine"
)

// TestHealthAndReflection: off-the-shelf gRPC tooling (grpcurl, buf curl)
// finds the services by reflection and checks health, over gRPC (h2c).
func TestHealthAndReflection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 0)
	health := grpchealth.NewClient(h2cClient(), e.URL, connect.WithGRPC())
	for _, svc := range []string{"", doorbookv1connect.SyncServiceName, doorbookv1connect.AdminServiceName} {
		res, err := health.Check(ctx, &grpchealth.CheckRequest{Service: svc})
		if err != nil || res.Status != grpchealth.StatusServing {
			t.Errorf("health of %q: %v, %v", svc, res, err)
		}
	}
	stream := grpcreflect.NewClient(h2cClient(), e.URL, connect.WithGRPC()).NewStream(ctx)
	defer stream.Close()
	names, err := stream.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []protoreflect.FullName{doorbookv1connect.SyncServiceName, doorbookv1connect.EnrollmentServiceName, doorbookv1connect.AdminServiceName} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
	files, err := stream.FileContainingSymbol(doorbookv1connect.SyncServiceName)
	if err != nil || len(files) == 0 {
		t.Errorf("reflection could not describe %s: %v", doorbookv1connect.SyncServiceName, err)
	}
}

// TestSyncLoopAndProgress: RunSync syncs when triggered and reports each
// result; progress callbacks follow a bootstrap to its total.
func TestSyncLoopAndProgress(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEnv(t, 1)
	admin, err := e.Store.Authenticate(ctx, e.adminToken)
	if err != nil {
		t.Fatal(err)
	}
	gen := demo.NewGenerator(3, time.Now().Add(-time.Hour))
	if err := e.Store.Import(ctx, admin, gen.Grid(e.Grids[0], demo.Shape{HouseholdsPerGrid: 250, PersonsPerHousehold: 1}, "", "")); err != nil {
		t.Fatal(err)
	}
	w, _ := e.worker("li", e.Grids[0])
	var mu sync.Mutex
	var progress []sdk.Progress
	r := e.device("li", w, sdk.WithProgress(func(p sdk.Progress) {
		mu.Lock()
		defer mu.Unlock()
		progress = append(progress, p)
	}))

	trigger := make(chan struct{})
	results := make(chan error, 10)
	done := make(chan error, 1)
	go func() {
		done <- r.RunSync(ctx, sdk.LoopOptions{Interval: time.Hour, Trigger: trigger, OnResult: func(_ sdk.SyncReport, err error) { results <- err }})
	}()
	if err := <-results; err != nil { // the first sync runs at once
		t.Fatalf("first sync: %v", err)
	}
	mu.Lock()
	var boot []sdk.Progress
	for _, p := range progress {
		if p.Phase == "bootstrap" {
			boot = append(boot, p)
		}
	}
	mu.Unlock()
	if len(boot) < 2 || boot[len(boot)-1].Done != 250 || boot[len(boot)-1].Total != 250 {
		t.Errorf("bootstrap progress %v, want several steps ending at 250/250", boot)
	}

	h, err := r.RegisterHousehold(ctx, e.Grids[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	trigger <- struct{}{} // an app triggers a sync after a write
	if err := <-results; err != nil {
		t.Fatalf("triggered sync: %v", err)
	}
	if n, _ := r.Pending(ctx); n != 0 {
		t.Errorf("pending = %d after the triggered sync", n)
	}
	got := e.serverState(e.Grids[0])
	if len(got.Households) != 251 || !slices.ContainsFunc(got.Households, func(x syncengine.Household) bool { return x.ID == h }) {
		t.Errorf("server has %d households, want 251 with %s", len(got.Households), h)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("RunSync returned %v, want context.Canceled", err)
	}
}
