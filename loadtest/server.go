package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"

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

// seeder creates the org tree, workers and codes through the store (a
// server of our own) or the admin API (a running server).
type seeder interface {
	node(ctx context.Context, parent string, level pb.OrgLevel, name string) (string, error)
	worker(ctx context.Context, name, grid string) (string, error)
	code(ctx context.Context, workerID string) (string, error)
	// canImport: households are imported; if not (the API has no import),
	// each worker's first device registers them.
	canImport() bool
	importRows(ctx context.Context, b syncengine.Bundle) error
}

const codeTTL = 24 * time.Hour

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
	return s.st.CreateEnrollmentCode(ctx, s.admin, workerID, time.Now().Add(codeTTL))
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
	res, err := s.c.CreateEnrollmentCode(ctx, &pb.CreateEnrollmentCodeRequest{WorkerId: workerID, TtlSeconds: uint32(codeTTL.Seconds())})
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
	seeder seeder
	st     store.Store
	// admin is the store's admin the load seeds as and counts with, and
	// district the root of the tree it seeded.
	admin    store.Principal
	district string
	// command runs the server process.
	command *ServerCommand
	// handlers times the in-process server's handlers.
	handlers *rpcTimes
	// pid is the server process's.
	pid  int
	stop func() error
}

// openLoadServer opens what the seeding goes through: the store of a
// server of our own (not serving yet), or the admin API of a running one.
func openLoadServer(ctx context.Context, o Options, dir string, hc *http.Client) (*loadServer, error) {
	if o.ServerURL != "" {
		base := strings.TrimRight(o.ServerURL, "/")
		client := doorbookv1connect.NewAdminServiceClient(hc, base, connect.WithInterceptors(bearer.Token(o.AdminToken)))
		return &loadServer{mode: ModeRemote, url: base, seeder: apiSeeder{client}, stop: func() error { return nil }}, nil
	}
	s := &loadServer{mode: ModeInProcess, dbPath: filepath.Join(dir, "server.db"), stop: func() error { return nil }}
	if o.ServerProcess != nil {
		s.mode, s.command = ModeServerProcess, o.ServerProcess
	}
	backend, err := sqlite.Open(ctx, s.dbPath)
	if err != nil {
		return nil, err
	}
	st := service.New(backend)
	admin, _, err := st.CreateAdmin(ctx, "admin", "")
	if err != nil {
		st.Close()
		return nil, err
	}
	s.st, s.admin, s.seeder = st, admin, storeSeeder{st: st, admin: admin}
	s.stop = st.Close
	return s, nil
}

// start serves the seeded store: in this process, or in a child process.
func (s *loadServer) start(ctx context.Context, logTo string) error {
	switch s.mode {
	case ModeRemote:
		return nil
	case ModeInProcess:
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
	// server-process: the seeded file is handed over to the command.
	if err := s.st.Close(); err != nil {
		return err
	}
	s.st = nil
	logFile, err := os.Create(logTo)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.command.Path, s.command.Args(s.dbPath)...)
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
	case ModeServerProcess:
		return procCPU(s.pid), "server process alone"
	case ModeInProcess:
		return selfCPU(), "whole process: server and simulated devices together"
	}
	return 0, "not measured (remote server)"
}

// peakRSS returns the server's peak resident memory in bytes, and the
// resident pages of files it maps now.
func (s *loadServer) peakRSS() (peak, file int64) {
	switch s.mode {
	case ModeServerProcess:
		pid := strconv.Itoa(s.pid)
		return procPeakRSS(pid), procFileRSS(pid)
	case ModeInProcess:
		return procPeakRSS("self"), procFileRSS("self")
	}
	return 0, 0
}

// countVisits counts the visits on a server of our own through its store,
// as the admin the load seeded with: the visits to the households of the
// load's district (store.Store.VisitPages), which on the fresh database
// are all of them. An in-process server's store is counted live; a server
// process is stopped first (its file is its own while it runs) and the
// store opened again on the file it leaves.
func (s *loadServer) countVisits(ctx context.Context) (int, error) {
	st := s.st
	if s.mode == ModeServerProcess {
		s.stop() // how it exits is not the load's concern (nor was it before)
		s.stop = func() error { return nil }
		backend, err := sqlite.Open(ctx, s.dbPath)
		if err != nil {
			return 0, fmt.Errorf("count visits on the server: %w", err)
		}
		defer backend.Close()
		st = service.New(backend)
	}
	n := 0
	err := st.VisitPages(ctx, s.admin, s.district, func(b syncengine.Bundle) error {
		n += len(b.Visits)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count visits on the server: %w", err)
	}
	return n, nil
}

// seed creates the org tree, the workers and their codes, and (if the
// server takes imports) the households; it returns the devices to enrol.
func (s *loadServer) seed(ctx context.Context, o Options, workers int) ([]*device, error) {
	sd := s.seeder
	tag := fmt.Sprintf("loadtest %s seed %d", time.Now().Format("2006-01-02 15:04:05"), o.Seed)
	district, err := sd.node(ctx, "", pb.OrgLevel_ORG_LEVEL_DISTRICT, tag)
	if err != nil {
		return nil, err
	}
	s.district = district
	gen := demo.NewGenerator(o.Seed, time.Now())
	shape := demo.Shape{HouseholdsPerGrid: o.Households, PersonsPerHousehold: 2}
	var devices []*device
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
		for j := range o.Share {
			i := w*o.Share + j
			if i >= o.Devices {
				break
			}
			code, err := sd.code(ctx, id)
			if err != nil {
				return nil, err
			}
			devices = append(devices, &device{i: i, code: code, lead: j == 0, grid: grid,
				rng: rand.New(rand.NewPCG(o.Seed, uint64(i)+1))})
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
