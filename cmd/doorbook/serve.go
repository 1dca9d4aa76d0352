package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/doorbook/doorbook/server"
	"github.com/doorbook/doorbook/server/console"
	"github.com/doorbook/doorbook/server/demo"
	"github.com/doorbook/doorbook/server/intake"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/sqlite"
)

// credentials is the file serve writes when it creates the first admin:
// everything needed to start using a new server.
type credentials struct {
	Server     string `json:"server"`
	AdminToken string `json:"admin_token"`
	// The first admin's name and password, to sign in to the console.
	AdminName     string              `json:"admin_name,omitempty"`
	AdminPassword string              `json:"admin_password,omitempty"`
	Workers       []demo.SeededWorker `json:"workers"`
	// CampaignID is the demo's campaign, running now.
	CampaignID string `json:"campaign_id,omitempty"`
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	db := fs.String("db", "doorbook.db", "SQLite database `file` (created if missing), or a PostgreSQL URL (postgres://USER:PASSWORD@HOST/DB)")
	pgURL := fs.String("postgres", "", "PostgreSQL database `URL`: the same as --db URL")
	addr := fs.String("addr", "127.0.0.1:8080", "`host:port` to listen on (port 0 picks a free one)")
	withDemo := fs.Bool("demo", false, "on an empty database, seed a demo district (12 grids, ~3,000 households, 6 workers)")
	credsPath := fs.String("credentials", "", "where to write the admin token and demo codes (default FILE.credentials.json, or doorbook.credentials.json for PostgreSQL)")
	seed := fs.Uint64("seed", 1, "seed of the demo data")
	logFormat := fs.String("log-format", "auto", "log format: auto (console on a terminal), json or console")
	maxSkew := fs.Duration("max-clock-skew", server.DefaultMaxClockSkew, "how far ahead of the server a device clock may run")
	asJSON := fs.Bool("json", false, "print the start-up summary as JSON")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this PEM certificate `file` (chain first; needs --tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key `file` of --tls-cert")
	requestMemory := fs.Int("request-memory", intake.DefaultBudgetBytes>>20, "`MiB` that all request bodies in flight may hold together; more waits, then is refused")
	bodyGrace := fs.Duration("body-grace", intake.DefaultBodyGrace, "how long any request body may take before --body-rate applies")
	scopeGrace := fs.Duration("scope-grace", store.DefaultScopeGrace, "how long after a household or grid leaves a worker's scope the worker's phones may still push what they wrote there offline")
	mmap := fs.Int("mmap", sqlite.DefaultMmapSize>>20, "MiB of a SQLite file mapped for reading (up to 2048): reports read a street's pages faster, which then count in the server's resident memory as page cache; 0 maps none")
	reportCache := fs.Int("report-cache", service.DefaultReportCache, "how many households' rows reports keep between them, over all nodes (about 1 KiB each; 0 keeps none, and every report reads its rows whole)")
	horizon := fs.Duration("horizon", store.DefaultHorizon, "history kept for phones that have not synced: deletions, change ids, feed entries older than this are collected, and a phone off longer starts over")
	bodyRate := fs.Int("body-rate", intake.DefaultMinBodyRate, "slowest a request body may arrive after --body-grace, in `bytes/s`")
	withMetrics := fs.Bool("metrics", true, "serve Prometheus metrics at /metrics (no token needed: keep the path off the public side of a proxy)")
	withTracing := fs.Bool("tracing", false, "export OpenTelemetry traces of every call over OTLP, as the standard OTEL_EXPORTER_OTLP_* variables say\n(default: on when OTEL_TRACES_EXPORTER=otlp, or OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set and OTEL_TRACES_EXPORTER is not)")
	drainTimeout := fs.Duration("drain-timeout", server.DefaultDrainTimeout, "on SIGTERM or SIGINT, how long calls in flight (bootstraps, exports) may go on before they are cut")
	var corsOrigins multi
	fs.Var(&corsOrigins, "cors-origin", "let web pages of this `origin` (https://app.example) call the API from a browser; repeat for more (default: none)")
	if err := parse(fs, args); err != nil {
		return err
	}
	for _, o := range corsOrigins {
		if err := checkOrigin(o); err != nil {
			return err
		}
	}
	if *pgURL != "" {
		if !isPostgres(*pgURL) {
			return fmt.Errorf("%w: --postgres takes a postgres:// URL", errUsage)
		}
		*db = *pgURL
	}
	if *credsPath == "" {
		*credsPath = credentialsBeside(*db)
	}
	if *requestMemory <= 0 || *bodyRate <= 0 || *bodyGrace <= 0 || *scopeGrace < 0 || *horizon < *scopeGrace || *drainTimeout <= 0 || *reportCache < 0 || *mmap < 0 || *mmap > 2048 {
		return fmt.Errorf("%w: --request-memory, --body-rate, --body-grace and --drain-timeout must be positive, --scope-grace not negative and not past --horizon, --report-cache not negative, --mmap from 0 to 2048", errUsage)
	}
	tracingSet := false
	fs.Visit(func(f *flag.Flag) { tracingSet = tracingSet || f.Name == "tracing" })
	tracingOn, err := tracingEnabled(*withTracing, tracingSet, os.Getenv)
	if err != nil {
		return err
	}
	log := newLogger(*logFormat, stderr)
	var limit *memoryLimit
	if os.Getenv("GOMEMLIMIT") == "" {
		// Request bodies may hold --request-memory; Go's collector would
		// otherwise let the heap grow to twice what is live before it runs,
		// and garbage of finished requests would double the peak. A soft
		// limit above the budget makes it collect sooner instead.
		// The headroom holds the default report cache; a larger one adds;
		// so does each connection open (see memoryLimit).
		limit = &memoryLimit{base: int64(*requestMemory)<<20 + memoryHeadroom + int64(max(0, *reportCache-service.DefaultReportCache))*reportCacheBytes,
			set: debug.SetMemoryLimit, step: -1}
		limit.connections(0)
	}

	var tp *sdktrace.TracerProvider
	if tracingOn {
		if tp, err = newTracerProvider(ctx, log); err != nil {
			return err
		}
		defer func() {
			// Send the spans still batched, within a bound: a collector
			// that went away must not hold the exit.
			flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tp.Shutdown(flush); err != nil {
				log.Warn().Err(err).Msg("tracing: shut down")
			}
		}()
	}

	var cert *tls.Certificate
	if *tlsCert != "" || *tlsKey != "" {
		if *tlsCert == "" || *tlsKey == "" {
			return fmt.Errorf("%w: --tls-cert and --tls-key go together", errUsage)
		}
		c, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		cert = &c
	}

	backend, err := openBackend(ctx, *db, sqlite.WithMmapSize(int64(*mmap)<<20))
	if err != nil {
		return err
	}
	st := service.New(backend, service.WithScopeGrace(*scopeGrace), service.WithReportCache(*reportCache))
	defer st.Close()

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	scheme := "http://"
	if cert != nil {
		scheme = "https://"
	}
	url := scheme + loopbackIfUnspecified(l.Addr().(*net.TCPAddr))

	summary := struct {
		Server      string `json:"server"`
		DB          string `json:"db"`
		Credentials string `json:"credentials,omitempty"`
		Demo        bool   `json:"demo_seeded"`
		Households  int    `json:"households,omitempty"`
		Console     string `json:"console"`
		// FirstAdmin is the admin created on this start, who signs in to
		// the console with the password in the credentials file.
		FirstAdmin string `json:"first_admin,omitempty"`
	}{Server: url, DB: redactDB(*db), Console: url + "/console/"}

	hasAdmin, err := st.HasAdmin(ctx)
	if err != nil {
		return err
	}
	if !hasAdmin {
		admin, token, err := st.CreateAdmin(ctx, "admin", "")
		if err != nil {
			return err
		}
		password := rand.Text()
		if err := st.SetAdminPassword(ctx, admin.Name, password); err != nil {
			return err
		}
		creds := credentials{Server: url, AdminToken: token, AdminName: admin.Name, AdminPassword: password, Workers: []demo.SeededWorker{}}
		if *withDemo {
			seeded, err := demo.Seed(ctx, st, admin, *seed, time.Now(), 30*24*time.Hour)
			if err != nil {
				return err
			}
			creds.Workers, creds.CampaignID = seeded.Workers, seeded.CampaignID
			summary.Demo, summary.Households = true, seeded.Households
		}
		if err := writeCredentials(*credsPath, creds); err != nil {
			return err
		}
		summary.Credentials, summary.FirstAdmin = *credsPath, admin.Name
	} else {
		if *withDemo {
			log.Warn().Msg("database already initialised: --demo adds nothing")
		}
		if _, err := os.Stat(*credsPath); err == nil {
			summary.Credentials = *credsPath
		}
	}

	out := output{json: *asJSON, w: stdout}
	err = out.print(summary, func(w io.Writer) {
		fmt.Fprintf(w, "doorbook serving %s (database %s)\n", url, summary.DB)
		if summary.Demo {
			fmt.Fprintf(w, "demo district seeded: %d households, a campaign running now\n", summary.Households)
		}
		if summary.Credentials != "" {
			fmt.Fprintf(w, "credentials: %s\n", summary.Credentials)
		}
		if summary.FirstAdmin != "" {
			fmt.Fprintf(w, "web console: %s (sign in as %s, with admin_password from the credentials)\n", summary.Console, summary.FirstAdmin)
		} else {
			fmt.Fprintf(w, "web console: %s\n", summary.Console)
		}
	})
	if err != nil {
		return err
	}
	opts := []server.Option{
		server.WithLogger(log), server.WithMaxClockSkew(*maxSkew), server.WithIntake(intake.Config{
			BudgetBytes: int64(*requestMemory) << 20,
			BodyGrace:   *bodyGrace,
			MinBodyRate: *bodyRate,
		}),
		server.WithMetrics(*withMetrics),
		server.WithCORS(corsOrigins...),
		// The backend's pool statistics, where it keeps them.
		server.WithMetricsSources(backend),
	}
	if tp != nil {
		opts = append(opts, server.WithTracerProvider(tp))
	}
	srv := server.New(st, opts...)
	log.Info().Str("addr", l.Addr().String()).Bool("tls", cert != nil).Bool("metrics", *withMetrics).Bool("tracing", tracingOn).
		Msg("serving Connect, gRPC and gRPC-Web")
	// The scopes of the campaigns running, read while the first office
	// signs in.
	st.WarmCampaigns()
	collectCtx, stopCollect := context.WithCancel(ctx)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		server.RunCollector(collectCtx, st, *horizon, server.DefaultCollectEvery, log)
	}()
	defer func() {
		stopCollect()
		<-collected
	}()
	serveOpts := []server.ServeOption{
		server.WithDrainTimeout(*drainTimeout),
		server.WithDrain(func() {
			srv.Drain()
			log.Info().Dur("drain_timeout", *drainTimeout).Msg("stopping: not ready, no new connections, calls in flight finishing")
		}),
	}
	if limit != nil {
		serveOpts = append(serveOpts, server.WithConnections(limit.connections))
	}
	// The web console on the API's port, calling the API in process.
	h := console.Mount(srv.Handler())
	if cert != nil {
		err = server.ServeTLS(ctx, l, h, *cert, serveOpts...)
	} else {
		err = server.Serve(ctx, l, h, serveOpts...)
	}
	log.Info().Msg("stopped")
	return err
}

