package sqlitex

import (
	"context"
	"path/filepath"
	"testing"
)

func TestStatementsAreCachedAcrossTransactions(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "c.db"), []Migration{{Version: 1, Name: "001_t.sql", SQL: `CREATE TABLE t (id INTEGER PRIMARY KEY)`}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const insert = `INSERT INTO t (id) VALUES (?)`
	for i := range 3 {
		var misses []string
		err := db.Write(ctx, func(tx *Tx) error {
			_, err := tx.ExecContext(ctx, insert, i)
			misses = tx.misses
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// The first transaction parses the statement; the next reuse it.
		if want := map[bool]int{true: 1, false: 0}[i == 0]; len(misses) != want {
			t.Fatalf("transaction %d prepared %d statements itself, want %d", i, len(misses), want)
		}
	}
	if db.wstmts.get(insert) == nil {
		t.Fatal("the insert is not in the writer's cache")
	}
	var n int
	if err := db.Read(ctx, func(tx *Tx) error { return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM t`).Scan(&n) }); err != nil || n != 3 {
		t.Fatalf("rows: %d, %v", n, err)
	}
}

// BenchmarkLimitParameter: a statement whose LIMIT is a bare parameter is
// prepared again at each run (SQLite plans for the count bound, and any
// count bound expires the plan); with the parameter behind a unary plus it
// runs as prepared.
//
//	go test ./internal/sqlitex -run XXX -bench LimitParameter
func BenchmarkLimitParameter(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "l.db"), []Migration{{Version: 1, Name: "001_t.sql",
		SQL: `CREATE TABLE t (id INTEGER PRIMARY KEY, grid TEXT NOT NULL);
			CREATE TABLE h (id TEXT PRIMARY KEY, grid TEXT NOT NULL);
			WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
			INSERT INTO t SELECT i, 'g' || (i % 10) FROM n;`}})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for _, limit := range []string{"?", "+?"} {
		b.Run("LIMIT "+limit, func(b *testing.B) {
			query := `SELECT t.id FROM t LEFT JOIN h ON h.id = t.grid WHERE t.id > ? AND t.grid = ? ORDER BY t.id LIMIT ` + limit
			err := db.Read(ctx, func(tx *Tx) error {
				for b.Loop() {
					rows, err := tx.QueryContext(ctx, query, 500, "g1", 10)
					if err != nil {
						return err
					}
					for rows.Next() {
					}
					if err := rows.Close(); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		})
	}
}
