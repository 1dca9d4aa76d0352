// Package storetest is the conformance suite of server/store. Run holds a
// backend to what the store.Store interface promises — authentication and
// enrolment, the org tree and admin scopes, idempotent all-or-nothing
// pushes, scoped incremental pulls, moves and scope changes with their
// grace, bootstraps and imports — through that interface alone, so that
// every backend (SQLite now, PostgreSQL later) is judged by the same tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, o storetest.Options) store.Store { ... })
//	}
//
// Every subtest opens its own store and keeps its data small: backends run
// this suite under -race.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// NewStore opens an empty store for one test, as o asks, and closes it
// when the test ends (t.Cleanup).
type NewStore func(t *testing.T, o Options) store.Store

// Options are what a test asks of the store it opens; zero values are the
// backend's defaults.
type Options struct {
	// Now is the server's clock (the backend's default is time.Now).
	Now func() time.Time
	// ScopeGrace is how long writes to what left a worker's scope are
	// still taken (default store.DefaultScopeGrace).
	ScopeGrace time.Duration
}

// Run runs the conformance suite over the stores newStore opens.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(*testing.T, NewStore)
	}{
		{"Auth", testAuth},
		{"OrgTree", testOrgTree},
		{"Workers", testWorkers},
		{"Enrollment", testEnrollment},
		{"LastSeen", testLastSeen},
		{"PushPull", testPushPull},
		{"PullLeavesOutOwnRows", testPullLeavesOutOwnRows},
		{"PullPages", testPullPages},
		{"PushAllOrNothing", testPushAllOrNothing},
		{"PushScope", testPushScope},
		{"PullScope", testPullScope},
		{"Roles", testRoles},
		{"MoveHousehold", testMoveHousehold},
		{"MoveGrace", testMoveGrace},
		{"GraceEndsWhenApplied", testGraceEndsWhenApplied},
		{"ChangeIDsBelongToTheirDevice", testChangeIDsBelongToTheirDevice},
		{"VisitsProveThemselves", testVisitsProveThemselves},
		{"WhoAmends", testWhoAmends},
		{"Caps", testCaps},
		{"Collect", testCollect},
		{"ErasureAnnouncedOnce", testErasureAnnouncedOnce},
		{"UnknownLooksForeign", testUnknownLooksForeign},
		{"GraceEndsAfterTime", testGraceEndsAfterTime},
		{"SetWorkerGrids", testSetWorkerGrids},
		{"GridRemovalGrace", testGridRemovalGrace},
		{"NoGraceForNewDevices", testNoGraceForNewDevices},
		{"Bootstrap", testBootstrap},
		{"BootstrapEmptyScope", testBootstrapEmptyScope},
		{"Import", testImport},
		{"ConcurrentPushPull", testConcurrentPushPull},
		{"Attachments", testAttachments},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore)
		})
	}
}

// testAuth: admin tokens authenticate to their principal; anything else is
// ErrUnauthenticated.
func testAuth(t *testing.T, newStore NewStore) {
	ctx := t.Context()
	s := newStore(t, Options{})

	if ok, err := s.HasAdmin(ctx); err != nil || ok {
		t.Fatalf("HasAdmin on a new store = %v, %v; want false, nil", ok, err)
	}
	_, _, err := s.CreateAdmin(ctx, "ghost", newID())
	wantErr(t, err, "CreateAdmin over an unknown node", syncengine.ErrNotFound)
	if ok, err := s.HasAdmin(ctx); err != nil || ok {
		t.Fatalf("HasAdmin after a failed CreateAdmin = %v, %v; want false, nil", ok, err)
	}

	root, tok, err := s.CreateAdmin(ctx, "root", "")
	if err != nil {
		t.Fatalf("CreateAdmin: %v", err)
	}
	if root.Kind != store.KindAdmin || root.ID == "" || root.Name != "root" || root.Node != "" || root.CredentialID == "" || tok == "" {
		t.Fatalf("CreateAdmin(root, \"\") = %+v, token %q; want an installation-wide admin named root with a token", root, tok)
	}
	if ok, err := s.HasAdmin(ctx); err != nil || !ok {
		t.Fatalf("HasAdmin after CreateAdmin = %v, %v; want true, nil", ok, err)
	}
	if got, err := s.Authenticate(ctx, tok); err != nil || !reflect.DeepEqual(got, root) {
		t.Fatalf("Authenticate(admin token) = %+v, %v; want %+v", got, err, root)
	}

	second, tok2, err := s.CreateAdmin(ctx, "second", "")
	if err != nil {
		t.Fatalf("CreateAdmin: %v", err)
	}
	if second.ID == root.ID || second.CredentialID == root.CredentialID || tok2 == tok {
		t.Fatalf("two admins share an id, credential or token: %+v %+v", root, second)
	}
	if got, err := s.Authenticate(ctx, tok2); err != nil || !reflect.DeepEqual(got, second) {
		t.Fatalf("Authenticate(second token) = %+v, %v; want %+v", got, err, second)
	}

	wrong := []byte(tok)
	i := len(wrong) - 2 // the last character may carry only padding bits
	if wrong[i] == 'A' {
		wrong[i] = 'B'
	} else {
		wrong[i] = 'A'
	}
	bad := []struct{ name, token string }{
		{"empty", ""},
		{"garbage", "garbage"},
		{"dots", "..."},
		{"unknown credential", newID() + ".c2VjcmV0"},
		{"truncated", tok[:len(tok)-1]},
		{"extended", tok + "A"},
		{"wrong secret", string(wrong)},
	}
	// A real credential with the secret of another one.
	if i, j := strings.LastIndexByte(tok, '.'), strings.LastIndexByte(tok2, '.'); i > 0 && j > 0 {
		bad = append(bad, struct{ name, token string }{"secret of another token", tok[:i] + tok2[j:]})
	}
	for _, b := range bad {
		p, err := s.Authenticate(ctx, b.token)
		wantErr(t, err, fmt.Sprintf("Authenticate(%s token %q) = %+v", b.name, b.token, p), syncengine.ErrUnauthenticated)
	}
}

// testOrgTree: the hierarchy's rules, and an admin scoped to a street seeing
// and changing only its subtree.
func testOrgTree(t *testing.T, newStore NewStore) {
	ctx := t.Context()
	e := &env{t: t, ctx: ctx, s: newStore(t, Options{}), clk: newClockSource()}
	var err error
	if e.root, _, err = e.s.CreateAdmin(ctx, "root", ""); err != nil {
		t.Fatalf("CreateAdmin: %v", err)
	}
	d1 := e.node(e.root, "", store.LevelDistrict, "D1")
	d2 := e.node(e.root, "", store.LevelDistrict, "D2")
	s1 := e.node(e.root, d1.ID, store.LevelStreet, "S1")
	s2 := e.node(e.root, d1.ID, store.LevelStreet, "S2")
	c1 := e.node(e.root, s1.ID, store.LevelCommunity, "C1")
	g1 := e.node(e.root, c1.ID, store.LevelGrid, "G1")
	c2 := e.node(e.root, s2.ID, store.LevelCommunity, "C2")
	g2 := e.node(e.root, c2.ID, store.LevelGrid, "G2")

	invalid := []struct {
		name string
		n    store.OrgNode
		want error
	}{
		{"a district with a parent", store.OrgNode{ParentID: d1.ID, Level: store.LevelDistrict, Name: "x"}, syncengine.ErrInvalid},
		{"a street under a street", store.OrgNode{ParentID: s1.ID, Level: store.LevelStreet, Name: "x"}, syncengine.ErrInvalid},
		{"a community under a district", store.OrgNode{ParentID: d1.ID, Level: store.LevelCommunity, Name: "x"}, syncengine.ErrInvalid},
		{"a grid under a street", store.OrgNode{ParentID: s1.ID, Level: store.LevelGrid, Name: "x"}, syncengine.ErrInvalid},
		{"a grid under a grid", store.OrgNode{ParentID: g1.ID, Level: store.LevelGrid, Name: "x"}, syncengine.ErrInvalid},
		{"level 0", store.OrgNode{Level: 0, Name: "x"}, syncengine.ErrInvalid},
		{"level 5", store.OrgNode{ParentID: g1.ID, Level: 5, Name: "x"}, syncengine.ErrInvalid},
		{"no name", store.OrgNode{ParentID: c1.ID, Level: store.LevelGrid}, syncengine.ErrInvalid},
		{"an unknown parent", store.OrgNode{ParentID: newID(), Level: store.LevelStreet, Name: "x"}, syncengine.ErrNotFound},
	}
	for _, tc := range invalid {
		n, err := e.s.CreateOrgNode(ctx, e.root, tc.n)
		wantErr(t, err, fmt.Sprintf("CreateOrgNode(%s) = %+v", tc.name, n), tc.want)
	}
	all, err := e.s.ListOrgNodes(ctx, e.root)
	if err != nil {
		t.Fatalf("ListOrgNodes: %v", err)
	}
	sameSet(t, "ListOrgNodes(installation-wide admin): nothing else may have been created", nodeIDs(all),
		[]string{d1.ID, d2.ID, s1.ID, s2.ID, c1.ID, g1.ID, c2.ID, g2.ID})
	parentsFirst(t, all)

	sa, tok, err := e.s.CreateAdmin(ctx, "street admin", s1.ID)
	if err != nil {
		t.Fatalf("CreateAdmin over a street: %v", err)
	}
	if got, err := e.s.Authenticate(ctx, tok); err != nil || !reflect.DeepEqual(got, sa) || got.Node != s1.ID {
		t.Fatalf("Authenticate(street admin) = %+v, %v; want %+v with Node %s", got, err, sa, s1.ID)
	}
	outside := []struct {
		name string
		n    store.OrgNode
	}{
		{"a district", store.OrgNode{Level: store.LevelDistrict, Name: "x"}},
		{"a street beside its own", store.OrgNode{ParentID: d1.ID, Level: store.LevelStreet, Name: "x"}},
		{"a street in another district", store.OrgNode{ParentID: d2.ID, Level: store.LevelStreet, Name: "x"}},
		{"a community in another street", store.OrgNode{ParentID: s2.ID, Level: store.LevelCommunity, Name: "x"}},
		{"a grid in another street", store.OrgNode{ParentID: c2.ID, Level: store.LevelGrid, Name: "x"}},
	}
	for _, tc := range outside {
		n, err := e.s.CreateOrgNode(ctx, sa, tc.n)
		wantErr(t, err, fmt.Sprintf("street admin CreateOrgNode(%s) = %+v", tc.name, n), syncengine.ErrOutOfScope)
	}
	c3 := e.node(sa, s1.ID, store.LevelCommunity, "C3")
	g3 := e.node(sa, c3.ID, store.LevelGrid, "G3")

	mine, err := e.s.ListOrgNodes(ctx, sa)
	if err != nil {
		t.Fatalf("ListOrgNodes(street admin): %v", err)
	}
	sameSet(t, "ListOrgNodes(street admin) is its subtree", nodeIDs(mine), []string{s1.ID, c1.ID, g1.ID, c3.ID, g3.ID})
	parentsFirst(t, mine)
	for _, n := range mine {
		if n.ID == g3.ID && (n.ParentID != c3.ID || n.Level != store.LevelGrid || n.Name != "G3") {
			t.Errorf("ListOrgNodes lists %+v; want grid G3 under %s", n, c3.ID)
		}
	}
	all, err = e.s.ListOrgNodes(ctx, e.root)
	if err != nil {
		t.Fatalf("ListOrgNodes: %v", err)
	}
	if len(all) != 10 {
		t.Errorf("ListOrgNodes(installation-wide admin) lists %d nodes; want 10", len(all))
	}
}

