package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"

	sdk "github.com/doorbook/doorbook/client-sdk"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/internal/demo"
	"github.com/doorbook/doorbook/server"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/sqlite"
	"github.com/doorbook/doorbook/syncengine"
)

const loadtestUsage = `Usage: doorbook loadtest [--devices N] [--duration 30s] [--interval 1s] [--visits K] [flags]

Runs N simulated phones against one server. Each has its own replica file,
records 1..K visits offline, waits a random think time (mean --interval), and
syncs, until --duration is up; then each syncs once more and the visits on the
server are counted against those recorded (exactly once).

The server is, by default, started in this process on a loopback port over a
fresh SQLite file (its CPU and memory figures then include the clients);
--server-process runs it as a child "doorbook serve" so that its CPU and peak
memory are measured alone; --server URL --credentials FILE targets a running
server (an org tree is added to it; devices register their own households).

Flags:
`

// loadtestOptions are the flags of loadtest.
type loadtestOptions struct {
	devices, share, households, visits, notes, setupParallel int
	duration, interval, syncTimeout                          time.Duration
	think                                                    string
	seed                                                     uint64
	dir, serverURL, credsPath, cpuprofile                    string
	serverProcess, json                                      bool
}

func loadtest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("loadtest", stderr)
	var o loadtestOptions
	fs.IntVar(&o.devices, "devices", 50, "simulated phones, each with its own replica file")
	fs.IntVar(&o.share, "share", 1, "devices per worker (devices of one worker share its grid and pull each other's visits)")
	fs.IntVar(&o.households, "households", 20, "households per grid (one grid per worker)")
	fs.IntVar(&o.visits, "visits", 5, "most visits recorded offline between two syncs (uniform 1..K)")
	fs.IntVar(&o.notes, "notes", 200, "approximate `bytes` of notes per visit")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long the devices keep recording and syncing")
	fs.DurationVar(&o.interval, "interval", time.Second, "mean think time between a device's syncs")
	fs.StringVar(&o.think, "think", "exp", "think time distribution: exp (exponential) or uniform (0..2×interval)")
	fs.DurationVar(&o.syncTimeout, "sync-timeout", time.Minute, "a sync taking longer fails (counted as an error)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the data, the schedules and the visits")
	fs.StringVar(&o.dir, "dir", "", "`directory` for the replica files and the server database, kept afterwards (default: a temporary one, removed)")
	fs.IntVar(&o.setupParallel, "setup-parallel", 4*runtime.GOMAXPROCS(0), "devices enrolled and bootstrapped at once")
	fs.BoolVar(&o.serverProcess, "server-process", false, "run the server as a child process (doorbook serve) and measure its CPU and peak memory alone")
	fs.StringVar(&o.serverURL, "server", "", "target a running server at `URL` (needs --credentials)")
	fs.StringVar(&o.credsPath, "credentials", "", "credentials `file` of the running server (doorbook serve writes it)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of this process during the load to `file` (server included, unless --server-process)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.Usage = func() { fmt.Fprint(stderr, loadtestUsage); fs.PrintDefaults() }
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case o.devices < 1:
		return fmt.Errorf("%w: --devices must be at least 1", errUsage)
	case o.share < 1 || o.visits < 1 || o.households < 1 || o.setupParallel < 1:
		return fmt.Errorf("%w: --share, --visits, --households and --setup-parallel must be at least 1", errUsage)
	case o.notes < 0 || o.duration <= 0 || o.interval < 0 || o.syncTimeout <= 0:
		return fmt.Errorf("%w: --notes, --duration, --interval and --sync-timeout must be positive", errUsage)
	case o.think != "exp" && o.think != "uniform":
		return fmt.Errorf("%w: --think is exp or uniform, got %q", errUsage, o.think)
	case (o.serverURL == "") != (o.credsPath == ""):
		return fmt.Errorf("%w: --server and --credentials go together", errUsage)
	case o.serverURL != "" && o.serverProcess:
		return fmt.Errorf("%w: --server-process starts a server of its own; it does not go with --server", errUsage)
	}
	rep, err := runLoadtest(ctx, o, stderr)
	if err != nil {
		return err
	}
	out := output{json: o.json, w: stdout}
	if err := out.print(rep, rep.human); err != nil {
		return err
	}
	if rep.Errors > 0 {
		return fmt.Errorf("loadtest: %d errors", rep.Errors)
	}
	if rep.ExactlyOnce != nil && !*rep.ExactlyOnce {
		return errors.New("loadtest: the visits on the server are not those recorded, exactly once")
	}
	return nil
}

