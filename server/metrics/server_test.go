package metrics_test

// The metrics as the server serves them: a real server over a SQLite file,
// called through the generated clients over loopback HTTP.

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/server"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/sqlite"
	se "github.com/doorbook/doorbook/syncengine"
)

// world is a server with an org tree, an admin, and one enrolled worker's
// device whose grid is empty.
type world struct {
	st     store.Store
	srv    *server.Server
	url    string
	client *http.Client
	admin  doorbookv1connect.AdminServiceClient
	// workerAdmin is the worker's device calling the admin API.
	workerAdmin doorbookv1connect.AdminServiceClient
	sync        doorbookv1connect.SyncServiceClient
	token       string
	anonSync    doorbookv1connect.SyncServiceClient
	grid        string
	seq         uint16
}

func newWorld(t *testing.T, opts ...server.Option) *world {
	t.Helper()
	ctx := t.Context()
	backend, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	w := &world{st: service.New(backend)}
	w.srv = server.New(w.st, opts...)
	hs := httptest.NewServer(w.srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		w.st.Close()
	})
	w.url, w.client = hs.URL, hs.Client()
	_, adminToken, err := w.st.CreateAdmin(ctx, "root", "")
	if err != nil {
		t.Fatal(err)
	}
	w.admin = doorbookv1connect.NewAdminServiceClient(w.client, w.url, connect.WithInterceptors(bearer.Token(adminToken)))
	node := func(parent string, level pb.OrgLevel, name string) string {
		res, err := w.admin.CreateOrgNode(ctx, &pb.CreateOrgNodeRequest{ParentId: parent, Level: level, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetNode().GetId()
	}
	district := node("", pb.OrgLevel_ORG_LEVEL_DISTRICT, "District")
	street := node(district, pb.OrgLevel_ORG_LEVEL_STREET, "Street")
	community := node(street, pb.OrgLevel_ORG_LEVEL_COMMUNITY, "Community")
	w.grid = node(community, pb.OrgLevel_ORG_LEVEL_GRID, "Grid A")
	worker, err := w.admin.CreateWorker(ctx, &pb.CreateWorkerRequest{Name: "worker", Role: pb.WorkerRole_WORKER_ROLE_GRID_WORKER, GridIds: []string{w.grid}})
	if err != nil {
		t.Fatal(err)
	}
	code, err := w.admin.CreateEnrollmentCode(ctx, &pb.CreateEnrollmentCodeRequest{WorkerId: worker.GetWorker().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	enrolled, err := doorbookv1connect.NewEnrollmentServiceClient(w.client, w.url).Enroll(ctx, &pb.EnrollRequest{Code: code.GetCode(), DeviceName: "phone"})
	if err != nil {
		t.Fatal(err)
	}
	w.token = enrolled.GetToken()
	token := connect.WithInterceptors(bearer.Token(w.token))
	w.sync = doorbookv1connect.NewSyncServiceClient(w.client, w.url, token)
	w.workerAdmin = doorbookv1connect.NewAdminServiceClient(w.client, w.url, token)
	w.anonSync = doorbookv1connect.NewSyncServiceClient(w.client, w.url)
	return w
}

// households makes n changes registering new households in the grid.
func (w *world) households(n int) []*pb.Change {
	out := make([]*pb.Change, n)
	for i := range out {
		w.seq++
		clock := &pb.Clock{Hlc: se.PackHLC(time.Now().UnixMilli(), w.seq), Node: 7}
		out[i] = &pb.Change{Id: uuid.NewString(), Payload: &pb.Change_Household{Household: &pb.Household{
			Id: uuid.NewString(), GridId: &pb.StringField{Value: w.grid, Clock: clock},
			HeadName: &pb.StringField{Value: "张三", Clock: clock},
		}}}
	}
	return out
}

// get GETs path and returns the status and body.
func (w *world) get(t *testing.T, path string) (int, string) {
	t.Helper()
	res, err := w.client.Get(w.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// drain receives a server stream to its end and returns its error.
func drain[T any](stream *connect.ServerStreamForClient[T], err error) error {
	if err != nil {
		return err
	}
	for stream.Receive() {
	}
	if err := stream.Err(); err != nil {
		return err
	}
	return stream.Close()
}

const (
	pushProc      = "/doorbook.v1.SyncService/Push"
	pullProc      = "/doorbook.v1.SyncService/Pull"
	bootstrapProc = "/doorbook.v1.SyncService/Bootstrap"
	listProc      = "/doorbook.v1.AdminService/ListWorkers"
)

// TestServerMetrics makes calls that succeed and fail in each way the API
// fails, and reads what /metrics counted.
func TestServerMetrics(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	w := newWorld(t, server.WithMetricsSources(feedOnly{}))
	before := scrape(t, w.client, w.url+"/metrics")
	delta := func(after families, name string, labels ...string) float64 {
		b, _ := before.get(name, labels...)
		return after.value(t, name, labels...) - b
	}

	changes := w.households(3)
	if _, err := w.sync.Push(ctx, &pb.PushRequest{Changes: changes}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.sync.Push(ctx, &pb.PushRequest{Changes: changes}); err != nil { // sent again: duplicates
		t.Fatal(err)
	}
	if _, err := w.sync.Pull(ctx, &pb.PullRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := drain(w.sync.Bootstrap(ctx, &pb.BootstrapRequest{PageSize: 2})); err != nil {
		t.Fatal(err)
	}
	// A worker's device calling the admin API: refused before the handler
	// (intake authenticates and authorises from the headers).
	if _, err := w.workerAdmin.ListWorkers(ctx, &pb.ListWorkersRequest{}); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("worker listing workers: %v, want PermissionDenied", err)
	}
	if _, err := w.anonSync.Pull(ctx, &pb.PullRequest{}); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("pull without a token: %v, want Unauthenticated", err)
	}
	// Refused by the handler itself.
	if err := drain(w.sync.Bootstrap(ctx, &pb.BootstrapRequest{GridIds: []string{"not-a-uuid"}})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("bootstrap of a bad grid id: %v, want InvalidArgument", err)
	}

	after := scrape(t, w.client, w.url+"/metrics")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"doorbook_rpc_calls_total", []string{"procedure", pushProc, "code", "ok"}, 2},
		{"doorbook_rpc_calls_total", []string{"procedure", pullProc, "code", "ok"}, 1},
		{"doorbook_rpc_calls_total", []string{"procedure", bootstrapProc, "code", "ok"}, 1},
		{"doorbook_rpc_calls_total", []string{"procedure", bootstrapProc, "code", "invalid_argument"}, 1},
		{"doorbook_rpc_calls_total", []string{"procedure", listProc, "code", "permission_denied"}, 1},
		{"doorbook_rpc_calls_total", []string{"procedure", pullProc, "code", "unauthenticated"}, 1},
		{"doorbook_rpc_errors_total", []string{"code", "permission_denied"}, 1},
		{"doorbook_rpc_errors_total", []string{"code", "unauthenticated"}, 1},
		{"doorbook_rpc_errors_total", []string{"code", "invalid_argument"}, 1},
		{"doorbook_rpc_duration_seconds", []string{"procedure", pushProc}, 2},
		{"doorbook_rpc_duration_seconds", []string{"procedure", bootstrapProc}, 2},
		{"doorbook_rows_pushed_total", []string{"result", "applied"}, 3},
		{"doorbook_rows_pushed_total", []string{"result", "duplicate"}, 3},
		{"doorbook_rows_pulled_total", []string{"procedure", pullProc}, 3},
		{"doorbook_rows_pulled_total", []string{"procedure", bootstrapProc}, 3},
	} {
		if got := delta(after, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v went up by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := after.value(t, "doorbook_rpc_in_flight", "procedure", bootstrapProc); got != 0 {
		t.Errorf("bootstraps in flight after they ended: %v", got)
	}
	if got := after.value(t, "doorbook_feed_head"); got != 99 {
		t.Errorf("feed head = %v, want the source's 99", got)
	}
	// One device called (the admin's token is not a device).
	if got := after.value(t, "doorbook_devices_seen"); got != 1 {
		t.Errorf("devices seen = %v, want 1", got)
	}
	// It enrolled just now: not silent.
	if got := after.value(t, "doorbook_devices_silent"); got != 0 {
		t.Errorf("devices silent = %v, want 0", got)
	}
	// The service has no pool statistics (the backend has, and serve adds
	// it as a source): the gauges are left out rather than made up.
	if _, ok := after["doorbook_db_open_connections"]; ok {
		t.Error("doorbook_db_open_connections served by a store that cannot tell it")
	}
	if _, ok := after.get("process_resident_memory_bytes"); !ok {
		t.Error("no process metrics")
	}
	// Only GET: /metrics is not an API for writing.
	res, err := w.client.Post(w.url+"/metrics", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %s, want 405", res.Status)
	}
}

func TestMetricsOff(t *testing.T) {
	t.Parallel()
	w := newWorld(t, server.WithMetrics(false))
	if status, _ := w.get(t, "/metrics"); status != http.StatusNotFound {
		t.Errorf("GET /metrics with metrics off: %d, want 404", status)
	}
	if _, err := w.sync.Push(t.Context(), &pb.PushRequest{Changes: w.households(1)}); err != nil {
		t.Errorf("push with metrics off: %v", err)
	}
}

// TestReadiness: /healthz says the process runs; /readyz that it takes
// calls, which it stops saying when it drains or its database is gone.
func TestReadiness(t *testing.T) {
	t.Parallel()
	t.Run("drain", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		if status, body := w.get(t, "/readyz"); status != http.StatusOK || body != "ok\n" {
			t.Errorf("/readyz = %d %q, want 200 ok", status, body)
		}
		w.srv.Drain()
		if status, body := w.get(t, "/readyz"); status != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
			t.Errorf("/readyz while draining = %d %q, want 503 shutting down", status, body)
		}
		if status, _ := w.get(t, "/healthz"); status != http.StatusOK {
			t.Errorf("/healthz while draining = %d, want 200", status)
		}
	})
	t.Run("database closed", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		if err := w.st.Close(); err != nil {
			t.Fatal(err)
		}
		status, body := w.get(t, "/readyz")
		if status != http.StatusServiceUnavailable || !strings.Contains(body, "database") {
			t.Errorf("/readyz with the database closed = %d %q, want 503 naming the database", status, body)
		}
		if len(body) > 80 {
			t.Errorf("/readyz says too much to a caller without a token: %q", body)
		}
		if status, body := w.get(t, "/healthz"); status != http.StatusOK || body != "ok\n" {
			t.Errorf("/healthz = %d %q, want 200 ok: the process still runs", status, body)
		}
	})
	t.Run("methods", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		res, err := w.client.Post(w.url+"/readyz", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST /readyz: %s, want 405", res.Status)
		}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodHead, w.url+"/healthz", nil)
		res, err = w.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("HEAD /healthz: %s, want 200", res.Status)
		}
	})
}

