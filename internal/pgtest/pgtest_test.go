package pgtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		helperServer()
		return
	}
	Main(m)
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestStartGivesAnEmptyDatabase(t *testing.T) {
	t.Parallel()
	conn := connect(t, Start(t))
	if n := queryString(t, conn, `SELECT count(*)::text FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`); n != "0" {
		t.Errorf("%s tables in a fresh database", n)
	}
	if _, err := conn.Exec(t.Context(), `CREATE TABLE t (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	if os.Getenv(EnvDSN) != "" {
		return // someone else's server: its settings are its own
	}
	for setting, want := range map[string]string{
		"fsync":              "off",
		"full_page_writes":   "off",
		"synchronous_commit": "off",
		"max_connections":    strconv.Itoa(MaxConnections),
		"listen_addresses":   "",
	} {
		if got := queryString(t, conn, `SELECT current_setting($1)`, setting); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
}

// Each test has a database of its own: one test's tables are not
// another's.
func TestDatabasesAreSeparate(t *testing.T) {
	t.Parallel()
	a, b := connect(t, Start(t)), connect(t, Start(t))
	if x, y := queryString(t, a, `SELECT current_database()`), queryString(t, b, `SELECT current_database()`); x == y {
		t.Fatalf("both in %s", x)
	}
	if _, err := a.Exec(t.Context(), `CREATE TABLE only_a (id int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec(t.Context(), `SELECT * FROM only_a`); err == nil {
		t.Fatal("b sees a's table")
	}
}

// A test's database is dropped after it, even with a connection left
// open.
func TestDatabaseDroppedAfterTest(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("inner", func(t *testing.T) {
		conn, err := pgx.Connect(t.Context(), Start(t))
		if err != nil {
			t.Fatal(err)
		}
		// Left open on purpose: the drop must not wait for it.
		name = queryString(t, conn, `SELECT current_database()`)
	})
	conn := connect(t, Start(t))
	if n := queryString(t, conn, `SELECT count(*)::text FROM pg_database WHERE datname = $1`, name); n != "0" {
		t.Errorf("database %s still there after its test", name)
	}
}

// Tests in parallel each get their database.
func TestParallelStarts(t *testing.T) {
	t.Parallel()
	names := make(chan string, 8)
	t.Run("group", func(t *testing.T) {
		for i := range cap(names) {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				conn := connect(t, Start(t))
				names <- queryString(t, conn, `SELECT current_database()`)
			})
		}
	})
	close(names)
	seen := map[string]bool{}
	for n := range names {
		if seen[n] {
			t.Errorf("database %s given twice", n)
		}
		seen[n] = true
	}
}

func fakeBin(t *testing.T, dir string, names ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindBin(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, v := range []string{"9.6", "10", "15"} {
		fakeBin(t, filepath.Join(root, v, "bin"), "initdb", "postgres", "pg_ctl")
	}
	fakeBin(t, filepath.Join(root, "16", "bin"), "initdb") // half installed
	fakeBin(t, filepath.Join(root, "common", "bin"), "initdb", "postgres")
	noPath := func(string) (string, error) { return "", exec.ErrNotFound }

	got, err := findBin("", []string{root}, noPath)
	if want := filepath.Join(root, "15", "bin"); err != nil || got != want {
		t.Errorf("newest version: got %q, %v; want %q", got, err, want)
	}

	own := filepath.Join(t.TempDir(), "own")
	fakeBin(t, own, "initdb", "postgres")
	if got, err := findBin(own, []string{root}, noPath); err != nil || got != own {
		t.Errorf("%s: got %q, %v; want %q", EnvBin, got, err, own)
	}
	empty := t.TempDir()
	if _, err := findBin(empty, []string{root}, noPath); err == nil || errors.As(err, new(*missingError)) {
		t.Errorf("%s naming an empty directory: got %v, want an error other than not installed", EnvBin, err)
	}

	onPath := filepath.Join(t.TempDir(), "path")
	fakeBin(t, onPath, "initdb", "postgres")
	pathHas := func(string) (string, error) { return filepath.Join(onPath, "initdb"), nil }
	if got, err := findBin("", []string{empty}, pathHas); err != nil || got != onPath {
		t.Errorf("$PATH: got %q, %v; want %q", got, err, onPath)
	}

	_, err = findBin("", []string{empty, filepath.Join(empty, "absent")}, noPath)
	var miss *missingError
	if !errors.As(err, &miss) {
		t.Fatalf("nothing installed: got %v, want a missingError", err)
	}
	if !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Errorf("the message does not say how to install PostgreSQL: %v", err)
	}
}

// skipTB records a Skip or Fatal and stops the test function, as
// testing.T does.
type skipTB struct {
	testing.TB
	skipped, failed string
}

func (s *skipTB) Helper()          {}
func (s *skipTB) Skip(args ...any) { s.skipped = fmt.Sprint(args...); panic(s) }
func (s *skipTB) Fatalf(format string, args ...any) {
	s.failed = fmt.Sprintf(format, args...)
	panic(s)
}

func (s *skipTB) run(c *cluster) {
	defer func() {
		if r := recover(); r != nil && r != s {
			panic(r)
		}
	}()
	c.database(s)
}