// loadReport is what loadtest prints.
type loadReport struct {
	Mode              string  `json:"mode"` // in-process, server-process or remote
	Server            string  `json:"server"`
	Devices           int     `json:"devices"`
	Workers           int     `json:"workers"`
	HouseholdsPerGrid int     `json:"households_per_grid"`
	VisitsPerSync     int     `json:"max_visits_per_sync"`
	IntervalMS        float64 `json:"mean_interval_ms"`
	Seed              uint64  `json:"seed"`
	Machine           string  `json:"machine"`
	SetupSeconds      float64 `json:"setup_s"`
	// LoadSeconds is the measured window: from the start until the last
	// sync begun within --duration ended.
	LoadSeconds float64 `json:"load_s"`

	Syncs                int     `json:"syncs"`
	SyncsPerSec          float64 `json:"syncs_per_s"`
	VisitsRecorded       int     `json:"visits_recorded"`
	VisitsAccepted       int     `json:"visits_accepted"` // applied by the server (push responses), in the window
	VisitsAcceptedPerSec float64 `json:"visits_accepted_per_s"`
	VisitsAcceptedDrain  int     `json:"visits_accepted_final_sync"`
	Duplicates           int     `json:"duplicates"`
	Pulled               int     `json:"rows_pulled"`
	// VisitsOnServer is counted in the server's database (-1: not reachable,
	// --server); ExactlyOnce compares it, or else the accepted total, with
	// the visits recorded.
	VisitsOnServer int   `json:"visits_on_server"`
	ExactlyOnce    *bool `json:"exactly_once"`

	SyncLatency latencyStats `json:"sync_latency_ms"`
	PushRTT     latencyStats `json:"push_rtt_ms"`
	PullRTT     latencyStats `json:"pull_rtt_ms"`
	// Handler times are wall times inside the server's HTTP handler (with
	// the in-process server only): queueing for SQLite's writer included.
	HandlerPush *latencyStats `json:"server_handler_push_ms,omitempty"`
	HandlerPull *latencyStats `json:"server_handler_pull_ms,omitempty"`

	Errors       int      `json:"errors"`
	ErrorSamples []string `json:"error_samples"`

	ServerCPUSeconds float64 `json:"server_cpu_s"`
	ServerCPUCores   float64 `json:"server_cpu_cores"`
	ServerPeakMB     float64 `json:"server_peak_rss_mb"`
	// ServerScope says what the server figures cover.
	ServerScope      string  `json:"server_scope"`
	ClientCPUSeconds float64 `json:"client_cpu_s"`
	ClientPeakMB     float64 `json:"client_peak_rss_mb"`
	OpenFiles        int     `json:"open_files"`
}

type latencyStats struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

func summarize(ds []time.Duration) latencyStats {
	if len(ds) == 0 {
		return latencyStats{}
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }
	q := func(p float64) float64 { return ms(ds[min(len(ds)-1, int(math.Ceil(p*float64(len(ds))))-1)]) }
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return latencyStats{N: len(ds), Mean: ms(sum / time.Duration(len(ds))), P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: ms(ds[len(ds)-1])}
}

