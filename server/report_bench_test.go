package server_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/internal/demo"
	"github.com/doorbook/doorbook/server"
	"github.com/doorbook/doorbook/server/console"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/sqlite"
	"github.com/doorbook/doorbook/syncengine"
)

var (
	reportHouseholds = flag.Int("report.households", 1000, "households of the report benchmarks' street (250 per grid)")
	reportVisits     = flag.Float64("report.visits", 10, "visits per household of the report benchmarks (200 bytes of notes each)")
	reportDays       = flag.Int("report.days", 60, "days of history the report benchmarks' visits spread over (the campaign is the last 30 and the next 30)")
	reportDB         = flag.String("report.db", "", "database file of the report benchmarks: built there once and reused (default: a new one per run)")
)

// reportEnv is a server on loopback over a street of households, with
// visits over the last 60 days and a campaign over the last 30, and an
// admin's report client.
type reportEnv struct {
	reports            doorbookv1connect.ReportServiceClient
	admin              doorbookv1connect.AdminServiceClient
	street, campaignID string
	grids              []string
	// path is the database's file; close stops the server and closes it.
	path  string
	close func()
	st    *service.Service
	// url serves the API and the console; session is a console session
	// of the installation's admin.
	url, session string
}

// newReportEnv builds (or reopens, with -report.db) the street of the
// report benchmarks. A street of 50,000 households and 500,000 visits
// takes minutes to build: build it once with -report.db.
func newReportEnv(b *testing.B, opts ...service.Option) *reportEnv {
	b.Helper()
	ctx := context.Background()
	path := *reportDB
	if path == "" {
		path = filepath.Join(b.TempDir(), "server.db")
	}
	_, statErr := os.Stat(path)
	backend, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	st := service.New(backend, opts...)
	hs := httptest.NewServer(console.Mount(server.New(st).Handler()))
	env := &reportEnv{path: path, st: st}
	var once sync.Once
	env.close = func() {
		once.Do(func() {
			hs.Close()
			st.Close()
		})
	}
	b.Cleanup(env.close)
	var admin store.Principal
	var token string
	if errors.Is(statErr, os.ErrNotExist) {
		admin, token, err = st.CreateAdmin(ctx, "root", "")
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path+".token", []byte(token), 0o600); err != nil {
			b.Fatal(err)
		}
		if err := buildStreet(ctx, st, admin); err != nil {
			b.Fatal(err)
		}
	} else {
		t, err := os.ReadFile(path + ".token")
		if err != nil {
			b.Fatal(err)
		}
		token = string(t)
	}
	env.reports = doorbookv1connect.NewReportServiceClient(hs.Client(), hs.URL, connect.WithInterceptors(bearer.Token(token)))
	adminClient := doorbookv1connect.NewAdminServiceClient(hs.Client(), hs.URL, connect.WithInterceptors(bearer.Token(token)))
	nodes, err := adminClient.ListOrgNodes(ctx, &pb.ListOrgNodesRequest{})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range nodes.GetNodes() {
		switch n.GetLevel() {
		case pb.OrgLevel_ORG_LEVEL_STREET:
			env.street = n.GetId()
		case pb.OrgLevel_ORG_LEVEL_GRID:
			env.grids = append(env.grids, n.GetId())
		}
	}
	env.admin = adminClient
	cs, err := adminClient.ListCampaigns(ctx, &pb.ListCampaignsRequest{})
	if err != nil || len(cs.GetCampaigns()) == 0 {
		b.Fatalf("campaigns: %v", err)
	}
	env.campaignID = cs.GetCampaigns()[0].GetId()
	env.url = hs.URL
	if err := st.SetAdminPassword(ctx, "root", benchPassword); err != nil {
		b.Fatal(err)
	}
	sessions := doorbookv1connect.NewSessionServiceClient(hs.Client(), hs.URL)
	signed, err := sessions.SignIn(ctx, &pb.SignInRequest{Name: "root", Password: benchPassword})
	if err != nil {
		b.Fatal(err)
	}
	env.session = signed.GetToken()
	return env
}

const benchPassword = "the report benchmark's password"

