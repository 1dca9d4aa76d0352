package metrics_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	dto "github.com/prometheus/client_model/go"

	"github.com/doorbook/doorbook/server/metrics"
)

// families is one scrape, parsed.
type families map[string]*dto.MetricFamily

// scrape GETs url (a /metrics) and parses the text exposition.
func scrape(tb testing.TB, client *http.Client, url string) families {
	tb.Helper()
	res, err := client.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(res.Body)
		tb.Fatalf("GET %s: %s\n%s", url, res.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		tb.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// get is the value of the series of name with labels (pairs of name and
// value), and whether there is one. A histogram's value is its count.
func (f families) get(name string, labels ...string) (float64, bool) {
	fam, ok := f[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range fam.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// value is get's value, failing the test when there is no such series.
func (f families) value(tb testing.TB, name string, labels ...string) float64 {
	tb.Helper()
	v, ok := f.get(name, labels...)
	if !ok {
		tb.Fatalf("no series %s%v in the scrape", name, labels)
	}
	return v
}

type rowsKey struct{}

// TestInterceptorCodes calls a handler that ends with each code in turn
// and checks what the interceptor counted.
func TestInterceptorCodes(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.WithRows(func(ctx context.Context) metrics.Rows {
		r, _ := ctx.Value(rowsKey{}).(*metrics.Rows)
		if r == nil {
			return metrics.Rows{}
		}
		return *r
	}))
	// The outer interceptor gives handlers somewhere to count rows, as the
	// server's log interceptor does.
	counting := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			return next(context.WithValue(ctx, rowsKey{}, &metrics.Rows{}), req)
		}
	})
	const procedure = "/test.v1.Test/Call"
	mux := http.NewServeMux()
	mux.Handle(procedure, connect.NewUnaryHandler(procedure,
		func(ctx context.Context, req *connect.Request[wrapperspb.StringValue]) (*connect.Response[emptypb.Empty], error) {
			switch req.Msg.GetValue() {
			case "ok":
				r := ctx.Value(rowsKey{}).(*metrics.Rows)
				r.Applied, r.Duplicates, r.Pulled = 3, 1, 5
				return connect.NewResponse(&emptypb.Empty{}), nil
			case "denied":
				return nil, connect.NewError(connect.CodePermissionDenied, errors.New("no"))
			case "plain":
				return nil, errors.New("a bug")
			}
			return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("what?"))
		},
		connect.WithInterceptors(counting, m.Interceptor()),
	))
	mux.Handle("/metrics", m.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	client := connect.NewClient[wrapperspb.StringValue, emptypb.Empty](hs.Client(), hs.URL+procedure)
	for _, v := range []string{"ok", "ok", "denied", "plain", "other"} {
		_, _ = client.CallUnary(t.Context(), connect.NewRequest(wrapperspb.String(v)))
	}
	m.Refused(procedure, connect.CodePermissionDenied)
	m.Refused("", connect.CodeResourceExhausted)

	f := scrape(t, hs.Client(), hs.URL+"/metrics")
	for _, c := range []struct {
		code string
		want float64
	}{{"ok", 2}, {"permission_denied", 2}, {"unknown", 1}, {"invalid_argument", 1}} {
		if got := f.value(t, "doorbook_rpc_calls_total", "procedure", procedure, "code", c.code); got != c.want {
			t.Errorf("calls with code %s = %v, want %v", c.code, got, c.want)
		}
	}
	if got := f.value(t, "doorbook_rpc_calls_total", "procedure", "other", "code", "resource_exhausted"); got != 1 {
		t.Errorf("refused calls outside the API = %v, want 1 under procedure \"other\"", got)
	}
	for code, want := range map[string]float64{"permission_denied": 2, "unknown": 1, "invalid_argument": 1, "resource_exhausted": 1} {
		if got := f.value(t, "doorbook_rpc_errors_total", "code", code); got != want {
			t.Errorf("errors with code %s = %v, want %v", code, got, want)
		}
	}
	if _, ok := f.get("doorbook_rpc_errors_total", "code", "ok"); ok {
		t.Error("successful calls counted as errors")
	}
	// Refused calls never ran a handler: only the five handled are timed.
	if got := f.value(t, "doorbook_rpc_duration_seconds", "procedure", procedure); got != 5 {
		t.Errorf("duration observations = %v, want 5", got)
	}
	if got := f.value(t, "doorbook_rpc_in_flight", "procedure", procedure); got != 0 {
		t.Errorf("in flight after the calls = %v", got)
	}
	if got := f.value(t, "doorbook_rows_pushed_total", "result", "applied"); got != 6 {
		t.Errorf("rows applied = %v, want 6", got)
	}
	if got := f.value(t, "doorbook_rows_pushed_total", "result", "duplicate"); got != 2 {
		t.Errorf("rows duplicate = %v, want 2", got)
	}
	if got := f.value(t, "doorbook_rows_pulled_total", "procedure", procedure); got != 10 {
		t.Errorf("rows pulled = %v, want 10", got)
	}
	if _, ok := f.get("go_goroutines"); !ok {
		t.Error("no Go runtime metrics")
	}
}

// fakeStorage answers every storage gauge.
type fakeStorage struct {
	head  uint64
	err   error
	since chan time.Time
}

func (s *fakeStorage) FeedHead(context.Context) (uint64, error) { return s.head, s.err }

func (s *fakeStorage) DevicesSeenSince(_ context.Context, t time.Time) (int, error) {
	select {
	case s.since <- t:
	default:
	}
	return 7, nil
}

