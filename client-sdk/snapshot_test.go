package sdk_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	sdk "github.com/doorbook/doorbook/client-sdk"
)

// TestOpenRemovesAnUnfinishedSnapshot: a snapshot download holds the whole
// scope outside the replica. If the app died before copying it in, opening
// the replica again removes it, so that no copy of the data outlives the
// replica's own (a revoked phone's wipe relies on that too).
func TestOpenRemovesAnUnfinishedSnapshot(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "phone.db")
	left := path + ".snapshot"
	if err := os.WriteFile(left, []byte("households of the whole scope"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := sdk.Open(t.Context(), path, sdk.WithSnapshotBootstrap())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := os.Stat(left); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the unfinished snapshot %s is still there (%v)", left, err)
	}
}