// buildStreet imports the street: communities of four grids of 250
// households, each with visits by its grid's worker.
func buildStreet(ctx context.Context, st store.Store, admin store.Principal) error {
	now := time.Now()
	mk := func(parent string, level store.OrgLevel, name string) (string, error) {
		n, err := st.CreateOrgNode(ctx, admin, store.OrgNode{ParentID: parent, Level: level, Name: name})
		return n.ID, err
	}
	district, err := mk("", store.LevelDistrict, "芙蓉区")
	if err != nil {
		return err
	}
	street, err := mk(district, store.LevelStreet, "东风街道")
	if err != nil {
		return err
	}
	gen := demo.NewGenerator(7, now)
	shape := demo.Shape{HouseholdsPerGrid: 250, PersonsPerHousehold: 3, VisitsPerHousehold: *reportVisits, NotesBytes: 200, VisitDays: *reportDays}
	var community string
	for g := 0; g*shape.HouseholdsPerGrid < *reportHouseholds; g++ {
		if g%4 == 0 {
			if community, err = mk(street, store.LevelCommunity, fmt.Sprintf("第%d社区", g/4+1)); err != nil {
				return err
			}
		}
		grid, err := mk(community, store.LevelGrid, fmt.Sprintf("第%d网格", g+1))
		if err != nil {
			return err
		}
		w, err := st.CreateWorker(ctx, admin, store.Worker{Name: fmt.Sprintf("网格员%d", g+1), Role: 1, GridIDs: []string{grid}})
		if err != nil {
			return err
		}
		bundle := gen.Grid(grid, shape, w.Name, w.ID)
		// A visit in 50 calls for a revisit, one in 100 finds a hazard.
		var hazards []string
		for i := range bundle.Visits {
			v := &bundle.Visits[i]
			switch i % 100 {
			case 7, 57:
				v.RevisitReasons, v.RevisitDue = []syncengine.RevisitReason{syncengine.RevisitUnstableMood}, v.VisitedAt.AddDate(0, 0, 7)
			case 33:
				v.Findings = []syncengine.Finding{{Kind: syncengine.FindingHazard, Note: "楼道堆物"}}
				hazards = append(hazards, v.ID)
			}
		}
		if err := st.Import(ctx, admin, bundle); err != nil {
			return fmt.Errorf("import grid %d: %w", g, err)
		}
		// Each hazard is assigned to a unit, and every other one resolved
		// and closed off: an item's updates are amendments, which reports
		// read apart from the plain visits.
		for i, visit := range hazards {
			kinds := []syncengine.AmendmentKind{syncengine.AmendItemAssign}
			if i%2 == 1 {
				kinds = append(kinds, syncengine.AmendItemResolve, syncengine.AmendItemClose)
			}
			for _, kind := range kinds {
				a := syncengine.Amendment{ID: gen.ID(), VisitID: visit, AuthorID: admin.ID, Kind: kind, Reason: "整改", Clock: gen.Clock()}
				if kind == syncengine.AmendItemAssign {
					a.Unit, a.Deadline = "消防站", now.AddDate(0, 0, 14-i%30)
				}
				if err := st.UpdateItem(ctx, admin, a); err != nil {
					return fmt.Errorf("update an item of grid %d: %w", g, err)
				}
			}
		}
	}
	clock := gen.Clock()
	_, err = st.PutCampaign(ctx, admin, syncengine.Campaign{ID: gen.ID(), NodeID: syncengine.NewRegister(street, clock),
		Name:     syncengine.NewRegister("冬季走访", clock),
		StartsAt: syncengine.NewRegister(now.AddDate(0, 0, -30).UnixMilli(), clock),
		EndsAt:   syncengine.NewRegister(now.AddDate(0, 0, 30).UnixMilli(), clock),
		Quotas:   syncengine.NewRegister(syncengine.EncodeQuotas(map[int32]uint32{1: 200}), clock)})
	return err
}