func (s *fakeStorage) DBStats() map[string]sql.DBStats {
	return map[string]sql.DBStats{
		"write": {MaxOpenConnections: 1, OpenConnections: 1, InUse: 1, WaitCount: 4, WaitDuration: 1500 * time.Millisecond},
		"read":  {MaxOpenConnections: 4, OpenConnections: 2, Idle: 2},
	}
}

// feedOnly answers the feed head alone; slow makes it wait for its
// deadline.
type feedOnly struct{ slow bool }

func (f feedOnly) FeedHead(ctx context.Context) (uint64, error) {
	if f.slow {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return 99, nil
}

func serveMetrics(t *testing.T, m *metrics.Metrics) (*http.Client, string) {
	t.Helper()
	hs := httptest.NewServer(m.Handler())
	t.Cleanup(hs.Close)
	return hs.Client(), hs.URL
}

func TestStorageGauges(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	t.Run("all sources", func(t *testing.T) {
		t.Parallel()
		src := &fakeStorage{head: 12345, since: make(chan time.Time, 1)}
		client, url := serveMetrics(t, metrics.New(metrics.WithSources(src), metrics.WithNow(func() time.Time { return now })))
		f := scrape(t, client, url)
		if got := f.value(t, "doorbook_feed_head"); got != 12345 {
			t.Errorf("feed head = %v", got)
		}
		if got := f.value(t, "doorbook_devices_seen"); got != 7 {
			t.Errorf("devices seen = %v", got)
		}
		if since := <-src.since; !since.Equal(now.Add(-24 * time.Hour)) {
			t.Errorf("devices counted since %v, want a day before %v", since, now)
		}
		for _, c := range []struct {
			name, pool string
			want       float64
		}{
			{"doorbook_db_open_connections", "write", 1},
			{"doorbook_db_in_use_connections", "write", 1},
			{"doorbook_db_max_open_connections", "read", 4},
			{"doorbook_db_idle_connections", "read", 2},
			{"doorbook_db_wait_count_total", "write", 4},
			{"doorbook_db_wait_duration_seconds_total", "write", 1.5},
		} {
			if got := f.value(t, c.name, "pool", c.pool); got != c.want {
				t.Errorf("%s{pool=%q} = %v, want %v", c.name, c.pool, got, c.want)
			}
		}
	})
	t.Run("first source wins, unsupported gauges absent", func(t *testing.T) {
		t.Parallel()
		client, url := serveMetrics(t, metrics.New(metrics.WithSources(struct{}{}, feedOnly{}, &fakeStorage{head: 1})))
		f := scrape(t, client, url)
		if got := f.value(t, "doorbook_feed_head"); got != 99 {
			t.Errorf("feed head = %v, want the first source's 99", got)
		}
		client, url = serveMetrics(t, metrics.New(metrics.WithSources(struct{}{})))
		f = scrape(t, client, url)
		for _, name := range []string{"doorbook_feed_head", "doorbook_devices_seen", "doorbook_db_open_connections"} {
			if _, ok := f[name]; ok {
				t.Errorf("%s served without a source", name)
			}
		}
	})
	t.Run("failed read leaves its gauge out", func(t *testing.T) {
		t.Parallel()
		src := &fakeStorage{err: errors.New("database is closed"), since: make(chan time.Time, 1)}
		client, url := serveMetrics(t, metrics.New(metrics.WithSources(src)))
		f := scrape(t, client, url)
		if _, ok := f["doorbook_feed_head"]; ok {
			t.Error("feed head served although its read failed")
		}
		if got := f.value(t, "doorbook_devices_seen"); got != 7 {
			t.Errorf("devices seen = %v: the other gauges must still be served", got)
		}
		// The handler counts the failure once it has answered: the next
		// scrape shows it.
		f = scrape(t, client, url)
		if got := f.value(t, "promhttp_metric_handler_errors_total", "cause", "gathering"); got < 1 {
			t.Errorf("gathering errors = %v, want the failed read counted", got)
		}
	})
	t.Run("slow read cut at the timeout", func(t *testing.T) {
		t.Parallel()
		client, url := serveMetrics(t, metrics.New(metrics.WithSources(feedOnly{slow: true}), metrics.WithScrapeTimeout(50*time.Millisecond)))
		start := time.Now()
		f := scrape(t, client, url)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("scrape took %v with a 50ms storage timeout", d)
		}
		if _, ok := f["doorbook_feed_head"]; ok {
			t.Error("feed head served although its read timed out")
		}
	})
}

func TestNilMetrics(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	m.Refused("/x", connect.CodeInternal) // no panic
	called := false
	next := connect.UnaryFunc(func(context.Context, connect.AnyRequest) (connect.AnyResponse, error) {
		called = true
		return nil, nil
	})
	if _, err := m.Interceptor().WrapUnary(next)(t.Context(), connect.NewRequest(&emptypb.Empty{})); err != nil || !called {
		t.Errorf("a nil Metrics' interceptor must pass calls through: %v, called %v", err, called)
	}
}

// ExampleMetrics shows a scrape's lines after one call refused for want of
// a right.
func ExampleMetrics() {
	m := metrics.New()
	m.Refused("/doorbook.v1.AdminService/ListWorkers", connect.CodePermissionDenied)
	hs := httptest.NewServer(m.Handler())
	defer hs.Close()
	res, err := http.Get(hs.URL)
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "doorbook_rpc_") {
			fmt.Print(line)
		}
	}
	// Output:
	// doorbook_rpc_calls_total{code="permission_denied",procedure="/doorbook.v1.AdminService/ListWorkers"} 1
	// doorbook_rpc_errors_total{code="permission_denied"} 1
}
