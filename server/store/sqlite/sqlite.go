// Package sqlite is the server's embedded storage backend: one SQLite file
// in WAL mode, written by one connection at a time. It is the default
// backend: `doorbook serve --db FILE` needs nothing else.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations is the server schema, in order.
func Migrations() ([]sqlitex.Migration, error) {
	return statedb.Migrations(migrationFiles, "migrations")
}

// Store is the SQLite backend.
type Store struct {
	db *sqlitex.DB
	// now is the server's clock: commits are stamped with it, and scope
	// grace and horizons are measured by it.
	now func() time.Time
	// snapshotCopied, if set, runs while a snapshot's transaction still
	// reads this database (tests: writes must go on meanwhile).
	snapshotCopied func()
}

// cacheKiB is each connection's page cache: a push's inserts land all over
// the visit and feed indexes of a street's file, and with SQLite's default
// 2 MiB most of them read the page again. One writer and a few readers
// keep the server well under its memory budget.
const cacheKiB = 32 << 10

// DefaultMmapSize is how much of the file a server's reading connections
// map (SQLite's limit is 2 GiB): a report reads most pages of a street's file
// once, and each read call and copy cost a fifth of its time (a street's
// report read whole 1.5 → 0.83 s). Mapped pages are the OS's page cache,
// shared and dropped under pressure, not the server's heap; but they
// count in its resident set.
const DefaultMmapSize = 2 << 30

// Option tunes Open.
type Option func(*options)

type options struct {
	sqlite []sqlitex.Option
	now    func() time.Time
}

// WithMaxSize bounds the database file at about n bytes: past it, writes
// fail as they would on a full disk (a server sharing a disk with others,
// or a test of a full one).
func WithMaxSize(n int64) Option {
	return func(o *options) { o.sqlite = append(o.sqlite, sqlitex.WithMaxPages(int(max(1, n/4096)))) }
}

// WithMmapSize maps up to n bytes of the file for reading (default
// DefaultMmapSize; 0 maps none, and pages are read by read calls).
func WithMmapSize(n int64) Option {
	return func(o *options) { o.sqlite = append(o.sqlite, sqlitex.WithMmapSize(n)) }
}

// WithClock sets the server's clock (default time.Now), for tests.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Open opens (creating if needed) the database file.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	o := options{sqlite: []sqlitex.Option{sqlitex.WithCacheSize(cacheKiB), sqlitex.WithMmapSize(DefaultMmapSize), sqlitex.WithMemoryTemp(), sqlitex.WithBackgroundCheckpoints()}, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	db, err := sqlitex.Open(ctx, path, ms, o.sqlite...)
	if err != nil {
		return nil, err
	}
	removeSnapshots(path)
	return &Store{db: db, now: o.now}, nil
}

