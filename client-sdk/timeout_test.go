package sdk_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/syncengine"
)

// short timeouts make the tests quick; the defaults suit 2G.
var short = sdk.Timeouts{Connect: 2 * time.Second, FirstByte: 300 * time.Millisecond, Idle: 300 * time.Millisecond}

// blackHole accepts connections and never answers: a server whose process
// hangs, or a captive portal that swallows requests.
func blackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // held open, never read or written
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + l.Addr().String()
}

// waitErr waits for call's error, failing the test if the call hangs past
// the bound (far above the timeouts it should give up by).
func waitErr(t *testing.T, call func(context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got := make(chan error, 1)
	go func() { got <- call(ctx) }()
	select {
	case err := <-got:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the call hung: no timeout ended it")
		return nil
	}
}

func TestEnrollGivesUpOnASilentServer(t *testing.T) {
	t.Parallel()
	url := blackHole(t)
	r, err := sdk.Open(t.Context(), filepath.Join(t.TempDir(), "phone.db"), sdk.WithTimeouts(short))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = waitErr(t, func(ctx context.Context) error { return r.Enroll(ctx, url, "ABCD-EFGH-JKLM", "phone") })
	if !errors.Is(err, sdk.ErrTimeout) {
		t.Fatalf("enroll against a silent server: %v, want ErrTimeout", err)
	}
	if !strings.Contains(err.Error(), "no answer from the server within 300ms") {
		t.Errorf("the error does not say what timed out: %v", err)
	}
}

// TestSyncGivesUpOnAStalledStream: the server begins a bootstrap stream,
// then goes silent in the middle of it.
func TestSyncGivesUpOnAStalledStream(t *testing.T) {
	t.Parallel()
	a, _, _ := twoPhones(t)
	release := make(chan struct{})
	stalled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); stalled.Close() })
	sdk.SetServerURL(t, a, stalled.URL)
	r := sdk.Reopen(t, a, sdk.WithTimeouts(short))
	_, err := waitErr2(t, func(ctx context.Context) (sdk.SyncReport, error) { return r.Sync(ctx) })
	if !errors.Is(err, sdk.ErrTimeout) {
		t.Fatalf("sync against a stalled stream: %v, want ErrTimeout", err)
	}
}

func waitErr2(t *testing.T, call func(context.Context) (sdk.SyncReport, error)) (sdk.SyncReport, error) {
	t.Helper()
	var rep sdk.SyncReport
	err := waitErr(t, func(ctx context.Context) error {
		var err error
		rep, err = call(ctx)
		return err
	})
	return rep, err
}

// TestRunSyncKeepsTryingASilentServer: the background loop does not hang on
// the first attempt; it fails it and tries again, with backoff.
func TestRunSyncKeepsTryingASilentServer(t *testing.T) {
	t.Parallel()
	a, _, _ := twoPhones(t)
	sdk.SetServerURL(t, a, blackHole(t))
	r := sdk.Reopen(t, a, sdk.WithTimeouts(short))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var attempts, timeouts atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- r.RunSync(ctx, sdk.LoopOptions{Interval: 40 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, OnResult: func(_ sdk.SyncReport, err error) {
			if errors.Is(err, sdk.ErrTimeout) {
				timeouts.Add(1)
			}
			if attempts.Add(1) == 3 {
				cancel()
			}
		}})
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("RunSync hung")
	}
	if attempts.Load() < 3 || timeouts.Load() < 3 {
		t.Fatalf("attempts %d, of which timed out %d; want 3 and 3", attempts.Load(), timeouts.Load())
	}
}

func TestOpenExistingCreatesNothing(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "typo.db")
	if _, err := sdk.OpenExisting(t.Context(), path); !errors.Is(err, sdk.ErrNoReplica) {
		t.Fatalf("OpenExisting of a missing file: %v, want ErrNoReplica", err)
	}
	if matches, _ := filepath.Glob(path + "*"); len(matches) > 0 {
		t.Fatalf("OpenExisting left files: %v", matches)
	}
}

// TestRemoteErrorsSayEachThingOnce: a refused enrolment names the call, the
// code and the reason, once each, and errors.Is still finds the kind.
func TestRemoteErrorsSayEachThingOnce(t *testing.T) {
	t.Parallel()
	a, _, _ := twoPhones(t)
	url := sdk.ServerURL(t, a)
	r, err := sdk.Open(t.Context(), filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.Enroll(t.Context(), url, "ABCD-EFGH-JKLM", "phone")
	if !errors.Is(err, syncengine.ErrUnauthenticated) {
		t.Fatalf("enroll with a wrong code: %v", err)
	}
	msg := err.Error()
	for _, word := range []string{"enroll", "unauthenticated", "code not valid"} {
		if n := strings.Count(msg, word); n != 1 {
			t.Errorf("%q says %q %d times", msg, word, n)
		}
	}
}
