package main

import (
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doorbook/doorbook/internal/pgtest"
)

// TestServePostgres: `serve --db postgres://...` runs on PostgreSQL as it
// does on its SQLite file: the demo seeds, a phone enrols, records a visit
// offline and syncs, and the summary never shows the password.
func TestServePostgres(t *testing.T) {
	t.Parallel()
	db := pgURL(t, pgtest.Start(t))
	srv := startServerOn(t, db, filepath.Join(t.TempDir(), "creds.json"))
	if !srv.summary.Demo || srv.summary.Households < 2900 {
		t.Fatalf("summary %+v: want the demo seeded", srv.summary)
	}
	if strings.Contains(srv.summary.DB, "secret") || !strings.HasPrefix(srv.summary.DB, "postgres://") {
		t.Errorf("summary names the database %q: want the URL without its password", srv.summary.DB)
	}
	r := newReplica(t, "li.db")
	r.enroll(srv.summary.Server, srv.creds.Workers[0].EnrollmentCode)
	r.sync() // the bootstrap
	if st := r.status(); st.Households == 0 || st.Bootstrapping {
		t.Fatalf("enrolled and synced replica holds no households: %+v", st)
	}
	h := r.households()[0].ID
	r.run("visit", "--household", h, "--form", "in_person", "--notes", "入户走访")
	if got := r.sync(); got.Pushed != 1 {
		t.Errorf("sync pushed %d changes, want the visit", got.Pushed)
	}
	if got := r.status(); got.Pending != 0 {
		t.Errorf("%d changes pending after a sync", got.Pending)
	}
	// The storage gauges come from PostgreSQL: the device seen, the pool.
	res, err := http.Get(srv.summary.Server + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d, %v", res.StatusCode, err)
	}
	for _, want := range []string{"doorbook_devices_seen 1\n", `doorbook_db_open_connections{pool="pool"} `, "doorbook_feed_head "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics on PostgreSQL lacks %q", want)
		}
	}
	if err := srv.stop(t); err != nil {
		t.Errorf("serve on PostgreSQL stopped with %v", err)
	}
}

// pgURL is pgtest's database as the URL serve takes, with a password that
// must not be printed.
func pgURL(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(pgtest.URL(t, dsn))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "secret")
	return u.String()
}
