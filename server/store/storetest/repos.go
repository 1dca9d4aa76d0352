package storetest

// RunRepos: the repository-level conformance suite. Run holds a backend to
// store.Store through the rules of server/service; RunRepos holds it to
// store.Backend and store.Tx directly, method by method, to what each doc
// comment promises, so that a backend (SQLite now, PostgreSQL next) that
// breaks a promise the rules happen not to lean on today is still caught.

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// BackendOptions are what a test asks of the backend it opens; zero values
// are the backend's defaults.
type BackendOptions struct {
	// Now is the server's clock, which commits are stamped with (the
	// backend's default is time.Now).
	Now func() time.Time
}

// OpenBackend opens an empty backend for one test, as o asks, and closes
// it when the test ends (t.Cleanup). The suite may close it before: Close
// must be safe to call twice.
type OpenBackend func(t *testing.T, o BackendOptions) store.Backend

// RunRepos runs the repository suite over the backends open opens, each
// subtest on its own: every method of store.Tx and store.Backend is
// called and held to its doc comment. Once every subtest has run, it
// fails if one of those methods was never called (a method added to the
// contract without a check here):
//
//	func TestRepos(t *testing.T) {
//		storetest.RunRepos(t, func(t *testing.T, o storetest.BackendOptions) store.Backend { ... })
//	}
func RunRepos(t *testing.T, open OpenBackend) {
	u := &usage{called: map[string]bool{}}
	tests := []struct {
		name string
		fn   func(*testing.T, func(BackendOptions) *repoEnv)
	}{
		{"Transactions", testReposTransactions},
		{"Feed", testReposFeed},
		{"Rows", testReposRows},
		{"Scopes", testReposScopes},
		{"Erasures", testReposErasures},
		{"Org", testReposOrg},
		{"Auth", testReposAuth},
		{"Reports", testReposReports},
		{"Collect", testReposCollect},
		{"Files", testReposFiles},
		{"Placed", testReposPlaced},
		{"Zero", testReposZero},
		{"Ranking", testReposRanking},
	}
	var started atomic.Int32
	// Cleanup runs once every subtest, parallel ones included, is done.
	t.Cleanup(func() { u.check(t, int(started.Load()) == len(tests)) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			started.Add(1)
			tt.fn(t, func(o BackendOptions) *repoEnv {
				t.Helper()
				return &repoEnv{t: t, ctx: t.Context(), db: &recordingBackend{Backend: open(t, o), u: u}, hlc: newClockSource()}
			})
		})
	}
}

// errRollback is what a test's fn returns to roll its Update back.
var errRollback = errors.New("storetest: roll back")

// testReposTransactions: Update commits fn's writes or, when fn fails,
// none of them and returns its error; View reads one snapshot, and writes
// nothing.
func testReposTransactions(t *testing.T, newEnv func(BackendOptions) *repoEnv) {
	e := newEnv(BackendOptions{})
	ctx := e.ctx
	kept, dropped, later, viewed := e.household(newID()), e.household(newID()), e.household(newID()), e.household(newID())

	top := e.commit("an Update that writes a household and a feed entry", 1, func(tx store.Tx) error {
		return errors.Join(tx.PutHousehold(ctx, kept), tx.Touch(ctx, store.EntityHousehold, kept.ID, kept.ID, ""))
	})
	err := e.db.Update(ctx, func(tx store.Tx) error {
		if err := errors.Join(tx.PutHousehold(ctx, dropped), tx.Touch(ctx, store.EntityHousehold, dropped.ID, dropped.ID, "")); err != nil {
			return err
		}
		return errRollback
	})
	wantErr(t, err, "Update whose fn fails", errRollback)
	if h := e.head(); h != top {
		t.Errorf("Head after a rolled-back Update = %d; want %d, as before it", h, top)
	}
	e.wantHouseholds("after a committed and a rolled-back Update", []string{kept.ID, dropped.ID}, kept)

	// A View is one snapshot: a write that commits while it is open is
	// not seen in it.
	done := make(chan error, 1)
	waited := false // the Update beside the View ended inside it
	e.view("View open while an Update commits", func(tx store.Tx) error {
		before, err := tx.Head(ctx)
		if err != nil {
			return err
		}
		if _, ok, err := tx.Household(ctx, later.ID); err != nil || ok {
			return fmt.Errorf("Household(not yet written) = %v, %v", ok, err)
		}
		go func() {
			done <- e.db.Update(ctx, func(tx store.Tx) error {
				return errors.Join(tx.PutHousehold(ctx, later), tx.Touch(ctx, store.EntityHousehold, later.ID, later.ID, ""))
			})
		}()
		select {
		case err := <-done:
			waited = true
			if err != nil {
				return fmt.Errorf("Update beside an open View: %w", err)
			}
		case <-time.After(10 * time.Second):
			// The contract lets a writer wait for readers: nothing to
			// check then (the Update commits once the View ends).
			t.Log("an Update waits for an open View; the snapshot is not checked")
			return nil
		}
		after, err := tx.Head(ctx)
		if err != nil {
			return err
		}
		if after != before {
			t.Errorf("Head inside a View went from %d to %d as an Update committed beside it; want one snapshot", before, after)
		}
		if _, ok, err := tx.Household(ctx, later.ID); err != nil || ok {
			t.Errorf("inside a View, Household(written by an Update that committed after the View began) = %v, %v; want not found", ok, err)
		}
		return nil
	})
	if !waited {
		// It waited for the View: it commits now the View has ended.
		if err := <-done; err != nil {
			t.Fatalf("Update beside an open View: %v", err)
		}
	}
	if h := e.head(); h != top+1 {
		t.Errorf("Head after the Update beside the View = %d; want %d", h, top+1)
	}
	e.wantHouseholds("after the Update beside the View", []string{later.ID}, later)

	// A View is a read transaction: whatever a write in it does, nothing
	// is left written.
	werr := e.db.View(ctx, func(tx store.Tx) error { return tx.PutHousehold(ctx, viewed) })
	t.Logf("View(PutHousehold) = %v", werr)
	e.wantHouseholds("after a View that wrote", []string{viewed.ID})
	// Writes that take a feed position fail there, rather than number
	// nothing (or crash).
	head := e.head()
	for name, write := range map[string]func(tx store.Tx) error{
		"Touch": func(tx store.Tx) error { return tx.Touch(ctx, store.EntityHousehold, viewed.ID, viewed.ID, "") },
		"RecordApplied": func(tx store.Tx) error {
			return tx.RecordApplied(ctx, newID(), store.AppliedChange{CredentialID: newID()})
		},
	} {
		if err := e.db.View(ctx, write); err == nil {
			t.Errorf("View(%s) = nil; want an error: a read transaction takes no feed position", name)
		}
	}
	if got := e.head(); got != head {
		t.Errorf("Head after writes in Views = %d; want %d", got, head)
	}
}

