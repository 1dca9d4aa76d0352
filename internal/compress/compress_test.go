package compress

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand/v2"
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
	return []codec{
		{"gzip-default", func() connect.Compressor { w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression); return w }},
		{"gzip-speed", func() connect.Compressor { w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed); return w }},
		{"zstd-fastest", newZstdCompressor},
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
	c, d := newZstdCompressor(), newZstdDecompressor()
	for range 3 { // pooled codecs are closed and reset between messages
		var buf bytes.Buffer
		c.Reset(&buf)
		if _, err := c.Write(raw); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
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
		if !bytes.Equal(got, raw) {
			t.Fatal("zstd round trip changed the message")
		}
	}
}