// testWorkers: creating, listing and re-assigning workers, within the admin's
// subtree only.
func testWorkers(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := e.ctx
	sa := e.admin(e.s1.ID) // street s1: grids g1 and g2

	w, err := e.s.CreateWorker(ctx, e.root, store.Worker{Name: "Wang", Role: 1, GridIDs: []string{e.g1.ID, e.g2.ID}})
	if err != nil {
		t.Fatalf("CreateWorker: %v", err)
	}
	// Worker ids are written into visits (VisitorID), which must be UUIDs.
	if !syncengine.IsID(w.ID) || w.Name != "Wang" || w.Role != 1 {
		t.Errorf("CreateWorker = %+v; want Wang, role 1, a UUID id", w)
	}
	sameSet(t, "CreateWorker grids", w.GridIDs, []string{e.g1.ID, e.g2.ID})

	bad := []struct {
		name string
		w    store.Worker
		want error
	}{
		{"no name", store.Worker{Role: 1, GridIDs: []string{e.g1.ID}}, syncengine.ErrInvalid},
		{"a community for a grid", store.Worker{Name: "x", Role: 1, GridIDs: []string{e.c1.ID}}, syncengine.ErrInvalid},
		{"an unknown grid", store.Worker{Name: "x", Role: 1, GridIDs: []string{newID()}}, syncengine.ErrNotFound},
	}
	for _, tc := range bad {
		got, err := e.s.CreateWorker(ctx, e.root, tc.w)
		wantErr(t, err, fmt.Sprintf("CreateWorker(%s) = %+v", tc.name, got), tc.want)
	}
	for _, grids := range [][]string{{e.g3.ID}, {e.g1.ID, e.g3.ID}} {
		got, err := e.s.CreateWorker(ctx, sa, store.Worker{Name: "x", Role: 1, GridIDs: grids})
		wantErr(t, err, fmt.Sprintf("street admin CreateWorker in another street's grid = %+v", got), syncengine.ErrOutOfScope)
	}
	w2, err := e.s.CreateWorker(ctx, sa, store.Worker{Name: "Zhao", Role: 1, GridIDs: []string{e.g1.ID}})
	if err != nil {
		t.Fatalf("street admin CreateWorker in its grid: %v", err)
	}
	w3, err := e.s.CreateWorker(ctx, e.root, store.Worker{Name: "Sun", Role: 1, GridIDs: []string{e.g3.ID}})
	if err != nil {
		t.Fatalf("CreateWorker: %v", err)
	}

	list := func(p store.Principal) map[string]store.Worker {
		t.Helper()
		ws, err := e.s.ListWorkers(ctx, p)
		if err != nil {
			t.Fatalf("ListWorkers: %v", err)
		}
		m := map[string]store.Worker{}
		for _, w := range ws {
			m[w.ID] = w
		}
		return m
	}
	all := list(e.root)
	sameSet(t, "ListWorkers(installation-wide admin)", mapKeys(all), []string{w.ID, w2.ID, w3.ID})
	sameSet(t, "ListWorkers grids of Wang", all[w.ID].GridIDs, []string{e.g1.ID, e.g2.ID})
	sameSet(t, "ListWorkers grids of Sun", all[w3.ID].GridIDs, []string{e.g3.ID})
	if all[w2.ID].Name != "Zhao" {
		t.Errorf("ListWorkers lists %+v; want Zhao", all[w2.ID])
	}
	sameSet(t, "ListWorkers(street admin) lists the workers of its grids", mapKeys(list(sa)), []string{w.ID, w2.ID})

	got, err := e.s.SetWorkerGrids(ctx, sa, w3.ID, []string{e.g1.ID})
	wantErr(t, err, fmt.Sprintf("street admin SetWorkerGrids of another street's worker = %+v", got), syncengine.ErrOutOfScope)
	got, err = e.s.SetWorkerGrids(ctx, sa, w.ID, []string{e.g1.ID, e.g3.ID})
	wantErr(t, err, fmt.Sprintf("street admin SetWorkerGrids to another street's grid = %+v", got), syncengine.ErrOutOfScope)
	_, err = e.s.SetWorkerGrids(ctx, e.root, newID(), []string{e.g1.ID})
	wantErr(t, err, "SetWorkerGrids of an unknown worker", syncengine.ErrNotFound)
	_, err = e.s.SetWorkerGrids(ctx, e.root, w.ID, []string{e.c1.ID})
	wantErr(t, err, "SetWorkerGrids to a community", syncengine.ErrInvalid)

	got, err = e.s.SetWorkerGrids(ctx, sa, w.ID, []string{e.g2.ID})
	if err != nil {
		t.Fatalf("street admin SetWorkerGrids within its street: %v", err)
	}
	if got.ID != w.ID || got.Name != "Wang" {
		t.Errorf("SetWorkerGrids = %+v; want worker Wang", got)
	}
	sameSet(t, "SetWorkerGrids result", got.GridIDs, []string{e.g2.ID})
	sameSet(t, "ListWorkers after SetWorkerGrids", list(e.root)[w.ID].GridIDs, []string{e.g2.ID})

	_, err = e.s.CreateEnrollmentCode(ctx, sa, w3.ID, time.Now().Add(time.Hour))
	wantErr(t, err, "street admin CreateEnrollmentCode for another street's worker", syncengine.ErrOutOfScope)
	_, err = e.s.CreateEnrollmentCode(ctx, e.root, newID(), time.Now().Add(time.Hour))
	wantErr(t, err, "CreateEnrollmentCode for an unknown worker", syncengine.ErrNotFound)
	if _, err := e.s.CreateEnrollmentCode(ctx, sa, w2.ID, time.Now().Add(time.Hour)); err != nil {
		t.Errorf("street admin CreateEnrollmentCode for its worker: %v", err)
	}
}

// testEnrollment: one-time codes become device tokens of the worker.
func testEnrollment(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := e.ctx
	now := time.Now()
	w, err := e.s.CreateWorker(ctx, e.root, store.Worker{Name: "Wang", Role: 1, GridIDs: []string{e.g1.ID}})
	if err != nil {
		t.Fatalf("CreateWorker: %v", err)
	}
	code := e.code(w.ID, now.Add(time.Hour))
	en, err := e.s.Enroll(ctx, code, "phone 1", now)
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	if en.DeviceID == "" || en.Token == "" {
		t.Fatalf("Enroll = %+v; want a device and a token", en)
	}
	checkScope(t, "Enroll", en.Scope, w.ID, e.g1)

	p, err := e.s.Authenticate(ctx, en.Token)
	if err != nil {
		t.Fatalf("Authenticate(device token): %v", err)
	}
	if p.Kind != store.KindWorker || p.ID != w.ID || p.Name != "Wang" || p.CredentialID != en.DeviceID || p.Node != "" {
		t.Errorf("Authenticate(device token) = %+v; want worker %s (Wang) on device %s", p, w.ID, en.DeviceID)
	}
	sc, err := e.s.Scope(ctx, p)
	if err != nil {
		t.Fatalf("Scope: %v", err)
	}
	checkScope(t, "Scope", sc, w.ID, e.g1)

	_, err = e.s.Enroll(ctx, code, "phone 2", now)
	wantErr(t, err, "Enroll with a code already spent", syncengine.ErrUnauthenticated)

	expiring := e.code(w.ID, now.Add(time.Hour))
	_, err = e.s.Enroll(ctx, expiring, "phone 2", now.Add(2*time.Hour))
	wantErr(t, err, "Enroll after the code expired", syncengine.ErrUnauthenticated)

	for _, c := range []string{"", "ABCD-EFGH-JKLM", "garbage"} {
		_, err = e.s.Enroll(ctx, c, "phone 2", now)
		wantErr(t, err, fmt.Sprintf("Enroll with unknown code %q", c), syncengine.ErrUnauthenticated)
	}

	// Codes are read out and typed on a phone: case and dashes do not matter
	// (the SQLite backend normalises them; every backend must).
	typed := e.code(w.ID, now.Add(time.Hour))
	en2, err := e.s.Enroll(ctx, strings.ToLower(strings.ReplaceAll(typed, "-", "")), "phone 2", now.Add(30*time.Minute))
	if err != nil {
		t.Fatalf("Enroll(%q typed in lower case without dashes): %v", typed, err)
	}
	if en2.DeviceID == en.DeviceID || en2.Token == en.Token {
		t.Errorf("two enrolments share a device or token: %+v %+v", en, en2)
	}
	_, err = e.s.Enroll(ctx, typed, "phone 3", now)
	wantErr(t, err, "Enroll with a code spent in another spelling", syncengine.ErrUnauthenticated)

	p2, err := e.s.Authenticate(ctx, en2.Token)
	if err != nil || p2.ID != w.ID || p2.CredentialID != en2.DeviceID {
		t.Errorf("Authenticate(second device) = %+v, %v; want worker %s on device %s", p2, err, w.ID, en2.DeviceID)
	}
	if p, err := e.s.Authenticate(ctx, en.Token); err != nil || p.CredentialID != en.DeviceID {
		t.Errorf("Authenticate(first device) after a second enrolment = %+v, %v", p, err)
	}
}

// seenResolution is service.SeenResolution: how precisely a device's
// last call is recorded.
const seenResolution = 10 * time.Minute

// testLastSeen: an authenticated call records when its device was seen, at
// most once per seenResolution, for the device list and the count of
// devices seen (the metrics' doorbook_devices_seen).
func testLastSeen(t *testing.T, newStore NewStore) {
	clk := &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	e := newEnvWith(t, newStore, Options{Now: clk.Now})
	ctx := e.ctx
	counter, ok := e.s.(interface {
		DevicesSeenSince(ctx context.Context, t time.Time) (int, error)
	})
	if !ok {
		t.Fatalf("%T does not count the devices seen", e.s)
	}
	w, err := e.s.CreateWorker(ctx, e.root, store.Worker{Name: "Wang", Role: 1, GridIDs: []string{e.g1.ID}})
	if err != nil {
		t.Fatalf("CreateWorker: %v", err)
	}
	en, err := e.s.Enroll(ctx, e.code(w.ID, clk.Now().Add(time.Hour)), "phone", clk.Now())
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	lastSeen := func() time.Time {
		t.Helper()
		ds, err := e.s.ListDevices(ctx, e.root, w.ID)
		if err != nil || len(ds) != 1 {
			t.Fatalf("ListDevices = %+v, %v; want the one device", ds, err)
		}
		return ds[0].LastSeen
	}
	seen := func() int {
		t.Helper()
		n, err := counter.DevicesSeenSince(ctx, clk.Now().Add(-24*time.Hour))
		if err != nil {
			t.Fatalf("DevicesSeenSince: %v", err)
		}
		return n
	}
	call := func() {
		t.Helper()
		if _, err := e.s.Authenticate(ctx, en.Token); err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
	}
	if got := lastSeen(); !got.IsZero() {
		t.Errorf("LastSeen of a device that never called = %v; want zero", got)
	}
	if n := seen(); n != 0 {
		t.Errorf("devices seen before any call = %d; want 0", n)
	}
	first := clk.Now()
	call()
	if got := lastSeen(); !got.Equal(first) {
		t.Errorf("LastSeen after a call = %v; want %v", got, first)
	}
	if n := seen(); n != 1 {
		t.Errorf("devices seen after a call = %d; want 1", n)
	}
	clk.Advance(seenResolution - time.Second)
	call()
	if got := lastSeen(); !got.Equal(first) {
		t.Errorf("LastSeen after a call within the resolution = %v; want it unwritten, %v", got, first)
	}
	clk.Advance(time.Second)
	call()
	if got := lastSeen(); !got.Equal(clk.Now()) {
		t.Errorf("LastSeen after a call one resolution later = %v; want %v", got, clk.Now())
	}
	clk.Advance(24*time.Hour + time.Second)
	if n := seen(); n != 0 {
		t.Errorf("devices seen in the last day, a day after the last call = %d; want 0", n)
	}
}

// testPushPull: pushed rows come back through Pull, cursors advance, and
// pushes are idempotent by change id.
// testPullLeavesOutOwnRows: a device's pull leaves out the visits and
// amendments it pushed itself (it has them, and they never change), and
// nothing else: its households' changes, and every row of other devices,
// even of the same worker, come as usual.
func testPullLeavesOutOwnRows(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	w, dev := e.worker("A", e.g1.ID)
	other := e.device(w.ID)
	x := e.register(dev, e.g1.ID)
	am := e.amendment(x.v.ID, w.ID)
	edit := e.edit(x.h.ID, "edited")
	e.push(dev, change(am), change(edit))
	fromOther := e.visit(w.ID, x.h.ID)
	e.push(other, change(fromOther))

	own := e.pull(dev, 0)
	sameSet(t, "pusher's households", householdIDs(own.Rows), []string{x.h.ID})
	sameSet(t, "pusher's persons", personIDs(own.Rows), []string{x.p.ID})
	sameSet(t, "pusher's visits", visitIDs(own.Rows), []string{fromOther.ID})
	sameSet(t, "pusher's amendments", amendmentIDs(own.Rows), nil)
	if h, _ := findHousehold(own.Rows, x.h.ID); h.Notes != edit.Notes {
		t.Errorf("pusher's household notes %v; want its own edit %v back", h.Notes, edit.Notes)
	}
	all := e.pull(other, 0)
	sameSet(t, "other device's visits", visitIDs(all.Rows), []string{x.v.ID})
	sameSet(t, "other device's amendments", amendmentIDs(all.Rows), []string{am.ID})
	if own.Cursor != all.Cursor {
		t.Errorf("cursors differ: %d (pusher) and %d (other device)", own.Cursor, all.Cursor)
	}
	wantNothing(t, "pusher's next pull", e.pull(dev, own.Cursor))
}

