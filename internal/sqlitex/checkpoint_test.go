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

// TestCheckpointWhileWriting: a checkpoint asked for (an erasure's, to
// leave nothing in the log) is not kept busy by the background checkpoints
// that writes ask for: it runs after theirs.
func TestCheckpointWhileWriting(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "c.db"), nil, WithBackgroundCheckpoints())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Write(ctx, func(tx *Tx) error { _, err := tx.ExecContext(ctx, `CREATE TABLE t (x)`); return err }); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				wrote <- nil
				return
			default:
			}
			if err := db.Write(ctx, func(tx *Tx) error { _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (?)`, i); return err }); err != nil {
				wrote <- err
				return
			}
		}
	}()
	busy := 0
	for range 40 {
		b, err := db.Checkpoint(ctx, "TRUNCATE")
		if err != nil {
			t.Fatal(err)
		}
		if b {
			busy++
		}
	}
	close(stop)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if busy > 0 {
		t.Errorf("%d of 40 checkpoints asked for while writing were kept busy", busy)
	}
	if _, err := db.Checkpoint(ctx, "NOW"); err == nil {
		t.Error("a checkpoint of no mode SQLite knows ran")
	}
}
