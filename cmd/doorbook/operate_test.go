package main

// Operating the server: graceful drains of calls in flight, /metrics,
// readiness and liveness through `serve`, and traces exported over OTLP.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/server"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/sqlite"
	se "github.com/doorbook/doorbook/syncengine"
)

// gatedStore holds every bootstrap after its first page until gate is
// closed (or the call's context ends): a stream surely in flight.
type gatedStore struct {
	store.Store
	sent     chan struct{} // closed once a first page was sent
	sentOnce sync.Once
	gate     chan struct{}
	// cut is closed when a held bootstrap's context ended.
	cut     chan struct{}
	cutOnce sync.Once
}

func (g *gatedStore) Bootstrap(ctx context.Context, p store.Principal, req store.BootstrapRequest, fn func(*store.BootstrapPage) error) error {
	pages := 0
	return g.Store.Bootstrap(ctx, p, req, func(page *store.BootstrapPage) error {
		if err := fn(page); err != nil {
			return err
		}
		if pages++; pages == 1 {
			g.sentOnce.Do(func() { close(g.sent) })
			select {
			case <-g.gate:
			case <-ctx.Done():
				g.cutOnce.Do(func() { close(g.cut) })
				return ctx.Err()
			}
		}
		return nil
	})
}

// drainEnv is a server on a loopback port, through server.Serve as `serve`
// runs it, over a gated store, with a worker's device whose grid holds
// households.
type drainEnv struct {
	st     *gatedStore
	srv    *server.Server
	addr   string
	cancel context.CancelFunc
	// served is closed when Serve has returned serveErr.
	served   chan struct{}
	serveErr error
	sync     doorbookv1connect.SyncServiceClient
}

const drainHouseholds = 6

