package intake_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/compress"
	"github.com/doorbook/doorbook/internal/hostile"
	"github.com/doorbook/doorbook/server/intake"
)

const (
	pushPath = doorbookv1connect.SyncServicePushProcedure
	pullPath = doorbookv1connect.SyncServicePullProcedure
	// deepPath is an RPC taking a google.protobuf.Value, a message that
	// nests in itself (Value, ListValue, Value...): the Doorbook protos have
	// none.
	deepPath   = "/test.v1.DeepService/Echo"
	healthPath = "/grpc.health.v1.Health/Check"
	goodToken  = "good"
	deviceID   = "device-1"
	// success is the code checkErr takes for "no error".
	success connect.Code = 0
)

type deviceKey struct{}

// syncService answers Push with the number of changes it decoded. A push
// whose first change's id is "hold" tells held it has started and waits
// until hold is closed, keeping what intake charged it to the budget.
type syncService struct {
	doorbookv1connect.UnimplementedSyncServiceHandler
	held chan struct{}
	hold chan struct{}
}

func (s *syncService) Push(ctx context.Context, req *pb.PushRequest) (*pb.PushResponse, error) {
	if got := ctx.Value(deviceKey{}); got != deviceID {
		return nil, connect.NewError(connect.CodeInternal, errors.New("the handler does not run with the context Authenticate returned"))
	}
	if c := req.GetChanges(); len(c) > 0 && c[0].GetId() == "hold" {
		s.held <- struct{}{}
		select {
		case <-s.hold:
		case <-ctx.Done():
			return nil, connect.NewError(connect.CodeCanceled, ctx.Err())
		}
	}
	return &pb.PushResponse{Applied: uint32(len(req.GetChanges()))}, nil
}

func (s *syncService) Pull(_ context.Context, req *pb.PullRequest) (*pb.PullResponse, error) {
	return &pb.PullResponse{Cursor: req.GetCursor() + 1}, nil
}

// Bootstrap answers with one message telling what it was asked.
func (s *syncService) Bootstrap(ctx context.Context, req *pb.BootstrapRequest, stream *connect.ServerStream[pb.BootstrapResponse]) error {
	if got := ctx.Value(deviceKey{}); got != deviceID {
		return connect.NewError(connect.CodeInternal, errors.New("the handler does not run with the context Authenticate returned"))
	}
	return stream.Send(&pb.BootstrapResponse{TotalHouseholds: uint32(len(req.GetGridIds())), LastHouseholdId: req.GetAfterHouseholdId()})
}

// testServer is intake in front of real Connect handlers, on loopback,
// speaking HTTP/1.1 and HTTP/2 without TLS.
type testServer struct {
	url    string
	guard  *intake.Guard
	sync   *syncService
	h1, h2 *http.Client
	// active counts requests inside the guard, deferred releases included.
	active      sync.WaitGroup
	releaseOnce sync.Once

	mu      sync.Mutex
	authed  []string       // procedures the Authenticate hook saw
	refused []connect.Code // codes the Refused hook was told of
}

// procedures are the sync service's RPCs and deepPath, for intake; those
// named in public need no credentials.
func procedures(public ...string) map[string]intake.Procedure {
	out := map[string]intake.Procedure{}
	svc := pb.File_doorbook_v1_sync_proto.Services().ByName("SyncService")
	for i := range svc.Methods().Len() {
		m := svc.Methods().Get(i)
		path := "/" + string(svc.FullName()) + "/" + string(m.Name())
		out[path] = intake.Procedure{Public: slices.Contains(public, path), Input: m.Input()}
	}
	out[deepPath] = intake.Procedure{Input: (&structpb.Value{}).ProtoReflect().Descriptor()}
	return out
}

func newServer(tb testing.TB, cfg intake.Config) *testServer {
	tb.Helper()
	ts := &testServer{sync: &syncService{held: make(chan struct{}, 1), hold: make(chan struct{})}}
	mux := http.NewServeMux()
	mux.Handle(doorbookv1connect.NewSyncServiceHandler(ts.sync, compress.HandlerOptions()))
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(doorbookv1connect.SyncServiceName)))
	mux.Handle(deepPath, connect.NewUnaryHandler(deepPath,
		func(_ context.Context, req *connect.Request[structpb.Value]) (*connect.Response[structpb.Value], error) {
			return connect.NewResponse(structpb.NewNumberValue(float64(depthOf(req.Msg)))), nil
		}))
	if cfg.Procedures == nil {
		cfg.Procedures = procedures()
	}
	if cfg.Authenticate == nil {
		cfg.Authenticate = ts.authenticate
	}
	cfg.Refused = func(_ *http.Request, _ string, err *connect.Error) {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		ts.refused = append(ts.refused, err.Code())
	}
	ts.guard = intake.New(mux, cfg)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.active.Add(1)
		defer ts.active.Done()
		ts.guard.ServeHTTP(w, r)
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	tb.Cleanup(srv.Close)
	ts.url = srv.URL
	ts.h1 = &http.Client{Transport: &http.Transport{}}
	tr := &http.Transport{}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetUnencryptedHTTP2(true)
	ts.h2 = &http.Client{Transport: tr}
	// Cleanups run last first: held pushes end before srv.Close waits
	// for them.
	tb.Cleanup(func() {
		ts.release()
		ts.h1.CloseIdleConnections()
		ts.h2.CloseIdleConnections()
	})
	return ts
}

// authenticate lets "Bearer good" in, with the device in the context.
func (ts *testServer) authenticate(ctx context.Context, procedure string, r *http.Request) (context.Context, error) {
	ts.mu.Lock()
	ts.authed = append(ts.authed, procedure)
	ts.mu.Unlock()
	switch r.Header.Get("Authorization") {
	case "Bearer " + goodToken:
		return context.WithValue(ctx, deviceKey{}, deviceID), nil
	case "":
		return nil, errors.New("no token") // not a connect error: Unauthenticated
	case "Bearer revoked":
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("this device was revoked"))
	}
	return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("unknown token"))
}

func (ts *testServer) release() { ts.releaseOnce.Do(func() { close(ts.sync.hold) }) }

func (ts *testServer) authedPaths() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.Clone(ts.authed)
}

func (ts *testServer) refusedCodes() []connect.Code {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.Clone(ts.refused)
}

// quiesce waits until every request has left the guard.
func (ts *testServer) quiesce() { ts.active.Wait() }

// protocol is a way to call the server.
type protocol struct {
	name string
	h2   bool
	opts []connect.ClientOption
}

func protocols() []protocol {
	return []protocol{
		{name: "connect"},
		{name: "grpc", h2: true, opts: []connect.ClientOption{connect.WithGRPC()}},
		{name: "grpcweb", opts: []connect.ClientOption{connect.WithGRPCWeb()}},
	}
}

func (ts *testServer) client(p protocol) *http.Client {
	if p.h2 {
		return ts.h2
	}
	return ts.h1
}

// bearer sends a token with every call, unary and streaming.
type bearer string

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+string(b))
		return next(ctx, req)
	}
}

func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		return conn
	}
}

func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

func withToken(token string) connect.ClientOption { return connect.WithInterceptors(bearer(token)) }

func (ts *testServer) syncClient(p protocol, opts ...connect.ClientOption) doorbookv1connect.SyncServiceClient {
	return doorbookv1connect.NewSyncServiceClient(ts.client(p), ts.url,
		slices.Concat(p.opts, []connect.ClientOption{withToken(goodToken)}, opts)...)
}

func (ts *testServer) push(tb testing.TB, p protocol, req *pb.PushRequest, opts ...connect.ClientOption) (*pb.PushResponse, error) {
	tb.Helper()
	// A guard against a hang, not a measure: a 200,000-object push under
	// the race detector on a busy machine takes seconds.
	ctx, cancel := context.WithTimeout(tb.Context(), time.Minute)
	defer cancel()
	return ts.syncClient(p, opts...).Push(ctx, req)
}

