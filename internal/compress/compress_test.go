package compress

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/internal/demo"
	"github.com/doorbook/doorbook/internal/wire"
)

// page is one bootstrap page of 200 households with 10 visits each,
// marshalled: what the codecs compress on the wire. With varied notes, the
// notes are random CJK text (what a worker types does not repeat stock
// phrases the way the demo's do).
func page(tb testing.TB, varied bool) []byte {
	tb.Helper()
	g := demo.NewGenerator(7, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	b := g.Grid("01a2f3b4-0000-7000-8000-000000000001", demo.Shape{HouseholdsPerGrid: 200, PersonsPerHousehold: 3, VisitsPerHousehold: 10, NotesBytes: 600}, "李娜", "01a2f3b4-0000-7000-8000-000000000002")
	rng := rand.New(rand.NewPCG(1, 2))
	res := &pb.BootstrapResponse{}
	for i := range b.Households {
		res.Households = append(res.Households, wire.HouseholdToProto(&b.Households[i]))
	}
	for i := range b.Persons {
		res.Persons = append(res.Persons, wire.PersonToProto(&b.Persons[i]))
	}
	for i := range b.Visits {
		if varied {
			var sb strings.Builder
			for sb.Len() < 600 {
				sb.WriteRune(rune(0x4e00 + rng.IntN(3500))) // the 3,500 common characters
			}
			b.Visits[i].Notes = sb.String()
		}
		res.Visits = append(res.Visits, wire.VisitToProto(&b.Visits[i]))
	}
	out, err := proto.Marshal(res)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

type codec struct {
	name string
	new  func() connect.Compressor
}

func codecs() []codec {
	_, zstdFastest := NewCoders().codecs()
	return []codec{
		{"gzip-default", func() connect.Compressor { w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression); return w }},
		{"gzip-speed", func() connect.Compressor { w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed); return w }},
		{"zstd-fastest", zstdFastest},
		{"zstd-default", func() connect.Compressor {
			w, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
			return w
		}},
	}
}

// BenchmarkCodecs reports each codec's speed (MB/s of protobuf in) and
// ratio (compressed/raw) on a bootstrap page:
//
//	go test ./internal/compress -run XXX -bench Codecs
func BenchmarkCodecs(b *testing.B) {
	for _, varied := range []bool{false, true} {
		raw := page(b, varied)
		notes := map[bool]string{false: "demo-notes", true: "varied-notes"}[varied]
		for _, c := range codecs() {
			b.Run(notes+"/"+c.name, func(b *testing.B) {
				var buf bytes.Buffer
				w := c.new()
				b.SetBytes(int64(len(raw)))
				for b.Loop() {
					buf.Reset()
					w.Reset(&buf)
					w.Write(raw)
					w.Close()
				}
				b.ReportMetric(float64(buf.Len())/float64(len(raw)), "ratio")
			})
		}
	}
}

func TestZstdRoundTripAndReuse(t *testing.T) {
	raw := page(t, true)
	newD, newC := NewCoders().codecs()
	c, d := newC(), newD()
	for range 3 { // pooled codecs are closed and reset between messages
		roundTrip(t, c, d, raw)
	}
}

// roundTrip compresses raw with c and decompresses it with d, as Connect
// does with codecs from its pool: each message closes them, and Connect
// then resets them to an empty writer and body.
func roundTrip(t *testing.T, c connect.Compressor, d connect.Decompressor, raw []byte) {
	t.Helper()
	var buf bytes.Buffer
	c.Reset(&buf)
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c.Reset(io.Discard)
	if buf.Len() >= len(raw) {
		t.Fatalf("zstd made %d bytes of %d", buf.Len(), len(raw))
	}
	if err := d.Reset(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Reset(http.NoBody); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, raw) {
		t.Fatal("zstd round trip changed the message")
	}
}

