package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/internal/demo"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/internal/wire"
	"github.com/doorbook/doorbook/syncengine"
)

// compressions are the two ways a replica can talk: the SDK's default
// (zstd both ways) and sdk.WithoutCompression, each bootstrapping by rows.
var compressions = []struct {
	name string
	opts []sdk.Option
}{
	{"zstd", []sdk.Option{sdk.WithRowBootstrap()}},
	{"none", []sdk.Option{sdk.WithRowBootstrap(), sdk.WithoutCompression()}},
}

// bootstrapModes are compressions with rows, and the same with a snapshot
// file (sdk.WithSnapshotBootstrap).
var bootstrapModes = []struct {
	name string
	opts []sdk.Option
}{
	{"zstd", []sdk.Option{sdk.WithRowBootstrap()}},
	{"none", []sdk.Option{sdk.WithRowBootstrap(), sdk.WithoutCompression()}},
	{"snapshot-zstd", []sdk.Option{sdk.WithSnapshotBootstrap()}},
	{"snapshot-none", []sdk.Option{sdk.WithSnapshotBootstrap(), sdk.WithoutCompression()}},
}

const mb = 1 << 20

// serverCopy starts a server process over a private copy of the database
// at from (so that enrolments and writes leave the fixture as it was).
func serverCopy(tb testing.TB, from string) *child {
	tb.Helper()
	return startServer(tb, copyServerDB(tb, from, filepath.Join(tb.TempDir(), "server.db"), false))
}

func removeDB(path string) {
	for _, s := range []string{"", "-wal", "-shm"} {
		os.Remove(path + s)
	}
}

// BenchmarkBootstrap: a new replica pulls its whole scope (every household
// of the size, with persons, tags and visits) from a server on loopback
// into its SQLite file. One op is one Sync of a freshly enrolled replica;
// enrolling is not timed. The server runs in its own process, so the
// client's peak heap (sampled every 2 ms, after a GC before the sync) is
// this process's, and the server's is reported by it.
func BenchmarkBootstrap(b *testing.B) {
	f := getFixture(b, currentSize(b))
	fl := floor(b, f)
	for _, comp := range bootstrapModes {
		b.Run(comp.name, func(b *testing.B) {
			ctx := context.Background()
			srv := serverCopy(b, f.Full)
			dir := b.TempDir()
			var c counter
			var took time.Duration
			var client, server memStats
			b.ResetTimer()
			b.StopTimer()
			for i := range b.N {
				path := filepath.Join(dir, fmt.Sprintf("replica-%d.db", i))
				opts := append([]sdk.Option{sdk.WithHTTPClient(httpClient(&srv.Addr, &c))}, comp.opts...)
				r := enroll(b, srv, f.AdminToken, f.Worker, path, opts...)
				c.Reset()
				srv.ResetMem(b)
				peak := startMemPeak()
				b.StartTimer()
				began := time.Now()
				rep, err := r.Sync(ctx)
				took += time.Since(began)
				b.StopTimer()
				cm := peak.Stop()
				sm := srv.Mem(b)
				client, server = maxMem(client, cm), maxMem(server, sm)
				if err != nil {
					b.Fatal(err)
				}
				if rep.Bootstrapped != f.Households {
					b.Fatalf("bootstrapped %d households, want %d", rep.Bootstrapped, f.Households)
				}
				r.Close()
				removeDB(path)
			}
			rate := float64(f.Rows()*b.N) / took.Seconds()
			b.ReportMetric(rate, "rows/s")
			b.ReportMetric(took.Seconds()/float64(b.N), "s/bootstrap")
			b.ReportMetric(rate/fl.Bootstrap(), "x-floor")
			b.ReportMetric(rate/fl.Insert, "x-insert-floor")
			b.ReportMetric(float64(client.HeapAlloc)/mb, "client-heap-MiB")
			b.ReportMetric(float64(client.HeapLive)/mb, "client-live-MiB")
			b.ReportMetric(float64(client.PeakRSS)/mb, "client-rss-MiB")
			b.ReportMetric(float64(server.HeapAlloc)/mb, "server-heap-MiB")
			b.ReportMetric(float64(server.PeakRSS)/mb, "server-rss-MiB")
			b.ReportMetric(float64(c.down.Load()+c.downHdr.Load())/float64(f.Rows()), "B-down/row")
		})
	}
}

