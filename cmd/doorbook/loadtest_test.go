package main

import (
	"database/sql"
	"maps"
	"path/filepath"
	"testing"
)

// loadtestOut is the part of loadtest's --json report the test reads.
type loadtestOut struct {
	Mode           string   `json:"mode"`
	Devices        int      `json:"devices"`
	Syncs          int      `json:"syncs"`
	SyncsPerSec    float64  `json:"syncs_per_s"`
	VisitsRecorded int      `json:"visits_recorded"`
	VisitsAccepted int      `json:"visits_accepted"`
	VisitsDrained  int      `json:"visits_accepted_final_sync"`
	Duplicates     int      `json:"duplicates"`
	VisitsOnServer int      `json:"visits_on_server"`
	ExactlyOnce    *bool    `json:"exactly_once"`
	Errors         int      `json:"errors"`
	ErrorSamples   []string `json:"error_samples"`
	SyncLatency    struct {
		N   int     `json:"n"`
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
	} `json:"sync_latency_ms"`
	ServerCPU  float64 `json:"server_cpu_s"`
	ServerPeak float64 `json:"server_peak_rss_mb"`
}

// TestLoadtestSmall runs the load test with 5 devices for 2 s against a
// server in process, then reads the files it leaves: every visit the
// devices recorded is on the server, once, and no device has anything left
// to send.
func TestLoadtestSmall(t *testing.T) {
	dir := t.TempDir()
	rep := doorbookJSON[loadtestOut](t, "loadtest", "--json", "--devices", "5", "--share", "2",
		"--duration", "2s", "--interval", "200ms", "--visits", "4", "--households", "10", "--dir", dir, "--seed", "7")
	if rep.Errors != 0 {
		t.Fatalf("%d errors: %q", rep.Errors, rep.ErrorSamples)
	}
	if rep.Mode != "in-process" || rep.Devices != 5 {
		t.Errorf("mode %q, %d devices; want in-process, 5", rep.Mode, rep.Devices)
	}
	if rep.Syncs == 0 || rep.SyncLatency.N != rep.Syncs || rep.VisitsAccepted == 0 {
		t.Errorf("%d syncs (%d timed), %d visits accepted: want some", rep.Syncs, rep.SyncLatency.N, rep.VisitsAccepted)
	}
	if rep.Duplicates != 0 || rep.VisitsAccepted+rep.VisitsDrained != rep.VisitsRecorded {
		t.Errorf("accepted %d + %d at the final sync, %d duplicates; recorded %d", rep.VisitsAccepted, rep.VisitsDrained, rep.Duplicates, rep.VisitsRecorded)
	}
	if rep.ExactlyOnce == nil || !*rep.ExactlyOnce || rep.VisitsOnServer != rep.VisitsRecorded {
		t.Errorf("report: %d visits on the server, %d recorded, exactly once %v", rep.VisitsOnServer, rep.VisitsRecorded, rep.ExactlyOnce)
	}

	// Counted again here, from the files: the server's visits are exactly
	// the union of the replicas' (every visit made on a device, plus those
	// of the device sharing its worker), and no outbox holds anything.
	onServer := visitIDs(t, filepath.Join(dir, "server.db"))
	if len(onServer) != rep.VisitsRecorded {
		t.Errorf("%d visits on the server; the devices recorded %d", len(onServer), rep.VisitsRecorded)
	}
	replicas, err := filepath.Glob(filepath.Join(dir, "device-*.db"))
	if err != nil || len(replicas) != 5 {
		t.Fatalf("replica files %v (%v); want 5", replicas, err)
	}
	onDevices := map[string]bool{}
	for _, f := range replicas {
		for id := range visitIDs(t, f) {
			onDevices[id] = true
		}
		if n := countRows(t, f, `SELECT count(*) FROM outbox`); n != 0 {
			t.Errorf("%s: %d changes unsent", filepath.Base(f), n)
		}
	}
	if !maps.Equal(onServer, onDevices) {
		t.Errorf("visits on the server (%d) and on the devices (%d) differ", len(onServer), len(onDevices))
	}
}

// loadtestDB opens a database file the load test left, read-only.
func loadtestDB(t *testing.T, file string) *sql.DB {
	t.Helper()
	db, err := openRO(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// visitIDs reads the visit ids of a database file, failing on a repeat.
func visitIDs(t *testing.T, file string) map[string]bool {
	t.Helper()
	rows, err := loadtestDB(t, file).QueryContext(t.Context(), `SELECT id FROM visits`)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		if ids[id] {
			t.Errorf("%s: visit %s twice", file, id)
		}
		ids[id] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func countRows(t *testing.T, file, query string) int {
	t.Helper()
	var n int
	if err := loadtestDB(t, file).QueryRowContext(t.Context(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %s: %v", file, query, err)
	}
	return n
}
