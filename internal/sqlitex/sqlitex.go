// Package sqlitex opens SQLite files on modernc.org/sqlite the way every
// Doorbook database wants them: WAL, a busy timeout, foreign keys, one writer
// connection that starts immediate transactions and a pool of read-only
// connections, and versioned migrations applied in a transaction.
//
// A statement's LIMIT takes its count as +?, not ?. SQLite reads the count
// bound to a bare parameter when it prepares the statement, to plan for
// it, and marks the plan stale whenever that parameter is bound again: the
// statement is then parsed and planned afresh at every run, which was half
// the time of a pull's read of the feed (BenchmarkLimitParameter). Behind
// the unary plus the count is read when the statement runs, and the plan
// stays. internal/layers holds every query to it.
package sqlitex

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/doorbook/doorbook/internal/migration"
)

// DB is a SQLite file with one writer and a pool of readers. Writes through
// W are serialised by the single connection, so a write transaction never
// meets SQLITE_BUSY from another writer of this process.
type DB struct {
	W    *sql.DB
	R    *sql.DB
	Path string
	// Statements prepared once per pool, reused by every transaction.
	wstmts, rstmts *stmtCache
	// group queues the writes of WriteGrouped.
	group group
	// writes counts the write transactions ended (see Writes); changes
	// are the households the recent ones declared they changed, by count
	// (see Tx.Changed), guarded with the count by mu.
	writes  atomic.Uint64
	mu      sync.Mutex
	changes map[uint64][]string
	// ck checkpoints the log behind the writer (WithBackgroundCheckpoints),
	// or is nil.
	ck *checkpointer
}

// Writes counts the write transactions through db that have ended,
// committed or not, adoptions included. A reader that reads the count,
// then the database, and later finds the count unchanged knows that no
// write of this process has committed since it read.
func (db *DB) Writes() uint64 { return db.writes.Load() }

// keptChanges is how many recent writes' declared households are kept.
const keptChanges = 1024

// wrote counts a write transaction that ended with err, t the transaction
// if fn ran in one.
func (db *DB) wrote(t *Tx, err error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	n := db.writes.Add(1)
	db.ck.kick()
	if db.changes == nil {
		db.changes = map[uint64][]string{}
	}
	delete(db.changes, n-keptChanges)
	if err == nil && t != nil && t.declared {
		db.changes[n] = t.changed
	}
}

// ChangedSince lists the households that the writes counted in (from, to]
// changed, each once, if every one of them declared its households
// (Tx.Changed) and is still remembered; else ok is false: any row may
// have changed.
func (db *DB) ChangedSince(from, to uint64) (households []string, ok bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	seen := map[string]bool{}
	for n := from + 1; n <= to; n++ {
		hs, ok := db.changes[n]
		if !ok {
			return nil, false
		}
		for _, h := range hs {
			if !seen[h] {
				seen[h] = true
				households = append(households, h)
			}
		}
	}
	return households, true
}

// BusyTimeout is how long a connection waits for a lock held by another
// process before failing.
const BusyTimeout = 10 * time.Second

// Option tunes how Open opens a file.
type Option func(*options)

type options struct {
	cacheKiB         int
	mmapBytes        int64
	maxPages         int
	memoryTemp       bool
	checkpointBehind bool
}

// WithCacheSize sets each connection's page cache (SQLite's default is
// 2 MiB). A server whose writes land all over a large file re-reads fewer
// pages with more; a phone keeps the default.
func WithCacheSize(kib int) Option { return func(o *options) { o.cacheKiB = kib } }

// WithMmapSize maps up to n bytes of the file into memory for the reading
// connections: a page then comes from the OS page cache without a read
// call and a copy each, which is a fifth of a server's time reading a
// street's rows whole. SQLite maps at most 2 GiB (its build's limit) and
// reads the rest as before. The writer maps nothing: its reads are a
// push's few rows all over the file, which gain nothing from the map, and
// the pages it touched stayed in the resident set as the page cache's
// (510 → 263 MB for a server under a load of 1,000 devices, the pushes as
// fast). A phone maps nothing: an I/O error on a mapped page kills the
// process rather than failing a query, and its files are small.
func WithMmapSize(n int64) Option { return func(o *options) { o.mmapBytes = n } }

