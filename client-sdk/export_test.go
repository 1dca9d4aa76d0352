package sdk

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// WriterDB is the replica's write connection, for tests that make its
// storage fail (a full disk, a read-only file) from the outside.
func WriterDB(r *Replica) *sql.DB { return r.db.W }

// SetServerURL points an enrolled replica at another server.
func SetServerURL(t testing.TB, r *Replica, url string) {
	t.Helper()
	if _, err := r.db.W.Exec(`UPDATE sync_state SET server_url = ? WHERE id = 1`, url); err != nil {
		t.Fatal(err)
	}
}

// ServerURL is the server a replica syncs with.
func ServerURL(t testing.TB, r *Replica) string {
	t.Helper()
	s, err := readState(t.Context(), r.db.R)
	if err != nil {
		t.Fatal(err)
	}
	return s.ServerURL
}

// Reopen closes r and opens its file again with opts.
func Reopen(t testing.TB, r *Replica, opts ...Option) *Replica {
	t.Helper()
	path := r.Path()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2, err := Open(t.Context(), path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r2.Close() })
	return r2
}

// SharedAnalysis is the analysis Due, Progress and Items share: kept
// between calls, with the households changed since read again.
func SharedAnalysis(ctx context.Context, r *Replica, now time.Time) (*Analysis, error) {
	return r.sharedAnalysis(ctx, "", now)
}

// ChangedSince is r.db.ChangedSince from the replica's count of writes at
// from to now: the households written since, if every write named them.
func ChangedSince(r *Replica, from uint64) ([]string, bool) {
	return r.db.ChangedSince(from, r.db.Writes())
}

// Writes is the replica's count of write transactions.
func Writes(r *Replica) uint64 { return r.db.Writes() }
