package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/internal/demo"
	"github.com/doorbook/doorbook/internal/wire"
	"github.com/doorbook/doorbook/syncengine"
)

// bareSizes is what the fixture's rows weigh as bare protobuf messages
// (proto.Size of each row's own message: pb.Visit, and pb.Household with
// its pb.Persons and pb.TagElements).
type bareSizes struct {
	// Of the worker's scope.
	Visits, VisitBytes int64
	ScopeBytes         int64
	HouseholdBytes     int64 // households with persons and tags
	Households         int64
	// Of the households-only grid.
	HHBytes int64
	// Pages are the scope's bootstrap pages, marshalled (for the codec's
	// speed); only for sizes up to community.
	Pages [][]byte
}

var (
	bareMu    sync.Mutex
	bareCache = map[string]*bareSizes{}
)

func bare(tb testing.TB, f *fixture) *bareSizes {
	tb.Helper()
	bareMu.Lock()
	defer bareMu.Unlock()
	if s := bareCache[f.Size.Name]; s != nil {
		return s
	}
	s := &bareSizes{}
	keepPages := f.Size.Households() <= 2000
	err := f.bundles(func(b *syncengine.Bundle) error {
		rows := wire.BundleToProto(b)
		for _, v := range rows.Visits {
			s.VisitBytes += int64(proto.Size(v))
			s.Visits++
		}
		s.HouseholdBytes += rowsSize(rows.Households) + rowsSize(rows.Persons) + rowsSize(rows.Tags)
		s.Households += int64(len(rows.Households))
		if keepPages {
			for _, p := range pages(b) {
				m, err := proto.Marshal(p)
				if err != nil {
					return err
				}
				s.Pages = append(s.Pages, m)
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	s.ScopeBytes = s.VisitBytes + s.HouseholdBytes
	hh := hhBundle(f)
	rows := wire.BundleToProto(&hh)
	s.HHBytes = rowsSize(rows.Households) + rowsSize(rows.Persons) + rowsSize(rows.Tags)
	bareCache[f.Size.Name] = s
	return s
}

// hhBundle regenerates the households-only grid.
func hhBundle(f *fixture) syncengine.Bundle {
	return demo.NewGenerator(seed+1, f.base).Grid(f.HHGrid, demo.Shape{HouseholdsPerGrid: f.HHCount, PersonsPerHousehold: 3}, f.WorkerName, "")
}

func rowsSize[M proto.Message](ms []M) int64 {
	var n int64
	for _, m := range ms {
		n += int64(proto.Size(m))
	}
	return n
}

// wireRun is what one bootstrap of a worker's scope put on the wire.
type wireRun struct {
	down, up, calls int64
	took            time.Duration
}

func bootstrapBytes(tb testing.TB, srv *child, f *fixture, worker, path string, opts []sdk.Option, want int) wireRun {
	tb.Helper()
	var c counter
	r := enroll(tb, srv, f.AdminToken, worker, path, append([]sdk.Option{sdk.WithHTTPClient(httpClient(&srv.Addr, &c))}, opts...)...)
	defer removeDB(path)
	defer r.Close()
	c.Reset()
	began := time.Now()
	rep, err := r.Sync(context.Background())
	took := time.Since(began)
	if err != nil {
		tb.Fatal(err)
	}
	if rep.Bootstrapped != want {
		tb.Fatalf("bootstrapped %d households, want %d", rep.Bootstrapped, want)
	}
	return wireRun{down: c.down.Load() + c.downHdr.Load(), up: c.up.Load() + c.upHdr.Load(), calls: c.calls.Load(), took: took}
}

// BenchmarkWire: the bytes a bootstrap puts on the wire (bodies as sent,
// compressed or not, plus an estimate of the HTTP headers), counted by an
// http.RoundTripper, with zstd and with sdk.WithoutCompression, against the
// bare protobuf of the same rows (proto.Size of each row's message).
//
// Per household (with its persons and tags): a bootstrap of the
// households-only worker. Per visit: the whole scope's bytes less its
// households at that per-household figure, over the visits. x-bare is the
// whole scope's bytes over its rows' bare size. The zstd run also measures
// the codec alone (the SDK's settings: fastest level, one goroutine) on the
// scope's marshalled bootstrap pages.
func BenchmarkWire(b *testing.B) {
	f := getFixture(b, currentSize(b))
	bs := bare(b, f)
	srv := serverCopy(b, f.Full)
	for _, comp := range compressions {
		b.Run(comp.name, func(b *testing.B) {
			dir := b.TempDir()
			var hh, all wireRun
			for i := range b.N {
				hh = bootstrapBytes(b, srv, f, f.HHWorker, filepath.Join(dir, fmt.Sprintf("hh-%d.db", i)), comp.opts, f.HHCount)
				all = bootstrapBytes(b, srv, f, f.Worker, filepath.Join(dir, fmt.Sprintf("all-%d.db", i)), comp.opts, f.Households)
			}
			perHH := float64(hh.down) / float64(f.HHCount)
			perVisit := (float64(all.down) - perHH*float64(f.Households)) / float64(f.Visits)
			bareHH := float64(bs.HHBytes) / float64(f.HHCount)
			bareVisit := float64(bs.VisitBytes) / float64(bs.Visits)
			b.ReportMetric(perVisit, "B/visit")
			b.ReportMetric(bareVisit, "bare-B/visit")
			b.ReportMetric(perVisit/bareVisit, "x-bare-visit")
			b.ReportMetric(perHH, "B/household")
			b.ReportMetric(bareHH, "bare-B/household")
			b.ReportMetric(perHH/bareHH, "x-bare-household")
			b.ReportMetric(float64(all.down)/float64(bs.ScopeBytes), "x-bare")
			b.ReportMetric(float64(all.calls), "calls")
			if comp.name == "zstd" && len(bs.Pages) > 0 {
				enc, dec := codecSpeed(b, bs.Pages)
				b.ReportMetric(enc, "zstd-enc-MB/s")
				b.ReportMetric(dec, "zstd-dec-MB/s")
			}
		})
	}
}

// codecSpeed compresses and decompresses pages with the SDK's zstd
// settings (internal/compress), in MB/s of uncompressed input.
func codecSpeed(tb testing.TB, pages [][]byte) (enc, dec float64) {
	tb.Helper()
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	if err != nil {
		tb.Fatal(err)
	}
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
	if err != nil {
		tb.Fatal(err)
	}
	defer d.Close()
	var total int64
	var encTook, decTook time.Duration
	var buf bytes.Buffer
	for range 3 {
		for _, p := range pages {
			buf.Reset()
			began := time.Now()
			e.Reset(&buf)
			e.Write(p)
			e.Close()
			encTook += time.Since(began)
			began = time.Now()
			if err := d.Reset(&buf); err != nil {
				tb.Fatal(err)
			}
			n, err := io.Copy(io.Discard, d)
			decTook += time.Since(began)
			if err != nil || n != int64(len(p)) {
				tb.Fatalf("zstd round trip: %d of %d bytes, %v", n, len(p), err)
			}
			total += int64(len(p))
		}
	}
	return float64(total) / encTook.Seconds() / 1e6, float64(total) / decTook.Seconds() / 1e6
}

// TestTinySync runs the machinery of the benchmarks once at the tiny size:
// a bootstrap, a push, and an incremental round trip, checking their
// counts and that the replica holds what the server sent.
func TestTinySync(t *testing.T) {
	f := getFixture(t, sizes["tiny"])
	ctx := context.Background()
	srv := serverCopy(t, f.Full)
	dir := t.TempDir()
	var c counter
	r := enroll(t, srv, f.AdminToken, f.Worker, filepath.Join(dir, "a.db"), sdk.WithHTTPClient(httpClient(&srv.Addr, &c)))
	defer r.Close()
	rep, err := r.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Bootstrapped != f.Households {
		t.Fatalf("bootstrapped %d households, want %d", rep.Bootstrapped, f.Households)
	}
	got, err := r.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Households) != f.Households || len(got.Persons) != f.Persons || len(got.Tags) != f.Tags || len(got.Visits) != f.Visits {
		t.Fatalf("replica holds %d/%d/%d/%d households/persons/tags/visits, want %d/%d/%d/%d",
			len(got.Households), len(got.Persons), len(got.Tags), len(got.Visits), f.Households, f.Persons, f.Tags, f.Visits)
	}
	if c.down.Load() == 0 || c.calls.Load() == 0 {
		t.Fatalf("the counting transport saw nothing: %d bytes in %d calls", c.down.Load(), c.calls.Load())
	}
	bs := bare(t, f)
	if bs.Visits != int64(f.Visits) || bs.Households != int64(f.Households) {
		t.Fatalf("bare sizes counted %d visits and %d households, want %d and %d", bs.Visits, bs.Households, f.Visits, f.Households)
	}

	// Push: the template replica's outbox holds every row.
	tmpl := getPushTemplate(t, f)
	srvPath, path := filepath.Join(dir, "push-server.db"), filepath.Join(dir, "push.db")
	srvPath = copyServerDB(t, tmpl.Server, srvPath, false)
	if err := copyDB(tmpl.Replica, path); err != nil {
		t.Fatal(err)
	}
	ps := startServer(t, srvPath)
	pr, err := sdk.Open(ctx, path, sdk.WithHTTPClient(httpClient(&ps.Addr, &c)))
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	if n, err := pr.Pending(ctx); err != nil || n != f.Rows() {
		t.Fatalf("push template holds %d pending changes (%v), want %d", n, err, f.Rows())
	}
	prep, err := pr.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if prep.Pushed != f.Rows() {
		t.Fatalf("pushed %d, want %d", prep.Pushed, f.Rows())
	}

	// The floor inserts and marshals the same number of rows.
	if n := floorInsert(t, f, dir, &stopwatch{}); n != f.Rows() {
		t.Fatalf("floor inserted %d rows, want %d", n, f.Rows())
	}
	if n, _ := floorProto(t, f, true, &stopwatch{}); n != f.Rows() {
		t.Fatalf("floor marshalled %d rows, want %d", n, f.Rows())
	}
	if got, want := percentile([]time.Duration{5, 1, 4, 2, 3}, 50), time.Duration(3); got != want {
		t.Fatalf("p50 = %v, want %v", got, want)
	}
}
