package postgres_test

import (
	"testing"

	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/postgres"
	"github.com/doorbook/doorbook/server/store/storetest"
)

// TestStore holds the PostgreSQL backend to the store conformance suite,
// each subtest on a database of its own.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, o storetest.Options) store.Store {
		var opts []postgres.Option
		var rules []service.Option
		if o.Now != nil {
			opts = append(opts, postgres.WithClock(o.Now))
			rules = append(rules, service.WithClock(o.Now))
		}
		if o.ScopeGrace > 0 {
			rules = append(rules, service.WithScopeGrace(o.ScopeGrace))
		}
		db, err := postgres.Open(t.Context(), postgres.MigratedDSN(t), opts...)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() {
			if err := db.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return service.New(db, rules...)
	})
}

// TestRepos holds the backend's repositories to the repository suite.
func TestRepos(t *testing.T) {
	storetest.RunRepos(t, func(t *testing.T, o storetest.BackendOptions) store.Backend {
		var opts []postgres.Option
		if o.Now != nil {
			opts = append(opts, postgres.WithClock(o.Now))
		}
		db, err := postgres.Open(t.Context(), postgres.MigratedDSN(t), opts...)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() {
			if err := db.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return db
	})
}