func newDrainEnv(t *testing.T, protocol string, drainTimeout time.Duration) *drainEnv {
	t.Helper()
	ctx := t.Context()
	backend, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	e := &drainEnv{
		st:     &gatedStore{Store: service.New(backend), sent: make(chan struct{}), gate: make(chan struct{}), cut: make(chan struct{})},
		served: make(chan struct{}),
	}
	e.srv = server.New(e.st)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = l.Addr().String()
	serveCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() {
		defer close(e.served)
		e.serveErr = server.Serve(serveCtx, l, e.srv.Handler(), server.WithDrainTimeout(drainTimeout), server.WithDrain(e.srv.Drain))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-e.st.gate:
		default:
			close(e.st.gate)
		}
		select {
		case <-e.served:
		case <-time.After(time.Minute):
			t.Error("Serve did not return within a minute of the test's end")
		}
		e.st.Close()
	})

	url := "http://" + e.addr
	_, adminToken, err := e.st.CreateAdmin(ctx, "root", "")
	if err != nil {
		t.Fatal(err)
	}
	setup := &http.Client{}
	t.Cleanup(setup.CloseIdleConnections)
	admin := doorbookv1connect.NewAdminServiceClient(setup, url, connect.WithInterceptors(bearer.Token(adminToken)))
	parent := ""
	for _, level := range []pb.OrgLevel{pb.OrgLevel_ORG_LEVEL_DISTRICT, pb.OrgLevel_ORG_LEVEL_STREET, pb.OrgLevel_ORG_LEVEL_COMMUNITY, pb.OrgLevel_ORG_LEVEL_GRID} {
		res, err := admin.CreateOrgNode(ctx, &pb.CreateOrgNodeRequest{ParentId: parent, Level: level, Name: level.String()})
		if err != nil {
			t.Fatal(err)
		}
		parent = res.GetNode().GetId()
	}
	grid := parent
	w, err := admin.CreateWorker(ctx, &pb.CreateWorkerRequest{Name: "worker", Role: pb.WorkerRole_WORKER_ROLE_GRID_WORKER, GridIds: []string{grid}})
	if err != nil {
		t.Fatal(err)
	}
	code, err := admin.CreateEnrollmentCode(ctx, &pb.CreateEnrollmentCodeRequest{WorkerId: w.GetWorker().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	enrolled, err := doorbookv1connect.NewEnrollmentServiceClient(setup, url).Enroll(ctx, &pb.EnrollRequest{Code: code.GetCode(), DeviceName: "phone"})
	if err != nil {
		t.Fatal(err)
	}
	client, opts := protocolOptions(protocol)
	if tr, ok := client.Transport.(*http.Transport); ok {
		t.Cleanup(tr.CloseIdleConnections)
	}
	opts = append(opts, connect.WithInterceptors(bearer.Token(enrolled.GetToken())))
	e.sync = doorbookv1connect.NewSyncServiceClient(client, url, opts...)
	var changes []*pb.Change
	for i := range drainHouseholds {
		clock := &pb.Clock{Hlc: se.PackHLC(time.Now().UnixMilli(), uint16(i+1)), Node: 7}
		changes = append(changes, &pb.Change{Id: uuid.NewString(), Payload: &pb.Change_Household{Household: &pb.Household{
			Id: uuid.NewString(), GridId: &pb.StringField{Value: grid, Clock: clock}, HeadName: &pb.StringField{Value: "户主", Clock: clock},
		}}})
	}
	if _, err := e.sync.Push(ctx, &pb.PushRequest{Changes: changes}); err != nil {
		t.Fatal(err)
	}
	return e
}

// readyStatus asks the server's handler, not its closed port, for /readyz.
func (e *drainEnv) readyStatus() int {
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code
}

// eventually polls cond for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDrainFinishesStreams: a bootstrap streaming when the server is told
// to stop completes, whole, while the server is no longer ready and takes
// no new connection; then Serve returns cleanly.
func TestDrainFinishesStreams(t *testing.T) {
	t.Parallel()
	for _, protocol := range []string{"connect", "grpc"} {
		t.Run(protocol, func(t *testing.T) {
			t.Parallel()
			e := newDrainEnv(t, protocol, time.Minute)
			if got := e.readyStatus(); got != http.StatusOK {
				t.Fatalf("/readyz before the stop = %d", got)
			}
			stream, err := e.sync.Bootstrap(t.Context(), &pb.BootstrapRequest{PageSize: 1})
			if err != nil {
				t.Fatal(err)
			}
			if !stream.Receive() {
				t.Fatalf("first bootstrap page: %v", stream.Err())
			}
			households := len(stream.Msg().GetHouseholds())
			<-e.st.sent

			e.cancel() // SIGTERM
			eventually(t, "/readyz turns 503", func() bool { return e.readyStatus() == http.StatusServiceUnavailable })
			eventually(t, "new connections refused", func() bool {
				c, err := net.DialTimeout("tcp", e.addr, time.Second)
				if err == nil {
					c.Close()
				}
				return err != nil
			})
			if _, err := e.sync.Pull(t.Context(), &pb.PullRequest{}); connect.CodeOf(err) != connect.CodeUnavailable {
				t.Errorf("a new call while draining: %v, want Unavailable", err)
			}
			select {
			case <-e.served:
				t.Fatalf("Serve returned with a stream in flight: %v", e.serveErr)
			default:
			}

			close(e.st.gate)
			for stream.Receive() {
				households += len(stream.Msg().GetHouseholds())
			}
			if err := errors.Join(stream.Err(), stream.Close()); err != nil {
				t.Fatalf("the stream in flight was cut: %v", err)
			}
			if households != drainHouseholds {
				t.Errorf("bootstrap sent %d households, want %d", households, drainHouseholds)
			}
			select {
			case <-e.served:
				if e.serveErr != nil {
					t.Errorf("Serve after a clean drain: %v", e.serveErr)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Serve did not return once the last stream ended")
			}
		})
	}
}

// TestDrainTimeout: a stream still running at the drain timeout is cut:
// its handler's context ends, and Serve says so.
func TestDrainTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	e := newDrainEnv(t, "grpc", timeout)
	stream, err := e.sync.Bootstrap(t.Context(), &pb.BootstrapRequest{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !stream.Receive() {
		t.Fatalf("first bootstrap page: %v", stream.Err())
	}
	start := time.Now()
	e.cancel()
	select {
	case <-e.served:
		if err := e.serveErr; err == nil || !strings.Contains(err.Error(), "drain") {
			t.Errorf("Serve after a drain that timed out = %v, want an error saying so", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after the drain timeout")
	}
	if d := time.Since(start); d < timeout {
		t.Errorf("Serve returned after %v, before the drain timeout %v", d, timeout)
	}
	select {
	case <-e.st.cut:
	default:
		t.Error("the held bootstrap's context did not end")
	}
	for stream.Receive() {
	}
	if stream.Err() == nil {
		t.Error("a cut stream ended without an error")
	}
	stream.Close()
}

// serveProcess is `doorbook serve` on an empty database, run in-process.
type serveProcess struct {
	url    string
	token  string
	stderr *lockedBuffer
	stop   func() error
}

func startServe(t *testing.T, flags ...string) *serveProcess {
	t.Helper()
	db := filepath.Join(t.TempDir(), "s.db")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	p := &serveProcess{stderr: &lockedBuffer{}}
	done := make(chan error, 1)
	args := append([]string{"serve", "--db", db, "--addr", "127.0.0.1:0", "--json", "--log-format", "json"}, flags...)
	go func() {
		err := run(ctx, args, pw, p.stderr)
		pw.Close()
		done <- err
	}()
	var once sync.Once
	var stopErr error
	p.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = errors.New("serve did not return within 30s of its context ending")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		_ = p.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", p.stderr.String())
		}
	})
	var sum serveSummary
	dec := json.NewDecoder(pr)
	if err := dec.Decode(&sum); err != nil {
		t.Fatalf("serve summary: %v\nlog:\n%s", err, p.stderr.String())
	}
	go io.Copy(io.Discard, pr)
	creds, err := readCredentials(sum.Credentials)
	if err != nil {
		t.Fatal(err)
	}
	p.url, p.token = sum.Server, creds.AdminToken
	return p
}

func (p *serveProcess) get(t *testing.T, path string) (int, string) {
	t.Helper()
	var res *http.Response
	var err error
	eventually(t, "GET "+path, func() bool {
		res, err = http.Get(p.url + path)
		return err == nil
	})
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

func TestServeOperatingEndpoints(t *testing.T) {
	t.Parallel()
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		p := startServe(t)
		if status, body := p.get(t, "/healthz"); status != http.StatusOK {
			t.Errorf("/healthz = %d %q", status, body)
		}
		if status, body := p.get(t, "/readyz"); status != http.StatusOK {
			t.Errorf("/readyz = %d %q", status, body)
		}
		admin := doorbookv1connect.NewAdminServiceClient(http.DefaultClient, p.url, connect.WithInterceptors(bearer.Token(p.token)))
		if _, err := admin.CreateOrgNode(t.Context(), &pb.CreateOrgNodeRequest{Level: pb.OrgLevel_ORG_LEVEL_DISTRICT, Name: "D"}); err != nil {
			t.Fatal(err)
		}
		status, body := p.get(t, "/metrics")
		if status != http.StatusOK {
			t.Fatalf("/metrics = %d", status)
		}
		for _, want := range []string{
			`doorbook_rpc_calls_total{code="ok",procedure="/doorbook.v1.AdminService/CreateOrgNode"} 1`,
			// Read from the backend (serve wires it): the org node took no
			// feed position, but the gauge is there.
			"doorbook_feed_head ",
			// No device has called yet; the admin's token is not one.
			"doorbook_devices_seen 0",
			`doorbook_db_max_open_connections{pool="write"} 1`,
			"go_goroutines ",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})
	t.Run("metrics off", func(t *testing.T) {
		t.Parallel()
		p := startServe(t, "--metrics=false", "--drain-timeout", "5s")
		if status, _ := p.get(t, "/metrics"); status != http.StatusNotFound {
			t.Errorf("/metrics with --metrics=false = %d, want 404", status)
		}
		if status, _ := p.get(t, "/readyz"); status != http.StatusOK {
			t.Errorf("/readyz = %d", status)
		}
		if err := p.stop(); err != nil {
			t.Errorf("serve stopped with %v", err)
		}
	})
	t.Run("bad drain timeout", func(t *testing.T) {
		t.Parallel()
		_, _, err := doorbook(t, "serve", "--db", filepath.Join(t.TempDir(), "x.db"), "--drain-timeout", "0s")
		if !errors.Is(err, errUsage) {
			t.Errorf("serve --drain-timeout 0s: %v, want a usage error", err)
		}
	})
}

func TestTracingEnabled(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		flag, set bool
		env       map[string]string
		want      bool
	}{
		{name: "nothing", want: false},
		{name: "flag", flag: true, set: true, want: true},
		{name: "endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, want: true},
		{name: "traces endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, want: true},
		{name: "exporter otlp", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, want: true},
		{name: "exporter list", env: map[string]string{"OTEL_TRACES_EXPORTER": "console, otlp"}, want: true},
		{name: "exporter none beats endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, want: false},
		{name: "sdk disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, want: false},
		{name: "flag off beats env", set: true, env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, want: false},
		{name: "flag on beats sdk disabled", flag: true, set: true, env: map[string]string{"OTEL_SDK_DISABLED": "true"}, want: true},
	} {
		got, err := tracingEnabled(c.flag, c.set, func(k string) string { return c.env[k] })
		if err != nil || got != c.want {
			t.Errorf("%s: tracingEnabled = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
}

// otlpReceiver collects the spans OTLP exporters send it, over HTTP
// (/v1/traces) or gRPC.
type otlpReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans map[string]string // span name → the resource's service.name
}

func (r *otlpReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans[s.GetName()] = service
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	msg := &coltracepb.ExportTraceServiceRequest{}
	if err == nil {
		err = proto.Unmarshal(body, msg)
	}
	if err != nil || req.URL.Path != "/v1/traces" {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	res, _ := r.Export(req.Context(), msg)
	out, _ := proto.Marshal(res)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (r *otlpReceiver) service(span string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.spans[span]
	return s, ok
}

// TestServeExportsTraces: with the standard OTLP environment set, serve
// exports a span of each call to the collector, over gRPC (the default)
// and HTTP, and sends what it batched when it stops. (Not parallel: it
// sets the process's environment.)
func TestServeExportsTraces(t *testing.T) {
	for _, protocol := range []string{"grpc", "http/protobuf"} {
		t.Run(strings.ReplaceAll(protocol, "/", "-"), func(t *testing.T) {
			recv := &otlpReceiver{spans: map[string]string{}}
			var endpoint string
			if protocol == "grpc" {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				gs := grpc.NewServer()
				coltracepb.RegisterTraceServiceServer(gs, recv)
				go gs.Serve(l)
				t.Cleanup(gs.Stop)
				endpoint = "http://" + l.Addr().String()
			} else {
				hs := httptest.NewServer(recv)
				t.Cleanup(hs.Close)
				endpoint = hs.URL
				t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
			}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
			t.Setenv("OTEL_SERVICE_NAME", "doorbook-under-test")
			p := startServe(t) // no --tracing: the environment turns it on
			admin := doorbookv1connect.NewAdminServiceClient(http.DefaultClient, p.url, connect.WithInterceptors(bearer.Token(p.token)))
			if _, err := admin.ListWorkers(t.Context(), &pb.ListWorkersRequest{}); err != nil {
				t.Fatal(err)
			}
			if err := p.stop(); err != nil {
				t.Fatalf("serve: %v", err)
			}
			const span = "doorbook.v1.AdminService/ListWorkers"
			service, ok := recv.service(span)
			if !ok {
				t.Fatalf("the collector got no span %q; log:\n%s", span, p.stderr.String())
			}
			if service != "doorbook-under-test" {
				t.Errorf("span's service.name = %q, want OTEL_SERVICE_NAME's", service)
			}
		})
	}
}