// tracingEnabled decides whether serve exports traces: --tracing when it is
// given, else the standard environment: OTEL_TRACES_EXPORTER=otlp turns
// tracing on and any other value (none, console...) leaves it off; with no
// OTEL_TRACES_EXPORTER, an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) turns it on. OTEL_SDK_DISABLED=true
// turns it off unless --tracing is given.
func tracingEnabled(flagValue, flagSet bool, getenv func(string) string) (bool, error) {
	if flagSet {
		return flagValue, nil
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	if exporters := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exporters != "" {
		for e := range strings.SplitSeq(exporters, ",") {
			if strings.TrimSpace(e) == "otlp" {
				return true, nil
			}
		}
		return false, nil
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "", nil
}

// newTracerProvider makes the tracer provider of the server's spans, with
// an OTLP exporter configured by the standard environment: the protocol
// (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL: grpc,
// the default, or http/protobuf), endpoint, headers, certificates,
// compression and timeout (OTEL_EXPORTER_OTLP_*), the sampler
// (OTEL_TRACES_SAMPLER), batching (OTEL_BSP_*) and the resource
// (OTEL_SERVICE_NAME, default doorbook; OTEL_RESOURCE_ATTRIBUTES). It is
// not made global: the server gets it alone.
func newTracerProvider(ctx context.Context, log zerolog.Logger) (*sdktrace.TracerProvider, error) {
	protocol := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exporter sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", "grpc":
		exporter, err = otlptracegrpc.New(ctx)
	case "http/protobuf":
		exporter, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("%w: OTEL_EXPORTER_OTLP_PROTOCOL %q: serve exports over grpc or http/protobuf", errUsage, protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "doorbook")),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	// The SDK reports a failed export only to OpenTelemetry's global error
	// handler: route it to the server's log rather than the standard
	// logger's stderr lines.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn().Err(err).Msg("tracing") }))
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res)), nil
}