// checkErr checks err has code (success for none) and names what.
func checkErr(tb testing.TB, err error, code connect.Code, what string) {
	tb.Helper()
	if code == success {
		if err != nil {
			tb.Errorf("got %v, want success", err)
		}
		return
	}
	if err == nil {
		tb.Errorf("got success, want %v naming %q", code, what)
		return
	}
	if got := connect.CodeOf(err); got != code {
		tb.Errorf("got %v (%v), want %v naming %q", got, err, code, what)
		return
	}
	if !strings.Contains(err.Error(), what) {
		tb.Errorf("error %q does not name %q", err, what)
	}
}

// emptyChanges is a PushRequest of n empty changes.
func emptyChanges(n int) *pb.PushRequest {
	req := &pb.PushRequest{}
	for range n {
		req.Changes = append(req.Changes, &pb.Change{})
	}
	return req
}

// emptyChangesWire is the same on the wire, without building it.
func emptyChangesWire(n int) []byte { return bytes.Repeat([]byte{0x0a, 0x00}, n) }

func visitPush(visits ...*pb.Visit) *pb.PushRequest {
	req := &pb.PushRequest{}
	for _, v := range visits {
		req.Changes = append(req.Changes, &pb.Change{Payload: &pb.Change_Visit{Visit: v}})
	}
	return req
}

func materials(n int, m pb.Material) []pb.Material {
	out := make([]pb.Material, n)
	for i := range out {
		out[i] = m
	}
	return out
}

// pushOfSize is a PushRequest of exactly n bytes on the wire.
func pushOfSize(tb testing.TB, n int) *pb.PushRequest {
	tb.Helper()
	for l := n; l >= 0 && l > n-16; l-- {
		req := &pb.PushRequest{Changes: []*pb.Change{{Id: strings.Repeat("a", l)}}}
		if proto.Size(req) == n {
			return req
		}
	}
	tb.Fatalf("no push of %d bytes", n)
	return nil
}

// rawJSON sends body as a JSON message.
type rawJSON struct{ body []byte }

func (c rawJSON) Name() string                    { return "json" }
func (c rawJSON) Marshal(any) ([]byte, error)     { return bytes.Clone(c.body), nil }
func (c rawJSON) Unmarshal(b []byte, m any) error { return protojson.Unmarshal(b, m.(proto.Message)) }

func sendCompressed(encoding string, body []byte) connect.ClientOption {
	return hostile.SendCompressed(encoding, body)
}

func gzipBytes(tb testing.TB, b []byte) []byte { return hostile.Gzip(b) }

func zstdBytes(b []byte) []byte { return hostile.Zstd(b) }

func gzipZeros(tb testing.TB, n int) []byte {
	tb.Helper()
	b, err := hostile.GzipZeros(n)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func zstdRLEBomb(n int, windowLog int) []byte { return hostile.ZstdRLEBomb(n, windowLog) }

// nestedValue is a Value whose deepest message is depth levels below it:
// Value, ListValue, Value... each holding the next.
func nestedValue(depth int) *structpb.Value {
	v := &structpb.Value{}
	if depth == 0 {
		return v
	}
	l := &structpb.ListValue{}
	v.Kind = &structpb.Value_ListValue{ListValue: l}
	if depth > 1 {
		l.Values = []*structpb.Value{nestedValue(depth - 2)}
	}
	return v
}

func depthOf(v *structpb.Value) int {
	l := v.GetListValue()
	switch {
	case l == nil:
		return 0
	case len(l.GetValues()) == 0:
		return 1
	}
	return 2 + depthOf(l.GetValues()[0])
}

// rawStatus reads the code and message of a response to a raw request:
// Connect unary errors are JSON; gRPC and gRPC-Web carry grpc-status in
// headers (trailers-only) or trailers.
func rawStatus(tb testing.TB, res *http.Response) (connect.Code, string) {
	tb.Helper()
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("read the response: %v", err)
	}
	status, msg := res.Header.Get("Grpc-Status"), res.Header.Get("Grpc-Message")
	if status == "" {
		status, msg = res.Trailer.Get("Grpc-Status"), res.Trailer.Get("Grpc-Message")
	}
	if status != "" {
		n, err := strconv.Atoi(status)
		if err != nil {
			tb.Fatalf("grpc-status %q", status)
		}
		if m, err := url.PathUnescape(msg); err == nil {
			msg = m
		}
		return connect.Code(n), msg
	}
	type wireError struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	var wire wireError
	switch {
	case strings.HasPrefix(res.Header.Get("Content-Type"), "application/connect+"):
		// A Connect stream: the error is in its end-stream message.
		var end struct {
			Error *wireError `json:"error"`
		}
		if len(body) < 5 || body[0]&2 == 0 {
			tb.Fatalf("a Connect stream without an end-stream message: %q", body)
		}
		if err := json.Unmarshal(body[5:], &end); err != nil {
			tb.Fatalf("end-stream message %q: %v", body[5:], err)
		}
		if end.Error == nil {
			return success, ""
		}
		wire = *end.Error
	case res.StatusCode == http.StatusOK:
		return success, ""
	default:
		if err := json.Unmarshal(body, &wire); err != nil {
			tb.Fatalf("HTTP %d with %q: not a Connect error", res.StatusCode, body)
		}
	}
	var code connect.Code
	if err := code.UnmarshalText([]byte(wire.Code)); err != nil {
		tb.Fatalf("code %q: %v", wire.Code, err)
	}
	return code, wire.Message
}

// TestAuthenticateBeforeBody sends requests whose body never comes: the
// answer must come anyway, from the headers alone.
func TestAuthenticateBeforeBody(t *testing.T) {
	t.Parallel()
	ts := newServer(t, intake.Config{Procedures: procedures(pullPath)})
	for _, tc := range []struct {
		name, contentType, auth string
		h1                      bool
		code                    connect.Code
		what                    string
	}{
		{name: "connect, no token", contentType: "application/proto", code: connect.CodeUnauthenticated, what: "no token"},
		{name: "connect, unknown token", contentType: "application/proto", auth: "Bearer bad", code: connect.CodeUnauthenticated, what: "unknown token"},
		{name: "connect, revoked keeps its code", contentType: "application/proto", auth: "Bearer revoked", code: connect.CodePermissionDenied, what: "revoked"},
		{name: "connect json, no token", contentType: "application/json", code: connect.CodeUnauthenticated, what: "no token"},
		{name: "connect streaming, no token", contentType: "application/connect+proto", code: connect.CodeUnauthenticated, what: "no token"},
		{name: "grpc, no token", contentType: "application/grpc", code: connect.CodeUnauthenticated, what: "no token"},
		{name: "grpc-web, no token", contentType: "application/grpc-web+proto", code: connect.CodeUnauthenticated, what: "no token"},
		{name: "grpc-web, revoked", contentType: "application/grpc-web+proto", auth: "Bearer revoked", code: connect.CodePermissionDenied, what: "revoked"},
		{name: "connect over HTTP/1.1, no token", contentType: "application/proto", h1: true, code: connect.CodeUnauthenticated, what: "no token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pr, pw := io.Pipe()
			defer pw.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+pushPath, pr)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tc.contentType)
			req.Header.Set("Te", "trailers")
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			client := ts.h2
			if tc.h1 {
				client = ts.h1
			}
			res, err := client.Do(req)
			if err != nil {
				t.Fatalf("no answer while the body was unwritten: %v", err)
			}
			if tc.h1 && !res.Close {
				t.Error("a refused HTTP/1.1 request keeps its connection: the server would read the rest of its body")
			}
			code, msg := rawStatus(t, res)
			if code != tc.code || !strings.Contains(msg, tc.what) {
				t.Errorf("got %v %q, want %v naming %q", code, msg, tc.code, tc.what)
			}
		})
	}
	t.Run("the hook sees the procedure", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		// A fresh server: the hook's record is this request's alone.
		ts := newServer(t, intake.Config{Procedures: procedures(pullPath)})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+pushPath, bytes.NewReader(nil))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/proto")
		res, err := ts.h2.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if code, msg := rawStatus(t, res); code != connect.CodeUnauthenticated {
			t.Errorf("got %v %q, want unauthenticated", code, msg)
		}
		if got := ts.authedPaths(); !slices.Equal(got, []string{pushPath}) {
			t.Errorf("the hook saw %q, want [%s]", got, pushPath)
		}
		if got := ts.refusedCodes(); !slices.Equal(got, []connect.Code{connect.CodeUnauthenticated}) {
			t.Errorf("Refused was told of %v, want [unauthenticated]", got)
		}
	})
	t.Run("a public procedure skips the hook", func(t *testing.T) {
		t.Parallel()
		ts := newServer(t, intake.Config{Procedures: procedures(pullPath)})
		for _, p := range protocols() {
			c := doorbookv1connect.NewSyncServiceClient(ts.client(p), ts.url, p.opts...)
			res, err := c.Pull(t.Context(), &pb.PullRequest{Cursor: 41})
			if err != nil {
				t.Fatalf("%s: %v", p.name, err)
			}
			if res.GetCursor() != 42 {
				t.Errorf("%s: cursor %d, want 42", p.name, res.GetCursor())
			}
		}
		if got := ts.authedPaths(); len(got) != 0 {
			t.Errorf("the hook saw %q for a public procedure", got)
		}
	})
	t.Run("an authenticated caller's body is read, with the hook's context", func(t *testing.T) {
		t.Parallel()
		for _, p := range protocols() {
			res, err := ts.push(t, p, emptyChanges(3))
			if err != nil {
				t.Fatalf("%s: %v", p.name, err)
			}
			if res.GetApplied() != 3 {
				t.Errorf("%s: applied %d, want 3", p.name, res.GetApplied())
			}
		}
	})
}

