package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/doorbook/doorbook/server"
)

// TestWithConnections: Serve reports how many connections are open as
// they open and close, so that the caller can size what it keeps for them
// (doorbook serve's memory limit).
func TestWithConnections(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counts := make(chan int, 64)
	ctx, stop := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() {
		served <- server.Serve(ctx, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
			server.WithConnections(func(open int) { counts <- open }))
	}()
	// A guard against a hang, not a measure.
	guard := time.After(time.Minute)
	want := func(n int) {
		t.Helper()
		for {
			select {
			case got := <-counts:
				if got == n {
					return
				}
			case <-guard:
				t.Fatalf("the connections open never came to %d", n)
			}
		}
	}
	// Each client keeps its connection open between requests: two over
	// HTTP/1.1, one over HTTP/2 without TLS (gRPC's way).
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	var clients []*http.Client
	for i, protocols := range []*http.Protocols{nil, nil, &h2c} {
		c := &http.Client{Transport: &http.Transport{Protocols: protocols}}
		clients = append(clients, c)
		res, err := c.Get("http://" + l.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		if protocols != nil && res.ProtoMajor != 2 {
			t.Errorf("an h2c client got HTTP/%d", res.ProtoMajor)
		}
		// Read whole, or the client drops the connection.
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		want(i + 1)
	}
	for i, c := range clients {
		c.CloseIdleConnections()
		want(len(clients) - i - 1)
	}
	stop()
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
}
