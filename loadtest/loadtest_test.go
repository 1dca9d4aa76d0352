package loadtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/doorbook/doorbook/loadtest"
	"github.com/doorbook/doorbook/server"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store/sqlite"
	"github.com/doorbook/doorbook/syncengine"
)

// serveDB makes this test binary the child of TestRunServerProcess: a
// server over the file, as a ServerCommand is to be.
var serveDB = flag.String("loadtest.serve", "", "serve this database `file` and exit on SIGTERM (for TestRunServerProcess)")

func TestMain(m *testing.M) {
	flag.Parse()
	if *serveDB != "" {
		if err := serve(*serveDB); err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func serve(db string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	if err := json.NewEncoder(os.Stdout).Encode(map[string]string{"server": "http://" + l.Addr().String()}); err != nil {
		return err
	}
	return server.Serve(ctx, l, server.New(service.New(st)).Handler())
}

// small is a load that takes a second or two.
func small(t *testing.T) loadtest.Options {
	o := loadtest.DefaultOptions()
	o.Devices, o.Share, o.Households, o.Visits = 3, 2, 4, 3
	o.Duration, o.Interval = time.Second, 100*time.Millisecond
	o.Dir = filepath.Join(t.TempDir(), "load")
	return o
}

// TestRunServerProcess runs the server as the caller's command (this test
// binary, not doorbook) and counts the visits through the store it leaves.
func TestRunServerProcess(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	o := small(t)
	o.ServerProcess = &loadtest.ServerCommand{Path: exe, Args: func(db string) []string {
		return []string{"-loadtest.serve", db}
	}}
	rep, err := loadtest.Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("%v: %q", err, rep.ErrorSamples)
	}
	if rep.Mode != loadtest.ModeServerProcess || rep.Devices != 3 || rep.Workers != 2 {
		t.Errorf("mode %q, %d devices, %d workers; want %q, 3, 2", rep.Mode, rep.Devices, rep.Workers, loadtest.ModeServerProcess)
	}
	if rep.VisitsRecorded == 0 || rep.VisitsOnServer != rep.VisitsRecorded || rep.ExactlyOnce == nil || !*rep.ExactlyOnce {
		t.Errorf("%d visits recorded, %d on the server, exactly once %v", rep.VisitsRecorded, rep.VisitsOnServer, rep.ExactlyOnce)
	}
	if rep.HandlerPush != nil {
		t.Errorf("handler times of a server in another process: %+v", rep.HandlerPush)
	}
	if _, err := os.Stat(filepath.Join(o.Dir, "server.log")); err != nil {
		t.Errorf("the server process's log: %v", err)
	}
}

// TestRunReplay: the replay load's devices are API clients, with no
// replica file, and every visit they pushed is on the server once.
func TestRunReplay(t *testing.T) {
	t.Parallel()
	o := small(t)
	o.Replay = true
	o.Interval = 10 * time.Millisecond
	rep, err := loadtest.Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("%v: %q", err, rep.ErrorSamples)
	}
	if !rep.Replay || rep.Syncs == 0 || rep.VisitsAccepted == 0 || rep.PushRTT.N == 0 || rep.PullRTT.N == 0 {
		t.Errorf("replay %v, %d syncs, %d visits accepted, %d pushes, %d pulls: want a load", rep.Replay, rep.Syncs, rep.VisitsAccepted, rep.PushRTT.N, rep.PullRTT.N)
	}
	if rep.VisitsOnServer != rep.VisitsRecorded || rep.ExactlyOnce == nil || !*rep.ExactlyOnce {
		t.Errorf("%d visits pushed, %d on the server, exactly once %v", rep.VisitsRecorded, rep.VisitsOnServer, rep.ExactlyOnce)
	}
	if rep.ServerCPUMsPerVisit <= 0 {
		t.Errorf("server CPU per visit %v", rep.ServerCPUMsPerVisit)
	}
	files, err := filepath.Glob(filepath.Join(o.Dir, "device-*"))
	if err != nil || len(files) > 0 {
		t.Errorf("replica files of a replay load: %v, %v", files, err)
	}
}

// TestReplayPastTheCap: a replay whose households reach the cap of visits
// a day has the visits past it refused and set aside, as a phone would,
// counted apart from errors; every other visit is on the server once.
func TestReplayPastTheCap(t *testing.T) {
	t.Parallel()
	o := small(t)
	o.Replay = true
	o.Devices, o.Share, o.Households, o.Visits = 1, 1, 1, 40
	o.Interval = 0
	rep, err := loadtest.Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("%v: %q", err, rep.ErrorSamples)
	}
	// Two days' caps: the load's second may cross midnight.
	if rep.VisitsRefused == 0 || rep.VisitsOnServer != rep.VisitsRecorded-rep.VisitsRefused || rep.VisitsOnServer > 2*syncengine.MaxVisitsPerHouseholdPerDay {
		t.Errorf("%d visits recorded, %d refused, %d on the server: want the ones past the cap (%d) refused", rep.VisitsRecorded,
			rep.VisitsRefused, rep.VisitsOnServer, syncengine.MaxVisitsPerHouseholdPerDay)
	}
	var b strings.Builder
	rep.WriteText(&b)
	if !strings.Contains(b.String(), fmt.Sprintf("%d refused by the rules", rep.VisitsRefused)) {
		t.Errorf("the report does not say how many were refused:\n%s", b.String())
	}
}

// TestRunRefuses: options no load runs with, and a directory in use, are
// refused before anything is written.
func TestRunRefuses(t *testing.T) {
	t.Parallel()
	for name, change := range map[string]func(*loadtest.Options){
		"no devices":       func(o *loadtest.Options) { o.Devices = 0 },
		"no share":         func(o *loadtest.Options) { o.Share = 0 },
		"no duration":      func(o *loadtest.Options) { o.Duration = 0 },
		"unknown think":    func(o *loadtest.Options) { o.Think = "normal" },
		"remote, no token": func(o *loadtest.Options) { o.ServerURL = "http://127.0.0.1:1" },
		"remote and child": func(o *loadtest.Options) {
			o.ServerURL, o.AdminToken, o.ServerProcess = "http://127.0.0.1:1", "t", &loadtest.ServerCommand{}
		},
		"child, no command": func(o *loadtest.Options) { o.ServerProcess = &loadtest.ServerCommand{} },
		"also, no server":   func(o *loadtest.Options) { o.AlsoURLs = []string{"http://127.0.0.1:1"} },
		"replay, remote": func(o *loadtest.Options) {
			o.ServerURL, o.AdminToken, o.Replay = "http://127.0.0.1:1", "t", true
		},
	} {
		o := small(t)
		change(&o)
		if _, err := loadtest.Run(t.Context(), o); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, err := os.Stat(o.Dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the directory was made (%v)", name, err)
		}
	}

	o := small(t)
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(o.Dir, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadtest.Run(t.Context(), o); !errors.Is(err, loadtest.ErrDirNotEmpty) {
		t.Errorf("a directory in use: %v; want ErrDirNotEmpty", err)
	}
}