// TestBombs sends compressed messages that inflate past the limit, corrupt
// ones and unknown codecs, and messages at the limit and a byte over.
func TestBombs(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	ts := newServer(t, intake.Config{MaxMessageBytes: limit})
	type bomb struct {
		name     string
		encoding string // "" sends body as the message itself
		body     []byte
		code     connect.Code
		what     string
	}
	notGzip := gzipBytes(t, emptyChangesWire(100))
	varied, err := proto.Marshal(&pb.PushRequest{Changes: []*pb.Change{{Id: "a change"}, {Id: "another change"}, {Id: "a third one"}}})
	if err != nil {
		t.Fatal(err)
	}
	truncatedZstd := zstdBytes(varied)
	truncatedZstd = truncatedZstd[:len(truncatedZstd)-8]
	bombs := []bomb{
		{name: "gzip, 16 MiB of zeros", encoding: "gzip", body: gzipZeros(t, 16<<20), code: connect.CodeResourceExhausted, what: "at most 65536 bytes"},
		{name: "gzip, 1M empty changes", encoding: "gzip", body: gzipBytes(t, emptyChangesWire(1<<20)), code: connect.CodeResourceExhausted, what: "at most 65536 bytes"},
		{name: "zstd, 1 GiB of zeros", encoding: "zstd", body: zstdRLEBomb(1<<30, 23), code: connect.CodeResourceExhausted, what: "at most 65536 bytes"},
		{name: "zstd, 256 MiB window", encoding: "zstd", body: zstdRLEBomb(256<<20, 28), code: connect.CodeResourceExhausted, what: "window of at most 8 MiB"},
		// A kilobyte of zeros in a frame declaring a 256 MiB window: the
		// window alone refuses it (its zeros would be malformed protobuf).
		{name: "zstd, 1 KiB in a 256 MiB window", encoding: "zstd", body: zstdRLEBomb(1<<10, 28), code: connect.CodeResourceExhausted, what: "window of at most 8 MiB"},
		// Within the message limit inflated: the count refuses it.
		{name: "zstd, 32K empty changes", encoding: "zstd", body: zstdBytes(emptyChangesWire(limit/2 - 8)), code: connect.CodeResourceExhausted, what: "doorbook.v1.PushRequest.changes holds at most 1000 items"},
		{name: "raw, 32K empty changes", body: emptyChangesWire(limit/2 - 8), code: connect.CodeResourceExhausted, what: "doorbook.v1.PushRequest.changes holds at most 1000 items"},
		{name: "gzip, corrupt header", encoding: "gzip", body: []byte("this is not gzip at all"), code: connect.CodeInvalidArgument, what: "gzip data is corrupt"},
		{name: "gzip, corrupt deflate", encoding: "gzip", body: append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, bytes.Repeat([]byte{0xff}, 64)...), code: connect.CodeInvalidArgument, what: "gzip data is corrupt"},
		{name: "gzip, truncated", encoding: "gzip", body: notGzip[:len(notGzip)/2], code: connect.CodeInvalidArgument, what: "gzip data is corrupt"},
		{name: "zstd, corrupt magic", encoding: "zstd", body: []byte("this is not zstd at all"), code: connect.CodeInvalidArgument, what: "zstd data is corrupt"},
		{name: "zstd, truncated", encoding: "zstd", body: truncatedZstd, code: connect.CodeInvalidArgument, what: "zstd data is corrupt"},
		{name: "unknown encoding", encoding: "br", body: []byte("whatever"), code: connect.CodeUnimplemented, what: `unknown compression "br"`},
	}
	for _, p := range protocols() {
		for _, b := range bombs {
			t.Run(p.name+"/"+b.name, func(t *testing.T) {
				t.Parallel()
				var opt connect.ClientOption = connect.WithCodec(hostile.RawCodec{Body: b.body})
				if b.encoding != "" {
					opt = sendCompressed(b.encoding, b.body)
				}
				_, err := ts.push(t, p, &pb.PushRequest{}, opt)
				checkErr(t, err, b.code, b.what)
			})
		}
	}
	// The limit is on the inflated message: exactly the limit passes, a
	// byte more is refused, however it is sent.
	for _, p := range protocols() {
		for _, c := range []struct {
			name string
			opts []connect.ClientOption
		}{
			{name: "identity"},
			{name: "gzip", opts: []connect.ClientOption{connect.WithSendGzip()}},
			{name: "zstd", opts: []connect.ClientOption{compress.NewCoders().ClientOptions(false)}},
		} {
			t.Run(p.name+"/"+c.name+"/at the limit", func(t *testing.T) {
				t.Parallel()
				res, err := ts.push(t, p, pushOfSize(t, limit), c.opts...)
				if err != nil {
					t.Fatalf("a message of exactly %d bytes: %v", limit, err)
				}
				if res.GetApplied() != 1 {
					t.Errorf("applied %d, want 1", res.GetApplied())
				}
			})
			t.Run(p.name+"/"+c.name+"/a byte over", func(t *testing.T) {
				t.Parallel()
				_, err := ts.push(t, p, pushOfSize(t, limit+1), c.opts...)
				checkErr(t, err, connect.CodeResourceExhausted, "at most 65536 bytes")
			})
		}
	}
}

