package postgres

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// TestStorageConditions: the database's own conditions reach the API as
// the store's, so that a phone is told to try again later rather than
// that its change is at fault.
func TestStorageConditions(t *testing.T) {
	for code, want := range map[string]error{
		"53100": store.ErrStorageFull,
		"25006": store.ErrStorageReadOnly,
		"22021": syncengine.ErrInvalid,
	} {
		err := dbError(fmt.Errorf("write: %w", &pgconn.PgError{Code: code}))
		if !errors.Is(err, want) {
			t.Errorf("SQLSTATE %s: %v, want %v", code, err, want)
		}
	}
}
