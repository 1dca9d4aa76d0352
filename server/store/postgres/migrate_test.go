package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/doorbook/doorbook/internal/pgtest"
)

func pool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	ms, err := LoadMigrations(fstest.MapFS{
		"m/010_ten.sql": {Data: []byte("ten")},
		"m/2_two.sql":   {Data: []byte("two")},
		"m/README":      {Data: []byte("not a migration")},
	}, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Version != 2 || ms[1].Version != 10 || ms[1].SQL != "ten" {
		t.Errorf("got %+v", ms)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"no number": {"m/x_one.sql": {}},
		"zero":      {"m/000_zero.sql": {}},
		"twice":     {"m/1_a.sql": {}, "m/001_b.sql": {}},
	} {
		if _, err := LoadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if ms, err := Migrations(); err != nil || len(ms) == 0 || ms[0].Name != "001_feed.sql" {
		t.Errorf("the embedded migrations: %v, %v", ms, err)
	}
}

var testMigrations = []Migration{
	// Neither may run twice: CREATE TABLE without IF NOT EXISTS, and a row
	// counted below.
	{Version: 1, Name: "001_a.sql", SQL: `CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1);`},
	{Version: 2, Name: "002_b.sql", SQL: `CREATE TABLE b (id int); INSERT INTO a VALUES (2);`},
}

// Servers starting at once on a new database apply each migration once.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	p := pool(t, pgtest.Start(t)+" pool_max_conns=16")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range cap(errs) {
		wg.Go(func() { errs <- Migrate(t.Context(), p, testMigrations) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	var rows, versions int
	if err := p.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM schema_migrations)`).Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if rows != 2 || versions != 2 {
		t.Errorf("%d rows in a, %d versions recorded: want 2 and 2", rows, versions)
	}
	if v, err := SchemaVersion(t.Context(), p); err != nil || v != 2 {
		t.Errorf("SchemaVersion = %d, %v", v, err)
	}
	// Again: nothing to do.
	if err := Migrate(t.Context(), p, testMigrations); err != nil {
		t.Fatal(err)
	}
}

// A migration that fails leaves nothing of itself, and the database at the
// version before it; a database newer than the program is refused.
func TestMigrateFailures(t *testing.T) {
	t.Parallel()
	p := pool(t, pgtest.Start(t))
	if v, err := SchemaVersion(t.Context(), p); err != nil || v != 0 {
		t.Fatalf("new database: version %d, %v", v, err)
	}
	bad := append(testMigrations[:1:1], Migration{Version: 2, Name: "002_bad.sql", SQL: `CREATE TABLE half (id int); SELECT * FROM missing;`})
	err := Migrate(t.Context(), p, bad)
	if err == nil || !strings.Contains(err.Error(), "002_bad.sql") {
		t.Fatalf("got %v, want the failing migration named", err)
	}
	if v, _ := SchemaVersion(t.Context(), p); v != 1 {
		t.Errorf("version %d after a failed 2, want 1", v)
	}
	var half bool
	if err := p.QueryRow(t.Context(), `SELECT to_regclass('half') IS NOT NULL`).Scan(&half); err != nil || half {
		t.Errorf("the failed migration's table: exists %v, %v", half, err)
	}

	if err := Migrate(t.Context(), p, testMigrations); err != nil {
		t.Fatal(err)
	}
	err = Migrate(context.Background(), p, testMigrations[:1])
	if !errors.Is(err, ErrNewerSchema) {
		t.Errorf("an older program: got %v, want ErrNewerSchema", err)
	}
	if err := Migrate(t.Context(), p, []Migration{testMigrations[1], testMigrations[0]}); err == nil {
		t.Error("migrations out of order: no error")
	}
}

// Three servers opening one new database at once.
func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	var wg sync.WaitGroup
	dbs := make([]*DB, 3)
	errs := make([]error, 3)
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = Open(t.Context(), dsn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		defer dbs[i].Close()
	}
	if h, err := dbs[0].Head(t.Context()); err != nil || h != 0 {
		t.Errorf("head of a new feed: %d, %v", h, err)
	}
	ms, _ := Migrations()
	if v, err := SchemaVersion(t.Context(), dbs[1].pool); err != nil || v != ms[len(ms)-1].Version {
		t.Errorf("version %d, %v", v, err)
	}
	dbs[2].Close()
	dbs[2].Close() // idempotent
}
