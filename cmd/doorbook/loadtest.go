package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	harness "github.com/doorbook/doorbook/loadtest"
)

const loadtestUsage = `Usage: doorbook loadtest [--devices N] [--duration 30s] [--interval 1s] [--visits K] [flags]

Runs N simulated phones against one server. Each has its own replica file,
records 1..K visits offline, waits a random think time (mean --interval), and
syncs, until --duration is up; then each syncs once more and the visits on the
server are counted against those recorded (exactly once).

The server is, by default, started in this process on a loopback port over a
fresh SQLite file (its CPU and memory figures then include the clients);
--server-process runs it as a child "doorbook serve" so that its CPU and peak
memory are measured alone; --server URL --credentials FILE targets a running
server (an org tree is added to it; devices register their own households).

--replay makes the phones plain API clients with no replica file: each pushes
1..K visits built in memory and pulls from its cursor, so that the CPU the
load costs is the server's, not the simulated phones' SQLite (with
--server-process, the server's ceiling: try --interval 0).

Flags:
`

// loadtest runs the load-test harness (package loadtest) with options from
// the command line and prints its report. The harness is imported as
// "harness": the name loadtest is this function's.
func loadtest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("loadtest", stderr)
	o := harness.DefaultOptions()
	var (
		credsPath     string
		serverProcess bool
		asJSON        bool
	)
	fs.IntVar(&o.Devices, "devices", o.Devices, "simulated phones, each with its own replica file")
	fs.IntVar(&o.Share, "share", o.Share, "devices per worker (devices of one worker share its grid and pull each other's visits)")
	fs.IntVar(&o.Households, "households", o.Households, "households per grid (one grid per worker)")
	fs.IntVar(&o.Visits, "visits", o.Visits, "most visits recorded offline between two syncs (uniform 1..K)")
	fs.IntVar(&o.Notes, "notes", o.Notes, "approximate `bytes` of notes per visit")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "how long the devices keep recording and syncing")
	fs.DurationVar(&o.Interval, "interval", o.Interval, "mean think time between a device's syncs")
	fs.StringVar(&o.Think, "think", o.Think, "think time distribution: exp (exponential) or uniform (0..2×interval)")
	fs.DurationVar(&o.SyncTimeout, "sync-timeout", o.SyncTimeout, "a sync taking longer fails (counted as an error)")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the data, the schedules and the visits")
	fs.StringVar(&o.Dir, "dir", "", "`directory` for the replica files and the server database, kept afterwards (default: a temporary one, removed)")
	fs.IntVar(&o.SetupParallel, "setup-parallel", o.SetupParallel, "devices enrolled and bootstrapped at once")
	fs.BoolVar(&o.Replay, "replay", false, "phones as API clients with no replica: push visits built in memory, then pull (not with --server)")
	fs.BoolVar(&serverProcess, "server-process", false, "run the server as a child process (doorbook serve) and measure its CPU and peak memory alone")
	fs.StringVar(&o.ServerURL, "server", "", "target a running server at `URL` (needs --credentials)")
	also := fs.String("also", "", "more running servers on --server's database, as comma-separated `URLs`: devices are spread over all of them in turn")
	fs.StringVar(&credsPath, "credentials", "", "credentials `file` of the running server (doorbook serve writes it)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of this process during the load to `file` (server included, unless --server-process)")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	fs.Usage = func() { fmt.Fprint(stderr, loadtestUsage); fs.PrintDefaults() }
	if err := parse(fs, args); err != nil {
		return err
	}
	if *also != "" {
		o.AlsoURLs = strings.Split(*also, ",")
	}
	switch {
	case o.Devices < 1:
		return fmt.Errorf("%w: --devices must be at least 1", errUsage)
	case o.Share < 1 || o.Visits < 1 || o.Households < 1 || o.SetupParallel < 1:
		return fmt.Errorf("%w: --share, --visits, --households and --setup-parallel must be at least 1", errUsage)
	case o.Notes < 0 || o.Duration <= 0 || o.Interval < 0 || o.SyncTimeout <= 0:
		return fmt.Errorf("%w: --notes, --duration, --interval and --sync-timeout must be positive", errUsage)
	case o.Think != harness.ThinkExp && o.Think != harness.ThinkUniform:
		return fmt.Errorf("%w: --think is exp or uniform, got %q", errUsage, o.Think)
	case (o.ServerURL == "") != (credsPath == ""):
		return fmt.Errorf("%w: --server and --credentials go together", errUsage)
	case len(o.AlsoURLs) > 0 && o.ServerURL == "":
		return fmt.Errorf("%w: --also names servers beside --server", errUsage)
	case o.ServerURL != "" && o.Replay:
		return fmt.Errorf("%w: --replay seeds its households through a server of its own; it does not go with --server", errUsage)
	case o.ServerURL != "" && serverProcess:
		return fmt.Errorf("%w: --server-process starts a server of its own; it does not go with --server", errUsage)
	}
	if credsPath != "" {
		c, err := readCredentials(credsPath)
		if err != nil {
			return err
		}
		o.AdminToken = c.AdminToken
	}
	if serverProcess {
		// The child is this very binary's serve verb.
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.ServerProcess = &harness.ServerCommand{Path: exe, Args: func(db string) []string {
			return []string{"serve", "--db", db, "--addr", "127.0.0.1:0", "--json", "--log-format", "json"}
		}}
	}
	if !asJSON {
		o.Progress = stderr
	}
	rep, err := harness.Run(ctx, o)
	if errors.Is(err, harness.ErrDirNotEmpty) {
		return fmt.Errorf("%w: --dir %s is not empty", errUsage, o.Dir)
	}
	if err != nil {
		return err
	}
	out := output{json: asJSON, w: stdout}
	if err := out.print(rep, rep.WriteText); err != nil {
		return err
	}
	return rep.Err()
}
