// Package server is Doorbook's API: Connect handlers for sync, enrolment and
// administration over one store, with bearer-token authentication, scope
// checks (in the store), the clock-skew bound, and one log line per call.
// It serves Connect, gRPC and gRPC-Web on one port, with health checks and
// reflection for off-the-shelf clients, and for operators: Prometheus
// metrics (/metrics, see package metrics), liveness (/healthz) and
// readiness (/readyz), OpenTelemetry traces of every call (WithTracerProvider),
// and a shutdown that lets calls in flight finish (Serve).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"connectrpc.com/otelconnect"
	"connectrpc.com/validate"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/compress"
	"github.com/doorbook/doorbook/server/intake"
	"github.com/doorbook/doorbook/server/metrics"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// Defaults.
const (
	// DefaultMaxClockSkew is how far ahead of the server a device's clock
	// may run before its push is refused.
	DefaultMaxClockSkew = 5 * time.Minute
	// DefaultMaxMessageBytes bounds a request message, decompressed.
	DefaultMaxMessageBytes = intake.DefaultMaxMessageBytes
	// DefaultCodeTTL is how long an enrolment code stays valid.
	DefaultCodeTTL = 72 * time.Hour
	// MaxCodeTTL is the longest an enrolment code may stay valid: a code
	// is a credential until it is used.
	MaxCodeTTL = 90 * 24 * time.Hour
	// DefaultDrainTimeout is how long Serve lets calls in flight finish
	// once it is told to stop.
	DefaultDrainTimeout = 30 * time.Second
	// ReadyTimeout bounds the database check of /readyz.
	ReadyTimeout = 2 * time.Second
)

