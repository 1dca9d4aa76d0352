package sqlitex

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
)

// MaxGroup is the most writes WriteGrouped commits in one transaction.
const MaxGroup = 64

// group is the queue of writes waiting for the writer (see WriteGrouped).
// At most one caller leads at a time: it takes the writes waiting, runs
// them in one transaction and commits it, then hands the lead to the
// first write that queued meanwhile, or, with none, gives it up.
type group struct {
	mu      sync.Mutex
	pending []*groupWrite
	leading bool
	// commits and writes count the groups committed and the writes they
	// held, for tests and figures.
	commits, writes int
}

type groupWrite struct {
	ctx  context.Context
	fn   func(*Tx) error
	done chan error    // its result, sent once its group has committed or failed
	lead chan struct{} // closed to make its caller the leader
}

// WriteGrouped runs fn as Write does, all or nothing, but in one
// transaction with the other writes waiting for the writer at that moment
// (at most MaxGroup), each within a savepoint of its own (a write alone
// needs none): a write that fails is rolled back alone, and each returns
// only once its group has committed. Concurrent writes then share one commit, and its write to the
// log, instead of queueing for one each.
//
// Statements of fn run with ctx's values but without its cancellation:
// SQLite answers an interrupted write by rolling back the whole
// transaction, the others' writes with it. A write whose ctx ends while it
// waits for its turn is not run, and returns ctx's error.
func (db *DB) WriteGrouped(ctx context.Context, fn func(*Tx) error) error {
	w := &groupWrite{ctx: ctx, fn: fn, done: make(chan error, 1), lead: make(chan struct{})}
	g := &db.group
	g.mu.Lock()
	g.pending = append(g.pending, w)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if !lead {
		select {
		case err := <-w.done:
			return err
		case <-w.lead:
		case <-ctx.Done():
			// Still waiting, and not yet made the leader: it leaves the
			// queue (as Write would stop waiting for the connection).
			// Otherwise its turn has come, and it is seen through.
			g.mu.Lock()
			if i := slices.Index(g.pending, w); i >= 0 && !closed(w.lead) {
				g.pending = slices.Delete(g.pending, i, i+1)
				g.mu.Unlock()
				return ctx.Err()
			}
			g.mu.Unlock()
			select {
			case err := <-w.done:
				return err
			case <-w.lead:
			}
		}
	}
	// The lead passes only to the first write waiting, so this write is
	// in the group taken now.
	g.mu.Lock()
	n := min(len(g.pending), MaxGroup)
	batch := g.pending[:n:n]
	g.pending = g.pending[n:]
	g.mu.Unlock()
	db.commitGroup(batch)
	g.mu.Lock()
	g.commits++
	g.writes += len(batch)
	if len(g.pending) > 0 {
		close(g.pending[0].lead)
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	return <-w.done
}

func closed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// commitGroup runs the writes of batch in one transaction and sends each
// its result.
func (db *DB) commitGroup(batch []*groupWrite) {
	defer db.wrote(nil, nil)
	results := make([]error, len(batch))
	deliver := func() {
		for i, w := range batch {
			w.done <- results[i]
		}
	}
	failAll := func(err error) {
		for i := range results {
			if results[i] == nil {
				results[i] = err
			}
		}
		deliver()
	}
	// The group's transaction is no one caller's: it must outlive each of
	// their contexts.
	ctx := context.Background()
	tx, err := db.W.BeginTx(ctx, nil)
	if err != nil {
		failAll(classify(fmt.Errorf("begin: %w", err)))
		return
	}
	t := &Tx{tx: tx, stmts: map[string]*sql.Stmt{}, cache: db.wstmts, detached: true}
	defer func() { db.wstmts.add(ctx, t.misses) }()
	applied := 0
	// A write alone in its group needs no savepoint: if it fails, the
	// transaction is rolled back (nothing applied). A savepoint journals
	// each page the write changes, a cost a push of a thousand changes
	// feels.
	alone := len(batch) == 1
	for i, w := range batch {
		if err := w.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		if alone {
			if results[i] = classify(run(w.fn, t)); results[i] == nil {
				applied++
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT write`); err != nil {
			tx.Rollback()
			failAll(classify(fmt.Errorf("savepoint: %w", err)))
			return
		}
		if err := run(w.fn, t); err != nil {
			results[i] = classify(err)
			if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO write`); rerr != nil {
				// SQLite rolled the whole transaction back itself (a full
				// disk, an I/O error): the group's earlier writes are gone
				// with it, and fail with the cause.
				tx.Rollback()
				failAll(classify(fmt.Errorf("rolled back with another write of its group: %w", errors.Join(err, rerr))))
				return
			}
		} else {
			applied++
		}
		if _, err := tx.ExecContext(ctx, `RELEASE write`); err != nil {
			tx.Rollback()
			failAll(classify(fmt.Errorf("release savepoint: %w", err)))
			return
		}
	}
	if applied == 0 {
		tx.Rollback()
		deliver()
		return
	}
	if err := tx.Commit(); err != nil {
		failAll(classify(fmt.Errorf("commit: %w", err)))
		return
	}
	deliver()
}

// run runs a write's fn. It runs on whichever caller leads the group: a
// panic there would leave the others waiting forever for their results,
// and the writer's lead never given up, so it is the write's error instead
// (with its stack, for the log).
func run(fn func(*Tx) error, t *Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sqlitex: a grouped write panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return fn(t)
}
