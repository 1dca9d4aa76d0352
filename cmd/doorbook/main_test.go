package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"

	"connectrpc.com/connect"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
)

// The tests drive the binary in-process through run, with --json outputs
// parsed into the structs below: these are the shapes scripts depend on, so
// they are spelled out here rather than borrowed from the code under test.

type serveSummary struct {
	Server      string `json:"server"`
	DB          string `json:"db"`
	Credentials string `json:"credentials"`
	Demo        bool   `json:"demo_seeded"`
	Households  int    `json:"households"`
	Console     string `json:"console"`
	FirstAdmin  string `json:"first_admin"`
}

type credsFile struct {
	Server        string `json:"server"`
	AdminToken    string `json:"admin_token"`
	AdminName     string `json:"admin_name"`
	AdminPassword string `json:"admin_password"`
	Workers       []struct {
		ID             string   `json:"id"`
		Name           string   `json:"name"`
		GridIDs        []string `json:"grid_ids"`
		EnrollmentCode string   `json:"enrollment_code"`
	} `json:"workers"`
	CampaignID string `json:"campaign_id"`
}

type statusOut struct {
	ReplicaID     string   `json:"replica_id"`
	Enrolled      bool     `json:"enrolled"`
	Server        string   `json:"server"`
	DeviceID      string   `json:"device_id"`
	WorkerID      string   `json:"worker_id"`
	WorkerName    string   `json:"worker_name"`
	GridIDs       []string `json:"grid_ids"`
	Cursor        uint64   `json:"cursor"`
	Pending       int      `json:"pending_changes"`
	Households    int      `json:"households"`
	LastError     string   `json:"last_error"`
	LastSync      *string  `json:"last_sync"`
	Bootstrapping bool     `json:"bootstrapping"`
	SchemaVersion int      `json:"schema_version"`
	ClockOffsetMS int64    `json:"clock_offset_ms"`
}

type syncOut struct {
	Pushed        int    `json:"pushed"`
	Duplicates    int    `json:"duplicates"`
	Pulled        int    `json:"pulled"`
	Bootstrapped  int    `json:"bootstrapped_households"`
	Evicted       int    `json:"evicted"`
	Restamped     int    `json:"restamped"`
	Cursor        uint64 `json:"cursor"`
	FilesUploaded int    `json:"files_uploaded"`
	FilesPending  int    `json:"files_pending"`
}

type gridOut struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type summaryOut struct {
	ID          string   `json:"id"`
	GridID      string   `json:"grid_id"`
	HeadName    string   `json:"head_name"`
	Address     string   `json:"address"`
	MemberCount int64    `json:"member_count"`
	Categories  []string `json:"categories"`
	Visits      int      `json:"visits"`
	LastVisit   string   `json:"last_visit"`
}

type visitOut struct {
	ID         string   `json:"id"`
	Households []string `json:"household_ids"`
	VisitorID  string   `json:"visitor_id"`
	VisitedAt  string   `json:"visited_at"`
	Form       string   `json:"form"`
	Notes      string   `json:"notes"`
	Voided     bool     `json:"voided"`
	VoidReason string   `json:"void_reason"`
	Amendments int      `json:"amendments"`
}

type householdOut struct {
	ID         string              `json:"id"`
	Fields     map[string]string   `json:"fields"`
	Persons    []map[string]string `json:"persons"`
	Categories []string            `json:"categories"`
	Visits     []visitOut          `json:"visits"`
}

func (h householdOut) visit(t *testing.T, id string) visitOut {
	t.Helper()
	for _, v := range h.Visits {
		if v.ID == id {
			return v
		}
	}
	t.Fatalf("household %s has no visit %s; visits: %+v", h.ID, id, h.Visits)
	return visitOut{}
}

type idOut struct {
	ID string `json:"id"`
}

type nodeOutJSON struct {
	ID       string `json:"id"`
	ParentID string `json:"parent_id"`
	Level    string `json:"level"`
	Name     string `json:"name"`
}

type workerOutJSON struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Role    string   `json:"role"`
	GridIDs []string `json:"grid_ids"`
}