// TestRawProtocolErrors sends framing a Connect client never would.
func TestRawProtocolErrors(t *testing.T) {
	t.Parallel()
	ts := newServer(t, intake.Config{MaxMessageBytes: 64 << 10})
	envelope := func(flags byte, size int, msg []byte) []byte {
		return append(binary.BigEndian.AppendUint32([]byte{flags}, uint32(size)), msg...)
	}
	// A valid PushRequest of 40 KiB: one unknown field.
	unknown40K := protowire.AppendBytes(protowire.AppendTag(nil, 99, protowire.BytesType), make([]byte, 40<<10))
	for _, tc := range []struct {
		name     string
		ctype    string
		encoding string // Grpc-Encoding
		body     []byte
		code     connect.Code
		what     string
	}{
		{name: "compressed flag without an encoding", ctype: "application/grpc", body: envelope(1, 2, []byte{0x0a, 0x00}), code: connect.CodeInvalidArgument, what: "without a compression header"},
		{name: "unknown flags", ctype: "application/grpc", body: envelope(0x80, 0, nil), code: connect.CodeInvalidArgument, what: "flags 0x80"},
		{name: "a message shorter than promised", ctype: "application/grpc", body: envelope(0, 100, []byte{0x0a, 0x00}), code: connect.CodeInvalidArgument, what: "100 bytes"},
		{name: "a prefix cut short", ctype: "application/grpc", body: []byte{0, 0}, code: connect.CodeInvalidArgument, what: "ended early"},
		{name: "a prefix promising more than the limit", ctype: "application/grpc", body: envelope(0, 1<<30, nil), code: connect.CodeResourceExhausted, what: "at most 65536 bytes"},
		{name: "unknown grpc-encoding", ctype: "application/grpc", encoding: "snappy", body: envelope(1, 2, []byte{0x0a, 0x00}), code: connect.CodeUnimplemented, what: `unknown compression "snappy"`},
		{name: "two messages", ctype: "application/grpc", body: slices.Concat(envelope(0, len(unknown40K), unknown40K), envelope(0, len(unknown40K), unknown40K)), code: connect.CodeInvalidArgument, what: "more than one request message"},
		{name: "an empty message then an empty frame", ctype: "application/grpc+json", body: slices.Concat(envelope(0, 2, []byte("{}")), envelope(0, 0, nil)), code: connect.CodeInvalidArgument, what: "more than one request message"},
		{name: "no message at all", ctype: "application/grpc", body: nil, code: connect.CodeInvalidArgument, what: "without a message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.url+pushPath, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tc.ctype)
			req.Header.Set("Te", "trailers")
			req.Header.Set("Authorization", "Bearer "+goodToken)
			if tc.encoding != "" {
				req.Header.Set("Grpc-Encoding", tc.encoding)
			}
			res, err := ts.h2.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if code, msg := rawStatus(t, res); code != tc.code || !strings.Contains(msg, tc.what) {
				t.Errorf("got %v %q, want %v naming %q", code, msg, tc.code, tc.what)
			}
		})
	}
}

// pushWire builds a PushRequest of one change holding one visit whose
// fields are visit, already on the wire.
func pushWire(visit []byte) []byte {
	change := protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), visit)
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), change)
}

func packed(num protowire.Number, n int, v uint64) []byte {
	var list []byte
	for range n {
		list = protowire.AppendVarint(list, v)
	}
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), list)
}

func TestCounts(t *testing.T) {
	t.Parallel()
	ts := newServer(t, intake.Config{})
	manyLists := make([]*pb.Visit, 100)
	for i := range manyLists {
		manyLists[i] = &pb.Visit{HouseholdIds: make([]string, 2001)}
	}
	unpacked := func(n int) []byte {
		var b []byte
		for range n {
			b = protowire.AppendVarint(protowire.AppendTag(b, 8, protowire.VarintType), 1)
		}
		return b
	}
	type tc struct {
		name    string
		req     *pb.PushRequest
		raw     []byte // sent instead of req
		code    connect.Code
		what    string
		applied int
	}
	cases := []tc{
		{name: "an empty push", req: &pb.PushRequest{}, applied: 0},
		{name: "1,000 changes", req: emptyChanges(1000), applied: 1000},
		{name: "1,001 changes", req: emptyChanges(1001), code: connect.CodeResourceExhausted, what: "doorbook.v1.PushRequest.changes holds at most 1000 items"},
		// Nested fields are held to DefaultMaxItems, not their declared
		// limit (500 household ids, 20 findings): validation names them.
		{name: "nested at DefaultMaxItems", req: visitPush(&pb.Visit{HouseholdIds: make([]string, intake.DefaultMaxItems)}), applied: 1},
		{name: "nested over DefaultMaxItems", req: visitPush(&pb.Visit{HouseholdIds: make([]string, intake.DefaultMaxItems+1)}), code: connect.CodeResourceExhausted, what: "doorbook.v1.Visit.household_ids holds at most 10000 items"},
		{name: "nested over its declared limit only", req: visitPush(&pb.Visit{Findings: make([]*pb.Finding, 21)}), applied: 1},
		{name: "nested counts are per message", req: visitPush(&pb.Visit{HouseholdIds: make([]string, 6000)}, &pb.Visit{HouseholdIds: make([]string, 6000)}), applied: 2},
		{name: "packed enums at DefaultMaxItems", req: visitPush(&pb.Visit{Materials: materials(intake.DefaultMaxItems, pb.Material_MATERIAL_OPEN_LETTER)}), applied: 1},
		{name: "packed enums over DefaultMaxItems", req: visitPush(&pb.Visit{Materials: materials(intake.DefaultMaxItems+1, pb.Material_MATERIAL_OPEN_LETTER)}), code: connect.CodeResourceExhausted, what: "doorbook.v1.Visit.materials holds at most 10000 items"},
		// 6,000 two-byte varints: 12,000 bytes, 6,000 elements.
		{name: "packed enums are counted per element, not byte", req: visitPush(&pb.Visit{Materials: materials(6000, 300)}), applied: 1},
		{name: "packed enums over DefaultMaxItems, multi-byte", req: visitPush(&pb.Visit{Materials: materials(intake.DefaultMaxItems+1, 300)}), code: connect.CodeResourceExhausted, what: "doorbook.v1.Visit.materials holds at most 10000 items"},
		{name: "packed runs add up", raw: pushWire(slices.Concat(packed(8, 5001, 1), packed(8, 5000, 2))), code: connect.CodeResourceExhausted, what: "doorbook.v1.Visit.materials holds at most 10000 items"},
		{name: "packed and unpacked add up", raw: pushWire(slices.Concat(packed(8, 9000, 1), unpacked(1001))), code: connect.CodeResourceExhausted, what: "doorbook.v1.Visit.materials holds at most 10000 items"},
		{name: "unpacked enums", raw: pushWire(unpacked(intake.DefaultMaxItems + 1)), code: connect.CodeResourceExhausted, what: "doorbook.v1.Visit.materials holds at most 10000 items"},
		{name: "more than 200,000 objects", req: visitPush(manyLists...), code: connect.CodeResourceExhausted, what: "at most 200000 objects"},
		{name: "unknown fields are skipped", raw: slices.Concat(protowire.AppendBytes(protowire.AppendTag(nil, 99, protowire.BytesType), make([]byte, 30000)), emptyChangesWire(2)), applied: 2},
		{name: "malformed: a length past the end", raw: []byte{0x0a, 0x05, 0x01}, code: connect.CodeInvalidArgument, what: "doorbook.v1.PushRequest: malformed protobuf"},
		{name: "malformed: field number 0", raw: []byte{0x00, 0x01}, code: connect.CodeInvalidArgument, what: "malformed protobuf"},
		{name: "malformed: a cut varint", raw: []byte{0x0a, 0x80}, code: connect.CodeInvalidArgument, what: "malformed protobuf"},
		{name: "malformed: wire type 7", raw: []byte{0x0f, 0x00}, code: connect.CodeInvalidArgument, what: "malformed protobuf"},
		{name: "malformed: an unterminated group", raw: []byte{0x0b, 0x08, 0x01}, code: connect.CodeInvalidArgument, what: "malformed protobuf"},
		{name: "malformed deep inside", raw: pushWire([]byte{0x12, 0x05, 0x01}), code: connect.CodeInvalidArgument, what: "doorbook.v1.Visit: malformed protobuf"},
	}
	for _, p := range protocols() {
		for _, c := range cases {
			t.Run(p.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				req := c.req
				var opts []connect.ClientOption
				if c.raw != nil {
					req = &pb.PushRequest{}
					opts = append(opts, connect.WithCodec(hostile.RawCodec{Body: c.raw}))
				}
				res, err := ts.push(t, p, req, opts...)
				checkErr(t, err, c.code, c.what)
				if c.code == success && int(res.GetApplied()) != c.applied {
					t.Errorf("the handler saw %d changes, want %d", res.GetApplied(), c.applied)
				}
			})
		}
	}
}

