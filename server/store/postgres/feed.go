package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Entry is one feed entry: row entityID of kind changed, as part of
// household householdID, at position Seq.
type Entry struct {
	Seq         uint64
	Kind        int
	EntityID    string
	HouseholdID string
	// Origin is the device whose push created an immutable row, which its
	// own pulls leave out; "" otherwise.
	Origin string
}

// Commit is a write transaction's range of feed positions, First to Last;
// zero for a transaction that touched no feed entry (and took no number).
type Commit struct {
	First, Last uint64
	// Tag is the random tag a cursor into this commit carries.
	Tag int64
	// At is when the commit was made, on the server's clock.
	At time.Time
}

// Tx is a write transaction, given to the function Write runs. Its
// queries run at READ COMMITTED: a read-modify-write of a row locks it
// first (SELECT ... FOR UPDATE).
type Tx struct {
	conn *pgxpool.Conn
	// pending are the entries touched, in order.
	pending []pending
	// at indexes pending by the entry's key.
	at    map[entryKey]int
	count int
	// sealed run once the numbers are known, before the commit.
	sealed []func(context.Context, Commit) error
}

type pending struct {
	Entry
	// moved: touched again later in the transaction.
	moved bool
}

type entryKey struct {
	kind              int
	entity, household string
}

// Exec runs a statement in the transaction.
func (tx *Tx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return tx.conn.Exec(ctx, sql, args...)
}

// Query runs a query in the transaction.
func (tx *Tx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return tx.conn.Query(ctx, sql, args...)
}

// QueryRow runs a query of one row in the transaction.
func (tx *Tx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return tx.conn.QueryRow(ctx, sql, args...)
}

// Touch records that a row changed: when the transaction commits, the
// row's feed entry moves to a new position, after every position
// committed before. origin is the device that pushed an immutable row
// ("" for any other). Touching a row again in the same transaction moves
// it after the entries touched since.
func (tx *Tx) Touch(kind int, entityID, householdID, origin string) {
	k := entryKey{kind, entityID, householdID}
	if i, ok := tx.at[k]; ok {
		tx.pending[i].moved = true
		tx.count--
	}
	if tx.at == nil {
		tx.at = make(map[entryKey]int)
	}
	tx.at[k] = len(tx.pending)
	tx.pending = append(tx.pending, pending{Entry: Entry{Kind: kind, EntityID: entityID, HouseholdID: householdID, Origin: origin}})
	tx.count++
}

// Sealed adds fn to run when the transaction has its feed positions, just
// before it commits, with the counter locked: for rows that record the
// position (which change ids a commit applied). Keep it to a few
// statements: every writer waits for it.
func (tx *Tx) Sealed(fn func(ctx context.Context, c Commit) error) {
	tx.sealed = append(tx.sealed, fn)
}

// maxAttempts bounds the runs of a write transaction that fails on a
// deadlock or serialisation failure.
const maxAttempts = 10

// Write runs fn in a write transaction, then numbers the feed entries fn
// touched and commits (see the package doc for why the numbers are taken
// last). If the transaction deadlocks or fails to serialise (SQLSTATE
// 40P01, 40001), it is rolled back and fn runs again, from the start, in a
// new one: fn must do nothing outside the transaction that it cannot do
// twice. An error from fn rolls the transaction back and is returned.
//
// An error at the commit itself (the connection broke) may leave the
// writes committed: a push, idempotent by change id, is safe to send
// again.
func (db *DB) Write(ctx context.Context, fn func(tx *Tx) error) (Commit, error) {
	for attempt := 1; ; attempt++ {
		c, err := db.writeOnce(ctx, fn)
		if err == nil || !retryable(err) || attempt == maxAttempts {
			return c, err
		}
		// A little jitter, growing, so the transactions that deadlocked
		// do not meet again at once.
		wait := time.Duration(rand.Int64N(int64(attempt) * int64(time.Millisecond)))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return Commit{}, err
		}
	}
}