// WithMemoryTemp has the writer keep its temporary files in memory, its
// sub-journals and statement journals among them (sorts still spill to
// files): a write of a group (WriteGrouped) runs in a savepoint, whose
// journal SQLite writes a page at a time to a temporary file once past
// 64 KiB, a system call a page: an eighth of a server's CPU under a load
// of pushes. The price is heap while a statement rewrites many pages (a
// campaign's sums added over a district, a migration): their old copies
// are held until it ends. A phone keeps them on disk.
func WithMemoryTemp() Option { return func(o *options) { o.memoryTemp = true } }

// WithBackgroundCheckpoints has a connection of its own copy the log into
// the file after each write, in the background, rather than the writer
// after each commit once the log holds a thousand pages: a server's writes
// queue on the one writer, and the copy was an eighth of its time under a
// load of pushes. The log starts over at a write that finds it all copied
// and no reader in it. A phone checkpoints as it writes.
func WithBackgroundCheckpoints() Option { return func(o *options) { o.checkpointBehind = true } }

// backstopPages is the log, in pages, past which the writer checkpoints
// after each commit as SQLite does by default past 1,000, when the
// background checkpoints leave the log growing: readers of old snapshots
// keep it from starting over, and the log, 16,384 pages of 4 KiB, bounds
// what each read looks through.
const backstopPages = 16384

// checkpointRest is the least time between two background checkpoints.
const checkpointRest = 100 * time.Millisecond

// WithMaxPages bounds the file at n pages (of 4 KiB by default): a write
// that would grow it further fails with ErrFull, as on a full disk.
func WithMaxPages(n int) Option { return func(o *options) { o.maxPages = n } }

func dsn(file string, readOnly bool, o options) string {
	q := url.Values{}
	if o.maxPages > 0 && !readOnly {
		q.Add("_pragma", fmt.Sprintf("max_page_count(%d)", o.maxPages))
	}
	if o.cacheKiB > 0 {
		q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", o.cacheKiB))
	}
	if o.mmapBytes > 0 && readOnly {
		q.Add("_pragma", fmt.Sprintf("mmap_size(%d)", o.mmapBytes))
	}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// Deleted rows are overwritten, not left in free space: a household
	// that leaves a phone's scope, or a revoked phone's data, must be gone
	// from the file (once the log is checkpointed), not merely unlinked.
	q.Add("_pragma", "secure_delete(1)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		if o.memoryTemp {
			q.Add("_pragma", "temp_store(MEMORY)")
		}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
		if o.checkpointBehind {
			q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", backstopPages))
		}
	}
	// A file: URI, so that SQLite applies no parameters of its own from the
	// name: the path is percent-encoded ("li#2.db" must not open "li").
	return "file:" + (&url.URL{Path: file}).EscapedPath() + "?" + q.Encode()
}

// Open opens (creating if needed) the file at path and applies the
// migrations not yet applied to it, in order.
func Open(ctx context.Context, file string, migrations []Migration, opts ...Option) (*DB, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	w, err := sql.Open("sqlite", dsn(file, false, o))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", file, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	if err := pingBusy(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", file, classify(err))
	}
	if len(migrations) > 0 {
		if err := Migrate(ctx, w, migrations); err != nil {
			w.Close()
			return nil, fmt.Errorf("migrate %s: %w", file, classify(err))
		}
	}
	r, err := sql.Open("sqlite", dsn(file, true, o))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", file, err)
	}
	r.SetMaxOpenConns(max(2, runtime.GOMAXPROCS(0)))
	db := &DB{W: w, R: r, Path: file, wstmts: newStmtCache(w), rstmts: newStmtCache(r)}
	if o.checkpointBehind {
		c, err := sql.Open("sqlite", dsn(file, false, options{}))
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("open %s: %w", file, err)
		}
		db.ck = startCheckpointer(c)
	}
	return db, nil
}

