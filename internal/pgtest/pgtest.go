// Package pgtest gives tests a fresh, empty PostgreSQL database on a
// throwaway server.
//
// A test binary shares one server (a "cluster": initdb's data directory and
// the postgres process serving it), started on the first call to Start and
// stopped after the tests by Main, which the package's TestMain calls:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.Start(t) // a database of its own, dropped after the test
//		...
//	}
//
// The server runs the PostgreSQL installed on the machine (Debian:
// `apt-get install postgresql`), found in $DOORBOOK_PG_BIN, else the newest
// /usr/lib/postgresql/*/bin, else $PATH. It listens only on a Unix socket in
// its own temporary directory, with fsync, full_page_writes and
// synchronous_commit off: a crash loses it, which a test's server may.
// As root (CI, containers) it runs as the postgres system user, since
// initdb and postgres refuse root. It dies with the test binary, even one
// killed with SIGKILL (on Linux, by the parent-death signal).
//
// Without PostgreSQL, Start skips the test, saying how to install it;
// with DOORBOOK_PG_REQUIRED=1 (CI, once it has installed it) it fails
// instead. DOORBOOK_PG_DSN names an existing server to use instead of
// starting one (a role that may create databases): a durable server for
// measurements, or a machine where the binaries cannot run.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables read by the package.
const (
	// EnvBin is the directory holding initdb and postgres.
	EnvBin = "DOORBOOK_PG_BIN"
	// EnvDSN is an existing server to create the databases on instead.
	EnvDSN = "DOORBOOK_PG_DSN"
	// EnvRequired, set to 1, fails a test that would skip for want of
	// PostgreSQL.
	EnvRequired = "DOORBOOK_PG_REQUIRED"
)

// MaxConnections is the server's max_connections: enough for a test that
// runs three servers, each with a pool of a few dozen connections, and
// tests in parallel beside it.
const MaxConnections = 300

// binary is the test binary's cluster, set by Main before the tests run
// (so read without a lock) and started by the first Start. It is the one
// package-level variable: a cluster costs a second or two to start, so the
// tests of a binary share one, each in a database of its own.
var binary *cluster

// Main runs the tests and then stops the cluster they started, if any, and
// exits with their status. Call it from TestMain.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main for a TestMain that has more to do after the tests: it
// returns their status instead of exiting.
func Run(m *testing.M) int {
	c := &cluster{}
	binary = c
	code := m.Run()
	c.stop()
	return code
}