func testPushPull(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	w, dev := e.worker("A", e.g1.ID)

	h := e.household(e.g1.ID, "Li")
	h.MemberCount = syncengine.NewRegister(int64(3), h.HeadName.Clock)
	p := e.person(h.ID, "Li Wei")
	tg := e.tag(h.ID, "elderly")
	v := e.visit(w.ID, h.ID)
	changes := []syncengine.Change{change(h), change(p), change(tg), change(v)}
	if res := e.push(dev, changes...); res != (store.PushResult{Applied: 4}) {
		t.Errorf("Push of 4 new changes = %+v; want 4 applied", res)
	}

	// Another device of the worker: the pushing one gets no visit back.
	b1 := e.pull(e.device(w.ID), 0)
	if b1.Cursor == 0 {
		t.Errorf("Pull after writes returned cursor 0")
	}
	if b1.Scope.Worker.ID != w.ID {
		t.Errorf("Pull scope is of worker %q; want %s", b1.Scope.Worker.ID, w.ID)
	}
	sameSet(t, "Pull(0) households", householdIDs(b1.Rows), []string{h.ID})
	sameSet(t, "Pull(0) persons", personIDs(b1.Rows), []string{p.ID})
	sameSet(t, "Pull(0) tags", tagIDs(b1.Rows), []string{tg.AddID})
	sameSet(t, "Pull(0) visits", visitIDs(b1.Rows), []string{v.ID})
	if got, ok := findHousehold(b1.Rows, h.ID); ok && (got.GridID != h.GridID || got.HeadName != h.HeadName || got.MemberCount != h.MemberCount) {
		t.Errorf("Pull returned household %+v; want grid %v, head %v, members %v", got, h.GridID, h.HeadName, h.MemberCount)
	}
	for _, got := range b1.Rows.Persons {
		if got.HouseholdID != h.ID || got.Name != p.Name {
			t.Errorf("Pull returned person %+v; want %+v", got, *p)
		}
	}
	for _, got := range b1.Rows.Tags {
		if got != *tg {
			t.Errorf("Pull returned tag %+v; want %+v", got, *tg)
		}
	}
	for _, got := range b1.Rows.Visits {
		if !got.Equal(v) {
			t.Errorf("Pull returned visit %+v; want %+v", got, *v)
		}
	}

	b2 := e.pull(dev, b1.Cursor)
	wantNothing(t, "Pull from the cursor just returned", b2)

	// Every write moves the cursor on.
	cursor := b2.Cursor
	var last *syncengine.Household
	for i := range 3 {
		last = e.edit(h.ID, fmt.Sprintf("note %d", i))
		e.push(dev, change(last))
		b := e.pull(dev, cursor)
		if b.Cursor <= cursor {
			t.Errorf("edit %d: Pull from %d returned cursor %d; want a larger one", i, cursor, b.Cursor)
		}
		sameSet(t, fmt.Sprintf("edit %d: Pull households", i), householdIDs(b.Rows), []string{h.ID})
		if got, ok := findHousehold(b.Rows, h.ID); ok && (got.Notes != last.Notes || got.HeadName != h.HeadName) {
			t.Errorf("edit %d: Pull returned household %+v; want notes %v and head %v (merged, whole row)", i, got, last.Notes, h.HeadName)
		}
		cursor = b.Cursor
	}

	// Pushing the same change ids again changes nothing, whatever they carry.
	if res := e.push(dev, changes...); res != (store.PushResult{Duplicates: 4}) {
		t.Errorf("Push of the same 4 changes again = %+v; want 4 duplicates", res)
	}
	if res := e.push(dev, syncengine.Change{ID: changes[0].ID, Household: e.edit(h.ID, "ignored")}); res != (store.PushResult{Duplicates: 1}) {
		t.Errorf("Push of a known change id with another payload = %+v; want 1 duplicate", res)
	}
	wantNothing(t, "Pull after duplicate pushes", e.pull(dev, cursor))
	if got, ok := findHousehold(e.pull(dev, 0).Rows, h.ID); !ok || got.Notes != last.Notes {
		t.Errorf("after duplicate pushes the household is %+v; want notes %v", got, last.Notes)
	}

	c := change(e.person(h.ID, "Li Na"))
	if res := e.push(dev, c, c); res != (store.PushResult{Applied: 1, Duplicates: 1}) {
		t.Errorf("Push of one change twice = %+v; want 1 applied, 1 duplicate", res)
	}
	if res := e.push(dev, changes[1], change(e.tag(h.ID, "disabled"))); res != (store.PushResult{Applied: 1, Duplicates: 1}) {
		t.Errorf("Push of a duplicate and a new change = %+v; want 1 applied, 1 duplicate", res)
	}

	// A visit is immutable: the same record again is fine, other content is not.
	same := *v
	same.HouseholdIDs = slices.Clone(v.HouseholdIDs)
	e.push(dev, change(&same))
	rewritten := same
	rewritten.Notes = "rewritten"
	_, err := e.pushErr(dev, change(&rewritten))
	wantErr(t, err, "Push of a visit id with other content", syncengine.ErrAlreadyExists)

	// Another device of the worker replicates the same.
	dev2 := e.device(w.ID)
	b := e.pull(dev2, 0)
	hasAll(t, "second device: households", householdIDs(b.Rows), h.ID)
	hasAll(t, "second device: visits", visitIDs(b.Rows), v.ID)

	_, err = e.s.Pull(e.ctx, dev, b.Cursor+1_000_000, store.DefaultPullLimit)
	wantErr(t, err, "Pull from a cursor past the feed", syncengine.ErrStaleCursor)
	// Cursors are opaque: one the store did not issue (here, the last one
	// with its low bit flipped) is stale, not silently taken for a position:
	// that is how a database restored from a backup recognises the cursors
	// of the feed it lost.
	_, err = e.s.Pull(e.ctx, dev, b.Cursor^1, store.DefaultPullLimit)
	wantErr(t, err, "Pull from a cursor the store never issued", syncengine.ErrStaleCursor)
}

// testPullPages: a limited Pull returns the feed in batches that resume
// where the last one stopped.
func testPullPages(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	_, dev := e.worker("A", e.g1.ID)
	start := e.pull(dev, 0).Cursor
	var want []string
	for i := range 5 {
		h := e.household(e.g1.ID, fmt.Sprint("house ", i))
		e.push(dev, change(h))
		want = append(want, h.ID)
	}
	cursor, batches := start, 0
	var got []string
	for {
		b, err := e.s.Pull(e.ctx, dev, cursor, 2)
		if err != nil {
			t.Fatalf("Pull(limit 2): %v", err)
		}
		batches++
		if n := len(b.Rows.Households); n > 2 {
			t.Errorf("Pull(limit 2) returned %d households", n)
		}
		if b.More && b.Cursor <= cursor {
			t.Fatalf("Pull(limit 2) from %d says More but returned cursor %d", cursor, b.Cursor)
		}
		got = append(got, householdIDs(b.Rows)...)
		cursor = b.Cursor
		if !b.More {
			break
		}
		if batches > 10 {
			t.Fatalf("Pull(limit 2) still has More after %d batches", batches)
		}
	}
	sameSet(t, "households over all batches", got, want)
	if batches < 3 {
		t.Errorf("5 households came in %d batches of at most 2", batches)
	}
	wantNothing(t, "Pull after the last batch", e.pull(dev, cursor))
}

// testPushAllOrNothing: a push whose last change fails applies none of its
// changes, and does not record their ids.
func testPushAllOrNothing(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	w, dev := e.worker("A", e.g1.ID)
	x := e.register(dev, e.g1.ID)
	cursor := e.pull(dev, 0).Cursor

	cases := []struct {
		name string
		bad  func(newHousehold string) syncengine.Change
		want error
	}{
		{"a registration in another grid", func(string) syncengine.Change {
			return change(e.household(e.g2.ID, "elsewhere"))
		}, syncengine.ErrOutOfScope},
		{"a person of an unknown household", func(string) syncengine.Change {
			return change(e.person(newID(), "nobody"))
		}, syncengine.ErrOutOfScope}, // as a foreign household: no id is confirmed to exist
		{"a visit rewritten", func(string) syncengine.Change {
			v := *x.v
			v.HouseholdIDs, v.Notes = slices.Clone(v.HouseholdIDs), "rewritten"
			return change(&v)
		}, syncengine.ErrAlreadyExists},
		{"a person moved to another household", func(hh string) syncengine.Change {
			return change(&syncengine.Person{ID: x.p.ID, HouseholdID: hh, Name: syncengine.NewRegister("moved", e.clk.next())})
		}, syncengine.ErrInvalid},
		{"a visit by another worker", func(string) syncengine.Change {
			return change(e.visit(newID(), x.h.ID))
		}, syncengine.ErrOutOfScope},
	}
	for _, tc := range cases {
		h := e.household(e.g1.ID, "all or nothing")
		good := []syncengine.Change{
			change(h),
			change(e.person(h.ID, "resident")),
			change(e.tag(h.ID, "elderly")),
			change(e.visit(w.ID, h.ID)),
			change(e.edit(x.h.ID, "must not land: "+tc.name)),
		}
		_, err := e.pushErr(dev, append(slices.Clone(good), tc.bad(h.ID))...)
		wantErr(t, err, "Push ending in "+tc.name, tc.want)
		b := e.pull(dev, cursor)
		if b.Rows.Rows() != 0 {
			t.Errorf("Push ending in %s failed, yet Pull returns %d rows: households %v, persons %v, tags %v, visits %v",
				tc.name, b.Rows.Rows(), householdIDs(b.Rows), personIDs(b.Rows), tagIDs(b.Rows), visitIDs(b.Rows))
		}
		cursor = b.Cursor
		// The ids of the failed push were not recorded: pushed alone they apply.
		if res := e.push(dev, good...); res != (store.PushResult{Applied: len(good)}) {
			t.Errorf("after a failed push ending in %s, its good changes pushed alone = %+v; want %d applied", tc.name, res, len(good))
		}
		b = e.pull(dev, cursor)
		hasAll(t, "households after the retry", householdIDs(b.Rows), h.ID, x.h.ID)
		cursor = b.Cursor
	}
}

// testPushScope: a worker writes only households of their grids, and only
// as themselves.
func testPushScope(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	wA, devA := e.worker("A", e.g1.ID)
	wB, devB := e.worker("B", e.g2.ID)
	xA := e.register(devA, e.g1.ID)
	xB := e.register(devB, e.g2.ID)

	outOfScope := []error{syncengine.ErrOutOfScope}
	refused := []error{syncengine.ErrInvalid, syncengine.ErrOutOfScope}
	cases := []struct {
		name string
		c    syncengine.Change
		want []error
	}{
		{"register a household in another grid", change(e.household(e.g2.ID, "x")), outOfScope},
		{"edit a household of another grid", change(e.edit(xB.h.ID, "x")), outOfScope},
		{"add a person to a household of another grid", change(e.person(xB.h.ID, "x")), outOfScope},
		{"edit a person of another grid", change(&syncengine.Person{ID: xB.p.ID, HouseholdID: xB.h.ID, Name: syncengine.NewRegister("x", e.clk.next())}), outOfScope},
		{"tag a household of another grid", change(e.tag(xB.h.ID, "x")), outOfScope},
		{"remove a tag of another grid", change(&syncengine.TagElement{AddID: xB.t.AddID, HouseholdID: xB.h.ID, Category: xB.t.Category, Removed: true, Clock: xB.t.Clock}), outOfScope},
		{"visit a household of another grid", change(e.visit(wA.ID, xB.h.ID)), outOfScope},
		{"a group visit reaching another grid", change(e.visit(wA.ID, xA.h.ID, xB.h.ID)), outOfScope},
		{"amend a visit of another grid", change(e.amendment(xB.v.ID, wA.ID)), outOfScope},
		{"move an own household to another grid", change(&syncengine.Household{ID: xA.h.ID, GridID: syncengine.NewRegister(e.g2.ID, e.clk.next())}), outOfScope},
		{"record a visit as another worker", change(e.visit(wB.ID, xA.h.ID)), outOfScope},
		{"amend a visit as another worker", change(e.amendment(xA.v.ID, wB.ID)), outOfScope},
		{"claim a person of another grid", change(&syncengine.Person{ID: xB.p.ID, HouseholdID: xA.h.ID, Name: syncengine.NewRegister("x", e.clk.next())}), refused},
		{"claim a tag of another grid", change(&syncengine.TagElement{AddID: xB.t.AddID, HouseholdID: xA.h.ID, Category: xB.t.Category, Removed: true, Clock: e.clk.next()}), refused},
	}
	for _, tc := range cases {
		_, err := e.pushErr(devA, tc.c)
		wantErr(t, err, "worker A: "+tc.name, tc.want...)
	}

	// Nothing of B's changed (read through another of B's devices, which
	// also gets B's own visits).
	b := e.pull(e.device(wB.ID), 0)
	sameSet(t, "B's households", householdIDs(b.Rows), []string{xB.h.ID})
	sameSet(t, "B's persons", personIDs(b.Rows), []string{xB.p.ID})
	sameSet(t, "B's tags", tagIDs(b.Rows), []string{xB.t.AddID})
	sameSet(t, "B's visits", visitIDs(b.Rows), []string{xB.v.ID})
	sameSet(t, "B's amendments", amendmentIDs(b.Rows), nil)
	if h, _ := findHousehold(b.Rows, xB.h.ID); h.GridID != xB.h.GridID || h.HeadName != xB.h.HeadName || h.Notes.Set() {
		t.Errorf("B's household is now %+v; want it as registered", h)
	}
	for _, p := range b.Rows.Persons {
		if p.HouseholdID != xB.h.ID || p.Name != xB.p.Name {
			t.Errorf("B's person is now %+v; want %+v", p, *xB.p)
		}
	}
	for _, tg := range b.Rows.Tags {
		if tg != *xB.t {
			t.Errorf("B's tag is now %+v; want %+v", tg, *xB.t)
		}
	}

	// What A may do still works, and A's household stayed in g1. Only a
	// visit's visitor corrects it, through any of its households: C's group
	// visit covers A's and B's; A may not amend it, C may, even once g2 is
	// no longer C's.
	wC, devC := e.worker("C", e.g1.ID, e.g2.ID)
	group := e.visit(wC.ID, xA.h.ID, xB.h.ID)
	e.push(devC, change(group))
	_, err := e.pushErr(devA, change(e.amendment(group.ID, wA.ID)))
	wantErr(t, err, "A amends C's visit", syncengine.ErrOutOfScope)
	am := e.amendment(xA.v.ID, wA.ID)
	if res := e.push(devA, change(e.edit(xA.h.ID, "fine")), change(am)); res.Applied != 2 {
		t.Errorf("A's push within scope = %+v; want 2 applied", res)
	}
	if _, err := e.s.SetWorkerGrids(e.ctx, e.root, wC.ID, []string{e.g1.ID}); err != nil {
		t.Fatalf("SetWorkerGrids: %v", err)
	}
	cC := e.pull(devC, 0).Cursor
	e.pull(devC, cC)
	amGroup := e.amendment(group.ID, wC.ID)
	if res := e.push(devC, change(amGroup)); res.Applied != 1 {
		t.Errorf("C amends its group visit through the household it still has = %+v; want 1 applied", res)
	}
	a := e.pull(e.device(wA.ID), 0)
	if h, ok := findHousehold(a.Rows, xA.h.ID); !ok || h.GridID.Value != e.g1.ID {
		t.Errorf("A's household is %+v (found %v); want it in grid %s", h, ok, e.g1.ID)
	}
	sameSet(t, "A's amendments", amendmentIDs(a.Rows), []string{am.ID, amGroup.ID})
	sameSet(t, "B's amendments", amendmentIDs(e.pull(devB, b.Cursor).Rows), []string{amGroup.ID})
}