// TestDepth sends messages nested deeper than intake walks.
func TestDepth(t *testing.T) {
	t.Parallel()
	ts := newServer(t, intake.Config{})
	for _, p := range protocols() {
		for _, c := range []struct {
			depth int
			code  connect.Code
		}{
			{depth: 31},
			{depth: 32},
			{depth: 33, code: connect.CodeInvalidArgument},
			{depth: 200, code: connect.CodeInvalidArgument},
		} {
			t.Run(p.name+"/"+strconv.Itoa(c.depth), func(t *testing.T) {
				t.Parallel()
				client := connect.NewClient[structpb.Value, structpb.Value](ts.client(p), ts.url+deepPath,
					slices.Concat(p.opts, []connect.ClientOption{withToken(goodToken)})...)
				res, err := client.CallUnary(t.Context(), connect.NewRequest(nestedValue(c.depth)))
				checkErr(t, err, c.code, "messages nested more than 32 deep")
				if c.code == success && res.Msg.GetNumberValue() != float64(c.depth) {
					t.Errorf("the handler saw depth %v, want %d", res.Msg.GetNumberValue(), c.depth)
				}
			})
		}
	}
}

// jsonChanges is a JSON PushRequest of n empty changes: n+3 objects as
// intake counts them (the request, the field name, the list and each
// change).
func jsonChanges(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"changes":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("{}")
	}
	b.WriteString("]}")
	return b.Bytes()
}

func TestJSON(t *testing.T) {
	t.Parallel()
	ts := newServer(t, intake.Config{})
	for _, p := range protocols() {
		t.Run(p.name+"/a push", func(t *testing.T) {
			t.Parallel()
			req := &pb.PushRequest{Changes: []*pb.Change{
				{Id: "a", Payload: &pb.Change_Visit{Visit: &pb.Visit{HouseholdIds: []string{"h1", "h2"}, Materials: []pb.Material{1, 2}}}},
				{Id: "b", Payload: &pb.Change_Household{Household: &pb.Household{Id: "h1"}}},
			}}
			res, err := ts.push(t, p, req, connect.WithProtoJSON())
			if err != nil {
				t.Fatal(err)
			}
			if res.GetApplied() != 2 {
				t.Errorf("applied %d, want 2", res.GetApplied())
			}
		})
		t.Run(p.name+"/a push, gzip", func(t *testing.T) {
			t.Parallel()
			res, err := ts.push(t, p, emptyChanges(500), connect.WithProtoJSON(), connect.WithSendGzip())
			if err != nil {
				t.Fatal(err)
			}
			if res.GetApplied() != 500 {
				t.Errorf("applied %d, want 500", res.GetApplied())
			}
		})
		t.Run(p.name+"/one object too many", func(t *testing.T) {
			t.Parallel()
			_, err := ts.push(t, p, &pb.PushRequest{}, connect.WithCodec(rawJSON{body: jsonChanges(200_000 - 3 + 1)}))
			checkErr(t, err, connect.CodeResourceExhausted, "at most 200000 objects")
		})
		t.Run(p.name+"/a gzip of too many objects", func(t *testing.T) {
			t.Parallel()
			_, err := ts.push(t, p, &pb.PushRequest{}, connect.WithCodec(rawJSON{}), sendCompressed("gzip", gzipBytes(t, jsonChanges(1_000_000))))
			checkErr(t, err, connect.CodeResourceExhausted, "at most 200000 objects")
		})
	}
	t.Run("connect/exactly 200,000 objects", func(t *testing.T) {
		t.Parallel()
		res, err := ts.push(t, protocols()[0], &pb.PushRequest{}, connect.WithCodec(rawJSON{body: jsonChanges(200_000 - 3)}))
		if err != nil {
			t.Fatal(err)
		}
		if res.GetApplied() != 200_000-3 {
			t.Errorf("applied %d, want %d", res.GetApplied(), 200_000-3)
		}
	})
}

// holdPush is a push the handler holds until released, of about size
// bytes.
func holdPush(size int) *pb.PushRequest {
	return &pb.PushRequest{Changes: []*pb.Change{{Id: "hold"}, {Id: strings.Repeat("x", size)}}}
}

func bigPush(size int) *pb.PushRequest {
	return &pb.PushRequest{Changes: []*pb.Change{{Id: strings.Repeat("y", size)}}}
}

func TestBudget(t *testing.T) {
	t.Parallel()
	const (
		budget = 1 << 20
		wait   = 200 * time.Millisecond
	)
	// Over gRPC a message of m bytes holds about 3m of the budget (its
	// raw bytes, the message, the body handed to Connect).
	grpc := protocols()[1]
	t.Run("a third request waits, then is refused", func(t *testing.T) {
		t.Parallel()
		ts := newServer(t, intake.Config{BudgetBytes: budget, QueueWait: wait})
		// The first fills most of the budget and stays in its handler; the
		// second, reading while no other request reads, goes past the
		// budget (the lane) and stays in its handler too. A third must wait
		// for room, and is refused.
		first, second := make(chan error, 1), make(chan error, 1)
		for _, done := range []chan error{first, second} {
			go func() {
				_, err := ts.push(t, grpc, holdPush(256<<10))
				done <- err
			}()
			select {
			case <-ts.sync.held:
			case err := <-done:
				t.Fatalf("a held push ended before the handler held it: %v", err)
			}
		}
		for _, p := range protocols() {
			start := time.Now()
			_, err := ts.push(t, p, bigPush(256<<10))
			checkErr(t, err, connect.CodeResourceExhausted, "the server is busy: its 1 MiB for request bodies are in use")
			if took := time.Since(start); took < wait {
				t.Errorf("%s: refused after %v, before the queue wait of %v", p.name, took, wait)
			}
		}
		// A small request fits beside them.
		if _, err := ts.push(t, grpc, emptyChanges(10)); err != nil {
			t.Errorf("a small push beside the held ones: %v", err)
		}
		ts.release()
		for _, done := range []chan error{first, second} {
			if err := <-done; err != nil {
				t.Fatalf("a held push: %v", err)
			}
		}
		ts.quiesce()
		for _, p := range protocols() {
			if _, err := ts.push(t, p, bigPush(256<<10)); err != nil {
				t.Errorf("%s: retried once the first ended: %v", p.name, err)
			}
		}
		ts.quiesce()
		if !intake.BudgetIdle(ts.guard) {
			t.Error("the budget is not all free once every request ended")
		}
		// Most of the budget: nothing was left held (else it would wait
		// out the queue and be refused).
		if _, err := ts.push(t, grpc, bigPush(300<<10)); err != nil {
			t.Errorf("a push of most of the budget: %v", err)
		}
	})
	t.Run("the waiter gets in when the holder ends", func(t *testing.T) {
		t.Parallel()
		ts := newServer(t, intake.Config{BudgetBytes: budget, QueueWait: time.Minute})
		// Two held in their handlers, the second past the budget: a third
		// waits for room until they end.
		held := []chan error{make(chan error, 1), make(chan error, 1)}
		for _, done := range held {
			go func() {
				_, err := ts.push(t, grpc, holdPush(256<<10))
				done <- err
			}()
			<-ts.sync.held
		}
		third := make(chan error, 1)
		go func() {
			_, err := ts.push(t, grpc, bigPush(256<<10))
			third <- err
		}()
		for intake.BudgetWaiting(ts.guard) == 0 {
			select {
			case err := <-third:
				t.Fatalf("the third push did not wait for room: %v", err)
			default:
				runtime.Gosched()
			}
		}
		ts.release()
		for _, done := range held {
			if err := <-done; err != nil {
				t.Errorf("a held push: %v", err)
			}
		}
		if err := <-third; err != nil {
			t.Errorf("the waiting push: %v", err)
		}
		ts.quiesce()
		if !intake.BudgetIdle(ts.guard) {
			t.Error("the budget is not all free once every request ended")
		}
	})
	t.Run("refusals release what they held", func(t *testing.T) {
		t.Parallel()
		ts := newServer(t, intake.Config{BudgetBytes: budget, QueueWait: wait, MaxMessageBytes: 512 << 10})
		var wg sync.WaitGroup
		for i := range 24 {
			p := protocols()[i%3]
			wg.Go(func() {
				var err error
				switch i % 4 {
				case 0:
					_, err = ts.push(t, p, emptyChanges(1001))
				case 1:
					_, err = ts.push(t, p, &pb.PushRequest{}, sendCompressed("gzip", gzipZeros(t, 16<<20)))
				case 2:
					_, err = ts.push(t, p, bigPush(600<<10))
				default:
					_, err = ts.push(t, p, bigPush(100<<10))
				}
				if i%4 != 3 && err == nil {
					t.Errorf("request %d was not refused", i)
				}
			})
		}
		wg.Wait()
		ts.quiesce()
		if !intake.BudgetIdle(ts.guard) {
			t.Error("the budget is not all free once every request ended")
		}
	})
	t.Run("many at once queue and all pass", func(t *testing.T) {
		t.Parallel()
		// Each request holds part of the budget as its body arrives; a
		// burst where each waits for more must not deadlock. A queue wait
		// longer than the client's: a deadlock shows as the client's
		// deadline, not as a refusal.
		ts := newServer(t, intake.Config{BudgetBytes: 2 << 20, QueueWait: time.Hour})
		var wg sync.WaitGroup
		for i := range 32 {
			p := protocols()[i%3]
			wg.Go(func() {
				res, err := ts.push(t, p, bigPush(100<<10), compress.NewCoders().ClientOptions(i%2 == 0))
				if err != nil {
					t.Errorf("push %d over %s: %v", i, p.name, err)
				} else if res.GetApplied() != 1 {
					t.Errorf("push %d: applied %d", i, res.GetApplied())
				}
			})
		}
		wg.Wait()
		ts.quiesce()
		if !intake.BudgetIdle(ts.guard) {
			t.Error("the budget is not all free once every request ended")
		}
	})
}