// Close closes both pools. It is safe to call more than once.
func (db *DB) Close() error {
	return errors.Join(db.ck.close(), db.rstmts.close(), db.wstmts.close(), db.R.Close(), db.W.Close())
}

// checkpointer copies the log into the file on a connection of its own
// (WithBackgroundCheckpoints), once after each write, writes that end
// while it copies or rests (checkpointRest) asking for one more.
type checkpointer struct {
	db         *sql.DB
	want, stop chan struct{}
	done       chan struct{}
	closeOnce  sync.Once
	// mu is held by each checkpoint, its own and DB.Checkpoint's: SQLite
	// runs one at a time, a second giving up at once.
	mu sync.Mutex
	// ran, if set, is told what each checkpoint found: the log's pages
	// and how many of them are in the file (tests).
	ran func(log, copied int, err error)
}

func startCheckpointer(db *sql.DB) *checkpointer {
	db.SetMaxOpenConns(1)
	c := &checkpointer{db: db, want: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *checkpointer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.want:
		}
		// PASSIVE: copy what no reader still reads, waiting for no one.
		// A failure (the disk) leaves the log to grow to the writer's
		// backstop, whose checkpoint meets it too.
		var busy, log, copied int
		c.mu.Lock()
		err := c.db.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &copied)
		c.mu.Unlock()
		if c.ran != nil {
			c.ran(log, copied, err)
		}
		// Writes that come while it rests are copied together: a page
		// written by many commits in a row is copied once.
		t := time.NewTimer(checkpointRest)
		select {
		case <-c.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Checkpoint runs a checkpoint of mode (PASSIVE, FULL, RESTART or
// TRUNCATE) on the writer's connection, after any the background
// checkpointer runs (WithBackgroundCheckpoints), and reports whether it
// was kept from copying all the log (a reader or a writer in the way).
func (db *DB) Checkpoint(ctx context.Context, mode string) (busy bool, err error) {
	switch mode {
	case "PASSIVE", "FULL", "RESTART", "TRUNCATE":
	default:
		return false, fmt.Errorf("checkpoint: no mode %q", mode)
	}
	if db.ck != nil {
		db.ck.mu.Lock()
		defer db.ck.mu.Unlock()
	}
	var b, log, copied int
	if err := db.W.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&b, &log, &copied); err != nil {
		return false, classify(fmt.Errorf("checkpoint: %w", err))
	}
	return b != 0, nil
}

// kick asks for a checkpoint, if c is not nil.
func (c *checkpointer) kick() {
	if c == nil {
		return
	}
	select {
	case c.want <- struct{}{}:
	default:
	}
}

// close stops c (nil: nothing) and closes its connection.
func (c *checkpointer) close() error {
	if c == nil {
		return nil
	}
	var err error
	c.closeOnce.Do(func() {
		close(c.stop)
		<-c.done
		err = c.db.Close()
	})
	return err
}

// pingBusy opens the first connection. Switching a new file to WAL takes a
// lock that SQLite does not wait for with the busy handler, so a file that
// another process opens at the same moment can answer SQLITE_BUSY at once;
// such an open is retried until BusyTimeout.
func pingBusy(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(BusyTimeout)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		err := db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func isBusy(err error) bool {
	var se interface{ Code() int }
	return errors.As(err, &se) && se.Code()&0xff == 5 // SQLITE_BUSY and its extended codes
}

// Write runs fn in an immediate write transaction, committing if fn returns
// nil and rolling back otherwise.
func (db *DB) Write(ctx context.Context, fn func(*Tx) error) error {
	var t *Tx
	err := inTx(ctx, db.W.BeginTx, db.wstmts, nil, func(tx *Tx) error { t = tx; return fn(tx) })
	db.wrote(t, err)
	return err
}

// Read runs fn in a read transaction: one consistent snapshot of the file.
func (db *DB) Read(ctx context.Context, fn func(*Tx) error) error {
	return inTx(ctx, db.R.BeginTx, db.rstmts, &sql.TxOptions{ReadOnly: true}, fn)
}

// WriteAttached is Write with another file attached as schema for fn's
// statements (schema.table), detached again after. ATTACH cannot run
// inside a transaction, so all three run on one connection held
// throughout: the pool could otherwise hand the transaction another.
func (db *DB) WriteAttached(ctx context.Context, file, schema string, fn func(*Tx) error) (err error) {
	defer db.wrote(nil, nil)
	conn, err := db.W.Conn(ctx)
	if err != nil {
		return classify(fmt.Errorf("attach %s: %w", file, err))
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS `+schema, file); err != nil {
		return classify(fmt.Errorf("attach %s: %w", file, err))
	}
	defer func() {
		if _, derr := conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE `+schema); derr != nil {
			err = errors.Join(err, classify(fmt.Errorf("detach %s: %w", file, derr)))
		}
	}()
	return inTx(ctx, conn.BeginTx, db.wstmts, nil, fn)
}

func inTx(ctx context.Context, begin func(context.Context, *sql.TxOptions) (*sql.Tx, error), cache *stmtCache, opts *sql.TxOptions, fn func(*Tx) error) error {
	tx, err := begin(ctx, opts)
	if err != nil {
		return classify(fmt.Errorf("begin: %w", err))
	}
	t := &Tx{tx: tx, stmts: map[string]*sql.Stmt{}, cache: cache}
	// The pool's connections are free again once the transaction ends: the
	// statements it had to parse itself are prepared for the next ones.
	defer func() { cache.add(context.WithoutCancel(ctx), t.misses) }()
	if err := fn(t); err != nil {
		tx.Rollback()
		return classify(err)
	}
	if err := tx.Commit(); err != nil {
		return classify(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// maxCachedStmts bounds a pool's statement cache. Queries with a variable
// number of placeholders each count once; past the bound, new statements
// are prepared per transaction, as before the cache.
const maxCachedStmts = 512

// stmtCache holds statements prepared on a pool. database/sql keeps one
// prepared copy per connection, so a transaction on a connection that has
// run a statement before reuses it instead of parsing its SQL again: SQLite's
// parser took a third of the CPU of a sync when every transaction prepared
// its own.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}}
}

func (c *stmtCache) get(query string) *sql.Stmt {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[query]
}

// add prepares queries on the pool. It runs outside any transaction: the
// writer pool has a single connection, which a transaction holds.
func (c *stmtCache) add(ctx context.Context, queries []string) {
	if c == nil {
		return
	}
	for _, q := range queries {
		// Preparing takes a connection: when all are busy (the writer pool
		// has one), waiting for one would hold up the caller whose
		// transaction just ended. A later miss prepares it instead.
		if st := c.db.Stats(); st.MaxOpenConnections > 0 && st.InUse >= st.MaxOpenConnections {
			return
		}
		c.mu.Lock()
		_, known := c.m[q]
		full := len(c.m) >= maxCachedStmts
		c.mu.Unlock()
		if known || full {
			continue
		}
		s, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			continue // the transaction that ran it reported any error
		}
		c.mu.Lock()
		if _, known := c.m[q]; known {
			s.Close()
		} else {
			c.m[q] = s
		}
		c.mu.Unlock()
	}
}

func (c *stmtCache) close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, s := range c.m {
		errs = append(errs, s.Close())
		delete(c.m, q)
	}
	return errors.Join(errs...)
}

// Conditions of the file system, not of the data: the transaction was
// rolled back whole, and the same write succeeds once the condition is
// gone. Callers tell their user what to do about it.
var (
	// ErrFull: the disk (or the file's size limit) is full.
	ErrFull = errors.New("storage full: free some space on the device; nothing already saved was lost")
	// ErrReadOnly: the file or its directory cannot be written.
	ErrReadOnly = errors.New("database file is read-only: it cannot take writes until it is writable again; nothing already saved was lost")
)

// classify marks errors that SQLite reports for a full or read-only file
// with ErrFull or ErrReadOnly.
func classify(err error) error {
	var se interface{ Code() int }
	if err == nil || !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case 13: // SQLITE_FULL
		if !errors.Is(err, ErrFull) {
			return fmt.Errorf("%w: %w", ErrFull, err)
		}
	case 8: // SQLITE_READONLY and its extended codes
		if !errors.Is(err, ErrReadOnly) {
			return fmt.Errorf("%w: %w", ErrReadOnly, err)
		}
	}
	return err
}