// TestTracing: with a tracer provider, every call is a server span named
// after its procedure, whose status tells failures; a caller's trace
// context is linked, not trusted as the parent.
func TestTracing(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	w := newWorld(t, server.WithTracerProvider(tp))
	spans.Reset() // the set-up's calls

	// The caller sends W3C trace context of its own.
	caller := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	inject := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, r connect.AnyRequest) (connect.AnyResponse, error) {
			propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(r.Header()))
			return next(ctx, r)
		}
	})
	traced := doorbookv1connect.NewSyncServiceClient(w.client, w.url, connect.WithInterceptors(bearer.Token(w.token), inject))
	if _, err := traced.Pull(trace.ContextWithSpanContext(t.Context(), caller), &pb.PullRequest{}); err != nil {
		t.Fatal(err)
	}
	if err := drain(w.sync.Bootstrap(t.Context(), &pb.BootstrapRequest{GridIds: []string{"bad"}})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("bootstrap of a bad grid: %v", err)
	}

	got := spans.GetSpans()
	byName := map[string]tracetest.SpanStub{}
	for _, s := range got {
		byName[s.Name] = s
	}
	pull, ok := byName["doorbook.v1.SyncService/Pull"]
	if !ok {
		t.Fatalf("no span of the pull; spans: %v", names(got))
	}
	if pull.SpanKind != trace.SpanKindServer {
		t.Errorf("pull span kind %v, want server", pull.SpanKind)
	}
	if pull.SpanContext.TraceID() == caller.TraceID() || pull.Parent.IsValid() {
		t.Errorf("the caller's span was trusted as the parent: trace %v, parent %v", pull.SpanContext.TraceID(), pull.Parent)
	}
	if len(pull.Links) != 1 || pull.Links[0].SpanContext.SpanID() != caller.SpanID() {
		t.Errorf("pull span links %v, want the caller's span", pull.Links)
	}
	boot, ok := byName["doorbook.v1.SyncService/Bootstrap"]
	if !ok {
		t.Fatalf("no span of the bootstrap; spans: %v", names(got))
	}
	// A caller's mistake is not the server's error (the span's status
	// stays unset, as OpenTelemetry's conventions have it) but is named.
	var errType string
	for _, a := range boot.Attributes {
		if a.Key == "error.type" {
			errType = a.Value.AsString()
		}
	}
	if errType != "INVALID_ARGUMENT" || boot.Status.Code == codes.Error {
		t.Errorf("failed bootstrap's span: error.type %q, status %v; want INVALID_ARGUMENT, not an error of the server", errType, boot.Status)
	}
}

func names(spans tracetest.SpanStubs) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}
