// Package intake owns a request body from its first byte to the message
// Connect decodes. It sits in front of the Connect handlers, as plain HTTP
// middleware, so that nothing a caller sends costs the server memory or
// CPU before the caller has been authenticated and the cost has been
// bounded:
//
//   - the caller is authenticated from the headers before any of the body
//     is read (the Authenticate hook), for Connect, gRPC and gRPC-Web alike;
//   - a body must arrive at a minimum rate, with no long pause, or it is
//     cut: a client sending one byte a second cannot hold a request open;
//   - compressed messages are inflated here, by decoders that stop at the
//     message limit (a bounded window for zstd, a counted reader for
//     gzip), so a bomb costs at most the limit, not its inflated size;
//   - the repeated fields of a protobuf message are counted on the wire,
//     against the limits the protos declare (buf.validate max_items,
//     max_pairs), before Go decodes a single one: sixteen kilobytes of
//     empty list entries cannot become millions of objects;
//   - every byte held for a request (the raw body, the inflated message,
//     an estimate of its decoded objects) is charged to one server-wide
//     budget: concurrent requests wait for room, or are refused with
//     ResourceExhausted, and never add up to gigabytes;
//   - a procedure may bound how many of its calls are decoded and handled
//     at once (Procedure.MaxInFlight): the rest wait with their body read
//     but not decoded, charged for their body alone, so that calls queuing
//     for one resource behind the handler do not each hold, nor take from
//     the budget, their decoded message while they queue.
//
// Connect then receives an uncompressed body it decodes as usual; its own
// read limit stays as a second line.
package intake

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Defaults.
const (
	// DefaultMaxMessageBytes bounds a request message, inflated.
	DefaultMaxMessageBytes = 4 << 20
	// DefaultPassthroughBytes bounds the whole body of a procedure intake
	// does not own (health checks, reflection).
	DefaultPassthroughBytes = 256 << 10
	// DefaultBudgetBytes is the memory all request bodies in flight may hold.
	DefaultBudgetBytes = 128 << 20
	// DefaultPublicMaxMessageBytes bounds a public procedure's message (an
	// enrolment is a code and a device name).
	DefaultPublicMaxMessageBytes = 16 << 10
	// DefaultPublicBudgetBytes is what the bodies of public procedures
	// (and of paths intake passes through) may hold together: callers
	// without a token never take the authenticated callers' budget.
	DefaultPublicBudgetBytes = 8 << 20
	// DefaultQueueWait is how long a request waits for room in the budget.
	DefaultQueueWait = 10 * time.Second
	// DefaultBodyGrace is how long any body may take before the minimum
	// rate applies: a phone on a 2G link needs seconds to get going.
	DefaultBodyGrace = 20 * time.Second
	// DefaultMinBodyRate is the slowest a body may arrive after the grace,
	// in bytes per second (512 B/s is 4 kbit/s: below what a 2G link
	// carries on a bad day).
	DefaultMinBodyRate = 512
	// DefaultBodyIdle is the longest pause between two reads of a body.
	DefaultBodyIdle = 30 * time.Second
	// objectBytes is what one decoded object (a message, a string, a map
	// entry) costs in Go beyond its bytes on the wire: the struct, its
	// headers and the allocator's rounding.
	objectBytes = 160
	// chargeChunk is how much of the budget a body takes at a time while
	// it arrives.
	chargeChunk = 64 << 10
)

// Procedure is what intake knows of one RPC.
type Procedure struct {
	// Public procedures need no credentials (enrolment).
	Public bool
	// Input is the request message, for counting its repeated fields.
	Input protoreflect.MessageDescriptor
	// MaxMessageBytes, if set, bounds this procedure's message instead of
	// Config.MaxMessageBytes: a call that carries a whole file.
	MaxMessageBytes int
	// MaxInFlight, if set, is how many of this procedure's calls may be
	// decoded and handled at once: the rest wait, their body read, for as
	// long as their caller does.
	MaxInFlight int
}