// memoryHeadroom is the heap the server needs besides request bodies:
// pages of bootstraps and exports in flight, the rows reports keep (by
// default, with their plain visits one by one), the runtime.
const memoryHeadroom = 96 << 20

// connBytes is what the limit grants each connection open: how much more
// the replay load's server held, without a limit, at 5,000 devices than
// at 1,000 (its buffers, its handler's stack and the collector's slack
// over them; see BENCHMARKS.md). An idle connection holds less (9-16
// KiB): the grant is sized for a busy fleet's connections.
const connBytes = 64 << 10

// connStep is how many connections the memory limit moves by at a time.
const connStep = 256

// maxCountedConns bounds the connections the limit grants room for
// (512 MiB): a flood of idle connections, each granted more than it
// holds, must not lift the limit without end. A fleet of 5,000 phones
// is within it.
const maxCountedConns = 8192

// memoryLimit keeps the process's soft memory limit above what it holds
// by right: base, and each connection open. A fixed limit, below what
// thousands of connections hold, had the collector run without pause
// (5,000 devices: 8,255 visits/s at 0.204 ms of CPU a visit, against
// 13,098 and 0.103 without the limit).
type memoryLimit struct {
	base int64
	set  func(int64) int64 // debug.SetMemoryLimit
	step int               // the steps of connStep connections the limit holds
}

