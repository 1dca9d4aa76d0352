package mobile_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/doorbook/doorbook/client-sdk/mobile"
	"github.com/doorbook/doorbook/server"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/sqlite"
)

// newServer starts a server on loopback with one grid and a worker, and
// returns its URL, the grid and an enrolment code.
func newServer(t *testing.T) (url, grid, code string) {
	t.Helper()
	ctx := context.Background()
	backend, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "server.db"))
	if err != nil {
		t.Fatal(err)
	}
	st := service.New(backend)
	admin, _, err := st.CreateAdmin(ctx, "admin", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, level := range []store.OrgLevel{store.LevelDistrict, store.LevelStreet, store.LevelCommunity, store.LevelGrid} {
		n, err := st.CreateOrgNode(ctx, admin, store.OrgNode{ParentID: grid, Level: level, Name: level.String()})
		if err != nil {
			t.Fatal(err)
		}
		grid = n.ID
	}
	w, err := st.CreateWorker(ctx, admin, store.Worker{Name: "李娜", Role: 1, GridIDs: []string{grid}})
	if err != nil {
		t.Fatal(err)
	}
	if code, err = st.CreateEnrollmentCode(ctx, admin, w.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(st).Handler())
	t.Cleanup(func() {
		srv.Close()
		st.Close()
	})
	return srv.URL, grid, code
}

// listener records what the background loop tells the app.
type listener struct {
	mu     sync.Mutex
	syncs  []string
	phases map[string]bool
	synced chan struct{}
}

func (l *listener) OnSync(report, code, message string) {
	l.mu.Lock()
	l.syncs = append(l.syncs, code+"|"+report)
	l.mu.Unlock()
	if code == "" {
		select {
		case l.synced <- struct{}{}:
		default:
		}
	}
}

func (l *listener) OnProgress(phase string, done, total int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phases[phase] = true
}