// Config configures a Guard. Zero values take the defaults.
type Config struct {
	// Procedures are the RPCs whose bodies intake reads, by path. Each must
	// take a single request message (unary or server-streaming): the body
	// is read whole before Connect sees it. Any other path is passed
	// through with its body bounded by PassthroughBytes.
	Procedures map[string]Procedure
	// Authenticate checks a non-public procedure's caller from the
	// request's headers, before its body is read, and returns the context
	// the handler runs with. Its error is sent as it is (a *connect.Error
	// keeps its code; anything else is Unauthenticated).
	Authenticate func(ctx context.Context, procedure string, r *http.Request) (context.Context, error)
	// Refused is told of every request intake refuses (for the log).
	Refused func(r *http.Request, procedure string, err *connect.Error)

	MaxMessageBytes       int
	PublicMaxMessageBytes int
	PassthroughBytes      int
	BudgetBytes           int64
	PublicBudgetBytes     int64
	QueueWait             time.Duration
	BodyGrace             time.Duration
	MinBodyRate           int
	BodyIdle              time.Duration
	// now is the clock of body deadlines.
	now func() time.Time
}

// Guard is the middleware. Build it with New.
type Guard struct {
	cfg    Config
	next   http.Handler
	budget *budget
	// public is the budget of callers without a token.
	public *budget
	errs   *connect.ErrorWriter
	limits *limitCache
	// gates hold the procedures with a MaxInFlight, by path.
	gates map[string]*gate
}

// New returns a guard in front of next.
func New(next http.Handler, cfg Config) *Guard {
	cfg.MaxMessageBytes = orDefault(cfg.MaxMessageBytes, DefaultMaxMessageBytes)
	cfg.PassthroughBytes = orDefault(cfg.PassthroughBytes, DefaultPassthroughBytes)
	cfg.BudgetBytes = orDefault(cfg.BudgetBytes, DefaultBudgetBytes)
	cfg.PublicMaxMessageBytes = orDefault(cfg.PublicMaxMessageBytes, DefaultPublicMaxMessageBytes)
	cfg.PublicBudgetBytes = orDefault(cfg.PublicBudgetBytes, DefaultPublicBudgetBytes)
	cfg.QueueWait = orDefault(cfg.QueueWait, DefaultQueueWait)
	cfg.BodyGrace = orDefault(cfg.BodyGrace, DefaultBodyGrace)
	cfg.MinBodyRate = orDefault(cfg.MinBodyRate, DefaultMinBodyRate)
	cfg.BodyIdle = orDefault(cfg.BodyIdle, DefaultBodyIdle)
	if cfg.now == nil {
		cfg.now = time.Now
	}
	gates := map[string]*gate{}
	for path, proc := range cfg.Procedures {
		if proc.MaxInFlight > 0 {
			gates[path] = newGate(proc.MaxInFlight)
		}
	}
	return &Guard{
		cfg:    cfg,
		next:   next,
		budget: newBudget(cfg.BudgetBytes, cfg.now),
		public: newBudget(cfg.PublicBudgetBytes, cfg.now),
		errs:   connect.NewErrorWriter(),
		limits: newLimitCache(),
		gates:  gates,
	}
}