// Without PostgreSQL, a test is skipped with a message that says how to
// install it, unless PostgreSQL is required.
func TestSkipsWithoutPostgres(t *testing.T) {
	t.Setenv(EnvDSN, "")
	t.Setenv(EnvRequired, "")
	nowhere := func() (string, error) {
		return findBin("", []string{t.TempDir()}, func(string) (string, error) { return "", exec.ErrNotFound })
	}
	tb := &skipTB{TB: t}
	tb.run(&cluster{findBin: nowhere})
	if !strings.Contains(tb.skipped, "apt-get install postgresql") || tb.failed != "" {
		t.Errorf("skipped %q, failed %q: want a skip that says how to install", tb.skipped, tb.failed)
	}

	t.Setenv(EnvRequired, "1")
	tb = &skipTB{TB: t}
	tb.run(&cluster{findBin: nowhere})
	if tb.skipped != "" || !strings.Contains(tb.failed, "apt-get install postgresql") {
		t.Errorf("required: skipped %q, failed %q: want a failure", tb.skipped, tb.failed)
	}
}

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ dsn, want string }{
		{"host=/tmp/x port=5432 dbname=postgres", "host=/tmp/x port=5432 dbname=postgres dbname='t_1'"},
		{"postgres://u:p@localhost:5433/postgres?sslmode=disable", "postgres://u:p@localhost:5433/t_1?sslmode=disable"},
	} {
		got := withDatabase(c.dsn, "t_1")
		if got != c.want {
			t.Errorf("withDatabase(%q) = %q, want %q", c.dsn, got, c.want)
		}
		cfg, err := pgx.ParseConfig(got)
		if err != nil || cfg.Database != "t_1" {
			t.Errorf("%q: database %v, %v", got, cfg, err)
		}
	}
	if got := quote(`a'b\c`); got != `'a\'b\\c'` {
		t.Errorf("quote = %s", got)
	}
}

func installed(t *testing.T) string {
	t.Helper()
	bin, err := findBin(os.Getenv(EnvBin), binRoots, lookPath)
	if err != nil {
		if errors.As(err, new(*missingError)) && os.Getenv(EnvRequired) != "1" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	return bin
}

// running reports whether process pid runs (exists and is not a zombie
// waiting for a parent to reap it).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	var out []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			n, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			out = append(out, n)
		}
	}
	return out
}

func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for _, pid := range pids {
		for running(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still runs", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// A stopped server leaves no process and no directory behind.
func TestServerStops(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	t.Parallel()
	s, err := startServer(installed(t))
	if err != nil {
		t.Fatal(err)
	}
	conn := connect(t, s.dsn("postgres"))
	queryString(t, conn, `SELECT 'ready'`)
	if os.Geteuid() == 0 {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.proc.Pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(status), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" && f[1] == "0" {
				t.Errorf("the server runs as root: %s", l)
			}
		}
	}
	pids := append([]int{s.proc.Pid}, children(s.proc.Pid)...)
	if len(pids) < 3 {
		t.Errorf("postmaster %d has children %v: expected its background processes", s.proc.Pid, pids[1:])
	}
	s.stop()
	s.stop() // idempotent
	waitGone(t, pids)
	if _, err := os.Stat(s.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left behind: %v", s.dir, err)
	}
}

// helperEnv makes the test binary a helper that starts a server, prints
// its postmaster's pid and directory, and waits to be killed.
const helperEnv = "PGTEST_HELPER_SERVER"

func helperServer() {
	bin, err := findBin(os.Getenv(EnvBin), binRoots, lookPath)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	s, err := startServer(bin)
	if err != nil {
		fmt.Println("error", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(1)
	}
	fmt.Println(s.proc.Pid, s.dir)
	time.Sleep(time.Minute) // killed long before
	s.stop()
	os.Exit(1)
}

// The server dies with a test binary that is killed (SIGKILL: no cleanup
// runs), and the next binary removes its directory.
func TestServerDiesWithTestBinary(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	installed(t)
	t.Parallel()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q, %v", line, err)
	}
	var pid int
	var dir string
	if _, err := fmt.Sscan(line, &pid, &dir); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q", line)
	}
	pids := append([]int{pid}, children(pid)...)
	if !running(pid) {
		t.Fatalf("postmaster %d not running", pid)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitGone(t, pids)

	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the killed binary's directory: %v", err)
	}
	removeStale(filepath.Dir(dir))
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s not removed as stale: %v", dir, err)
	}
}

// As root, the server's directory must be one its user can reach.
func TestTraversable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("checks the directories of the user the server runs as when root")
	}
	acct, err := serverUser()
	if err != nil {
		t.Fatal(err)
	}
	top := t.TempDir()
	inner := filepath.Join(top, "a", "b")
	if err := os.MkdirAll(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(top, 0o700); err != nil {
		t.Fatal(err)
	}
	if traversable(inner, acct) {
		t.Errorf("%s reaches %s under a 0700 directory", acct, inner)
	}
	if err := os.Chmod(top, 0o711); err != nil {
		t.Fatal(err)
	}
	// t.TempDir's own parent may be 0700 too: check only what is ours.
	if parentOK := traversable(filepath.Dir(top), acct); parentOK && !traversable(inner, acct) {
		t.Errorf("%s cannot reach %s", acct, inner)
	}

	t.Setenv("TMPDIR", inner)
	if err := os.Chmod(top, 0o700); err != nil {
		t.Fatal(err)
	}
	base, err := tempBase(acct)
	if err != nil {
		t.Fatal(err)
	}
	if base == inner || !traversable(base, acct) {
		t.Errorf("tempBase with an unreachable TMPDIR = %s", base)
	}
}
