package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

var (
	_ store.Backend  = (*DB)(nil)
	_ store.Scrubber = (*DB)(nil)
	_ store.Tx       = (*repo)(nil)
)

// Update runs fn in a write transaction (DB.Write): at READ COMMITTED,
// its reads of rows it may write lock them, its feed positions are taken
// when it is sealed, and it runs again from the start after a deadlock or
// a conflict with a concurrent writer.
func (db *DB) Update(ctx context.Context, fn func(store.Tx) error) error {
	_, err := db.Write(ctx, func(tx *Tx) error {
		return fn(&repo{q: tx, w: tx})
	})
	return dbError(err)
}

// View runs fn in a read-only transaction at REPEATABLE READ: one
// snapshot for all its statements, in which, commits being made in the
// order of their feed positions, the feed has no hole below its head.
func (db *DB) View(ctx context.Context, fn func(store.Tx) error) error {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(&repo{q: tx}); err != nil {
		return dbError(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// querier runs statements: a write transaction (*Tx), a read one
// (pgx.Tx), or the pool.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// SendBatch sends a batch of statements in the transaction, in one round
// trip.
func (tx *Tx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return tx.conn.SendBatch(ctx, b)
}

// repo is every repository over one transaction.
type repo struct {
	q querier
	// w is the write transaction; nil in a read one.
	w *Tx
	// absent are the rows this write transaction read by id and did not
	// find: it inserts them only if no other transaction has since (see
	// put).
	absent map[rowKey]bool
}

// rowKey names a row of a replicated or reference table.
type rowKey struct {
	table string
	id    string
}

// lock is the locking clause of a read of rows that a write transaction
// may write back: at READ COMMITTED a read-modify-write must lock what it
// read, or a concurrent one's write would be lost. Reads never wait for
// it.
func (r *repo) lock() string {
	if r.w == nil {
		return ""
	}
	return " FOR UPDATE"
}

// writer returns the write transaction, or an error in a read one.
func (r *repo) writer() (*Tx, error) {
	if r.w == nil {
		return nil, errors.New("a write in a read transaction")
	}
	return r.w, nil
}

// missed records, in a write transaction, the ids of table it looked for
// and did not find (found holds those it found), and forgets those it
// found that an earlier read had missed.
func (r *repo) missed(table string, want, found []string) {
	if r.w == nil {
		return
	}
	for _, id := range found {
		delete(r.absent, rowKey{table, id})
	}
	if len(want) == len(found) {
		return
	}
	got := make(map[string]bool, len(found))
	for _, id := range found {
		got[id] = true
	}
	for _, id := range want {
		if !got[id] {
			if r.absent == nil {
				r.absent = map[rowKey]bool{}
			}
			r.absent[rowKey{table, id}] = true
		}
	}
}

// put writes a row whole: insert is its INSERT, set the SET list of the
// ON CONFLICT update of key. A row this transaction read as absent is
// inserted only if it still is: one that another transaction inserted
// since (two devices registering it at once) would be overwritten by a
// merge that never saw it, so the transaction runs again instead
// (errConflict) and merges onto it. A row read as present was locked by
// the read.
func (r *repo) put(ctx context.Context, table, key, id, insert, set string, args ...any) error {
	k := rowKey{table, id}
	if r.absent[k] {
		tag, err := r.q.Exec(ctx, insert+` ON CONFLICT (`+key+`) DO NOTHING`, args...)
		if err != nil {
			return fmt.Errorf("put %s %s: %w", table, id, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("put %s %s: %w", table, id, errConflict)
		}
		delete(r.absent, k)
		return nil
	}
	if _, err := r.q.Exec(ctx, insert+` ON CONFLICT (`+key+`) DO UPDATE SET `+set, args...); err != nil {
		return fmt.Errorf("put %s %s: %w", table, id, err)
	}
	return nil
}

// dbError gives errors of the database that are the request's fault their
// domain error.
func dbError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "22021", "22P05":
			// PostgreSQL's text holds no NUL character, which UTF-8 (and
			// so syncengine) allows.
			return fmt.Errorf("%w: text PostgreSQL cannot store (a NUL character?): %w", syncengine.ErrInvalid, err)
		case "53100": // disk_full
			return fmt.Errorf("%w: %w", store.ErrStorageFull, err)
		case "25006": // read_only_sql_transaction: a standby, or a read-only database
			return fmt.Errorf("%w: %w", store.ErrStorageReadOnly, err)
		}
	}
	return err
}

// collectStrings reads a query of one text column.
func collectStrings(ctx context.Context, q querier, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// forEachRow calls fn with each row of rows, scanned into dest, and
// returns how many there were.
func forEachRow(rows pgx.Rows, dest []any, fn func()) (int, error) {
	n := 0
	_, err := pgx.ForEachRow(rows, dest, func() error {
		n++
		fn()
		return nil
	})
	return n, err
}