func (r *loadReport) human(w io.Writer) {
	fmt.Fprintf(w, "server\t%s (%s)\n", r.Server, r.Mode)
	fmt.Fprintf(w, "devices\t%d (%d workers, %d households per grid)\n", r.Devices, r.Workers, r.HouseholdsPerGrid)
	fmt.Fprintf(w, "schedule\t1..%d visits, then think %.0f ms (mean), then sync; seed %d\n", r.VisitsPerSync, r.IntervalMS, r.Seed)
	fmt.Fprintf(w, "machine\t%s\n", r.Machine)
	fmt.Fprintf(w, "setup\t%.1f s\n", r.SetupSeconds)
	fmt.Fprintf(w, "load\t%.1f s\n", r.LoadSeconds)
	fmt.Fprintf(w, "syncs\t%d (%.0f/s)\n", r.Syncs, r.SyncsPerSec)
	fmt.Fprintf(w, "visits accepted\t%d (%.0f/s), %d more at the final sync; %d duplicates\n", r.VisitsAccepted, r.VisitsAcceptedPerSec, r.VisitsAcceptedDrain, r.Duplicates)
	onServer := "not counted (remote server)"
	if r.VisitsOnServer >= 0 {
		onServer = strconv.Itoa(r.VisitsOnServer)
	}
	once := "?"
	if r.ExactlyOnce != nil {
		once = map[bool]string{true: "yes", false: "NO"}[*r.ExactlyOnce]
	}
	fmt.Fprintf(w, "visits recorded\t%d; on the server %s; exactly once: %s\n", r.VisitsRecorded, onServer, once)
	fmt.Fprintf(w, "\tn\tmean\tp50\tp95\tp99\tmax (ms)\n")
	lat := func(name string, l latencyStats) {
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\n", name, l.N, l.Mean, l.P50, l.P95, l.P99, l.Max)
	}
	lat("sync (whole call)", r.SyncLatency)
	lat("push round trip", r.PushRTT)
	lat("pull round trip", r.PullRTT)
	if r.HandlerPush != nil {
		lat("server push handler", *r.HandlerPush)
		lat("server pull handler", *r.HandlerPull)
	}
	fmt.Fprintf(w, "errors\t%d\n", r.Errors)
	for _, e := range r.ErrorSamples {
		fmt.Fprintf(w, "\t%s\n", e)
	}
	fmt.Fprintf(w, "server CPU\t%.1f s (%.2f cores) — %s\n", r.ServerCPUSeconds, r.ServerCPUCores, r.ServerScope)
	fmt.Fprintf(w, "server peak memory\t%.0f MB\n", r.ServerPeakMB)
	fmt.Fprintf(w, "client CPU\t%.1f s\n", r.ClientCPUSeconds)
	fmt.Fprintf(w, "client peak memory\t%.0f MB\n", r.ClientPeakMB)
	fmt.Fprintf(w, "open files\t%d\n", r.OpenFiles)
}

// loadDevice is one simulated phone.
type loadDevice struct {
	i          int
	r          *sdk.Replica
	code       string
	lead       bool // first device of its worker: registers the households against a remote server
	grid       string
	households []string
	rng        *rand.Rand

	syncs, recorded, accepted, drained, duplicates, pulled int
	latencies                                              []time.Duration
}

// loadErrors counts errors and keeps the first few.
type loadErrors struct {
	mu      sync.Mutex
	n       int
	samples []string
}

func (e *loadErrors) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if len(e.samples) < 5 {
		e.samples = append(e.samples, err.Error())
	}
}

// rpcTimes records round trips (client side) or handler times (server
// side) by method, while on.
type rpcTimes struct {
	on atomic.Bool
	mu sync.Mutex
	by map[string][]time.Duration
}

func (t *rpcTimes) add(method string, d time.Duration) {
	if !t.on.Load() {
		return
	}
	t.mu.Lock()
	t.by[method] = append(t.by[method], d)
	t.mu.Unlock()
}

func (t *rpcTimes) get(method string) []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.by[method]
}

// timedTransport times each call from the request until its response body
// has been read to the end (or closed).
type timedTransport struct {
	base  http.RoundTripper
	times *rpcTimes
}

func (t *timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := t.base.RoundTrip(req)
	if err != nil {
		return res, err
	}
	method := path.Base(req.URL.Path)
	res.Body = &timedBody{ReadCloser: res.Body, done: func() { t.times.add(method, time.Since(start)) }}
	return res, nil
}

type timedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.done)
	}
	return n, err
}

func (b *timedBody) Close() error {
	b.once.Do(b.done)
	return b.ReadCloser.Close()
}

