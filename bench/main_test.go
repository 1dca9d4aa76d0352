// Package bench holds the sync benchmarks of the performance issue:
// bootstrap, push and incremental sync against a real server on loopback,
// measured against a floor (the same rows inserted into SQLite with one
// prepared statement in one transaction, and the same messages marshalled
// and unmarshalled), and the bytes on the wire per row.
//
// The server runs in a child process (this test binary, re-executed), so
// that the client's and the server's peak memory are measured apart.
//
//	go test -run '^$' -bench . -benchtime 1x -bench.size=tiny ./bench       # CI: seconds
//	go test -run '^$' -bench . -benchtime 3x -bench.size=community ./bench
//	go test -run '^$' -bench 'Bootstrap|Push|Floor' -benchtime 1x -bench.size=street -timeout 60m ./bench
package bench

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/doorbook/doorbook/internal/pgtest"
	"github.com/doorbook/doorbook/server"
	"github.com/doorbook/doorbook/server/service"
)

var flagServerProfile = flag.String("bench.server-cpuprofile", "", "write each server process's CPU profile to this path, suffixed with the process's number")

var flagSize = flag.String("bench.size", cmp.Or(os.Getenv("DOORBOOK_BENCH_SIZE"), "community"), "data set (default also from $DOORBOOK_BENCH_SIZE): tiny (100 households), community (2,000 households, 20,000 visits) or street (50,000 households, 500,000 visits)")

// childEnv names the server database a re-executed test binary serves;
// profileEnv, where it writes its CPU profile.
const (
	childEnv   = "DOORBOOK_BENCH_SERVER_DB"
	profileEnv = "DOORBOOK_BENCH_SERVER_CPUPROFILE"
)

var childCount atomic.Int64

// cacheDir holds the fixtures of this process (removed when it exits).
var cacheDir string