// testPullScope: a worker pulls the rows of their grids only.
func testPullScope(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	wA, devA := e.worker("A", e.g1.ID)
	wB, devB := e.worker("B", e.g2.ID)
	wC, devC := e.worker("C", e.g1.ID, e.g2.ID)
	xA := e.register(devA, e.g1.ID)
	xB := e.register(devB, e.g2.ID)
	group := e.visit(wC.ID, xA.h.ID, xB.h.ID)
	e.push(devC, change(group))

	check := func(name string, b *store.PullBatch, mine, theirs whole) {
		t.Helper()
		sameSet(t, name+": households", householdIDs(b.Rows), []string{mine.h.ID})
		sameSet(t, name+": persons", personIDs(b.Rows), []string{mine.p.ID})
		sameSet(t, name+": tags", tagIDs(b.Rows), []string{mine.t.AddID})
		// The group visit covers a household of each grid: both see it.
		sameSet(t, name+": visits", visitIDs(b.Rows), []string{mine.v.ID, group.ID})
		hasNone(t, name+": visits", visitIDs(b.Rows), theirs.v.ID)
	}
	// Read through second devices: a device gets none of its own visits.
	a := e.pull(e.device(wA.ID), 0)
	check("A's pull", a, xA, xB)
	bb := e.pull(e.device(wB.ID), 0)
	check("B's pull", bb, xB, xA)
	c := e.pull(devC, 0)
	sameSet(t, "C's pull: households", householdIDs(c.Rows), []string{xA.h.ID, xB.h.ID})

	// Later writes in B's grid reach B only.
	ed := e.edit(xB.h.ID, "B only")
	e.push(devB, change(ed), change(e.person(xB.h.ID, "B's new resident")))
	wantNothing(t, "A's pull after B's writes", e.pull(devA, a.Cursor))
	sameSet(t, "B's pull after B's writes: households", householdIDs(e.pull(devB, bb.Cursor).Rows), []string{xB.h.ID})

	for _, grids := range [][]string{{e.g2.ID}, {e.g1.ID, e.g2.ID}} {
		pages, err := e.bootstrap(devA, store.BootstrapRequest{GridIDs: grids})
		wantErr(t, err, fmt.Sprintf("A's Bootstrap of grids %v (%d pages sent)", grids, len(pages)), syncengine.ErrOutOfScope)
		for _, pg := range pages {
			hasNone(t, "A's refused bootstrap", householdIDs(pg.Rows), xB.h.ID)
		}
	}
}

// testRoles: admins do not sync, workers do not administer.
func testRoles(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := e.ctx
	w, dev := e.worker("A", e.g1.ID)
	x := e.register(dev, e.g1.ID)

	for _, admin := range []store.Principal{e.root, e.admin(e.s1.ID)} {
		_, err := e.s.Push(ctx, admin, 0, []syncengine.Change{change(e.edit(x.h.ID, "admin"))})
		wantErr(t, err, "admin Push", syncengine.ErrOutOfScope)
		_, err = e.s.Pull(ctx, admin, 0, store.DefaultPullLimit)
		wantErr(t, err, "admin Pull", syncengine.ErrOutOfScope)
		pages, err := e.bootstrap(admin, store.BootstrapRequest{})
		wantErr(t, err, fmt.Sprintf("admin Bootstrap (%d pages sent)", len(pages)), syncengine.ErrOutOfScope)
		_, err = e.s.Scope(ctx, admin)
		wantErr(t, err, "admin Scope", syncengine.ErrOutOfScope)
	}

	exp := time.Now().Add(time.Hour)
	calls := []struct {
		name string
		call func() error
	}{
		{"CreateOrgNode", func() error {
			_, err := e.s.CreateOrgNode(ctx, dev, store.OrgNode{ParentID: e.c1.ID, Level: store.LevelGrid, Name: "mine"})
			return err
		}},
		{"ListOrgNodes", func() error { _, err := e.s.ListOrgNodes(ctx, dev); return err }},
		{"CreateWorker", func() error {
			_, err := e.s.CreateWorker(ctx, dev, store.Worker{Name: "helper", Role: 1, GridIDs: []string{e.g1.ID}})
			return err
		}},
		{"ListWorkers", func() error { _, err := e.s.ListWorkers(ctx, dev); return err }},
		{"SetWorkerGrids", func() error {
			_, err := e.s.SetWorkerGrids(ctx, dev, w.ID, []string{e.g1.ID, e.g2.ID})
			return err
		}},
		{"CreateEnrollmentCode", func() error { _, err := e.s.CreateEnrollmentCode(ctx, dev, w.ID, exp); return err }},
		{"MoveHousehold", func() error { _, err := e.s.MoveHousehold(ctx, dev, x.h.ID, e.g2.ID, nextClock); return err }},
		{"Import", func() error {
			return e.s.Import(ctx, dev, syncengine.Bundle{Households: []syncengine.Household{*e.household(e.g1.ID, "imported")}})
		}},
	}
	for _, c := range calls {
		wantErr(t, c.call(), "worker "+c.name, syncengine.ErrOutOfScope)
	}

	// Nothing the worker tried took effect.
	ws, err := e.s.ListWorkers(ctx, e.root)
	if err != nil {
		t.Fatalf("ListWorkers: %v", err)
	}
	if len(ws) != 1 {
		t.Errorf("ListWorkers = %+v; want only worker A", ws)
	}
	sc, err := e.s.Scope(ctx, dev)
	if err != nil {
		t.Fatalf("Scope: %v", err)
	}
	checkScope(t, "worker's Scope", sc, w.ID, e.g1)
	b := e.pull(dev, 0)
	sameSet(t, "worker's households", householdIDs(b.Rows), []string{x.h.ID})
	if h, _ := findHousehold(b.Rows, x.h.ID); h.GridID.Value != e.g1.ID {
		t.Errorf("household is in grid %q; want %s", h.GridID.Value, e.g1.ID)
	}
}

// testMoveHousehold: a moved household leaves the old grid's replicas and
// reaches the new grid's whole; admins move only within their subtree.
func testMoveHousehold(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := e.ctx
	_, devA := e.worker("A", e.g1.ID)
	_, devB := e.worker("B", e.g2.ID)
	x := e.register(devA, e.g1.ID)
	cA := e.pull(devA, 0).Cursor
	bB := e.pull(devB, 0)
	hasNone(t, "B's households before the move", householdIDs(bB.Rows), x.h.ID)
	cB := bB.Cursor

	var observed syncengine.Clock
	called := false
	moved, err := e.s.MoveHousehold(ctx, e.root, x.h.ID, e.g2.ID, func(o syncengine.Clock) syncengine.Clock {
		called, observed = true, o
		return syncengine.Clock{HLC: o.HLC + 1, Node: 1}
	})
	if err != nil {
		t.Fatalf("MoveHousehold: %v", err)
	}
	if !called || observed.Compare(x.h.MaxClock()) < 0 {
		t.Errorf("MoveHousehold's clock func called %v with %v; want the household's newest clock, at least %v", called, observed, x.h.MaxClock())
	}
	want := syncengine.NewRegister(e.g2.ID, syncengine.Clock{HLC: observed.HLC + 1, Node: 1})
	if moved.ID != x.h.ID || moved.GridID != want || moved.HeadName != x.h.HeadName {
		t.Errorf("MoveHousehold = %+v; want grid %v and head %v", moved, want, x.h.HeadName)
	}

	a := e.pull(devA, cA)
	hasAll(t, "A's pull after the move: evicted households", a.EvictedHouseholds, x.h.ID)
	hasNone(t, "A's pull after the move: households", householdIDs(a.Rows), x.h.ID)
	b := e.pull(devB, cB)
	hasNone(t, "B's pull after the move: evicted households", b.EvictedHouseholds, x.h.ID)
	x.hasWhole(t, "B's pull after the move", b.Rows)
	if h, _ := findHousehold(b.Rows, x.h.ID); h.GridID.Value != e.g2.ID {
		t.Errorf("B's pull returns the household in grid %q; want %s", h.GridID.Value, e.g2.ID)
	}
	wantNothing(t, "B's next pull", e.pull(devB, b.Cursor))

	// Moving it back brings it whole to A and takes it from B.
	e.move(e.root, x.h.ID, e.g1.ID)
	a2 := e.pull(devA, a.Cursor)
	x.hasWhole(t, "A's pull after the move back", a2.Rows)
	hasNone(t, "A's pull after the move back: evicted households", a2.EvictedHouseholds, x.h.ID)
	b2 := e.pull(devB, b.Cursor)
	hasAll(t, "B's pull after the move back: evicted households", b2.EvictedHouseholds, x.h.ID)

	// Admins move only within their subtree, and only to grids.
	sa1, sa2 := e.admin(e.s1.ID), e.admin(e.s2.ID)
	_, err = e.s.MoveHousehold(ctx, sa1, x.h.ID, e.g3.ID, nextClock)
	wantErr(t, err, "street admin moving a household out of its street", syncengine.ErrOutOfScope)
	_, err = e.s.MoveHousehold(ctx, sa2, x.h.ID, e.g3.ID, nextClock)
	wantErr(t, err, "street admin moving a household of another street", syncengine.ErrOutOfScope)
	_, err = e.s.MoveHousehold(ctx, e.root, newID(), e.g2.ID, nextClock)
	wantErr(t, err, "MoveHousehold of an unknown household", syncengine.ErrNotFound)
	_, err = e.s.MoveHousehold(ctx, e.root, x.h.ID, e.c1.ID, nextClock)
	wantErr(t, err, "MoveHousehold to a community", syncengine.ErrInvalid)
	a3 := e.pull(devA, a2.Cursor)
	if len(a3.EvictedHouseholds) != 0 {
		t.Errorf("refused moves evicted %v from A", a3.EvictedHouseholds)
	}
	if h, ok := findHousehold(e.pull(devA, 0).Rows, x.h.ID); !ok || h.GridID.Value != e.g1.ID {
		t.Errorf("after refused moves the household is %+v (found %v); want it in grid %s", h, ok, e.g1.ID)
	}

	m := e.move(sa1, x.h.ID, e.g2.ID)
	if m.GridID.Value != e.g2.ID {
		t.Errorf("street admin's move within its street = %+v; want grid %s", m, e.g2.ID)
	}
}

// testMoveGrace: a device that has not pulled past a move keeps writing the
// moved household (its offline edits are not lost); after it has, it may
// not.
func testMoveGrace(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	wA, devA := e.worker("A", e.g1.ID)
	_, devB := e.worker("B", e.g2.ID)
	x := e.register(devA, e.g1.ID)
	c1 := e.pull(devA, 0).Cursor
	e.pull(devA, c1) // the device shows it applied c1
	cB := e.pull(devB, 0).Cursor

	e.move(e.root, x.h.ID, e.g2.ID)

	offline := e.edit(x.h.ID, "written offline")
	visit := e.visit(wA.ID, x.h.ID)
	if res := e.push(devA, change(offline), change(visit)); res.Applied != 2 {
		t.Errorf("push of offline edits of a household moved away = %+v; want 2 applied", res)
	}
	b := e.pull(devB, cB)
	if h, ok := findHousehold(b.Rows, x.h.ID); !ok || h.Notes != offline.Notes {
		t.Errorf("B's pull has household %+v (found %v); want A's offline notes %v", h, ok, offline.Notes)
	}
	hasAll(t, "B's pull: visits", visitIDs(b.Rows), x.v.ID, visit.ID)

	a := e.pull(devA, c1)
	hasAll(t, "A's pull past the move: evicted households", a.EvictedHouseholds, x.h.ID)
	e.pull(devA, a.Cursor) // the device shows it applied the move

	_, err := e.pushErr(devA, change(e.edit(x.h.ID, "too late")))
	wantErr(t, err, "push to a moved household after pulling past the move", syncengine.ErrOutOfScope)
	_, err = e.pushErr(devA, change(e.visit(wA.ID, x.h.ID)))
	wantErr(t, err, "visit of a moved household after pulling past the move", syncengine.ErrOutOfScope)
	if h, _ := findHousehold(e.pull(devB, 0).Rows, x.h.ID); h.Notes != offline.Notes {
		t.Errorf("B's household notes are %v; want %v", h.Notes, offline.Notes)
	}
}

// testChangeIDsBelongToTheirDevice: a change id is its first pusher's. The
// same change again from that device is a duplicate; the id from another
// device, or with other content (another digest), is ErrAlreadyExists and
// changes nothing.
func testChangeIDsBelongToTheirDevice(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	wA, devA := e.worker("A", e.g1.ID)
	devA2 := e.device(wA.ID)
	_, devB := e.worker("B", e.g1.ID)
	x := e.register(devA, e.g1.ID)

	first := change(e.edit(x.h.ID, "first"))
	first.Digest = "digest of first"
	if res := e.push(devA, first); res.Applied != 1 {
		t.Fatalf("first push = %+v; want 1 applied", res)
	}
	if res := e.push(devA, first); res.Applied != 0 || res.Duplicates != 1 {
		t.Errorf("the same change again = %+v; want 1 duplicate", res)
	}
	other := change(e.edit(x.h.ID, "other content"))
	other.ID, other.Digest = first.ID, "digest of other"
	_, err := e.pushErr(devA, other)
	wantErr(t, err, "the same id with other content", syncengine.ErrAlreadyExists)
	for name, dev := range map[string]store.Principal{"another device of the same worker": devA2, "another worker's device": devB} {
		reuse := change(e.edit(x.h.ID, "reused by "+name))
		reuse.ID, reuse.Digest = first.ID, first.Digest
		_, err := e.pushErr(dev, reuse)
		wantErr(t, err, "the id from "+name, syncengine.ErrAlreadyExists)
		var ce *store.ChangeError
		if !errors.As(err, &ce) || ce.ChangeID != first.ID {
			t.Errorf("the refusal of the id from %s does not name the change: %v", name, err)
		}
	}
	if h, _ := findHousehold(e.pull(devB, 0).Rows, x.h.ID); h.Notes.Value != "first" {
		t.Errorf("after refused reuses the household's notes are %q; want %q", h.Notes.Value, "first")
	}
}

