package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/internal/hostile"
	se "github.com/doorbook/doorbook/syncengine"
)

// TestHostileLoad runs the real binary ("doorbook serve --demo") as a child
// process and sends it what an attacker would, while an honest phone keeps
// pushing and pulling:
//
//   - decompression bombs of both codecs (a gzip stream of 1 GiB and a zstd
//     one of 4 GiB of zeros; a zstd frame asking for a 256 MiB window; 16 KB
//     of gzip that inflates to 8 million empty changes);
//   - repeated fields far over their limit, uncompressed (two million empty
//     changes in 4 MiB) and compressed;
//   - a body declared far larger than the message limit;
//   - bodies sent at a few bytes a second;
//
// each over Connect, gRPC and gRPC-Web, with no token and with a worker's
// token, many at once, and HTTP/2 floods (rapid reset, CONTINUATION). The
// server's peak resident memory must stay under hostileMaxRSS, its CPU under
// a bound far below what inflating the bombs would cost, every hostile call
// must get the right code (Unauthenticated without a token, before its body
// is read), and every honest call must succeed. -hostile.rounds runs more
// waves.
var hostileRoundsFlag = flag.Int("hostile.rounds", 2, "TestHostileLoad: waves of hostile calls")

const (
	// hostileMaxRSS is the peak resident memory the server must stay under
	// (the bound); it idles at about 60 MB with the demo loaded.
	hostileMaxRSS = 300 << 20
	// hostileMaxCPU bounds the server's CPU for one wave's hostile calls.
	// Inflating the gzip bombs alone took seconds each before intake.
	hostileMaxCPU = 20 * time.Second
)

func TestHostileLoad(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the server's memory and CPU from /proc")
	}
	h := startHostileServer(t)
	ctx := t.Context()

	// The honest phone keeps working through every wave.
	honest := h.enroll(t, 1)
	stopHonest := make(chan struct{})
	var honestCalls, honestErrs atomic.Int64
	var honestFirstErr atomic.Value
	honestDone := make(chan struct{})
	go func() {
		defer close(honestDone)
		for i := 0; ; i++ {
			select {
			case <-stopHonest:
				return
			default:
			}
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			err := honest.round(rctx, i)
			cancel()
			if err != nil {
				honestErrs.Add(1)
				honestFirstErr.CompareAndSwap(nil, err.Error())
			}
			honestCalls.Add(1)
		}
	}()

	attacker := h.enroll(t, 0)
	bombs := newBombs(t)
	idleRSS := h.rss(t)
	cpu0 := h.cpu(t)
	var calls atomic.Int64
	for wave := 1; wave <= *hostileRoundsFlag; wave++ {
		var wg sync.WaitGroup
		for _, proto := range []string{"connect", "grpc", "grpcweb"} {
			for _, token := range []string{"", attacker.token} {
				for _, a := range bombs {
					for range a.parallel {
						wg.Go(func() {
							calls.Add(1)
							h.attack(t, proto, token, a)
						})
					}
				}
				wg.Go(func() { calls.Add(1); h.slowBody(t, proto, token) })
			}
		}
		wg.Go(func() { h.rapidReset(t, attacker.token) })
		wg.Go(func() { h.continuationFlood(t) })
		wg.Wait()
	}
	close(stopHonest)
	<-honestDone
	cpu := h.cpu(t) - cpu0
	peak := h.peakRSS(t)
	t.Logf("hostile calls %d in %d waves, server CPU %v, server RSS idle %d MiB, peak %d MiB; honest calls %d, failed %d",
		calls.Load(), *hostileRoundsFlag, cpu.Round(time.Millisecond), idleRSS>>20, peak>>20, honestCalls.Load(), honestErrs.Load())
	if peak > hostileMaxRSS {
		t.Errorf("the server's peak RSS was %d MiB, over %d MiB", peak>>20, hostileMaxRSS>>20)
	}
	if per := cpu / time.Duration(*hostileRoundsFlag); per > hostileMaxCPU {
		t.Errorf("a wave of hostile calls cost the server %v of CPU, over %v", per, hostileMaxCPU)
	}
	if n := honestErrs.Load(); n > 0 {
		t.Errorf("%d honest calls failed during the attack, the first: %v", n, honestFirstErr.Load())
	}
	if honestCalls.Load() == 0 {
		t.Error("the honest phone made no call")
	}
	// And the server still answers.
	if err := honest.round(ctx, -1); err != nil {
		t.Errorf("after the attack: %v", err)
	}
}