// orDefault is v, or d when v is not positive.
func orDefault[T int | int64 | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

// protocol is how a request frames its message.
type protocol struct {
	// enveloped: gRPC, gRPC-Web and Connect streaming frame each message
	// with a 5-byte prefix; Connect unary sends the bare message.
	enveloped bool
	// encodingHeader names the message's compression.
	encodingHeader string
	json           bool
}

// classify tells how r carries its message; ok is false for what is not a
// Connect, gRPC or gRPC-Web POST (Connect's handlers refuse those without
// reading a body).
func classify(r *http.Request) (protocol, bool) {
	if r.Method != http.MethodPost {
		return protocol{}, false
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return protocol{}, false
	}
	sub := func(prefix string) (string, bool) {
		if ct == prefix {
			return "proto", true
		}
		s, ok := strings.CutPrefix(ct, prefix+"+")
		return s, ok
	}
	if s, ok := sub("application/grpc"); ok {
		return protocol{enveloped: true, encodingHeader: "Grpc-Encoding", json: s == "json"}, true
	}
	if s, ok := sub("application/grpc-web"); ok {
		return protocol{enveloped: true, encodingHeader: "Grpc-Encoding", json: s == "json"}, true
	}
	if s, ok := strings.CutPrefix(ct, "application/connect+"); ok {
		return protocol{enveloped: true, encodingHeader: "Connect-Content-Encoding", json: s == "json"}, true
	}
	if s, ok := strings.CutPrefix(ct, "application/"); ok && (s == "proto" || s == "json") {
		return protocol{encodingHeader: "Content-Encoding", json: s == "json"}, true
	}
	return protocol{}, false
}

func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	proc, owned := g.cfg.Procedures[r.URL.Path]
	if !owned {
		g.passthrough(w, r)
		return
	}
	ctx := r.Context()
	if !proc.Public && g.cfg.Authenticate != nil {
		var err error
		if ctx, err = g.cfg.Authenticate(ctx, r.URL.Path, r); err != nil {
			g.refuse(w, r, asConnect(err, connect.CodeUnauthenticated))
			return
		}
		r = r.WithContext(ctx)
	}
	p, ok := classify(r)
	if !ok {
		// A GET (Connect's unary GET carries its message in the URL,
		// bounded by the header limit) or a content type Connect refuses.
		r.Body = http.MaxBytesReader(w, r.Body, 0)
		g.next.ServeHTTP(w, r)
		return
	}
	acct := g.budget.account()
	if proc.Public {
		acct = g.public.account()
	}
	defer acct.releaseAll()
	body, err := g.intake(ctx, w, r, p, proc, acct)
	if err != nil {
		var ce *connect.Error
		if !errors.As(err, &ce) {
			// The caller went away or the connection broke: no one to answer.
			return
		}
		g.refuse(w, r, ce)
		return
	}
	acct.bodyRead()
	r.Header.Del(p.encodingHeader)
	size := 0
	for _, b := range body {
		size += len(b)
	}
	buffers := net.Buffers(body)
	r.Body = io.NopCloser(&buffers)
	r.ContentLength = int64(size)
	r.Header.Set("Content-Length", strconv.Itoa(size))
	// After the body, not before: a caller sending slowly holds budget,
	// never a slot, and unread bodies never fill an HTTP/2 connection's
	// window under a call past the gate. A call waiting holds its body
	// alone: what its message costs decoded is charged once it is let in.
	if gt := g.gates[r.URL.Path]; gt != nil {
		if !gt.enter(ctx) {
			// The caller went away, or the server is stopping: an answer,
			// in case someone is left to read it.
			g.refuse(w, r, connect.NewError(connect.CodeUnavailable, fmt.Errorf("gave up waiting for a turn: %w", ctx.Err())))
			return
		}
		defer gt.leave()
		if err := acct.grow(ctx, acct.decoded, g.cfg.QueueWait); err != nil {
			var ce *connect.Error
			if errors.As(err, &ce) {
				g.refuse(w, r, ce)
			}
			return
		}
		acct.bodyRead()
	}
	g.next.ServeHTTP(w, r)
}

// passthrough serves a path intake does not own (health checks,
// reflection, unknown paths): its body is bounded in size, in time (the
// slow-body rules), and in memory (the public budget holds its whole size
// while it runs).
func (g *Guard) passthrough(w http.ResponseWriter, r *http.Request) {
	acct := g.public.account()
	defer acct.releaseAll()
	if err := acct.grow(r.Context(), int64(g.cfg.PassthroughBytes), g.cfg.QueueWait); err != nil {
		var ce *connect.Error
		if errors.As(err, &ce) {
			g.refuse(w, r, ce)
		}
		return
	}
	// Charged whole at once: it never waits for more.
	acct.bodyRead()
	br := g.bodyReader(w, http.MaxBytesReader(w, r.Body, int64(g.cfg.PassthroughBytes)), acct)
	r.Body = struct {
		io.Reader
		io.Closer
	}{br, r.Body}
	g.next.ServeHTTP(w, r)
	br.done()
}

func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, err *connect.Error) {
	if g.cfg.Refused != nil {
		g.cfg.Refused(r, r.URL.Path, err)
	}
	if r.ProtoMajor == 1 {
		// Otherwise net/http would read up to 256 KB of what is left of the
		// body, at the sender's pace, to keep the connection: a refused
		// caller gets no more of the server's time. (HTTP/2 resets the
		// stream instead.)
		w.Header().Set("Connection", "close")
	}
	_ = g.errs.Write(w, r, err)
}

func asConnect(err error, code connect.Code) *connect.Error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	return connect.NewError(code, err)
}