// connections moves the limit to open connections (at most
// maxCountedConns), rounded up to the next step: it is set again only as
// the count crosses a step's edge (cheap: the heap's lock, no pause).
func (m *memoryLimit) connections(open int) {
	if step := (min(max(open, 0), maxCountedConns) + connStep - 1) / connStep; step != m.step {
		m.step = step
		m.set(m.base + int64(step*connStep)*connBytes)
	}
}

// reportCacheBytes is the heap a household's kept rows take (0.9 KiB
// measured at a street; see BENCHMARKS.md), with its plain visits of a
// month's campaign one by one (0.2 KiB).
const reportCacheBytes = 1280

func loopbackIfUnspecified(a *net.TCPAddr) string {
	if a.IP == nil || a.IP.IsUnspecified() {
		return fmt.Sprintf("127.0.0.1:%d", a.Port)
	}
	return a.String()
}

func writeCredentials(path string, c credentials) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	return nil
}

func readCredentials(path string) (credentials, error) {
	var c credentials
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if c.Server == "" || c.AdminToken == "" {
		return c, errors.New(path + ": no server or admin_token")
	}
	return c, nil
}

func newLogger(format string, w io.Writer) zerolog.Logger {
	console := format == "console"
	if format == "auto" {
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			console = true
		}
	}
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).With().Timestamp().Logger()
}

// checkOrigin refuses a --cors-origin that is not one web origin: a scheme,
// a host and perhaps a port, and nothing else ("*" would let any site's
// page use a token it got hold of).
func checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "/") {
		return fmt.Errorf("%w: --cors-origin %q: want one origin, such as https://app.example or http://localhost:5173", errUsage, o)
	}
	return nil
}
