package loadtest

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"
)

// Report is what a load did. Its JSON is `doorbook loadtest --json`'s.
type Report struct {
	Mode              string  `json:"mode"` // ModeInProcess, ModeServerProcess or ModeRemote
	Server            string  `json:"server"`
	Devices           int     `json:"devices"`
	Workers           int     `json:"workers"`
	HouseholdsPerGrid int     `json:"households_per_grid"`
	VisitsPerSync     int     `json:"max_visits_per_sync"`
	IntervalMS        float64 `json:"mean_interval_ms"`
	Seed              uint64  `json:"seed"`
	// Replay says the devices were API clients with no replica (see
	// Options.Replay).
	Replay       bool    `json:"replay"`
	Machine      string  `json:"machine"`
	SetupSeconds float64 `json:"setup_s"`
	// LoadSeconds is the measured window: from the start until the last
	// sync begun within Options.Duration ended.
	LoadSeconds float64 `json:"load_s"`

	Syncs                int     `json:"syncs"`
	SyncsPerSec          float64 `json:"syncs_per_s"`
	VisitsRecorded       int     `json:"visits_recorded"`
	VisitsRefused        int     `json:"visits_refused"`  // recorded, then refused for good by a rule (a household's visits a day past the cap) and set aside
	VisitsAccepted       int     `json:"visits_accepted"` // applied by the server (push responses), in the window
	VisitsAcceptedPerSec float64 `json:"visits_accepted_per_s"`
	VisitsAcceptedDrain  int     `json:"visits_accepted_final_sync"`
	Duplicates           int     `json:"duplicates"`
	Pulled               int     `json:"rows_pulled"`
	// VisitsOnServer is counted through the server's store, in the district
	// the load seeded (-1: not reachable, a remote server); ExactlyOnce
	// compares it, or else the accepted total, with the visits recorded
	// and not refused.
	VisitsOnServer int   `json:"visits_on_server"`
	ExactlyOnce    *bool `json:"exactly_once"`

	SyncLatency LatencyStats `json:"sync_latency_ms"`
	PushRTT     LatencyStats `json:"push_rtt_ms"`
	PullRTT     LatencyStats `json:"pull_rtt_ms"`
	// Handler times are wall times inside the server's HTTP handler (with
	// the in-process server only): queueing for SQLite's writer included.
	HandlerPush *LatencyStats `json:"server_handler_push_ms,omitempty"`
	HandlerPull *LatencyStats `json:"server_handler_pull_ms,omitempty"`

	Errors       int      `json:"errors"`
	ErrorSamples []string `json:"error_samples"`

	ServerCPUSeconds float64 `json:"server_cpu_s"`
	ServerCPUCores   float64 `json:"server_cpu_cores"`
	ServerPeakMB     float64 `json:"server_peak_rss_mb"`
	// ServerFileMB is the server's resident pages of mapped files at the
	// end, its database's among them: page cache, counted in its RSS.
	ServerFileMB float64 `json:"server_rss_file_mb"`
	// ServerCPUMsPerVisit is the server's CPU over the visits it accepted
	// in the window (pulls included).
	ServerCPUMsPerVisit float64 `json:"server_cpu_ms_per_visit"`
	// ServerScope says what the server figures cover.
	ServerScope      string  `json:"server_scope"`
	ClientCPUSeconds float64 `json:"client_cpu_s"`
	ClientPeakMB     float64 `json:"client_peak_rss_mb"`
	OpenFiles        int     `json:"open_files"`
}

// LatencyStats summarise durations, in milliseconds.
type LatencyStats struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// summarize sorts ds and summarises them, rounded to 10 µs.
func summarize(ds []time.Duration) LatencyStats {
	if len(ds) == 0 {
		return LatencyStats{}
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }
	q := func(p float64) float64 { return ms(ds[min(len(ds)-1, int(math.Ceil(p*float64(len(ds))))-1)]) }
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return LatencyStats{N: len(ds), Mean: ms(sum / time.Duration(len(ds))), P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: ms(ds[len(ds)-1])}
}