// loadSeeder creates the org tree, workers and codes through the store
// (a server of our own) or the admin API (a running server).
type loadSeeder interface {
	node(ctx context.Context, parent string, level pb.OrgLevel, name string) (string, error)
	worker(ctx context.Context, name, grid string) (string, error)
	code(ctx context.Context, workerID string) (string, error)
	// canImport: households are imported; if not (the API has no import),
	// each worker's first device registers them.
	canImport() bool
	importRows(ctx context.Context, b syncengine.Bundle) error
}

const loadCodeTTL = 24 * time.Hour

type storeSeeder struct {
	st    store.Store
	admin store.Principal
}

func (s storeSeeder) node(ctx context.Context, parent string, level pb.OrgLevel, name string) (string, error) {
	n, err := s.st.CreateOrgNode(ctx, s.admin, store.OrgNode{ParentID: parent, Level: store.OrgLevel(level), Name: name})
	return n.ID, err
}

func (s storeSeeder) worker(ctx context.Context, name, grid string) (string, error) {
	w, err := s.st.CreateWorker(ctx, s.admin, store.Worker{Name: name, Role: int32(pb.WorkerRole_WORKER_ROLE_GRID_WORKER), GridIDs: []string{grid}})
	return w.ID, err
}

func (s storeSeeder) code(ctx context.Context, workerID string) (string, error) {
	return s.st.CreateEnrollmentCode(ctx, s.admin, workerID, time.Now().Add(loadCodeTTL))
}

func (s storeSeeder) canImport() bool { return true }

func (s storeSeeder) importRows(ctx context.Context, b syncengine.Bundle) error {
	return s.st.Import(ctx, s.admin, b)
}

type apiSeeder struct {
	c doorbookv1connect.AdminServiceClient
}

func (s apiSeeder) node(ctx context.Context, parent string, level pb.OrgLevel, name string) (string, error) {
	res, err := s.c.CreateOrgNode(ctx, &pb.CreateOrgNodeRequest{ParentId: parent, Level: level, Name: name})
	return res.GetNode().GetId(), err
}

func (s apiSeeder) worker(ctx context.Context, name, grid string) (string, error) {
	res, err := s.c.CreateWorker(ctx, &pb.CreateWorkerRequest{Name: name, Role: pb.WorkerRole_WORKER_ROLE_GRID_WORKER, GridIds: []string{grid}})
	return res.GetWorker().GetId(), err
}

func (s apiSeeder) code(ctx context.Context, workerID string) (string, error) {
	res, err := s.c.CreateEnrollmentCode(ctx, &pb.CreateEnrollmentCodeRequest{WorkerId: workerID, TtlSeconds: uint32(loadCodeTTL.Seconds())})
	return res.GetCode(), err
}

func (s apiSeeder) canImport() bool { return false }

func (s apiSeeder) importRows(context.Context, syncengine.Bundle) error {
	return errors.New("the admin API imports no households")
}

// loadServer is the server under load and how to measure it.
type loadServer struct {
	mode   string
	url    string
	dbPath string // "" for a remote server
	seeder loadSeeder
	st     store.Store
	// handlers times the in-process server's handlers.
	handlers *rpcTimes
	// pid is the server-process's.
	pid  int
	stop func() error
}

// openLoadServer opens what the seeding goes through: the store of a
// server of our own (not serving yet), or the admin API of a running one.
func openLoadServer(ctx context.Context, o loadtestOptions, dir string, hc *http.Client) (*loadServer, error) {
	if o.serverURL != "" {
		c, err := readCredentials(o.credsPath)
		if err != nil {
			return nil, err
		}
		base := strings.TrimRight(o.serverURL, "/")
		client := doorbookv1connect.NewAdminServiceClient(hc, base, connect.WithInterceptors(bearer.Token(c.AdminToken)))
		return &loadServer{mode: "remote", url: base, seeder: apiSeeder{client}, stop: func() error { return nil }}, nil
	}
	s := &loadServer{mode: "in-process", dbPath: filepath.Join(dir, "server.db"), stop: func() error { return nil }}
	if o.serverProcess {
		s.mode = "server-process"
	}
	backend, err := sqlite.Open(ctx, s.dbPath)
	if err != nil {
		return nil, err
	}
	svc := service.New(backend)
	admin, _, err := svc.CreateAdmin(ctx, "admin", "")
	if err != nil {
		backend.Close()
		return nil, err
	}
	s.st, s.seeder = svc, storeSeeder{st: svc, admin: admin}
	s.stop = backend.Close
	return s, nil
}