// hostileServer is the child process.
type hostileServer struct {
	cmd   *exec.Cmd
	url   string
	creds credentials
	log   *bytes.Buffer
	logMu *sync.Mutex
}

func buildDoorbook(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	bin := filepath.Join(t.TempDir(), "doorbook")
	if out, err := exec.CommandContext(t.Context(), goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startHostileServer(t *testing.T) *hostileServer {
	t.Helper()
	bin := buildDoorbook(t)
	db := filepath.Join(t.TempDir(), "server.db")
	h := &hostileServer{log: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	// A short grace makes slow bodies fail in seconds, not the default 20.
	h.cmd = exec.Command(bin, "serve", "--db", db, "--addr", "127.0.0.1:0", "--demo", "--json",
		"--log-format", "json", "--body-grace", "2s", "--body-rate", "512")
	// The server dies with the test, even one killed by its timeout.
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.cmd.Stderr = &lockedWriter{w: h.log, mu: h.logMu}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = h.cmd.Process.Signal(os.Interrupt)
		_ = h.cmd.Wait()
		if t.Failed() {
			h.logMu.Lock()
			t.Logf("server log (last 4 KB):\n%s", tail(h.log.String(), 4096))
			h.logMu.Unlock()
		}
	})
	var summary struct {
		Server      string `json:"server"`
		Credentials string `json:"credentials"`
	}
	if err := json.NewDecoder(bufio.NewReader(stdout)).Decode(&summary); err != nil {
		t.Fatalf("serve printed no summary: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	h.url = summary.Server
	b, err := os.ReadFile(summary.Credentials)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &h.creds); err != nil {
		t.Fatal(err)
	}
	return h
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// procStatus reads a field of /proc/PID/status, in bytes.
func (h *hostileServer) procStatus(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc status", field)
	return 0
}

func (h *hostileServer) rss(t *testing.T) int64     { return h.procStatus(t, "VmRSS") }
func (h *hostileServer) peakRSS(t *testing.T) int64 { return h.procStatus(t, "VmHWM") }

// cpu is the server's user and system CPU so far.
func (h *hostileServer) cpu(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", h.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}

// device is an enrolled phone talking raw protobuf.
type device struct {
	token  string
	worker string
	grid   string
	sync   doorbookv1connect.SyncServiceClient
	hh     string
	seq    uint16
	cursor uint64
}

func (h *hostileServer) enroll(t *testing.T, worker int) *device {
	t.Helper()
	res, err := doorbookv1connect.NewEnrollmentServiceClient(http.DefaultClient, h.url).Enroll(t.Context(),
		&pb.EnrollRequest{Code: h.creds.Workers[worker].EnrollmentCode, DeviceName: "phone"})
	if err != nil {
		t.Fatal(err)
	}
	d := &device{
		token:  res.GetToken(),
		worker: res.GetScope().GetWorker().GetId(),
		grid:   res.GetScope().GetWorker().GetGridIds()[0],
		hh:     uuid.NewString(),
	}
	d.sync = doorbookv1connect.NewSyncServiceClient(http.DefaultClient, h.url, connect.WithInterceptors(bearer.Token(d.token)))
	return d
}

func (d *device) clock() *pb.Clock {
	d.seq++
	return &pb.Clock{Hlc: se.PackHLC(time.Now().UnixMilli(), d.seq), Node: 11}
}

// round is one honest sync: the first registers a household, every one
// visits it, then pulls.
func (d *device) round(ctx context.Context, i int) error {
	var changes []*pb.Change
	if i == 0 {
		changes = append(changes, &pb.Change{Id: uuid.NewString(), Payload: &pb.Change_Household{Household: &pb.Household{
			Id: d.hh, GridId: &pb.StringField{Value: d.grid, Clock: d.clock()}, HeadName: &pb.StringField{Value: "王芳", Clock: d.clock()},
		}}})
	}
	changes = append(changes, &pb.Change{Id: uuid.NewString(), Payload: &pb.Change_Visit{Visit: &pb.Visit{
		// One a day, back from today: under the cap on visits to one household in a day.
		Id: uuid.NewString(), HouseholdIds: []string{d.hh}, VisitorId: d.worker, VisitedAt: timestamppb.New(time.Now().AddDate(0, 0, -max(i, 0))),
		Form: pb.VisitForm_VISIT_FORM_IN_PERSON, Notes: strings.Repeat("入户走访，情况正常。", 20), Clock: d.clock(),
	}}})
	if _, err := d.sync.Push(ctx, &pb.PushRequest{Changes: changes}); err != nil {
		return fmt.Errorf("honest push: %w", err)
	}
	res, err := d.sync.Pull(ctx, &pb.PullRequest{Cursor: d.cursor, Limit: 100})
	if err != nil {
		return fmt.Errorf("honest pull: %w", err)
	}
	d.cursor = res.GetCursor()
	return nil
}

// bomb is one hostile message: its bytes, already compressed with
// encoding if any, and the code it must get with a token.
type bomb struct {
	name     string
	encoding string
	body     []byte
	code     connect.Code
	parallel int
}

func newBombs(t *testing.T) []bomb {
	t.Helper()
	emptyChanges := func(n int) []byte { return bytes.Repeat([]byte{0x0a, 0x00}, n) }
	gzipZeros, err := hostile.GzipZeros(1 << 30)
	if err != nil {
		t.Fatal(err)
	}
	return []bomb{
		// 16 KB that inflates to 8 million empty changes: stopped at 4 MiB.
		{name: "gzip, 8M empty changes", encoding: "gzip", body: hostile.Gzip(emptyChanges(8 << 20)), code: connect.CodeResourceExhausted, parallel: 4},
		// Just under the message limit, so that it inflates whole: the
		// count of changes refuses it.
		{name: "zstd, 2M empty changes", encoding: "zstd", body: hostile.Zstd(emptyChanges(2<<20 - 8)), code: connect.CodeResourceExhausted, parallel: 4},
		{name: "raw, 2M empty changes", body: emptyChanges(2<<20 - 8), code: connect.CodeResourceExhausted, parallel: 2},
		{name: "zstd, 4 GiB of zeros", encoding: "zstd", body: hostile.ZstdRLEBomb(4<<30, 23), code: connect.CodeResourceExhausted, parallel: 4},
		{name: "zstd, 256 MiB window", encoding: "zstd", body: hostile.ZstdRLEBomb(256<<20, 28), code: connect.CodeResourceExhausted, parallel: 4},
		{name: "gzip, 1 GiB of zeros", encoding: "gzip", body: gzipZeros, code: connect.CodeResourceExhausted, parallel: 4},
	}
}

// h2cClient speaks HTTP/2 without TLS, as gRPC needs.
func h2cClient() *http.Client {
	tr := &http.Transport{}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr}
}

func protocolOptions(proto string) (*http.Client, []connect.ClientOption) {
	switch proto {
	case "grpc":
		return h2cClient(), []connect.ClientOption{connect.WithGRPC()}
	case "grpcweb":
		return http.DefaultClient, []connect.ClientOption{connect.WithGRPCWeb()}
	}
	return http.DefaultClient, nil
}

// attack sends one bomb as a push and checks the code it gets.
func (h *hostileServer) attack(t *testing.T, proto, token string, b bomb) {
	client, opts := protocolOptions(proto)
	if b.encoding == "" {
		// The raw bytes are the message itself.
		opts = append(opts, connect.WithCodec(hostile.RawCodec{Body: b.body}))
	} else {
		opts = append(opts, hostile.SendCompressed(b.encoding, b.body))
	}
	if token != "" {
		opts = append(opts, connect.WithInterceptors(bearer.Token(token)))
	}
	c := doorbookv1connect.NewSyncServiceClient(client, h.url, opts...)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	_, err := c.Push(ctx, &pb.PushRequest{})
	want := b.code
	if token == "" {
		want = connect.CodeUnauthenticated
	}
	if got := connect.CodeOf(err); got != want && !(token == "" && refusedMidBody(err)) {
		t.Errorf("%s over %s (token: %v): %v, want %v", b.name, proto, token != "", err, want)
	}
}

// refusedMidBody reports whether a call failed because the server closed
// the connection while the client was still sending its body: the server
// answered a caller without a token at once and read no more of it, and
// over HTTP/1.1 the client may hit the closed socket before it reads why.
func refusedMidBody(err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// slowBody sends a push a byte every 200 ms. Without a token it must be
// refused at once; with one, cut after the grace (2 s here): either way
// long before it is whole.
func (h *hostileServer) slowBody(t *testing.T, proto, token string) {
	const size = 4 << 10
	pr, pw := io.Pipe()
	var sent atomic.Int64
	go func() {
		defer pw.Close()
		var prefix []byte
		if proto != "connect" {
			prefix = []byte{0, 0, 0, size >> 8, size & 0xff}
		}
		if _, err := pw.Write(prefix); err != nil {
			return
		}
		for range size {
			if _, err := pw.Write([]byte{0x0a}); err != nil {
				return
			}
			sent.Add(1)
			time.Sleep(200 * time.Millisecond) // the attacker's pace
		}
	}()
	client := http.DefaultClient
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.url+doorbookv1connect.SyncServicePushProcedure, pr)
	if err != nil {
		t.Fatal(err)
	}
	switch proto {
	case "connect":
		req.Header.Set("Content-Type", "application/proto")
	case "grpc":
		client = h2cClient()
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Te", "trailers")
	case "grpcweb":
		req.Header.Set("Content-Type", "application/grpc-web+proto")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	pr.CloseWithError(errors.New("done"))
	limit := int64(60) // 2 s of grace, 12 s of idle tolerance at most
	if token == "" {
		limit = 5
	}
	if n := sent.Load(); n > limit {
		t.Errorf("slow body over %s (token: %v): the server read %d bytes at 5 B/s before ending it, want at most %d", proto, token != "", n, limit)
	}
}

// rapidReset opens HTTP/2 streams and cancels each at once, thousands of
// times on one connection (CVE-2023-44487).
func (h *hostileServer) rapidReset(t *testing.T, token string) {
	conn, fr := h.h2conn(t)
	if conn == nil {
		return
	}
	defer conn.Close()
	var hdr bytes.Buffer
	enc := hpack.NewEncoder(&hdr)
	for _, f := range [][2]string{
		{":method", "POST"}, {":scheme", "http"}, {":authority", strings.TrimPrefix(h.url, "http://")},
		{":path", doorbookv1connect.SyncServicePullProcedure}, {"content-type", "application/grpc"},
		{"authorization", "Bearer " + token},
	} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for i := uint32(1); i < 20000; i += 2 {
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: i, BlockFragment: hdr.Bytes(), EndHeaders: true}); err != nil {
			return // the server hung up: that is a defence too
		}
		if err := fr.WriteRSTStream(i, http2.ErrCodeCancel); err != nil {
			return
		}
	}
}

// continuationFlood sends one HEADERS frame and then CONTINUATION frames
// without end (CVE-2023-45288): the server must hang up long before 16 MiB.
func (h *hostileServer) continuationFlood(t *testing.T) {
	conn, fr := h.h2conn(t)
	if conn == nil {
		return
	}
	defer conn.Close()
	var hdr bytes.Buffer
	enc := hpack.NewEncoder(&hdr)
	_ = enc.WriteField(hpack.HeaderField{Name: ":method", Value: "POST"})
	_ = enc.WriteField(hpack.HeaderField{Name: ":path", Value: doorbookv1connect.SyncServicePullProcedure})
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr.Bytes()}); err != nil {
		t.Errorf("continuation flood: %v", err)
		return
	}
	var junk bytes.Buffer
	jenc := hpack.NewEncoder(&junk)
	for junk.Len() < 15<<10 {
		_ = jenc.WriteField(hpack.HeaderField{Name: "x-junk-" + strconv.Itoa(junk.Len()), Value: strings.Repeat("a", 200)})
	}
	sent := 0
	for sent < 16<<20 {
		if err := fr.WriteContinuation(1, false, junk.Bytes()); err != nil {
			return // hung up on
		}
		sent += junk.Len()
	}
	t.Errorf("continuation flood: the server took %d MiB of header fragments without hanging up", sent>>20)
}

// h2conn opens an HTTP/2 connection with prior knowledge, past the
// settings exchange.
func (h *hostileServer) h2conn(t *testing.T) (net.Conn, *http2.Framer) {
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Errorf("dial: %v", err)
		return nil, nil
	}
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Errorf("preface: %v", err)
		conn.Close()
		return nil, nil
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Errorf("settings: %v", err)
		conn.Close()
		return nil, nil
	}
	// Drain what the server sends, so that its writes never block ours.
	go func() {
		for {
			if _, err := fr.ReadFrame(); err != nil {
				return
			}
		}
	}()
	return conn, fr
}