// intake reads r's body and returns it uncompressed, in pieces (message
// prefixes and messages, never copied together), every message counted and
// charged to acct.
func (g *Guard) intake(ctx context.Context, w http.ResponseWriter, r *http.Request, p protocol, proc Procedure, acct *account) ([][]byte, error) {
	limit := g.cfg.MaxMessageBytes
	switch {
	case proc.Public:
		limit = g.cfg.PublicMaxMessageBytes
	case proc.MaxMessageBytes > 0:
		limit = proc.MaxMessageBytes
	}
	encoding := r.Header.Get(p.encodingHeader)
	if encoding == "identity" {
		encoding = ""
	}
	if encoding != "" && !supported(encoding) {
		return nil, connect.NewError(connect.CodeUnimplemented, fmt.Errorf("unknown compression %q: this server accepts gzip and zstd", encoding))
	}
	br := g.bodyReader(w, r.Body, acct)
	defer br.done()
	wait := g.cfg.QueueWait
	if !p.enveloped {
		var raw []byte
		var err error
		switch {
		case r.ContentLength > int64(limit):
			return nil, tooLarge(limit)
		case r.ContentLength >= 0:
			raw, err = readExactly(ctx, br, int(r.ContentLength), acct, wait)
		default:
			raw, err = readCharged(ctx, br, limit, acct, wait)
		}
		if err != nil {
			return nil, bodyError(err, "read the body")
		}
		msg, err := g.message(ctx, raw, encoding, p, proc, acct, limit)
		return [][]byte{msg}, err
	}
	var out [][]byte
	total := 0
	for {
		var prefix [5]byte
		n, err := io.ReadFull(br, prefix[:])
		if n == 0 && errors.Is(err, io.EOF) {
			if out == nil {
				return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("protocol error: a request without a message"))
			}
			return out, nil
		}
		if out != nil && n > 0 {
			// Every procedure intake owns takes one request message: a
			// second frame, even an empty one, is an attack on the count.
			return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("protocol error: more than one request message"))
		}
		if err != nil {
			return nil, bodyError(err, "read a message's prefix")
		}
		flags, size := prefix[0], int(binary.BigEndian.Uint32(prefix[1:]))
		if flags&^1 != 0 {
			return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("protocol error: a request message with flags %#x", flags))
		}
		if size > limit-total {
			return nil, tooLarge(limit)
		}
		raw, err := readExactly(ctx, br, size, acct, wait)
		if err != nil {
			return nil, bodyError(err, fmt.Sprintf("read a message of %d bytes", size))
		}
		msgEncoding := ""
		if flags&1 != 0 {
			if encoding == "" {
				return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("protocol error: a compressed message without a compression header"))
			}
			msgEncoding = encoding
		}
		msg, err := g.message(ctx, raw, msgEncoding, p, proc, acct, limit-total)
		if err != nil {
			return nil, err
		}
		total += len(msg)
		out = append(out, binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg)
	}
}

// message inflates one message (at most limit bytes), counts its objects
// and charges what it will cost decoded: Connect's copy of it and its
// objects.
func (g *Guard) message(ctx context.Context, raw []byte, encoding string, p protocol, proc Procedure, acct *account, limit int) ([]byte, error) {
	msg := raw
	if encoding != "" {
		var err error
		if msg, err = inflate(ctx, raw, encoding, limit, acct, g.cfg.QueueWait); err != nil {
			return nil, err
		}
	}
	var objects int
	if p.json {
		// JSON's repeated fields are not counted one by one: its objects and
		// strings are, from their delimiters.
		if objects = jsonObjects(msg); objects > maxObjects {
			return nil, tooManyObjects(objects)
		}
	} else if proc.Input != nil {
		var err error
		if objects, err = g.limits.count(msg, proc.Input); err != nil {
			return nil, err
		}
	}
	// At least one object: the message itself, however empty.
	cost := int64(len(msg)) + int64(max(objects, 1))*objectBytes
	if proc.MaxInFlight > 0 {
		// Decoded once past the gate: charged there (see ServeHTTP).
		acct.decoded += cost
		return msg, nil
	}
	if err := acct.grow(ctx, cost, g.cfg.QueueWait); err != nil {
		return nil, err
	}
	return msg, nil
}