// Template returns a DSN for the database name on the test binary's
// cluster, created empty if it does not exist, and kept until the cluster
// stops: a fixture several tests clone (see Clone).
func Template(tb testing.TB, name string) string {
	tb.Helper()
	c := binary
	if c == nil {
		tb.Fatal("pgtest: Template needs the binary's cluster (call Main or Run from TestMain)")
	}
	if err := c.ensure(); err != nil {
		var miss *missingError
		if errors.As(err, &miss) && os.Getenv(EnvRequired) != "1" {
			tb.Skip(err.Error())
		}
		tb.Fatalf("pgtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.admin(ctx, "CREATE DATABASE "+name); err != nil && !strings.Contains(err.Error(), "already exists") {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	return withDatabase(c.dsn, name)
}

// Clone creates a database as a copy of the one named template (no one
// may be connected to it), for tb alone, and returns its DSN.
func Clone(tb testing.TB, template string) string {
	tb.Helper()
	name := "t_" + randomHex(8)
	dsn := Copy(tb, template, name)
	c := binary
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.admin(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return dsn
}

// Copy creates the database name as a copy of the one named template (no
// one may be connected to it), kept until the cluster stops, and returns
// its DSN.
func Copy(tb testing.TB, template, name string) string {
	tb.Helper()
	c := binary
	if c == nil {
		tb.Fatal("pgtest: Copy needs the binary's cluster (call Main or Run from TestMain)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.admin(ctx, "CREATE DATABASE "+name+" TEMPLATE "+template); err != nil {
		tb.Fatalf("pgtest: copy %s: %v", template, err)
	}
	return withDatabase(c.dsn, name)
}

// URL returns dsn (a keyword/value DSN, as Start gives) as a
// postgres:// URL, the form `doorbook serve --db` takes.
func URL(tb testing.TB, dsn string) string {
	tb.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	user := url.User(cfg.User)
	if cfg.Password != "" {
		user = url.UserPassword(cfg.User, cfg.Password)
	}
	q := url.Values{"host": {cfg.Host}, "port": {strconv.Itoa(int(cfg.Port))}, "sslmode": {"disable"}}
	return (&url.URL{Scheme: "postgres", User: user, Path: "/" + cfg.Database, RawQuery: q.Encode()}).String()
}

// Backup writes the database of dsn to file with pg_dump, in its custom
// format, as an operator's backup would: one consistent snapshot, taken
// while others may be writing.
func Backup(tb testing.TB, dsn, file string) {
	tb.Helper()
	tool(tb, "pg_dump", "--format=custom", "--file="+file, "--dbname="+dsn)
}

// Restore replaces the database of dsn with the backup in file (see
// Backup): it ends every connection to it, drops it, creates it empty and
// restores the backup into it with pg_restore.
func Restore(tb testing.TB, dsn, file string) {
	tb.Helper()
	c := binary
	if c == nil {
		tb.Fatal("pgtest: Restore needs the binary's cluster (call Main or Run from TestMain)")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		tb.Fatalf("pgtest: restore: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := pgx.Identifier{cfg.Database}.Sanitize()
	if err := c.admin(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		tb.Fatalf("pgtest: restore: %v", err)
	}
	if err := c.admin(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: restore: %v", err)
	}
	tool(tb, "pg_restore", "--exit-on-error", "--no-owner", "--dbname="+dsn, file)
}

// tool runs one of PostgreSQL's client programs, from the binaries the
// cluster was started from (else as Start finds them), failing tb with its
// output if it fails.
func tool(tb testing.TB, name string, args ...string) {
	tb.Helper()
	c := binary
	if c == nil {
		tb.Fatalf("pgtest: %s needs the binary's cluster (call Main or Run from TestMain)", name)
	}
	bin := c.bin
	if bin == "" {
		var err error
		if bin, err = findBin(os.Getenv(EnvBin), binRoots, lookPath); err != nil {
			tb.Fatalf("pgtest: %s: %v", name, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, filepath.Join(bin, name), args...).CombinedOutput(); err != nil {
		tb.Fatalf("pgtest: %s: %v\n%s", name, err, out)
	}
}

// Start creates a fresh, empty database on the test binary's cluster
// (starting the cluster on first use) and returns a DSN for it, in
// PostgreSQL's keyword/value form; pgxpool settings such as pool_max_conns
// may be appended. The database is dropped when the test ends. A test
// binary that does not call Main gets a cluster for this test alone (a
// second or two more).
func Start(tb testing.TB) string {
	tb.Helper()
	c := binary
	if c == nil {
		c = &cluster{}
		tb.Cleanup(c.stop)
	}
	return c.database(tb)
}

// database creates a database on c, started if need be, for tb alone.
func (c *cluster) database(tb testing.TB) string {
	tb.Helper()
	if err := c.ensure(); err != nil {
		var miss *missingError
		if errors.As(err, &miss) && os.Getenv(EnvRequired) != "1" {
			tb.Skip(err.Error())
		}
		tb.Fatalf("pgtest: %v", err)
	}
	name := "t_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.admin(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// FORCE ends connections a test left open (a pool not closed).
		if err := c.admin(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return withDatabase(c.dsn, name)
}

// cluster is a server the tests create their databases on: one this
// package started, or the one named by EnvDSN.
type cluster struct {
	once sync.Once
	err  error
	// dsn reaches the server's maintenance database as a superuser.
	dsn string
	// srv is the server this package started; nil for EnvDSN's.
	srv *server
	// findBin finds the binaries (nil: in EnvBin, binRoots, $PATH).
	findBin func() (string, error)
	// bin is the directory of the binaries the server was started from
	// ("" for EnvDSN's server).
	bin string
}

func (c *cluster) ensure() error {
	c.once.Do(func() {
		if dsn := os.Getenv(EnvDSN); dsn != "" {
			c.dsn = dsn
			return
		}
		find := c.findBin
		if find == nil {
			find = func() (string, error) { return findBin(os.Getenv(EnvBin), binRoots, lookPath) }
		}
		bin, err := find()
		if err != nil {
			c.err = err
			return
		}
		c.bin = bin
		c.srv, c.err = startServer(bin)
		if c.err == nil {
			c.dsn = c.srv.dsn("postgres")
		}
	})
	return c.err
}

// stop stops the server, if this package started one. It is safe to call
// more than once.
func (c *cluster) stop() {
	if c.srv != nil {
		c.srv.stop()
	}
}

// admin runs one statement on the maintenance database, on a connection
// of its own: tests in parallel create their databases at once (checked
// with two dozen), which CREATE DATABASE allows as long as nobody is
// connected to its template.
func (c *cluster) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns dsn with its database replaced by name.
func withDatabase(dsn, name string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			u.Path = "/" + name
			return u.String()
		}
	}
	// In the keyword/value form, the last of a repeated keyword wins.
	return dsn + " dbname=" + quote(name)
}

// quote quotes a keyword/value DSN value.
func quote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics first)
	return hex.EncodeToString(b)
}

// missingError means PostgreSQL is not installed: the test is skipped.
type missingError struct{ looked []string }

func (e *missingError) Error() string {
	return fmt.Sprintf("PostgreSQL not found (looked in %s): install it with `apt-get install postgresql` (Debian, Ubuntu), "+
		"or set %s to the directory holding initdb and postgres, or %s to a server to use",
		strings.Join(e.looked, ", "), EnvBin, EnvDSN)
}