// Err is what went wrong during the load: errors, or visits on the server
// that are not those recorded, exactly once. nil for a clean load.
func (r *Report) Err() error {
	if r.Errors > 0 {
		return fmt.Errorf("loadtest: %d errors", r.Errors)
	}
	if r.ExactlyOnce != nil && !*r.ExactlyOnce {
		return errors.New("loadtest: the visits on the server are not those recorded, exactly once")
	}
	return nil
}

// WriteText writes the report for a person: a line per figure, its cells
// separated by tabs (for a text/tabwriter).
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "server\t%s (%s)\n", r.Server, r.Mode)
	fmt.Fprintf(w, "devices\t%d (%d workers, %d households per grid)\n", r.Devices, r.Workers, r.HouseholdsPerGrid)
	if r.Replay {
		fmt.Fprintf(w, "schedule\treplay: think %.0f ms (mean), then push 1..%d visits and pull, with no replica; seed %d\n", r.IntervalMS, r.VisitsPerSync, r.Seed)
	} else {
		fmt.Fprintf(w, "schedule\t1..%d visits, then think %.0f ms (mean), then sync; seed %d\n", r.VisitsPerSync, r.IntervalMS, r.Seed)
	}
	fmt.Fprintf(w, "machine\t%s\n", r.Machine)
	fmt.Fprintf(w, "setup\t%.1f s\n", r.SetupSeconds)
	fmt.Fprintf(w, "load\t%.1f s\n", r.LoadSeconds)
	fmt.Fprintf(w, "syncs\t%d (%.0f/s)\n", r.Syncs, r.SyncsPerSec)
	fmt.Fprintf(w, "visits accepted\t%d (%.0f/s), %d more at the final sync; %d duplicates\n", r.VisitsAccepted, r.VisitsAcceptedPerSec, r.VisitsAcceptedDrain, r.Duplicates)
	onServer := "not counted (remote server)"
	if r.VisitsOnServer >= 0 {
		onServer = strconv.Itoa(r.VisitsOnServer)
	}
	once := "?"
	if r.ExactlyOnce != nil {
		once = map[bool]string{true: "yes", false: "NO"}[*r.ExactlyOnce]
	}
	refused := ""
	if r.VisitsRefused > 0 {
		refused = fmt.Sprintf(", %d refused by the rules", r.VisitsRefused)
	}
	fmt.Fprintf(w, "visits recorded\t%d%s; on the server %s; exactly once: %s\n", r.VisitsRecorded, refused, onServer, once)
	fmt.Fprintf(w, "\tn\tmean\tp50\tp95\tp99\tmax (ms)\n")
	lat := func(name string, l LatencyStats) {
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\n", name, l.N, l.Mean, l.P50, l.P95, l.P99, l.Max)
	}
	lat("sync (whole call)", r.SyncLatency)
	lat("push round trip", r.PushRTT)
	lat("pull round trip", r.PullRTT)
	if r.HandlerPush != nil {
		lat("server push handler", *r.HandlerPush)
		lat("server pull handler", *r.HandlerPull)
	}
	fmt.Fprintf(w, "errors\t%d\n", r.Errors)
	for _, e := range r.ErrorSamples {
		fmt.Fprintf(w, "\t%s\n", e)
	}
	fmt.Fprintf(w, "server CPU\t%.1f s (%.2f cores, %.3f ms per visit accepted) — %s\n", r.ServerCPUSeconds, r.ServerCPUCores, r.ServerCPUMsPerVisit, r.ServerScope)
	fmt.Fprintf(w, "server peak memory\t%.0f MB (files mapped at the end, the database's pages among them: %.0f MB)\n", r.ServerPeakMB, r.ServerFileMB)
	fmt.Fprintf(w, "client CPU\t%.1f s\n", r.ClientCPUSeconds)
	fmt.Fprintf(w, "client peak memory\t%.0f MB\n", r.ClientPeakMB)
	fmt.Fprintf(w, "open files\t%d\n", r.OpenFiles)
}
