// Package loadtest is Doorbook's load-test harness. It runs many simulated
// phones, each a client-sdk replica with a file of its own, against one
// server and reports what the server sustained: syncs and visits per
// second, sync and round-trip latency, errors, CPU and peak memory, and
// whether every visit recorded reached the server exactly once.
//
// It owns the whole load: a server of its own (in this process, or a child
// process the caller names in Options.ServerProcess) or a running one, the
// org tree, workers and households it seeds for the load (through the
// store, or the admin API of a running server), the devices' schedules,
// the timing of round trips and handlers, and the Report. It reaches the
// server's data only through server/store and the API; `doorbook loadtest`
// only turns flags into Options and prints the Report.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/internal/demo"
	"github.com/doorbook/doorbook/syncengine"
)

// Modes of the server under load (Report.Mode).
const (
	ModeInProcess     = "in-process"
	ModeServerProcess = "server-process"
	ModeRemote        = "remote"
)

// Think-time distributions (Options.Think).
const (
	// ThinkExp waits an exponential time of mean Options.Interval.
	ThinkExp = "exp"
	// ThinkUniform waits a uniform time in 0..2×Options.Interval.
	ThinkUniform = "uniform"
)

// Options say what load to run, and against which server.
type Options struct {
	// Devices is how many phones are simulated, each with its own replica
	// file.
	Devices int
	// Share is how many devices each worker has: the devices of a worker
	// share its grid and pull each other's visits.
	Share int
	// Households is how many households each grid has (one grid per
	// worker).
	Households int
	// Visits is the most visits a device records offline between two
	// syncs (uniform in 1..Visits).
	Visits int
	// Notes is the approximate size in bytes of a visit's notes.
	Notes int
	// Duration is how long the devices keep recording and syncing.
	Duration time.Duration
	// Interval is the mean think time between a device's syncs, drawn
	// as Think says.
	Interval time.Duration
	Think    string
	// SyncTimeout fails a sync that takes longer (counted as an error).
	SyncTimeout time.Duration
	// Seed seeds the data, the schedules and the visits.
	Seed uint64
	// Dir holds the replica files and the server's database, and is kept
	// afterwards; it must be empty or missing (ErrDirNotEmpty). If "", a
	// temporary directory is used and removed.
	Dir string
	// SetupParallel is how many devices are enrolled and bootstrapped at
	// once.
	SetupParallel int
	// Replay makes the devices API clients with no replica: each pushes
	// visits built in memory and pulls from its cursor, so that the load's
	// CPU is the server's (see replay.go). It needs a server the load
	// seeds (in this process, or ServerProcess).
	Replay bool

	// The server is, unless one of these is set, served in this process
	// over a fresh SQLite file in Dir: its CPU and memory figures then
	// include the devices'.
	//
	// ServerProcess serves that file from a child process instead, so that
	// the server's CPU and peak memory are measured alone.
	ServerProcess *ServerCommand
	// ServerURL targets a running server instead, seeded through its admin
	// API with AdminToken (its devices register their own households).
	ServerURL, AdminToken string
	// AlsoURLs are more servers on ServerURL's database: device i enrols
	// with (and so syncs against) the i-th of ServerURL and AlsoURLs, in
	// turn, as a load balancer would spread phones.
	AlsoURLs []string

	// CPUProfile, if set, is the file a CPU profile of this process during
	// the load is written to (the server's work included, when it is in
	// this process).
	CPUProfile string
	// Progress, if set, is told of each phase, a line at a time.
	Progress io.Writer
}

// DefaultOptions are the options of `doorbook loadtest` with no flags: 50
// devices for 30 s, a sync a second each, against a server in this process.
func DefaultOptions() Options {
	return Options{
		Devices:       50,
		Share:         1,
		Households:    20,
		Visits:        5,
		Notes:         200,
		Duration:      30 * time.Second,
		Interval:      time.Second,
		Think:         ThinkExp,
		SyncTimeout:   time.Minute,
		Seed:          1,
		SetupParallel: 4 * runtime.GOMAXPROCS(0),
	}
}

// ServerCommand is how to run the server as a child process: Path with the
// arguments Args returns for the database file db. The process must serve
// db on a loopback port, write a JSON object whose "server" is its base URL
// as the first thing on its standard output, and stop on SIGTERM; its
// standard error goes to server.log in Options.Dir. `doorbook serve --db
// FILE --addr 127.0.0.1:0 --json` is such a command.
type ServerCommand struct {
	Path string
	Args func(db string) []string
}

// ErrDirNotEmpty refuses an Options.Dir that holds files already.
var ErrDirNotEmpty = errors.New("directory is not empty")