// Server holds the API's dependencies.
type Server struct {
	store    store.Store
	log      zerolog.Logger
	now      func() time.Time
	clock    *syncengine.HybridClock
	maxSkew  time.Duration
	maxBytes int
	intake   intake.Config
	// enrollLimiter throttles failed enrolments; the sign-in limiters
	// failed sign-ins per name and per address.
	enrollLimiter              *failureLimiter
	enrollLimits               [2]int
	signInByName, signInByAddr *failureLimiter
	// metrics is nil when they are turned off.
	metrics        *metrics.Metrics
	metricsOff     bool
	metricsSources []any
	tracer         trace.TracerProvider
	// corsOrigins may call from a browser (see WithCORS).
	corsOrigins []string
	// draining is set once the server is stopping: /readyz says so.
	draining atomic.Bool
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the request and error log (default: none).
func WithLogger(l zerolog.Logger) Option { return func(s *Server) { s.log = l } }

// WithNow sets the wall clock (default time.Now), for tests.
func WithNow(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithMaxClockSkew sets how far ahead a device clock may run.
func WithMaxClockSkew(d time.Duration) Option { return func(s *Server) { s.maxSkew = d } }

// WithIntake sets how request bodies are bounded (see package intake):
// the message limit, the memory all bodies in flight may hold, and how
// slowly a body may arrive. Its procedures, authentication and log hooks
// are the server's own.
func WithIntake(c intake.Config) Option {
	return func(s *Server) {
		s.intake = c
		if c.MaxMessageBytes > 0 {
			s.maxBytes = c.MaxMessageBytes
		}
	}
}

// WithEnrollLimits sets how many failed enrolments one address, and all
// addresses together, may make per minute before the next is refused.
func WithEnrollLimits(perAddress, all int) Option {
	return func(s *Server) { s.enrollLimits = [2]int{perAddress, all} }
}

// WithMetrics turns the Prometheus metrics at /metrics on or off (default
// on).
func WithMetrics(on bool) Option { return func(s *Server) { s.metricsOff = !on } }

// WithMetricsSources adds what the storage gauges of /metrics are read from
// besides the store (see metrics.WithSources): each gauge comes from the
// first of sources, then the store, that implements its interface.
func WithMetricsSources(sources ...any) Option {
	return func(s *Server) { s.metricsSources = append(s.metricsSources, sources...) }
}

// WithTracerProvider traces every call with tp, through otelconnect
// (default: no tracing). The server never touches OpenTelemetry's global
// providers or propagator: it reads W3C trace context (traceparent) from
// requests, and links a caller's span to its own rather than trusting it
// as a parent, since callers are phones and not the server's own services.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(s *Server) { s.tracer = tp } }

// New returns a server over st.
func New(st store.Store, opts ...Option) *Server {
	s := &Server{store: st, log: zerolog.Nop(), now: time.Now, maxSkew: DefaultMaxClockSkew, maxBytes: DefaultMaxMessageBytes,
		enrollLimits: [2]int{DefaultEnrollFailures, DefaultEnrollFailuresAll}}
	for _, o := range opts {
		o(s)
	}
	s.enrollLimiter = newFailureLimiter(st, s.enrollLimits[0], s.enrollLimits[1], DefaultEnrollWindow, s.now)
	s.signInByName = newFailureLimiter(st, DefaultSignInFailures, DefaultSignInFailuresAll, DefaultSignInWindow, s.now)
	s.signInByAddr = newFailureLimiter(st, DefaultSignInFailuresPerAddr, DefaultSignInFailuresAll, DefaultSignInWindow, s.now)
	if !s.metricsOff {
		s.metrics = metrics.New(
			metrics.WithLogger(s.log),
			metrics.WithNow(s.now),
			metrics.WithRows(callRows),
			metrics.WithSources(append(s.metricsSources, s.store)...),
		)
	}
	// Each server instance is a replica of its own for clock purposes, so
	// several instances over one database never issue the same clock.
	s.clock = syncengine.NewHybridClock(syncengine.NodeID("server:"+uuid.NewString()), 0, s.now)
	return s
}

// Handler serves every service, health checks and reflection.
func (s *Server) Handler() http.Handler {
	opts := connect.WithHandlerOptions(
		// Outermost first: every call is logged; handlers see only valid
		// requests. Callers were authenticated before their body was read
		// (intake, below), so one without a token learns nothing of the
		// rules and costs nothing.
		// The metrics interceptor runs inside the log interceptor, to read
		// the rows the handlers counted for the log line (callRows).
		connect.WithInterceptors(
			&logInterceptor{log: s.log, now: s.now},
			s.metrics.Interceptor(),
			newValidateInterceptor(),
		),
		connect.WithReadMaxBytes(s.maxBytes),
	)
	if s.tracer != nil {
		// Outermost of all: a call's span covers its log line and metrics.
		opts = connect.WithHandlerOptions(connect.WithInterceptors(s.newTraceInterceptor()), opts)
	}
	opts = connect.WithHandlerOptions(opts, compress.HandlerOptions())
	mux := http.NewServeMux()
	mux.Handle(doorbookv1connect.NewSyncServiceHandler(&syncService{s}, opts))
	mux.Handle(doorbookv1connect.NewEnrollmentServiceHandler(&enrollmentService{s}, opts))
	mux.Handle(doorbookv1connect.NewAdminServiceHandler(&adminService{s}, opts))
	mux.Handle(doorbookv1connect.NewReportServiceHandler(&reportService{s}, opts))
	mux.Handle(doorbookv1connect.NewSessionServiceHandler(&sessionService{s}, opts))
	mux.Handle(doorbookv1connect.NewAttachmentServiceHandler(&attachmentService{s}, opts))
	mux.Handle(doorbookv1connect.NewLedgerServiceHandler(&ledgerService{s}, opts, connect.WithReadMaxBytes(ledgerMaxMessageBytes)))
	names := []string{
		doorbookv1connect.SyncServiceName,
		doorbookv1connect.EnrollmentServiceName,
		doorbookv1connect.AdminServiceName,
		doorbookv1connect.ReportServiceName,
		doorbookv1connect.SessionServiceName,
		doorbookv1connect.AttachmentServiceName,
		doorbookv1connect.LedgerServiceName,
	}
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(names...)))
	reflector := grpcreflect.NewStaticReflector(names...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	// For operators and load balancers, without a token: GETs with no body,
	// which intake passes through as it does health checks. They tell
	// nothing of the data: counts and the server's state.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { plain(w, http.StatusOK, "ok") })
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics.Handler())
	}
	cfg := s.intake
	cfg.MaxMessageBytes = s.maxBytes
	cfg.Procedures = procedures()
	cfg.Authenticate = s.authenticate
	cfg.Refused = func(r *http.Request, procedure string, err *connect.Error) {
		s.refused(r, procedure, err)
		if _, ok := cfg.Procedures[procedure]; !ok {
			procedure = "" // not an RPC: no label per path a caller makes up
		}
		s.metrics.Refused(procedure, connect.CodeOf(err))
	}
	return s.withCORS(withPeer(intake.New(mux, cfg)))
}