// TestWaitingForRoomIsNotSlowness: the time a request waits for room in
// the budget is the server's, not the sender's: its body is not cut as too
// slow for it.
func TestWaitingForRoomIsNotSlowness(t *testing.T) {
	t.Parallel()
	for _, p := range protocols() {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			clock := &fakeClock{t: time.Now()}
			ts := newServer(t, intake.WithClock(intake.Config{BudgetBytes: 1 << 20, QueueWait: time.Hour,
				BodyGrace: 10 * time.Second, MinBodyRate: 512, BodyIdle: 10 * time.Second}, clock.Now))
			// Two held in their handlers (the second past the budget): the
			// next waits for room.
			held := []chan error{make(chan error, 1), make(chan error, 1)}
			for _, done := range held {
				go func() {
					_, err := ts.push(t, protocols()[1], holdPush(256<<10))
					done <- err
				}()
				<-ts.sync.held
			}
			second := make(chan error, 1)
			go func() {
				_, err := ts.push(t, p, bigPush(256<<10))
				second <- err
			}()
			for intake.BudgetWaiting(ts.guard) == 0 {
				select {
				case err := <-second:
					t.Fatalf("the second push did not wait for room: %v", err)
				default:
					runtime.Gosched()
				}
			}
			// Far past the grace and what its bytes so far may take at the
			// minimum rate.
			clock.Advance(time.Hour)
			ts.release()
			for _, done := range held {
				if err := <-done; err != nil {
					t.Errorf("a held push: %v", err)
				}
			}
			if err := <-second; err != nil {
				t.Errorf("the push that waited for room: %v", err)
			}
		})
	}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// pacing is how a sender sends a body: chunk bytes at a time, every pace,
// with one pause of pause after pauseAt bytes.
type pacing struct {
	chunk   int
	pace    time.Duration
	pauseAt int64
	pause   time.Duration
}

// paced is a transport whose request bodies go out at a pacing.
type paced struct {
	pacing
	base http.RoundTripper
	sent atomic.Int64
}

func (p *paced) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return p.base.RoundTrip(r)
	}
	r2 := r.Clone(r.Context())
	r2.Body = &pacedBody{p: p, body: r.Body, ctx: r.Context()}
	r2.GetBody = nil
	return p.base.RoundTrip(r2)
}

type pacedBody struct {
	p      *paced
	body   io.ReadCloser
	ctx    context.Context
	paused bool
}

func (b *pacedBody) wait(d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C: // the sender's pace
		return nil
	case <-b.ctx.Done():
		return b.ctx.Err()
	}
}

func (b *pacedBody) Read(buf []byte) (int, error) {
	if !b.paused && b.p.pause > 0 && b.p.sent.Load() >= b.p.pauseAt {
		b.paused = true
		if err := b.wait(b.p.pause); err != nil {
			return 0, err
		}
	}
	if err := b.wait(b.p.pace); err != nil {
		return 0, err
	}
	n, err := b.body.Read(buf[:min(len(buf), b.p.chunk)])
	b.p.sent.Add(int64(n))
	return n, err
}

func (b *pacedBody) Close() error { return b.body.Close() }

func TestSlowBodies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cfg     intake.Config
		pacing  pacing
		size    int // of the change id, about the body's size
		cut     bool
		maxSent int64
	}{
		// 20 B/s against a floor of 512 B/s after 300 ms of grace.
		{name: "a byte every 50 ms", cfg: intake.Config{BodyGrace: 300 * time.Millisecond, MinBodyRate: 512, BodyIdle: 10 * time.Second}, pacing: pacing{chunk: 1, pace: 50 * time.Millisecond}, size: 4 << 10, cut: true, maxSent: 100},
		// A pause of 600 ms against an idle limit of 200 ms, well within
		// the grace and the rate otherwise.
		{name: "an idle pause", cfg: intake.Config{BodyGrace: 10 * time.Second, MinBodyRate: 512, BodyIdle: 200 * time.Millisecond}, pacing: pacing{chunk: 256, pace: 5 * time.Millisecond, pauseAt: 1 << 10, pause: 600 * time.Millisecond}, size: 4 << 10, cut: true, maxSent: 2 << 10},
		{name: "at once", cfg: intake.Config{BodyGrace: 300 * time.Millisecond, MinBodyRate: 512, BodyIdle: 200 * time.Millisecond}, pacing: pacing{chunk: 64 << 10}, size: 32 << 10},
		// An honest slow link: 2.5 times the floor, past the grace.
		{name: "slow but above the floor", cfg: intake.Config{BodyGrace: 300 * time.Millisecond, MinBodyRate: 512, BodyIdle: time.Second}, pacing: pacing{chunk: 64, pace: 50 * time.Millisecond}, size: 768},
		// Pauses of a quarter of the idle limit.
		{name: "short pauses", cfg: intake.Config{BodyGrace: 10 * time.Second, MinBodyRate: 512, BodyIdle: time.Second}, pacing: pacing{chunk: 512, pace: 250 * time.Millisecond}, size: 1200},
	} {
		for _, p := range protocols() {
			t.Run(tc.name+"/"+p.name, func(t *testing.T) {
				t.Parallel()
				ts := newServer(t, tc.cfg)
				tr := &paced{pacing: tc.pacing, base: ts.client(p).Transport}
				client := doorbookv1connect.NewSyncServiceClient(&http.Client{Transport: tr}, ts.url,
					slices.Concat(p.opts, []connect.ClientOption{withToken(goodToken)})...)
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				res, err := client.Push(ctx, bigPush(tc.size))
				cancel()
				sent := tr.sent.Load()
				if !tc.cut {
					if err != nil {
						t.Fatalf("cut after %d bytes: %v", sent, err)
					}
					if res.GetApplied() != 1 {
						t.Errorf("applied %d, want 1", res.GetApplied())
					}
					return
				}
				switch {
				case err == nil:
					t.Fatalf("a body sent at this pace was read whole")
				case connect.CodeOf(err) == connect.CodeDeadlineExceeded && strings.Contains(err.Error(), "arrived too slowly"):
				default:
					t.Errorf("got %v, want deadline_exceeded naming the slow body", err)
				}
				if sent > tc.maxSent {
					t.Errorf("the server let %d bytes come before it cut the body, want at most %d", sent, tc.maxSent)
				}
			})
		}
	}
}