// jsonObjects is an upper bound of the objects decoding a JSON message
// allocates: one per object and per string.
func jsonObjects(b []byte) int {
	return bytes.Count(b, []byte{'{'}) + bytes.Count(b, []byte{'"'})/2 + bytes.Count(b, []byte{'['})
}

func tooLarge(limit int) error {
	return connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("a request message is at most %d bytes (%d MiB)", limit, limit>>20))
}

// readCharged reads r to its end into memory charged to acct, failing
// once it has given more than limit bytes. Growing a buffer leaves the old
// one to the collector, so every allocation is charged, not only the last:
// what the budget counts is what the process may hold.
func readCharged(ctx context.Context, r io.Reader, limit int, acct *account, wait time.Duration) ([]byte, error) {
	var buf []byte
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return nil, tooLarge(limit)
			}
			// Growing fourfold keeps what was outgrown under a third of
			// what is kept.
			size := min(max(chargeChunk, 4*cap(buf)), limit+1)
			if err := acct.grow(ctx, int64(size), wait); err != nil {
				return nil, err
			}
			buf = append(make([]byte, 0, size), buf...)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			if len(buf) > limit {
				return nil, tooLarge(limit)
			}
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// readExactly reads the n bytes r promises into memory charged to acct as
// they arrive: a promise costs nothing until it is kept (a prefix that
// promises 4 MiB and sends nothing more must not hold 4 MiB of the budget).
func readExactly(ctx context.Context, r io.Reader, n int, acct *account, wait time.Duration) ([]byte, error) {
	buf, err := readCharged(ctx, io.LimitReader(r, int64(n)), n, acct, wait)
	if err != nil {
		return nil, err
	}
	if len(buf) < n {
		return nil, io.ErrUnexpectedEOF
	}
	return buf, nil
}

// bodyError names why a body could not be read: a connect error (the
// budget, a deadline) passes as it is; anything else is the caller's
// connection, and nobody is left to answer.
func bodyError(err error, what string) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("protocol error: the body ended early: %s", what))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// bodyReader reads body under the guard's slow-body rules.
func (g *Guard) bodyReader(w http.ResponseWriter, body io.Reader, acct *account) *bodyReader {
	b := &bodyReader{body: body, rc: http.NewResponseController(w), start: g.cfg.now(), now: g.cfg.now, acct: acct,
		grace: g.cfg.BodyGrace, rate: g.cfg.MinBodyRate, idle: g.cfg.BodyIdle}
	// A deadline left set while the request waits for room would cut the
	// body (HTTP/2 closes the stream when it passes): the next read sets
	// a new one.
	acct.beforeWait = b.done
	return b
}

// bodyReader cuts a body that arrives too slowly: every read must come
// within idle of the last, and by grace plus the time the bytes so far
// take at the minimum rate.
type bodyReader struct {
	body  io.Reader
	rc    *http.ResponseController
	start time.Time
	now   func() time.Time
	grace time.Duration
	rate  int
	idle  time.Duration
	read  int64
	// acct is the request's account: time it spent waiting for room is the
	// server's, not the sender's.
	acct *account
	// unsupported: the connection cannot take deadlines (a test recorder).
	unsupported bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if !b.unsupported {
		now := b.now()
		due := b.start.Add(b.acct.waited + b.grace + time.Duration(b.read)*time.Second/time.Duration(b.rate))
		if idle := now.Add(b.idle); idle.Before(due) {
			due = idle
		}
		if !now.Before(due) {
			return 0, errTooSlow
		}
		if err := b.rc.SetReadDeadline(due); errors.Is(err, http.ErrNotSupported) {
			b.unsupported = true
		}
	}
	n, err := b.body.Read(p)
	b.read += int64(n)
	if err != nil && isTimeout(err) {
		return n, errTooSlow
	}
	if errors.Is(err, io.EOF) {
		// Whole: a handler streaming its answer for long must not have its
		// connection's reads cut by a deadline meant for the body.
		b.done()
	}
	return n, err
}

var errTooSlow = connect.NewError(connect.CodeDeadlineExceeded,
	errors.New("the request body arrived too slowly: try again on a better link"))

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// done lifts the deadline: the handler may stream its answer for long.
func (b *bodyReader) done() {
	if !b.unsupported {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
}
