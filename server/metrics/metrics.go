// Package metrics owns the server's Prometheus collectors, in a registry of
// its own (never the global one): calls, errors and latency per RPC,
// observed by a Connect interceptor; rows pushed and pulled; and gauges
// read from storage at scrape time (feed head, devices seen in the last
// day, database pool statistics), each only where the storage can answer
// (see Sources).
//
// Every metric is named doorbook_*, beside the Go runtime's go_* and the
// process's process_*; the README's "Operating" section lists them.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Defaults.
const (
	// DefaultScrapeTimeout bounds the storage reads of one scrape.
	DefaultScrapeTimeout = 2 * time.Second
	// DevicesSeenWindow is how far back doorbook_devices_seen looks.
	DevicesSeenWindow = 24 * time.Hour
	// DevicesSilentAfter is how long without a sync makes a device count
	// in doorbook_devices_silent.
	DevicesSilentAfter = 7 * 24 * time.Hour
	// maxScrapes is how many scrapes may run at once; more are answered 503.
	// /metrics needs no token: it must not become a way to load the database.
	maxScrapes = 4
)

// durationBuckets span a pull on a fast link (milliseconds) to a street's
// bootstrap or a district's export over 2G (minutes).
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// Rows is what one call moved, as its handler counted it.
type Rows struct {
	// Applied and Duplicates are a push's changes: applied now, or applied
	// before (a device pushing again what it had pushed).
	Applied, Duplicates int
	// Pulled is the rows a pull or a bootstrap sent.
	Pulled int
}

// Metrics is the server's collectors and their registry. Build it with New;
// a nil *Metrics records nothing.
type Metrics struct {
	reg      *prometheus.Registry
	log      zerolog.Logger
	now      func() time.Time
	rows     func(context.Context) Rows
	calls    *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
	pushed   *prometheus.CounterVec
	pulled   *prometheus.CounterVec
}

// Option configures New.
type Option func(*config)

type config struct {
	log     zerolog.Logger
	now     func() time.Time
	rows    func(context.Context) Rows
	sources []any
	timeout time.Duration
}

// WithLogger sets where failed scrapes are logged (default: nowhere).
func WithLogger(l zerolog.Logger) Option { return func(c *config) { c.log = l } }

// WithNow sets the clock of call durations and of the devices' window
// (default time.Now), for tests.
func WithNow(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithRows sets how the interceptor learns, once a call has ended, the rows
// it moved: f reads them from the context the interceptor passed on (where
// the server's handlers count them for the log).
func WithRows(f func(context.Context) Rows) Option { return func(c *config) { c.rows = f } }

// WithSources sets what the storage gauges are read from, at scrape time:
// each gauge comes from the first of sources that implements its interface
// (FeedHeader, DeviceCounter, PoolStatser), and is left out when none does.
func WithSources(sources ...any) Option {
	return func(c *config) { c.sources = append(c.sources, sources...) }
}

// WithScrapeTimeout bounds the storage reads of one scrape (default
// DefaultScrapeTimeout).
func WithScrapeTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// New returns the collectors, registered in a new registry with the Go
// runtime's and the process's.
func New(opts ...Option) *Metrics {
	c := config{log: zerolog.Nop(), now: time.Now, timeout: DefaultScrapeTimeout}
	for _, o := range opts {
		o(&c)
	}
	m := &Metrics{
		reg:  prometheus.NewRegistry(),
		log:  c.log,
		now:  c.now,
		rows: c.rows,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "doorbook_rpc_calls_total",
			Help: "Calls finished, by procedure and code (ok, or the Connect error code), those refused before their handler included.",
		}, []string{"procedure", "code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "doorbook_rpc_errors_total",
			Help: "Calls that ended in an error, by Connect error code.",
		}, []string{"code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "doorbook_rpc_duration_seconds",
			Help:    "Time from a call's handler starting (its request read) to its last response message, by procedure. Calls refused before their handler are not observed.",
			Buckets: durationBuckets,
		}, []string{"procedure"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "doorbook_rpc_in_flight",
			Help: "Calls whose handler is running, by procedure.",
		}, []string{"procedure"}),
		pushed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "doorbook_rows_pushed_total",
			Help: "Changes devices pushed, by result: applied, or duplicate (applied before).",
		}, []string{"result"}),
		pulled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "doorbook_rows_pulled_total",
			Help: "Rows (households, persons, tags, visits, amendments) sent to devices, by procedure (SyncService Pull or Bootstrap; a snapshot bootstrap sends a file and counts none).",
		}, []string{"procedure"}),
	}
	m.reg.MustRegister(
		m.calls, m.errors, m.duration, m.inFlight, m.pushed, m.pulled,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newStorageCollector(c.sources, c.timeout, c.now),
	)
	// Start every series of the push results at zero, so that a rate over
	// them is defined before the first push.
	m.pushed.WithLabelValues("applied")
	m.pushed.WithLabelValues("duplicate")
	return m
}

// Registry is the registry of every collector (for tests, and for callers
// adding collectors of their own).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus's exposition formats. A metric
// whose storage read failed is left out of the answer (and logged); the
// others are served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      logAdapter{m.log},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg,
		// Scrapes arriving together share one gathering: a scraper in a
		// loop costs the database one read set at a time.
		CoalesceGather:      true,
		MaxRequestsInFlight: maxScrapes,
		Timeout:             10 * time.Second,
	})
}

// Refused counts a call refused before its handler ran (no token, no
// right, no room in the memory budget). procedure is "" for a path that is
// not an RPC of the API.
func (m *Metrics) Refused(procedure string, code connect.Code) {
	if m == nil {
		return
	}
	if procedure == "" {
		procedure = "other"
	}
	m.finish(procedure, code.String())
}

func (m *Metrics) finish(procedure, code string) {
	m.calls.WithLabelValues(procedure, code).Inc()
	if code != "ok" {
		m.errors.WithLabelValues(code).Inc()
	}
}

// codeOf is the code label of a call's error.
func codeOf(err error) string {
	if err == nil {
		return "ok"
	}
	return connect.CodeOf(err).String()
}

// logAdapter logs promhttp's errors, one line each (a failed scrape's
// errors are a multi-line prometheus.MultiError).
type logAdapter struct{ log zerolog.Logger }

func (l logAdapter) Println(v ...any) {
	line := strings.ReplaceAll(strings.TrimSpace(fmt.Sprintln(v...)), "\n", "; ")
	l.log.Warn().Str("error", line).Msg("metrics")
}