// lockedBuffer is a bytes.Buffer safe for a server goroutine to write while
// the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// doorbook runs the binary in-process and returns its stdout and stderr.
func doorbook(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(t.Context(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// doorbookJSON runs the binary, which must succeed, and decodes its stdout
// into a T. Fields added to an output later do not break it: scripts keep
// working when an output grows.
func doorbookJSON[T any](t *testing.T, args ...string) T {
	t.Helper()
	stdout, stderr, err := doorbook(t, args...)
	if err != nil {
		t.Fatalf("doorbook %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr)
	}
	var v T
	if err := json.Unmarshal([]byte(stdout), &v); err != nil {
		t.Fatalf("doorbook %s: stdout is not the expected JSON: %v\n%s", strings.Join(args, " "), err, stdout)
	}
	return v
}

// replica is a worker's replica file driven through "doorbook worker".
type replica struct {
	t    *testing.T
	path string
}

func newReplica(t *testing.T, name string) replica {
	t.Helper()
	return replica{t: t, path: filepath.Join(t.TempDir(), name)}
}

// existingReplica is a replica file that exists but was never enrolled, as
// an app that opened it with the SDK leaves it (the CLI creates one only by
// enrolling).
func existingReplica(t *testing.T, name string) replica {
	t.Helper()
	r := newReplica(t, name)
	rep, err := sdk.Open(t.Context(), r.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Close(); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r replica) args(verb ...string) []string {
	return append([]string{"worker", "--replica", r.path, "--json"}, verb...)
}

// run runs a verb that must succeed and returns its raw stdout.
func (r replica) run(verb ...string) string {
	r.t.Helper()
	stdout, stderr, err := doorbook(r.t, r.args(verb...)...)
	if err != nil {
		r.t.Fatalf("worker %s %s: %v\nstderr:\n%s", filepath.Base(r.path), strings.Join(verb, " "), err, stderr)
	}
	return stdout
}

func (r replica) enroll(server, code string) statusOut {
	r.t.Helper()
	return doorbookJSON[statusOut](r.t, r.args("enroll", "--server", server, "--code", code, "--name", filepath.Base(r.path))...)
}

func (r replica) sync() syncOut {
	r.t.Helper()
	return doorbookJSON[syncOut](r.t, r.args("sync")...)
}

func (r replica) status() statusOut {
	r.t.Helper()
	return doorbookJSON[statusOut](r.t, r.args("status")...)
}

func (r replica) households(flags ...string) []summaryOut {
	r.t.Helper()
	return doorbookJSON[[]summaryOut](r.t, r.args(append([]string{"households"}, flags...)...)...)
}

func (r replica) household(id string) householdOut {
	r.t.Helper()
	return doorbookJSON[householdOut](r.t, r.args("household", "--id", id)...)
}

// write runs a write verb and returns the id it printed.
func (r replica) write(verb ...string) string {
	r.t.Helper()
	out := doorbookJSON[idOut](r.t, r.args(verb...)...)
	if out.ID == "" {
		r.t.Fatalf("worker %s: no id printed", strings.Join(verb, " "))
	}
	return out.ID
}

func hasHousehold(hs []summaryOut, id string) bool {
	return slices.ContainsFunc(hs, func(h summaryOut) bool { return h.ID == id })
}

// testServer is "doorbook serve --demo" running in a goroutine.
type testServer struct {
	db        string
	summary   serveSummary
	credsPath string
	creds     credsFile
	stderr    *lockedBuffer
	cancel    context.CancelFunc
	done      chan error
	stopped   bool
}

// startServer starts "doorbook serve --demo" on a free port and waits until
// it has printed its summary and answers health checks.
func startServer(t *testing.T) *testServer {
	t.Helper()
	db := filepath.Join(t.TempDir(), "s.db")
	return startServerOn(t, db, db+".credentials.json")
}

// startServerOn is startServer on the database db (a file or a PostgreSQL
// URL), writing its credentials to credsPath.
func startServerOn(t *testing.T, db, credsPath string) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := &testServer{db: db, stderr: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := run(ctx, []string{"serve", "--db", db, "--credentials", credsPath, "--addr", "127.0.0.1:0", "--demo", "--json", "--log-format", "json"}, pw, s.stderr)
		pw.Close()
		s.done <- err
	}()
	t.Cleanup(func() {
		if !s.stopped {
			cancel()
			<-s.done
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.stderr.String())
		}
	})

	// The summary is printed once, after seeding, before serving.
	summaries := make(chan serveSummary, 1)
	decodeErr := make(chan error, 1)
	go func() {
		defer io.Copy(io.Discard, pr) // never block the server on stdout
		var sum serveSummary
		if err := json.NewDecoder(pr).Decode(&sum); err != nil {
			decodeErr <- err
			return
		}
		summaries <- sum
	}()
	deadline := time.NewTimer(3 * time.Minute) // seeding 3,000 households under -race on a slow machine
	defer deadline.Stop()
	select {
	case s.summary = <-summaries:
	case err := <-decodeErr:
		t.Fatalf("serve summary: %v\nserver log:\n%s", err, s.stderr.String())
	case err := <-s.done:
		s.stopped = true
		t.Fatalf("serve returned before serving: %v\nserver log:\n%s", err, s.stderr.String())
	case <-deadline.C:
		t.Fatalf("serve printed no summary within the deadline\nserver log:\n%s", s.stderr.String())
	}

	// The credentials file is written before the summary is printed.
	s.credsPath = credsPath
	if s.summary.Credentials != s.credsPath {
		t.Errorf("summary credentials = %q, want %q", s.summary.Credentials, s.credsPath)
	}
	b, err := os.ReadFile(s.credsPath)
	if err != nil {
		t.Fatalf("credentials file: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s.creds); err != nil {
		t.Fatalf("credentials file %s: %v\n%s", s.credsPath, err, b)
	}
	if fi, err := os.Stat(s.credsPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("credentials file mode %v: readable by others", fi.Mode().Perm())
	}

	// The listener is open before the summary; poll until the server answers.
	healthy := func() bool {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.summary.Server+"/grpc.health.v1.Health/Check", strings.NewReader("{}"))
		if err != nil {
			return false
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode == http.StatusOK && strings.Contains(string(body), "SERVING_STATUS_SERVING")
	}
	for up := time.Now().Add(30 * time.Second); !healthy(); {
		if time.Now().After(up) {
			t.Fatalf("server at %s does not answer health checks\nserver log:\n%s", s.summary.Server, s.stderr.String())
		}
		select {
		case err := <-s.done:
			s.stopped = true
			t.Fatalf("serve returned: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return s
}

// stop cancels the server's context and returns what run returned.
func (s *testServer) stop(t *testing.T) error {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		s.stopped = true
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return within 30s of its context ending")
		return nil
	}
}

func (s *testServer) admin(verb ...string) []string {
	return append([]string{"admin", "--credentials", s.credsPath, "--json"}, verb...)
}

func TestServeDemoWalkThrough(t *testing.T) {
	t.Parallel()
	start := time.Now()
	srv := startServer(t)
	t.Logf("serve --demo up in %v", time.Since(start).Round(time.Millisecond))
	creds, url := srv.creds, srv.summary.Server

	t.Run("a refused enrolment leaves no replica and says why once", func(t *testing.T) {
		r := newReplica(t, "refused.db")
		_, _, err := doorbook(t, r.args("enroll", "--server", url, "--code", "ABCD-EFGH-JKLM")...)
		if err == nil {
			t.Fatal("enrolment with a made-up code succeeded")
		}
		want := "enroll: unauthenticated: enrolment code not valid (unknown, used or expired)"
		if err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
		if matches, _ := filepath.Glob(r.path + "*"); len(matches) > 0 {
			t.Errorf("a refused enrolment left %v", matches)
		}
	})
	t.Run("the first admin signs in; admin passwd sets another password", func(t *testing.T) {
		sessions := doorbookv1connect.NewSessionServiceClient(http.DefaultClient, url)
		signIn := func(password string) error {
			_, err := sessions.SignIn(t.Context(), &pb.SignInRequest{Name: creds.AdminName, Password: password})
			return err
		}
		if creds.AdminName != "admin" || len(creds.AdminPassword) < 10 {
			t.Fatalf("credentials name the first admin %q with password %q", creds.AdminName, creds.AdminPassword)
		}
		if err := signIn(creds.AdminPassword); err != nil {
			t.Fatalf("signing in with the credentials file's password: %v", err)
		}
		file := filepath.Join(t.TempDir(), "password")
		if err := os.WriteFile(file, []byte("the office's own password\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		stdout, _, err := doorbook(t, "admin", "passwd", "--db", srv.db, "--name", "admin", "--password-file", file)
		if err != nil || stdout != "password of admin admin set\n" {
			t.Fatalf("admin passwd: %q, %v", stdout, err)
		}
		if err := signIn("the office's own password"); err != nil {
			t.Errorf("signing in with the password set: %v", err)
		}
		if err := signIn(creds.AdminPassword); connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("signing in with the replaced password: %v, want unauthenticated", err)
		}
		stdout, _, err = doorbook(t, "admin", "passwd", "--db", srv.db, "--name", "admin")
		made, ok := strings.CutPrefix(stdout, "password of admin admin set\npassword: ")
		if err != nil || !ok {
			t.Fatalf("admin passwd without a file: %q, %v", stdout, err)
		}
		if err := signIn(strings.TrimSpace(made)); err != nil {
			t.Errorf("signing in with the password made up: %v", err)
		}
		_, _, err = doorbook(t, "admin", "passwd", "--db", srv.db, "--name", "nobody")
		if err == nil || !strings.Contains(err.Error(), `no admin is named "nobody"`) {
			t.Errorf("admin passwd for nobody: %v", err)
		}
	})
	t.Run("backup of the serving database", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "backup.db")
		stdout, _, err := doorbook(t, "backup", "--db", srv.db, "--out", out)
		if err != nil || !strings.Contains(stdout, "written to "+out) {
			t.Fatalf("backup: %v, %q", err, stdout)
		}
		db, err := sql.Open("sqlite", out)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var check string
		var households int
		if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Errorf("integrity_check of the backup: %q, %v", check, err)
		}
		if err := db.QueryRow(`SELECT COUNT(*) FROM households`).Scan(&households); err != nil || households < 2900 {
			t.Errorf("the backup holds %d households (%v), want the demo's ~3,000", households, err)
		}
		if _, _, err := doorbook(t, "backup", "--db", srv.db, "--out", out); err == nil || !strings.Contains(err.Error(), "never overwrites") {
			t.Errorf("a second backup to the same file: %v, want a refusal", err)
		}
	})
	t.Run("a silent server does not hang enroll", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close() // held open, never answered
			}
		}()
		r := newReplica(t, "silent.db")
		_, _, err = doorbook(t, append([]string{"worker", "--replica", r.path, "--answer-timeout", "300ms"},
			"enroll", "--server", "http://"+l.Addr().String(), "--code", creds.Workers[5].EnrollmentCode)...)
		if err == nil || !strings.Contains(err.Error(), "no answer from the server within 300ms") {
			t.Errorf("enroll against a silent server: %v, want a timeout", err)
		}
	})

	t.Run("demo", func(t *testing.T) {
		sum := srv.summary
		if !strings.HasPrefix(url, "http://127.0.0.1:") || strings.HasSuffix(url, ":0") {
			t.Errorf("summary server = %q, want http://127.0.0.1:<port>", url)
		}
		if !sum.Demo || sum.Households < 2900 || sum.Households > 3100 {
			t.Errorf("summary demo_seeded=%v households=%d, want true and ~3,000", sum.Demo, sum.Households)
		}
		if creds.Server != url || creds.AdminToken == "" {
			t.Errorf("credentials server=%q admin_token=%q, want %q and a token", creds.Server, creds.AdminToken, url)
		}
		// The console's address and who signs in there first (with the
		// credentials' password: see the sign-in subtest).
		if sum.Console != url+"/console/" || sum.FirstAdmin != creds.AdminName || creds.AdminName == "" {
			t.Errorf("summary console=%q first_admin=%q, want %s/console/ and %q", sum.Console, sum.FirstAdmin, url, creds.AdminName)
		}
		if len(creds.Workers) != 6 {
			t.Fatalf("credentials hold %d workers, want 6", len(creds.Workers))
		}
		grids, owners := map[string]bool{}, map[string]int{}
		for _, w := range creds.Workers {
			if w.ID == "" || w.Name == "" || w.EnrollmentCode == "" || len(w.GridIDs) == 0 {
				t.Errorf("incomplete worker in credentials: %+v", w)
			}
			for _, g := range w.GridIDs {
				grids[g] = true
				owners[g]++
			}
		}
		if len(grids) != 12 {
			t.Errorf("the workers answer for %d grids, want 12", len(grids))
		}
		if !slices.ContainsFunc(creds.Workers[1].GridIDs, func(g string) bool { return slices.Contains(creds.Workers[0].GridIDs, g) }) {
			t.Errorf("workers 0 and 1 share no grid: %v, %v", creds.Workers[0].GridIDs, creds.Workers[1].GridIDs)
		}
		for _, line := range strings.Split(strings.TrimSpace(srv.stderr.String()), "\n") {
			var entry map[string]any
			if err := json.Unmarshal([]byte(line), &entry); err != nil || entry["level"] == nil {
				t.Errorf("--log-format json: log line is not JSON with a level: %q", line)
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// Li Na and Wang Qiang, the first two demo workers, share their grid.
	liW, wangW, zhangW := creds.Workers[0], creds.Workers[1], creds.Workers[2]
	shared := wangW.GridIDs[0]
	li, wang, zhang := newReplica(t, "li.db"), newReplica(t, "wang.db"), newReplica(t, "zhang.db")
	var h string // a household of the shared grid, visited by both

	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"enroll and sync", func(t *testing.T) {
			type phone struct {
				r    replica
				name string
				id   string
				code string
			}
			phones := []phone{{li, liW.Name, liW.ID, liW.EnrollmentCode}, {wang, wangW.Name, wangW.ID, wangW.EnrollmentCode}}
			for _, p := range phones {
				p.r.t = t
				st := p.r.enroll(url, p.code)
				if !st.Enrolled || st.WorkerID != p.id || st.WorkerName != p.name || len(st.GridIDs) != 2 || st.Server != url || !st.Bootstrapping {
					t.Errorf("enroll %s: %+v", p.name, st)
				}
			}
			// Both phones fetch their households at once, as two phones
			// would (and it halves the wait under -race).
			type result struct {
				stdout, stderr string
				err            error
			}
			results := make([]result, len(phones))
			var wg sync.WaitGroup
			for i, p := range phones {
				wg.Go(func() {
					var out, errOut bytes.Buffer
					err := run(t.Context(), p.r.args("sync"), &out, &errOut)
					results[i] = result{out.String(), errOut.String(), err}
				})
			}
			wg.Wait()
			for i, p := range phones {
				p.r.t = t
				res := results[i]
				if res.err != nil {
					t.Fatalf("first sync of %s: %v\nstderr:\n%s", p.name, res.err, res.stderr)
				}
				var rep syncOut
				if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
					t.Fatalf("first sync of %s printed %q: %v", p.name, res.stdout, err)
				}
				if rep.Bootstrapped != 500 || rep.Cursor == 0 {
					t.Errorf("first sync of %s received %d households whole (cursor %d), want 500", p.name, rep.Bootstrapped, rep.Cursor)
				}
				if hs := p.r.households(); len(hs) != 500 {
					t.Errorf("%s has %d households, want 500", p.name, len(hs))
				}
				st := p.r.status()
				if st.Households != 500 || st.Pending != 0 || st.LastSync == nil || st.LastError != "" || st.Cursor != rep.Cursor || st.Bootstrapping {
					t.Errorf("status of %s after sync: %+v", p.name, st)
				}
				grids := doorbookJSON[[]gridOut](t, p.r.args("grids")...)
				if len(grids) != 2 || grids[0].Name == "" || !sameSet([]string{grids[0].ID, grids[1].ID}, st.GridIDs) {
					t.Errorf("grids of %s: %+v", p.name, grids)
				}
			}
			// A code is single use.
			if _, _, err := doorbook(t, newReplica(t, "again.db").args("enroll", "--server", url, "--code", liW.EnrollmentCode)...); err == nil {
				t.Error("enrolling a second replica with a used code succeeded")
			}
		}},
		{"offline visits, edits and a tag", func(t *testing.T) {
			li.t, wang.t = t, t
			for _, s := range li.households() {
				if s.GridID == shared && len(s.Categories) == 0 && s.Visits == 0 {
					h = s.ID
					break
				}
			}
			if h == "" {
				t.Fatalf("Li Na has no untagged, unvisited household in the shared grid %s", shared)
			}
			if !hasHousehold(wang.households(), h) {
				t.Fatalf("household %s of the shared grid is not in Wang Qiang's replica", h)
			}
			li.write("visit", "--household", h, "--form", "in_person", "--notes", "老人身体好")
			wang.write("visit", "--household", h, "--form", "phone", "--notes", "电话回访")
			li.write("edit", "--household", h, "--set", "phone_mobile=13900000001")
			wang.write("edit", "--household", h, "--set", "notes=needs a ramp")
			li.write("tag", "add", "--household", h, "--category", "key_person")
			if st := li.status(); st.Pending != 3 {
				t.Errorf("Li Na's pending changes = %d, want 3", st.Pending)
			}
			if st := wang.status(); st.Pending != 2 {
				t.Errorf("Wang Qiang's pending changes = %d, want 2", st.Pending)
			}
		}},
		{"sync converges", func(t *testing.T) {
			li.t, wang.t = t, t
			if rep := li.sync(); rep.Pushed != 3 {
				t.Errorf("Li Na pushed %d, want 3", rep.Pushed)
			}
			if rep := wang.sync(); rep.Pushed != 2 {
				t.Errorf("Wang Qiang pushed %d, want 2", rep.Pushed)
			}
			li.sync()
			wang.sync()
			liOut, wangOut := li.run("household", "--id", h), wang.run("household", "--id", h)
			if liOut != wangOut {
				t.Fatalf("household %s differs between the replicas:\nli:\n%s\nwang:\n%s", h, liOut, wangOut)
			}
			d := li.household(h)
			if d.Fields["phone_mobile"] != "13900000001" || d.Fields["notes"] != "needs a ramp" {
				t.Errorf("both edits should survive: phone_mobile=%q notes=%q", d.Fields["phone_mobile"], d.Fields["notes"])
			}
			if d.Fields["grid_id"] != shared {
				t.Errorf("grid_id = %q, want %q", d.Fields["grid_id"], shared)
			}
			if !slices.Contains(d.Categories, "key_person") {
				t.Errorf("categories = %v, want key_person", d.Categories)
			}
			byVisitor := map[string]visitOut{}
			for _, v := range d.Visits {
				byVisitor[v.VisitorID] = v
			}
			if v := byVisitor[liW.ID]; len(d.Visits) != 2 || v.Form != "in_person" || v.Notes != "老人身体好" || !slices.Equal(v.Households, []string{h}) {
				t.Errorf("Li Na's visit: %+v (visits %d, want 2)", v, len(d.Visits))
			}
			if v := byVisitor[wangW.ID]; v.Form != "phone" || v.Notes != "电话回访" {
				t.Errorf("Wang Qiang's visit: %+v", v)
			}
			for _, r := range []replica{li, wang} {
				if st := r.status(); st.Pending != 0 || st.LastError != "" {
					t.Errorf("%s after sync: pending %d, last error %q", filepath.Base(r.path), st.Pending, st.LastError)
				}
			}
			if !hasHousehold(wang.households("--category", "key_person"), h) {
				t.Errorf("households --category key_person on Wang Qiang's replica lacks %s", h)
			}
		}},
		{"amend and void", func(t *testing.T) {
			li.t, wang.t = t, t
			var liVisit, wangVisit string
			for _, v := range li.household(h).Visits {
				switch v.VisitorID {
				case liW.ID:
					liVisit = v.ID
				case wangW.ID:
					wangVisit = v.ID
				}
			}
			if liVisit == "" || wangVisit == "" {
				t.Fatal("the two visits of the walk-through are missing")
			}
			amendment := li.write("visit", "amend", "--visit", liVisit, "--reason", "typo", "--notes", "老人身体很好", "--form", "talk")
			void := wang.write("visit", "void", "--visit", wangVisit, "--reason", "recorded twice")
			if amendment == liVisit || void == wangVisit || amendment == void {
				t.Errorf("amendments should get ids of their own: amend %s, void %s", amendment, void)
			}
			// amend with nothing to correct is a usage error
			if _, _, err := doorbook(t, li.args("visit", "amend", "--visit", liVisit, "--reason", "r")...); !errors.Is(err, errUsage) {
				t.Errorf("visit amend without a correction: err = %v, want errUsage", err)
			}
			li.sync()
			wang.sync()
			li.sync()
			for _, r := range []replica{li, wang} {
				d := r.household(h)
				if v := d.visit(t, wangVisit); !v.Voided || v.VoidReason != "recorded twice" {
					t.Errorf("%s: the voided visit reads %+v, want voided with its reason", filepath.Base(r.path), v)
				}
				if v := d.visit(t, liVisit); v.Voided || v.Notes != "老人身体很好" || v.Form != "talk" || v.Amendments != 1 {
					t.Errorf("%s: the amended visit reads %+v, want the corrected notes and form, 1 amendment", filepath.Base(r.path), v)
				}
				for _, s := range r.households() {
					if s.ID == h && s.Visits != 1 {
						t.Errorf("%s: households counts %d visits of %s, want 1 (the void does not count)", filepath.Base(r.path), s.Visits, h)
					}
				}
			}
			if a, b := li.run("household", "--id", h), wang.run("household", "--id", h); a != b {
				t.Errorf("household %s differs after amend and void:\nli:\n%s\nwang:\n%s", h, a, b)
			}
		}},
		{"person add and tag remove", func(t *testing.T) {
			li.t, wang.t = t, t
			before := len(li.household(h).Persons)
			p := li.write("person", "add", "--household", h, "--name", "周梅", "--set", "relation=spouse")
			wang.write("tag", "remove", "--household", h, "--category", "key_person")
			if _, _, err := doorbook(t, wang.args("tag", "remove", "--household", h, "--category", "key_person")...); err == nil {
				t.Error("removing a category the household no longer has succeeded")
			}
			li.sync()
			wang.sync()
			li.sync()
			for _, r := range []replica{li, wang} {
				d := r.household(h)
				if len(d.Persons) != before+1 {
					t.Errorf("%s: %d persons, want %d", filepath.Base(r.path), len(d.Persons), before+1)
				}
				i := slices.IndexFunc(d.Persons, func(m map[string]string) bool { return m["id"] == p })
				if i < 0 || d.Persons[i]["name"] != "周梅" || d.Persons[i]["relation"] != "spouse" {
					t.Errorf("%s: added person %s not found as 周梅, spouse: %v", filepath.Base(r.path), p, d.Persons)
				}
				if slices.Contains(d.Categories, "key_person") {
					t.Errorf("%s: key_person still on %s after tag remove: %v", filepath.Base(r.path), h, d.Categories)
				}
				if hasHousehold(r.households("--category", "key_person"), h) {
					t.Errorf("%s: households --category key_person still lists %s", filepath.Base(r.path), h)
				}
			}
		}},
		{"register", func(t *testing.T) {
			li.t, wang.t = t, t
			_, _, err := doorbook(t, li.args("register", "--head", "新住户", "--address", "东风路1号")...)
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--grid") {
				t.Errorf("register without --grid for a worker with two grids: err = %v, want errUsage naming --grid", err)
			}
			if exitCode(err) != 2 {
				t.Errorf("exit code %d, want 2", exitCode(err))
			}
			if _, _, err := doorbook(t, li.args("register", "--grid", zhangW.GridIDs[0], "--head", "x")...); err == nil {
				t.Error("registering a household in another worker's grid succeeded")
			}
			id := li.write("register", "--grid", shared, "--head", "新住户", "--address", "东风路1号", "--phone", "13900000002", "--set", "member_count=2")
			if st := li.status(); st.Households != 501 || st.Pending != 1 {
				t.Errorf("after register: households %d pending %d, want 501 and 1", st.Households, st.Pending)
			}
			li.sync()
			wang.sync()
			d := wang.household(id)
			if d.Fields["head_name"] != "新住户" || d.Fields["address"] != "东风路1号" || d.Fields["phone_mobile"] != "13900000002" || d.Fields["member_count"] != "2" || d.Fields["grid_id"] != shared {
				t.Errorf("registered household on Wang Qiang's replica: %v", d.Fields)
			}
		}},
		{"admin", func(t *testing.T) {
			nodes := doorbookJSON[[]nodeOutJSON](t, srv.admin("org", "list")...)
			levels := map[string]int{}
			for _, n := range nodes {
				levels[n.Level]++
			}
			if levels["district"] != 1 || levels["street"] != 1 || levels["community"] != 3 || levels["grid"] != 12 {
				t.Errorf("org list levels = %v, want 1 district, 1 street, 3 communities, 12 grids", levels)
			}
			workers := doorbookJSON[[]workerOutJSON](t, srv.admin("worker", "list")...)
			if len(workers) != 6 {
				t.Errorf("worker list: %d workers, want 6", len(workers))
			}
			for _, cw := range creds.Workers {
				i := slices.IndexFunc(workers, func(w workerOutJSON) bool { return w.ID == cw.ID })
				if i < 0 || workers[i].Name != cw.Name || !sameSet(workers[i].GridIDs, cw.GridIDs) {
					t.Errorf("worker list lacks %s %s with grids %v: %+v", cw.ID, cw.Name, cw.GridIDs, workers)
				}
			}
			grid := creds.Workers[4].GridIDs[0]
			created := doorbookJSON[workerOutJSON](t, srv.admin("worker", "create", "--name", "测试 Tester", "--role", "community_worker", "--grid", grid)...)
			if created.ID == "" || created.Name != "测试 Tester" || created.Role != "community_worker" || !slices.Equal(created.GridIDs, []string{grid}) {
				t.Errorf("worker create: %+v", created)
			}
			code := doorbookJSON[struct {
				Code    string `json:"code"`
				Expires string `json:"expires_at"`
			}](t, srv.admin("code", "--worker", created.ID, "--ttl", "1h")...)
			exp, err := time.Parse(time.RFC3339, code.Expires)
			if code.Code == "" || err != nil || exp.Before(time.Now().Add(50*time.Minute)) || exp.After(time.Now().Add(70*time.Minute)) {
				t.Errorf("code: %+v (expiry parse error %v), want a code valid for about 1h", code, err)
			}
			tester := newReplica(t, "tester.db")
			if st := tester.enroll(url, code.Code); st.WorkerID != created.ID || !slices.Equal(st.GridIDs, []string{grid}) {
				t.Errorf("enroll with the new code: %+v", st)
			}
			if rep := tester.sync(); rep.Bootstrapped != 250 {
				t.Errorf("the new worker received %d households, want 250", rep.Bootstrapped)
			}
			if _, _, err := doorbook(t, "admin", "--server", url, "--token", "not-the-token", "--json", "org", "list"); err == nil {
				t.Error("admin with a wrong token succeeded")
			}
			// The lost-phone policy: none, set, one flag changed, and a wipe
			// before the lock refused, saying so.
			type policy struct {
				Lock uint32 `json:"lock_after_days"`
				Wipe uint32 `json:"wipe_after_days"`
			}
			if p := doorbookJSON[policy](t, srv.admin("device", "policy")...); p != (policy{}) {
				t.Errorf("device policy before any: %+v", p)
			}
			if p := doorbookJSON[policy](t, srv.admin("device", "policy", "--lock-days", "14", "--wipe-days", "60")...); p != (policy{14, 60}) {
				t.Errorf("device policy set: %+v", p)
			}
			if p := doorbookJSON[policy](t, srv.admin("device", "policy", "--wipe-days", "30")...); p != (policy{14, 30}) {
				t.Errorf("device policy with the wipe changed: %+v", p)
			}
			args := srv.admin("device", "policy", "--wipe-days", "7")
			if _, _, err := doorbook(t, args...); err == nil || !strings.Contains(err.Error(), "only after it locks") {
				t.Errorf("a wipe before the lock: %v", err)
			}
			if p := doorbookJSON[policy](t, srv.admin("device", "policy", "--lock-days", "0", "--wipe-days", "0")...); p != (policy{}) {
				t.Errorf("device policy cleared: %+v", p)
			}
		}},
		{"move", func(t *testing.T) {
			li.t, wang.t, zhang.t = t, t, t
			zhang.enroll(url, zhangW.EnrollmentCode)
			zhang.sync()
			if hasHousehold(zhang.households(), h) {
				t.Fatalf("household %s is in Zhang Min's replica before the move", h)
			}
			target := zhangW.GridIDs[0]
			moved := doorbookJSON[map[string]string](t, srv.admin("move", "--household", h, "--grid", target)...)
			if moved["id"] != h || moved["grid_id"] != target {
				t.Errorf("move printed %v, want id %s grid_id %s", moved, h, target)
			}
			if rep := li.sync(); rep.Evicted < 1 {
				t.Errorf("Li Na's sync after the move evicted %d households, want at least 1", rep.Evicted)
			}
			wang.sync()
			zhang.sync()
			for _, r := range []replica{li, wang} {
				if hasHousehold(r.households(), h) {
					t.Errorf("%s still lists household %s after it moved away", filepath.Base(r.path), h)
				}
				if _, _, err := doorbook(t, r.args("household", "--id", h)...); err == nil {
					t.Errorf("%s: household --id %s still succeeds after it moved away", filepath.Base(r.path), h)
				}
			}
			if !hasHousehold(zhang.households(), h) {
				t.Fatalf("household %s did not arrive in Zhang Min's replica", h)
			}
			d := zhang.household(h)
			if d.Fields["grid_id"] != target || d.Fields["phone_mobile"] != "13900000001" || d.Fields["notes"] != "needs a ramp" || len(d.Visits) != 2 {
				t.Errorf("moved household on Zhang Min's replica: fields %v, %d visits (want the edits and 2 visits)", d.Fields, len(d.Visits))
			}
			if !slices.ContainsFunc(d.Persons, func(p map[string]string) bool { return p["name"] == "周梅" }) {
				t.Errorf("the person added on Li Na's phone did not move with the household: %v", d.Persons)
			}
		}},
		{"field rules", func(t *testing.T) { fieldRulesStep(t, srv, li, creds.CampaignID) }},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.fn) {
			t.Fatalf("step %q failed; the later steps depend on it", s.name)
		}
	}
	t.Run("code ttl", func(t *testing.T) {
		// A TTL the API cannot carry (negative, under a second, or past the
		// server's limit) is a usage error, never silently turned into
		// another one.
		for _, ttl := range []string{"-1h", "500ms", "2400h"} {
			stdout, _, err := doorbook(t, srv.admin("code", "--worker", creds.Workers[3].ID, "--ttl", ttl)...)
			if !errors.Is(err, errUsage) {
				t.Errorf("admin code --ttl %s = %q, %v; want a usage error", ttl, stdout, err)
			}
		}
	})
	if err := srv.stop(t); err != nil {
		t.Errorf("run(serve) after its context was cancelled = %v, want nil (graceful shutdown)", err)
	}
	if !strings.Contains(srv.stderr.String(), `"stopped"`) {
		t.Errorf("server log lacks the stop message:\n%s", srv.stderr.String())
	}
	// The phones keep working offline.
	li.t = t
	if st := li.status(); !st.Enrolled || st.Households != 500 {
		t.Errorf("Li Na's status offline: %+v", st)
	}
	if _, _, err := doorbook(t, li.args("sync")...); err == nil {
		t.Error("sync with the server down succeeded")
	} else if st := li.status(); st.LastError == "" {
		t.Error("a failed sync left no last_error in status")
	}
	t.Logf("whole walk-through in %v", time.Since(start).Round(time.Millisecond))
}