// testVisitsProveThemselves: a visit never changes, so the stored visit,
// not a change id, tells a resend. The visit again is a duplicate whatever
// its change id or the worker's device, and even after its household left
// the worker's grids or was erased (the stored copy blanked); its id with
// other content is refused, the visit from another worker's device too,
// and neither changes it. A visit's change id is checked against nothing.
func testVisitsProveThemselves(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	wA, devA := e.worker("A", e.g1.ID)
	devA2 := e.device(wA.ID)
	_, devB := e.worker("B", e.g1.ID)
	x := e.register(devA, e.g1.ID)
	v := e.visit(wA.ID, x.h.ID)
	first := change(v)
	if res := e.push(devA, first); res.Applied != 1 {
		t.Fatalf("first push = %+v; want 1 applied", res)
	}
	again := func(what string, dev store.Principal, c syncengine.Change) {
		t.Helper()
		if res, err := e.pushErr(dev, c); err != nil || res.Applied != 0 || res.Duplicates != 1 {
			t.Errorf("%s = %+v, %v; want 1 duplicate", what, res, err)
		}
	}
	again("the same change again", devA, first)
	again("the visit under a new change id", devA, change(v))
	again("the visit from another device of its worker", devA2, change(v))

	other := *v
	other.Notes = "other content"
	c := change(&other)
	_, err := e.pushErr(devA, c)
	wantErr(t, err, "the visit's id with other content", syncengine.ErrAlreadyExists)
	var ce *store.ChangeError
	if !errors.As(err, &ce) || ce.ChangeID != c.ID {
		t.Errorf("the refusal of other content does not name the change: %v", err)
	}
	// Twice in one push: under two change ids, and under one.
	w := e.visit(wA.ID, x.h.ID)
	cw := change(w)
	if res := e.push(devA, cw, change(w), cw); res.Applied != 1 || res.Duplicates != 2 {
		t.Errorf("a visit three times in one push = %+v; want 1 applied, 2 duplicates", res)
	}
	w2 := *e.visit(wA.ID, x.h.ID)
	w3 := w2
	w3.Notes = "other content"
	_, err = e.pushErr(devA, change(&w2), change(&w3))
	wantErr(t, err, "a visit's id twice in one push with other content", syncengine.ErrAlreadyExists)
	c2, c3 := change(&w2), change(&w3)
	c3.ID = c2.ID
	_, err = e.pushErr(devA, c2, c3)
	wantErr(t, err, "a visit change's id twice in one push with other content", syncengine.ErrAlreadyExists)

	// Without notes, and resent with some: the blank comparison is for
	// erased households only.
	plain := e.visit(wA.ID, x.h.ID)
	plain.Notes = ""
	e.push(devA, change(plain))
	noted := *plain
	noted.Notes = "added later"
	_, err = e.pushErr(devA, change(&noted))
	wantErr(t, err, "a visit without notes resent with notes", syncengine.ErrAlreadyExists)

	// A visit's change id is not checked against other changes': under
	// the id of a household change of the same push, it is a visit all
	// the same.
	edit := change(e.edit(x.h.ID, "edited"))
	edit.Digest = "digest of the edit"
	reused := change(e.visit(wA.ID, x.h.ID))
	reused.ID = edit.ID
	if res := e.push(devA, edit, reused); res.Applied != 2 {
		t.Errorf("a household change and a visit under one change id = %+v; want 2 applied", res)
	}
	if !slices.Contains(visitIDs(e.pull(devB, 0).Rows), reused.Visit.ID) {
		t.Errorf("the visit under a household change's id is not stored")
	}

	foreign := *v
	foreign.VisitorID = devB.ID
	_, err = e.pushErr(devB, change(&foreign))
	wantErr(t, err, "the visit's id in another worker's visit", syncengine.ErrAlreadyExists)
	_, err = e.pushErr(devB, change(v))
	wantErr(t, err, "the visit from another worker's device", syncengine.ErrOutOfScope)
	if i := slices.IndexFunc(e.pull(devB, 0).Rows.Visits, func(s syncengine.Visit) bool { return s.ID == v.ID }); i < 0 {
		t.Errorf("the visit is gone after refused pushes")
	} else if s := e.pull(devB, 0).Rows.Visits[i]; !s.Equal(v) {
		t.Errorf("after refused pushes the visit is %+v; want %+v", s, v)
	}

	// Erased: the stored copy has lost its notes, the resend (made after
	// the household's last change, so not blanked on arrival) has them.
	if _, err := e.s.ErasePersonalData(e.ctx, e.root, store.ErasureTarget{HouseholdID: x.h.ID, Reason: "request", At: time.Now()}, nextClock); err != nil {
		t.Fatalf("ErasePersonalData: %v", err)
	}
	again("the visit resent after its household was erased", devA, first)

	// Moved away, and the device has pulled past the move: the visit is
	// no longer the worker's to push, but this one is stored already.
	y := e.register(devA, e.g1.ID)
	moved := e.visit(wA.ID, y.h.ID)
	e.push(devA, change(moved))
	e.move(e.root, y.h.ID, e.g2.ID)
	e.pull(devA, e.pull(devA, 0).Cursor)
	again("the visit resent after its household moved away", devA, change(moved))
	_, err = e.pushErr(devA, change(e.visit(wA.ID, y.h.ID)))
	wantErr(t, err, "a new visit of the household moved away", syncengine.ErrOutOfScope)
}