// Migration is one numbered schema step.
type Migration = migration.Migration

// LoadMigrations reads the NNN_name.sql files of dir, in version order.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) { return migration.Load(fsys, dir) }

// ErrNewerSchema means the file was written by a newer program.
var ErrNewerSchema = errors.New("database schema is newer than this program")

// Migrate applies, each in its own transaction, the migrations not yet
// recorded in the file's schema_migrations table. ms must be in version
// order.
func Migrate(ctx context.Context, db *sql.DB, ms []Migration) error {
	for i := 1; i < len(ms); i++ {
		if ms[i].Version <= ms[i-1].Version {
			return fmt.Errorf("migrations out of order: %s after %s", ms[i].Name, ms[i-1].Name)
		}
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return err
	}
	for _, m := range ms {
		// The version is read in the migration's own write transaction: two
		// programs opening the file at once must not both apply it.
		err := inTx(ctx, db.BeginTx, nil, nil, func(tx *Tx) error {
			var current int
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
				return err
			}
			if last := ms[len(ms)-1].Version; current > last {
				return fmt.Errorf("%w: file at version %d, program knows up to %d", ErrNewerSchema, current, last)
			}
			if m.Version <= current {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, time.Now().UTC().Format(time.RFC3339))
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// SchemaVersion is the newest migration recorded in the file.
func SchemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v int
	err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// InPlaceholders returns "?, ?, ?" for n arguments.
func InPlaceholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// Tx is a transaction that prepares each distinct statement once and reuses
// it: a bulk write repeats a few statements thousands of times, and parsing
// them again each time costs more than running them (a profile of the demo
// seed showed 40% of its time in the SQL parser). The statements close with
// the transaction.
type Tx struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
	cache *stmtCache
	// misses are the statements this transaction prepared itself.
	misses []string
	// detached: statements run without their context's cancellation (a
	// grouped write's; see WriteGrouped).
	detached bool
	// changed are the households a write declared it changed (Changed).
	changed  []string
	declared bool
}

// Changed declares that the write transaction changes the replicated rows
// of these households and of no other (several calls add up), so that a
// reader keeping what it read of others (DB.ChangedSince) may go on
// keeping it. A write that declares nothing may have changed any row.
func (c *Tx) Changed(households ...string) {
	c.declared = true
	c.changed = append(c.changed, households...)
}

// ctx is the context a statement runs with.
func (c *Tx) ctx(ctx context.Context) context.Context {
	if c.detached {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

func (c *Tx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := c.stmts[query]; ok {
		return s, nil
	}
	if ps := c.cache.get(query); ps != nil {
		s := c.tx.StmtContext(ctx, ps)
		c.stmts[query] = s
		return s, nil
	}
	s, err := c.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = s
	c.misses = append(c.misses, query)
	return s, nil
}

// ExecContext runs a statement, prepared once per transaction.
func (c *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx = c.ctx(ctx)
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// QueryContext runs a query, prepared once per transaction.
func (c *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = c.ctx(ctx)
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// QueryRowContext runs a one-row query, prepared once per transaction.
func (c *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ctx = c.ctx(ctx)
	s, err := c.stmt(ctx, query)
	if err != nil {
		// The unprepared query fails the same way and carries the error.
		return c.tx.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}
