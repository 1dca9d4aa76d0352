package e2e

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/rs/zerolog"

	sdk "github.com/doorbook/doorbook/client-sdk"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/internal/pgtest"
	"github.com/doorbook/doorbook/server"
	"github.com/doorbook/doorbook/server/console"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/postgres"
	"github.com/doorbook/doorbook/server/store/sqlite"
	"github.com/doorbook/doorbook/syncengine"
)

// env is a running server with an admin and an org tree: one district, one
// street, one community, and grids.
type env struct {
	t      testing.TB
	URL    string
	Store  store.Store
	Admin  doorbookv1connect.AdminServiceClient
	Grids  []string
	now    *fakeNow
	dir    string
	dbPath string
	// pgDSN, if set, is the PostgreSQL database the server runs on
	// instead of the SQLite file at dbPath.
	pgDSN string
	addr  string
	halt  func()
	// adminToken is the installation-wide admin's.
	adminToken string
}

// fakeNow is a wall clock tests can move; zero offset means time.Now.
type fakeNow struct{ offset atomic.Int64 }

func (f *fakeNow) Now() time.Time           { return time.Now().Add(time.Duration(f.offset.Load())) }
func (f *fakeNow) Set(offset time.Duration) { f.offset.Store(int64(offset)) }
func (f *fakeNow) Add(offset time.Duration) { f.offset.Add(int64(offset)) }

// newEnv starts a server with grids grids and the default must-visit
// categories (tags of other categories are refused).
func newEnv(t testing.TB, grids int) *env {
	t.Helper()
	return newEnvOn(t, grids, "")
}

// newEnvOn is newEnv on the PostgreSQL database of pgDSN ("" for a SQLite
// file).
func newEnvOn(t testing.TB, grids int, pgDSN string) *env {
	t.Helper()
	e := newBareEnvOn(t, grids, pgDSN)
	ctx := context.Background()
	if _, err := e.Admin.LoadDefaultCategories(ctx, &pb.LoadDefaultCategoriesRequest{}); err != nil {
		t.Fatal(err)
	}
	return e
}

// newBareEnv is newEnv without categories.
func newBareEnv(t testing.TB, grids int) *env {
	return newBareEnvOn(t, grids, "")
}

// newBareEnvOn is newBareEnv on the PostgreSQL database of pgDSN ("" for
// a SQLite file).
func newBareEnvOn(t testing.TB, grids int, pgDSN string) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if pgDSN == "" && *flagDB == "postgres" {
		pgDSN = pgtest.Start(t)
	}
	e := &env{t: t, now: &fakeNow{}, dir: dir, dbPath: filepath.Join(dir, "server.db"), pgDSN: pgDSN, addr: "127.0.0.1:0"}
	e.start()
	t.Cleanup(e.stop)
	st := e.Store
	_, token, err := st.CreateAdmin(ctx, "root", "")
	if err != nil {
		t.Fatal(err)
	}
	e.adminToken = token
	e.Admin = doorbookv1connect.NewAdminServiceClient(http.DefaultClient, e.URL, connect.WithInterceptors(bearer.Token(token)))
	district := e.node("", pb.OrgLevel_ORG_LEVEL_DISTRICT, "District")
	street := e.node(district, pb.OrgLevel_ORG_LEVEL_STREET, "Street")
	community := e.node(street, pb.OrgLevel_ORG_LEVEL_COMMUNITY, "Community")
	for i := range grids {
		e.Grids = append(e.Grids, e.node(community, pb.OrgLevel_ORG_LEVEL_GRID, "Grid "+string(rune('A'+i))))
	}
	return e
}

// nodeAt is the env's node of level (it has one district, one street and
// one community).
func (e *env) nodeAt(level pb.OrgLevel) string {
	e.t.Helper()
	nodes, err := e.Admin.ListOrgNodes(context.Background(), &pb.ListOrgNodesRequest{})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, n := range nodes.GetNodes() {
		if n.GetLevel() == level {
			return n.GetId()
		}
	}
	e.t.Fatalf("no %s node", level)
	return ""
}

