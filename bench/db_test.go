package bench

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/doorbook/doorbook/internal/pgtest"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/postgres"
	"github.com/doorbook/doorbook/server/store/sqlite"
)

var flagDB = flag.String("bench.db", "sqlite", "the server's database: sqlite (a file per server) or postgres (a throwaway PostgreSQL, databases cloned from templates)")

func onPostgres() bool { return *flagDB == "postgres" }

// A server database is named by where it is: a SQLite file's path, or a
// PostgreSQL DSN.
func isDSN(loc string) bool { return strings.Contains(loc, "dbname=") }

// openBackend opens the server database at loc.
func openBackend(ctx context.Context, loc string) (store.Backend, error) {
	if isDSN(loc) {
		return postgres.Open(ctx, loc)
	}
	return sqlite.Open(ctx, loc)
}

// newServerDB is a new, empty server database: a file in dir, or a
// PostgreSQL database kept for the process (a template).
func newServerDB(tb testing.TB, dir, name string) string {
	tb.Helper()
	if onPostgres() {
		return pgtest.Template(tb, pgName(name))
	}
	return filepath.Join(dir, name+".db")
}

// copyServerDB copies the closed server database at from: to a file at
// path, or to a PostgreSQL database (kept for the process if keep, else
// dropped when tb ends). It returns the copy's location.
func copyServerDB(tb testing.TB, from, path string, keep bool) string {
	tb.Helper()
	if !isDSN(from) {
		if err := copyDB(from, path); err != nil {
			tb.Fatal(err)
		}
		return path
	}
	if keep {
		return pgtest.Copy(tb, dbName(tb, from), pgName(strings.TrimSuffix(filepath.Base(path), ".db")))
	}
	return pgtest.Clone(tb, dbName(tb, from))
}

func pgName(s string) string {
	return "bench_" + strings.NewReplacer("-", "_", ".", "_").Replace(s)
}

func dbName(tb testing.TB, dsn string) string {
	tb.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		tb.Fatal(fmt.Errorf("DSN %q: %w", dsn, err))
	}
	return cfg.Database
}
