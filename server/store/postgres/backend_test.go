package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func clock(n uint16) syncengine.Clock {
	return syncengine.Clock{HLC: syncengine.PackHLC(time.Now().UnixMilli(), n), Node: 7}
}

// Everything that takes a feed position in one transaction gets it in the
// order of the calls, from the one counter; marks get the last position
// taken before them; an entry touched again, or a row stamped again,
// keeps its later position and leaves no hole.
func TestPositionsFollowCalls(t *testing.T) {
	t.Parallel()
	db, _ := open(t, "")
	ctx := t.Context()
	grid, other, worker, hh := newID(), newID(), newID(), newID()
	err := db.Update(ctx, func(tx store.Tx) error {
		return errors.Join(
			tx.InsertNode(ctx, store.OrgNode{ID: grid, Level: store.LevelGrid, Name: "g"}),
			tx.InsertNode(ctx, store.OrgNode{ID: other, Level: store.LevelGrid, Name: "o"}),
			tx.InsertWorker(ctx, store.Worker{ID: worker, Name: "w", Role: 1}, "", time.Now()),
			tx.Touch(ctx, store.EntityHousehold, "first", "first", ""), // position 1
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	cat := &syncengine.Category{Code: "elderly", NameEN: syncengine.NewRegister("Elderly", clock(1))}
	camp := &syncengine.Campaign{ID: newID(), Name: syncengine.NewRegister("c", clock(2))}
	err = db.Update(ctx, func(tx store.Tx) error {
		return errors.Join(
			tx.RecordApplied(ctx, "before-any", store.AppliedChange{CredentialID: "d"}), // 1: the previous commit's last
			tx.Touch(ctx, store.EntityHousehold, hh, hh, ""),                            // slot given up below
			tx.AddWorkerGrid(ctx, worker, grid),                                         // 2
			tx.PutCategory(ctx, cat),                                                    // slot given up below
			tx.RecordApplied(ctx, "after-grid", store.AppliedChange{CredentialID: "d"}), // 2: the grid's
			tx.RecordMove(ctx, hh, grid, other),                                         // 3
			tx.PutCampaign(ctx, camp),                                                   // 4
			tx.RecordErasures(ctx, time.Now(), []store.ErasureMark{{Kind: store.EntityHousehold, ID: hh, HLC: 5}}),
			tx.Touch(ctx, store.EntityHousehold, hh, hh, ""),                      // 5
			tx.PutCategory(ctx, cat),                                              // 6
			tx.RemoveWorkerGrid(ctx, worker, grid),                                // 7
			tx.RecordApplied(ctx, "last", store.AppliedChange{CredentialID: "d"}), // 7
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	q := func(sql string, args ...any) []int64 {
		t.Helper()
		rows, err := db.pool.Query(ctx, sql, args...)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for rows.Next() {
			var v int64
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	check := func(what string, got []int64, want ...int64) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v; want %v", what, got, want)
		}
	}
	check("head", q(`SELECT seq FROM feed_head`), 7)
	check("commits", q(`SELECT first_seq * 100 + last_seq FROM commits ORDER BY last_seq`), 101, 207)
	check("the household's entry", q(`SELECT seq FROM feed WHERE entity_id = $1`, hh), 5)
	check("scope events", q(`SELECT seq FROM scope_events ORDER BY seq`), 2, 7)
	check("moves", q(`SELECT seq FROM household_moves`), 3)
	check("campaign", q(`SELECT seq FROM campaigns`), 4)
	check("category", q(`SELECT seq FROM categories`), 6)
	// "after-grid" was recorded after two slots (the household's first
	// touch, given up, and the grid): the last position they reach is 2.
	check("applied", q(`SELECT seq FROM applied_changes ORDER BY change_id`), 2, 1, 7)
	// The erasure's range runs from the commit's first position to the
	// last taken before it (the touch and category given up later do not
	// count): the household's final entry, at 5, lies outside it.
	check("erasure", q(`SELECT first_seq * 100 + last_seq FROM erasures`), 204)

	// An erasure recorded by a transaction that took no position announces
	// nothing (an empty range), not every older entry of the row.
	err = db.Update(ctx, func(tx store.Tx) error {
		return tx.RecordErasures(ctx, time.Now(), []store.ErasureMark{{Kind: store.EntityPerson, ID: "p"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	check("an erasure without positions", q(`SELECT first_seq * 100 + last_seq FROM erasures WHERE entity_id = 'p'`), 807)
	check("head after it", q(`SELECT seq FROM feed_head`), 7)
}

// Two transactions that both read a row as absent and write it: the one
// that finds it written meanwhile runs again and merges onto it, so that
// neither write is lost.
func TestConcurrentCreationMerges(t *testing.T) {
	t.Parallel()
	db, _ := open(t, "")
	ctx := t.Context()
	id := newID()
	var runs atomic.Int32
	var both sync.WaitGroup
	both.Add(2)
	write := func(delta syncengine.Household) error {
		return db.Update(ctx, func(tx store.Tx) error {
			run := runs.Add(1)
			cur, ok, err := tx.Household(ctx, id)
			if err != nil {
				return err
			}
			if run <= 2 {
				both.Done() // each has read it absent
				both.Wait()
			}
			if !ok {
				cur = syncengine.Household{ID: id}
			}
			cur.Merge(delta)
			if err := tx.PutHousehold(ctx, &cur); err != nil {
				return err
			}
			return tx.Touch(ctx, store.EntityHousehold, id, id, "")
		})
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() {
		errs[0] = write(syncengine.Household{ID: id, HeadName: syncengine.NewRegister("head", clock(1))})
	})
	wg.Go(func() {
		errs[1] = write(syncengine.Household{ID: id, Address: syncengine.NewRegister("address", clock(2))})
	})
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := runs.Load(); n != 3 {
		t.Errorf("%d runs; want 3 (one again after the conflict)", n)
	}
	err := db.View(ctx, func(tx store.Tx) error {
		h, ok, err := tx.Household(ctx, id)
		if err != nil || !ok {
			return fmt.Errorf("household: %v, %v", ok, err)
		}
		if h.HeadName.Value != "head" || h.Address.Value != "address" {
			t.Errorf("household %+v; want both writes", h)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// env is a service over a fresh database with a grid, a worker and an
// admin.
type env struct {
	t     *testing.T
	ctx   context.Context
	dsn   string
	s     *service.Service
	root  store.Principal
	grid  string
	wrkr  store.Worker
	clock uint16
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, dsn := open(t, "")
	e := &env{t: t, ctx: t.Context(), dsn: dsn, s: service.New(db)}
	var err error
	if e.root, _, err = e.s.CreateAdmin(e.ctx, "root", ""); err != nil {
		t.Fatal(err)
	}
	parent := ""
	for _, l := range []store.OrgLevel{store.LevelDistrict, store.LevelStreet, store.LevelCommunity, store.LevelGrid} {
		n, err := e.s.CreateOrgNode(e.ctx, e.root, store.OrgNode{ParentID: parent, Level: l, Name: l.String()})
		if err != nil {
			t.Fatal(err)
		}
		parent = n.ID
	}
	e.grid = parent
	if e.wrkr, err = e.s.CreateWorker(e.ctx, e.root, store.Worker{Name: "w", Role: 1, GridIDs: []string{e.grid}}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) code() string {
	e.t.Helper()
	code, err := e.s.CreateEnrollmentCode(e.ctx, e.root, e.wrkr.ID, time.Now().Add(time.Hour))
	if err != nil {
		e.t.Fatal(err)
	}
	return code
}

func (e *env) device() store.Principal {
	e.t.Helper()
	en, err := e.s.Enroll(e.ctx, e.code(), "phone", time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := e.s.Authenticate(e.ctx, en.Token)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) next() syncengine.Clock {
	e.clock++
	return clock(e.clock)
}

// A push sent again while the first is still applying (a phone whose
// request timed out) applies once: the other copies count duplicates.
// Visits, whose inserts wait for each other and then find the same row,
// count the later copies as duplicates by the stored visit.
func TestConcurrentResends(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.device()
	c := e.next()
	h := &syncengine.Household{ID: newID(), GridID: syncengine.NewRegister(e.grid, c), HeadName: syncengine.NewRegister("h", c)}
	if _, err := e.s.Push(e.ctx, dev, 0, []syncengine.Change{{ID: newID(), Household: h}}); err != nil {
		t.Fatal(err)
	}
	visit := func() []syncengine.Change {
		v := &syncengine.Visit{ID: newID(), HouseholdIDs: []string{h.ID}, VisitorID: e.wrkr.ID,
			VisitedAt: time.Now().UTC().Truncate(time.Millisecond), Form: syncengine.FormInPerson, Clock: e.next()}
		return []syncengine.Change{{ID: newID(), Visit: v}}
	}
	var changes []syncengine.Change
	for range 5 {
		changes = append(changes, visit()...)
	}
	const copies = 4
	results := make([]store.PushResult, copies)
	errs := make([]error, copies)
	var wg sync.WaitGroup
	for i := range copies {
		wg.Go(func() { results[i], errs[i] = e.s.Push(e.ctx, dev, 0, changes) })
	}
	wg.Wait()
	applied, dups := 0, 0
	for i := range copies {
		if errs[i] != nil {
			t.Errorf("push %d: %v", i, errs[i])
		}
		applied += results[i].Applied
		dups += results[i].Duplicates
	}
	if applied != len(changes) || dups != (copies-1)*len(changes) {
		t.Errorf("%d applied, %d duplicates; want %d and %d", applied, dups, len(changes), (copies-1)*len(changes))
	}
	// A change id pushed by two devices of the worker at the same moment:
	// one applies it, the other is refused, whichever comes second.
	other := e.device()
	edit := &syncengine.Household{ID: h.ID, Notes: syncengine.NewRegister("edited", e.next())}
	shared := []syncengine.Change{{ID: newID(), Household: edit}}
	for i, d := range []store.Principal{dev, other} {
		wg.Go(func() { results[i], errs[i] = e.s.Push(e.ctx, d, 0, shared) })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("two devices pushing one change id: %v, %v; want one refused", errs[0], errs[1])
	}
	if err := errors.Join(errs[0], errs[1]); !errors.Is(err, syncengine.ErrAlreadyExists) {
		t.Errorf("the second device's push: %v; want ErrAlreadyExists", err)
	}
	// A visit is its own proof: the same visit from two devices of its
	// worker at once is stored once, and the second copy is a duplicate.
	same := visit()
	for i, d := range []store.Principal{dev, other} {
		wg.Go(func() { results[i], errs[i] = e.s.Push(e.ctx, d, 0, same) })
	}
	wg.Wait()
	if err := errors.Join(errs[0], errs[1]); err != nil {
		t.Fatalf("two devices pushing one visit: %v", err)
	}
	if a, d := results[0].Applied+results[1].Applied, results[0].Duplicates+results[1].Duplicates; a != 1 || d != 1 {
		t.Errorf("two devices pushing one visit: %d applied, %d duplicates; want 1 and 1", a, d)
	}
}

// Two server processes on one database: devices push through both while
// one pulls in small batches through the other, and the puller ends with
// every row, once.
func TestTwoServers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	db2, err := Open(e.ctx, e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db2.Close() })
	servers := []*service.Service{e.s, service.New(db2)}
	reader := e.device()
	const writers, perWriter = 4, 8
	var want []string
	batches := make([][]syncengine.Change, writers)
	devs := make([]store.Principal, writers)
	for i := range writers {
		devs[i] = e.device()
		for range perWriter {
			c := e.next()
			h := &syncengine.Household{ID: newID(), GridID: syncengine.NewRegister(e.grid, c), HeadName: syncengine.NewRegister("h", c)}
			batches[i] = append(batches[i], syncengine.Change{ID: newID(), Household: h})
			want = append(want, h.ID)
		}
	}
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			for _, c := range batches[i] {
				if _, err := servers[i%2].Push(e.ctx, devs[i], 0, []syncengine.Change{c}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var cursor uint64
	seen := map[string]int{}
	pull := func() {
		for {
			b, err := servers[1].Pull(e.ctx, reader, cursor, 3)
			if err != nil {
				t.Fatalf("Pull: %v", err)
			}
			for _, h := range b.Rows.Households {
				seen[h.ID]++
			}
			cursor = b.Cursor
			if !b.More {
				return
			}
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			pull()
		}
	}
	close(errs)
	for err := range errs {
		t.Errorf("Push: %v", err)
	}
	pull()
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("the puller saw household %s %d times; want once", id, seen[id])
		}
	}
}

// One enrolment code enrols one device, however many phones try it at
// once.
func TestConcurrentEnrolment(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	code := e.code()
	const phones = 4
	errs := make([]error, phones)
	var wg sync.WaitGroup
	for i := range phones {
		wg.Go(func() { _, errs[i] = e.s.Enroll(e.ctx, code, fmt.Sprintf("phone %d", i), time.Now()) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, syncengine.ErrUnauthenticated):
			t.Errorf("Enroll: %v; want ErrUnauthenticated for all but one", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d phones enrolled with one code; want 1", ok)
	}
}

// Text PostgreSQL cannot store is the request's fault, not the server's.
func TestNULIsInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.device()
	c := e.next()
	h := &syncengine.Household{ID: newID(), GridID: syncengine.NewRegister(e.grid, c), HeadName: syncengine.NewRegister("a\x00b", c)}
	_, err := e.s.Push(e.ctx, dev, 0, []syncengine.Change{{ID: newID(), Household: h}})
	if !errors.Is(err, syncengine.ErrInvalid) {
		t.Errorf("push of a NUL: %v; want ErrInvalid", err)
	}
}

// Scrub vacuums the erased tables, and says so when no older snapshot
// held it back.
func TestScrub(t *testing.T) {
	t.Parallel()
	db, _ := open(t, "")
	ok, err := db.Scrub(t.Context())
	if err != nil || !ok {
		t.Errorf("Scrub = %v, %v; want true", ok, err)
	}
}