func (e *env) node(parent string, level pb.OrgLevel, name string) string {
	e.t.Helper()
	res, err := e.Admin.CreateOrgNode(context.Background(), &pb.CreateOrgNodeRequest{ParentId: parent, Level: level, Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.GetNode().GetId()
}

// worker creates a worker with grids and returns an enrolment code.
func (e *env) worker(name string, grids ...string) (workerID, code string) {
	e.t.Helper()
	ctx := context.Background()
	w, err := e.Admin.CreateWorker(ctx, &pb.CreateWorkerRequest{Name: name, Role: pb.WorkerRole_WORKER_ROLE_GRID_WORKER, GridIds: grids})
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := e.Admin.CreateEnrollmentCode(ctx, &pb.CreateEnrollmentCodeRequest{WorkerId: w.GetWorker().GetId()})
	if err != nil {
		e.t.Fatal(err)
	}
	return w.GetWorker().GetId(), c.GetCode()
}

// device opens a replica file and enrols it with a new code for workerID.
func (e *env) device(name, workerID string, opts ...sdk.Option) *sdk.Replica {
	e.t.Helper()
	ctx := context.Background()
	c, err := e.Admin.CreateEnrollmentCode(ctx, &pb.CreateEnrollmentCodeRequest{WorkerId: workerID})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.enroll(name, c.GetCode(), opts...)
}

func (e *env) enroll(name, code string, opts ...sdk.Option) *sdk.Replica {
	e.t.Helper()
	ctx := context.Background()
	r, err := sdk.Open(ctx, filepath.Join(e.dir, name+".db"), opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { r.Close() })
	if err := r.Enroll(ctx, e.URL, code, name); err != nil {
		e.t.Fatal(err)
	}
	return r
}

func mustSync(t testing.TB, r *sdk.Replica) sdk.SyncReport {
	t.Helper()
	rep, err := r.Sync(context.Background())
	if err != nil {
		t.Fatalf("sync %s: %v", r.Path(), err)
	}
	return rep
}

// open opens a backend on the server's database, as a server process of
// its own would.
func (e *env) open(ctx context.Context) (store.Backend, error) {
	if e.pgDSN != "" {
		return postgres.Open(ctx, e.pgDSN, postgres.WithClock(e.now.Now))
	}
	return sqlite.Open(ctx, e.dbPath, sqlite.WithClock(e.now.Now))
}

// start opens the server's database and serves it on e.addr (a free port the
// first time, the same one after a restart).
func (e *env) start() {
	e.t.Helper()
	st, err := e.open(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	svc := service.New(st, service.WithClock(e.now.Now))
	srv := server.New(svc, server.WithLogger(zerolog.New(zerolog.NewTestWriter(e.t)).Level(zerolog.WarnLevel)), server.WithNow(e.now.Now))
	l, err := net.Listen("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.addr = l.Addr().String()
	e.URL = "http://" + e.addr
	e.Store = svc
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, l, console.Mount(srv.Handler())) }()
	e.halt = func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("server shutdown: %v", err)
		}
		svc.Close()
	}
}

// importRows loads b through the store as the admin, as a bulk import does.
func (e *env) importRows(b syncengine.Bundle) {
	e.t.Helper()
	ctx := context.Background()
	admin, err := e.Store.Authenticate(ctx, e.adminToken)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.Store.Import(ctx, admin, b); err != nil {
		e.t.Fatal(err)
	}
}

// stop shuts the server down gracefully and closes its database.
func (e *env) stop() {
	if e.halt != nil {
		e.halt()
		e.halt = nil
	}
	// The clients' kept-alive connections to it are dead now. A request
	// sent on one before the client notices fails with a broken pipe; the
	// next server on this address must get fresh ones.
	http.DefaultClient.CloseIdleConnections()
}
