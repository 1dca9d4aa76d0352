package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// binRoots are where Debian and Ubuntu install each major version's
// binaries (/usr/lib/postgresql/15/bin).
var binRoots = []string{"/usr/lib/postgresql"}

func lookPath(file string) (string, error) { return exec.LookPath(file) }

// findBin returns the directory holding initdb and postgres: dir if given,
// else the newest version's under one of roots, else the one of initdb on
// the PATH.
func findBin(dir string, roots []string, lookPath func(string) (string, error)) (string, error) {
	miss := &missingError{}
	if dir != "" {
		if hasBinaries(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("%s=%s holds no initdb and postgres", EnvBin, dir)
	}
	for _, root := range roots {
		miss.looked = append(miss.looked, filepath.Join(root, "*", "bin"))
		entries, err := os.ReadDir(root)
		if err != nil {
			continue
		}
		// Newest version first: 16 before 15 before 9.6.
		var versions []string
		for _, e := range entries {
			if _, err := strconv.ParseFloat(e.Name(), 64); err == nil {
				versions = append(versions, e.Name())
			}
		}
		slices.SortFunc(versions, func(a, b string) int { return compareVersions(b, a) })
		for _, v := range versions {
			if bin := filepath.Join(root, v, "bin"); hasBinaries(bin) {
				return bin, nil
			}
		}
	}
	miss.looked = append(miss.looked, "$PATH")
	if p, err := lookPath("initdb"); err == nil && hasBinaries(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", miss
}

// compareVersions orders "9.6" < "10" < "15".
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

func hasBinaries(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// server is a postgres process this package started, on a data directory
// of its own.
type server struct {
	// dir holds the data directory, the socket and the log.
	dir string
	// exited is closed when the process has exited.
	exited chan struct{}
	proc   *os.Process
	// waitErr is how the process exited, read after exited is closed.
	waitErr error
}

const (
	// port only names the socket file (.s.PGSQL.5432): the server
	// listens on no TCP port, so servers never collide.
	port = 5432
	// dirPrefix names the servers' directories in the temporary directory.
	dirPrefix = "doorbook-pg-"
	// ownerFile, in a server's directory, holds the pid of the test binary
	// that started it: a later binary removes a directory whose owner is
	// gone (one that was killed had no chance to).
	ownerFile = "owner.pid"
	// socketMax is the longest Unix socket path Linux takes, less its NUL.
	socketMax = 107
)

// settings are the server's: fast, not durable.
var settings = []string{
	"listen_addresses=",
	"fsync=off",
	"full_page_writes=off",
	"synchronous_commit=off",
	"max_connections=" + strconv.Itoa(MaxConnections),
	// 300 connections' worth of lock table is plenty: keep memory small.
	"shared_buffers=64MB",
	"max_wal_size=1GB",
	"checkpoint_timeout=30min",
	"log_min_messages=warning",
	"log_checkpoints=off",
}

func (s *server) dsn(database string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", quote(s.dir), port, quote(database))
}

// startServer runs initdb and then postgres, and waits until the server
// takes connections.
func startServer(bin string) (*server, error) {
	acct, err := serverUser()
	if err != nil {
		return nil, err
	}
	base, err := tempBase(acct)
	if err != nil {
		return nil, err
	}
	removeStale(base)
	dir, err := os.MkdirTemp(base, dirPrefix)
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, exited: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	if acct != nil {
		if err := os.Chown(dir, acct.uid, acct.gid); err != nil {
			return nil, fmt.Errorf("hand %s to %s: %w", dir, acct.name, err)
		}
	}
	data := filepath.Join(dir, "data")

	var out bytes.Buffer
	initdb := command(acct, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Stdout, initdb.Stderr = &out, &out
	proc, done, err := startLocked(initdb)
	if err != nil {
		return nil, fmt.Errorf("initdb: %w", err)
	}
	<-done
	if initdb.ProcessState == nil || !initdb.ProcessState.Success() {
		return nil, fmt.Errorf("initdb (pid %d, as %s): %s\n%s", proc.Pid, acct, initdb.ProcessState, out.Bytes())
	}

	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own copy
	args := []string{"-D", data, "-k", dir, "-p", strconv.Itoa(port)}
	for _, kv := range settings {
		args = append(args, "-c", kv)
	}
	pg := command(acct, filepath.Join(bin, "postgres"), args...)
	pg.Stdout, pg.Stderr = logFile, logFile
	s.proc, done, err = startLocked(pg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	go func() {
		s.waitErr = <-done
		close(s.exited)
	}()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.stop()
		log, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("postgres (as %s): %w\n%s", acct, err, tail(log, 4096))
	}
	ok = true
	return s, nil
}

// waitReady waits until the server takes connections.
func (s *server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, s.dsn("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited: %v", s.waitErr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", limit, err)
		}
	}
}

// stop stops the server as `pg_ctl stop -m immediate` would (SIGQUIT: no
// checkpoint, the data is thrown away next), then removes its directory.
// It is safe to call more than once.
func (s *server) stop() {
	if s.proc == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		_ = s.proc.Signal(stopSignal)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.proc.Kill()
			<-s.exited
		}
	}
	// The postmaster's children leave when they see it gone: wait for its
	// pid file, which the last of them removes, for a moment.
	pidFile := filepath.Join(s.dir, "data", "postmaster.pid")
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(pidFile); errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	os.RemoveAll(s.dir)
}

// startLocked starts cmd from a goroutine locked to its OS thread, which
// stays until the process exits: Linux sends the parent-death signal when
// the thread that started a child exits, not the process, and Go may end a
// thread a goroutine leaves locked (go.dev/issue/27505). The returned
// channel yields cmd.Wait's result.
func startLocked(cmd *exec.Cmd) (*os.Process, <-chan error, error) {
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with the goroutine, after the child.
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, nil, err
	}
	return cmd.Process, done, nil
}