// start serves the seeded store: in this process, or in a child process.
func (s *loadServer) start(ctx context.Context, logTo string) error {
	switch s.mode {
	case "remote":
		return nil
	case "in-process":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		s.url = "http://" + l.Addr().String()
		s.handlers = &rpcTimes{by: map[string][]time.Duration{}}
		h := server.New(s.st).Handler()
		timed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			h.ServeHTTP(w, r)
			s.handlers.add(path.Base(r.URL.Path), time.Since(start))
		})
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan error, 1)
		go func() { done <- server.Serve(sctx, l, timed) }()
		st := s.st
		s.stop = func() error {
			cancel()
			return errors.Join(<-done, st.Close())
		}
		return nil
	}
	// server-process: the seeded file is handed over to "doorbook serve".
	if err := s.st.Close(); err != nil {
		return err
	}
	s.st = nil
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logFile, err := os.Create(logTo)
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "serve", "--db", s.dbPath, "--addr", "127.0.0.1:0", "--json", "--log-format", "json")
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start server process: %w", err)
	}
	s.pid = cmd.Process.Pid
	s.stop = func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		logFile.Close()
		return err
	}
	var summary struct {
		Server string `json:"server"`
	}
	if err := json.NewDecoder(bufio.NewReader(out)).Decode(&summary); err != nil || summary.Server == "" {
		s.stop()
		return fmt.Errorf("server process: no start-up summary (see %s): %v", logTo, err)
	}
	go io.Copy(io.Discard, out)
	s.url = summary.Server
	return nil
}

// cpu returns the server's CPU time so far and what it covers.
func (s *loadServer) cpu() (time.Duration, string) {
	switch s.mode {
	case "server-process":
		return procCPU(s.pid), "server process alone"
	case "in-process":
		return selfCPU(), "whole process: server and simulated devices together"
	}
	return 0, "not measured (remote server)"
}

// peakRSS returns the server's peak resident memory in bytes.
func (s *loadServer) peakRSS() int64 {
	switch s.mode {
	case "server-process":
		return procPeakRSS(strconv.Itoa(s.pid))
	case "in-process":
		return procPeakRSS("self")
	}
	return 0
}