func TestPassthrough(t *testing.T) {
	t.Parallel()
	const limit = 4 << 10
	ts := newServer(t, intake.Config{PassthroughBytes: limit})
	// grpc.health.v1's HealthCheckRequest and HealthCheckResponse are, on
	// the wire, a StringValue (service = 1) and an Int32Value (status = 1).
	for _, p := range protocols() {
		client := connect.NewClient[wrapperspb.StringValue, wrapperspb.Int32Value](ts.client(p), ts.url+healthPath, p.opts...)
		t.Run(p.name+"/health", func(t *testing.T) {
			t.Parallel()
			res, err := client.CallUnary(t.Context(), connect.NewRequest(wrapperspb.String("")))
			if err != nil {
				t.Fatal(err)
			}
			if res.Msg.GetValue() != 1 {
				t.Errorf("status %d, want 1 (SERVING)", res.Msg.GetValue())
			}
		})
		t.Run(p.name+"/over the passthrough limit", func(t *testing.T) {
			t.Parallel()
			_, err := client.CallUnary(t.Context(), connect.NewRequest(wrapperspb.String(strings.Repeat("s", 2*limit))))
			checkErr(t, err, connect.CodeResourceExhausted, "4096 byte http.MaxBytesReader limit")
		})
	}
	t.Cleanup(func() {
		// After the parallel subtests.
		if got := ts.authedPaths(); len(got) != 0 {
			t.Errorf("the hook saw %q: passthrough paths are not authenticated by intake", got)
		}
	})
}

// TestPromisedSizeHoldsNoBudget sends a message prefix (gRPC) or a
// Content-Length (Connect) promising most of the budget, then nothing more
// (the body is within its grace): what the caller holds should be about
// what it has sent, so that an honest push beside it passes.
func TestPromisedSizeHoldsNoBudget(t *testing.T) {
	t.Parallel()
	const (
		budget   = 1 << 20
		promised = budget - 16<<10
	)
	for _, tc := range []struct {
		name  string
		ctype string
	}{
		{name: "grpc prefix", ctype: "application/grpc"},
		{name: "connect content-length", ctype: "application/proto"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newServer(t, intake.Config{BudgetBytes: budget, MaxMessageBytes: budget, QueueWait: 500 * time.Millisecond, BodyGrace: 10 * time.Second})
			pr, pw := io.Pipe()
			defer pw.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+pushPath, pr)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tc.ctype)
			req.Header.Set("Te", "trailers")
			req.Header.Set("Authorization", "Bearer "+goodToken)
			if tc.ctype == "application/grpc" {
				go func() { _, _ = pw.Write(binary.BigEndian.AppendUint32([]byte{0}, promised)) }()
			} else {
				req.ContentLength = promised
			}
			attack := make(chan struct{})
			go func() {
				defer close(attack)
				if res, err := ts.h2.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			}()
			// The honest push comes once the attacker holds some of the
			// budget: it has started reading its body.
			for intake.BudgetIdle(ts.guard) {
				if ctx.Err() != nil {
					t.Fatal("the attacker's request never reached its body")
				}
				runtime.Gosched()
			}
			if _, err := ts.push(t, protocols()[1], bigPush(64<<10)); err != nil {
				t.Errorf("a push of 64 KiB beside a caller that sent 5 bytes of a promised %d: %v", promised, err)
			}
			cancel()
			<-attack
		})
	}
}

// TestStreaming calls a server-streaming procedure: its one request
// message comes through intake enveloped, compressed or not, and is
// counted like any other.
func TestStreaming(t *testing.T) {
	t.Parallel()
	ts := newServer(t, intake.Config{MaxMessageBytes: 64 << 10})
	bootstrap := func(t *testing.T, p protocol, req *pb.BootstrapRequest, opts ...connect.ClientOption) (*pb.BootstrapResponse, error) {
		t.Helper()
		stream, err := ts.syncClient(p, opts...).Bootstrap(t.Context(), req)
		if err != nil {
			return nil, err
		}
		defer stream.Close()
		var got *pb.BootstrapResponse
		for stream.Receive() {
			got = stream.Msg()
		}
		return got, stream.Err()
	}
	grids := func(n int) []string { return make([]string, n) }
	for _, p := range protocols() {
		for _, c := range []struct {
			name  string
			req   *pb.BootstrapRequest
			opts  []connect.ClientOption
			code  connect.Code
			what  string
			grids int
		}{
			{name: "identity", req: &pb.BootstrapRequest{GridIds: grids(3), AfterHouseholdId: "h"}, grids: 3},
			{name: "gzip", req: &pb.BootstrapRequest{GridIds: grids(3000), AfterHouseholdId: "h"}, opts: []connect.ClientOption{connect.WithSendGzip()}, grids: 3000},
			{name: "zstd", req: &pb.BootstrapRequest{GridIds: grids(3000), AfterHouseholdId: "h"}, opts: []connect.ClientOption{compress.NewCoders().ClientOptions(false)}, grids: 3000},
			// A top-level field without a declared limit: DefaultMaxItems.
			{name: "at DefaultMaxItems", req: &pb.BootstrapRequest{GridIds: grids(intake.DefaultMaxItems), AfterHouseholdId: "h"}, grids: intake.DefaultMaxItems},
			{name: "over DefaultMaxItems", req: &pb.BootstrapRequest{GridIds: grids(intake.DefaultMaxItems + 1)}, code: connect.CodeResourceExhausted, what: "doorbook.v1.BootstrapRequest.grid_ids holds at most 10000 items"},
			{name: "a zstd bomb", req: &pb.BootstrapRequest{}, opts: []connect.ClientOption{sendCompressed("zstd", zstdRLEBomb(1<<30, 23))}, code: connect.CodeResourceExhausted, what: "at most 65536 bytes"},
			{name: "a gzip bomb", req: &pb.BootstrapRequest{}, opts: []connect.ClientOption{sendCompressed("gzip", gzipZeros(t, 16<<20))}, code: connect.CodeResourceExhausted, what: "at most 65536 bytes"},
			{name: "an unknown codec", req: &pb.BootstrapRequest{}, opts: []connect.ClientOption{sendCompressed("br", []byte("x"))}, code: connect.CodeUnimplemented, what: `unknown compression "br"`},
		} {
			t.Run(p.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				res, err := bootstrap(t, p, c.req, c.opts...)
				checkErr(t, err, c.code, c.what)
				if c.code == success && (int(res.GetTotalHouseholds()) != c.grids || res.GetLastHouseholdId() != "h") {
					t.Errorf("the handler saw %d grids after %q, want %d after \"h\"", res.GetTotalHouseholds(), res.GetLastHouseholdId(), c.grids)
				}
			})
		}
	}
}

// hideLength keeps net/http from knowing a body's length: HTTP/1.1 sends
// it chunked, HTTP/2 without a Content-Length.
type hideLength struct{ io.Reader }