func maxMem(a, b memStats) memStats {
	return memStats{HeapAlloc: max(a.HeapAlloc, b.HeapAlloc), HeapInuse: max(a.HeapInuse, b.HeapInuse),
		HeapLive: max(a.HeapLive, b.HeapLive), PeakRSS: max(a.PeakRSS, b.PeakRSS)}
}

// pushTemplate is a pair of files, built once per size: a server with the
// tree and workers but no rows, and a replica enrolled with it, bootstrapped
// (nothing to fetch) and then given every row of the fixture offline: each
// row in the replica's tables and one change per row in its outbox, as the
// SDK's writes leave them (statedb merges the row, the change is the wire
// protobuf the SDK queues), in a transaction per grid rather than one per
// write, to build in seconds.
type pushTemplate struct{ Server, Replica string }

var (
	pushMu        sync.Mutex
	pushTemplates = map[string]pushTemplate{}
)

func getPushTemplate(tb testing.TB, f *fixture) pushTemplate {
	tb.Helper()
	pushMu.Lock()
	defer pushMu.Unlock()
	if t, ok := pushTemplates[f.Size.Name]; ok {
		return t
	}
	ctx := context.Background()
	dir := filepath.Join(cacheDir, f.Size.Name)
	t := pushTemplate{Server: copyServerDB(tb, f.Empty, filepath.Join(dir, f.Size.Name+"-push-server.db"), true), Replica: filepath.Join(dir, "push-replica.db")}
	srv := startServer(tb, t.Server)
	r := enroll(tb, srv, f.AdminToken, f.Worker, t.Replica)
	if _, err := r.Sync(ctx); err != nil {
		tb.Fatal(err)
	}
	r.Close()
	srv.Stop()
	ms, err := replicaMigrations()
	if err != nil {
		tb.Fatal(err)
	}
	db, err := sqlitex.Open(ctx, t.Replica, ms)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UnixMilli()
	err = f.bundles(func(b *syncengine.Bundle) error {
		return db.Write(ctx, func(tx *sqlitex.Tx) error {
			if err := statedb.ApplyBundle(ctx, tx, b); err != nil {
				return err
			}
			for _, c := range changesOf(b) {
				c.ID = uuid.Must(uuid.NewV7()).String()
				if err := c.Validate(); err != nil {
					return err
				}
				payload, err := proto.Marshal(wire.ChangeToProto(&c))
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (change_id, payload, created_at) VALUES (?, ?, ?)`, c.ID, payload, now); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	pushTemplates[f.Size.Name] = t
	return t
}

// BenchmarkPush: a replica holding every row of the size offline (one
// change per row in its outbox) pushes them to a server that has none. One
// op is one Sync; the push is timed up to the SDK's last push progress
// report (the pull that follows, which brings back the server's echo of the
// rows, is reported apart as s/pull-after). Copying the two files is not
// timed.
func BenchmarkPush(b *testing.B) {
	f := getFixture(b, currentSize(b))
	fl := floor(b, f)
	tmpl := getPushTemplate(b, f)
	for _, comp := range compressions {
		b.Run(comp.name, func(b *testing.B) {
			ctx := context.Background()
			var pushTook, syncTook time.Duration
			var client, server memStats
			var c counter
			b.ResetTimer()
			b.StopTimer()
			for range b.N {
				dir := b.TempDir()
				srvPath, path := filepath.Join(dir, "server.db"), filepath.Join(dir, "replica.db")
				srvPath = copyServerDB(b, tmpl.Server, srvPath, false)
				if err := copyDB(tmpl.Replica, path); err != nil {
					b.Fatal(err)
				}
				srv := startServer(b, srvPath)
				var lastPush time.Time
				opts := append([]sdk.Option{sdk.WithHTTPClient(httpClient(&srv.Addr, &c)),
					sdk.WithProgress(func(p sdk.Progress) {
						if p.Phase == "push" {
							lastPush = time.Now()
						}
					})}, comp.opts...)
				r, err := sdk.Open(ctx, path, opts...)
				if err != nil {
					b.Fatal(err)
				}
				srv.ResetMem(b)
				peak := startMemPeak()
				b.StartTimer()
				began := time.Now()
				rep, err := r.Sync(ctx)
				end := time.Now()
				b.StopTimer()
				cm := peak.Stop()
				sm := srv.Mem(b)
				client, server = maxMem(client, cm), maxMem(server, sm)
				if err != nil {
					b.Fatal(err)
				}
				if rep.Pushed != f.Rows() {
					b.Fatalf("pushed %d (duplicates %d), want %d", rep.Pushed, rep.Duplicates, f.Rows())
				}
				pushTook += lastPush.Sub(began)
				syncTook += end.Sub(began)
				r.Close()
				srv.Stop()
			}
			rate := float64(f.Rows()*b.N) / pushTook.Seconds()
			b.ReportMetric(rate, "rows/s")
			b.ReportMetric(pushTook.Seconds()/float64(b.N), "s/push")
			b.ReportMetric((syncTook-pushTook).Seconds()/float64(b.N), "s/pull-after")
			b.ReportMetric(rate/fl.Push(), "x-floor")
			b.ReportMetric(rate/fl.Insert, "x-insert-floor")
			b.ReportMetric(float64(client.HeapAlloc)/mb, "client-heap-MiB")
			b.ReportMetric(float64(server.HeapAlloc)/mb, "server-heap-MiB")
			b.ReportMetric(float64(c.up.Load()+c.upHdr.Load())/float64(f.Rows()*b.N), "B-up/row")
		})
	}
}

// BenchmarkIncremental: two replicas of the whole scope in sync; in each
// round one of them (A) edits a field of 1% of the households and records
// 1% more visits (offline, not timed), then A syncs (push, and a pull of
// anything new) and B syncs (pull): the round trip by which one phone's
// work reaches another. One op is one round; run many (-benchtime 200x) for
// the percentiles.
func BenchmarkIncremental(b *testing.B) {
	f := getFixture(b, currentSize(b))
	ctx := context.Background()
	srv := serverCopy(b, f.Full)
	dir := b.TempDir()
	var c counter
	// The replicas start from a snapshot: setting up is not timed, and at
	// street size rows would take a minute each.
	ra := enroll(b, srv, f.AdminToken, f.Worker, filepath.Join(dir, "a.db"), sdk.WithHTTPClient(httpClient(&srv.Addr, &c)), sdk.WithSnapshotBootstrap())
	defer ra.Close()
	rb := enroll(b, srv, f.AdminToken, f.Worker, filepath.Join(dir, "b.db"), sdk.WithHTTPClient(httpClient(&srv.Addr, &c)), sdk.WithSnapshotBootstrap())
	defer rb.Close()
	for _, r := range []*sdk.Replica{ra, rb} {
		if _, err := r.Sync(ctx); err != nil {
			b.Fatal(err)
		}
	}
	hs, err := ra.Households(ctx)
	if err != nil {
		b.Fatal(err)
	}
	edits, visits := max(1, f.Households/100), max(1, f.Visits/100)
	gen := demo.NewGenerator(seed+2, time.Now())
	var rounds, pushes, pulls []time.Duration
	next := 0
	b.ResetTimer()
	b.StopTimer()
	for round := range b.N {
		for i := range edits {
			h := hs[(round*edits+i)%len(hs)]
			if err := ra.EditHousehold(ctx, h.ID, map[string]string{"notes": fmt.Sprintf("round %d: %s", round, gen.Notes(60))}); err != nil {
				b.Fatal(err)
			}
		}
		for range visits {
			h := hs[next%len(hs)]
			next += 7
			if _, err := ra.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h.ID}, Form: syncengine.FormInPerson, Notes: gen.Notes(notesBytes)}); err != nil {
				b.Fatal(err)
			}
		}
		c.Reset()
		b.StartTimer()
		began := time.Now()
		repA, err := ra.Sync(ctx)
		mid := time.Now()
		if err != nil {
			b.Fatal(err)
		}
		repB, err := rb.Sync(ctx)
		end := time.Now()
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if repA.Pushed != edits+visits || repB.Pulled < edits+visits {
			b.Fatalf("round %d: A pushed %d, B pulled %d; want %d each", round, repA.Pushed, repB.Pulled, edits+visits)
		}
		pushes = append(pushes, mid.Sub(began))
		pulls = append(pulls, end.Sub(mid))
		rounds = append(rounds, end.Sub(began))
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(percentile(rounds, 50)), "p50-ms")
	b.ReportMetric(ms(percentile(rounds, 99)), "p99-ms")
	b.ReportMetric(ms(percentile(pushes, 50)), "p50-push-ms")
	b.ReportMetric(ms(percentile(pulls, 50)), "p50-pull-ms")
	b.ReportMetric(float64(edits+visits), "changes/round")
}

// percentile is the nearest-rank percentile of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