// check refuses options no load can run with (the command line checks
// them first, in the words of its flags).
func (o Options) check() error {
	switch {
	case o.Devices < 1 || o.Share < 1 || o.Visits < 1 || o.Households < 1 || o.SetupParallel < 1:
		return errors.New("loadtest: Devices, Share, Visits, Households and SetupParallel must be at least 1")
	case o.Notes < 0 || o.Duration <= 0 || o.Interval < 0 || o.SyncTimeout <= 0:
		return errors.New("loadtest: Notes, Duration, Interval and SyncTimeout must be positive")
	case o.Think != ThinkExp && o.Think != ThinkUniform:
		return fmt.Errorf("loadtest: Think is %q or %q, got %q", ThinkExp, ThinkUniform, o.Think)
	case o.ServerURL != "" && o.AdminToken == "":
		return errors.New("loadtest: a ServerURL needs its AdminToken")
	case len(o.AlsoURLs) > 0 && o.ServerURL == "":
		return errors.New("loadtest: AlsoURLs are servers beside ServerURL")
	case o.ServerURL != "" && o.ServerProcess != nil:
		return errors.New("loadtest: ServerProcess starts a server of its own; it does not go with ServerURL")
	case o.Replay && o.ServerURL != "":
		return errors.New("loadtest: Replay needs a server the load seeds (in this process, or ServerProcess), not ServerURL")
	case o.ServerProcess != nil && (o.ServerProcess.Path == "" || o.ServerProcess.Args == nil):
		return errors.New("loadtest: ServerProcess needs a Path and Args")
	}
	return nil
}

