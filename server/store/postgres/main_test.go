package postgres

import (
	"testing"

	"github.com/doorbook/doorbook/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// open opens a fresh database with the schema, closed after the test.
// extra is appended to the DSN (pool settings).
func open(t testing.TB, extra string, opts ...Option) (*DB, string) {
	t.Helper()
	dsn := pgtest.Start(t)
	if extra != "" {
		dsn += " " + extra
	}
	db, err := Open(t.Context(), dsn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dsn
}
