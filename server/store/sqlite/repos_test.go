package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/sqlite"
	"github.com/doorbook/doorbook/server/store/storetest"
)

// TestRepos holds the SQLite backend's repositories to the repository
// suite, each subtest on its own file.
func TestRepos(t *testing.T) {
	storetest.RunRepos(t, func(t *testing.T, o storetest.BackendOptions) store.Backend {
		var opts []sqlite.Option
		if o.Now != nil {
			opts = append(opts, sqlite.WithClock(o.Now))
		}
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "s.db"), opts...)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	})
}