// newTraceInterceptor traces calls with s.tracer.
func (s *Server) newTraceInterceptor() *otelconnect.Interceptor {
	i, err := otelconnect.NewInterceptor(
		otelconnect.WithTracerProvider(s.tracer),
		otelconnect.WithPropagator(propagation.TraceContext{}),
		// Metrics are Prometheus's, above.
		otelconnect.WithoutMetrics(),
	)
	if err != nil {
		// Only creating metric instruments fails, and there are none.
		panic(err)
	}
	return i
}

// callRows reads the rows a call moved from what its handler added to its
// log line (see addStat in the sync handlers).
func callRows(ctx context.Context) metrics.Rows {
	st, ok := ctx.Value(statsKey{}).(*callStats)
	if !ok {
		return metrics.Rows{}
	}
	n := func(key string) int {
		v, _ := st.fields[key].(int)
		return v
	}
	return metrics.Rows{Applied: n("applied"), Duplicates: n("duplicates"), Pulled: n("rows")}
}

// Drain marks the server as stopping: /readyz answers 503 from now on, so
// that a load balancer sends it no more calls. Serve calls it (WithDrain)
// before it stops accepting connections.
func (s *Server) Drain() { s.draining.Store(true) }

// pinger is a store that can check its database cheaply.
type pinger interface {
	Ping(ctx context.Context) error
}

// readyz answers 200 while the server takes calls and its database
// answers within ReadyTimeout, and 503 with a short reason otherwise.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		plain(w, http.StatusServiceUnavailable, "not ready: shutting down")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
	defer cancel()
	var err error
	if p, ok := s.store.(pinger); ok {
		err = p.Ping(ctx)
	} else {
		// One indexed read, as the store offers no ping of its own.
		_, err = s.store.HasAdmin(ctx)
	}
	if err != nil {
		s.log.Warn().Err(err).Msg("readiness: the database does not answer")
		plain(w, http.StatusServiceUnavailable, "not ready: the database does not answer")
		return
	}
	plain(w, http.StatusOK, "ok")
}

func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// inFlight bounds the calls of a procedure decoded and handled at once
// (see intake.Procedure.MaxInFlight). Pushes queue for the database's
// writer, which commits up to 64 at a time (sqlitex.DB.WriteGrouped): four
// such groups keep it busy, and more pushes past the gate would each hold
// their decoded changes only to queue.
var inFlight = map[string]int{
	doorbookv1connect.SyncServicePushProcedure: 256,
}

// procedures are the API's RPCs, for intake: each takes one request
// message, and all but enrolment need a token. Health checks and
// reflection are not among them: intake passes them through with a small
// body limit.
func procedures() map[string]intake.Procedure {
	out := map[string]intake.Procedure{}
	for _, f := range []protoreflect.FileDescriptor{
		pb.File_doorbook_v1_sync_proto, pb.File_doorbook_v1_enrollment_proto,
		pb.File_doorbook_v1_admin_proto, pb.File_doorbook_v1_report_proto, pb.File_doorbook_v1_session_proto,
		pb.File_doorbook_v1_attachment_proto, pb.File_doorbook_v1_ledger_proto,
	} {
		for i := range f.Services().Len() {
			svc := f.Services().Get(i)
			for j := range svc.Methods().Len() {
				m := svc.Methods().Get(j)
				path := "/" + string(svc.FullName()) + "/" + string(m.Name())
				out[path] = intake.Procedure{Public: public[path], Input: m.Input(), MaxMessageBytes: ownLimits[path], MaxInFlight: inFlight[path]}
			}
		}
	}
	return out
}