// BenchmarkStreetReport measures a street's progress report (GetProgress
// over every grid of the street), through the API.
//
// "now" is the report as it stands, from the rows the server kept since
// the last report (the first op reads them whole); "now-one-changed" moves
// a household to another grid of the street before each report, which
// reads that household again; "as-of" the report as of ten days ago (in
// the campaign's window: from the kept rows and plain visits, which the
// first op reads one by one); "weekly" adds the campaign's weeks (one
// as-of analysis per week, and one at its start, from the same).
// BenchmarkStreetReportWhole reads every row each time.
func BenchmarkStreetReport(b *testing.B) {
	env := newReportEnv(b)
	ctx := context.Background()
	moved, err := env.reports.ListReportHouseholds(ctx, &pb.ListReportHouseholdsRequest{NodeId: env.street, CampaignId: env.campaignID,
		Metric: pb.ReportMetric_REPORT_METRIC_VISITED, Limit: 1})
	if err != nil || len(moved.GetHouseholds()) == 0 {
		b.Fatalf("a household to move: %v", err)
	}
	moves := 0
	for _, tc := range []struct {
		name string
		req  func() *pb.GetProgressRequest
	}{
		{"now", func() *pb.GetProgressRequest {
			return &pb.GetProgressRequest{NodeId: env.street, CampaignId: env.campaignID}
		}},
		{"now-one-changed", func() *pb.GetProgressRequest {
			moves++
			h := moved.GetHouseholds()[0].GetHouseholdId()
			// Between two grids (a street of one grid, CI's, moves it nowhere).
			if _, err := env.admin.MoveHousehold(ctx, &pb.MoveHouseholdRequest{HouseholdId: h, GridId: env.grids[moves%min(2, len(env.grids))]}); err != nil {
				b.Fatal(err)
			}
			return &pb.GetProgressRequest{NodeId: env.street, CampaignId: env.campaignID}
		}},
		{"as-of", func() *pb.GetProgressRequest {
			return &pb.GetProgressRequest{NodeId: env.street, CampaignId: env.campaignID, At: timestamppb.New(time.Now().Add(-10 * 24 * time.Hour))}
		}},
		{"weekly", func() *pb.GetProgressRequest {
			return &pb.GetProgressRequest{NodeId: env.street, CampaignId: env.campaignID, Weekly: true}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			peak := watchHeap(b)
			for b.Loop() {
				res, err := env.reports.GetProgress(ctx, tc.req())
				if err != nil {
					b.Fatal(err)
				}
				if res.GetReport().GetTotal().GetHouseholds() == 0 {
					b.Fatal("an empty report")
				}
			}
			b.ReportMetric(peak()/(1<<20), "peak-heap-MiB")
			b.ReportMetric(liveHeap()/(1<<20), "live-heap-MiB")
		})
	}
}

// BenchmarkStreetReportWhole is the street's report read whole each time:
// what the first report of a street costs, and every report of a server
// told to keep no rows (service.WithReportCache(0)).
func BenchmarkStreetReportWhole(b *testing.B) {
	env := newReportEnv(b, service.WithReportCache(0))
	ctx := context.Background()
	peak := watchHeap(b)
	defer func() {
		b.ReportMetric(peak()/(1<<20), "peak-heap-MiB")
		b.ReportMetric(liveHeap()/(1<<20), "live-heap-MiB")
	}()
	for b.Loop() {
		res, err := env.reports.GetProgress(ctx, &pb.GetProgressRequest{NodeId: env.street, CampaignId: env.campaignID})
		if err != nil {
			b.Fatal(err)
		}
		if res.GetReport().GetTotal().GetHouseholds() == 0 {
			b.Fatal("an empty report")
		}
	}
}

