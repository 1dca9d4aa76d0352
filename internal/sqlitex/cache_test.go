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