// command makes a command that runs as acct (nil: as this process), dies
// with this process where the platform allows, and sees none of the
// caller's PG* variables.
func command(acct *osUser, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = sysProcAttr(acct)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_") && !strings.HasPrefix(kv, "LANG=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "LC_ALL=C")
	if acct != nil {
		cmd.Dir = "/"
	}
	return cmd
}

// osUser is the unprivileged account the server runs as when this
// process is root.
type osUser struct {
	name     string
	uid, gid int
}

func (a *osUser) String() string {
	if a == nil {
		return "this process's user"
	}
	return a.name
}

// serverUser returns the account to run the server as: nil if this process
// is not root, else the postgres system user (Debian's package creates
// it), else nobody.
func serverUser() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &osUser{name: name, uid: uid, gid: gid}, nil
	}
	return nil, errors.New("running as root, and there is no postgres or nobody user to run the server as (initdb and postgres refuse root)")
}

// tempBase returns the directory to make the server's directory in:
// os.TempDir(), or /tmp if acct cannot reach that (a TMPDIR under a 0700
// home) or its socket path would be too long.
func tempBase(acct *osUser) (string, error) {
	var tried []string
	for _, base := range []string{os.TempDir(), "/tmp"} {
		if slices.Contains(tried, base) {
			continue
		}
		tried = append(tried, base)
		// dir/doorbook-pg-NNNNNNNNNN/.s.PGSQL.5432
		if len(base)+len(dirPrefix)+len("/0123456789/.s.PGSQL.5432") > socketMax {
			continue
		}
		if acct == nil || traversable(base, acct) {
			return base, nil
		}
	}
	return "", fmt.Errorf("no temporary directory the server's user %s can reach (tried %s)", acct, strings.Join(tried, ", "))
}

// traversable reports whether acct may search dir and every directory
// above it.
func traversable(dir string, acct *osUser) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || !canSearch(fi, acct) {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

// removeStale removes the servers' directories in base whose test binary
// has gone (killed before it could remove them; its server died with it).
func removeStale(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid == os.Getpid() || alive(pid) {
			continue
		}
		os.RemoveAll(dir)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