// TestFacade drives the binding's facade as an app would, with JSON in and
// out: enrol, register a household, record a visit offline, sync in the
// background loop, read the ledger and the due list; errors carry codes.
func TestFacade(t *testing.T) {
	t.Parallel()
	url, grid, code := newServer(t)
	r, err := mobile.Open(filepath.Join(t.TempDir(), "phone.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Sync(); mobile.ErrorCode(err) != mobile.CodeNotEnrolled || !strings.HasPrefix(err.Error(), "not_enrolled: ") {
		t.Errorf("a sync before enrolling: %v, want not_enrolled", err)
	}
	if err := r.Enroll(url, code, "Li's phone"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	h, err := r.RegisterHousehold(grid, `{"head_name": "张伟", "address": "幸福路 1 号", "phone_mobile": "13800000000"}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RegisterHousehold(grid, `{"head_name": `); mobile.ErrorCode(err) != mobile.CodeInvalid {
		t.Errorf("broken JSON: %v, want invalid", err)
	}
	visit, err := r.RecordVisit(`{"HouseholdIDs": ["` + h + `"], "Form": 1, "Notes": "门口交谈", "Findings": [{"Kind": 3, "Note": "楼道堆物"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.Pending(); err != nil || n != 2 {
		t.Errorf("pending %d, %v; want the household and the visit", n, err)
	}
	photo := filepath.Join(t.TempDir(), "photo.jpg")
	if err := os.WriteFile(photo, []byte("\xff\xd8\xff a photo of the stairwell"), 0o600); err != nil {
		t.Fatal(err)
	}
	attached, err := r.AttachFile(visit, "楼道.jpg", "image/jpeg", photo)
	if err != nil || !strings.Contains(attached, `"SHA256":"`) {
		t.Fatalf("attach a photo: %s, %v", attached, err)
	}
	if _, err := r.AttachFile(visit, "gone.jpg", "image/jpeg", photo+".gone"); mobile.ErrorCode(err) != mobile.CodeInvalid {
		t.Errorf("attaching a file that is not there: %v, want invalid", err)
	}
	l := &listener{phases: map[string]bool{}, synced: make(chan struct{}, 1)}
	r.SetListener(l)
	r.StartSync(3600)
	<-l.synced
	r.StopSync()
	if n, err := r.Pending(); err != nil || n != 0 {
		t.Errorf("pending after the background sync: %d, %v", n, err)
	}
	l.mu.Lock()
	if !l.phases["push"] || len(l.syncs) == 0 || !strings.Contains(l.syncs[0], `"Pushed":2`) ||
		!strings.Contains(l.syncs[0], `"Attachments":{"Uploaded":1,"Pending":0,"Refused":0,`) {
		t.Errorf("the listener heard phases %v and syncs %q", l.phases, l.syncs)
	}
	l.mu.Unlock()
	if files, err := r.Attachments(visit); err != nil || !strings.Contains(files, `"Name":"楼道.jpg"`) || !strings.Contains(files, `"Uploaded":true`) {
		t.Errorf("the visit's files: %s, %v", files, err)
	}

	households, err := r.Households()
	if err != nil {
		t.Fatal(err)
	}
	var list []struct {
		ID, HeadName string
		Visits       int
	}
	if err := json.Unmarshal([]byte(households), &list); err != nil || len(list) != 1 || list[0].ID != h || list[0].HeadName != "张伟" || list[0].Visits != 1 {
		t.Errorf("households: %s (%v)", households, err)
	}
	detail, err := r.Household(h)
	if err != nil || !strings.Contains(detail, visit) || !strings.Contains(detail, "门口交谈") {
		t.Errorf("the household: %s (%v)", detail, err)
	}
	if _, err := r.AssignItem(visit, 0, "请物业配合", "消防中队", time.Now().Add(72*time.Hour).UnixMilli(), `["物业公司"]`); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AssignItem(visit, 0, "", "消防中队", time.Now().Add(72*time.Hour).UnixMilli(), `not json`); mobile.ErrorCode(err) != "invalid" {
		t.Errorf("co-units that are not JSON: %v (%q)", err, mobile.ErrorCode(err))
	}
	items, err := r.Items()
	if err != nil || !strings.Contains(items, "楼道堆物") || !strings.Contains(items, `"CoUnits":["物业公司"]`) {
		t.Errorf("items: %s (%v)", items, err)
	}
	for name, call := range map[string]func() (string, error){
		"grids": r.Grids, "categories": r.Categories, "campaigns": r.Campaigns, "status": r.Status,
		"due": func() (string, error) { return r.Due("") },
	} {
		if out, err := call(); err != nil || !json.Valid([]byte(out)) {
			t.Errorf("%s: %q, %v", name, out, err)
		}
	}
	if _, err := r.Household("no-such-household"); mobile.ErrorCode(err) == "" {
		t.Errorf("an unknown household: %v, want an error with a code", err)
	}
}

// stopper stops the loop and closes the replica from its own callback.
type stopper struct {
	r    *mobile.Replica
	done chan error
}

func (s *stopper) OnSync(_, _, _ string) {
	s.r.StopSync()
	s.done <- s.r.Close()
}

func (s *stopper) OnProgress(string, int64, int64) {}

// TestListenerMayStop: a listener that stops the loop and closes the
// replica from its callback does not wait on itself.
func TestListenerMayStop(t *testing.T) {
	t.Parallel()
	url, _, code := newServer(t)
	r, err := mobile.Open(filepath.Join(t.TempDir(), "phone.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Enroll(url, code, "phone"); err != nil {
		t.Fatal(err)
	}
	s := &stopper{r: r, done: make(chan error, 1)}
	r.SetListener(s)
	r.StartSync(3600)
	if err := <-s.done; err != nil {
		t.Errorf("closing from the listener: %v", err)
	}
	r.StartSync(1) // after Close: nothing
	if _, err := r.Households(); err == nil {
		t.Error("a read after Close succeeded")
	}
}

// TestFacadeOffline: a server that cannot be reached is "offline". The
// port stays this test's, dropping every connection: a port closed and
// left free could be taken by another test's server before the dial.
func TestFacadeOffline(t *testing.T) {
	t.Parallel()
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
			c.Close()
		}
	}()
	addr := l.Addr().String()
	r, err := mobile.Open(filepath.Join(t.TempDir(), "phone.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Enroll("http://"+addr, "ABCD-EFGH", "phone"); mobile.ErrorCode(err) != mobile.CodeOffline {
		t.Errorf("enrolling against nothing: %v (code %q), want offline", err, mobile.ErrorCode(err))
	}
}

// TestBindings: gobind (pinned in go.mod as a tool) binds the facade for
// Java and Objective-C without skipping anything, and the JDK compiles the
// Java it generates. Without javac the Java half skips, saying how to
// install it; CI installs it and sets DOORBOOK_JDK_REQUIRED.
func TestBindings(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("gobind builds for a while: not in -short")
	}
	out := t.TempDir()
	cmd := exec.Command("go", "tool", "gobind", "-lang=java,objc", "-javapkg=org.doorbook", "-prefix=DB", "-outdir", out, ".")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("gobind: %v\n%s", err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" && !strings.HasPrefix(s, "go: downloading") {
		t.Errorf("gobind said:\n%s", s)
	}
	var java []string
	err := filepath.WalkDir(out, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("skipped")) || bytes.Contains(b, []byte("unsupported")) {
			t.Errorf("%s: gobind skipped something:\n%s", path, grepLines(b, "skipped", "unsupported"))
		}
		if strings.HasSuffix(path, ".java") {
			java = append(java, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"java/org/doorbook/mobile/Replica.java", "src/gobind/DBMobile.objc.h"} {
		if _, err := os.Stat(filepath.Join(out, want)); err != nil {
			t.Errorf("gobind wrote no %s", want)
		}
	}
	javac, err := exec.LookPath("javac")
	if err != nil {
		if os.Getenv("DOORBOOK_JDK_REQUIRED") == "1" {
			t.Fatal("javac is required here (DOORBOOK_JDK_REQUIRED=1) but not installed")
		}
		t.Skip("no JDK: apt-get install default-jdk-headless (the generated Java is then compiled)")
	}
	// go.Seq names Android's Context; a stub stands in for the Android SDK.
	stub := filepath.Join(t.TempDir(), "android", "content", "Context.java")
	if err := os.MkdirAll(filepath.Dir(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stub, []byte("package android.content;\npublic class Context {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-Werror", "-Xlint:all,-serial,-options", "-d", t.TempDir(), stub}, java...)
	if b, err := exec.Command(javac, args...).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, b)
	}
}

func grepLines(b []byte, words ...string) string {
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		for _, w := range words {
			if strings.Contains(line, w) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