// testCollect: past the horizon, tombstones (a removed tag, a deleted
// person, a deleted household with its rows) are gone, a device whose
// cursor is older is told to start over, and live data and visits stay;
// a device that synced after the horizon goes on from its cursor.
func testCollect(t *testing.T, newStore NewStore) {
	clk := &fakeClock{t: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	e := newEnvWith(t, newStore, Options{Now: clk.Now, ScopeGrace: 7 * 24 * time.Hour})
	wA, devA := e.worker("A", e.g1.ID)
	kept := e.register(devA, e.g1.ID)
	gone := e.register(devA, e.g1.ID)
	older := e.pull(devA, 0).Cursor
	removed := *kept.t
	removed.Removed = true
	deletedPerson := *kept.p
	deletedPerson.Deleted = syncengine.NewRegister(true, e.clk.next())
	deletedHousehold := syncengine.Household{ID: gone.h.ID, Deleted: syncengine.NewRegister(true, e.clk.next())}
	liveTag := e.tag(kept.h.ID, "vulnerable")
	e.push(devA, change(&removed), change(&deletedPerson), change(&deletedHousehold), change(liveTag))
	old := e.pull(devA, 0).Cursor

	const horizon = 90 * 24 * time.Hour
	if c, err := e.s.Collect(e.ctx, horizon); err != nil || c.Total() != 0 {
		t.Fatalf("Collect before the horizon = %+v, %v; want nothing", c, err)
	}
	clk.Advance(horizon + 24*time.Hour)
	late := e.visit(wA.ID, kept.h.ID)
	e.push(devA, change(late))
	fresh := e.pull(devA, old).Cursor
	c, err := e.s.Collect(e.ctx, horizon)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if c.Tombstones < 4 || c.AppliedChanges == 0 || c.Commits == 0 || c.Feed == 0 {
		t.Errorf("Collect = %+v; want the tombstones (a tag, a person, a household and its rows), change ids, commits and feed entries", c)
	}
	_, err = e.s.Pull(e.ctx, devA, older, 100)
	wantErr(t, err, "a pull from a cursor older than the horizon", syncengine.ErrCursorExpired)
	// A cursor at the last position before the horizon (a device up to
	// date with an idle server) stays good.
	if _, err := e.s.Pull(e.ctx, devA, old, 100); err != nil {
		t.Errorf("a pull from the last position before the horizon: %v", err)
	}
	// A device that synced after the horizon holds the tombstones: its
	// next pull tells it which were purged, and nothing else.
	p := e.pull(devA, fresh)
	sameSet(t, "purged persons", p.PurgedPersons, []string{kept.p.ID, gone.p.ID})
	sameSet(t, "purged tags", p.PurgedTags, []string{kept.t.AddID, gone.t.AddID})
	if p.Rows.Rows() != 0 {
		t.Errorf("the pull after the collection sent %d rows; want only the purges", p.Rows.Rows())
	}

	pages, err := e.bootstrap(e.device(wA.ID), store.BootstrapRequest{})
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	b := collect(pages)
	// The deleted household stays a tombstone of a few bytes.
	sameSet(t, "households after the collection", householdIDs(b), []string{kept.h.ID, gone.h.ID})
	sameSet(t, "tags after the collection", tagIDs(b), []string{liveTag.AddID})
	sameSet(t, "persons after the collection", personIDs(b), nil)
	hasAll(t, "visits after the collection", visitIDs(b), kept.v.ID, late.ID)
	if again, err := e.s.Collect(e.ctx, horizon); err != nil || again.Tombstones+again.AppliedChanges+again.Feed != 0 {
		t.Errorf("a second Collect = %+v, %v; want nothing more", again, err)
	}
}

// testErasureAnnouncedOnce: a pull tells a device of an erasure through
// the entries the erasure wrote, once: a later change of the household is
// no erasure (the device would drop its kept copies of new work).
func testErasureAnnouncedOnce(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	_, devA := e.worker("A", e.g1.ID)
	x := e.register(devA, e.g1.ID)
	c := e.pull(devA, 0).Cursor
	erased, err := e.s.ErasePersonalData(e.ctx, e.root, store.ErasureTarget{HouseholdID: x.h.ID, Reason: "request", At: time.Now()}, nextClock)
	if err != nil {
		t.Fatalf("ErasePersonalData: %v", err)
	}
	if erased.Households != 1 || erased.Persons != 1 || erased.Visits != 1 {
		t.Errorf("ErasePersonalData = %+v; want a household, a person, a visit", erased)
	}
	b := e.pull(devA, c)
	sameSet(t, "erased households", b.ErasedHouseholds, []string{x.h.ID})
	sameSet(t, "erased persons", b.ErasedPersons, []string{x.p.ID})
	sameSet(t, "replaced visits", b.ReplacedVisits, []string{x.v.ID})
	if h, _ := findHousehold(b.Rows, x.h.ID); h.HeadName.Value != "" {
		t.Errorf("the erased household's head is %q; want blank", h.HeadName.Value)
	}
	e.push(devA, change(e.edit(x.h.ID, "new work")))
	later := e.pull(devA, b.Cursor)
	if len(later.ErasedHouseholds)+len(later.ErasedPersons)+len(later.ReplacedVisits) != 0 {
		t.Errorf("a later edit of the household is announced as an erasure: %v %v %v", later.ErasedHouseholds, later.ErasedPersons, later.ReplacedVisits)
	}
	_, err = e.s.ErasePersonalData(e.ctx, e.root, store.ErasureTarget{HouseholdID: newID(), Reason: "request", At: time.Now()}, nextClock)
	wantErr(t, err, "erasing an unknown household", syncengine.ErrOutOfScope)
}

// testCaps: a household holds only so many tags, persons and visits a
// day, and only tags of categories the admins defined; a write past a cap
// is ErrLimit naming it, and changes nothing.
func testCaps(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	wA, devA := e.worker("A", e.g1.ID)
	x := e.register(devA, e.g1.ID)

	_, err := e.pushErr(devA, change(e.tag(x.h.ID, "no_such_category")))
	wantErr(t, err, "a tag of an unknown category", syncengine.ErrInvalid)

	var tags []syncengine.Change
	for range syncengine.MaxLiveTagsPerHousehold - 1 { // x has one already
		tags = append(tags, change(e.tag(x.h.ID, "elderly")))
	}
	e.push(devA, tags...)
	_, err = e.pushErr(devA, change(e.tag(x.h.ID, "elderly")))
	wantErr(t, err, "a tag past the cap", syncengine.ErrLimit)

	var persons []syncengine.Change
	for range syncengine.MaxPersonsPerHousehold - 1 {
		persons = append(persons, change(e.person(x.h.ID, "resident")))
	}
	e.push(devA, persons...)
	_, err = e.pushErr(devA, change(e.person(x.h.ID, "one too many")))
	wantErr(t, err, "a person past the cap", syncengine.ErrLimit)

	day := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	visitOn := func(at time.Time) syncengine.Change {
		v := e.visit(wA.ID, x.h.ID)
		v.VisitedAt = at
		return change(v)
	}
	var visits []syncengine.Change
	for i := range syncengine.MaxVisitsPerHouseholdPerDay {
		visits = append(visits, visitOn(day.Add(time.Duration(i)*time.Minute)))
	}
	e.push(devA, visits...)
	_, err = e.pushErr(devA, visitOn(day.Add(3*time.Hour)))
	wantErr(t, err, "a visit past the day's cap", syncengine.ErrLimit)
	if res := e.push(devA, visitOn(day.Add(24*time.Hour))); res.Applied != 1 {
		t.Errorf("a visit the next day = %+v; want 1 applied", res)
	}
	// One push past the cap, to a household with visits of other days:
	// the visits it inserts count as those before it do.
	y := e.register(devA, e.g1.ID)
	e.push(devA, change(e.visit(wA.ID, y.h.ID)))
	visits = visits[:0]
	for i := range syncengine.MaxVisitsPerHouseholdPerDay + 1 {
		v := e.visit(wA.ID, y.h.ID)
		v.VisitedAt = day.Add(time.Duration(i) * time.Minute)
		visits = append(visits, change(v))
	}
	_, err = e.pushErr(devA, visits...)
	wantErr(t, err, "one push of visits past the day's cap", syncengine.ErrLimit)
}

// testWhoAmends: only a visit's visitor corrects or voids it; a worker of
// the household's grid assigns or resolves its tracked items, and only an
// admin closes one off (销号).
func testWhoAmends(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	wA, devA := e.worker("A", e.g1.ID)
	wB, devB := e.worker("B", e.g1.ID)
	x := e.register(devA, e.g1.ID)
	v := e.visit(wA.ID, x.h.ID)
	v.Findings = []syncengine.Finding{{Kind: syncengine.FindingHazard, Note: "楼道堆物"}}
	e.push(devA, change(v))

	item := func(author string, kind syncengine.AmendmentKind) *syncengine.Amendment {
		a := e.amendment(v.ID, author)
		a.Kind, a.Finding = kind, 0
		if kind == syncengine.AmendItemAssign {
			a.Unit, a.Deadline = "派出所", time.Now().Add(72*time.Hour).UTC().Truncate(time.Millisecond)
		}
		return a
	}
	_, err := e.pushErr(devB, change(e.amendment(v.ID, wB.ID)))
	wantErr(t, err, "B voids A's visit", syncengine.ErrOutOfScope)
	if res := e.push(devB, change(item(wB.ID, syncengine.AmendItemAssign)), change(item(wB.ID, syncengine.AmendItemResolve))); res.Applied != 2 {
		t.Errorf("B assigns and resolves the item of A's visit = %+v; want 2 applied", res)
	}
	for _, dev := range []struct {
		p      store.Principal
		author string
	}{{devA, wA.ID}, {devB, wB.ID}} {
		_, err := e.pushErr(dev.p, change(item(dev.author, syncengine.AmendItemClose)))
		wantErr(t, err, "a worker closes off an item", syncengine.ErrOutOfScope)
	}
	if err := e.s.UpdateItem(e.ctx, e.root, *item(e.root.ID, syncengine.AmendItemClose)); err != nil {
		t.Errorf("an admin closes off the item: %v", err)
	}
	void := e.amendment(v.ID, e.root.ID)
	wantErr(t, e.s.UpdateItem(e.ctx, e.root, *void), "an admin voids a visit through UpdateItem", syncengine.ErrInvalid)
	if res := e.push(devA, change(e.amendment(v.ID, wA.ID))); res.Applied != 1 {
		t.Errorf("A voids its own visit = %+v; want 1 applied", res)
	}
}

// testUnknownLooksForeign: a worker refused a write to something outside
// their grids gets the very answer they get for an id that does not exist,
// so that no push tells them which ids exist beyond their scope.
func testUnknownLooksForeign(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	wA, devA := e.worker("A", e.g1.ID)
	wB, devB := e.worker("B", e.g3.ID)
	foreign := e.register(devB, e.g3.ID)
	fv := e.visit(wB.ID, foreign.h.ID)
	e.push(devB, change(fv))
	unknownH, unknownV := newID(), newID()
	cases := []struct {
		name             string
		foreign, unknown func() syncengine.Change
	}{
		{"edit",
			func() syncengine.Change { return change(e.edit(foreign.h.ID, "x")) },
			func() syncengine.Change { return change(e.edit(unknownH, "x")) }},
		{"edit with a grid",
			func() syncengine.Change {
				h := e.edit(foreign.h.ID, "x")
				h.GridID = syncengine.NewRegister(e.g3.ID, e.clk.next())
				return change(h)
			},
			func() syncengine.Change {
				h := e.edit(unknownH, "x")
				h.GridID = syncengine.NewRegister(e.g3.ID, e.clk.next())
				return change(h)
			}},
		{"person",
			func() syncengine.Change { return change(e.person(foreign.h.ID, "x")) },
			func() syncengine.Change { return change(e.person(unknownH, "x")) }},
		{"tag",
			func() syncengine.Change { return change(e.tag(foreign.h.ID, "elderly")) },
			func() syncengine.Change { return change(e.tag(unknownH, "elderly")) }},
		{"visit",
			func() syncengine.Change { return change(e.visit(wA.ID, foreign.h.ID)) },
			func() syncengine.Change { return change(e.visit(wA.ID, unknownH)) }},
		{"amendment",
			func() syncengine.Change { return change(e.amendment(fv.ID, wA.ID)) },
			func() syncengine.Change { return change(e.amendment(unknownV, wA.ID)) }},
	}
	for _, tc := range cases {
		f, u := tc.foreign(), tc.unknown()
		_, errF := e.pushErr(devA, f)
		_, errU := e.pushErr(devA, u)
		if errF == nil || errU == nil {
			t.Errorf("%s: foreign %v, unknown %v; want both refused", tc.name, errF, errU)
			continue
		}
		norm := func(err error, c syncengine.Change, ids ...string) string {
			msg := strings.ReplaceAll(err.Error(), c.ID, "CHANGE")
			for _, id := range ids {
				msg = strings.ReplaceAll(msg, id, "ID")
			}
			return msg
		}
		mf := norm(errF, f, foreign.h.ID, fv.ID)
		mu := norm(errU, u, unknownH, unknownV)
		if mf != mu || errors.Is(errF, syncengine.ErrOutOfScope) != errors.Is(errU, syncengine.ErrOutOfScope) {
			t.Errorf("%s: a foreign id and an unknown one get different answers:\n  foreign: %s\n  unknown: %s", tc.name, mf, mu)
		}
	}
}

// testGraceEndsWhenApplied: a pull that sends a device the move does not
// end its grace (the phone may not apply it: it pushes a pending change to
// a leaving household first); the device showing it applied the move does,
// by pulling from a cursor past it or by pushing with one.
func testGraceEndsWhenApplied(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	wA, devA := e.worker("A", e.g1.ID)
	x := e.register(devA, e.g1.ID)
	c1 := e.pull(devA, 0).Cursor
	e.pull(devA, c1)
	e.move(e.root, x.h.ID, e.g2.ID)

	a := e.pull(devA, c1) // sent, not yet applied
	hasAll(t, "pull past the move: evicted households", a.EvictedHouseholds, x.h.ID)
	if res := e.push(devA, change(e.edit(x.h.ID, "pending when the move came")), change(e.visit(wA.ID, x.h.ID))); res.Applied != 2 {
		t.Errorf("an edit and a visit pushed before the device applied the move = %+v; want 2 applied", res)
	}
	_, err := e.s.Push(e.ctx, devA, a.Cursor, []syncengine.Change{change(e.edit(x.h.ID, "pushed from past the move"))})
	wantErr(t, err, "an edit pushed with a cursor past the move", syncengine.ErrOutOfScope)
	e.pull(devA, a.Cursor) // applied
	_, err = e.pushErr(devA, change(e.visit(wA.ID, x.h.ID)))
	wantErr(t, err, "visit of a household whose move the device applied", syncengine.ErrOutOfScope)
	_, err = e.pushErr(devA, change(e.edit(x.h.ID, "after applying the move")))
	wantErr(t, err, "edit of a household whose move the device applied", syncengine.ErrOutOfScope)
}

// testGraceEndsAfterTime: a device that never pulls may write what left its
// worker's scope for the scope grace after the move on the server's clock,
// and not a moment longer: not edits, not visits, not registrations in a
// grid taken.
func testGraceEndsAfterTime(t *testing.T, newStore NewStore) {
	clk := &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	e := newEnvWith(t, newStore, Options{Now: clk.Now, ScopeGrace: 7 * 24 * time.Hour})
	wA, devA := e.worker("A", e.g1.ID, e.g2.ID)
	x := e.register(devA, e.g1.ID)
	y := e.register(devA, e.g2.ID)
	c1 := e.pull(devA, 0).Cursor
	e.pull(devA, c1)

	e.move(e.root, x.h.ID, e.g3.ID)
	if _, err := e.s.SetWorkerGrids(e.ctx, e.root, wA.ID, []string{e.g1.ID}); err != nil {
		t.Fatalf("SetWorkerGrids: %v", err)
	}
	clk.Advance(6 * 24 * time.Hour)
	if res := e.push(devA, change(e.edit(x.h.ID, "day 6")), change(e.visit(wA.ID, x.h.ID)), change(e.visit(wA.ID, y.h.ID)),
		change(e.household(e.g2.ID, "day 6"))); res.Applied != 4 {
		t.Errorf("writes six days after the move = %+v; want 4 applied", res)
	}
	clk.Advance(2 * 24 * time.Hour)
	for _, tc := range []struct {
		name string
		c    syncengine.Change
	}{
		{"edit of the moved household", change(e.edit(x.h.ID, "day 8"))},
		{"visit of the moved household", change(e.visit(wA.ID, x.h.ID))},
		{"visit in the grid taken", change(e.visit(wA.ID, y.h.ID))},
		{"edit in the grid taken", change(e.edit(y.h.ID, "day 8"))},
		{"registration in the grid taken", change(e.household(e.g2.ID, "day 8"))},
	} {
		_, err := e.pushErr(devA, tc.c)
		wantErr(t, err, tc.name+" eight days after, never having pulled", syncengine.ErrOutOfScope)
	}
}

// fakeClock is a server clock a test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testSetWorkerGrids: grids given and taken reach the worker's devices as
// AddedGrids and EvictedGrids.
func testSetWorkerGrids(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := e.ctx
	wA, devA := e.worker("A", e.g1.ID)
	_, devB := e.worker("B", e.g2.ID)
	xB := e.register(devB, e.g2.ID)
	cursor := e.pull(devA, 0).Cursor

	w, err := e.s.SetWorkerGrids(ctx, e.root, wA.ID, []string{e.g1.ID, e.g2.ID})
	if err != nil {
		t.Fatalf("SetWorkerGrids: %v", err)
	}
	sameSet(t, "SetWorkerGrids result", w.GridIDs, []string{e.g1.ID, e.g2.ID})
	b := e.pull(devA, cursor)
	sameSet(t, "pull after a grid was added: added grids", b.AddedGrids, []string{e.g2.ID})
	sameSet(t, "pull after a grid was added: evicted grids", b.EvictedGrids, nil)
	sameSet(t, "pull after a grid was added: scope", b.Scope.Worker.GridIDs, []string{e.g1.ID, e.g2.ID})
	sc, err := e.s.Scope(ctx, devA)
	if err != nil {
		t.Fatalf("Scope: %v", err)
	}
	sameSet(t, "Scope after a grid was added", nodeIDs(sc.Grids), []string{e.g1.ID, e.g2.ID})
	pages, err := e.bootstrap(devA, store.BootstrapRequest{GridIDs: []string{e.g2.ID}})
	if err != nil {
		t.Fatalf("Bootstrap of the added grid: %v", err)
	}
	x := collect(pages)
	xB.hasWhole(t, "bootstrap of the added grid", x)
	cursor = b.Cursor
	wantNothing(t, "next pull", e.pull(devA, cursor))

	e.push(devB, change(e.edit(xB.h.ID, "seen by A")))
	b = e.pull(devA, cursor)
	sameSet(t, "pull after an edit in the added grid", householdIDs(b.Rows), []string{xB.h.ID})
	cursor = b.Cursor

	if _, err := e.s.SetWorkerGrids(ctx, e.root, wA.ID, []string{e.g1.ID}); err != nil {
		t.Fatalf("SetWorkerGrids: %v", err)
	}
	b = e.pull(devA, cursor)
	sameSet(t, "pull after a grid was taken: evicted grids", b.EvictedGrids, []string{e.g2.ID})
	sameSet(t, "pull after a grid was taken: added grids", b.AddedGrids, nil)
	sameSet(t, "pull after a grid was taken: scope", b.Scope.Worker.GridIDs, []string{e.g1.ID})
	pages, err = e.bootstrap(devA, store.BootstrapRequest{GridIDs: []string{e.g2.ID}})
	wantErr(t, err, fmt.Sprintf("Bootstrap of a grid taken (%d pages)", len(pages)), syncengine.ErrOutOfScope)

	e.push(devB, change(e.edit(xB.h.ID, "not for A")))
	wantNothing(t, "pull after an edit in the grid taken", e.pull(devA, b.Cursor))
}

// testGridRemovalGrace: after a grid is taken from a worker, a device that
// has not pulled past that keeps writing there — edits and registrations it
// made offline while the grid was its own are not lost; after it has, it
// may not.
func testGridRemovalGrace(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := e.ctx
	wA, devA := e.worker("A", e.g1.ID, e.g2.ID)
	_, devB := e.worker("B", e.g2.ID)
	x := e.register(devA, e.g2.ID)
	c1 := e.pull(devA, 0).Cursor
	e.pull(devA, c1)
	cB := e.pull(devB, 0).Cursor

	if _, err := e.s.SetWorkerGrids(ctx, e.root, wA.ID, []string{e.g1.ID}); err != nil {
		t.Fatalf("SetWorkerGrids: %v", err)
	}
	offline := e.household(e.g2.ID, "registered offline")
	if res := e.push(devA, change(e.edit(x.h.ID, "written offline")), change(offline)); res.Applied != 2 {
		t.Errorf("offline edit and registration in a grid just taken = %+v; want 2 applied", res)
	}
	hasAll(t, "B's pull after A's offline writes", householdIDs(e.pull(devB, cB).Rows), x.h.ID, offline.ID)

	b := e.pull(devA, c1)
	sameSet(t, "pull past the removal: evicted grids", b.EvictedGrids, []string{e.g2.ID})
	hasNone(t, "pull past the removal: households", householdIDs(b.Rows), x.h.ID, offline.ID)
	e.pull(devA, b.Cursor) // the device shows it applied the removal
	_, err := e.pushErr(devA, change(e.edit(x.h.ID, "too late")))
	wantErr(t, err, "edit in a grid taken, after pulling past that", syncengine.ErrOutOfScope)
	_, err = e.pushErr(devA, change(e.household(e.g2.ID, "too late")))
	wantErr(t, err, "registration in a grid taken, after pulling past that", syncengine.ErrOutOfScope)
}

// testNoGraceForNewDevices: grace covers writes a device made while, as far
// as it knew, the household was its worker's. A device enrolled after a
// household moved away, or after a grid was taken, never held them: it may
// not write them, nor register households in the grid taken.
func testNoGraceForNewDevices(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := e.ctx
	wA, devA := e.worker("A", e.g1.ID, e.g2.ID)
	moved := e.register(devA, e.g1.ID)
	inTaken := e.register(devA, e.g2.ID)
	e.move(e.root, moved.h.ID, e.g3.ID)
	if _, err := e.s.SetWorkerGrids(ctx, e.root, wA.ID, []string{e.g1.ID}); err != nil {
		t.Fatalf("SetWorkerGrids: %v", err)
	}

	// A new device enrols and bootstraps its scope, as a phone does.
	dev := e.device(wA.ID)
	pages, err := e.bootstrap(dev, store.BootstrapRequest{})
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	hasNone(t, "new device's bootstrap", householdIDs(collect(pages)), moved.h.ID, inTaken.h.ID)

	_, err = e.pushErr(dev, change(e.edit(moved.h.ID, "never mine")))
	wantErr(t, err, "a device enrolled after a household moved away edits it", syncengine.ErrOutOfScope)
	_, err = e.pushErr(dev, change(e.edit(inTaken.h.ID, "never mine")))
	wantErr(t, err, "a device enrolled after a grid was taken edits a household there", syncengine.ErrOutOfScope)
	_, err = e.pushErr(dev, change(e.household(e.g2.ID, "never mine")))
	wantErr(t, err, "a device enrolled after a grid was taken registers a household there", syncengine.ErrOutOfScope)
}

// testBootstrap: pages of whole households, resumable, in scope.
func testBootstrap(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := e.ctx
	w, dev := e.worker("A", e.g1.ID, e.g2.ID)
	_, devB := e.worker("B", e.g3.ID)

	var g1IDs, g2IDs []string
	var changes []syncengine.Change
	var first whole
	for i := range 5 {
		h := e.household(e.g1.ID, fmt.Sprint("g1 house ", i))
		p := e.person(h.ID, "resident")
		changes = append(changes, change(h), change(p))
		g1IDs = append(g1IDs, h.ID)
		if i == 0 {
			first = whole{h: h, p: p, t: e.tag(h.ID, "elderly"), v: e.visit(w.ID, h.ID)}
			changes = append(changes, change(first.t), change(first.v))
		}
	}
	for i := range 2 {
		h := e.household(e.g2.ID, fmt.Sprint("g2 house ", i))
		changes = append(changes, change(h), change(e.person(h.ID, "resident")))
		g2IDs = append(g2IDs, h.ID)
	}
	e.push(dev, changes...)
	xB := e.register(devB, e.g3.ID)
	before := e.pull(dev, 0).Cursor

	pages, err := e.bootstrap(dev, store.BootstrapRequest{GridIDs: []string{e.g1.ID}, PageSize: 2})
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	if len(pages) < 3 {
		t.Fatalf("Bootstrap of 5 households in pages of 2 sent %d pages", len(pages))
	}
	p0 := pages[0]
	if p0.TotalHouseholds != 5 {
		t.Errorf("first page: TotalHouseholds = %d; want 5", p0.TotalHouseholds)
	}
	if p0.Cursor == 0 || p0.Cursor < before {
		t.Errorf("first page: Cursor = %d; want the feed position, at least %d", p0.Cursor, before)
	}
	if p0.Scope.Worker.ID != w.ID {
		t.Errorf("first page: scope of worker %q; want %s", p0.Scope.Worker.ID, w.ID)
	}
	sameSet(t, "Bootstrap(g1) households", checkPages(t, pages, 2), g1IDs)
	first.hasWhole(t, "Bootstrap(g1)", collect(pages))

	rest, err := e.bootstrap(dev, store.BootstrapRequest{GridIDs: []string{e.g1.ID}, PageSize: 2, AfterHouseholdID: p0.LastHouseholdID})
	if err != nil {
		t.Fatalf("Bootstrap resumed: %v", err)
	}
	got := checkPages(t, rest, 2)
	hasNone(t, "resumed bootstrap overlaps the first page", got, householdIDs(p0.Rows)...)
	sameSet(t, "first page and resumed bootstrap", append(got, householdIDs(p0.Rows)...), g1IDs)

	all, err := e.bootstrap(dev, store.BootstrapRequest{})
	if err != nil {
		t.Fatalf("Bootstrap of every grid: %v", err)
	}
	if len(all) == 0 {
		t.Fatalf("Bootstrap of every grid sent no page")
	}
	if all[0].TotalHouseholds != 7 {
		t.Errorf("Bootstrap of every grid: TotalHouseholds = %d; want 7", all[0].TotalHouseholds)
	}
	sameSet(t, "Bootstrap of every grid (default page size)", checkPages(t, all, store.DefaultBootstrapPage), append(slices.Clone(g1IDs), g2IDs...))
	hasNone(t, "Bootstrap of every grid", householdIDs(collect(all)), xB.h.ID)

	// The feed from the bootstrap's cursor has no gap and no repeat.
	wantNothing(t, "pull from the bootstrap's cursor", e.pull(dev, p0.Cursor))
	e.push(dev, change(e.edit(g1IDs[0], "after the bootstrap")))
	sameSet(t, "pull from the bootstrap's cursor after an edit", householdIDs(e.pull(dev, p0.Cursor).Rows), []string{g1IDs[0]})

	// A failed send ends the bootstrap with its error.
	errGone := errors.New("client gone")
	sent := 0
	err = e.s.Bootstrap(ctx, dev, store.BootstrapRequest{PageSize: 1}, func(*store.BootstrapPage) error {
		sent++
		return errGone
	})
	if !errors.Is(err, errGone) || sent != 1 {
		t.Errorf("Bootstrap with a failing send = %v after %d pages; want the send's error after 1 page", err, sent)
	}
}

// testBootstrapEmptyScope: with nothing to send, a bootstrap still sends one
// page carrying the cursor.
func testBootstrapEmptyScope(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	_, devA := e.worker("A", e.g1.ID)
	e.register(devA, e.g1.ID)
	_, noGrids := e.worker("no grids")
	_, emptyGrid := e.worker("empty grid", e.g2.ID)
	head := e.pull(devA, 0).Cursor

	for _, c := range []struct {
		name string
		dev  store.Principal
	}{{"a worker with no grids", noGrids}, {"a worker with an empty grid", emptyGrid}} {
		pages, err := e.bootstrap(c.dev, store.BootstrapRequest{})
		if err != nil {
			t.Errorf("Bootstrap for %s: %v", c.name, err)
			continue
		}
		if len(pages) != 1 {
			t.Errorf("Bootstrap for %s sent %d pages; want 1", c.name, len(pages))
			continue
		}
		p := pages[0]
		if p.Cursor < head || p.Cursor == 0 || p.Rows.Rows() != 0 || p.TotalHouseholds != 0 || p.LastHouseholdID != "" {
			t.Errorf("Bootstrap for %s sent %+v; want an empty page with cursor at least %d", c.name, p, head)
		}
		wantNothing(t, "pull from the cursor for "+c.name, e.pull(c.dev, p.Cursor))
	}
}

// testImport: an admin imports rows into its subtree, all or nothing; they
// reach the grid's devices through the feed.
func testImport(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := e.ctx
	sa := e.admin(e.s1.ID)
	w, dev := e.worker("A", e.g1.ID)
	cursor := e.pull(dev, 0).Cursor

	x := whole{h: e.household(e.g1.ID, "imported")}
	x.p, x.t, x.v = e.person(x.h.ID, "resident"), e.tag(x.h.ID, "elderly"), e.visit(w.ID, x.h.ID)
	if err := e.s.Import(ctx, sa, x.bundle()); err != nil {
		t.Fatalf("Import into the admin's subtree: %v", err)
	}
	b := e.pull(dev, cursor)
	x.hasWhole(t, "pull after Import", b.Rows)
	if h, _ := findHousehold(b.Rows, x.h.ID); h.HeadName != x.h.HeadName || h.GridID != x.h.GridID {
		t.Errorf("imported household is %+v; want head %v in grid %v", h, x.h.HeadName, x.h.GridID)
	}
	cursor = b.Cursor
	if err := e.s.Import(ctx, sa, x.bundle()); err != nil {
		t.Errorf("Import of the same rows again: %v", err)
	}

	outside := whole{h: e.household(e.g3.ID, "outside")}
	outside.p, outside.t = e.person(outside.h.ID, "resident"), e.tag(outside.h.ID, "elderly")
	err := e.s.Import(ctx, sa, syncengine.Bundle{Households: []syncengine.Household{*outside.h}})
	wantErr(t, err, "Import into another street", syncengine.ErrOutOfScope)

	ok := e.household(e.g1.ID, "must not land")
	err = e.s.Import(ctx, sa, syncengine.Bundle{Households: []syncengine.Household{*ok, *outside.h}})
	wantErr(t, err, "Import partly into another street", syncengine.ErrOutOfScope)
	if err := e.s.Import(ctx, e.root, syncengine.Bundle{Households: []syncengine.Household{*outside.h}}); err != nil {
		t.Fatalf("installation-wide Import: %v", err)
	}
	err = e.s.Import(ctx, sa, syncengine.Bundle{Persons: []syncengine.Person{*outside.p}})
	wantErr(t, err, "Import of a person of another street's household", syncengine.ErrOutOfScope)
	err = e.s.Import(ctx, sa, syncengine.Bundle{Tags: []syncengine.TagElement{*outside.t}})
	wantErr(t, err, "Import of a tag of another street's household", syncengine.ErrOutOfScope)
	err = e.s.Import(ctx, sa, syncengine.Bundle{Persons: []syncengine.Person{*e.person(newID(), "nobody")}})
	wantErr(t, err, "Import of a person of an unknown household", syncengine.ErrNotFound)
	move := syncengine.Household{ID: x.h.ID, GridID: syncengine.NewRegister(e.g2.ID, e.clk.next())}
	err = e.s.Import(ctx, sa, syncengine.Bundle{Households: []syncengine.Household{move}})
	wantErr(t, err, "Import moving a household", syncengine.ErrInvalid, syncengine.ErrOutOfScope)

	b = e.pull(dev, cursor)
	hasNone(t, "pull after refused imports", householdIDs(b.Rows), ok.ID, outside.h.ID)
	if len(b.EvictedHouseholds) != 0 {
		t.Errorf("refused imports evicted %v", b.EvictedHouseholds)
	}
	if h, found := findHousehold(e.pull(dev, 0).Rows, x.h.ID); !found || h.GridID.Value != e.g1.ID {
		t.Errorf("after refused imports the household is %+v (found %v); want it in grid %s", h, found, e.g1.ID)
	}
}

// testConcurrentPushPull: devices push while another pulls in small
// batches; the puller ends with every row. A cursor that skipped a sequence
// number committed late would lose rows here.
func testConcurrentPushPull(t *testing.T, newStore NewStore) {
	e := newEnv(t, newStore)
	ctx := e.ctx
	w, reader := e.worker("A", e.g1.ID)
	const writers, perWriter = 3, 6
	var want []string
	batches := make([][]*syncengine.Household, writers)
	devs := make([]store.Principal, writers)
	for i := range writers {
		devs[i] = e.device(w.ID)
		for j := range perWriter {
			h := e.household(e.g1.ID, fmt.Sprintf("writer %d house %d", i, j))
			batches[i] = append(batches[i], h)
			want = append(want, h.ID)
		}
	}

	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			for _, h := range batches[i] {
				if _, err := e.s.Push(ctx, devs[i], 0, []syncengine.Change{change(h)}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	var cursor uint64
	seen := map[string]bool{}
	pullAll := func() {
		t.Helper()
		for range 1000 {
			b, err := e.s.Pull(ctx, reader, cursor, 3)
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			if b.Cursor < cursor {
				t.Fatalf("Pull from %d returned cursor %d", cursor, b.Cursor)
			}
			for _, id := range householdIDs(b.Rows) {
				seen[id] = true
			}
			cursor = b.Cursor
			if !b.More {
				return
			}
		}
		t.Fatalf("Pull still has More after 1000 batches")
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			pullAll()
		}
	}
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Push: %v", err)
	}
	pullAll()
	sameSet(t, "households the puller saw", mapKeys(seen), want)
}

// env is one test's store with an installation-wide admin and a small tree:
// district d1 with street s1 (community c1: grids g1, g2) and street s2
// (community c2: grid g3).
type env struct {
	t    *testing.T
	ctx  context.Context
	s    store.Store
	clk  *clockSource
	root store.Principal

	d1, s1, s2, c1, c2, g1, g2, g3 store.OrgNode
}

func newEnv(t *testing.T, newStore NewStore) *env {
	t.Helper()
	return newEnvWith(t, newStore, Options{})
}

// newEnvWith is newEnv over a store opened with o.
func newEnvWith(t *testing.T, newStore NewStore, o Options) *env {
	t.Helper()
	e := &env{t: t, ctx: t.Context(), s: newStore(t, o), clk: newClockSource()}
	var err error
	if e.root, _, err = e.s.CreateAdmin(e.ctx, "root", ""); err != nil {
		t.Fatalf("CreateAdmin: %v", err)
	}
	// The categories the tests tag households with: pushes of others are refused.
	for _, code := range []string{"elderly", "disabled", "vulnerable", "key_person"} {
		c := syncengine.Category{Code: code, NameEN: syncengine.NewRegister(code, e.clk.next())}
		if _, _, err := e.s.PutCategory(e.ctx, e.root, c, false); err != nil {
			t.Fatalf("PutCategory(%s): %v", code, err)
		}
	}
	e.d1 = e.node(e.root, "", store.LevelDistrict, "D1")
	e.s1 = e.node(e.root, e.d1.ID, store.LevelStreet, "S1")
	e.s2 = e.node(e.root, e.d1.ID, store.LevelStreet, "S2")
	e.c1 = e.node(e.root, e.s1.ID, store.LevelCommunity, "C1")
	e.c2 = e.node(e.root, e.s2.ID, store.LevelCommunity, "C2")
	e.g1 = e.node(e.root, e.c1.ID, store.LevelGrid, "G1")
	e.g2 = e.node(e.root, e.c1.ID, store.LevelGrid, "G2")
	e.g3 = e.node(e.root, e.c2.ID, store.LevelGrid, "G3")
	return e
}

func (e *env) node(p store.Principal, parent string, level store.OrgLevel, name string) store.OrgNode {
	e.t.Helper()
	n, err := e.s.CreateOrgNode(e.ctx, p, store.OrgNode{ParentID: parent, Level: level, Name: name})
	if err != nil {
		e.t.Fatalf("CreateOrgNode(%s %q under %q): %v", level, name, parent, err)
	}
	// Node ids are written into households (GridID), which must be UUIDs.
	if !syncengine.IsID(n.ID) || n.ParentID != parent || n.Level != level || n.Name != name {
		e.t.Fatalf("CreateOrgNode(%s %q under %q) = %+v", level, name, parent, n)
	}
	return n
}

// admin creates an admin over node's subtree.
func (e *env) admin(node string) store.Principal {
	e.t.Helper()
	p, _, err := e.s.CreateAdmin(e.ctx, "admin of "+node, node)
	if err != nil {
		e.t.Fatalf("CreateAdmin(%s): %v", node, err)
	}
	return p
}

// worker creates a worker with grids and enrols a device for them.
func (e *env) worker(name string, grids ...string) (store.Worker, store.Principal) {
	e.t.Helper()
	w, err := e.s.CreateWorker(e.ctx, e.root, store.Worker{Name: name, Role: 1, GridIDs: grids})
	if err != nil {
		e.t.Fatalf("CreateWorker(%s): %v", name, err)
	}
	return w, e.device(w.ID)
}

func (e *env) code(workerID string, expires time.Time) string {
	e.t.Helper()
	code, err := e.s.CreateEnrollmentCode(e.ctx, e.root, workerID, expires)
	if err != nil {
		e.t.Fatalf("CreateEnrollmentCode: %v", err)
	}
	if code == "" {
		e.t.Fatalf("CreateEnrollmentCode returned an empty code")
	}
	return code
}

// device enrols a new device of a worker and returns its principal.
func (e *env) device(workerID string) store.Principal {
	e.t.Helper()
	en, err := e.s.Enroll(e.ctx, e.code(workerID, time.Now().Add(time.Hour)), "phone", time.Now())
	if err != nil {
		e.t.Fatalf("Enroll: %v", err)
	}
	p, err := e.s.Authenticate(e.ctx, en.Token)
	if err != nil {
		e.t.Fatalf("Authenticate(device token): %v", err)
	}
	if p.Kind != store.KindWorker || p.ID != workerID {
		e.t.Fatalf("device token authenticates as %+v; want worker %s", p, workerID)
	}
	return p
}

// pushErr pushes changes the suite made sure are valid (Store.Push expects
// its caller to have validated them).
func (e *env) pushErr(p store.Principal, changes ...syncengine.Change) (store.PushResult, error) {
	e.t.Helper()
	for i := range changes {
		if err := changes[i].Validate(); err != nil {
			e.t.Fatalf("the suite built an invalid change: %v", err)
		}
	}
	return e.s.Push(e.ctx, p, 0, changes)
}

func (e *env) push(p store.Principal, changes ...syncengine.Change) store.PushResult {
	e.t.Helper()
	res, err := e.pushErr(p, changes...)
	if err != nil {
		e.t.Fatalf("Push: %v", err)
	}
	return res
}

// pull pulls one batch; the suite's data always fits one.
func (e *env) pull(p store.Principal, cursor uint64) *store.PullBatch {
	e.t.Helper()
	b, err := e.s.Pull(e.ctx, p, cursor, store.MaxPullLimit)
	if err != nil {
		e.t.Fatalf("Pull from %d: %v", cursor, err)
	}
	if b.More {
		e.t.Fatalf("Pull from %d has More, yet the suite's data fits one batch", cursor)
	}
	if b.Cursor < cursor {
		e.t.Errorf("Pull from %d returned cursor %d: a cursor never goes back", cursor, b.Cursor)
	}
	return b
}

func (e *env) bootstrap(p store.Principal, req store.BootstrapRequest) ([]*store.BootstrapPage, error) {
	var pages []*store.BootstrapPage
	err := e.s.Bootstrap(e.ctx, p, req, func(pg *store.BootstrapPage) error {
		cp := *pg
		pages = append(pages, &cp)
		return nil
	})
	return pages, err
}

// move moves a household as p, with a clock newer than the household's.
func (e *env) move(p store.Principal, householdID, grid string) syncengine.Household {
	e.t.Helper()
	h, err := e.s.MoveHousehold(e.ctx, p, householdID, grid, nextClock)
	if err != nil {
		e.t.Fatalf("MoveHousehold(%s to %s): %v", householdID, grid, err)
	}
	return h
}

func nextClock(observed syncengine.Clock) syncengine.Clock {
	return syncengine.Clock{HLC: observed.HLC + 1, Node: 1}
}

// whole is a household with one person, tag and visit.
type whole struct {
	h *syncengine.Household
	p *syncengine.Person
	t *syncengine.TagElement
	v *syncengine.Visit
}

// register registers a household in grid with a person, a tag and a visit,
// pushed by the worker's device.
func (e *env) register(dev store.Principal, grid string) whole {
	e.t.Helper()
	x := whole{h: e.household(grid, "head of household")}
	x.p = e.person(x.h.ID, "resident")
	x.t = e.tag(x.h.ID, "elderly")
	x.v = e.visit(dev.ID, x.h.ID)
	e.push(dev, change(x.h), change(x.p), change(x.t), change(x.v))
	return x
}

func (x whole) bundle() syncengine.Bundle {
	return syncengine.Bundle{
		Households: []syncengine.Household{*x.h},
		Persons:    []syncengine.Person{*x.p},
		Tags:       []syncengine.TagElement{*x.t},
		Visits:     []syncengine.Visit{*x.v},
	}
}

// hasWhole checks that b holds the household with its person, tag and visit.
func (x whole) hasWhole(tb testing.TB, what string, b syncengine.Bundle) {
	tb.Helper()
	hasAll(tb, what+": households", householdIDs(b), x.h.ID)
	hasAll(tb, what+": persons", personIDs(b), x.p.ID)
	if x.t != nil {
		hasAll(tb, what+": tags", tagIDs(b), x.t.AddID)
	}
	if x.v != nil {
		hasAll(tb, what+": visits", visitIDs(b), x.v.ID)
	}
}

// Row builders. Each write takes the next clock of the test.

func (e *env) household(grid, head string) *syncengine.Household {
	c := e.clk.next()
	return &syncengine.Household{ID: newID(), GridID: syncengine.NewRegister(grid, c), HeadName: syncengine.NewRegister(head, c)}
}

// edit is a delta setting a household's notes.
func (e *env) edit(householdID, notes string) *syncengine.Household {
	return &syncengine.Household{ID: householdID, Notes: syncengine.NewRegister(notes, e.clk.next())}
}

func (e *env) person(householdID, name string) *syncengine.Person {
	return &syncengine.Person{ID: newID(), HouseholdID: householdID, Name: syncengine.NewRegister(name, e.clk.next())}
}

func (e *env) tag(householdID, category string) *syncengine.TagElement {
	return &syncengine.TagElement{AddID: newID(), HouseholdID: householdID, Category: category, Clock: e.clk.next()}
}

// visit is a visit by visitor: in person to one household, a talk to several.
func (e *env) visit(visitor string, households ...string) *syncengine.Visit {
	form := syncengine.FormInPerson
	if len(households) > 1 {
		form = syncengine.FormTalk
	}
	return &syncengine.Visit{
		ID:           newID(),
		HouseholdIDs: households,
		VisitorID:    visitor,
		VisitedAt:    time.Now().UTC().Truncate(time.Millisecond),
		Form:         form,
		Notes:        "visited",
		Clock:        e.clk.next(),
	}
}

func (e *env) amendment(visitID, author string) *syncengine.Amendment {
	return &syncengine.Amendment{ID: newID(), VisitID: visitID, AuthorID: author, Kind: syncengine.AmendVoid, Reason: "entered twice", Clock: e.clk.next()}
}

// change wraps one row delta in a change with a new id.
func change(payload any) syncengine.Change {
	c := syncengine.Change{ID: newID()}
	switch p := payload.(type) {
	case *syncengine.Household:
		c.Household = p
	case *syncengine.Person:
		c.Person = p
	case *syncengine.TagElement:
		c.Tag = p
	case *syncengine.Visit:
		c.Visit = p
	case *syncengine.Amendment:
		c.Amendment = p
	default:
		panic(fmt.Sprintf("storetest: no change carries a %T", payload))
	}
	return c
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// clockSource issues one test's clocks, each newer than the one before.
type clockSource struct {
	mu   sync.Mutex
	base int64
	n    uint16
}

func newClockSource() *clockSource { return &clockSource{base: time.Now().UnixMilli()} }

func (c *clockSource) next() syncengine.Clock {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.n == 0 {
		panic("storetest: a test used more than 65535 clocks")
	}
	return syncengine.Clock{HLC: syncengine.PackHLC(c.base, c.n), Node: 7}
}

// Assertions.

func wantErr(tb testing.TB, err error, what string, targets ...error) {
	tb.Helper()
	for _, target := range targets {
		if errors.Is(err, target) {
			return
		}
	}
	if len(targets) == 1 {
		tb.Errorf("%s: got error %v; want %v", what, err, targets[0])
	} else {
		tb.Errorf("%s: got error %v; want one of %v", what, err, targets)
	}
}

// wantNothing checks that a batch brings nothing new.
func wantNothing(tb testing.TB, what string, b *store.PullBatch) {
	tb.Helper()
	if b.Rows.Rows() != 0 || len(b.EvictedHouseholds) != 0 || len(b.EvictedGrids) != 0 || len(b.AddedGrids) != 0 {
		tb.Errorf("%s: got %d rows, evicted households %v, evicted grids %v, added grids %v; want nothing new",
			what, b.Rows.Rows(), b.EvictedHouseholds, b.EvictedGrids, b.AddedGrids)
	}
}

func checkScope(tb testing.TB, what string, sc store.Scope, workerID string, grid store.OrgNode) {
	tb.Helper()
	if sc.Worker.ID != workerID {
		tb.Errorf("%s: scope of worker %q; want %s", what, sc.Worker.ID, workerID)
	}
	sameSet(tb, what+": worker grids", sc.Worker.GridIDs, []string{grid.ID})
	if len(sc.Grids) != 1 || sc.Grids[0] != grid {
		tb.Errorf("%s: scope grids %+v; want [%+v]", what, sc.Grids, grid)
	}
}

// checkPages checks bootstrap pages — none empty or larger than size, each
// naming its greatest household as LastHouseholdID, households whole within
// their page and never sent twice — and returns their households.
func checkPages(tb testing.TB, pages []*store.BootstrapPage, size int) []string {
	tb.Helper()
	var all []string
	for i, p := range pages {
		ids := householdIDs(p.Rows)
		if len(ids) == 0 || len(ids) > size {
			tb.Errorf("page %d has %d households; want 1 to %d", i, len(ids), size)
			continue
		}
		if p.LastHouseholdID != ids[len(ids)-1] {
			tb.Errorf("page %d: LastHouseholdID = %q; want its greatest household %q", i, p.LastHouseholdID, ids[len(ids)-1])
		}
		hasNone(tb, fmt.Sprintf("page %d repeats households", i), all, ids...)
		all = append(all, ids...)
		// Every household here has persons; they come with it.
		var owners []string
		for _, r := range p.Rows.Persons {
			owners = append(owners, r.HouseholdID)
		}
		for _, r := range p.Rows.Tags {
			owners = append(owners, r.HouseholdID)
		}
		sameSet(tb, fmt.Sprintf("page %d: households of its persons and tags", i), owners, ids)
		for _, v := range p.Rows.Visits {
			if !slices.ContainsFunc(v.HouseholdIDs, func(h string) bool { return slices.Contains(ids, h) }) {
				tb.Errorf("page %d carries visit %s of households %v, none on the page", i, v.ID, v.HouseholdIDs)
			}
		}
	}
	return all
}

func collect(pages []*store.BootstrapPage) syncengine.Bundle {
	var b syncengine.Bundle
	for _, p := range pages {
		b.Households = append(b.Households, p.Rows.Households...)
		b.Persons = append(b.Persons, p.Rows.Persons...)
		b.Tags = append(b.Tags, p.Rows.Tags...)
		b.Visits = append(b.Visits, p.Rows.Visits...)
		b.Amendments = append(b.Amendments, p.Rows.Amendments...)
	}
	return b
}

func parentsFirst(tb testing.TB, nodes []store.OrgNode) {
	tb.Helper()
	listed := map[string]bool{}
	for _, n := range nodes {
		listed[n.ID] = true
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		if listed[n.ParentID] && !seen[n.ParentID] {
			tb.Errorf("ListOrgNodes lists %s %q before its parent %s", n.Level, n.Name, n.ParentID)
		}
		seen[n.ID] = true
	}
}

func findHousehold(b syncengine.Bundle, id string) (syncengine.Household, bool) {
	for _, h := range b.Households {
		if h.ID == id {
			return h, true
		}
	}
	return syncengine.Household{}, false
}

// sameSet checks that got and want hold the same strings, ignoring order and
// repeats.
func sameSet(tb testing.TB, what string, got, want []string) {
	tb.Helper()
	g, w := set(got), set(want)
	if !slices.Equal(g, w) {
		tb.Errorf("%s: got %v; want %v", what, g, w)
	}
}

func hasAll(tb testing.TB, what string, got []string, want ...string) {
	tb.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			tb.Errorf("%s: %v lacks %s", what, got, w)
		}
	}
}

func hasNone(tb testing.TB, what string, got []string, unwanted ...string) {
	tb.Helper()
	for _, u := range unwanted {
		if slices.Contains(got, u) {
			tb.Errorf("%s: %v holds %s", what, got, u)
		}
	}
}

func set(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}

func idsOf[T any](rows []T, id func(T) string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = id(r)
	}
	return set(out)
}

func householdIDs(b syncengine.Bundle) []string {
	return idsOf(b.Households, func(h syncengine.Household) string { return h.ID })
}

func personIDs(b syncengine.Bundle) []string {
	return idsOf(b.Persons, func(p syncengine.Person) string { return p.ID })
}

func tagIDs(b syncengine.Bundle) []string {
	return idsOf(b.Tags, func(t syncengine.TagElement) string { return t.AddID })
}

func visitIDs(b syncengine.Bundle) []string {
	return idsOf(b.Visits, func(v syncengine.Visit) string { return v.ID })
}

func amendmentIDs(b syncengine.Bundle) []string {
	return idsOf(b.Amendments, func(a syncengine.Amendment) string { return a.ID })
}

func nodeIDs(nodes []store.OrgNode) []string {
	return idsOf(nodes, func(n store.OrgNode) string { return n.ID })
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return set(out)
}