// TestUnknownLength sends Connect unary bodies of no declared length, at
// the limit and a byte over.
func TestUnknownLength(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	ts := newServer(t, intake.Config{MaxMessageBytes: limit})
	for _, h2 := range []bool{false, true} {
		for _, c := range []struct {
			name string
			size int
			code connect.Code
		}{
			{name: "small", size: 100},
			{name: "at the limit", size: limit},
			{name: "a byte over", size: limit + 1, code: connect.CodeResourceExhausted},
			{name: "far over", size: 16 * limit, code: connect.CodeResourceExhausted},
		} {
			name := c.name + "/HTTP/1.1"
			if h2 {
				name = c.name + "/HTTP/2"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				body, err := proto.Marshal(pushOfSize(t, c.size))
				if err != nil {
					t.Fatal(err)
				}
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.url+pushPath, hideLength{bytes.NewReader(body)})
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/proto")
				req.Header.Set("Authorization", "Bearer "+goodToken)
				client := ts.h1
				if h2 {
					client = ts.h2
				}
				if req.ContentLength != 0 {
					t.Fatalf("the request has a length (%d): it would go with a Content-Length", req.ContentLength)
				}
				res, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				if c.code != success {
					code, msg := rawStatus(t, res)
					if code != c.code || !strings.Contains(msg, "at most 65536 bytes") {
						t.Errorf("got %v %q, want %v naming the limit", code, msg, c.code)
					}
					return
				}
				defer res.Body.Close()
				out, err := io.ReadAll(res.Body)
				if err != nil {
					t.Fatal(err)
				}
				var pr pb.PushResponse
				if res.StatusCode != http.StatusOK || proto.Unmarshal(out, &pr) != nil || pr.GetApplied() != 1 {
					t.Errorf("HTTP %d %q, want a push of one change applied", res.StatusCode, out)
				}
			})
		}
	}
}

// TestEmptyFramesCostTheirShare: a stream of empty frames (with no token,
// to a public procedure, in JSON where no object is counted) is refused at
// its second frame instead of being held frame after frame; before, 84 MiB
// of them grew the heap by 3 GB against a 16 MiB budget.
func TestEmptyFramesCostTheirShare(t *testing.T) {
	t.Parallel()
	ts := newServer(t, intake.Config{Procedures: procedures(pullPath)})
	body := bytes.Repeat([]byte{0, 0, 0, 0, 0}, 100_000)
	for _, ctype := range []string{"application/grpc+json", "application/grpc"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.url+pullPath, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ctype)
		res, err := ts.h2.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		code, msg := rawStatus(t, res)
		if code != connect.CodeInvalidArgument || !strings.Contains(msg, "more than one request message") {
			t.Errorf("%s: %v %q; want the second frame refused", ctype, code, msg)
		}
	}
	if !intake.BudgetIdle(ts.guard) {
		t.Error("the budget is not free once the refused requests ended")
	}
}

// TestPublicCallersCannotStarveTokenHolders: callers without a token (a
// public procedure, passthrough paths) share a budget of their own: while
// slow public bodies fill it, the authenticated budget stays whole, and an
// authenticated push goes through.
func TestPublicCallersCannotStarveTokenHolders(t *testing.T) {
	t.Parallel()
	ts := newServer(t, intake.Config{Procedures: procedures(pullPath), BudgetBytes: 1 << 20, PublicBudgetBytes: 128 << 10,
		PublicMaxMessageBytes: 16 << 10, QueueWait: 5 * time.Second, BodyGrace: 30 * time.Second})
	// Slow public bodies: each sends half of a 16 KiB message and waits.
	var writers []*io.PipeWriter
	defer func() {
		for _, pw := range writers {
			pw.Close()
		}
	}()
	for range 8 {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.url+pullPath, pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/grpc")
		go func() {
			if res, err := ts.h2.Do(req); err == nil {
				res.Body.Close()
			}
		}()
		go func() { _, _ = pw.Write(append([]byte{0, 0, 0, 0x40, 0}, make([]byte, 8<<10)...)) }()
	}
	deadline := time.Now().Add(10 * time.Second)
	for !intake.PublicBudgetFull(ts.guard, 64<<10) {
		if time.Now().After(deadline) {
			t.Fatal("the slow public bodies never filled their budget")
		}
		runtime.Gosched() // polling for the condition
	}
	if !intake.BudgetIdle(ts.guard) {
		t.Error("public bodies took from the authenticated callers' budget")
	}
	for _, p := range protocols() {
		if _, err := ts.push(t, p, pushOfSize(t, 256<<10), withToken(goodToken)); err != nil {
			t.Errorf("an authenticated push over %s while public bodies fill their budget: %v", p.name, err)
		}
	}
}

// TestPassthroughBodiesAreCut: a path intake does not own (a health check)
// is held to the slow-body rules too, not kept open by a silent caller.
func TestPassthroughBodiesAreCut(t *testing.T) {
	t.Parallel()
	ts := newServer(t, intake.Config{BodyGrace: 200 * time.Millisecond, BodyIdle: 200 * time.Millisecond})
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+healthPath, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/proto")
	go func() { _, _ = pw.Write(make([]byte, 100<<10)) }() // then silence
	res, err := ts.h2.Do(req)
	if err == nil {
		res.Body.Close()
	}
	if ctx.Err() != nil {
		t.Fatal("a silent health check body was held until the test gave up")
	}
}

// TestMaxInFlight: past a procedure's MaxInFlight, a call waits with its
// body read, before its handler, until a call in flight ends, charged for
// its body alone; a caller that gives up while it waits leaves no slot
// taken, nor any budget; other procedures pass by.
func TestMaxInFlight(t *testing.T) {
	t.Parallel()
	procs := procedures()
	p := procs[pushPath]
	p.MaxInFlight = 1
	procs[pushPath] = p
	ts := newServer(t, intake.Config{Procedures: procs})
	grpc := protocols()[1]
	held := make(chan error, 1)
	go func() {
		_, err := ts.push(t, grpc, holdPush(1<<10))
		held <- err
	}()
	<-ts.sync.held
	inFlight := intake.BudgetUsed(ts.guard)
	waitForGate := func(what string, done <-chan error) {
		t.Helper()
		for intake.GateWaiting(ts.guard, pushPath) == 0 {
			select {
			case err := <-done:
				t.Fatalf("%s did not wait for the push in flight: %v", what, err)
			default:
				runtime.Gosched()
			}
		}
	}

	// A caller that gives up while it waits.
	ctx, cancel := context.WithCancel(t.Context())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := ts.syncClient(grpc).Push(ctx, bigPush(64<<10))
		gaveUp <- err
	}()
	waitForGate("a push", gaveUp)
	cancel()
	if err := <-gaveUp; connect.CodeOf(err) != connect.CodeCanceled {
		t.Errorf("a push given up while it waited: %v; want canceled", err)
	}
	for intake.GateWaiting(ts.guard, pushPath) != 0 {
		runtime.Gosched() // the server sees the caller go
	}

	// Another procedure is not held up by the gate.
	if _, err := ts.syncClient(grpc).Pull(t.Context(), &pb.PullRequest{Cursor: 1}); err != nil {
		t.Errorf("a pull while a push is in flight: %v", err)
	}

	second := make(chan error, 1)
	go func() {
		_, err := ts.push(t, grpc, bigPush(64<<10))
		second <- err
	}()
	waitForGate("a second push", second)
	// Its body alone: not Connect's copy of its message, nor its objects
	// (decoded, about three times its size over gRPC; see TestBudget).
	if waiting := intake.BudgetUsed(ts.guard) - inFlight; waiting >= 5*(64<<10)/2 {
		t.Errorf("a push of 64 KiB waiting at the gate holds %d bytes of the budget; want its body's alone, under two and a half times its size", waiting)
	}
	ts.release()
	if err := <-held; err != nil {
		t.Errorf("the push in flight: %v", err)
	}
	if err := <-second; err != nil {
		t.Errorf("the push that waited: %v", err)
	}
	// The slots are all free again: pushes go through one after another.
	for range 3 {
		if _, err := ts.push(t, grpc, bigPush(1<<10)); err != nil {
			t.Errorf("a push after the others ended: %v", err)
		}
	}
	ts.quiesce()
	if !intake.BudgetIdle(ts.guard) {
		t.Error("the budget is not all free once every request ended")
	}
}