// seedLoad creates the org tree, the workers and their codes, and (if the
// server takes imports) the households; it returns the devices to enrol.
func seedLoad(ctx context.Context, o loadtestOptions, sd loadSeeder, workers int) ([]*loadDevice, error) {
	tag := fmt.Sprintf("loadtest %s seed %d", time.Now().Format("2006-01-02 15:04:05"), o.seed)
	district, err := sd.node(ctx, "", pb.OrgLevel_ORG_LEVEL_DISTRICT, tag)
	if err != nil {
		return nil, err
	}
	gen := demo.NewGenerator(o.seed, time.Now())
	shape := demo.Shape{HouseholdsPerGrid: o.households, PersonsPerHousehold: 2}
	var devices []*loadDevice
	var bundle syncengine.Bundle
	flush := func() error {
		if len(bundle.Households) == 0 {
			return nil
		}
		err := sd.importRows(ctx, bundle)
		bundle = syncengine.Bundle{}
		return err
	}
	var street, community string
	for w := range workers {
		if w%100 == 0 {
			if street, err = sd.node(ctx, district, pb.OrgLevel_ORG_LEVEL_STREET, fmt.Sprintf("street %d", w/100+1)); err != nil {
				return nil, err
			}
		}
		if w%10 == 0 {
			if community, err = sd.node(ctx, street, pb.OrgLevel_ORG_LEVEL_COMMUNITY, fmt.Sprintf("community %d", w/10+1)); err != nil {
				return nil, err
			}
		}
		grid, err := sd.node(ctx, community, pb.OrgLevel_ORG_LEVEL_GRID, fmt.Sprintf("grid %d", w+1))
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("worker %d (%s)", w+1, tag)
		id, err := sd.worker(ctx, name, grid)
		if err != nil {
			return nil, err
		}
		for j := range o.share {
			i := w*o.share + j
			if i >= o.devices {
				break
			}
			code, err := sd.code(ctx, id)
			if err != nil {
				return nil, err
			}
			devices = append(devices, &loadDevice{i: i, code: code, lead: j == 0, grid: grid,
				rng: rand.New(rand.NewPCG(o.seed, uint64(i)+1))})
		}
		if sd.canImport() {
			b := gen.Grid(grid, shape, name, "")
			bundle.Households = append(bundle.Households, b.Households...)
			bundle.Persons = append(bundle.Persons, b.Persons...)
			bundle.Tags = append(bundle.Tags, b.Tags...)
			if len(bundle.Households) >= 10_000 {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
	}
	if sd.canImport() {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	return devices, nil
}

func runLoadtest(ctx context.Context, o loadtestOptions, stderr io.Writer) (*loadReport, error) {
	setupStart := time.Now()
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "doorbook-loadtest-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	} else {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if entries, err := os.ReadDir(dir); err != nil {
			return nil, err
		} else if len(entries) > 0 {
			return nil, fmt.Errorf("%w: --dir %s is not empty", errUsage, dir)
		}
	}
	if err := raiseFileLimit(o.devices); err != nil {
		return nil, err
	}
	progress := func(format string, args ...any) {
		if !o.json {
			fmt.Fprintf(stderr, "loadtest: "+format+"\n", args...)
		}
	}

	// The devices' HTTP client: a keep-alive connection per device, so that
	// a sync never waits for a new connection (nor leaves sockets in
	// TIME_WAIT), with round trips timed.
	rpcs := &rpcTimes{by: map[string][]time.Duration{}}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = o.devices + 16
	transport.MaxIdleConnsPerHost = o.devices + 16
	hc := &http.Client{Transport: &timedTransport{base: transport, times: rpcs}}
	defer transport.CloseIdleConnections()

	srv, err := openLoadServer(ctx, o, dir, hc)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.stop()
		}
	}()

	// The org tree: a district, streets of 10 communities of 10 grids; one
	// grid per worker, --share devices per worker.
	workers := (o.devices + o.share - 1) / o.share
	progress("seeding %d grids and workers, %d households each", workers, o.households)
	devices, err := seedLoad(ctx, o, srv.seeder, workers)
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	if err := srv.start(ctx, filepath.Join(dir, "server.log")); err != nil {
		return nil, err
	}
	progress("server %s (%s); enrolling and bootstrapping %d devices", srv.url, srv.mode, len(devices))

	// Replicas: opened, enrolled and bootstrapped a few at a time; the
	// first device of each worker first (against a remote server it
	// registers the grid's households).
	defer func() {
		for _, d := range devices {
			if d.r != nil {
				d.r.Close()
			}
		}
	}()
	setup := func(d *loadDevice) error {
		if d.r == nil {
			r, err := sdk.Open(ctx, filepath.Join(dir, fmt.Sprintf("device-%04d.db", d.i)), sdk.WithHTTPClient(hc))
			if err != nil {
				return err
			}
			d.r = r
			if err := r.Enroll(ctx, srv.url, d.code, fmt.Sprintf("loadtest device %d", d.i)); err != nil {
				return err
			}
		}
		if d.lead && !srv.seeder.canImport() {
			gen := demo.NewGenerator(o.seed+uint64(d.i), time.Now())
			for range o.households {
				_, err := d.r.RegisterHousehold(ctx, d.grid, map[string]string{"head_name": gen.Name(), "address": fmt.Sprintf("loadtest %d", d.i)})
				if err != nil {
					return err
				}
			}
		}
		if _, err := d.r.Sync(ctx); err != nil {
			return err
		}
		hs, err := d.r.Households(ctx)
		if err != nil {
			return err
		}
		for _, h := range hs {
			d.households = append(d.households, h.ID)
		}
		if len(d.households) == 0 {
			return fmt.Errorf("device %d: no households after bootstrap", d.i)
		}
		return nil
	}
	var leads, followers []*loadDevice
	for _, d := range devices {
		if d.lead {
			leads = append(leads, d)
		} else {
			followers = append(followers, d)
		}
	}
	for _, group := range [][]*loadDevice{leads, followers} {
		if err := forEach(group, o.setupParallel, setup); err != nil {
			return nil, fmt.Errorf("setup: %w", err)
		}
	}
	rep := &loadReport{
		Mode: srv.mode, Server: srv.url, Devices: len(devices), Workers: workers,
		HouseholdsPerGrid: o.households, VisitsPerSync: o.visits, IntervalMS: float64(o.interval) / 1e6, Seed: o.seed,
		Machine:      fmt.Sprintf("%d CPUs (GOMAXPROCS %d), %s/%s, %s", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version()),
		SetupSeconds: time.Since(setupStart).Seconds(),
		ErrorSamples: []string{},
	}
	progress("setup took %.1f s; load for %s", rep.SetupSeconds, o.duration)

	// The load.
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
	}
	var errs loadErrors
	serverCPU0, scope := srv.cpu()
	clientCPU0 := selfCPU()
	rpcs.on.Store(true)
	if srv.handlers != nil {
		srv.handlers.on.Store(true)
	}
	start := time.Now()
	end := start.Add(o.duration)
	var wg sync.WaitGroup
	for _, d := range devices {
		wg.Go(func() { d.run(ctx, o, end, &errs) })
	}
	wg.Wait()
	loadEnd := time.Now()
	rpcs.on.Store(false)
	if srv.handlers != nil {
		srv.handlers.on.Store(false)
	}
	serverCPU1, _ := srv.cpu()
	clientCPU1 := selfCPU()
	if o.cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	rep.OpenFiles = openFiles()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// The final sync: every visit recorded reaches the server.
	progress("load done; final sync of every device")
	err = forEach(devices, o.setupParallel, func(d *loadDevice) error {
		res, err := d.r.Sync(ctx)
		if err != nil {
			errs.add(fmt.Errorf("device %d: final sync: %w", d.i, err))
			return nil
		}
		d.drained += res.Pushed
		d.duplicates += res.Duplicates
		return nil
	})
	if err != nil {
		return nil, err
	}

	// The figures.
	rep.LoadSeconds = loadEnd.Sub(start).Seconds()
	var lat []time.Duration
	for _, d := range devices {
		rep.Syncs += d.syncs
		rep.VisitsRecorded += d.recorded
		rep.VisitsAccepted += d.accepted
		rep.VisitsAcceptedDrain += d.drained
		rep.Duplicates += d.duplicates
		rep.Pulled += d.pulled
		lat = append(lat, d.latencies...)
	}
	rep.SyncsPerSec = float64(rep.Syncs) / rep.LoadSeconds
	rep.VisitsAcceptedPerSec = float64(rep.VisitsAccepted) / rep.LoadSeconds
	rep.SyncLatency = summarize(lat)
	rep.PushRTT = summarize(rpcs.get("Push"))
	rep.PullRTT = summarize(rpcs.get("Pull"))
	if srv.handlers != nil {
		push, pull := summarize(srv.handlers.get("Push")), summarize(srv.handlers.get("Pull"))
		rep.HandlerPush, rep.HandlerPull = &push, &pull
	}
	rep.ServerScope = scope
	rep.ServerCPUSeconds = (serverCPU1 - serverCPU0).Seconds()
	rep.ServerCPUCores = rep.ServerCPUSeconds / rep.LoadSeconds
	rep.ServerPeakMB = float64(srv.peakRSS()) / (1 << 20)
	rep.ClientCPUSeconds = (clientCPU1 - clientCPU0).Seconds()
	rep.ClientPeakMB = float64(procPeakRSS("self")) / (1 << 20)
	rep.VisitsOnServer = -1
	if srv.dbPath != "" {
		n, err := countVisits(ctx, srv.dbPath)
		if err != nil {
			return nil, err
		}
		rep.VisitsOnServer = n
		ok := n == rep.VisitsRecorded
		rep.ExactlyOnce = &ok
	} else {
		ok := rep.VisitsAccepted+rep.VisitsAcceptedDrain == rep.VisitsRecorded
		rep.ExactlyOnce = &ok
	}
	rep.Errors = errs.n
	rep.ErrorSamples = append(rep.ErrorSamples, errs.samples...)

	for _, d := range devices {
		d.r.Close()
		d.r = nil
	}
	stopped = true
	if err := srv.stop(); err != nil && srv.mode != "server-process" {
		return nil, fmt.Errorf("stop server: %w", err)
	}
	return rep, nil
}