func (db *DB) writeOnce(ctx context.Context, fn func(tx *Tx) error) (Commit, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return Commit{}, fmt.Errorf("begin: %w", err)
	}
	// A connection left in a transaction (a broken one) is closed, not
	// pooled.
	defer conn.Release()
	if _, err := conn.Exec(ctx, `BEGIN ISOLATION LEVEL READ COMMITTED`); err != nil {
		return Commit{}, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if conn.Conn().PgConn().TxStatus() != 'I' {
			_, _ = conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`)
		}
	}()
	tx := &Tx{conn: conn}
	if err := fn(tx); err != nil {
		return Commit{}, err
	}
	return db.sealAndCommit(ctx, tx)
}

// sealSQL takes $1 numbers from the counter, locking it, and inserts the
// entries ($2..$5, in order) at them and the commit's range (tag $6, time
// $7). A data-modifying WITH runs once and to the end whether or not the
// query reads it.
const sealSQL = `WITH head AS (
	UPDATE feed_head SET seq = seq + $1 RETURNING seq
), entries AS (
	INSERT INTO feed (seq, kind, entity_id, household_id, origin)
	SELECT head.seq - $1 + e.n, e.kind, e.entity_id, e.household_id, e.origin
	FROM head, unnest($2::integer[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS e(kind, entity_id, household_id, origin, n)
	ON CONFLICT (kind, entity_id, household_id) DO UPDATE SET seq = excluded.seq, origin = excluded.origin
), recorded AS (
	INSERT INTO commits (last_seq, first_seq, tag, at) SELECT seq, seq - $1 + 1, $6, $7 FROM head
)
SELECT seq FROM head`

// sealAndCommit numbers tx's pending entries, writes them, and commits.
// Taking the counter row locks it until the transaction ends, so the lock
// is held for this alone: the seal and the COMMIT go in one pipeline, one
// round trip (twice the commits a second of a COMMIT sent after the
// seal's answer, on two cores), unless Sealed functions must run between.
func (db *DB) sealAndCommit(ctx context.Context, tx *Tx) (Commit, error) {
	var c Commit
	b := &pgx.Batch{}
	if tx.count > 0 {
		n := tx.count
		kinds := make([]int32, 0, n)
		entities := make([]string, 0, n)
		households := make([]string, 0, n)
		origins := make([]string, 0, n)
		for _, e := range tx.pending {
			if !e.moved {
				kinds = append(kinds, int32(e.Kind))
				entities = append(entities, e.EntityID)
				households = append(households, e.HouseholdID)
				origins = append(origins, e.Origin)
			}
		}
		c = Commit{Tag: rand.Int64N(1 << 16), At: db.now()}
		b.Queue(sealSQL, n, kinds, entities, households, origins, c.Tag, c.At.UnixMilli()).QueryRow(func(row pgx.Row) error {
			if err := row.Scan(&c.Last); err != nil {
				return fmt.Errorf("seal feed: %w", err)
			}
			c.First = c.Last - uint64(n) + 1
			return nil
		})
	}
	if len(tx.sealed) > 0 {
		if b.Len() > 0 {
			if err := tx.conn.SendBatch(ctx, b).Close(); err != nil {
				return Commit{}, err
			}
			b = &pgx.Batch{}
		}
		for _, fn := range tx.sealed {
			if err := fn(ctx, c); err != nil {
				return Commit{}, err
			}
		}
	}
	b.Queue(`COMMIT`).Exec(func(tag pgconn.CommandTag) error {
		// A transaction that failed earlier answers COMMIT with ROLLBACK.
		if tag.String() != "COMMIT" {
			return fmt.Errorf("commit: rolled back (%s): an error in the transaction went unreported", tag)
		}
		return nil
	})
	if err := tx.conn.SendBatch(ctx, b).Close(); err != nil {
		return Commit{}, fmt.Errorf("commit: %w", err)
	}
	return c, nil
}

// retryable reports whether err is a deadlock or serialisation failure:
// the transaction was rolled back and may run again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// ReadFeed returns up to limit entries after position after, in position
// order. Every entry at or before the last one returned is committed, and
// no transaction still running will commit one there: after is a cursor
// that never skips a change.
func (db *DB) ReadFeed(ctx context.Context, after uint64, limit int) ([]Entry, error) {
	rows, err := db.pool.Query(ctx, `SELECT seq, kind, entity_id, household_id, origin FROM feed
		WHERE seq > $1 ORDER BY seq LIMIT $2`, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("read feed: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := r.Scan(&e.Seq, &e.Kind, &e.EntityID, &e.HouseholdID, &e.Origin)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read feed: %w", err)
	}
	return out, nil
}

// Head is the last feed position handed out by a committed transaction.
func (db *DB) Head(ctx context.Context) (uint64, error) {
	var seq uint64
	if err := db.pool.QueryRow(ctx, `SELECT seq FROM feed_head`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("feed head: %w", err)
	}
	return seq, nil
}
