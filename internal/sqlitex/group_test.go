package sqlitex

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func openGroupDB(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "g.db"), []Migration{{Version: 1, Name: "001_t.sql", SQL: `CREATE TABLE t (id INTEGER PRIMARY KEY)`}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func groupRows(t *testing.T, db *DB) []int {
	t.Helper()
	var ids []int
	err := db.Read(t.Context(), func(tx *Tx) error {
		rows, err := tx.QueryContext(t.Context(), `SELECT id FROM t ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func (g *group) counts() (pending, commits, writes int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending), g.commits, g.writes
}

func (g *group) isLeading() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.leading
}

// TestWriteGroupedSavepoints: writes that queue while the writer is busy
// commit in one transaction; one that fails there, or whose context ended
// while it waited, leaves nothing, and the others keep what they wrote.
func TestWriteGroupedSavepoints(t *testing.T) {
	db := openGroupDB(t)
	ctx := t.Context()
	insert := func(id int) func(*Tx) error {
		return func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO t (id) VALUES (?)`, id)
			return err
		}
	}
	release := make(chan struct{})
	results := make([]chan error, 6)
	for i := range results {
		results[i] = make(chan error, 1)
	}
	// Write 1 holds the writer until the others have queued.
	go func() {
		results[1] <- db.WriteGrouped(ctx, func(tx *Tx) error {
			<-release
			return insert(1)(tx)
		})
	}()
	for {
		if db.group.isLeading() {
			break
		}
		time.Sleep(time.Millisecond)
	}
	refused := errors.New("refused after its insert")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	go func() { results[2] <- db.WriteGrouped(ctx, insert(2)) }()
	waitPending(t, db, 1)
	go func() {
		results[3] <- db.WriteGrouped(ctx, func(tx *Tx) error {
			if err := insert(3)(tx); err != nil {
				return err
			}
			return refused
		})
	}()
	waitPending(t, db, 2)
	// A write whose context has ended leaves the queue without running.
	if err := db.WriteGrouped(cancelled, insert(4)); !errors.Is(err, context.Canceled) {
		t.Errorf("a write with its context ended: %v, want context.Canceled", err)
	}
	go func() { results[5] <- db.WriteGrouped(ctx, insert(5)) }()
	waitPending(t, db, 3)
	// A duplicate key fails in SQLite itself: still only this write.
	go func() { results[0] <- db.WriteGrouped(ctx, insert(2)) }()
	waitPending(t, db, 4)
	close(release)
	results[4] <- context.Canceled

	for i, want := range []error{errAny, nil, nil, refused, context.Canceled, nil} {
		err := <-results[i]
		switch {
		case want == nil && err != nil:
			t.Errorf("write %d: %v, want success", i, err)
		case want == errAny && err == nil:
			t.Errorf("write %d (a duplicate key): success, want an error", i)
		case want != nil && want != errAny && !errors.Is(err, want):
			t.Errorf("write %d: %v, want %v", i, err, want)
		}
	}
	if got := groupRows(t, db); !slices.Equal(got, []int{1, 2, 5}) {
		t.Errorf("rows %v, want 1, 2, 5: the failed and cancelled writes rolled back alone", got)
	}
	if _, commits, writes := db.group.counts(); commits != 2 || writes != 5 {
		t.Errorf("%d groups of %d writes in all, want 2 groups (the first write's, then the four that queued)", commits, writes)
	}
}

var errAny = errors.New("any error")

func waitPending(t *testing.T, db *DB, n int) {
	t.Helper()
	for {
		if pending, _, _ := db.group.counts(); pending >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWriteGroupedConcurrent: many writers at once, some failing after
// they wrote: every write is all or nothing, whatever group it lands in.
func TestWriteGroupedConcurrent(t *testing.T) {
	db := openGroupDB(t)
	ctx := t.Context()
	const writers, rows = 64, 3
	rng := rand.New(rand.NewPCG(1, 2))
	fails := make([]bool, writers)
	for i := range fails {
		fails[i] = rng.IntN(4) == 0
	}
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			errs[i] = db.WriteGrouped(ctx, func(tx *Tx) error {
				for r := range rows {
					if _, err := tx.ExecContext(ctx, `INSERT INTO t (id) VALUES (?)`, i*rows+r); err != nil {
						return err
					}
				}
				if fails[i] {
					return fmt.Errorf("writer %d fails", i)
				}
				return nil
			})
		})
	}
	wg.Wait()
	var want []int
	for i := range writers {
		if (errs[i] != nil) != fails[i] {
			t.Errorf("writer %d: %v, fails %v", i, errs[i], fails[i])
		}
		if !fails[i] {
			for r := range rows {
				want = append(want, i*rows+r)
			}
		}
	}
	if got := groupRows(t, db); !slices.Equal(got, want) {
		t.Errorf("rows %v\nwant %v", got, want)
	}
	_, commits, writes := db.group.counts()
	if writes != writers || commits < 1 || commits > writers {
		t.Errorf("%d writes in %d groups, want %d writes", writes, commits, writers)
	}
	t.Logf("%d writes in %d groups", writes, commits)
}