func TestMain(m *testing.M) {
	if db := os.Getenv(childEnv); db != "" {
		if err := serveChild(db); err != nil {
			fmt.Fprintln(os.Stderr, "bench server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	flag.Parse()
	dir, err := os.MkdirTemp("", "doorbook-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cacheDir = dir
	code := pgtest.Run(m)
	stopAllChildren()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ---- memory ----

// memPeak samples this process's heap every few milliseconds.
type memPeak struct {
	stop chan struct{}
	done chan struct{}
	// Peaks, in bytes: heap objects (live and not yet swept, what
	// MemStats.HeapAlloc reports), heap in use (objects plus spans' free
	// slots, HeapInuse) and the live heap as of the last GC.
	alloc, inuse, live atomic.Uint64
}

var memSamples = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/unused:bytes"},
	{Name: "/gc/heap/live:bytes"},
}

type memStats struct {
	HeapAlloc uint64 `json:"heap_alloc"`
	HeapInuse uint64 `json:"heap_inuse"`
	HeapLive  uint64 `json:"heap_live"`
	// PeakRSS is VmHWM since the last reset (Linux; 0 elsewhere).
	PeakRSS uint64 `json:"peak_rss"`
}

// startMemPeak collects garbage, resets the kernel's peak RSS and samples
// the heap until Stop.
func startMemPeak() *memPeak {
	runtime.GC()
	resetPeakRSS()
	p := &memPeak{stop: make(chan struct{}), done: make(chan struct{})}
	s := make([]metrics.Sample, len(memSamples))
	copy(s, memSamples)
	sample := func() {
		metrics.Read(s)
		obj, unused, live := s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64()
		storeMax(&p.alloc, obj)
		storeMax(&p.inuse, obj+unused)
		storeMax(&p.live, live)
	}
	sample()
	go func() {
		defer close(p.done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return p
}

func (p *memPeak) Stop() memStats {
	close(p.stop)
	<-p.done
	return memStats{HeapAlloc: p.alloc.Load(), HeapInuse: p.inuse.Load(), HeapLive: p.live.Load(), PeakRSS: peakRSS()}
}

func storeMax(a *atomic.Uint64, v uint64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// resetPeakRSS resets VmHWM (Linux: writing 5 to clear_refs); best effort.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// ---- the server child ----

// serveChild serves the database at path on a loopback port, which it
// writes to stdout as "addr HOST:PORT". Then it reads commands from stdin:
// "reset" starts a new memory peak, "stats" writes the peak as JSON; end of
// input stops it.
func serveChild(path string) error {
	if prof := os.Getenv(profileEnv); prof != "" {
		pf, err := os.Create(prof)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			pf.Close()
		}()
	}
	ctx := context.Background()
	st, err := openBackend(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	srv := server.New(service.New(st), server.WithLogger(zerolog.Nop()))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, l, srv.Handler()) }()
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "addr %s\n", l.Addr())
	out.Flush()
	peak := startMemPeak()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "reset":
			peak.Stop()
			peak = startMemPeak()
			fmt.Fprintln(out, "ok")
		case "stats":
			b, _ := json.Marshal(peak.Stop())
			peak = startMemPeak()
			fmt.Fprintf(out, "%s\n", b)
		}
		out.Flush()
	}
	peak.Stop()
	cancel()
	return <-done
}

// child is a running server process.
type child struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	Addr string
	URL  string
	once sync.Once
}

var (
	childrenMu sync.Mutex
	children   = map[*child]bool{}
)

// startServer runs a server process over the database at path.
func startServer(tb testing.TB, path string) *child {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	if *flagServerProfile != "" {
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%s.%d", profileEnv, *flagServerProfile, childCount.Add(1)))
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewScanner(outPipe)}
	childrenMu.Lock()
	children[c] = true
	childrenMu.Unlock()
	tb.Cleanup(c.Stop)
	line, err := c.line()
	if err != nil {
		c.Stop()
		tb.Fatalf("server process: %v", err)
	}
	addr, ok := strings.CutPrefix(line, "addr ")
	if !ok {
		c.Stop()
		tb.Fatalf("server process said %q", line)
	}
	c.Addr, c.URL = addr, "http://"+addr
	return c
}

func (c *child) line() (string, error) {
	if !c.out.Scan() {
		if err := c.out.Err(); err != nil {
			return "", err
		}
		return "", io.ErrUnexpectedEOF
	}
	return c.out.Text(), nil
}

// ResetMem starts a new peak in the server process.
func (c *child) ResetMem(tb testing.TB) {
	tb.Helper()
	if _, err := io.WriteString(c.in, "reset\n"); err != nil {
		tb.Fatal(err)
	}
	if l, err := c.line(); err != nil || l != "ok" {
		tb.Fatalf("server reset: %q %v", l, err)
	}
}

// Mem is the server process's peak since the last ResetMem.
func (c *child) Mem(tb testing.TB) memStats {
	tb.Helper()
	if _, err := io.WriteString(c.in, "stats\n"); err != nil {
		tb.Fatal(err)
	}
	l, err := c.line()
	if err != nil {
		tb.Fatal(err)
	}
	var m memStats
	if err := json.Unmarshal([]byte(l), &m); err != nil {
		tb.Fatalf("server stats %q: %v", l, err)
	}
	return m
}

// Stop ends the server (gracefully: its database is closed) and waits.
func (c *child) Stop() {
	c.once.Do(func() {
		c.in.Close()
		done := make(chan struct{})
		go func() { c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			c.cmd.Process.Kill()
			<-done
		}
		childrenMu.Lock()
		delete(children, c)
		childrenMu.Unlock()
	})
}

func stopAllChildren() {
	childrenMu.Lock()
	cs := make([]*child, 0, len(children))
	for c := range children {
		cs = append(cs, c)
	}
	childrenMu.Unlock()
	for _, c := range cs {
		c.Stop()
	}
}

// ---- the wire ----

// counter counts the bytes an http.Client sends and receives: bodies as
// they cross the connection (compressed if they are), and an estimate of
// the headers (name, value, ": " and CRLF per line, plus the start line).
type counter struct {
	up, down       atomic.Int64
	upHdr, downHdr atomic.Int64
	calls          atomic.Int64
}

func (c *counter) Reset() {
	c.up.Store(0)
	c.down.Store(0)
	c.upHdr.Store(0)
	c.downHdr.Store(0)
	c.calls.Store(0)
}

type countingTransport struct {
	next http.RoundTripper
	c    *counter
}

func headerBytes(h http.Header) int64 {
	var n int64
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 4)
		}
	}
	return n
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.c.calls.Add(1)
	t.c.upHdr.Add(headerBytes(req.Header) + int64(len(req.Method)+len(req.URL.RequestURI())+12))
	if req.Body != nil {
		req.Body = &countingBody{ReadCloser: req.Body, n: &t.c.up}
	}
	res, err := t.next.RoundTrip(req)
	if err != nil {
		return res, err
	}
	t.c.downHdr.Add(headerBytes(res.Header) + int64(len(res.Status)+11))
	res.Body = &countingBody{ReadCloser: res.Body, n: &t.c.down}
	return res, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// httpClient reaches the server at *addr whatever host a URL names (a
// replica file copied from a template keeps the URL it was enrolled with),
// counting bytes into c.
func httpClient(addr *string, c *counter) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, *addr)
	}
	tr.DisableCompression = true
	return &http.Client{Transport: countingTransport{next: tr, c: c}}
}