// run is one device's load: record visits offline, think, sync; until end.
// The visits recorded after its last sync go at the final sync.
func (d *loadDevice) run(ctx context.Context, o loadtestOptions, end time.Time, errs *loadErrors) {
	notes := demo.NewGenerator(o.seed^uint64(d.i+1)<<20, time.Now())
	for ctx.Err() == nil {
		for range 1 + d.rng.IntN(o.visits) {
			form := syncengine.FormInPerson
			if d.rng.IntN(4) == 0 {
				form = syncengine.FormPhone
			}
			in := sdk.VisitInput{HouseholdIDs: []string{d.households[d.rng.IntN(len(d.households))]}, Form: form, Notes: notes.Notes(o.notes)}
			if _, err := d.r.RecordVisit(ctx, in); err != nil {
				if ctx.Err() == nil {
					errs.add(fmt.Errorf("device %d: %w", d.i, err))
				}
				continue
			}
			d.recorded++
		}
		var wait time.Duration
		if o.think == "uniform" {
			wait = time.Duration(d.rng.Float64() * 2 * float64(o.interval))
		} else {
			wait = time.Duration(d.rng.ExpFloat64() * float64(o.interval))
		}
		if time.Now().Add(wait).After(end) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		sctx, cancel := context.WithTimeout(ctx, o.syncTimeout)
		t0 := time.Now()
		res, err := d.r.Sync(sctx)
		took := time.Since(t0)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				errs.add(fmt.Errorf("device %d: %w", d.i, err))
			}
			continue
		}
		d.syncs++
		d.latencies = append(d.latencies, took)
		d.accepted += res.Pushed
		d.duplicates += res.Duplicates
		d.pulled += res.Pulled
	}
}

