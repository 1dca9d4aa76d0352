package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/fieldwork"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/internal/demo"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// size is a data set of the issue.
type size struct {
	Name       string
	Grids      int
	PerGrid    int // households per grid
	VisitsEach int
}

func (s size) Households() int { return s.Grids * s.PerGrid }

var sizes = map[string]size{
	"tiny":      {Name: "tiny", Grids: 2, PerGrid: 50, VisitsEach: 10},
	"community": {Name: "community", Grids: 8, PerGrid: 250, VisitsEach: 10},
	"street":    {Name: "street", Grids: 200, PerGrid: 250, VisitsEach: 10},
}

const (
	seed = 20260501
	// notesBytes: about 200 characters of notes, Chinese (3 bytes each in
	// UTF-8), as in e2e's TestSlowLinkBootstrap.
	notesBytes = 600
)

// shape is every size's shape per grid: ~12 household fields, 0–3 persons,
// 0–3 category tags (the generator's), 10 visits each with ~200 characters
// of notes.
func (s size) shape() demo.Shape {
	return demo.Shape{HouseholdsPerGrid: s.PerGrid, PersonsPerHousehold: 3, VisitsPerHousehold: float64(s.VisitsEach), NotesBytes: notesBytes}
}

func currentSize(tb testing.TB) size {
	tb.Helper()
	s, ok := sizes[*flagSize]
	if !ok {
		tb.Fatalf("-bench.size=%q: want tiny, community or street", *flagSize)
	}
	return s
}

// fixture is a size's server database, built once per process: an org tree,
// one worker whose one scope holds every household of the size (Grids grids
// of PerGrid households, VisitsEach visits each by that worker), and a
// second worker with one grid of households without visits (for the bytes
// per household on the wire).
type fixture struct {
	Size size
	// Full is the server database with every row; Empty the same tree and
	// workers before any row was imported.
	Full, Empty string
	AdminToken  string
	Worker      string
	WorkerName  string
	Grids       []string
	// HHWorker's scope is HHGrid: HHCount households, no visits.
	HHWorker string
	HHGrid   string
	HHCount  int
	base     time.Time
	// Rows of the worker's scope: what a bootstrap brings.
	Households, Persons, Tags, Visits int
	BuildTime                         time.Duration
}

func (f *fixture) Rows() int { return f.Households + f.Persons + f.Tags + f.Visits }

var (
	fixturesMu sync.Mutex
	fixtures   = map[string]*fixture{}
)

// getFixture builds (or returns the cached) fixture of s.
func getFixture(tb testing.TB, s size) *fixture {
	tb.Helper()
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	if f := fixtures[s.Name]; f != nil {
		return f
	}
	f, err := buildFixture(tb, s)
	if err != nil {
		tb.Fatalf("build %s fixture: %v", s.Name, err)
	}
	fixtures[s.Name] = f
	tb.Logf("%s fixture: %d households, %d persons, %d tags, %d visits (%d rows) imported in %v",
		s.Name, f.Households, f.Persons, f.Tags, f.Visits, f.Rows(), f.BuildTime.Round(time.Millisecond))
	return f
}