// validateInterceptor checks every request message, unary or the request
// of a server stream, against the rules declared in the protos
// (buf.validate, see proto/doorbook/v1) before its handler runs, with
// connectrpc.com/validate. It refines that interceptor's errors to keep
// the API's own conventions (syncengine's checks stay, behind it, for the
// SDK and the store):
//   - a size limit (max_bytes, max_len, max_items, and the register length
//     rules "register.max_bytes") is ResourceExhausted, as syncengine.ErrLimit
//     is; any other violation is InvalidArgument, as syncengine.ErrInvalid;
//   - a push refused for one of its changes names that change in a
//     RejectedChange detail, so that the device sets it aside and pushes the
//     rest (see PushRequest).
//
// Validation stops at the first violation, which the error names (field
// path and rule), with the Violations detail connectrpc.com/validate adds.
// A push passes by a check of its own when it surely keeps every rule
// (surelyValidPush), the walk being costly for the requests sent most.
type validateInterceptor struct {
	inner *validate.Interceptor
}

func newValidateInterceptor() *validateInterceptor {
	v, err := protovalidate.New(protovalidate.WithFailFast())
	if err != nil {
		// Only a bad option fails here; the rules compile lazily.
		panic(err)
	}
	return &validateInterceptor{inner: validate.NewInterceptor(validate.WithValidator(v))}
}

// limitRules are the rules whose violation is a size limit.
var limitRules = map[string]bool{
	"string.max_bytes":   true,
	"string.max_len":     true,
	"bytes.max_len":      true,
	"repeated.max_items": true,
	"map.max_pairs":      true,
	"register.max_bytes": true,
}

func (v *validateInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	wrapped := v.inner.WrapUnary(next)
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if push, ok := req.Any().(*pb.PushRequest); ok && surelyValidPush(push) {
			return next(ctx, req)
		}
		res, err := wrapped(ctx, req)
		return res, refineValidationError(req.Any(), err)
	}
}

func (v *validateInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (v *validateInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	wrapped := v.inner.WrapStreamingHandler(next)
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		// A server stream's handler receives its request before it runs:
		// a refused request ends the call here with this error.
		return refineValidationError(nil, wrapped(ctx, conn))
	}
}

// refineValidationError turns connectrpc.com/validate's error for req into
// the API's code and details; any other error is returned as it is.
func refineValidationError(req any, err error) error {
	var verr *protovalidate.ValidationError
	var cerr *connect.Error
	if err == nil || !errors.As(err, &verr) || !errors.As(err, &cerr) || len(verr.Violations) == 0 {
		return err
	}
	first := verr.Violations[0].Proto
	code := connect.CodeInvalidArgument
	if limitRules[first.GetRuleId()] {
		code = connect.CodeResourceExhausted
	}
	out := connect.NewError(code, verr)
	for _, d := range cerr.Details() {
		out.AddDetail(d)
	}
	if push, ok := req.(*pb.PushRequest); ok {
		path := first.GetField().GetElements()
		if len(path) > 0 && path[0].GetFieldNumber() == 1 { // PushRequest.changes
			if i, ok := path[0].GetSubscript().(*validatepb.FieldPathElement_Index); ok && i.Index < uint64(len(push.GetChanges())) {
				if d, derr := connect.NewErrorDetail(&pb.RejectedChange{ChangeId: push.GetChanges()[i.Index].GetId()}); derr == nil {
					out.AddDetail(d)
				}
			}
		}
	}
	return out
}

// NewHTTPServer wraps a handler in an http.Server that speaks HTTP/1.1 and
// HTTP/2 without TLS (h2c), as gRPC clients need.
func NewHTTPServer(h http.Handler) *http.Server {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:   h,
		Protocols: &protocols,
		// Slow headers are cut here; slow bodies by intake, per request.
		// There is no ReadTimeout or WriteTimeout: a bootstrap streams for
		// minutes over a 2G link.
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		IdleTimeout:       2 * time.Minute,
		// HTTP/2 floods: net/http caps the handlers a connection may run at
		// once at MaxConcurrentStreams (queueing a few more and dropping the
		// connection past that: rapid reset), and counts CONTINUATION
		// frames against MaxHeaderBytes. What a connection may buffer of
		// request bodies is bounded too.
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams:          100,
			MaxReadFrameSize:              1 << 16,
			MaxReceiveBufferPerConnection: 1 << 20,
			MaxReceiveBufferPerStream:     256 << 10,
			SendPingTimeout:               time.Minute,
			PingTimeout:                   20 * time.Second,
			WriteByteTimeout:              2 * time.Minute,
		},
	}
}

