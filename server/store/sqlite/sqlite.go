// Package sqlite is the server's embedded storage backend: one SQLite file
// in WAL mode, written by one connection at a time. It is the default
// backend: `doorbook serve --db FILE` needs nothing else.
package sqlite

import (
	"context"
	"embed"
	"fmt"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/server/store"
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
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file.
func Open(ctx context.Context, path string) (*Store, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	db, err := sqlitex.Open(ctx, path, ms)
	if err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
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
// stores the last one on commit. The single writer keeps numbers committing
// in order.
type seqAlloc struct {
	tx   *sqlitex.Tx
	last uint64
	used bool
}

func newSeqAlloc(ctx context.Context, tx *sqlitex.Tx) (*seqAlloc, error) {
	a := &seqAlloc{tx: tx}
	if err := tx.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'seq'`).Scan(&a.last); err != nil {
		return nil, fmt.Errorf("read sequence: %w", err)
	}
	return a, nil
}

func (a *seqAlloc) next() uint64 {
	a.last++
	a.used = true
	return a.last
}

func (a *seqAlloc) save(ctx context.Context) error {
	if !a.used {
		return nil
	}
	if _, err := a.tx.ExecContext(ctx, `UPDATE counters SET value = ? WHERE name = 'seq'`, a.last); err != nil {
		return fmt.Errorf("save sequence: %w", err)
	}
	return nil
}

// touch records that a row changed: it moves the row's feed entry to the
// next sequence number.
func (a *seqAlloc) touch(ctx context.Context, kind int, entityID, householdID string) error {
	_, err := a.tx.ExecContext(ctx, `INSERT INTO feed (seq, kind, entity_id, household_id) VALUES (?, ?, ?, ?)
		ON CONFLICT (kind, entity_id, household_id) DO UPDATE SET seq = excluded.seq`,
		a.next(), kind, entityID, householdID)
	if err != nil {
		return fmt.Errorf("feed: %w", err)
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