// testReposFeed: positions (Head grows by one per position-taking write
// of a committed Update, not at all for a rolled-back one), cursors,
// PositionBefore on the backend's clock, Touch and Entries against a
// model of the feed, applied changes, and known cursors.
func testReposFeed(t *testing.T, newEnv func(BackendOptions) *repoEnv) {
	clk := &fakeClock{t: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	e := newEnv(BackendOptions{Now: clk.Now})
	ctx := e.ctx
	if got := e.positionBefore(clk.Now().Add(time.Hour)); got != 0 {
		t.Errorf("PositionBefore on a new backend = %d; want 0", got)
	}
	tr := e.tree()
	w := e.worker("Li Na", tr.s1.ID)
	g1, g2 := tr.g1.ID, tr.g2.ID
	h1, h2, h3 := e.household(g1), e.household(g2), e.household(g1)
	e.commit("an Update that writes rows and no feed entry", 0, func(tx store.Tx) error {
		return errors.Join(tx.PutHousehold(ctx, h1), tx.PutHousehold(ctx, h2), tx.PutHousehold(ctx, h3))
	})
	m := &feedModel{grid: map[string]string{h1.ID: g1, h2.ID: g2, h3.ID: g1}}

	// Each write that takes a position, in an Update of its own: the head
	// moves by one, and the commit is stamped with the server's clock.
	type stamp struct {
		at   time.Time
		last uint64
	}
	var stamps []stamp
	tagID := newID()
	cat := e.category("elderly")
	camp := e.campaign(tr.d.ID, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
	ops := []struct {
		name string
		fn   func(tx store.Tx) error
	}{
		{"Touch", func(tx store.Tx) error { return tx.Touch(ctx, store.EntityTag, tagID, h1.ID, "") }},
		{"AddWorkerGrid", func(tx store.Tx) error { return tx.AddWorkerGrid(ctx, w.ID, g1) }},
		{"RemoveWorkerGrid", func(tx store.Tx) error { return tx.RemoveWorkerGrid(ctx, w.ID, g1) }},
		{"RecordMove", func(tx store.Tx) error { return tx.RecordMove(ctx, h2.ID, g1, g2) }},
		{"PutCategory", func(tx store.Tx) error { return tx.PutCategory(ctx, cat) }},
		{"PutCampaign", func(tx store.Tx) error { return tx.PutCampaign(ctx, camp) }},
	}
	for _, op := range ops {
		clk.Advance(time.Minute)
		before := e.head()
		last := e.commit(op.name+" in an Update of its own", 1, op.fn)
		stamps = append(stamps, stamp{clk.Now(), last})
		if op.name == "Touch" {
			m.commit(before, []store.FeedEntry{{Kind: store.EntityTag, EntityID: tagID, Household: h1.ID}})
		}
	}
	clk.Advance(time.Hour) // later commits are stamped well after the last op's

	// The same writes in an Update that fails: no position is taken and
	// none of them is left.
	top := e.head()
	ghost := newID()
	catB := e.category("disabled")
	campB := e.campaign(tr.d.ID, time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	err := e.db.Update(ctx, func(tx store.Tx) error {
		if err := errors.Join(tx.Touch(ctx, store.EntityPerson, ghost, h3.ID, ""), tx.AddWorkerGrid(ctx, w.ID, g2),
			tx.RecordMove(ctx, h3.ID, g1, g2), tx.PutCategory(ctx, catB), tx.PutCampaign(ctx, campB)); err != nil {
			return err
		}
		return errRollback
	})
	wantErr(t, err, "Update whose fn fails", errRollback)
	if h := e.head(); h != top {
		t.Errorf("Head after a rolled-back Update of Touch, AddWorkerGrid, RecordMove, PutCategory and PutCampaign = %d; want %d", h, top)
	}
	e.view("what a rolled-back Update wrote", func(tx store.Tx) error {
		if got, err := tx.Worker(ctx, w.ID); err != nil || len(got.GridIDs) != 0 {
			t.Errorf("Worker after a rolled-back AddWorkerGrid = %+v, %v; want no grids", got, err)
		}
		if evs, err := tx.ScopeEvents(ctx, w.ID, 0, top+10); err != nil || len(evs) != 2 {
			t.Errorf("ScopeEvents after a rolled-back AddWorkerGrid = %+v, %v; want the 2 committed ones", evs, err)
		}
		if mv, err := tx.HouseholdMoves(ctx, h3.ID, 0); err != nil || len(mv) != 0 {
			t.Errorf("HouseholdMoves after a rolled-back RecordMove = %+v, %v; want none", mv, err)
		}
		if _, ok, err := tx.Category(ctx, catB.Code); err != nil || ok {
			t.Errorf("Category after a rolled-back PutCategory = %v, %v; want not found", ok, err)
		}
		if _, ok, err := tx.Campaign(ctx, campB.ID); err != nil || ok {
			t.Errorf("Campaign after a rolled-back PutCampaign = %v, %v; want not found", ok, err)
		}
		return nil
	})

	// Touches take positions in order, one each.
	person := newID()
	touch := func(what string, entries ...store.FeedEntry) {
		t.Helper()
		before := e.head()
		e.commit(what, uint64(len(entries)), func(tx store.Tx) error {
			var errs []error
			for _, en := range entries {
				errs = append(errs, tx.Touch(ctx, en.Kind, en.EntityID, en.Household, en.Origin))
			}
			return errors.Join(errs...)
		})
		m.commit(before, entries)
	}
	touch("two Touches in one Update",
		store.FeedEntry{Kind: store.EntityHousehold, EntityID: h1.ID, Household: h1.ID},
		store.FeedEntry{Kind: store.EntityPerson, EntityID: person, Household: h1.ID})
	devA, devB := newID(), newID()
	visit, group := newID(), newID()
	touch("Touches of visits pushed by devices",
		store.FeedEntry{Kind: store.EntityVisit, EntityID: visit, Household: h1.ID, Origin: devA},
		store.FeedEntry{Kind: store.EntityVisit, EntityID: group, Household: h1.ID, Origin: devB},
		store.FeedEntry{Kind: store.EntityVisit, EntityID: group, Household: h2.ID, Origin: devB})
	touch("Touches that move entries to the next positions",
		store.FeedEntry{Kind: store.EntityHousehold, EntityID: h3.ID, Household: h3.ID},
		store.FeedEntry{Kind: store.EntityHousehold, EntityID: h1.ID, Household: h1.ID},
		// A device's visit touched again with no origin (an erasure
		// replaced it): the entry is no longer the device's.
		store.FeedEntry{Kind: store.EntityVisit, EntityID: group, Household: h2.ID})
	e.checkEntries("Entries", m, devA, devB)

	// Entries follows households' grids now: a household's entries from
	// before its move come with it.
	moved := *h1
	moved.GridID = syncengine.NewRegister(g2, e.hlc.next())
	e.commit("PutHousehold and RecordMove (a move, no feed entry)", 1, func(tx store.Tx) error {
		return errors.Join(tx.PutHousehold(ctx, &moved), tx.RecordMove(ctx, h1.ID, g1, g2))
	})
	m.grid[h1.ID] = g2
	e.checkEntries("Entries after a household moved to another grid", m, devA, devB)

	// Far more positions than households in scope, so that a backend may
	// seek the scope's entries rather than walk the range, from cursors
	// before the move and after it.
	var many []store.FeedEntry
	for range 80 {
		many = append(many, store.FeedEntry{Kind: store.EntityPerson, EntityID: newID(), Household: h3.ID})
	}
	touch("80 Touches in one Update", many...)
	touch("one more", store.FeedEntry{Kind: store.EntityTag, EntityID: newID(), Household: h2.ID},
		store.FeedEntry{Kind: store.EntityPerson, EntityID: newID(), Household: h1.ID})
	e.checkEntries("Entries over a long feed", m, devA, devB)

	// Cursors: one per position, ordered like positions, taken back by
	// Position; a cursor the backend did not issue is stale.
	top = e.head()
	e.view("Cursor and Position", func(tx store.Tx) error {
		var prev uint64
		for p := uint64(1); p <= top; p++ {
			c, err := tx.Cursor(ctx, p)
			if err != nil {
				return fmt.Errorf("Cursor(%d): %w", p, err)
			}
			if p > 1 && c <= prev {
				t.Errorf("Cursor(%d) = %d, not after Cursor(%d) = %d: cursors order like positions", p, c, p-1, prev)
			}
			prev = c
			if got, err := tx.Position(ctx, c, top); err != nil || got != p {
				t.Errorf("Position(Cursor(%d), %d) = %d, %v; want %d", p, top, got, err, p)
			}
		}
		return nil
	})
	c := inView(e, "Cursor(Head)", func(tx store.Tx) (uint64, error) { return tx.Cursor(ctx, top) })
	err = e.db.View(ctx, func(tx store.Tx) error { _, err := tx.Position(ctx, c+1, top); return err })
	wantErr(t, err, fmt.Sprintf("Position(made-up cursor %d, %d)", c+1, top), syncengine.ErrStaleCursor)
	err = e.db.View(ctx, func(tx store.Tx) error { _, err := tx.Position(ctx, c, top-1); return err })
	wantErr(t, err, fmt.Sprintf("Position(Cursor(%d), %d): a cursor past top", top, top-1), syncengine.ErrStaleCursor)

	// PositionBefore: the last position committed strictly before t, on
	// the server's clock.
	for i, s := range stamps {
		var prev uint64
		if i > 0 {
			prev = stamps[i-1].last
		}
		if got := e.positionBefore(s.at); got != prev {
			t.Errorf("PositionBefore(the time of commit %d, ending at %d) = %d; want %d, the commit before", i, s.last, got, prev)
		}
		if got := e.positionBefore(s.at.Add(time.Millisecond)); got != s.last {
			t.Errorf("PositionBefore(just after commit %d) = %d; want its last position %d", i, got, s.last)
		}
	}
	if got := e.positionBefore(clk.Now().Add(time.Millisecond)); got != top {
		t.Errorf("PositionBefore(now) = %d; want Head %d", got, top)
	}

	// Applied changes, with their digests.
	c1, c2, c3 := newID(), newID(), newID()
	e.update("RecordApplied", func(tx store.Tx) error {
		return errors.Join(tx.RecordApplied(ctx, c1, store.AppliedChange{CredentialID: devA, Digest: "sha256:1f2e"}),
			tx.RecordApplied(ctx, c2, store.AppliedChange{CredentialID: devB}))
	})
	err = e.db.Update(ctx, func(tx store.Tx) error {
		if err := tx.RecordApplied(ctx, c3, store.AppliedChange{CredentialID: devA, Digest: "sha256:aa"}); err != nil {
			return err
		}
		return errRollback
	})
	wantErr(t, err, "Update whose fn fails", errRollback)
	applied := inView(e, "AppliedChanges", func(tx store.Tx) (map[string]store.AppliedChange, error) {
		return tx.AppliedChanges(ctx, []string{c3, c2, newID(), c1})
	})
	wantApplied := map[string]store.AppliedChange{c1: {CredentialID: devA, Digest: "sha256:1f2e"}, c2: {CredentialID: devB}}
	if !reflect.DeepEqual(applied, wantApplied) {
		t.Errorf("AppliedChanges(two recorded, one rolled back, one unknown) = %+v; want %+v", applied, wantApplied)
	}
	if got := inView(e, "AppliedChanges(none)", func(tx store.Tx) (map[string]store.AppliedChange, error) {
		return tx.AppliedChanges(ctx, nil)
	}); len(got) != 0 {
		t.Errorf("AppliedChanges(no ids) = %+v; want none", got)
	}
	if gone := inView(e, "WasCollected", func(tx store.Tx) (bool, error) { return tx.WasCollected(ctx, store.EntityTag, tagID) }); gone {
		t.Errorf("WasCollected(a tag) = true on a backend that never collected")
	}

	// Known cursors only ever rise.
	dev := e.device(w.ID, time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC), 5)
	for _, step := range []struct{ raise, want uint64 }{{0, 5}, {3, 5}, {9, 9}, {9, 9}, {4, 9}, {12, 12}} {
		if step.raise > 0 {
			e.update("RaiseKnownCursor", func(tx store.Tx) error { return tx.RaiseKnownCursor(ctx, dev.ID, step.raise) })
		}
		if got := inView(e, "KnownCursor", func(tx store.Tx) (uint64, error) { return tx.KnownCursor(ctx, dev.ID) }); got != step.want {
			t.Errorf("KnownCursor after RaiseKnownCursor(%d) = %d; want %d", step.raise, got, step.want)
		}
	}

	// A commit on a clock set back by less than store.ClockStep takes the
	// time of the commit before it, so that the last before t is the
	// last of the time index.
	commitTouch := func(what string) uint64 {
		e.update(what, func(tx store.Tx) error { return tx.Touch(ctx, store.EntityHousehold, h1.ID, h1.ID, "") })
		return inView(e, "Head", func(tx store.Tx) (uint64, error) { return tx.Head(ctx) })
	}
	clk.Advance(time.Minute)
	last := clk.Now()
	commitTouch("Touch")
	clk.Advance(-store.ClockStep / 2)
	top = commitTouch("Touch on a clock set back")
	if got := e.positionBefore(clk.Now().Add(time.Millisecond)); got == top {
		t.Errorf("PositionBefore(just after a commit on a clock set back) = %d, that commit's: want the commits before it", got)
	}
	if got := e.positionBefore(last.Add(time.Millisecond)); got != top {
		t.Errorf("PositionBefore(just after the commit before a clock set back) = %d; want %d, the commit made on it", got, top)
	}
	// One commit on a clock a year ahead holds no later commit's time:
	// the next, on a clock set right, is before now.
	clk.Advance(store.ClockStep)
	clk.Advance(365 * 24 * time.Hour)
	commitTouch("Touch on a clock a year ahead")
	clk.Advance(-365 * 24 * time.Hour)
	top = commitTouch("Touch on a clock set right again")
	if got := e.positionBefore(clk.Now().Add(time.Millisecond)); got != top {
		t.Errorf("PositionBefore(just after a commit made after one on a clock a year ahead) = %d; want %d, that commit's", got, top)
	}
}

// feedModel is what Feed.Entries should read: each entry's position, and
// each household's grid now.
type feedModel struct {
	entries []store.FeedEntry
	grid    map[string]string
}

// commit records entries touched in one Update, in order, after feed
// position before.
func (m *feedModel) commit(before uint64, touched []store.FeedEntry) {
	for i, en := range touched {
		m.entries = slices.DeleteFunc(m.entries, func(x store.FeedEntry) bool {
			return x.Kind == en.Kind && x.EntityID == en.EntityID && x.Household == en.Household
		})
		en.Seq = before + uint64(i) + 1
		m.entries = append(m.entries, en)
	}
}

func (m *feedModel) query(q store.FeedQuery) []store.FeedEntry {
	var out []store.FeedEntry
	for _, en := range m.entries {
		if en.Seq > q.After && en.Seq <= q.Upto && en.Origin != q.Origin && slices.Contains(q.Grids, m.grid[en.Household]) {
			out = append(out, en)
		}
	}
	slices.SortFunc(out, func(a, b store.FeedEntry) int { return cmp.Compare(a.Seq, b.Seq) })
	return out[:min(len(out), q.Limit)]
}

// checkEntries compares Entries with the model over ranges, grids, origins
// and limits.
func (e *repoEnv) checkEntries(what string, m *feedModel, origins ...string) {
	e.t.Helper()
	top := e.head()
	var grids [][]string
	seen := map[string]bool{}
	for _, g := range m.grid {
		if !seen[g] {
			seen[g] = true
			grids = append(grids, []string{g})
		}
	}
	all := slices.Sorted(func(yield func(string) bool) {
		for g := range seen {
			if !yield(g) {
				return
			}
		}
	})
	grids = append(grids, all, nil, []string{newID()})
	origins = append(origins, newID())
	bounds := [][2]uint64{{0, top}, {top / 3, top}, {0, top / 2}, {top / 3, 2 * top / 3}, {top - 2, top}, {top, top}, {min(10, top), top}, {max(top, 66) - 66, top}}
	e.view(what, func(tx store.Tx) error {
		for _, g := range grids {
			for _, o := range origins {
				for _, b := range bounds {
					for _, limit := range []int{1000, 2, 1} {
						q := store.FeedQuery{Grids: g, Origin: o, After: b[0], Upto: b[1], Limit: limit}
						got, err := tx.Entries(e.ctx, q)
						if err != nil {
							return fmt.Errorf("Entries(%+v): %w", q, err)
						}
						if want := m.query(q); !slices.Equal(got, want) {
							e.t.Errorf("%s(%+v) = %+v; want %+v", what, q, got, want)
						}
					}
				}
			}
		}
		// HouseholdsTouched: every household with an entry in the range,
		// whatever its grid, once; at most limit.
		for _, b := range bounds {
			var want []string
			for _, en := range m.entries {
				if en.Seq > b[0] && en.Seq <= b[1] {
					want = append(want, en.Household)
				}
			}
			got, err := tx.HouseholdsTouched(e.ctx, b[0], b[1], 1000)
			if err != nil {
				return fmt.Errorf("HouseholdsTouched(%d, %d): %w", b[0], b[1], err)
			}
			if slices.Sort(got); !slices.Equal(got, set(want)) {
				e.t.Errorf("HouseholdsTouched(%d, %d) = %v; want %v", b[0], b[1], got, set(want))
			}
			if len(set(want)) > 1 {
				if got, err := tx.HouseholdsTouched(e.ctx, b[0], b[1], 1); err != nil || len(got) != 1 {
					e.t.Errorf("HouseholdsTouched(%d, %d, limit 1) = %v, %v; want one household", b[0], b[1], got, err)
				}
			}
		}
		return nil
	})
}

// testReposRows: rows round-trip whole, clocks included; loads are in id
// order and leave unknown ids out; immutable rows are inserted once;
// counts; pages of household ids; reference rows by feed position.
func testReposRows(t *testing.T, newEnv func(BackendOptions) *repoEnv) {
	e := newEnv(BackendOptions{})
	ctx := e.ctx
	tr := e.tree()
	g1, g2 := tr.g1.ID, tr.g2.ID
	hA, hB, hC := e.household(g1), e.household(g1), e.household(g2)
	hB.Deleted = syncengine.NewRegister(true, e.hlc.next())
	pA1, pA2, pC := e.person(hA.ID), e.person(hA.ID), e.person(hC.ID)
	pA2.Deleted = syncengine.NewRegister(true, e.hlc.next())
	tA1, tA2, tC := e.tag(hA.ID, "elderly"), e.tag(hA.ID, "disabled"), e.tag(hC.ID, "elderly")
	tA2.Removed = true
	at := time.Date(2026, 4, 8, 10, 0, 0, 0, time.UTC)
	worker := newID()
	vA := withDetails(e.visit(worker, at, hA.ID), newID())
	vG := e.visit(worker, at.Add(time.Hour), hC.ID, hA.ID) // a talk; its households in their order
	vC := e.visit(worker, at.Add(-24*time.Hour), hC.ID)
	aA := e.correction(vA.ID, worker, at.Add(-time.Hour))
	aG := e.assignment(vG.ID, worker, at.Add(30*24*time.Hour))
	households := []*syncengine.Household{hA, hB, hC}
	persons := []*syncengine.Person{pA1, pA2, pC}
	tags := []*syncengine.TagElement{tA1, tA2, tC}
	visits := []*syncengine.Visit{vA, vG, vC}
	amendments := []*syncengine.Amendment{aA, aG}
	e.commit("PutHousehold, PutPerson, PutTag, InsertVisit, InsertAmendment", 0, func(tx store.Tx) error {
		var errs []error
		for _, h := range households {
			errs = append(errs, tx.PutHousehold(ctx, h))
		}
		for _, p := range persons {
			errs = append(errs, tx.PutPerson(ctx, p))
		}
		for _, tg := range tags {
			errs = append(errs, tx.PutTag(ctx, tg))
		}
		for _, v := range visits {
			inserted, err := tx.InsertVisit(ctx, v)
			if err == nil && !inserted {
				t.Errorf("InsertVisit(a new visit) = false; want inserted")
			}
			errs = append(errs, err)
		}
		for _, a := range amendments {
			inserted, err := tx.InsertAmendment(ctx, a)
			if err == nil && !inserted {
				t.Errorf("InsertAmendment(a new amendment) = false; want inserted")
			}
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})

	unknown := newID()
	e.view("Household", func(tx store.Tx) error {
		for _, want := range households {
			got, ok, err := tx.Household(ctx, want.ID)
			if err != nil {
				return err
			}
			if !ok || !reflect.DeepEqual(got, *want) {
				t.Errorf("Household(%s) = %+v, %v; want %+v", want.ID, got, ok, *want)
			}
		}
		if got, ok, err := tx.Household(ctx, unknown); err != nil || ok {
			t.Errorf("Household(unknown) = %+v, %v, %v; want not found", got, ok, err)
		}
		return nil
	})
	e.view("Households, Persons, Tags, Visits, Amendments", func(tx store.Tx) error {
		hs, err := tx.Households(ctx, []string{hC.ID, unknown, hB.ID, hA.ID})
		if err != nil {
			return err
		}
		wantRows(t, "Households(three and an unknown id)", hs, byID(households, hid), hid, deepEqual)
		grids, err := tx.HouseholdGrids(ctx, []string{hC.ID, unknown, hB.ID, hA.ID})
		if want := map[string]string{hA.ID: g1, hB.ID: g1, hC.ID: g2}; err != nil || !maps.Equal(grids, want) {
			t.Errorf("HouseholdGrids(three and an unknown id) = %v, %v; want %v", grids, err, want)
		}
		if grids, err := tx.HouseholdGrids(ctx, nil); err != nil || len(grids) != 0 {
			t.Errorf("HouseholdGrids(none) = %v, %v; want none", grids, err)
		}
		ps, err := tx.Persons(ctx, []string{pC.ID, unknown, pA2.ID, pA1.ID})
		if err != nil {
			return err
		}
		wantRows(t, "Persons(three and an unknown id)", ps, byID(persons, pid), pid, deepEqual)
		ts, err := tx.Tags(ctx, []string{unknown, tC.AddID, tA2.AddID, tA1.AddID})
		if err != nil {
			return err
		}
		wantRows(t, "Tags(three and an unknown id)", ts, byID(tags, tid), tid, deepEqual)
		vs, err := tx.Visits(ctx, []string{vC.ID, vG.ID, unknown, vA.ID})
		if err != nil {
			return err
		}
		wantRows(t, "Visits(three and an unknown id)", vs, byID(visits, vid), vid, visitEqual)
		as, err := tx.Amendments(ctx, []string{aG.ID, unknown, aA.ID})
		if err != nil {
			return err
		}
		wantRows(t, "Amendments(two and an unknown id)", as, byID(amendments, aid), aid, amendmentEqual)
		if hs, err := tx.Households(ctx, nil); err != nil || len(hs) != 0 {
			t.Errorf("Households(no ids) = %+v, %v; want none", hs, err)
		}
		return nil
	})
	e.view("Bundle", func(tx store.Tx) error {
		b, err := tx.Bundle(ctx, []string{hA.ID})
		if err != nil {
			return err
		}
		wantBundle(t, "Bundle(one household)", b, bundleOf([]*syncengine.Household{hA}, []*syncengine.Person{pA1, pA2},
			[]*syncengine.TagElement{tA1, tA2}, []*syncengine.Visit{vA, vG}, amendments))
		// The talk covers both households: it comes once.
		b, err = tx.Bundle(ctx, []string{hC.ID, unknown, hA.ID})
		if err != nil {
			return err
		}
		wantBundle(t, "Bundle(two households and an unknown one)", b, bundleOf([]*syncengine.Household{hA, hC}, persons,
			[]*syncengine.TagElement{tA1, tA2, tC}, visits, amendments))
		b, err = tx.Bundle(ctx, []string{unknown})
		if err != nil {
			return err
		}
		wantBundle(t, "Bundle(an unknown household)", b, syncengine.Bundle{})
		b, err = tx.Ledgers(ctx, []string{hC.ID, unknown, hA.ID})
		if err != nil {
			return err
		}
		wantBundle(t, "Ledgers(two households and an unknown one)", b, bundleOf([]*syncengine.Household{hA, hC}, persons,
			[]*syncengine.TagElement{tA1, tA2, tC}, nil, nil))
		return nil
	})

	// Immutable rows: the same content again is a no-op, other content
	// under the id is ErrAlreadyExists and leaves the row alone.
	again := *vA
	again.HouseholdIDs = slices.Clone(vA.HouseholdIDs)
	if inserted := inUpdate(e, "InsertVisit(the same visit again)", func(tx store.Tx) (bool, error) { return tx.InsertVisit(ctx, &again) }); inserted {
		t.Errorf("InsertVisit(the same visit again) = true; want false")
	}
	other := again
	other.Notes = "other notes"
	err := e.db.Update(ctx, func(tx store.Tx) error { _, err := tx.InsertVisit(ctx, &other); return err })
	wantErr(t, err, "InsertVisit(other content under a visit's id)", syncengine.ErrAlreadyExists)
	otherHouseholds := again
	otherHouseholds.HouseholdIDs = []string{hA.ID, hC.ID}
	otherHouseholds.Form = syncengine.FormTalk
	err = e.db.Update(ctx, func(tx store.Tx) error { _, err := tx.InsertVisit(ctx, &otherHouseholds); return err })
	wantErr(t, err, "InsertVisit(other households under a visit's id)", syncengine.ErrAlreadyExists)
	sameAmendment := *aA
	if inserted := inUpdate(e, "InsertAmendment(the same amendment again)", func(tx store.Tx) (bool, error) {
		return tx.InsertAmendment(ctx, &sameAmendment)
	}); inserted {
		t.Errorf("InsertAmendment(the same amendment again) = true; want false")
	}
	otherAmendment := sameAmendment
	otherAmendment.Reason = "another reason"
	err = e.db.Update(ctx, func(tx store.Tx) error { _, err := tx.InsertAmendment(ctx, &otherAmendment); return err })
	wantErr(t, err, "InsertAmendment(other content under an amendment's id)", syncengine.ErrAlreadyExists)
	e.view("Visits and Amendments after inserting them again", func(tx store.Tx) error {
		vs, err := tx.Visits(ctx, []string{vA.ID})
		if err != nil {
			return err
		}
		wantRows(t, "Visits", vs, []syncengine.Visit{*vA}, vid, visitEqual)
		as, err := tx.Amendments(ctx, []string{aA.ID})
		if err != nil {
			return err
		}
		wantRows(t, "Amendments", as, []syncengine.Amendment{*aA}, aid, amendmentEqual)
		return nil
	})

	// Counts.
	e.view("CountPersons, CountTags, CountVisits", func(tx store.Tx) error {
		for _, c := range []struct {
			household string
			want      int
		}{{hA.ID, 2}, {hC.ID, 1}, {hB.ID, 0}, {unknown, 0}} {
			if n, err := tx.CountPersons(ctx, c.household); err != nil || n != c.want {
				t.Errorf("CountPersons = %d, %v; want %d (deleted persons included)", n, err, c.want)
			}
		}
		for _, c := range []struct {
			household string
			live, all int
		}{{hA.ID, 1, 2}, {hC.ID, 1, 1}, {unknown, 0, 0}} {
			if live, all, err := tx.CountTags(ctx, c.household); err != nil || live != c.live || all != c.all {
				t.Errorf("CountTags = %d live, %d all, %v; want %d, %d", live, all, err, c.live, c.all)
			}
		}
		for _, c := range []struct {
			what      string
			household string
			from, to  time.Time
			want      int
		}{
			{"all of a household's", hA.ID, time.Time{}, time.Time{}, 2},
			{"all of another's", hC.ID, time.Time{}, time.Time{}, 2},
			{"[first visit, second visit)", hA.ID, at, at.Add(time.Hour), 1},
			{"(first visit, second visit]", hA.ID, at.Add(time.Millisecond), at.Add(time.Hour + time.Millisecond), 1},
			{"[a day before, first visit)", hC.ID, at.Add(-24 * time.Hour), at, 1},
			{"[first visit, a day after)", hC.ID, at, at.Add(24 * time.Hour), 1},
			{"all of an unknown household's", unknown, time.Time{}, time.Time{}, 0},
		} {
			if n, err := tx.CountVisits(ctx, c.household, c.from, c.to); err != nil || n != c.want {
				t.Errorf("CountVisits(%s) = %d, %v; want %d", c.what, n, err, c.want)
			}
		}
		counts, err := tx.VisitCounts(ctx, []string{hA.ID, unknown, hC.ID})
		if want := map[string]int{hA.ID: 2, hC.ID: 2}; err != nil || !maps.Equal(counts, want) {
			t.Errorf("VisitCounts = %v, %v; want %v", counts, err, want)
		}
		return nil
	})

	// Pages of household ids, deleted households included.
	inGrids := slices.Sorted(slices.Values([]string{hA.ID, hB.ID, hC.ID}))
	e.view("CountHouseholds and HouseholdIDs", func(tx store.Tx) error {
		for _, c := range []struct {
			what  string
			grids []string
			after string
			want  int
		}{
			{"one grid", []string{g1}, "", 2},
			{"two grids", []string{g1, g2}, "", 3},
			{"two grids after the first id", []string{g1, g2}, inGrids[0], 2},
			{"two grids after the last id", []string{g1, g2}, inGrids[2], 0},
			{"a grid with none", []string{tr.g3.ID}, "", 0},
			{"no grids", nil, "", 0},
		} {
			if n, err := tx.CountHouseholds(ctx, c.grids, c.after); err != nil || n != c.want {
				t.Errorf("CountHouseholds(%s) = %d, %v; want %d", c.what, n, err, c.want)
			}
		}
		for _, c := range []struct {
			what  string
			grids []string
			after string
			limit int
			want  []string
		}{
			{"first page", []string{g1, g2}, "", 2, inGrids[:2]},
			{"next page", []string{g1, g2}, inGrids[1], 2, inGrids[2:]},
			{"past the last", []string{g1, g2}, inGrids[2], 2, nil},
			{"one grid", []string{g2}, "", 10, []string{hC.ID}},
			{"no grids", nil, "", 10, nil},
		} {
			ids, err := tx.HouseholdIDs(ctx, c.grids, c.after, c.limit)
			if err != nil || !slices.Equal(ids, c.want) {
				t.Errorf("HouseholdIDs(%s) = %v, %v; want %v", c.what, ids, err, c.want)
			}
		}
		return nil
	})

	// PutHousehold, PutPerson and PutTag write a row whole.
	hA2, pA12, tA12 := *hA, *pA1, *tA1
	hA2.Notes = syncengine.NewRegister("moved in last spring", e.hlc.next())
	hA2.HeadName = syncengine.NewRegister("", e.hlc.next())
	pA12.Phone = syncengine.NewRegister("13900000000", e.hlc.next())
	tA12.Removed = true
	e.commit("PutHousehold, PutPerson, PutTag over stored rows", 0, func(tx store.Tx) error {
		return errors.Join(tx.PutHousehold(ctx, &hA2), tx.PutPerson(ctx, &pA12), tx.PutTag(ctx, &tA12))
	})
	e.view("rows written over", func(tx store.Tx) error {
		b, err := tx.Bundle(ctx, []string{hA.ID})
		if err != nil {
			return err
		}
		wantBundle(t, "Bundle after writing rows over", b, bundleOf([]*syncengine.Household{&hA2}, []*syncengine.Person{&pA12, pA2},
			[]*syncengine.TagElement{&tA12, tA2}, []*syncengine.Visit{vA, vG}, amendments))
		return nil
	})

	// Beyond what one statement takes: still in id order.
	t.Run("ManyIDs", func(t *testing.T) {
		bulk := make([]*syncengine.Household, 1100)
		for i := range bulk {
			bulk[i] = &syncengine.Household{ID: newID(), GridID: syncengine.NewRegister(tr.g3.ID, e.hlc.next())}
		}
		e.update("PutHousehold ×1100", func(tx store.Tx) error {
			var errs []error
			for _, h := range bulk {
				errs = append(errs, tx.PutHousehold(ctx, h))
			}
			return errors.Join(errs...)
		})
		ids := make([]string, len(bulk))
		for i, h := range bulk {
			ids[i] = h.ID
		}
		slices.Sort(ids)
		slices.Reverse(ids)
		got := inView(e, "Households(1100 ids)", func(tx store.Tx) ([]syncengine.Household, error) { return tx.Households(ctx, ids) })
		if len(got) != len(ids) {
			t.Fatalf("Households(%d ids, greatest first) returned %d", len(ids), len(got))
		}
		for i := 1; i < len(got); i++ {
			if got[i-1].ID >= got[i].ID {
				t.Errorf("Households(%d ids, greatest first) is not in id order: %s at %d before %s at %d", len(ids), got[i-1].ID, i-1, got[i].ID, i)
				break
			}
		}
	})

	// Reference rows: each write takes the next position, and reads
	// select by it.
	e.testReposReference(tr)
}

// testReposReference: categories and campaigns round-trip, and are listed
// by the feed position they were written at.
func (e *repoEnv) testReposReference(tr repoTree) {
	t, ctx := e.t, e.ctx
	base := e.head()
	catA, catB := e.category("elderly"), e.category("disabled")
	catB.ParentCode = syncengine.NewRegister("elderly", e.hlc.next())
	catB.KeyGroup = syncengine.NewRegister(true, e.hlc.next())
	pa := e.commit("PutCategory", 1, func(tx store.Tx) error { return tx.PutCategory(ctx, catA) })
	pb := e.commit("PutCategory", 1, func(tx store.Tx) error { return tx.PutCategory(ctx, catB) })
	categories := func(since uint64) []syncengine.Category {
		t.Helper()
		cs := inView(e, "Categories", func(tx store.Tx) ([]syncengine.Category, error) { return tx.Categories(ctx, since) })
		slices.SortFunc(cs, func(a, b syncengine.Category) int { return strings.Compare(a.Code, b.Code) })
		return cs
	}
	for _, c := range []struct {
		what  string
		since uint64
		want  []syncengine.Category
	}{
		{"0", 0, []syncengine.Category{*catB, *catA}},
		{"the position before both", base, []syncengine.Category{*catB, *catA}},
		{"the first's position", pa, []syncengine.Category{*catB}},
		{"the second's position", pb, nil},
	} {
		if got := categories(c.since); !equalRows(got, c.want, deepEqual) {
			t.Errorf("Categories(%s) = %+v; want %+v", c.what, got, c.want)
		}
	}
	catA2 := *catA
	catA2.NameZH = syncengine.NewRegister("独居老人", e.hlc.next())
	catA2.RevisitDays = syncengine.NewRegister(int64(30), e.hlc.next())
	e.commit("PutCategory over a stored one", 1, func(tx store.Tx) error { return tx.PutCategory(ctx, &catA2) })
	if got := categories(pb); !equalRows(got, []syncengine.Category{catA2}, deepEqual) {
		t.Errorf("Categories(since before a category was written again) = %+v; want %+v", got, catA2)
	}
	e.view("Category", func(tx store.Tx) error {
		for _, want := range []syncengine.Category{catA2, *catB} {
			if got, ok, err := tx.Category(ctx, want.Code); err != nil || !ok || !reflect.DeepEqual(got, want) {
				t.Errorf("Category(%s) = %+v, %v, %v; want %+v", want.Code, got, ok, err, want)
			}
		}
		if got, ok, err := tx.Category(ctx, "unknown"); err != nil || ok {
			t.Errorf("Category(unknown) = %+v, %v, %v; want not found", got, ok, err)
		}
		return nil
	})

	// Campaigns of the district (above every grid), of g1, of its sibling
	// g2 (the same window as g1's) and of g3 in another street.
	jan, feb, mar, may := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	cd, c1, c2, c3 := e.campaign(tr.d.ID, mar, may), e.campaign(tr.g1.ID, feb, mar), e.campaign(tr.g2.ID, feb, mar), e.campaign(tr.g3.ID, jan, feb)
	cd.Deleted = syncengine.NewRegister(true, e.hlc.next())
	var at []uint64
	for _, c := range []*syncengine.Campaign{cd, c1, c2, c3} {
		at = append(at, e.commit("PutCampaign", 1, func(tx store.Tx) error { return tx.PutCampaign(ctx, c) }))
	}
	want := []syncengine.Campaign{*c3, *c1, *c2, *cd}
	slices.SortStableFunc(want[1:3], func(a, b syncengine.Campaign) int { return strings.Compare(a.ID, b.ID) })
	if got := inView(e, "Campaigns", func(tx store.Tx) ([]syncengine.Campaign, error) { return tx.Campaigns(ctx) }); !equalRows(got, want, deepEqual) {
		t.Errorf("Campaigns() = %+v; want by window and id: %+v", got, want)
	}
	e.view("Campaign", func(tx store.Tx) error {
		for _, want := range []*syncengine.Campaign{cd, c1} {
			if got, ok, err := tx.Campaign(ctx, want.ID); err != nil || !ok || !reflect.DeepEqual(got, *want) {
				t.Errorf("Campaign(%s) = %+v, %v, %v; want %+v", want.ID, got, ok, err, *want)
			}
		}
		if got, ok, err := tx.Campaign(ctx, newID()); err != nil || ok {
			t.Errorf("Campaign(unknown) = %+v, %v, %v; want not found", got, ok, err)
		}
		return nil
	})
	for _, c := range []struct {
		what  string
		grids []string
		since uint64
		want  []*syncengine.Campaign
	}{
		{"g1", []string{tr.g1.ID}, 0, []*syncengine.Campaign{cd, c1}},
		{"g1 and g3", []string{tr.g1.ID, tr.g3.ID}, 0, []*syncengine.Campaign{cd, c1, c3}},
		{"g2 since g1's campaign", []string{tr.g2.ID}, at[1], []*syncengine.Campaign{c2}},
		{"g1 since the district's campaign", []string{tr.g1.ID}, at[0], []*syncengine.Campaign{c1}},
		{"g1 since the last campaign", []string{tr.g1.ID}, at[3], nil},
		{"no grids", nil, 0, nil},
	} {
		got := inView(e, "CampaignsAbove", func(tx store.Tx) ([]syncengine.Campaign, error) { return tx.CampaignsAbove(ctx, c.grids, c.since) })
		wantRows(t, "CampaignsAbove("+c.what+")", sortedBy(got, cid), byID(c.want, cid), cid, deepEqual)
	}
}

// testReposScopes: nodes and workers, a worker's grid changes at the
// positions they took, households' moves.
func testReposScopes(t *testing.T, newEnv func(BackendOptions) *repoEnv) {
	e := newEnv(BackendOptions{})
	ctx := e.ctx
	tr := e.tree()
	g1, g2, g3 := tr.g1.ID, tr.g2.ID, tr.g3.ID
	e.view("Node", func(tx store.Tx) error {
		for _, want := range tr.nodes() {
			if got, err := tx.Node(ctx, want.ID); err != nil || got != want {
				t.Errorf("Node(%s) = %+v, %v; want %+v", want.ID, got, err, want)
			}
		}
		return nil
	})
	w, w2 := e.worker("Li Na", tr.s1.ID), e.worker("Zhao Lei", "")
	w.Role = 2
	e.wantWorker(w, nil)

	step := func(worker, grid string, added bool) store.ScopeEvent {
		t.Helper()
		seq := e.commit(fmt.Sprintf("AddWorkerGrid or RemoveWorkerGrid (added %v)", added), 1, func(tx store.Tx) error {
			if added {
				return tx.AddWorkerGrid(ctx, worker, grid)
			}
			return tx.RemoveWorkerGrid(ctx, worker, grid)
		})
		return store.ScopeEvent{Seq: seq, Grid: grid, Added: added}
	}
	e1 := step(w.ID, g1, true)
	o1 := step(w2.ID, g3, true)
	e2 := step(w.ID, g2, true)
	e3 := step(w.ID, g1, false)
	e.wantWorker(w, []string{g2})
	e.wantWorker(w2, []string{g3})
	top := e.head()
	for _, c := range []struct {
		what        string
		worker      string
		after, upto uint64
		want        []store.ScopeEvent
	}{
		{"all", w.ID, 0, top, []store.ScopeEvent{e1, e2, e3}},
		{"after the first", w.ID, e1.Seq, top, []store.ScopeEvent{e2, e3}},
		{"(first, second]", w.ID, e1.Seq, e2.Seq, []store.ScopeEvent{e2}},
		{"up to just before the first", w.ID, 0, e1.Seq - 1, nil},
		{"after the last", w.ID, e3.Seq, top, nil},
		{"another worker's", w2.ID, 0, top, []store.ScopeEvent{o1}},
		{"an unknown worker's", newID(), 0, top, nil},
	} {
		got := inView(e, "ScopeEvents", func(tx store.Tx) ([]store.ScopeEvent, error) { return tx.ScopeEvents(ctx, c.worker, c.after, c.upto) })
		if !slices.Equal(got, c.want) {
			t.Errorf("ScopeEvents(%s) = %+v; want %+v", c.what, got, c.want)
		}
	}

	h1, h2 := e.household(g1), e.household(g1)
	e.commit("PutHousehold", 0, func(tx store.Tx) error { return errors.Join(tx.PutHousehold(ctx, h1), tx.PutHousehold(ctx, h2)) })
	// A move writes the household in its new grid with the move, as the
	// contract of RecordMove asks.
	move := func(h *syncengine.Household, from, to string) store.Move {
		t.Helper()
		h.GridID = syncengine.NewRegister(to, e.hlc.next())
		seq := e.commit("PutHousehold and RecordMove", 1, func(tx store.Tx) error {
			return errors.Join(tx.PutHousehold(ctx, h), tx.RecordMove(ctx, h.ID, from, to))
		})
		return store.Move{Seq: seq, Household: h.ID, From: from, To: to}
	}
	m1 := move(h1, g1, g2)
	m2 := move(h2, g1, g3)
	m3 := move(h1, g2, g3)
	top = e.head()
	// HouseholdMoves promises Seq, From and To; Now is Moves'.
	strip := func(ms []store.Move) []store.Move {
		out := make([]store.Move, len(ms))
		for i, m := range ms {
			out[i] = store.Move{Seq: m.Seq, From: m.From, To: m.To}
		}
		return out
	}
	for _, c := range []struct {
		what      string
		household string
		after     uint64
		want      []store.Move
	}{
		{"all of one", h1.ID, 0, []store.Move{m1, m3}},
		{"after its first", h1.ID, m1.Seq, []store.Move{m3}},
		{"after its last", h1.ID, m3.Seq, nil},
		{"another's", h2.ID, 0, []store.Move{m2}},
		{"an unknown household's", newID(), 0, nil},
	} {
		got := inView(e, "HouseholdMoves", func(tx store.Tx) ([]store.Move, error) { return tx.HouseholdMoves(ctx, c.household, c.after) })
		if !slices.Equal(strip(got), strip(c.want)) {
			t.Errorf("HouseholdMoves(%s) = %+v; want %+v", c.what, got, c.want)
		}
	}
	for _, m := range []*store.Move{&m1, &m2, &m3} {
		m.Now = g3
	}
	for _, c := range []struct {
		what        string
		after, upto uint64
		want        []store.Move
	}{
		{"all", 0, top, []store.Move{m1, m2, m3}},
		{"(first, second]", m1.Seq, m2.Seq, []store.Move{m2}},
		{"up to the first", 0, m1.Seq, []store.Move{m1}},
		{"after the last", m3.Seq, top, nil},
	} {
		got := inView(e, "Moves", func(tx store.Tx) ([]store.Move, error) { return tx.Moves(ctx, c.after, c.upto) })
		if !slices.Equal(got, c.want) {
			t.Errorf("Moves(%s) = %+v; want %+v", c.what, got, c.want)
		}
	}
}

// testReposErasures: erasure marks and the feed positions written with
// them.
func testReposErasures(t *testing.T, newEnv func(BackendOptions) *repoEnv) {
	e := newEnv(BackendOptions{})
	ctx := e.ctx
	at := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	h1, h2 := newID(), newID()
	p1, p9, v1 := newID(), newID(), newID()
	anyErased := func() bool {
		t.Helper()
		return inView(e, "AnyHouseholdErased", func(tx store.Tx) (bool, error) { return tx.AnyHouseholdErased(ctx) })
	}
	erasure := func(households ...string) uint64 {
		t.Helper()
		return inView(e, "HouseholdErasure", func(tx store.Tx) (uint64, error) { return tx.HouseholdErasure(ctx, households) })
	}
	announced := func(kind store.EntityKind, id string, seq uint64) bool {
		t.Helper()
		return inView(e, "ErasuresOf", func(tx store.Tx) (bool, error) {
			rs, err := tx.ErasuresOf(ctx, seq-1, kind, []string{id})
			return slices.ContainsFunc(rs, func(r store.Erasure) bool {
				return r.Announces(store.FeedEntry{Seq: seq, Kind: kind, EntityID: id})
			}), err
		})
	}
	if anyErased() || erasure(h1, h2) != 0 {
		t.Errorf("a new backend has erasures: AnyHouseholdErased %v, HouseholdErasure %d", anyErased(), erasure(h1, h2))
	}
	err := e.db.Update(ctx, func(tx store.Tx) error {
		if err := errors.Join(tx.Touch(ctx, store.EntityHousehold, h1, h1, ""),
			tx.RecordErasures(ctx, at, []store.ErasureMark{{Kind: store.EntityHousehold, ID: h1, HLC: 50}})); err != nil {
			return err
		}
		return errRollback
	})
	wantErr(t, err, "Update whose fn fails", errRollback)
	if anyErased() || erasure(h1) != 0 {
		t.Errorf("a rolled-back erasure is recorded: AnyHouseholdErased %v, HouseholdErasure %d", anyErased(), erasure(h1))
	}

	// A person's erasure: no household erased.
	sp1 := e.commit("Touch and RecordErasures (a person)", 1, func(tx store.Tx) error {
		return errors.Join(tx.Touch(ctx, store.EntityPerson, p1, h1, ""),
			tx.RecordErasures(ctx, at, []store.ErasureMark{{Kind: store.EntityPerson, ID: p1}}))
	})
	if anyErased() {
		t.Errorf("AnyHouseholdErased after only a person's erasure = true; want false")
	}
	if !announced(store.EntityPerson, p1, sp1) {
		t.Errorf("announced(the erased person's entry) = false; want true")
	}

	// A household's erasure, with a visit's and a person the erasure did
	// not mark, all touched in one Update.
	var sh1, sv1, sp9 uint64
	base := e.head()
	e.commit("Touch ×3 and RecordErasures (a household and a visit)", 3, func(tx store.Tx) error {
		return errors.Join(tx.Touch(ctx, store.EntityHousehold, h1, h1, ""), tx.Touch(ctx, store.EntityVisit, v1, h1, ""),
			tx.Touch(ctx, store.EntityPerson, p9, h1, ""),
			tx.RecordErasures(ctx, at, []store.ErasureMark{{Kind: store.EntityHousehold, ID: h1, HLC: 100}, {Kind: store.EntityVisit, ID: v1}}))
	})
	sh1, sv1, sp9 = base+1, base+2, base+3
	if !anyErased() {
		t.Errorf("AnyHouseholdErased after a household's erasure = false; want true")
	}
	for _, c := range []struct {
		what string
		kind store.EntityKind
		id   string
		seq  uint64
		want bool
	}{
		{"the erased household's entry", store.EntityHousehold, h1, sh1, true},
		{"the erased visit's entry", store.EntityVisit, v1, sv1, true},
		{"the entry of a person the erasure did not mark", store.EntityPerson, p9, sp9, false},
	} {
		if got := announced(c.kind, c.id, c.seq); got != c.want {
			t.Errorf("announced(%s) = %v; want %v", c.what, got, c.want)
		}
	}
	// A later change of an erased row, at the very next position, is no
	// erasure.
	later := e.commit("Touch (a later change of the erased household)", 1, func(tx store.Tx) error {
		return tx.Touch(ctx, store.EntityHousehold, h1, h1, "")
	})
	if announced(store.EntityHousehold, h1, later) {
		t.Errorf("announced(a later change of an erased household) = true; want false")
	}
	sh2 := e.commit("Touch and RecordErasures (another household)", 1, func(tx store.Tx) error {
		return errors.Join(tx.Touch(ctx, store.EntityHousehold, h2, h2, ""),
			tx.RecordErasures(ctx, at, []store.ErasureMark{{Kind: store.EntityHousehold, ID: h2, HLC: 300}}))
	})
	for _, c := range []struct {
		households []string
		want       uint64
	}{{[]string{h1}, 100}, {[]string{h2}, 300}, {[]string{h1, h2}, 300}, {[]string{newID(), h1}, 100}, {[]string{newID()}, 0}, {nil, 0}} {
		if got := erasure(c.households...); got != c.want {
			t.Errorf("HouseholdErasure(%d households) = %d; want %d, the newest erasure's clock", len(c.households), got, c.want)
		}
	}
	// A new erasure of a row is announced again.
	if !announced(store.EntityHousehold, h2, sh2) {
		t.Errorf("announced(the other household's erasure) = false; want true")
	}
	again := e.commit("Touch and RecordErasures (the household again)", 1, func(tx store.Tx) error {
		return errors.Join(tx.Touch(ctx, store.EntityHousehold, h1, h1, ""),
			tx.RecordErasures(ctx, at.Add(time.Hour), []store.ErasureMark{{Kind: store.EntityHousehold, ID: h1, HLC: 500}}))
	})
	if !announced(store.EntityHousehold, h1, again) || erasure(h1, h2) != 500 {
		t.Errorf("after a second erasure of a household: announced = %v, HouseholdErasure = %d; want true, 500",
			announced(store.EntityHousehold, h1, again), erasure(h1, h2))
	}
	if announced(store.EntityHousehold, h1, sh1) {
		t.Errorf("after a second erasure of a household, its first erasure's entry is still announced; want the range replaced")
	}

	// A pull reads the erasures of its batch's rows at once: those of the
	// rows asked whose positions end after the position given, and no
	// other.
	for _, c := range []struct {
		what  string
		after uint64
		kind  store.EntityKind
		ids   []string
		want  []string
	}{
		{"the households", 0, store.EntityHousehold, []string{h1, h2, newID()}, []string{h1, h2}},
		{"the persons", 0, store.EntityPerson, []string{p1, p9}, []string{p1}},
		{"a visit", 0, store.EntityVisit, []string{v1}, []string{v1}},
		{"a visit as a household", 0, store.EntityHousehold, []string{v1}, nil},
		{"the households, after the first erasures", sp9, store.EntityHousehold, []string{h1, h2}, []string{h1, h2}},
		{"the visit, after its erasure", sp9, store.EntityVisit, []string{v1}, nil},
		{"the households, after the other's", sh2, store.EntityHousehold, []string{h1, h2}, []string{h1}},
		{"after the newest", again, store.EntityHousehold, []string{h1, h2}, nil},
		{"no rows", 0, store.EntityHousehold, nil, nil},
	} {
		rs := inView(e, "ErasuresOf", func(tx store.Tx) ([]store.Erasure, error) { return tx.ErasuresOf(ctx, c.after, c.kind, c.ids) })
		var got []string
		for _, r := range rs {
			if r.Kind != c.kind {
				t.Errorf("ErasuresOf(%s) gave an erasure of kind %d; want %d", c.what, r.Kind, c.kind)
			}
			got = append(got, r.ID)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(c.want))
		if !slices.Equal(got, want) {
			t.Errorf("ErasuresOf(%s, after %d) = %v; want %v", c.what, c.after, got, want)
		}
	}

	// An erasure recorded by an Update that wrote no position announces
	// nothing: the row's older entries were written by no erasure.
	t.Run("WithoutPositions", func(t *testing.T) {
		p := newID()
		sp := e.commit("Touch (a person)", 1, func(tx store.Tx) error { return tx.Touch(ctx, store.EntityPerson, p, h2, "") })
		e.commit("RecordErasures alone", 0, func(tx store.Tx) error {
			return tx.RecordErasures(ctx, at, []store.ErasureMark{{Kind: store.EntityPerson, ID: p}})
		})
		if announced(store.EntityPerson, p, sp) {
			t.Errorf("announced(an entry written before the erasure, by an Update that erased nothing) = true; " +
				"want false: RecordErasures records the positions its own transaction wrote (none here)")
		}
	})
}

// testReposOrg: the org tree's paths and order, workers by name and id,
// their homes and grids.
func testReposOrg(t *testing.T, newEnv func(BackendOptions) *repoEnv) {
	e := newEnv(BackendOptions{})
	ctx := e.ctx
	tr := e.tree()
	for _, c := range []struct {
		node string
		want []string
	}{
		{tr.g1.ID, []string{tr.g1.ID, tr.c1.ID, tr.s1.ID, tr.d.ID}},
		{tr.s2.ID, []string{tr.s2.ID, tr.d.ID}},
		{tr.d.ID, []string{tr.d.ID}},
	} {
		if got := inView(e, "NodePath", func(tx store.Tx) ([]string, error) { return tx.NodePath(ctx, c.node) }); !slices.Equal(got, c.want) {
			t.Errorf("NodePath(%s) = %v; want the node and those above it, %v", c.node, got, c.want)
		}
	}
	err := e.db.View(ctx, func(tx store.Tx) error { _, err := tx.NodePath(ctx, newID()); return err })
	wantErr(t, err, "NodePath(unknown)", syncengine.ErrNotFound)
	for _, c := range []struct {
		what string
		root string
		want []store.OrgNode
	}{
		{"every node", "", tr.nodes()},
		{"a street", tr.s1.ID, []store.OrgNode{tr.s1, tr.c1, tr.g1, tr.g2}},
		{"a grid", tr.g3.ID, []store.OrgNode{tr.g3}},
	} {
		want := slices.SortedFunc(slices.Values(c.want), func(a, b store.OrgNode) int {
			return cmp.Or(cmp.Compare(a.Level, b.Level), strings.Compare(a.Name, b.Name), strings.Compare(a.ID, b.ID))
		})
		if got := inView(e, "Subtree", func(tx store.Tx) ([]store.OrgNode, error) { return tx.Subtree(ctx, c.root) }); !slices.Equal(got, want) {
			t.Errorf("Subtree(%s) = %+v; want by level, name and id: %+v", c.what, got, want)
		}
	}

	// Workers: inserted out of order, two of the same name.
	ids := []string{newID(), newID(), newID(), newID()}
	names := []string{"Bea", "Abe", "Bea", "Cy"}
	homes := []string{tr.s1.ID, "", tr.s2.ID, tr.d.ID}
	for _, i := range []int{3, 2, 0, 1} {
		w := store.Worker{ID: ids[i], Name: names[i], Role: int32(i + 1)}
		e.update("InsertWorker", func(tx store.Tx) error {
			return tx.InsertWorker(ctx, w, homes[i], time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		})
		e.wantWorker(w, nil)
	}
	want := []string{ids[1], min(ids[0], ids[2]), max(ids[0], ids[2]), ids[3]}
	if got := inView(e, "WorkerIDs", func(tx store.Tx) ([]string, error) { return tx.WorkerIDs(ctx) }); !slices.Equal(got, want) {
		t.Errorf("WorkerIDs() = %v; want by name and id: %v", got, want)
	}
	home := func(id string) string {
		t.Helper()
		return inView(e, "WorkerHome", func(tx store.Tx) (string, error) { return tx.WorkerHome(ctx, id) })
	}
	for i, id := range ids {
		if got := home(id); got != homes[i] {
			t.Errorf("WorkerHome(worker %d) = %q; want %q, as inserted", i, got, homes[i])
		}
	}
	e.update("SetWorkerHome", func(tx store.Tx) error { return tx.SetWorkerHome(ctx, ids[1], tr.s2.ID) })
	if got := home(ids[1]); got != tr.s2.ID {
		t.Errorf("WorkerHome after SetWorkerHome = %q; want %q", got, tr.s2.ID)
	}
	if got := home(ids[0]); got != homes[0] {
		t.Errorf("WorkerHome of another worker after SetWorkerHome = %q; want %q", got, homes[0])
	}
	w := store.Worker{ID: ids[1], Name: names[1], Role: 2}
	e.update("AddWorkerGrid ×2", func(tx store.Tx) error {
		return errors.Join(tx.AddWorkerGrid(ctx, w.ID, tr.g1.ID), tx.AddWorkerGrid(ctx, w.ID, tr.g3.ID))
	})
	e.wantWorker(w, []string{tr.g1.ID, tr.g3.ID})
	e.update("RemoveWorkerGrid", func(tx store.Tx) error { return tx.RemoveWorkerGrid(ctx, w.ID, tr.g1.ID) })
	e.wantWorker(w, []string{tr.g3.ID})
}

// testReposAuth: admins' and devices' credentials, devices, enrolment
// codes.
func testReposAuth(t *testing.T, newEnv func(BackendOptions) *repoEnv) {
	e := newEnv(BackendOptions{})
	ctx := e.ctx
	tr := e.tree()
	if ok := inView(e, "HasAdmin", func(tx store.Tx) (bool, error) { return tx.HasAdmin(ctx) }); ok {
		t.Errorf("HasAdmin on a new backend = true")
	}
	at := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	root := store.Principal{Kind: store.KindAdmin, ID: newID(), Name: "root", CredentialID: newID()}
	leader := store.Principal{Kind: store.KindAdmin, ID: newID(), Name: "street leader", CredentialID: newID(), Node: tr.s1.ID,
		Path: []string{tr.s1.ID, tr.d.ID}, ReadOnly: true}
	rootHash, leaderHash := []byte("root secret hash"), []byte("leader secret hash")
	e.update("InsertAdmin", func(tx store.Tx) error { return tx.InsertAdmin(ctx, root, rootHash, at) })
	if ok := inView(e, "HasAdmin", func(tx store.Tx) (bool, error) { return tx.HasAdmin(ctx) }); !ok {
		t.Errorf("HasAdmin after InsertAdmin = false")
	}
	e.update("InsertAdmin", func(tx store.Tx) error { return tx.InsertAdmin(ctx, leader, leaderHash, at) })
	for _, c := range []struct {
		p    store.Principal
		hash []byte
	}{{root, rootHash}, {leader, leaderHash}} {
		got, ok := e.credential(c.p.CredentialID)
		// The doc names ID, Name, Node and ReadOnly.
		a := got.Admin
		if !ok || !bytes.Equal(got.SecretHash, c.hash) || got.WorkerID != "" || !got.RevokedAt.IsZero() ||
			a.ID != c.p.ID || a.Name != c.p.Name || a.Node != c.p.Node || a.ReadOnly != c.p.ReadOnly {
			t.Errorf("Credential(admin %s) = %+v, %v; want its hash and admin %+v, not revoked", c.p.Name, got, ok, c.p)
		}
	}
	if got, ok := e.credential(newID()); ok {
		t.Errorf("Credential(unknown) = %+v; want not found", got)
	}

	// The device policy: none until set, then the last one set.
	if got := inView(e, "DevicePolicy", func(tx store.Tx) (store.DevicePolicy, error) { return tx.DevicePolicy(ctx) }); got != (store.DevicePolicy{}) {
		t.Errorf("DevicePolicy before any = %+v; want none", got)
	}
	for _, p := range []store.DevicePolicy{{LockAfterDays: 14, WipeAfterDays: 60}, {LockAfterDays: 7}} {
		e.update("PutDevicePolicy", func(tx store.Tx) error { return tx.PutDevicePolicy(ctx, p) })
		if got := inView(e, "DevicePolicy", func(tx store.Tx) (store.DevicePolicy, error) { return tx.DevicePolicy(ctx) }); got != p {
			t.Errorf("DevicePolicy = %+v; want %+v", got, p)
		}
	}

	// The item policy, likewise.
	if got := inView(e, "ItemPolicy", func(tx store.Tx) (store.ItemPolicy, error) { return tx.ItemPolicy(ctx) }); got != (store.ItemPolicy{}) {
		t.Errorf("ItemPolicy before any = %+v; want none", got)
	}
	for _, p := range []store.ItemPolicy{{EscalationDays: 3}, {EscalationDays: 14}} {
		e.update("PutItemPolicy", func(tx store.Tx) error { return tx.PutItemPolicy(ctx, p) })
		if got := inView(e, "ItemPolicy", func(tx store.Tx) (store.ItemPolicy, error) { return tx.ItemPolicy(ctx) }); got != p {
			t.Errorf("ItemPolicy = %+v; want %+v", got, p)
		}
	}

	// Passwords and sessions: a second admin of the same name keeps its
	// own; a session expires, an expired one goes when the next is
	// opened, and ending a session leaves the admin's token alone.
	twin := store.Principal{Kind: store.KindAdmin, ID: newID(), Name: "root", CredentialID: newID()}
	e.update("InsertAdmin", func(tx store.Tx) error { return tx.InsertAdmin(ctx, twin, []byte("twin"), at) })
	e.update("SetAdminPassword", func(tx store.Tx) error { return tx.SetAdminPassword(ctx, twin.ID, "$argon2id$twin") })
	named := inView(e, "AdminsNamed", func(tx store.Tx) ([]store.AdminLogin, error) { return tx.AdminsNamed(ctx, "root") })
	wantNamed := []store.AdminLogin{{Admin: store.Principal{Kind: store.KindAdmin, ID: root.ID, Name: "root"}},
		{Admin: store.Principal{Kind: store.KindAdmin, ID: twin.ID, Name: "root"}, PasswordHash: "$argon2id$twin"}}
	slices.SortFunc(wantNamed, func(a, b store.AdminLogin) int { return strings.Compare(a.Admin.ID, b.Admin.ID) })
	if !slices.EqualFunc(named, wantNamed, func(a, b store.AdminLogin) bool {
		return a.Admin.ID == b.Admin.ID && a.Admin.Name == b.Admin.Name && a.Admin.Kind == b.Admin.Kind &&
			a.Admin.Node == b.Admin.Node && a.Admin.ReadOnly == b.Admin.ReadOnly && a.PasswordHash == b.PasswordHash
	}) {
		t.Errorf("AdminsNamed(root) = %+v; want %+v", named, wantNamed)
	}
	if got := inView(e, "AdminsNamed", func(tx store.Tx) ([]store.AdminLogin, error) { return tx.AdminsNamed(ctx, "nobody") }); len(got) != 0 {
		t.Errorf("AdminsNamed(nobody) = %+v; want none", got)
	}
	old := store.Session{CredentialID: newID(), AdminID: twin.ID, SecretHash: []byte("old"), CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	e.update("InsertSession", func(tx store.Tx) error { return tx.InsertSession(ctx, old) })
	if got, ok := e.credential(old.CredentialID); !ok || !got.ExpiresAt.Equal(old.ExpiresAt) || got.Admin.ID != twin.ID || !bytes.Equal(got.SecretHash, old.SecretHash) {
		t.Errorf("Credential(session) = %+v, %v; want twin's, expiring at %v", got, ok, old.ExpiresAt)
	}
	if got, _ := e.credential(twin.CredentialID); !got.ExpiresAt.IsZero() {
		t.Errorf("an admin token expires at %v; want never", got.ExpiresAt)
	}
	later := store.Session{CredentialID: newID(), AdminID: twin.ID, SecretHash: []byte("later"), CreatedAt: at.Add(2 * time.Hour), ExpiresAt: at.Add(3 * time.Hour)}
	e.update("InsertSession", func(tx store.Tx) error { return tx.InsertSession(ctx, later) })
	if got, ok := e.credential(old.CredentialID); ok {
		t.Errorf("an expired session is still there after the next was opened: %+v", got)
	}
	e.update("EndSession", func(tx store.Tx) error {
		return errors.Join(tx.EndSession(ctx, later.CredentialID), tx.EndSession(ctx, twin.CredentialID))
	})
	if got, ok := e.credential(later.CredentialID); ok {
		t.Errorf("an ended session is still there: %+v", got)
	}
	if _, ok := e.credential(twin.CredentialID); !ok {
		t.Errorf("EndSession of an admin token deleted it")
	}

	w, other := e.worker("Li Na", tr.s1.ID), e.worker("Zhao Lei", tr.s1.ID)
	// Enrolled later, yet with the smaller id: devices come oldest first.
	late, early := newID(), newID()
	d2 := store.Device{ID: min(late, early), WorkerID: w.ID, Name: "second phone", EnrolledAt: at.Add(time.Hour)}
	d1 := store.Device{ID: max(late, early), WorkerID: w.ID, Name: "first phone", EnrolledAt: at}
	d3 := store.Device{ID: newID(), WorkerID: other.ID, Name: "phone", EnrolledAt: at}
	hashes := map[string][]byte{d1.ID: []byte("hash 1"), d2.ID: []byte("hash 2"), d3.ID: []byte("hash 3")}
	for _, d := range []store.Device{d2, d1, d3} {
		e.update("InsertDevice", func(tx store.Tx) error { return tx.InsertDevice(ctx, d, hashes[d.ID], 7) })
	}
	devices := func(worker string) []store.Device {
		t.Helper()
		return normDevices(inView(e, "Devices", func(tx store.Tx) ([]store.Device, error) { return tx.Devices(ctx, worker) }))
	}
	if got := devices(w.ID); !slices.Equal(got, []store.Device{d1, d2}) {
		t.Errorf("Devices(worker) = %+v; want oldest first: %+v", got, []store.Device{d1, d2})
	}
	if got := devices(newID()); len(got) != 0 {
		t.Errorf("Devices(unknown worker) = %+v; want none", got)
	}
	device := func(id string) (store.Device, bool) {
		t.Helper()
		var d store.Device
		var ok bool
		e.view("Device", func(tx store.Tx) error {
			var err error
			d, ok, err = tx.Device(ctx, id)
			return err
		})
		return normDevices([]store.Device{d})[0], ok
	}
	if got, ok := device(d3.ID); !ok || got != d3 {
		t.Errorf("Device(%s) = %+v, %v; want %+v", d3.ID, got, ok, d3)
	}
	if got, ok := device(newID()); ok {
		t.Errorf("Device(unknown) = %+v; want not found", got)
	}
	if got, ok := e.credential(d1.ID); !ok || !bytes.Equal(got.SecretHash, hashes[d1.ID]) || got.WorkerID != w.ID ||
		got.WorkerName != w.Name || got.Admin.ID != "" || !got.RevokedAt.IsZero() || got.RevokedReason != "" {
		t.Errorf("Credential(device) = %+v, %v; want its hash, worker %s %q, no admin, not revoked", got, ok, w.ID, w.Name)
	}
	if got := inView(e, "KnownCursor", func(tx store.Tx) (uint64, error) { return tx.KnownCursor(ctx, d1.ID) }); got != 7 {
		t.Errorf("KnownCursor(a device inserted with 7) = %d", got)
	}

	// Revoking twice keeps the first record.
	revoked := at.Add(24 * time.Hour)
	e.update("RevokeDevice", func(tx store.Tx) error { return tx.RevokeDevice(ctx, d1.ID, revoked, "lost on the bus") })
	e.update("RevokeDevice again", func(tx store.Tx) error { return tx.RevokeDevice(ctx, d1.ID, revoked.Add(time.Hour), "again") })
	wantRevoked := d1
	wantRevoked.RevokedAt, wantRevoked.RevokedReason = revoked, "lost on the bus"
	if got, ok := device(d1.ID); !ok || got != wantRevoked {
		t.Errorf("Device after revoking it twice = %+v, %v; want the first revocation: %+v", got, ok, wantRevoked)
	}
	if got, ok := e.credential(d1.ID); !ok || !got.RevokedAt.Equal(revoked) || got.RevokedReason != "lost on the bus" {
		t.Errorf("Credential of a revoked device = %+v, %v; want revoked at %s, %q", got, ok, revoked, "lost on the bus")
	}
	if got := devices(w.ID); !slices.Equal(got, []store.Device{wantRevoked, d2}) {
		t.Errorf("Devices after a revocation = %+v; want %+v", got, []store.Device{wantRevoked, d2})
	}

	// Being seen: the newest time is kept (two servers may record out of
	// order), admins' tokens are not devices, and revoked devices count.
	seenCount := func(since time.Time) int {
		t.Helper()
		return inView(e, "CountDevicesSeen", func(tx store.Tx) (int, error) { return tx.CountDevicesSeen(ctx, since) })
	}
	if n := seenCount(time.Time{}); n != 0 {
		t.Errorf("CountDevicesSeen before any was seen = %d; want 0", n)
	}
	seen := at.Add(3 * time.Hour)
	for _, s := range []struct {
		id string
		at time.Time
	}{{d1.ID, seen}, {d2.ID, seen.Add(time.Hour)}, {d2.ID, seen}, {root.CredentialID, seen.Add(2 * time.Hour)}} {
		e.update("SeeCredential", func(tx store.Tx) error { return tx.SeeCredential(ctx, s.id, s.at) })
	}
	if got, ok := device(d2.ID); !ok || !got.LastSeen.Equal(seen.Add(time.Hour)) {
		t.Errorf("Device seen at +1h then at +0h: LastSeen = %v; want the newer, %v", got.LastSeen, seen.Add(time.Hour))
	}
	if got, ok := e.credential(d1.ID); !ok || !got.LastSeen.Equal(seen) {
		t.Errorf("Credential(device seen).LastSeen = %v; want %v", got.LastSeen, seen)
	}
	if got, ok := e.credential(root.CredentialID); !ok || !got.LastSeen.Equal(seen.Add(2*time.Hour)) {
		t.Errorf("Credential(admin seen).LastSeen = %v; want %v", got.LastSeen, seen.Add(2*time.Hour))
	}
	if got, ok := device(d3.ID); !ok || !got.LastSeen.IsZero() {
		t.Errorf("Device never seen: LastSeen = %v; want zero", got.LastSeen)
	}
	for _, c := range []struct {
		since time.Time
		want  int
	}{{time.Time{}, 2}, {seen, 2}, {seen.Add(time.Second), 1}, {seen.Add(time.Hour), 1}, {seen.Add(time.Hour + time.Second), 0}} {
		if n := seenCount(c.since); n != c.want {
			t.Errorf("CountDevicesSeen(%v) = %d; want %d (devices only, at or after since)", c.since.Sub(seen), n, c.want)
		}
	}

	// A device's account of itself at a sync, and who has been silent:
	// revoked devices are not, one that never synced counts from its
	// enrolment.
	synced := store.DeviceSync{At: at.Add(5 * time.Hour), AppVersion: "2.3.1 (android)", OldestUnsynced: at.Add(-48 * time.Hour), Outbox: 17}
	e.update("RecordDeviceSync", func(tx store.Tx) error { return tx.RecordDeviceSync(ctx, d2.ID, synced) })
	e.update("RecordDeviceSync of an admin's token", func(tx store.Tx) error {
		return tx.RecordDeviceSync(ctx, root.CredentialID, synced)
	})
	if got, ok := device(d2.ID); !ok || got.Sync != synced {
		t.Errorf("Device after RecordDeviceSync: %+v, %v; want %+v", got.Sync, ok, synced)
	}
	laterSync := synced
	laterSync.OldestUnsynced, laterSync.Outbox, laterSync.At = time.Time{}, 0, synced.At.Add(time.Hour)
	e.update("RecordDeviceSync again", func(tx store.Tx) error { return tx.RecordDeviceSync(ctx, d2.ID, laterSync) })
	if got, _ := device(d2.ID); got.Sync != laterSync {
		t.Errorf("Device after a second sync: %+v; want %+v (nothing waiting)", got.Sync, laterSync)
	}
	silent := func(since time.Time) int {
		t.Helper()
		return inView(e, "CountDevicesSilent", func(tx store.Tx) (int, error) { return tx.CountDevicesSilent(ctx, since) })
	}
	// d1 is revoked; d2 synced at laterSync.At; d3 (another worker's) never did.
	for _, c := range []struct {
		since time.Time
		want  int
	}{{d3.EnrolledAt, 0}, {d3.EnrolledAt.Add(time.Second), 1}, {laterSync.At, 1}, {laterSync.At.Add(time.Millisecond), 2}} {
		if n := silent(c.since); n != c.want {
			t.Errorf("CountDevicesSilent(%v) = %d; want %d", c.since, n, c.want)
		}
	}

	// Enrolment codes.
	code := store.EnrollmentCode{Hash: []byte("code hash"), WorkerID: w.ID, CreatedBy: root.ID, Expires: at.Add(48 * time.Hour)}
	e.update("InsertCode", func(tx store.Tx) error { return tx.InsertCode(ctx, code) })
	readCode := func(hash []byte) (store.EnrollmentCode, bool) {
		t.Helper()
		var c store.EnrollmentCode
		var ok bool
		e.view("Code", func(tx store.Tx) error {
			var err error
			c, ok, err = tx.Code(ctx, hash)
			return err
		})
		return c, ok
	}
	sameCode := func(a, b store.EnrollmentCode) bool {
		return bytes.Equal(a.Hash, b.Hash) && a.WorkerID == b.WorkerID && a.CreatedBy == b.CreatedBy && a.Expires.Equal(b.Expires) && a.Used == b.Used
	}
	if got, ok := readCode(code.Hash); !ok || !sameCode(got, code) {
		t.Errorf("Code = %+v, %v; want %+v", got, ok, code)
	}
	if got, ok := readCode([]byte("unknown")); ok {
		t.Errorf("Code(unknown) = %+v; want not found", got)
	}
	e.update("SpendCode", func(tx store.Tx) error { return tx.SpendCode(ctx, code.Hash, at.Add(time.Hour)) })
	spent := code
	spent.Used = true
	if got, ok := readCode(code.Hash); !ok || !sameCode(got, spent) {
		t.Errorf("Code after SpendCode = %+v, %v; want %+v", got, ok, spent)
	}

	// Failures: counted since a time, of a key and of all; recording one
	// forgets those before its forget time.
	base := at.Add(2 * time.Hour)
	for i, key := range []string{"10.0.0.1", "10.0.0.1", "10.0.0.2"} {
		when := base.Add(time.Duration(i) * time.Minute)
		e.update("RecordFailure", func(tx store.Tx) error { return tx.RecordFailure(ctx, key, when, base.Add(-time.Hour)) })
	}
	count := func(key string, since time.Time) (int, int) {
		var ofKey, all int
		e.view("CountFailures", func(tx store.Tx) error {
			var err error
			ofKey, all, err = tx.CountFailures(ctx, key, since)
			return err
		})
		return ofKey, all
	}
	if k, a := count("10.0.0.1", base); k != 2 || a != 3 {
		t.Errorf("CountFailures(10.0.0.1, since the first) = %d, %d; want 2, 3", k, a)
	}
	if k, a := count("10.0.0.1", base.Add(time.Minute)); k != 1 || a != 2 {
		t.Errorf("CountFailures(10.0.0.1, since the second) = %d, %d; want 1, 2 (at or after since)", k, a)
	}
	e.update("RecordFailure", func(tx store.Tx) error {
		return tx.RecordFailure(ctx, "10.0.0.3", base.Add(time.Hour), base.Add(2*time.Minute))
	})
	if k, a := count("10.0.0.1", time.Time{}); k != 0 || a != 2 {
		t.Errorf("CountFailures after forgetting those before the third = %d, %d; want 0, 2", k, a)
	}
}

// foldVisits gives VisitsBy's rows as a backend may fold them: an amended
// visit's row whole, and a plain one as its worker, household and grid,
// once, with a time checked to be in [from, to).
func foldVisits(t *testing.T, ws []store.WorkerVisit, from, to time.Time) []string {
	t.Helper()
	var out []string
	for _, w := range ws {
		if w.Amended {
			out = append(out, fmt.Sprintf("amended %s %s %s %s %s", w.VisitID, w.VisitorID, w.At.UTC().Format(time.RFC3339), w.HouseholdID, w.GridID))
			continue
		}
		if w.At.Before(from) || !w.At.Before(to) {
			t.Errorf("VisitsBy: %+v was not made in [%v, %v)", w, from, to)
		}
		out = append(out, fmt.Sprintf("plain %s %s %s", w.VisitorID, w.HouseholdID, w.GridID))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// testReposReports: what reports and exports read, and the audit log.
func testReposReports(t *testing.T, newEnv func(BackendOptions) *repoEnv) {
	e := newEnv(BackendOptions{})
	ctx := e.ctx
	tr := e.tree()
	g1, g2, g3 := tr.g1.ID, tr.g2.ID, tr.g3.ID
	wA, wB, wC := e.worker("A", tr.s1.ID), e.worker("B", tr.s1.ID), e.worker("C", tr.s2.ID)
	e.update("AddWorkerGrid", func(tx store.Tx) error {
		return errors.Join(tx.AddWorkerGrid(ctx, wA.ID, g1), tx.AddWorkerGrid(ctx, wB.ID, g1), tx.AddWorkerGrid(ctx, wB.ID, g2),
			tx.AddWorkerGrid(ctx, wC.ID, g3))
	})
	h1, h2, h3, h4 := e.household(g1), e.household(g1), e.household(g2), e.household(g3)
	h2.Deleted = syncengine.NewRegister(true, e.hlc.next())
	gone := newID() // a household id with no row
	t0 := time.Date(2026, 4, 10, 10, 0, 0, 0, time.UTC)
	v1 := e.visit(wA.ID, t0, h1.ID)
	v2 := e.visit(wA.ID, t0.Add(-30*24*time.Hour), h1.ID)
	v3 := e.visit(wB.ID, t0.Add(time.Hour), h1.ID, h3.ID)
	v4 := e.visit(wA.ID, t0.Add(2*time.Hour), h2.ID)
	v5 := e.visit(wC.ID, t0, h4.ID)
	v6 := e.visit(wA.ID, t0.Add(3*time.Hour), h4.ID)
	v7 := e.visit(wA.ID, t0.Add(time.Hour), gone)
	v8 := withDetails(e.visit(wA.ID, t0, h3.ID), newID()) // v1's visitor and time
	a1 := e.void(v2.ID, wA.ID)
	a2 := e.correction(v1.ID, wA.ID, t0.Add(-time.Hour))
	e.update("PutHousehold, InsertVisit, InsertAmendment", func(tx store.Tx) error {
		var errs []error
		for _, h := range []*syncengine.Household{h1, h2, h3, h4} {
			errs = append(errs, tx.PutHousehold(ctx, h))
		}
		for _, v := range []*syncengine.Visit{v1, v2, v3, v4, v5, v6, v7, v8} {
			_, err := tx.InsertVisit(ctx, v)
			errs = append(errs, err)
		}
		for _, a := range []*syncengine.Amendment{a1, a2} {
			_, err := tx.InsertAmendment(ctx, a)
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})

	// FieldRows: fieldwork/fieldworktest holds it to its contract; a
	// smoke call of each method here.
	e.view("FieldRows", func(tx store.Tx) error {
		rows := tx.FieldRows([]string{g1, g2})
		var live []string
		if err := rows.Households(ctx, func(h *fieldwork.HouseholdRow) error { live = append(live, h.ID); return nil }); err != nil {
			return fmt.Errorf("FieldRows.Households: %w", err)
		}
		sameSet(t, "FieldRows(g1, g2).Households: the live households", live, []string{h1.ID, h3.ID})
		if _, err := rows.Amendments(ctx); err != nil {
			return fmt.Errorf("FieldRows.Amendments: %w", err)
		}
		if err := rows.PlainVisits(ctx, t0.Add(-time.Hour), t0.Add(time.Hour), time.Time{}, func(*fieldwork.VisitAggregate) error { return nil }); err != nil {
			return fmt.Errorf("FieldRows.PlainVisits: %w", err)
		}
		if err := rows.SpecialVisits(ctx, func(*fieldwork.VisitRow) error { return nil }); err != nil {
			return fmt.Errorf("FieldRows.SpecialVisits: %w", err)
		}
		vs, err := rows.Visits(ctx, []string{v3.ID})
		if err != nil {
			return fmt.Errorf("FieldRows.Visits: %w", err)
		}
		wantRows(t, "FieldRows.Visits", vs, []syncengine.Visit{*v3}, vid, visitEqual)
		return nil
	})
	// HouseholdRows: the rows of a page of households, here as a whole
	// analysis: h1's newest visit that counts is v3 (v1 corrected to an
	// hour earlier, v2 voided); h2 is deleted; gone has no row.
	e.view("HouseholdRows", func(tx store.Tx) error {
		a, err := fieldwork.Load(ctx, tx.HouseholdRows([]string{h1.ID, h2.ID, h4.ID, gone}), nil, nil)
		if err != nil {
			return fmt.Errorf("HouseholdRows: %w", err)
		}
		var live []string
		for _, h := range a.Households {
			live = append(live, h.ID)
		}
		sameSet(t, "HouseholdRows(h1, h2, h4, gone): the live households", live, []string{h1.ID, h4.ID})
		if h := a.Household(h1.ID); h == nil || !h.LastVisit.Equal(v3.VisitedAt) {
			t.Errorf("HouseholdRows: h1 last visited %v, want %v", h, v3.VisitedAt)
		}
		if h := a.Household(h4.ID); h == nil || !h.LastVisit.Equal(v6.VisitedAt) {
			t.Errorf("HouseholdRows: h4 last visited %v, want %v", h, v6.VisitedAt)
		}
		return nil
	})

	for _, c := range []struct {
		grids []string
		want  []string
	}{{[]string{g1}, []string{wA.ID, wB.ID}}, {[]string{g2}, []string{wB.ID}}, {[]string{g1, g2}, []string{wA.ID, wB.ID}}, {[]string{newID()}, nil}, {nil, nil}} {
		got := inView(e, "WorkersOfGrids", func(tx store.Tx) ([]string, error) { return tx.WorkersOfGrids(ctx, c.grids) })
		if slices.Sort(got); !slices.Equal(got, set(c.want)) {
			t.Errorf("WorkersOfGrids(%d grids) = %v; want each worker once: %v", len(c.grids), got, set(c.want))
		}
	}

	// VisitsBy: [t0, t0+2h), or amended; one row per household. Asked
	// again once a campaign has the window, when a backend may fold the
	// plain visits of a household and worker into one row.
	wv := func(v *syncengine.Visit, household, grid string, amended bool) store.WorkerVisit {
		return store.WorkerVisit{VisitID: v.ID, VisitorID: v.VisitorID, At: v.VisitedAt, HouseholdID: household, GridID: grid, Amended: amended}
	}
	wantVisits := []store.WorkerVisit{wv(v1, h1.ID, g1, true), wv(v2, h1.ID, g1, true), wv(v3, h1.ID, g1, false), wv(v3, h3.ID, g2, false),
		wv(v7, gone, "", false), wv(v8, h3.ID, g2, false)}
	from, to := t0, t0.Add(2*time.Hour)
	for _, kept := range []bool{false, true} {
		if kept {
			c := e.campaign(tr.s1.ID, from, to)
			e.update("PutCampaign", func(tx store.Tx) error { return tx.PutCampaign(ctx, c) })
		}
		got := inView(e, "VisitsBy", func(tx store.Tx) ([]store.WorkerVisit, error) {
			return tx.VisitsBy(ctx, []string{wA.ID, wB.ID}, from, to, nil, nil)
		})
		sameSet(t, fmt.Sprintf("VisitsBy(A and B, [t0, t0+2h)), window kept %v", kept), foldVisits(t, got, from, to), foldVisits(t, wantVisits, from, to))
		// Except g1: the rows of households now in g1 left out, those of
		// gone households kept.
		wantOutside := slices.DeleteFunc(slices.Clone(wantVisits), func(w store.WorkerVisit) bool { return w.GridID == g1 })
		// Inside g1, B's plain visits reach h1 (v3), A's none (v1 is
		// amended): B's sums reach h3 besides, A's the gone household.
		for _, inside := range []map[string]int{nil, {wB.ID: 1}} {
			got = inView(e, "VisitsBy", func(tx store.Tx) ([]store.WorkerVisit, error) {
				return tx.VisitsBy(ctx, []string{wA.ID, wB.ID}, from, to, []string{g1}, inside)
			})
			sameSet(t, fmt.Sprintf("VisitsBy(A and B, [t0, t0+2h), except g1, inside %v), window kept %v", inside, kept),
				foldVisits(t, got, from, to), foldVisits(t, wantOutside, from, to))
		}
		if got := inView(e, "VisitsBy", func(tx store.Tx) ([]store.WorkerVisit, error) {
			return tx.VisitsBy(ctx, nil, from, to, nil, nil)
		}); len(got) != 0 {
			t.Errorf("VisitsBy(no workers) = %+v; want none", got)
		}
	}

	// TrackedHouseholds: v8 found a hazard (an item) at h3 alone.
	for _, c := range []struct {
		grids []string
		want  []string
	}{{[]string{g1, g2}, []string{h3.ID}}, {[]string{g2, g3}, []string{h3.ID}}, {[]string{g1}, nil}, {nil, nil}} {
		got := inView(e, "TrackedHouseholds", func(tx store.Tx) ([]string, error) { return tx.TrackedHouseholds(ctx, c.grids) })
		if !slices.Equal(got, c.want) {
			t.Errorf("TrackedHouseholds(%d grids) = %v; want %v", len(c.grids), got, c.want)
		}
	}

	as := inView(e, "AmendmentsOfVisits", func(tx store.Tx) ([]syncengine.Amendment, error) {
		return tx.AmendmentsOfVisits(ctx, []string{v1.ID, v2.ID, v5.ID, newID()})
	})
	wantRows(t, "AmendmentsOfVisits(two amended, one not, one unknown)", sortedBy(as, aid), byID([]*syncengine.Amendment{a1, a2}, aid), aid, amendmentEqual)
	if as := inView(e, "AmendmentsOfVisits", func(tx store.Tx) ([]syncengine.Amendment, error) {
		return tx.AmendmentsOfVisits(ctx, []string{v3.ID})
	}); len(as) != 0 {
		t.Errorf("AmendmentsOfVisits(a visit never amended) = %+v; want none", as)
	}

	live := slices.Sorted(slices.Values([]string{h1.ID, h3.ID}))
	for _, c := range []struct {
		what  string
		grids []string
		after string
		limit int
		want  []string
	}{
		{"g1 and g2", []string{g1, g2}, "", 10, live},
		{"first page", []string{g1, g2}, "", 1, live[:1]},
		{"next page", []string{g1, g2}, live[0], 1, live[1:]},
		{"past the last", []string{g1, g2}, live[1], 1, nil},
		{"g3", []string{g3}, "", 10, []string{h4.ID}},
		{"no grids", nil, "", 10, nil},
	} {
		if got := inView(e, "LiveHouseholdIDs", func(tx store.Tx) ([]string, error) {
			return tx.LiveHouseholdIDs(ctx, c.grids, c.after, c.limit)
		}); !slices.Equal(got, c.want) {
			t.Errorf("LiveHouseholdIDs(%s) = %v; want %v", c.what, got, c.want)
		}
	}

	// VisitKeys: visits to live households of the grids, by visitor, time
	// and id, in pages.
	key := func(v *syncengine.Visit) store.VisitKey {
		return store.VisitKey{VisitorID: v.VisitorID, At: v.VisitedAt, ID: v.ID}
	}
	byKey := func(a, b store.VisitKey) int {
		return cmp.Or(strings.Compare(a.VisitorID, b.VisitorID), a.At.Compare(b.At), strings.Compare(a.ID, b.ID))
	}
	for _, c := range []struct {
		grids []string
		want  []store.VisitKey
	}{
		{[]string{g1, g2}, slices.SortedFunc(slices.Values([]store.VisitKey{key(v1), key(v2), key(v3), key(v8)}), byKey)},
		{[]string{g3}, slices.SortedFunc(slices.Values([]store.VisitKey{key(v5), key(v6)}), byKey)},
		{nil, nil},
	} {
		for _, limit := range []int{100, 3, 1} {
			var all []store.VisitKey
			var after store.VisitKey
			for range 10 {
				page := inView(e, "VisitKeys", func(tx store.Tx) ([]store.VisitKey, error) { return tx.VisitKeys(ctx, c.grids, after, limit) })
				if len(page) > limit {
					t.Errorf("VisitKeys(limit %d) returned %d keys", limit, len(page))
				}
				if len(page) == 0 {
					break
				}
				for i := range page {
					page[i].At = page[i].At.UTC()
				}
				all = append(all, page...)
				after = page[len(page)-1]
			}
			if !slices.Equal(all, c.want) {
				t.Errorf("VisitKeys(%d grids) in pages of %d = %+v; want by visitor, time and id: %+v", len(c.grids), limit, all, c.want)
			}
		}
	}

	// The audit log: newest first, each entry with its admin's node.
	admins := []store.Principal{
		{Kind: store.KindAdmin, ID: newID(), Name: "street admin", CredentialID: newID(), Node: tr.s1.ID},
		{Kind: store.KindAdmin, ID: newID(), Name: "root", CredentialID: newID()},
	}
	for _, a := range admins {
		e.update("InsertAdmin", func(tx store.Tx) error { return tx.InsertAdmin(ctx, a, []byte("hash"), t0) })
	}
	entry := func(admin int, at time.Time, action string) store.AuditEntry {
		return store.AuditEntry{ID: newID(), At: at, AdminID: admins[admin].ID, Action: action, NodeID: g1, CampaignID: newID()}
	}
	e1, e2, e3 := entry(0, t0, "report"), entry(1, t0.Add(time.Minute+123*time.Millisecond), "export ledger"), entry(0, t0.Add(2*time.Minute), "export visits")
	e2.CampaignID, e2.NodeID = "", ""
	for _, en := range []store.AuditEntry{e2, e3, e1} {
		e.update("InsertAudit", func(tx store.Tx) error { return tx.InsertAudit(ctx, en) })
	}
	type seen struct {
		e    store.AuditEntry
		node string
	}
	audit := func(stop int) []seen {
		t.Helper()
		var out []seen
		e.view("AuditEntries", func(tx store.Tx) error {
			out = nil
			return tx.AuditEntries(ctx, func(en store.AuditEntry, node string) bool {
				// AdminName is not AuditEntries' to promise.
				en.At, en.AdminName = en.At.UTC(), ""
				out = append(out, seen{en, node})
				return len(out) < stop
			})
		})
		return out
	}
	want := []seen{{e3, tr.s1.ID}, {e2, ""}, {e1, tr.s1.ID}}
	if got := audit(100); !slices.Equal(got, want) {
		t.Errorf("AuditEntries = %+v; want newest first, with the admins' nodes: %+v", got, want)
	}
	if got := audit(2); !slices.Equal(got, want[:2]) {
		t.Errorf("AuditEntries stopped after 2 = %+v; want %+v", got, want[:2])
	}

	// An erasure replaces immutable rows.
	erased := *v8
	erased.Notes, erased.Findings = "", slices.Clone(v8.Findings)
	for i := range erased.Findings {
		erased.Findings[i].Note = ""
	}
	erasedAmendment := *a2
	erasedAmendment.Reason, erasedAmendment.Notes = "(erased)", new(string)
	e.update("ReplaceVisit and ReplaceAmendment", func(tx store.Tx) error {
		return errors.Join(tx.ReplaceVisit(ctx, &erased), tx.ReplaceAmendment(ctx, &erasedAmendment))
	})
	e.view("replaced rows", func(tx store.Tx) error {
		vs, err := tx.Visits(ctx, []string{v8.ID, v1.ID})
		if err != nil {
			return err
		}
		wantRows(t, "Visits after ReplaceVisit", vs, byID([]*syncengine.Visit{&erased, v1}, vid), vid, visitEqual)
		as, err := tx.Amendments(ctx, []string{a2.ID, a1.ID})
		if err != nil {
			return err
		}
		wantRows(t, "Amendments after ReplaceAmendment", as, byID([]*syncengine.Amendment{&erasedAmendment, a1}, aid), aid, amendmentEqual)
		if n, err := tx.CountVisits(ctx, h3.ID, time.Time{}, time.Time{}); err != nil || n != 2 {
			t.Errorf("CountVisits of the replaced visit's household = %d, %v; want 2, as before", n, err)
		}
		return nil
	})
	err := e.db.Update(ctx, func(tx store.Tx) error { _, err := tx.InsertVisit(ctx, v8); return err })
	wantErr(t, err, "InsertVisit(the visit as it was before ReplaceVisit)", syncengine.ErrAlreadyExists)
}

// testReposCollect: tombstones, history and codes before the horizon go;
// cursors before it expire; the collected rows are remembered until
// ForgetBefore. The backend is closed last.
func testReposCollect(t *testing.T, newEnv func(BackendOptions) *repoEnv) {
	clk := &fakeClock{t: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	e := newEnv(BackendOptions{Now: clk.Now})
	ctx := e.ctx
	tr := e.tree()
	g1 := tr.g1.ID
	w := e.worker("Li Na", tr.s1.ID)
	dev := e.device(w.ID, clk.Now(), 0)
	h := e.household(g1)
	pDead, pLive := e.person(h.ID), e.person(h.ID)
	pDead.Deleted = syncengine.NewRegister(true, e.hlc.next())
	tDead, tLive, tLate := e.tag(h.ID, "elderly"), e.tag(h.ID, "disabled"), e.tag(h.ID, "vulnerable")
	tDead.Removed = true
	change := newID()
	e.update("the rows before the horizon", func(tx store.Tx) error {
		return errors.Join(
			tx.PutHousehold(ctx, h), tx.Touch(ctx, store.EntityHousehold, h.ID, h.ID, ""),
			tx.PutPerson(ctx, pDead), tx.Touch(ctx, store.EntityPerson, pDead.ID, h.ID, ""),
			tx.PutPerson(ctx, pLive), tx.Touch(ctx, store.EntityPerson, pLive.ID, h.ID, ""),
			tx.PutTag(ctx, tLive), tx.Touch(ctx, store.EntityTag, tLive.AddID, h.ID, ""),
			tx.RecordApplied(ctx, change, store.AppliedChange{CredentialID: dev.ID}),
			tx.AddWorkerGrid(ctx, w.ID, g1), tx.RecordMove(ctx, h.ID, tr.g2.ID, g1),
			// The last position before the horizon: collected too.
			tx.PutTag(ctx, tDead), tx.Touch(ctx, store.EntityTag, tDead.AddID, h.ID, ""))
	})
	before := e.head()
	// Codes expired just before CodesBefore, and at it.
	codesBefore := clk.Now().Add(2 * time.Hour)
	oldCode := store.EnrollmentCode{Hash: []byte("old code"), WorkerID: w.ID, CreatedBy: newID(), Expires: codesBefore.Add(-time.Second)}
	newCode := store.EnrollmentCode{Hash: []byte("new code"), WorkerID: w.ID, CreatedBy: newID(), Expires: codesBefore}
	e.commit("InsertCode ×2", 0, func(tx store.Tx) error { return errors.Join(tx.InsertCode(ctx, oldCode), tx.InsertCode(ctx, newCode)) })
	clk.Advance(time.Hour)
	tLate.Removed = true
	e.update("a tombstone after the horizon", func(tx store.Tx) error {
		return errors.Join(tx.PutTag(ctx, tLate), tx.Touch(ctx, store.EntityTag, tLate.AddID, h.ID, ""))
	})
	oldCursor := inView(e, "Cursor", func(tx store.Tx) (uint64, error) { return tx.Cursor(ctx, before-1) })

	clk.Advance(time.Hour)
	now := clk.Now()
	c, err := e.db.Collect(ctx, store.CollectRequest{Before: before, At: now, ForgetBefore: now.Add(-time.Hour), CodesBefore: codesBefore})
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if c.Tombstones != 2 || c.Codes != 1 || c.AppliedChanges != 1 || c.ScopeEvents != 1 || c.Moves != 1 {
		t.Errorf("Collect = %+v; want 2 tombstones, 1 code, 1 applied change, 1 grid change and 1 move", c)
	}
	top := e.head()
	e.view("after Collect", func(tx store.Tx) error {
		ps, err := tx.Persons(ctx, []string{pDead.ID, pLive.ID})
		if err != nil {
			return err
		}
		wantRows(t, "Persons after Collect: the deleted one is gone", ps, []syncengine.Person{*pLive}, pid, deepEqual)
		ts, err := tx.Tags(ctx, []string{tDead.AddID, tLive.AddID, tLate.AddID})
		if err != nil {
			return err
		}
		wantRows(t, "Tags after Collect: the one removed before the horizon is gone", ts, byID([]*syncengine.TagElement{tLive, tLate}, tid), tid, deepEqual)
		for _, c := range []struct {
			what string
			kind store.EntityKind
			id   string
			want bool
		}{
			{"a person deleted before the horizon", store.EntityPerson, pDead.ID, true},
			{"a tag removed before the horizon", store.EntityTag, tDead.AddID, true},
			{"a live person", store.EntityPerson, pLive.ID, false},
			{"a live tag", store.EntityTag, tLive.AddID, false},
			{"a tag removed after the horizon", store.EntityTag, tLate.AddID, false},
		} {
			if got, err := tx.WasCollected(ctx, c.kind, c.id); err != nil || got != c.want {
				t.Errorf("WasCollected(%s) = %v, %v; want %v", c.what, got, err, c.want)
			}
		}
		if a, err := tx.AppliedChanges(ctx, []string{change}); err != nil || len(a) != 0 {
			t.Errorf("AppliedChanges(applied before the horizon) = %+v, %v; want none", a, err)
		}
		if evs, err := tx.ScopeEvents(ctx, w.ID, 0, top); err != nil || len(evs) != 0 {
			t.Errorf("ScopeEvents(before the horizon) = %+v, %v; want none", evs, err)
		}
		if ms, err := tx.HouseholdMoves(ctx, h.ID, 0); err != nil || len(ms) != 0 {
			t.Errorf("HouseholdMoves(before the horizon) = %+v, %v; want none", ms, err)
		}
		if _, ok, err := tx.Code(ctx, oldCode.Hash); err != nil || ok {
			t.Errorf("Code(expired a second before CodesBefore) = %v, %v; want gone", ok, err)
		}
		if _, ok, err := tx.Code(ctx, newCode.Hash); err != nil || !ok {
			t.Errorf("Code(expiring at CodesBefore) = %v, %v; want kept", ok, err)
		}
		if _, err := tx.Position(ctx, oldCursor, top); !errors.Is(err, syncengine.ErrCursorExpired) {
			t.Errorf("Position(a cursor before the horizon) = %v; want %v", err, syncengine.ErrCursorExpired)
		}
		fresh, err := tx.Cursor(ctx, top)
		if err != nil {
			return err
		}
		if p, err := tx.Position(ctx, fresh, top); err != nil || p != top {
			t.Errorf("Position(Cursor(Head)) after Collect = %d, %v; want %d", p, err, top)
		}
		return nil
	})

	// The collected rows are remembered until ForgetBefore passes them.
	clk.Advance(time.Hour)
	if _, err := e.db.Collect(ctx, store.CollectRequest{Before: before, At: clk.Now(), ForgetBefore: now.Add(time.Millisecond), CodesBefore: codesBefore}); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	e.view("after forgetting", func(tx store.Tx) error {
		for _, c := range []struct {
			kind store.EntityKind
			id   string
		}{{store.EntityPerson, pDead.ID}, {store.EntityTag, tDead.AddID}} {
			if got, err := tx.WasCollected(ctx, c.kind, c.id); err != nil || got {
				t.Errorf("WasCollected(collected at %s) after a Collect forgetting what was collected before %s = %v, %v; want false",
					now, now.Add(time.Millisecond), got, err)
			}
		}
		return nil
	})
	if err := e.db.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// repoEnv is one subtest's backend, seen through recordingBackend.
type repoEnv struct {
	t   *testing.T
	ctx context.Context
	db  store.Backend
	hlc *clockSource
}

// update runs fn in a write transaction that must commit.
func (e *repoEnv) update(what string, fn func(tx store.Tx) error) {
	e.t.Helper()
	if err := e.db.Update(e.ctx, fn); err != nil {
		e.t.Fatalf("Update (%s): %v", what, err)
	}
}

// view runs fn in a read transaction that must succeed.
func (e *repoEnv) view(what string, fn func(tx store.Tx) error) {
	e.t.Helper()
	if err := e.db.View(e.ctx, fn); err != nil {
		e.t.Fatalf("View (%s): %v", what, err)
	}
}

// commit runs fn in an Update that must commit and take n feed positions,
// and returns the head after it.
func (e *repoEnv) commit(what string, n uint64, fn func(tx store.Tx) error) uint64 {
	e.t.Helper()
	before := e.head()
	e.update(what, fn)
	after := e.head()
	if after != before+n {
		e.t.Errorf("%s: Head went from %d to %d; want %d more", what, before, after, n)
	}
	return after
}

func (e *repoEnv) head() uint64 {
	e.t.Helper()
	return inView(e, "Head", func(tx store.Tx) (uint64, error) { return tx.Head(e.ctx) })
}

func (e *repoEnv) positionBefore(at time.Time) uint64 {
	e.t.Helper()
	return inView(e, "PositionBefore", func(tx store.Tx) (uint64, error) { return tx.PositionBefore(e.ctx, at) })
}

// inView runs read in a read transaction of its own; it must succeed.
func inView[T any](e *repoEnv, what string, read func(tx store.Tx) (T, error)) T {
	e.t.Helper()
	var v T
	e.view(what, func(tx store.Tx) error {
		var err error
		v, err = read(tx)
		return err
	})
	return v
}

// inUpdate runs write in a write transaction of its own; it must commit.
func inUpdate[T any](e *repoEnv, what string, write func(tx store.Tx) (T, error)) T {
	e.t.Helper()
	var v T
	e.update(what, func(tx store.Tx) error {
		var err error
		v, err = write(tx)
		return err
	})
	return v
}

// wantHouseholds checks that of ids, Households finds exactly want.
func (e *repoEnv) wantHouseholds(what string, ids []string, want ...*syncengine.Household) {
	e.t.Helper()
	got := inView(e, "Households", func(tx store.Tx) ([]syncengine.Household, error) { return tx.Households(e.ctx, ids) })
	wantRows(e.t, "Households "+what, got, byID(want, hid), hid, deepEqual)
}

func (e *repoEnv) wantWorker(w store.Worker, grids []string) {
	e.t.Helper()
	got := inView(e, "Worker", func(tx store.Tx) (store.Worker, error) { return tx.Worker(e.ctx, w.ID) })
	if got.ID != w.ID || got.Name != w.Name || got.Role != w.Role || !slices.Equal(set(got.GridIDs), set(grids)) {
		w.GridIDs = grids
		e.t.Errorf("Worker(%s) = %+v; want %+v", w.ID, got, w)
	}
}

func (e *repoEnv) credential(id string) (store.Credential, bool) {
	e.t.Helper()
	var c store.Credential
	var ok bool
	e.view("Credential", func(tx store.Tx) error {
		var err error
		c, ok, err = tx.Credential(e.ctx, id)
		return err
	})
	return c, ok
}

// repoTree is an org tree: a district with two streets, each with a
// community; g1 and g2 in the first, g3 in the second. Names repeat, and
// run against ids, so that an order by name and id shows.
type repoTree struct{ d, s1, s2, c1, c2, g1, g2, g3 store.OrgNode }

func (e *repoEnv) tree() repoTree {
	e.t.Helper()
	var tr repoTree
	tr.d = store.OrgNode{ID: newID(), Level: store.LevelDistrict, Name: "Riverside District"}
	tr.s1 = store.OrgNode{ID: newID(), ParentID: tr.d.ID, Level: store.LevelStreet, Name: "North Street"}
	tr.s2 = store.OrgNode{ID: newID(), ParentID: tr.d.ID, Level: store.LevelStreet, Name: "East Street"}
	tr.c1 = store.OrgNode{ID: newID(), ParentID: tr.s1.ID, Level: store.LevelCommunity, Name: "Willow"}
	tr.c2 = store.OrgNode{ID: newID(), ParentID: tr.s2.ID, Level: store.LevelCommunity, Name: "Willow"}
	tr.g1 = store.OrgNode{ID: newID(), ParentID: tr.c1.ID, Level: store.LevelGrid, Name: "Grid B"}
	tr.g2 = store.OrgNode{ID: newID(), ParentID: tr.c1.ID, Level: store.LevelGrid, Name: "Grid A"}
	tr.g3 = store.OrgNode{ID: newID(), ParentID: tr.c2.ID, Level: store.LevelGrid, Name: "Grid A"}
	e.commit("InsertNode", 0, func(tx store.Tx) error {
		var errs []error
		for _, n := range tr.nodes() {
			errs = append(errs, tx.InsertNode(e.ctx, n))
		}
		return errors.Join(errs...)
	})
	return tr
}

// nodes lists the tree's nodes, parents first.
func (tr repoTree) nodes() []store.OrgNode {
	return []store.OrgNode{tr.d, tr.s1, tr.s2, tr.c1, tr.c2, tr.g1, tr.g2, tr.g3}
}

func (e *repoEnv) worker(name, home string) store.Worker {
	e.t.Helper()
	w := store.Worker{ID: newID(), Name: name, Role: 2}
	e.update("InsertWorker", func(tx store.Tx) error {
		return tx.InsertWorker(e.ctx, w, home, time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC))
	})
	return w
}

// device inserts a device of a worker enrolled at (whole seconds), its
// grace starting from feed position known.
func (e *repoEnv) device(workerID string, at time.Time, known uint64) store.Device {
	e.t.Helper()
	d := store.Device{ID: newID(), WorkerID: workerID, Name: "phone", EnrolledAt: at}
	e.update("InsertDevice", func(tx store.Tx) error { return tx.InsertDevice(e.ctx, d, []byte("device secret hash"), known) })
	return d
}

// Row builders: every field of each type set, each write under a clock of
// its own. Some clocks carry a node with the top bit set, as a hash often
// does, so that a backend storing it as a signed integer must take it
// back whole.

func (e *repoEnv) household(grid string) *syncengine.Household {
	c := e.hlc.next
	return &syncengine.Household{
		ID:                newID(),
		GridID:            syncengine.NewRegister(grid, c()),
		HeadName:          syncengine.NewRegister("Wang Fang", c()),
		Address:           syncengine.NewRegister("Lane 12 No. 3, Room 401", c()),
		PhoneMobile:       syncengine.NewRegister("13800000000", c()),
		PhoneLandline:     syncengine.NewRegister("021-5555 0101", c()),
		ResponsibleWorker: syncengine.NewRegister("Li Na", c()),
		ResponsibleLeader: syncengine.NewRegister("Chen Jun", c()),
		ResponsibleUnit:   syncengine.NewRegister("Neighbourhood committee", c()),
		MemberCount:       syncengine.NewRegister(int64(3), c()),
		HousingType:       syncengine.NewRegister("rented", c()),
		Notes:             syncengine.NewRegister("dog in the yard", c()),
		Deleted:           syncengine.NewRegister(false, wideClock(c())),
	}
}

func (e *repoEnv) person(householdID string) *syncengine.Person {
	c := e.hlc.next
	return &syncengine.Person{
		ID:          newID(),
		HouseholdID: householdID,
		Name:        syncengine.NewRegister("Wang Xiaoming", c()),
		IDNumber:    syncengine.NewRegister("110101199003074514", c()),
		Gender:      syncengine.NewRegister("m", c()),
		BirthDate:   syncengine.NewRegister("1990-03-07", c()),
		Phone:       syncengine.NewRegister("13700000000", c()),
		Relation:    syncengine.NewRegister("son", c()),
		Notes:       syncengine.NewRegister("works nights", wideClock(c())),
	}
}

func (e *repoEnv) tag(householdID, category string) *syncengine.TagElement {
	return &syncengine.TagElement{AddID: newID(), HouseholdID: householdID, Category: category, Clock: wideClock(e.hlc.next())}
}

// visit is a visit by visitor at at: in person to one household, a talk
// to several (in the order given).
func (e *repoEnv) visit(visitor string, at time.Time, households ...string) *syncengine.Visit {
	form := syncengine.FormInPerson
	if len(households) > 1 {
		form = syncengine.FormTalk
	}
	v := &syncengine.Visit{ID: newID(), HouseholdIDs: households, VisitorID: visitor, VisitedAt: at, Form: form,
		Notes: "talked at the door", Clock: wideClock(e.hlc.next())}
	e.valid(v.Validate())
	return v
}

// withDetails gives v every detail a visit records.
func withDetails(v *syncengine.Visit, campaignID string) *syncengine.Visit {
	v.Materials = []syncengine.Material{syncengine.MaterialOpenLetter, syncengine.MaterialPledgeForm}
	v.Findings = []syncengine.Finding{{Kind: syncengine.FindingHazard, Note: "loose wiring"}, {Kind: syncengine.FindingHardship, Note: "lives alone"}}
	v.RevisitReasons = []syncengine.RevisitReason{syncengine.RevisitUnstableMood}
	v.RevisitDue = v.VisitedAt.Add(7 * 24 * time.Hour)
	v.CampaignID = campaignID
	v.Answers = []syncengine.SurveyAnswer{{Question: "safety", Value: 4}, {Question: "services", Value: 2}}
	return v
}

func (e *repoEnv) correction(visitID, author string, visitedAt time.Time) *syncengine.Amendment {
	notes := "corrected notes"
	a := &syncengine.Amendment{ID: newID(), VisitID: visitID, AuthorID: author, Kind: syncengine.AmendCorrect, Reason: "entered the wrong day",
		Notes: &notes, Form: syncengine.FormPhone, VisitedAt: visitedAt, Clock: e.hlc.next()}
	e.valid(a.Validate())
	return a
}

func (e *repoEnv) void(visitID, author string) *syncengine.Amendment {
	a := &syncengine.Amendment{ID: newID(), VisitID: visitID, AuthorID: author, Kind: syncengine.AmendVoid, Reason: "entered twice", Clock: e.hlc.next()}
	e.valid(a.Validate())
	return a
}

func (e *repoEnv) assignment(visitID, author string, deadline time.Time) *syncengine.Amendment {
	a := &syncengine.Amendment{ID: newID(), VisitID: visitID, AuthorID: author, Kind: syncengine.AmendItemAssign, Reason: "for the housing office",
		Finding: 1, Unit: "Housing office", Deadline: deadline, Clock: wideClock(e.hlc.next())}
	e.valid(a.Validate())
	return a
}

func (e *repoEnv) category(code string) *syncengine.Category {
	c := e.hlc.next
	return &syncengine.Category{Code: code, NameZH: syncengine.NewRegister(code+" (zh)", c()), NameEN: syncengine.NewRegister(code, c()),
		RevisitDays: syncengine.NewRegister(int64(90), c()), KeyGroup: syncengine.NewRegister(false, c()), Deleted: syncengine.NewRegister(false, c())}
}

func (e *repoEnv) campaign(node string, start, end time.Time) *syncengine.Campaign {
	c := e.hlc.next
	q, err := syncengine.EncodeQuestionnaire([]syncengine.Question{{Code: "safety", TextEN: "Do you feel safe?", Scale: 5, PositiveFrom: 4}})
	e.valid(err)
	camp := &syncengine.Campaign{ID: newID(), NodeID: syncengine.NewRegister(node, c()), Name: syncengine.NewRegister("Spring visits", c()),
		StartsAt: syncengine.NewRegister(start.UnixMilli(), c()), EndsAt: syncengine.NewRegister(end.UnixMilli(), c()),
		Quotas: syncengine.NewRegister(syncengine.EncodeQuotas(map[int32]uint32{1: 40, 2: 10}), c()), Questionnaire: syncengine.NewRegister(q, c()),
		Deleted: syncengine.NewRegister(false, c())}
	e.valid(camp.Validate())
	return camp
}

func (e *repoEnv) valid(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("the suite built an invalid row: %v", err)
	}
}

func wideClock(c syncengine.Clock) syncengine.Clock {
	c.Node |= 1 << 63
	return c
}

// Comparisons.

func hid(h syncengine.Household) string     { return h.ID }
func pid(p syncengine.Person) string        { return p.ID }
func tid(t syncengine.TagElement) string    { return t.AddID }
func vid(v syncengine.Visit) string         { return v.ID }
func aid(a syncengine.Amendment) string     { return a.ID }
func cid(c syncengine.Campaign) string      { return c.ID }
func deepEqual[T any](a, b T) bool          { return reflect.DeepEqual(a, b) }
func visitEqual(a, b syncengine.Visit) bool { return a.Equal(&b) }
func amendmentEqual(a, b syncengine.Amendment) bool {
	return a.Equal(&b)
}

// byID dereferences rows and sorts them by id.
func byID[T any](rows []*T, id func(T) string) []T {
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = *r
	}
	return sortedBy(out, id)
}

func sortedBy[T any](rows []T, id func(T) string) []T {
	out := slices.Clone(rows)
	slices.SortFunc(out, func(a, b T) int { return strings.Compare(id(a), id(b)) })
	return out
}

func equalRows[T any](got, want []T, eq func(a, b T) bool) bool {
	return slices.EqualFunc(got, want, eq)
}

// wantRows checks that got holds want's rows, in want's order.
func wantRows[T any](tb testing.TB, what string, got, want []T, id func(T) string, eq func(a, b T) bool) {
	tb.Helper()
	if equalRows(got, want, eq) {
		return
	}
	ids := func(rows []T) []string {
		out := make([]string, len(rows))
		for i, r := range rows {
			out[i] = id(r)
		}
		return out
	}
	if g, w := ids(got), ids(want); !slices.Equal(g, w) {
		tb.Errorf("%s: got rows %v; want %v", what, g, w)
		return
	}
	for i := range got {
		if !eq(got[i], want[i]) {
			tb.Errorf("%s: row %s = %+v; want %+v", what, id(got[i]), got[i], want[i])
		}
	}
}

func bundleOf(hs []*syncengine.Household, ps []*syncengine.Person, ts []*syncengine.TagElement, vs []*syncengine.Visit, as []*syncengine.Amendment) syncengine.Bundle {
	return syncengine.Bundle{Households: byID(hs, hid), Persons: byID(ps, pid), Tags: byID(ts, tid), Visits: byID(vs, vid), Amendments: byID(as, aid)}
}

// wantBundle checks that got holds want's rows, each once, in any order.
func wantBundle(tb testing.TB, what string, got, want syncengine.Bundle) {
	tb.Helper()
	wantRows(tb, what+": households", sortedBy(got.Households, hid), want.Households, hid, deepEqual)
	wantRows(tb, what+": persons", sortedBy(got.Persons, pid), want.Persons, pid, deepEqual)
	wantRows(tb, what+": tags", sortedBy(got.Tags, tid), want.Tags, tid, deepEqual)
	wantRows(tb, what+": visits", sortedBy(got.Visits, vid), want.Visits, vid, visitEqual)
	wantRows(tb, what+": amendments", sortedBy(got.Amendments, aid), want.Amendments, aid, amendmentEqual)
}

// normDevices puts devices' times in UTC, for comparing them whole.
func normDevices(ds []store.Device) []store.Device {
	out := slices.Clone(ds)
	for i := range out {
		out[i].EnrolledAt = utc(out[i].EnrolledAt)
		out[i].RevokedAt = utc(out[i].RevokedAt)
		out[i].LastSeen = utc(out[i].LastSeen)
	}
	return out
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Round(0)
}

// Recording which methods the suite calls.

// usage records the methods of store.Tx and store.Backend called by a
// run of the suite, across its subtests.
type usage struct {
	mu     sync.Mutex
	called map[string]bool
}

func (u *usage) use(method string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.called[method] = true
}

// check fails the test if a method of store.Tx or store.Backend was never
// called, unless some subtests did not run (go test -run).
func (u *usage) check(t *testing.T, all bool) {
	if !all {
		t.Log("RunRepos: not every subtest ran; the check that every repository method is exercised is skipped")
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	var missing []string
	for _, it := range []struct {
		prefix string
		typ    reflect.Type
	}{{"Tx", reflect.TypeFor[store.Tx]()}, {"Backend", reflect.TypeFor[store.Backend]()}} {
		for i := range it.typ.NumMethod() {
			if name := it.prefix + "." + it.typ.Method(i).Name; !u.called[name] {
				missing = append(missing, "store."+name)
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	why := ""
	if t.Failed() {
		why = " (a subtest failed, and may have stopped before calling them)"
	}
	t.Errorf("RunRepos never exercised %d repository method(s)%s: %s. Give recordingTx (or recordingBackend) a method for each "+
		"that records its use, and check in a subtest what its doc comment promises", len(missing), why, strings.Join(missing, ", "))
}

// recordingBackend is a backend that records which of its methods, and of
// its transactions', are called.
type recordingBackend struct {
	store.Backend
	u *usage
}

var _ store.Backend = (*recordingBackend)(nil)

func (r *recordingBackend) Update(ctx context.Context, fn func(store.Tx) error) error {
	r.u.use("Backend.Update")
	return r.Backend.Update(ctx, func(tx store.Tx) error { return fn(&recordingTx{Tx: tx, u: r.u}) })
}

func (r *recordingBackend) View(ctx context.Context, fn func(store.Tx) error) error {
	r.u.use("Backend.View")
	return r.Backend.View(ctx, func(tx store.Tx) error { return fn(&recordingTx{Tx: tx, u: r.u}) })
}

func (r *recordingBackend) Collect(ctx context.Context, req store.CollectRequest) (store.Collected, error) {
	r.u.use("Backend.Collect")
	return r.Backend.Collect(ctx, req)
}

func (r *recordingBackend) Close() error {
	r.u.use("Backend.Close")
	return r.Backend.Close()
}

// recordingTx is a transaction that records which of its methods are
// called. A method added to store.Tx reaches the backend through the
// embedded Tx without being recorded until it gets a method here, and
// usage.check names it.
type recordingTx struct {
	store.Tx
	u *usage
}

var _ store.Tx = (*recordingTx)(nil)

func (r *recordingTx) use(method string) { r.u.use("Tx." + method) }

// store.Feed

func (r *recordingTx) Head(ctx context.Context) (uint64, error) {
	r.use("Head")
	return r.Tx.Head(ctx)
}

func (r *recordingTx) Position(ctx context.Context, cursor, top uint64) (uint64, error) {
	r.use("Position")
	return r.Tx.Position(ctx, cursor, top)
}

func (r *recordingTx) Cursor(ctx context.Context, seq uint64) (uint64, error) {
	r.use("Cursor")
	return r.Tx.Cursor(ctx, seq)
}

func (r *recordingTx) PositionBefore(ctx context.Context, t time.Time) (uint64, error) {
	r.use("PositionBefore")
	return r.Tx.PositionBefore(ctx, t)
}

func (r *recordingTx) Touch(ctx context.Context, kind store.EntityKind, id, household, origin string) error {
	r.use("Touch")
	return r.Tx.Touch(ctx, kind, id, household, origin)
}

func (r *recordingTx) Entries(ctx context.Context, q store.FeedQuery) ([]store.FeedEntry, error) {
	r.use("Entries")
	return r.Tx.Entries(ctx, q)
}

func (r *recordingTx) AppliedChanges(ctx context.Context, ids []string) (map[string]store.AppliedChange, error) {
	r.use("AppliedChanges")
	return r.Tx.AppliedChanges(ctx, ids)
}

func (r *recordingTx) RecordApplied(ctx context.Context, changeID string, a store.AppliedChange) error {
	r.use("RecordApplied")
	return r.Tx.RecordApplied(ctx, changeID, a)
}

func (r *recordingTx) WasCollected(ctx context.Context, kind store.EntityKind, id string) (bool, error) {
	r.use("WasCollected")
	return r.Tx.WasCollected(ctx, kind, id)
}

func (r *recordingTx) KnownCursor(ctx context.Context, credentialID string) (uint64, error) {
	r.use("KnownCursor")
	return r.Tx.KnownCursor(ctx, credentialID)
}

func (r *recordingTx) RaiseKnownCursor(ctx context.Context, credentialID string, seq uint64) error {
	r.use("RaiseKnownCursor")
	return r.Tx.RaiseKnownCursor(ctx, credentialID, seq)
}

// store.Rows

func (r *recordingTx) Household(ctx context.Context, id string) (syncengine.Household, bool, error) {
	r.use("Household")
	return r.Tx.Household(ctx, id)
}

func (r *recordingTx) Households(ctx context.Context, ids []string) ([]syncengine.Household, error) {
	r.use("Households")
	return r.Tx.Households(ctx, ids)
}

func (r *recordingTx) HouseholdGrids(ctx context.Context, ids []string) (map[string]string, error) {
	r.use("HouseholdGrids")
	return r.Tx.HouseholdGrids(ctx, ids)
}

func (r *recordingTx) Persons(ctx context.Context, ids []string) ([]syncengine.Person, error) {
	r.use("Persons")
	return r.Tx.Persons(ctx, ids)
}

func (r *recordingTx) Tags(ctx context.Context, addIDs []string) ([]syncengine.TagElement, error) {
	r.use("Tags")
	return r.Tx.Tags(ctx, addIDs)
}

func (r *recordingTx) Visits(ctx context.Context, ids []string) ([]syncengine.Visit, error) {
	r.use("Visits")
	return r.Tx.Visits(ctx, ids)
}

func (r *recordingTx) Amendments(ctx context.Context, ids []string) ([]syncengine.Amendment, error) {
	r.use("Amendments")
	return r.Tx.Amendments(ctx, ids)
}

func (r *recordingTx) Bundle(ctx context.Context, householdIDs []string) (syncengine.Bundle, error) {
	r.use("Bundle")
	return r.Tx.Bundle(ctx, householdIDs)
}

func (r *recordingTx) Ledgers(ctx context.Context, householdIDs []string) (syncengine.Bundle, error) {
	r.use("Ledgers")
	return r.Tx.Ledgers(ctx, householdIDs)
}

func (r *recordingTx) PutHousehold(ctx context.Context, h *syncengine.Household) error {
	r.use("PutHousehold")
	return r.Tx.PutHousehold(ctx, h)
}

func (r *recordingTx) PutPerson(ctx context.Context, p *syncengine.Person) error {
	r.use("PutPerson")
	return r.Tx.PutPerson(ctx, p)
}

func (r *recordingTx) PutTag(ctx context.Context, t *syncengine.TagElement) error {
	r.use("PutTag")
	return r.Tx.PutTag(ctx, t)
}

func (r *recordingTx) InsertVisit(ctx context.Context, v *syncengine.Visit) (bool, error) {
	r.use("InsertVisit")
	return r.Tx.InsertVisit(ctx, v)
}

func (r *recordingTx) InsertAmendment(ctx context.Context, a *syncengine.Amendment) (bool, error) {
	r.use("InsertAmendment")
	return r.Tx.InsertAmendment(ctx, a)
}

func (r *recordingTx) CountPersons(ctx context.Context, household string) (int, error) {
	r.use("CountPersons")
	return r.Tx.CountPersons(ctx, household)
}

func (r *recordingTx) CountTags(ctx context.Context, household string) (int, int, error) {
	r.use("CountTags")
	return r.Tx.CountTags(ctx, household)
}

func (r *recordingTx) CountVisits(ctx context.Context, household string, from, to time.Time) (int, error) {
	r.use("CountVisits")
	return r.Tx.CountVisits(ctx, household, from, to)
}

func (r *recordingTx) VisitCounts(ctx context.Context, households []string) (map[string]int, error) {
	r.use("VisitCounts")
	return r.Tx.VisitCounts(ctx, households)
}

func (r *recordingTx) CountHouseholds(ctx context.Context, grids []string, after string) (int, error) {
	r.use("CountHouseholds")
	return r.Tx.CountHouseholds(ctx, grids, after)
}

func (r *recordingTx) HouseholdIDs(ctx context.Context, grids []string, after string, limit int) ([]string, error) {
	r.use("HouseholdIDs")
	return r.Tx.HouseholdIDs(ctx, grids, after, limit)
}

func (r *recordingTx) Category(ctx context.Context, code string) (syncengine.Category, bool, error) {
	r.use("Category")
	return r.Tx.Category(ctx, code)
}

func (r *recordingTx) Campaign(ctx context.Context, id string) (syncengine.Campaign, bool, error) {
	r.use("Campaign")
	return r.Tx.Campaign(ctx, id)
}

func (r *recordingTx) Categories(ctx context.Context, since uint64) ([]syncengine.Category, error) {
	r.use("Categories")
	return r.Tx.Categories(ctx, since)
}

func (r *recordingTx) Campaigns(ctx context.Context) ([]syncengine.Campaign, error) {
	r.use("Campaigns")
	return r.Tx.Campaigns(ctx)
}

func (r *recordingTx) PutCategory(ctx context.Context, c *syncengine.Category) error {
	r.use("PutCategory")
	return r.Tx.PutCategory(ctx, c)
}

func (r *recordingTx) PutCampaign(ctx context.Context, c *syncengine.Campaign) error {
	r.use("PutCampaign")
	return r.Tx.PutCampaign(ctx, c)
}

func (r *recordingTx) CampaignsAbove(ctx context.Context, grids []string, since uint64) ([]syncengine.Campaign, error) {
	r.use("CampaignsAbove")
	return r.Tx.CampaignsAbove(ctx, grids, since)
}

// store.Scopes

func (r *recordingTx) Node(ctx context.Context, id string) (store.OrgNode, error) {
	r.use("Node")
	return r.Tx.Node(ctx, id)
}

func (r *recordingTx) Worker(ctx context.Context, id string) (store.Worker, error) {
	r.use("Worker")
	return r.Tx.Worker(ctx, id)
}

func (r *recordingTx) ScopeEvents(ctx context.Context, workerID string, after, upto uint64) ([]store.ScopeEvent, error) {
	r.use("ScopeEvents")
	return r.Tx.ScopeEvents(ctx, workerID, after, upto)
}

func (r *recordingTx) HouseholdMoves(ctx context.Context, household string, after uint64) ([]store.Move, error) {
	r.use("HouseholdMoves")
	return r.Tx.HouseholdMoves(ctx, household, after)
}

func (r *recordingTx) Moves(ctx context.Context, after, upto uint64) ([]store.Move, error) {
	r.use("Moves")
	return r.Tx.Moves(ctx, after, upto)
}

// store.Erasures

func (r *recordingTx) AnyHouseholdErased(ctx context.Context) (bool, error) {
	r.use("AnyHouseholdErased")
	return r.Tx.AnyHouseholdErased(ctx)
}

func (r *recordingTx) HouseholdErasure(ctx context.Context, households []string) (uint64, error) {
	r.use("HouseholdErasure")
	return r.Tx.HouseholdErasure(ctx, households)
}

func (r *recordingTx) RecordErasures(ctx context.Context, at time.Time, marks []store.ErasureMark) error {
	r.use("RecordErasures")
	return r.Tx.RecordErasures(ctx, at, marks)
}

func (r *recordingTx) ErasuresOf(ctx context.Context, after uint64, kind store.EntityKind, ids []string) ([]store.Erasure, error) {
	r.use("ErasuresOf")
	return r.Tx.ErasuresOf(ctx, after, kind, ids)
}

// store.Org

func (r *recordingTx) NodePath(ctx context.Context, id string) ([]string, error) {
	r.use("NodePath")
	return r.Tx.NodePath(ctx, id)
}

func (r *recordingTx) Subtree(ctx context.Context, root string) ([]store.OrgNode, error) {
	r.use("Subtree")
	return r.Tx.Subtree(ctx, root)
}

func (r *recordingTx) InsertNode(ctx context.Context, n store.OrgNode) error {
	r.use("InsertNode")
	return r.Tx.InsertNode(ctx, n)
}

func (r *recordingTx) WorkerIDs(ctx context.Context) ([]string, error) {
	r.use("WorkerIDs")
	return r.Tx.WorkerIDs(ctx)
}

func (r *recordingTx) InsertWorker(ctx context.Context, w store.Worker, home string, at time.Time) error {
	r.use("InsertWorker")
	return r.Tx.InsertWorker(ctx, w, home, at)
}

func (r *recordingTx) WorkerHome(ctx context.Context, id string) (string, error) {
	r.use("WorkerHome")
	return r.Tx.WorkerHome(ctx, id)
}

func (r *recordingTx) SetWorkerHome(ctx context.Context, id, home string) error {
	r.use("SetWorkerHome")
	return r.Tx.SetWorkerHome(ctx, id, home)
}

func (r *recordingTx) AddWorkerGrid(ctx context.Context, workerID, grid string) error {
	r.use("AddWorkerGrid")
	return r.Tx.AddWorkerGrid(ctx, workerID, grid)
}

func (r *recordingTx) RemoveWorkerGrid(ctx context.Context, workerID, grid string) error {
	r.use("RemoveWorkerGrid")
	return r.Tx.RemoveWorkerGrid(ctx, workerID, grid)
}

func (r *recordingTx) RecordMove(ctx context.Context, household, from, to string) error {
	r.use("RecordMove")
	return r.Tx.RecordMove(ctx, household, from, to)
}

func (r *recordingTx) DevicePolicy(ctx context.Context) (store.DevicePolicy, error) {
	r.use("DevicePolicy")
	return r.Tx.DevicePolicy(ctx)
}

func (r *recordingTx) PutDevicePolicy(ctx context.Context, p store.DevicePolicy) error {
	r.use("PutDevicePolicy")
	return r.Tx.PutDevicePolicy(ctx, p)
}

func (r *recordingTx) ItemPolicy(ctx context.Context) (store.ItemPolicy, error) {
	r.use("ItemPolicy")
	return r.Tx.ItemPolicy(ctx)
}

func (r *recordingTx) PutItemPolicy(ctx context.Context, p store.ItemPolicy) error {
	r.use("PutItemPolicy")
	return r.Tx.PutItemPolicy(ctx, p)
}

// store.Auth

func (r *recordingTx) Credential(ctx context.Context, id string) (store.Credential, bool, error) {
	r.use("Credential")
	return r.Tx.Credential(ctx, id)
}

func (r *recordingTx) HasAdmin(ctx context.Context) (bool, error) {
	r.use("HasAdmin")
	return r.Tx.HasAdmin(ctx)
}

func (r *recordingTx) InsertAdmin(ctx context.Context, a store.Principal, secretHash []byte, at time.Time) error {
	r.use("InsertAdmin")
	return r.Tx.InsertAdmin(ctx, a, secretHash, at)
}

func (r *recordingTx) AdminsNamed(ctx context.Context, name string) ([]store.AdminLogin, error) {
	r.use("AdminsNamed")
	return r.Tx.AdminsNamed(ctx, name)
}

func (r *recordingTx) SetAdminPassword(ctx context.Context, adminID, hash string) error {
	r.use("SetAdminPassword")
	return r.Tx.SetAdminPassword(ctx, adminID, hash)
}

func (r *recordingTx) InsertSession(ctx context.Context, s store.Session) error {
	r.use("InsertSession")
	return r.Tx.InsertSession(ctx, s)
}

func (r *recordingTx) EndSession(ctx context.Context, credentialID string) error {
	r.use("EndSession")
	return r.Tx.EndSession(ctx, credentialID)
}

func (r *recordingTx) InsertDevice(ctx context.Context, d store.Device, secretHash []byte, known uint64) error {
	r.use("InsertDevice")
	return r.Tx.InsertDevice(ctx, d, secretHash, known)
}

func (r *recordingTx) Devices(ctx context.Context, workerID string) ([]store.Device, error) {
	r.use("Devices")
	return r.Tx.Devices(ctx, workerID)
}

func (r *recordingTx) Device(ctx context.Context, id string) (store.Device, bool, error) {
	r.use("Device")
	return r.Tx.Device(ctx, id)
}

func (r *recordingTx) RecordDeviceSync(ctx context.Context, id string, s store.DeviceSync) error {
	r.use("RecordDeviceSync")
	return r.Tx.RecordDeviceSync(ctx, id, s)
}

func (r *recordingTx) CountDevicesSilent(ctx context.Context, since time.Time) (int, error) {
	r.use("CountDevicesSilent")
	return r.Tx.CountDevicesSilent(ctx, since)
}

func (r *recordingTx) SeeCredential(ctx context.Context, id string, at time.Time) error {
	r.use("SeeCredential")
	return r.Tx.SeeCredential(ctx, id, at)
}

func (r *recordingTx) CountDevicesSeen(ctx context.Context, since time.Time) (int, error) {
	r.use("CountDevicesSeen")
	return r.Tx.CountDevicesSeen(ctx, since)
}

func (r *recordingTx) RevokeDevice(ctx context.Context, id string, at time.Time, reason string) error {
	r.use("RevokeDevice")
	return r.Tx.RevokeDevice(ctx, id, at, reason)
}

func (r *recordingTx) InsertCode(ctx context.Context, c store.EnrollmentCode) error {
	r.use("InsertCode")
	return r.Tx.InsertCode(ctx, c)
}

func (r *recordingTx) Code(ctx context.Context, hash []byte) (store.EnrollmentCode, bool, error) {
	r.use("Code")
	return r.Tx.Code(ctx, hash)
}

func (r *recordingTx) SpendCode(ctx context.Context, hash []byte, at time.Time) error {
	r.use("SpendCode")
	return r.Tx.SpendCode(ctx, hash, at)
}

func (r *recordingTx) CountFailures(ctx context.Context, key string, since time.Time) (int, int, error) {
	r.use("CountFailures")
	return r.Tx.CountFailures(ctx, key, since)
}

func (r *recordingTx) RecordFailure(ctx context.Context, key string, at, forget time.Time) error {
	r.use("RecordFailure")
	return r.Tx.RecordFailure(ctx, key, at, forget)
}

// store.Reports

func (r *recordingTx) FieldRows(grids []string) fieldwork.Rows {
	r.use("FieldRows")
	return r.Tx.FieldRows(grids)
}

func (r *recordingTx) HouseholdRows(ids []string) fieldwork.Rows {
	r.use("HouseholdRows")
	return r.Tx.HouseholdRows(ids)
}

func (r *recordingTx) WorkersOfGrids(ctx context.Context, grids []string) ([]string, error) {
	r.use("WorkersOfGrids")
	return r.Tx.WorkersOfGrids(ctx, grids)
}

func (r *recordingTx) HouseholdsTouched(ctx context.Context, after, upto uint64, limit int) ([]string, error) {
	r.use("HouseholdsTouched")
	return r.Tx.HouseholdsTouched(ctx, after, upto, limit)
}

func (r *recordingTx) TrackedHouseholds(ctx context.Context, grids []string) ([]string, error) {
	r.use("TrackedHouseholds")
	return r.Tx.TrackedHouseholds(ctx, grids)
}

func (r *recordingTx) VisitsBy(ctx context.Context, workers []string, from, to time.Time, except []string, inside map[string]int) ([]store.WorkerVisit, error) {
	r.use("VisitsBy")
	return r.Tx.VisitsBy(ctx, workers, from, to, except, inside)
}

func (r *recordingTx) AmendmentsOfVisits(ctx context.Context, visitIDs []string) ([]syncengine.Amendment, error) {
	r.use("AmendmentsOfVisits")
	return r.Tx.AmendmentsOfVisits(ctx, visitIDs)
}

func (r *recordingTx) LiveHouseholdIDs(ctx context.Context, grids []string, after string, limit int) ([]string, error) {
	r.use("LiveHouseholdIDs")
	return r.Tx.LiveHouseholdIDs(ctx, grids, after, limit)
}

func (r *recordingTx) VisitKeys(ctx context.Context, grids []string, after store.VisitKey, limit int) ([]store.VisitKey, error) {
	r.use("VisitKeys")
	return r.Tx.VisitKeys(ctx, grids, after, limit)
}

func (r *recordingTx) InsertAudit(ctx context.Context, e store.AuditEntry) error {
	r.use("InsertAudit")
	return r.Tx.InsertAudit(ctx, e)
}

func (r *recordingTx) AuditEntries(ctx context.Context, fn func(e store.AuditEntry, adminNode string) bool) error {
	r.use("AuditEntries")
	return r.Tx.AuditEntries(ctx, fn)
}

func (r *recordingTx) ReplaceVisit(ctx context.Context, v *syncengine.Visit) error {
	r.use("ReplaceVisit")
	return r.Tx.ReplaceVisit(ctx, v)
}

func (r *recordingTx) ReplaceAmendment(ctx context.Context, a *syncengine.Amendment) error {
	r.use("ReplaceAmendment")
	return r.Tx.ReplaceAmendment(ctx, a)
}