func buildFixture(tb testing.TB, s size) (*fixture, error) {
	ctx := context.Background()
	began := time.Now()
	dir := filepath.Join(cacheDir, s.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f := &fixture{Size: s, Full: newServerDB(tb, dir, s.Name+"-full"),
		WorkerName: "bench worker", base: time.Now().Add(-time.Hour).Truncate(time.Second)}
	backend, err := openBackend(ctx, f.Full)
	if err != nil {
		return nil, err
	}
	defer func() {
		if backend != nil {
			backend.Close()
		}
	}()
	st := service.New(backend)
	admin, token, err := st.CreateAdmin(ctx, "root", "")
	if err != nil {
		return nil, err
	}
	f.AdminToken = token
	// The demo's tags name the default categories: pushes of others are refused.
	for _, c := range fieldwork.DefaultCategorySet(func() syncengine.Clock { return syncengine.Clock{HLC: 1, Node: 1} }) {
		if _, _, err := st.PutCategory(ctx, admin, c, true); err != nil {
			return nil, err
		}
	}
	mk := func(parent string, level store.OrgLevel, name string) (string, error) {
		n, err := st.CreateOrgNode(ctx, admin, store.OrgNode{ParentID: parent, Level: level, Name: name})
		return n.ID, err
	}
	district, err := mk("", store.LevelDistrict, "District")
	if err != nil {
		return nil, err
	}
	street, err := mk(district, store.LevelStreet, "Street")
	if err != nil {
		return nil, err
	}
	community, err := mk(street, store.LevelCommunity, "Community")
	if err != nil {
		return nil, err
	}
	for i := range s.Grids {
		g, err := mk(community, store.LevelGrid, fmt.Sprintf("Grid %d", i+1))
		if err != nil {
			return nil, err
		}
		f.Grids = append(f.Grids, g)
	}
	if f.HHGrid, err = mk(community, store.LevelGrid, "Households only"); err != nil {
		return nil, err
	}
	w, err := st.CreateWorker(ctx, admin, store.Worker{Name: f.WorkerName, Role: 1, GridIDs: f.Grids})
	if err != nil {
		return nil, err
	}
	f.Worker = w.ID
	hw, err := st.CreateWorker(ctx, admin, store.Worker{Name: "households only", Role: 1, GridIDs: []string{f.HHGrid}})
	if err != nil {
		return nil, err
	}
	f.HHWorker = hw.ID
	// The empty template: the tree and workers, no rows.
	if err := st.Close(); err != nil {
		return nil, err
	}
	backend = nil
	f.Empty = copyServerDB(tb, f.Full, filepath.Join(dir, s.Name+"-empty.db"), true)
	if backend, err = openBackend(ctx, f.Full); err != nil {
		return nil, err
	}
	st = service.New(backend)
	if admin, err = st.Authenticate(ctx, token); err != nil {
		return nil, err
	}
	err = f.bundles(func(b *syncengine.Bundle) error {
		f.Households += len(b.Households)
		f.Persons += len(b.Persons)
		f.Tags += len(b.Tags)
		f.Visits += len(b.Visits)
		return st.Import(ctx, admin, *b)
	})
	if err != nil {
		return nil, err
	}
	f.HHCount = min(s.Households(), 2000)
	hh := demo.NewGenerator(seed+1, f.base).Grid(f.HHGrid, demo.Shape{HouseholdsPerGrid: f.HHCount, PersonsPerHousehold: 3}, f.WorkerName, "")
	if err := st.Import(ctx, admin, hh); err != nil {
		return nil, err
	}
	err = st.Close()
	backend = nil
	f.BuildTime = time.Since(began)
	return f, err
}

// bundles regenerates the worker's rows, grid by grid: the same rows every
// time (same seed, same base time), without holding them all in memory.
func (f *fixture) bundles(fn func(*syncengine.Bundle) error) error {
	gen := demo.NewGenerator(seed, f.base)
	for _, g := range f.Grids {
		b := gen.Grid(g, f.Size.shape(), f.WorkerName, f.Worker)
		if err := fn(&b); err != nil {
			return err
		}
	}
	return nil
}

// copyDB copies a closed SQLite database (and its log, if any).
func copyDB(from, to string) error {
	for _, suffix := range []string{"", "-wal"} {
		if err := copyFile(from+suffix, to+suffix); err != nil && !(suffix != "" && os.IsNotExist(err)) {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// admin is an admin API client of the server at url.
func adminClient(url, token string) doorbookv1connect.AdminServiceClient {
	return doorbookv1connect.NewAdminServiceClient(http.DefaultClient, url, connect.WithInterceptors(bearer.Token(token)))
}

// enroll opens a new replica at path and enrols it as a device of worker.
func enroll(tb testing.TB, srv *child, token, worker, path string, opts ...sdk.Option) *sdk.Replica {
	tb.Helper()
	ctx := context.Background()
	code, err := adminClient(srv.URL, token).CreateEnrollmentCode(ctx, &pb.CreateEnrollmentCodeRequest{WorkerId: worker})
	if err != nil {
		tb.Fatal(err)
	}
	r, err := sdk.Open(ctx, path, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := r.Enroll(ctx, srv.URL, code.GetCode(), filepath.Base(path)); err != nil {
		r.Close()
		tb.Fatal(err)
	}
	return r
}

// replicaMigrations is the SDK's replica schema, to make a replica file
// directly.
func replicaMigrations() ([]sqlitex.Migration, error) {
	ms, err := sdk.Migrations()
	if err != nil {
		return nil, err
	}
	out := make([]sqlitex.Migration, len(ms))
	for i, m := range ms {
		out[i] = sqlitex.Migration{Version: m.Version, Name: m.Name, SQL: m.SQL}
	}
	return out, nil
}