// forEach runs fn over items, parallel at a time, and returns the first
// error (the others still finish).
func forEach[T any](items []T, parallel int, fn func(T) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, parallel)
	for _, it := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(it); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// raiseFileLimit raises the soft limit of open files to what the devices
// need: each replica holds a writer and up to max(2, GOMAXPROCS) readers,
// each with the database, its WAL and its shared-memory file open, and a
// connection to the server (and, in process, the server's end of it).
func raiseFileLimit(devices int) error {
	need := uint64(devices*(3*(1+max(2, runtime.GOMAXPROCS(0)))+2) + 256)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // not knowable here: try anyway
	}
	if lim.Cur >= need {
		return nil
	}
	if lim.Max < need {
		return fmt.Errorf("%d devices need about %d open files, and the hard limit is %d: raise it (ulimit -Hn) or run fewer devices", devices, need, lim.Max)
	}
	lim.Cur = lim.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU reads a process's user and system time from /proc/PID/stat (in
// clock ticks of 1/100 s, Linux's USER_HZ).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name (which may hold spaces), from
	// field 3 on: utime and stime are fields 14 and 15.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// procPeakRSS reads VmHWM, the peak resident set, of /proc/WHICH/status.
func procPeakRSS(which string) int64 {
	b, err := os.ReadFile("/proc/" + which + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func openFiles() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(entries)
}

// countVisits counts the visits in the server's database (read-only; the
// server may still be running).
func countVisits(ctx context.Context, dbPath string) (int, error) {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: dbPath}).EscapedPath()+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM visits`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count visits on the server: %w", err)
	}
	return n, nil
}