// ServeOption tunes Serve and ServeTLS.
type ServeOption func(*serveConfig)

type serveConfig struct {
	drainTimeout time.Duration
	onDrain      []func()
	onConns      []func(open int)
}

// WithConnections calls f with how many connections are open each time
// that changes, one call at a time: f must be quick. Connections cut as
// Serve returns may still call it after.
func WithConnections(f func(open int)) ServeOption {
	return func(c *serveConfig) { c.onConns = append(c.onConns, f) }
}

// WithDrainTimeout sets how long calls in flight (a street's bootstrap, a
// district's export) may go on once ctx ends (default DefaultDrainTimeout).
func WithDrainTimeout(d time.Duration) ServeOption {
	return func(c *serveConfig) { c.drainTimeout = d }
}

// WithDrain runs f as soon as ctx ends, before the listener closes: pass
// Server.Drain, so that /readyz turns 503 at once.
func WithDrain(f func()) ServeOption {
	return func(c *serveConfig) { c.onDrain = append(c.onDrain, f) }
}

// Serve serves h on l until ctx ends, then shuts down gracefully: it runs
// the WithDrain functions, stops accepting connections (new ones are
// refused; HTTP/2 clients are told to open no more streams on theirs),
// closes idle connections, and lets calls in flight — unary calls and
// server streams alike — finish within the drain timeout. Past it, the
// calls still running have their contexts cancelled and their connections
// closed, and Serve waits briefly for their handlers to return, so that
// the caller may close the database after it. It returns nil after a
// shutdown in which every call finished.
func Serve(ctx context.Context, l net.Listener, h http.Handler, opts ...ServeOption) error {
	srv := NewHTTPServer(h)
	return serve(ctx, srv, func() error { return srv.Serve(l) }, opts)
}

// ServeTLS is Serve over TLS with cert: HTTPS with HTTP/2 and HTTP/1.1.
// Phones carry petitioners' and released prisoners' records: outside a
// loopback demo, this is how a server is run.
func ServeTLS(ctx context.Context, l net.Listener, h http.Handler, cert tls.Certificate, opts ...ServeOption) error {
	srv := NewHTTPServer(h)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	srv.Protocols = &protocols
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return serve(ctx, srv, func() error { return srv.ServeTLS(l, "", "") }, opts)
}

// handlerGrace is how long serve waits, past the drain timeout, for the
// handlers whose calls it cut to return.
const handlerGrace = 5 * time.Second

func serve(ctx context.Context, srv *http.Server, run func() error, opts []ServeOption) error {
	cfg := serveConfig{drainTimeout: DefaultDrainTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	// Calls run under a context of their own, not ctx: ending ctx starts
	// the drain, and only its end cancels the calls left.
	base, cut := context.WithCancel(context.Background())
	defer cut()
	srv.BaseContext = func(net.Listener) context.Context { return base }
	if len(cfg.onConns) > 0 {
		var mu sync.Mutex
		open := 0
		srv.ConnState = func(_ net.Conn, state http.ConnState) {
			d := 0
			switch state {
			case http.StateNew:
				d = 1
			case http.StateClosed, http.StateHijacked:
				d = -1
			default:
				return
			}
			mu.Lock()
			defer mu.Unlock()
			open += d
			for _, f := range cfg.onConns {
				f(open)
			}
		}
	}
	var handlers sync.WaitGroup
	next := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		next.ServeHTTP(w, r)
	})

	done := make(chan error, 1)
	go func() { done <- run() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	for _, f := range cfg.onDrain {
		f()
	}
	drain, cancel := context.WithTimeout(context.Background(), cfg.drainTimeout)
	defer cancel()
	err := srv.Shutdown(drain)
	if err != nil {
		err = fmt.Errorf("drain: calls still running after %v were cut: %w", cfg.drainTimeout, err)
		cut()
		err = errors.Join(err, srv.Close())
	}
	if serveErr := <-done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	returned := make(chan struct{})
	go func() {
		handlers.Wait()
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(handlerGrace):
		err = errors.Join(err, errors.New("drain: handlers still running after their calls were cut"))
	}
	return err
}
