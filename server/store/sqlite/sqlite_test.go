package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/sqlite"
	"github.com/doorbook/doorbook/server/store/storetest"
)

// TestStore holds the SQLite backend to the store conformance suite, each
// subtest on its own file.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) store.Store {
		var opts []sqlite.Option
		var rules []service.Option
		if o.Now != nil {
			opts = append(opts, sqlite.WithClock(o.Now))
			rules = append(rules, service.WithClock(o.Now))
		}
		if o.ScopeGrace > 0 {
			rules = append(rules, service.WithScopeGrace(o.ScopeGrace))
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
		return service.New(s, rules...)
	})
}
