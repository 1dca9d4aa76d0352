package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doorbook/doorbook/server"
)

// TestCORS: with --cors-origin, a browser page of that origin may call the
// API (its preflight is answered, with the headers Connect, gRPC-Web, the
// bearer token and compression need, and answers expose gRPC-Web's status);
// another origin's page, and every page by default, gets no such leave.
func TestCORS(t *testing.T) {
	t.Parallel()
	st, err := openService(context.Background(), filepath.Join(t.TempDir(), "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	const app, evil = "https://app.example", "https://evil.example"
	withCORS := httptest.NewServer(server.New(st, server.WithCORS(app)).Handler())
	t.Cleanup(withCORS.Close)
	plain := httptest.NewServer(server.New(st).Handler())
	t.Cleanup(plain.Close)

	preflight := func(base, origin string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodOptions, base+"/doorbook.v1.SyncService/Pull", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		// As browsers send it: lower case, sorted.
		req.Header.Set("Access-Control-Request-Headers", "authorization,connect-protocol-version,connect-timeout-ms,content-type,grpc-timeout,x-grpc-web")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	res := preflight(withCORS.URL, app)
	allowed := strings.ToLower(res.Header.Get("Access-Control-Allow-Headers"))
	if res.Header.Get("Access-Control-Allow-Origin") != app || !strings.Contains(allowed, "authorization") || !strings.Contains(allowed, "x-grpc-web") {
		t.Errorf("the preflight of %s: %d, allow-origin %q, allow-headers %q", app, res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), allowed)
	}
	if res.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Error("credentials allowed across origins")
	}
	for name, base := range map[string]string{"another origin": withCORS.URL, "the default": plain.URL} {
		origin := evil
		if name == "the default" {
			origin = app
		}
		if got := preflight(base, origin).Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("%s: the preflight allows %q", name, got)
		}
	}

	// A call itself (refused, it has no valid code) carries the leave and
	// exposes gRPC-Web's status headers.
	req, _ := http.NewRequest(http.MethodPost, withCORS.URL+"/doorbook.v1.EnrollmentService/Enroll", strings.NewReader(`{"code":"ABCD-EFGH-JKLM","deviceName":"web"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", app)
	call, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	call.Body.Close()
	if call.Header.Get("Access-Control-Allow-Origin") != app || !strings.Contains(call.Header.Get("Access-Control-Expose-Headers"), "Grpc-Status") {
		t.Errorf("a call from %s: %d, allow-origin %q, expose %q", app, call.StatusCode, call.Header.Get("Access-Control-Allow-Origin"), call.Header.Get("Access-Control-Expose-Headers"))
	}
}