// TestCodersKept: messages through new shells, as after each collection
// (or each of a phone's syncs, whose clients are new), reuse the coders
// the ones before gave back, rather than allocate each its own: a new
// encoder costs about 5 MB.
func TestCodersKept(t *testing.T) {
	raw := page(t, true)[:200<<10] // a push's size
	k := NewCoders()
	newD, newC := k.codecs()
	roundTrip(t, newC(), newD(), raw) // the first makes one of each
	if len(k.encoders) != 1 || len(k.decoders) != 1 {
		t.Fatalf("after a message, %d encoders and %d decoders kept; want 1 each", len(k.encoders), len(k.decoders))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const messages = 10
	for range messages { // new shells, as after each collection
		roundTrip(t, newC(), newD(), raw)
	}
	runtime.ReadMemStats(&after)
	// What is left is the compressed and decompressed copies, and under
	// the race detector the zstd package's own pools, which it empties.
	perMessage := (after.TotalAlloc - before.TotalAlloc) / messages
	t.Logf("%d KB a message", perMessage>>10)
	if limit := uint64(8*len(raw)) + 512<<10; perMessage > limit {
		t.Errorf("a message through new shells allocates %d KB; want at most %d KB (its copies): the coders are not reused", perMessage>>10, limit>>10)
	}
	if len(k.encoders) != 1 || len(k.decoders) != 1 {
		t.Errorf("after %d more messages, %d encoders and %d decoders kept; want 1 each", messages, len(k.encoders), len(k.decoders))
	}
}

// TestCodersBounded: a Coders keeps at most keptCoders of each, whatever
// ran at once; shells closed without a message take none.
func TestCodersBounded(t *testing.T) {
	k := NewCoders()
	newD, newC := k.codecs()
	var cs []connect.Compressor
	for range keptCoders + 3 {
		c := newC()
		c.Reset(io.Discard)
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	for _, c := range cs {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		c.Reset(io.Discard)
	}
	if len(k.encoders) != keptCoders {
		t.Errorf("%d encoders kept after %d messages at once; want %d", len(k.encoders), len(cs), keptCoders)
	}
	d := newD()
	if err := errors.Join(d.Reset(http.NoBody), d.Close()); err != nil {
		t.Fatal(err)
	}
	if len(k.decoders) != 0 {
		t.Errorf("a decompressor closed unread took a decoder")
	}
}

// TestCorruptFrame: a body that is no zstd frame fails at its first read,
// and the decoder given back still decodes the next message.
func TestCorruptFrame(t *testing.T) {
	newD, newC := NewCoders().codecs()
	d := newD()
	if err := d.Reset(strings.NewReader("not a zstd frame at all")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(d); err == nil {
		t.Error("reading a corrupt frame succeeded")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, newC(), newD(), page(t, false))
}

// TestCodersLetLargeGo: a coder that has handled a message larger than
// keepBelow is not kept: its buffers grew to the message, and would hold
// it for the life of the process.
func TestCodersLetLargeGo(t *testing.T) {
	raw := bytes.Repeat(page(t, true), 3)
	if len(raw) <= keepBelow {
		t.Fatalf("three pages are %d bytes, not above keepBelow", len(raw))
	}
	k := NewCoders()
	newD, newC := k.codecs()
	roundTrip(t, newC(), newD(), raw)
	if len(k.encoders) != 0 || len(k.decoders) != 0 {
		t.Errorf("after a message of %d KB, %d encoders and %d decoders kept; want none", len(raw)>>10, len(k.encoders), len(k.decoders))
	}
	roundTrip(t, newC(), newD(), raw[:keepBelow])
	if len(k.encoders) != 1 || len(k.decoders) != 1 {
		t.Errorf("after a message of keepBelow bytes, %d encoders and %d decoders kept; want 1 each", len(k.encoders), len(k.decoders))
	}
}

// TestCompressorClosedOnce: a second Close writes nothing more, and a
// write after Close fails rather than start a frame on the old writer.
func TestCompressorClosedOnce(t *testing.T) {
	_, newC := NewCoders().codecs()
	c := newC()
	var buf bytes.Buffer
	c.Reset(&buf)
	if _, err := c.Write(page(t, false)[:4096]); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	n := buf.Len()
	if err := c.Close(); err != nil || buf.Len() != n {
		t.Errorf("a second Close: %v, and %d bytes more; want nil and none", err, buf.Len()-n)
	}
	if _, err := c.Write([]byte("late")); err == nil || buf.Len() != n {
		t.Errorf("a write after Close: %v, and %d bytes more; want an error and none", err, buf.Len()-n)
	}
}