func sameSet(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(s string) bool { return !slices.Contains(b, s) })
}

func TestCommandLineErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fresh := filepath.Join(dir, "fresh.db")
	// blank exists but was never enrolled (an app opened it with the SDK).
	blank := existingReplica(t, "blank.db").path
	tests := []struct {
		name  string
		args  []string
		usage bool   // wraps errUsage: exit code 2
		want  string // in the error message
	}{
		{"no command", nil, true, "usage"},
		{"unknown command", []string{"frobnicate"}, true, `unknown command "frobnicate"`},
		{"unknown worker verb", []string{"worker", "--replica", fresh, "frobnicate"}, true, `unknown worker verb "frobnicate"`},
		{"worker without verb", []string{"worker", "--replica", fresh}, true, "usage"},
		{"worker without replica", []string{"worker", "status"}, true, "--replica is required"},
		{"unknown flag", []string{"worker", "--replica", fresh, "status", "--bogus"}, true, "bogus"},
		{"household without id", []string{"worker", "--replica", fresh, "household"}, true, "--id is required"},
		{"edit without set", []string{"worker", "--replica", fresh, "edit", "--household", "h"}, true, "nothing to edit"},
		{"edit bad set", []string{"worker", "--replica", fresh, "edit", "--household", "h", "--set", "novalue"}, true, "FIELD=VALUE"},
		{"visit without household", []string{"worker", "--replica", fresh, "visit", "--notes", "n"}, true, "--household is required"},
		{"visit bad form", []string{"worker", "--replica", fresh, "visit", "--household", "h", "--form", "telepathy"}, true, "telepathy"},
		{"visit bad time", []string{"worker", "--replica", fresh, "visit", "--household", "h", "--at", "yesterday"}, true, "yesterday"},
		{"visit bad position", []string{"worker", "--replica", fresh, "visit", "--household", "h", "--position", "28.19"}, true, "LAT,LNG"},
		{"visit position not numbers", []string{"worker", "--replica", fresh, "visit", "--household", "h", "--position", "north,east"}, true, `"north" is not a number`},
		{"void without reason", []string{"worker", "--replica", fresh, "visit", "void", "--visit", "v"}, true, "--reason is required"},
		{"tag without verb", []string{"worker", "--replica", fresh, "tag"}, true, "tag add|remove"},
		{"enroll without code", []string{"worker", "--replica", fresh, "enroll", "--server", "http://127.0.0.1:1"}, true, "--code is required"},
		{"admin without server", []string{"admin", "org", "list"}, true, "--server is required"},
		{"admin move without grid", []string{"admin", "--server", "http://127.0.0.1:1", "--token", "t", "move", "--household", "h"}, true, "--grid is required"},
		{"admin unknown verb", []string{"admin", "--server", "http://127.0.0.1:1", "--token", "t", "org", "delete"}, true, `unknown admin verb "org delete"`},
		{"admin missing credentials file", []string{"admin", "--credentials", filepath.Join(dir, "none.json"), "org", "list"}, false, "none.json"},
		{"backup without db", []string{"backup", "--out", filepath.Join(dir, "b.db")}, true, "--db is required"},
		{"backup without out", []string{"backup", "--db", filepath.Join(dir, "x.db")}, true, "--out is required"},
		{"serve unexpected argument", []string{"serve", "--db", filepath.Join(dir, "x.db"), "extra"}, true, `unexpected argument "extra"`},
		{"serve any origin", []string{"serve", "--db", filepath.Join(dir, "x.db"), "--cors-origin", "*"}, true, "want one origin"},
		{"serve a negative report cache", []string{"serve", "--db", filepath.Join(dir, "x.db"), "--report-cache", "-1"}, true, "--report-cache not negative"},
		{"serve a map past SQLite's", []string{"serve", "--db", filepath.Join(dir, "x.db"), "--mmap", "4096"}, true, "--mmap from 0 to 2048"},
		{"serve origin with a path", []string{"serve", "--db", filepath.Join(dir, "x.db"), "--cors-origin", "https://app.example/console"}, true, "want one origin"},
		{"sync not enrolled", []string{"worker", "--replica", blank, "sync"}, false, "enrol"},
		{"household not in replica", []string{"worker", "--replica", blank, "household", "--id", "nope"}, false, "nope"},
		{"register with no grids", []string{"worker", "--replica", blank, "register", "--head", "x"}, true, "0 grids"},
		{"status of a missing replica", []string{"worker", "--replica", fresh, "status"}, false, "no replica file at " + fresh + ": enrol one first"},
		{"households of a missing replica", []string{"worker", "--replica", fresh, "households"}, false, "no replica file"},
		{"sync of a missing replica", []string{"worker", "--replica", fresh, "sync"}, false, "no replica file"},
		{"enroll against nothing", []string{"worker", "--replica", fresh, "enroll", "--server", "http://127.0.0.1:1", "--code", "ABCD-EFGH-JKLM"}, false, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := doorbook(t, tt.args...)
			if matches, _ := filepath.Glob(fresh + "*"); len(matches) > 0 {
				t.Errorf("doorbook %v left files behind: %v", tt.args, matches)
			}
			if err == nil {
				t.Fatalf("doorbook %v succeeded, want an error", tt.args)
			}
			if got := errors.Is(err, errUsage); got != tt.usage {
				t.Errorf("errors.Is(%v, errUsage) = %v, want %v", err, got, tt.usage)
			}
			wantCode := 1
			if tt.usage {
				wantCode = 2
			}
			if got := exitCode(err); got != wantCode {
				t.Errorf("exitCode(%v) = %d, want %d", err, got, wantCode)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q (stderr: %s)", err, tt.want, stderr)
			}
		})
	}

	t.Run("sync not enrolled is ErrNotEnrolled and recorded", func(t *testing.T) {
		r := existingReplica(t, "r.db")
		_, _, err := doorbook(t, r.args("sync")...)
		if !errors.Is(err, sdk.ErrNotEnrolled) {
			t.Errorf("sync on a never-enrolled replica: %v, want sdk.ErrNotEnrolled", err)
		}
		if st := r.status(); st.Enrolled || st.LastError == "" || st.ReplicaID == "" {
			t.Errorf("status after a failed sync: %+v, want not enrolled with a last error", st)
		}
	})
	t.Run("offline queries on a never-enrolled replica", func(t *testing.T) {
		r := existingReplica(t, "never.db")
		if out := strings.TrimSpace(r.run("households")); out != "[]" {
			t.Errorf("households on a never-enrolled replica printed %q, want []", out)
		}
		if hs := r.households("--category", "key_person"); len(hs) != 0 {
			t.Errorf("households --category: %v, want none", hs)
		}
		if gs := doorbookJSON[[]gridOut](t, r.args("grids")...); len(gs) != 0 {
			t.Errorf("grids: %v, want none", gs)
		}
		st := r.status()
		if st.Enrolled || st.Pending != 0 || st.Households != 0 || st.LastSync != nil || st.ReplicaID == "" {
			t.Errorf("status of a never-enrolled replica: %+v", st)
		}
		if again := r.status(); again.ReplicaID != st.ReplicaID {
			t.Errorf("replica id changed between opens: %s then %s", st.ReplicaID, again.ReplicaID)
		}
	})
	t.Run("help", func(t *testing.T) {
		for _, args := range [][]string{{"help"}, {"worker", "--replica", fresh, "help"}, {"admin", "help"}} {
			stdout, stderr, err := doorbook(t, args...)
			if err != nil || !strings.Contains(stdout+stderr, "Usage") {
				t.Errorf("doorbook %v: err %v, output %q", args, err, stdout+stderr)
			}
		}
		_, _, err := doorbook(t, "serve", "-h")
		if exitCode(err) != 2 {
			t.Errorf("serve -h: err %v, exit code %d, want 2", err, exitCode(err))
		}
	})
	t.Run("human output", func(t *testing.T) {
		r := existingReplica(t, "human.db")
		stdout, _, err := doorbook(t, "worker", "--replica", r.path, "status")
		if err != nil || !strings.Contains(stdout, "not enrolled") {
			t.Errorf("status without --json: err %v, output %q", err, stdout)
		}
		stdout, _, err = doorbook(t, "worker", "--replica", r.path, "households")
		sc := bufio.NewScanner(strings.NewReader(stdout))
		var last string
		for sc.Scan() {
			last = sc.Text()
		}
		if err != nil || !strings.HasPrefix(stdout, "ID") || last != "0 households" {
			t.Errorf("households without --json: err %v, output %q", err, stdout)
		}
	})
}