// DBStats is the statistics of the write and read connection pools (a
// gauge of /metrics).
func (s *Store) DBStats() map[string]sql.DBStats {
	return map[string]sql.DBStats{"write": s.db.W.Stats(), "read": s.db.R.Stats()}
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// feed entry kinds.
const (
	kindHousehold = 1
	kindPerson    = 2
	kindTag       = 3
	kindVisit     = 4
	kindAmendment = 5
)

// seqAlloc hands out feed sequence numbers inside one write transaction and
// stores the last one on commit, with the transaction's tag. The single
// writer keeps numbers committing in order.
//
// The feed entries and applied changes the transaction records are written
// a batch at a time (flush): a push records one of each per change, and a
// statement of many rows costs SQLite far less than as many statements.
// What reads them in the transaction flushes first.
type seqAlloc struct {
	tx    *sqlitex.Tx
	first uint64
	last  uint64
	used  bool
	// at is the commit's time on the server's clock (Unix ms).
	at int64
	// feed and applied are the rows not yet written, in order.
	feed    []any
	applied []any
	// grids are the households' grids the transaction read or wrote, by
	// household: a feed entry of one of them is filed under its grid
	// without looking the household up again.
	grids map[string]string
}

// The columns of the rows seqAlloc writes in batches, and how many rows a
// batch's statement takes (the rest go in smaller ones, so that few
// statements are prepared).
const (
	feedColumns    = 7 // seq, kind, entity_id, household_id, origin, and its grid (known, or looked up by the household)
	appliedColumns = 4 // change_id, credential_id, seq, digest
	batchRows      = 64
)

func (s *Store) newSeqAlloc(ctx context.Context, tx *sqlitex.Tx) (*seqAlloc, error) {
	a := &seqAlloc{tx: tx, at: s.now().UnixMilli()}
	if err := tx.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'seq'`).Scan(&a.last); err != nil {
		return nil, fmt.Errorf("read sequence: %w", err)
	}
	return a, nil
}

func (a *seqAlloc) next() uint64 {
	a.last++
	if !a.used {
		a.first, a.used = a.last, true
	}
	return a.last
}

func (a *seqAlloc) save(ctx context.Context) error {
	if err := a.flush(ctx); err != nil {
		return err
	}
	if !a.used {
		return nil
	}
	if _, err := a.tx.ExecContext(ctx, `UPDATE counters SET value = ? WHERE name = 'seq'`, a.last); err != nil {
		return fmt.Errorf("save sequence: %w", err)
	}
	// A commit takes the time of the one before it when its clock is
	// behind that by less than store.ClockStep: commit times then stay in
	// the order of positions, and the last commit before a time is the
	// last of the time index (PositionBefore).
	if _, err := a.tx.ExecContext(ctx, `INSERT INTO commits (last_seq, first_seq, tag, at)
		VALUES (?1, ?2, ?3, COALESCE((SELECT CASE WHEN at > ?4 AND at - ?4 <= ?5 THEN at END FROM commits ORDER BY last_seq DESC LIMIT 1), ?4))`,
		a.last, a.first, rand.Int64N(1<<cursorTagBits), a.at, store.ClockStep.Milliseconds()); err != nil {
		return fmt.Errorf("save sequence: %w", err)
	}
	return nil
}

// A cursor is seq<<cursorTagBits | tag: a feed position and the tag of the
// commit that position lies in. It orders like the position.
const cursorTagBits = 16

// cursorAt makes the cursor of feed position seq.
func cursorAt(ctx context.Context, q statedb.Querier, seq uint64) (uint64, error) {
	if seq == 0 {
		return 0, nil
	}
	var tag uint64
	err := q.QueryRowContext(ctx, `SELECT tag FROM commits WHERE last_seq >= ? AND first_seq <= ? ORDER BY last_seq LIMIT 1`, seq, seq).Scan(&tag)
	if err != nil {
		return 0, fmt.Errorf("cursor at %d: %w", seq, err)
	}
	return seq<<cursorTagBits | tag, nil
}

// cursorSeq checks that cursor is one this database issued and returns its
// feed position. A cursor past the feed, or whose commit tag differs (the
// database was restored from a backup and has reused the position), is
// stale: the device must start over.
func cursorSeq(ctx context.Context, q statedb.Querier, cursor, top uint64) (uint64, error) {
	seq, tag := cursor>>cursorTagBits, cursor&(1<<cursorTagBits-1)
	if cursor == 0 {
		return 0, nil
	}
	if seq > top {
		return 0, fmt.Errorf("%w: cursor at %d is past the server's feed (%d): was the database restored?", syncengine.ErrStaleCursor, seq, top)
	}
	var collected uint64
	if err := q.QueryRowContext(ctx, `SELECT COALESCE((SELECT value FROM counters WHERE name = 'collected'), 0)`).Scan(&collected); err != nil {
		return 0, fmt.Errorf("check cursor: %w", err)
	}
	if seq < collected {
		return 0, fmt.Errorf("%w: cursor at %d, history kept from %d", syncengine.ErrCursorExpired, seq, collected)
	}
	var want uint64
	err := q.QueryRowContext(ctx, `SELECT tag FROM commits WHERE last_seq >= ? AND first_seq <= ? ORDER BY last_seq LIMIT 1`, seq, seq).Scan(&want)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && want != tag) {
		return 0, fmt.Errorf("%w: cursor at %d was not issued by this database: was it restored?", syncengine.ErrStaleCursor, seq)
	}
	if err != nil {
		return 0, fmt.Errorf("check cursor: %w", err)
	}
	return seq, nil
}

// touch records that a row changed: it moves the row's feed entry to the
// next sequence number.
func (a *seqAlloc) touch(ctx context.Context, kind int, entityID, householdID string) error {
	return a.touchFrom(ctx, kind, entityID, householdID, "")
}

// touchFrom is touch for an immutable row pushed by device origin, which
// its own pulls then leave out.
func (a *seqAlloc) touchFrom(ctx context.Context, kind int, entityID, householdID, origin string) error {
	var grid any // NULL: looked up as the entry is written
	if g, ok := a.grids[householdID]; ok {
		grid = g
	}
	a.feed = append(a.feed, a.next(), kind, entityID, householdID, origin, grid, householdID)
	if len(a.feed) >= batchRows*feedColumns {
		return a.flush(ctx)
	}
	return nil
}

// recordApplied records that a change was applied, at the transaction's
// last feed position.
func (a *seqAlloc) recordApplied(ctx context.Context, changeID, credentialID string, digest any) error {
	a.applied = append(a.applied, changeID, credentialID, a.last, digest)
	if len(a.applied) >= batchRows*appliedColumns {
		return a.flush(ctx)
	}
	return nil
}

// flush writes the feed entries and applied changes recorded since the
// last flush. A feed entry moves its row to its position: of two entries
// of one row, in one statement or two, the later stays.
func (a *seqAlloc) flush(ctx context.Context) error {
	if err := writeRows(ctx, a.tx, `INSERT INTO feed (seq, kind, entity_id, household_id, origin, grid_id) VALUES `, feedRow,
		` ON CONFLICT (kind, entity_id, household_id) DO UPDATE SET seq = excluded.seq, origin = excluded.origin, grid_id = excluded.grid_id`, feedColumns, a.feed); err != nil {
		return fmt.Errorf("feed: %w", err)
	}
	a.feed = a.feed[:0]
	if err := writeRows(ctx, a.tx, `INSERT INTO applied_changes (change_id, credential_id, seq, digest) VALUES `, "", ``, appliedColumns, a.applied); err != nil {
		return fmt.Errorf("record applied change: %w", err)
	}
	a.applied = a.applied[:0]
	return nil
}

// feedRow is a feed entry's VALUES row: it is filed under the grid its
// household is in as it is written (see feedAfter), the one the
// transaction knows or else the household's row's (COALESCE evaluates no
// further than its first value not NULL).
const feedRow = "(?, ?, ?, ?, ?, COALESCE(?, (SELECT grid_id FROM households WHERE id = ?), ''))"

// knowGrid records that household is in grid as of the transaction's last
// read or write of it.
func (a *seqAlloc) knowGrid(household, grid string) {
	if a.grids == nil {
		a.grids = make(map[string]string)
	}
	a.grids[household] = grid
}

// writeRows inserts rows (columns values each, flat) by statements of
// batchRows rows, then of smaller powers of four: head, the VALUES lists
// (row each, or one parameter a value if row is empty), then tail.
func writeRows(ctx context.Context, tx *sqlitex.Tx, head, row, tail string, columns int, rows []any) error {
	if row == "" {
		row = "(?" + strings.Repeat(", ?", columns-1) + ")"
	}
	for n := batchRows; len(rows) > 0; n /= 4 {
		for len(rows) >= n*columns {
			stmt := head + row + strings.Repeat(", "+row, n-1) + tail
			if _, err := tx.ExecContext(ctx, stmt, rows[:n*columns]...); err != nil {
				return err
			}
			rows = rows[n*columns:]
		}
	}
	return nil
}

func head(ctx context.Context, q statedb.Querier) (uint64, error) {
	var v uint64
	if err := q.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'seq'`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read sequence: %w", err)
	}
	return v, nil
}

func queryStrings(ctx context.Context, q statedb.Querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