// TestWriteGroupedPanic: a write that panics fails alone, and the writer
// goes on taking writes.
func TestWriteGroupedPanic(t *testing.T) {
	db := openGroupDB(t)
	ctx := t.Context()
	err := db.WriteGrouped(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO t (id) VALUES (1)`); err != nil {
			return err
		}
		panic("a bug in the write")
	})
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("a write that panics: %v, want its panic as an error", err)
	}
	if err := db.WriteGrouped(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO t (id) VALUES (2)`)
		return err
	}); err != nil {
		t.Fatalf("the next write: %v", err)
	}
	if got := groupRows(t, db); !slices.Equal(got, []int{2}) {
		t.Errorf("rows %v, want only the next write's", got)
	}
}

// TestWriteGroupedWaitEndsWithContext: a write queued behind a busy
// writer stops waiting when its context ends, and is never run.
func TestWriteGroupedWaitEndsWithContext(t *testing.T) {
	db := openGroupDB(t)
	ctx := t.Context()
	release := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- db.WriteGrouped(ctx, func(tx *Tx) error {
			<-release
			_, err := tx.ExecContext(ctx, `INSERT INTO t (id) VALUES (1)`)
			return err
		})
	}()
	for !db.group.isLeading() {
		time.Sleep(time.Millisecond)
	}
	waiting, cancel := context.WithCancel(ctx)
	queued := make(chan error, 1)
	go func() {
		queued <- db.WriteGrouped(waiting, func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO t (id) VALUES (2)`)
			return err
		})
	}()
	waitPending(t, db, 1)
	cancel()
	// The writer is still held: only giving up the wait returns this.
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Errorf("a queued write whose context ended: %v, want context.Canceled", err)
	}
	if pending, _, _ := db.group.counts(); pending != 0 {
		t.Errorf("%d writes still queued, want the cancelled one gone", pending)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if got := groupRows(t, db); !slices.Equal(got, []int{1}) {
		t.Errorf("rows %v, want only the first write's", got)
	}
}

// TestChangedSince: the households writes declared add up over a range of
// the count, and a write that declared none (or failed, or was grouped)
// leaves the range unknown.
func TestChangedSince(t *testing.T) {
	ctx := t.Context()
	db := openGroupDB(t)
	write := func(declare []string, fail bool) uint64 {
		t.Helper()
		err := db.Write(ctx, func(tx *Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO t DEFAULT VALUES`); err != nil {
				return err
			}
			if declare != nil {
				tx.Changed(declare...)
			}
			if fail {
				return errors.New("fail")
			}
			return nil
		})
		if fail != (err != nil) {
			t.Fatalf("write: %v", err)
		}
		return db.Writes()
	}
	start := db.Writes()
	a := write([]string{"h1", "h2"}, false)
	b := write([]string{"h2", "h3"}, false)
	c := write([]string{}, false)
	if got, ok := db.ChangedSince(start, c); !ok || !slices.Equal(got, []string{"h1", "h2", "h3"}) {
		t.Errorf("ChangedSince(three declared writes) = %v, %v; want h1 h2 h3", got, ok)
	}
	if got, ok := db.ChangedSince(a, b); !ok || !slices.Equal(got, []string{"h2", "h3"}) {
		t.Errorf("ChangedSince(the second) = %v, %v; want h2 h3", got, ok)
	}
	if got, ok := db.ChangedSince(c, c); !ok || len(got) != 0 {
		t.Errorf("ChangedSince(none) = %v, %v; want nothing, known", got, ok)
	}
	d := write(nil, false)
	if _, ok := db.ChangedSince(c, d); ok {
		t.Error("a write that declared nothing is taken as known")
	}
	e := write([]string{"h4"}, true)
	if _, ok := db.ChangedSince(d, e); ok {
		t.Error("a failed write is taken as known")
	}
	if err := db.WriteGrouped(ctx, func(tx *Tx) error { tx.Changed("h5"); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, ok := db.ChangedSince(e, db.Writes()); ok {
		t.Error("a grouped write is taken as known")
	}
}
