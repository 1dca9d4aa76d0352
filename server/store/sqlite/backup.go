package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/doorbook/doorbook/internal/sqlitex"
)

// Backup writes a consistent copy of the database at path, which a running
// server may be writing, to the new file out. It reads one snapshot of the
// file (VACUUM INTO, in a read transaction of its own): the server's
// writers go on meanwhile, and the copy holds every transaction committed
// before it began and none after. The copy is written beside out and moved
// into place only once whole, so a cut backup leaves no file behind.
func Backup(ctx context.Context, path, out string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := os.Stat(out); err == nil {
		return fmt.Errorf("backup: %s exists: a backup never overwrites a file", out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup: %w", err)
	}
	db, err := sqlitex.Open(ctx, path, nil)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer db.Close()
	tmp := out + ".partial"
	_ = os.Remove(tmp)
	if _, err := db.W.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}
