package sqlitex

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestCheckpointsBehind: with WithBackgroundCheckpoints, a write has the
// log copied into the file by the checkpointer's own connection, and
// Close stops it.
func TestCheckpointsBehind(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "c.db"), nil, WithBackgroundCheckpoints())
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		log, copied int
		err         error
	}
	ran := make(chan result, 16)
	db.ck.ran = func(log, copied int, err error) { ran <- result{log, copied, err} }
	err = db.Write(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE t (x); INSERT INTO t VALUES (1), (2)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// A bound on the wait, not a pause: the checkpoint comes at once.
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	select {
	case r := <-ran:
		if r.err != nil || r.log == 0 || r.copied != r.log {
			t.Errorf("the checkpoint after a write found %d pages of log and copied %d (%v): want them all copied", r.log, r.copied, r.err)
		}
	case <-wait.Done():
		t.Fatal("no checkpoint a minute after a write")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-db.ck.done:
	default:
		t.Error("the checkpointer runs after Close")
	}
}