// Run runs the load o describes and returns its report. An error is a load
// that could not run; what went wrong during the load (failed syncs,
// visits missing on the server) is in the report: see Report.Err.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	setupStart := time.Now()
	dir := o.Dir
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
			return nil, fmt.Errorf("%s: %w", dir, ErrDirNotEmpty)
		}
	}
	if err := raiseFileLimit(o.Devices, !o.Replay); err != nil {
		return nil, err
	}
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "loadtest: "+format+"\n", args...)
		}
	}

	// The devices' HTTP client: a keep-alive connection per device, so that
	// a sync never waits for a new connection (nor leaves sockets in
	// TIME_WAIT), with round trips timed.
	rpcs := &rpcTimes{by: map[string][]time.Duration{}}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = o.Devices + 16
	transport.MaxIdleConnsPerHost = o.Devices + 16
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
	// grid per worker, Share devices per worker.
	workers := (o.Devices + o.Share - 1) / o.Share
	progress("seeding %d grids and workers, %d households each", workers, o.Households)
	devices, err := srv.seed(ctx, o, workers)
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
	setup := func(d *device) error {
		if o.Replay {
			return d.setupReplay(ctx, deviceURL(o, srv.url, d.i), hc)
		}
		if d.r == nil {
			r, err := sdk.Open(ctx, filepath.Join(dir, fmt.Sprintf("device-%04d.db", d.i)), sdk.WithHTTPClient(hc))
			if err != nil {
				return err
			}
			d.r = r
			if err := r.Enroll(ctx, deviceURL(o, srv.url, d.i), d.code, fmt.Sprintf("loadtest device %d", d.i)); err != nil {
				return err
			}
		}
		if d.lead && !srv.seeder.canImport() {
			gen := demo.NewGenerator(o.Seed+uint64(d.i), time.Now())
			for range o.Households {
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
	var leads, followers []*device
	for _, d := range devices {
		if d.lead {
			leads = append(leads, d)
		} else {
			followers = append(followers, d)
		}
	}
	for _, group := range [][]*device{leads, followers} {
		if err := forEach(group, o.SetupParallel, setup); err != nil {
			return nil, fmt.Errorf("setup: %w", err)
		}
	}
	rep := &Report{
		Mode: srv.mode, Server: srv.url, Devices: len(devices), Workers: workers,
		HouseholdsPerGrid: o.Households, VisitsPerSync: o.Visits, IntervalMS: float64(o.Interval) / 1e6, Seed: o.Seed, Replay: o.Replay,
		Machine:      fmt.Sprintf("%d CPUs (GOMAXPROCS %d), %s/%s, %s", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version()),
		SetupSeconds: time.Since(setupStart).Seconds(),
		ErrorSamples: []string{},
	}
	progress("setup took %.1f s; load for %s", rep.SetupSeconds, o.Duration)

	// The load.
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
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
	end := start.Add(o.Duration)
	var wg sync.WaitGroup
	for _, d := range devices {
		if o.Replay {
			wg.Go(func() { d.replay(ctx, o, end, &errs) })
		} else {
			wg.Go(func() { d.run(ctx, o, end, &errs) })
		}
	}
	wg.Wait()
	loadEnd := time.Now()
	rpcs.on.Store(false)
	if srv.handlers != nil {
		srv.handlers.on.Store(false)
	}
	serverCPU1, _ := srv.cpu()
	clientCPU1 := selfCPU()
	if o.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	rep.OpenFiles = openFiles()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// The final sync: every visit recorded reaches the server.
	progress("load done; final sync of every device")
	err = forEach(devices, o.SetupParallel, func(d *device) error {
		if o.Replay {
			d.resend(ctx, &errs)
			return nil
		}
		res, err := d.r.Sync(ctx)
		if err != nil {
			errs.add(fmt.Errorf("device %d: final sync: %w", d.i, err))
			return nil
		}
		d.drained += res.Pushed
		d.duplicates += res.Duplicates
		d.refused += res.Rejected
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
		rep.VisitsRefused += d.refused
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
	peak, file := srv.peakRSS()
	rep.ServerPeakMB, rep.ServerFileMB = float64(peak)/(1<<20), float64(file)/(1<<20)
	if rep.VisitsAccepted > 0 {
		rep.ServerCPUMsPerVisit = rep.ServerCPUSeconds * 1000 / float64(rep.VisitsAccepted)
	}
	rep.ClientCPUSeconds = (clientCPU1 - clientCPU0).Seconds()
	rep.ClientPeakMB = float64(procPeakRSS("self")) / (1 << 20)
	rep.VisitsOnServer = -1
	if srv.mode != ModeRemote {
		n, err := srv.countVisits(ctx)
		if err != nil {
			return nil, err
		}
		rep.VisitsOnServer = n
		ok := n == rep.VisitsRecorded-rep.VisitsRefused
		rep.ExactlyOnce = &ok
	} else {
		ok := rep.VisitsAccepted+rep.VisitsAcceptedDrain == rep.VisitsRecorded-rep.VisitsRefused
		rep.ExactlyOnce = &ok
	}
	rep.Errors = errs.n
	rep.ErrorSamples = append(rep.ErrorSamples, errs.samples...)

	for _, d := range devices {
		if d.r != nil {
			d.r.Close()
			d.r = nil
		}
	}
	stopped = true
	if err := srv.stop(); err != nil && srv.mode != ModeServerProcess {
		return nil, fmt.Errorf("stop server: %w", err)
	}
	return rep, nil
}

// device is one simulated phone.
type device struct {
	i          int
	r          *sdk.Replica
	code       string
	lead       bool // first device of its worker: registers the households against a remote server
	grid       string
	households []string
	rng        *rand.Rand
	// rp is the device of a replay load (and r nil).
	rp *replayer

	syncs, recorded, accepted, drained, duplicates, pulled int
	// refused counts visits the server refused for good by its rules,
	// set aside as a phone sets them aside.
	refused   int
	latencies []time.Duration
}

// run is one device's load: record visits offline, think, sync; until end.
// The visits recorded after its last sync go at the final sync.
func (d *device) run(ctx context.Context, o Options, end time.Time, errs *loadErrors) {
	notes := demo.NewGenerator(o.Seed^uint64(d.i+1)<<20, time.Now())
	for ctx.Err() == nil {
		for range 1 + d.rng.IntN(o.Visits) {
			form := syncengine.FormInPerson
			if d.rng.IntN(4) == 0 {
				form = syncengine.FormPhone
			}
			in := sdk.VisitInput{HouseholdIDs: []string{d.households[d.rng.IntN(len(d.households))]}, Form: form, Notes: notes.Notes(o.Notes)}
			if _, err := d.r.RecordVisit(ctx, in); err != nil {
				if ctx.Err() == nil {
					errs.add(fmt.Errorf("device %d: %w", d.i, err))
				}
				continue
			}
			d.recorded++
		}
		if !d.think(ctx, o, end) {
			return
		}
		sctx, cancel := context.WithTimeout(ctx, o.SyncTimeout)
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
		d.refused += res.Rejected
		d.pulled += res.Pulled
	}
}

// think waits a think time drawn as o says, and reports whether the load
// goes on: not if the wait would end past end, or ctx ends first.
func (d *device) think(ctx context.Context, o Options, end time.Time) bool {
	var wait time.Duration
	if o.Think == ThinkUniform {
		wait = time.Duration(d.rng.Float64() * 2 * float64(o.Interval))
	} else {
		wait = time.Duration(d.rng.ExpFloat64() * float64(o.Interval))
	}
	if time.Now().Add(wait).After(end) {
		return false
	}
	if wait == 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
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