// BenchmarkStreetReportFirst is the first report of a street in a server
// process just opened (the service's, not through HTTP): its rows read
// whole, by connections whose page caches are empty.
func BenchmarkStreetReportFirst(b *testing.B) {
	env := newReportEnv(b)
	env.close()
	ctx := context.Background()
	token, err := os.ReadFile(env.path + ".token")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		backend, err := sqlite.Open(ctx, env.path)
		if err != nil {
			b.Fatal(err)
		}
		st := service.New(backend)
		p, err := st.Authenticate(ctx, string(token))
		if err != nil {
			b.Fatal(err)
		}
		an, err := st.Analyze(ctx, p, env.street, env.campaignID, time.Time{})
		if err != nil || len(an.Fieldwork.Households) == 0 {
			b.Fatalf("analyze: %v", err)
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExport measures the street's exports through the API, each
// streamed to the client and counted, with the server process's peak heap
// while it ran.
func BenchmarkExport(b *testing.B) {
	env := newReportEnv(b)
	ctx := context.Background()
	for _, kind := range []pb.ExportKind{pb.ExportKind_EXPORT_KIND_LEDGER, pb.ExportKind_EXPORT_KIND_VISITS} {
		for _, format := range []pb.ExportFormat{pb.ExportFormat_EXPORT_FORMAT_CSV, pb.ExportFormat_EXPORT_FORMAT_XLSX} {
			b.Run(kind.String()+"/"+format.String(), func(b *testing.B) {
				peak := watchHeap(b)
				var bytes int
				for b.Loop() {
					stream, err := env.reports.Export(ctx, &pb.ExportRequest{NodeId: env.street, CampaignId: env.campaignID, Kind: kind, Format: format})
					if err != nil {
						b.Fatal(err)
					}
					for stream.Receive() {
						bytes += len(stream.Msg().GetData())
					}
					if err := stream.Err(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(bytes)/float64(b.N)/(1<<20), "MiB/op")
				b.ReportMetric(peak()/(1<<20), "peak-heap-MiB")
			})
		}
	}
}

// BenchmarkConsolePages measures the console's pages over the street, each
// fetched whole by a browser's GET with the session's cookie, from a
// server that has read the campaign's scope as serve does on starting
// (WarmCampaigns): what an office waits for, once the page has been
// fetched once (first-ms). BenchmarkConsoleFirstPages measures a server
// that keeps nothing.
func BenchmarkConsolePages(b *testing.B) {
	env := newReportEnv(b)
	<-env.st.WarmCampaigns()
	ctx := context.Background()
	hh, err := env.reports.ListReportHouseholds(ctx, &pb.ListReportHouseholdsRequest{NodeId: env.street, CampaignId: env.campaignID,
		Metric: pb.ReportMetric_REPORT_METRIC_VISITED, Limit: 1})
	if err != nil || len(hh.GetHouseholds()) == 0 {
		b.Fatalf("a household visited: %v", err)
	}
	q := url.Values{"node": {env.street}, "campaign": {env.campaignID}}.Encode()
	for _, page := range []struct{ name, path string }{
		{"dashboard", "/console/?" + q},
		{"households-not-visited", "/console/households?metric=not_visited&" + q},
		{"weeks", "/console/weeks?" + q},
		{"household", "/console/household/" + hh.GetHouseholds()[0].GetHouseholdId()},
		{"items-open", "/console/items?state=open&node=" + env.street},
		{"workers", "/console/workers"},
		{"config", "/console/config"},
	} {
		b.Run(page.name, func(b *testing.B) {
			var size int
			fetch := func() { size = env.page(ctx, b, page.path) }
			// The first fetch reads what the page's reports keep and
			// nothing kept yet holds: reported apart from the mean of
			// the next ones.
			start := time.Now()
			fetch()
			first := time.Since(start)
			for b.Loop() {
				fetch()
			}
			b.ReportMetric(float64(size)/1024, "KiB/page")
			b.ReportMetric(float64(first.Milliseconds()), "first-ms")
		})
	}
}

// BenchmarkConsoleFirstPages measures the dashboard and the weeks page of
// the street as the first page of a server that keeps nothing of it (just
// started, or the street unused for an hour): each time a new server over
// the file. The weeks page read first reads the street's plain visits one
// by one besides its rows; read after the dashboard (BenchmarkConsolePages)
// it finds them read in the background.
func BenchmarkConsoleFirstPages(b *testing.B) {
	ctx := context.Background()
	for _, page := range []struct{ name, path string }{
		{"dashboard", "/console/?"},
		{"weeks", "/console/weeks?"},
	} {
		b.Run(page.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				env := newReportEnv(b)
				path := page.path + url.Values{"node": {env.street}, "campaign": {env.campaignID}}.Encode()
				b.StartTimer()
				env.page(ctx, b, path)
				b.StopTimer()
				env.close()
			}
		})
	}
}

// BenchmarkWarmCampaigns measures a server starting over the street: the
// time it takes to read and keep the campaign's scope (rows, and plain
// visits one by one), then the weeks page read first.
func BenchmarkWarmCampaigns(b *testing.B) {
	ctx := context.Background()
	var warm, weeks time.Duration
	for range b.N {
		b.StopTimer()
		env := newReportEnv(b)
		path := "/console/weeks?" + url.Values{"node": {env.street}, "campaign": {env.campaignID}}.Encode()
		b.StartTimer()
		start := time.Now()
		<-env.st.WarmCampaigns()
		warm += time.Since(start)
		start = time.Now()
		env.page(ctx, b, path)
		weeks += time.Since(start)
		b.StopTimer()
		env.close()
	}
	b.ReportMetric(float64(warm.Milliseconds())/float64(b.N), "warm-ms")
	b.ReportMetric(float64(weeks.Milliseconds())/float64(b.N), "weeks-ms")
}

// page fetches the console's page at path whole, as a browser of the
// bench's session, and returns its size.
func (env *reportEnv) page(ctx context.Context, b *testing.B, path string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.url+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: "doorbook_session", Value: env.session})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		b.Fatalf("%s: %d %v\n%s", path, res.StatusCode, err, body)
	}
	return len(body)
}

// watchHeap samples the heap until the benchmark ends and returns the
// peak seen.
// liveHeap is the heap the process keeps after a collection: with the
// server in process, the rows it keeps between reports among it.
func liveHeap() float64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	return float64(sample[0].Value.Uint64())
}

func watchHeap(b *testing.B) func() float64 {
	var mu sync.Mutex
	var peak uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			mu.Lock()
			peak = max(peak, sample[0].Value.Uint64())
			mu.Unlock()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() float64 {
		close(done)
		<-stopped
		mu.Lock()
		defer mu.Unlock()
		return float64(peak)
	}
}
