package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/doorbook/doorbook/internal/pgtest"
)

// buildDoorbook builds the doorbook binary into a test's directory (after
// the first build of a run, the go command's cache makes it a link).
func buildDoorbook(t testing.TB) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the doorbook binary with")
	}
	bin := filepath.Join(t.TempDir(), "doorbook")
	if out, err := exec.CommandContext(t.Context(), goBin, "build", "-o", bin, "../cmd/doorbook").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startServe runs `doorbook serve` as a process of its own on db (a SQLite
// file or a PostgreSQL URL), stopped with an interrupt when the test ends,
// and returns the URL it serves on.
func startServe(t testing.TB, bin, db string) *url.URL {
	t.Helper()
	var (
		mu  sync.Mutex
		log bytes.Buffer
	)
	cmd := exec.Command(bin, "serve", "--db", db, "--addr", "127.0.0.1:0", "--json", "--log-format", "json",
		"--credentials", filepath.Join(t.TempDir(), "credentials.json"))
	// The server dies with the test binary, even one killed by its timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return log.Write(p)
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			t.Errorf("serve process %d: %v", cmd.Process.Pid, err)
		}
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			t.Logf("serve process %d log (last 4 KB):\n%s", cmd.Process.Pid, lastBytes(log.String(), 4096))
		}
	})
	var summary struct {
		Server string `json:"server"`
	}
	if err := json.NewDecoder(bufio.NewReader(stdout)).Decode(&summary); err != nil {
		t.Fatalf("serve printed no summary: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return mustURL(t, summary.Server)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func lastBytes(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// serveDB is e's database as serve's --db names it: the SQLite file, or
// the PostgreSQL database's URL.
func (e *env) serveDB(t testing.TB) string {
	t.Helper()
	if e.pgDSN == "" {
		return e.dbPath
	}
	return pgtest.URL(t, e.pgDSN)
}
