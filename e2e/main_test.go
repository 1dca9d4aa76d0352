package e2e

import (
	"testing"

	"github.com/doorbook/doorbook/internal/pgtest"
)

// TestMain shares one throwaway PostgreSQL server among the tests that run
// on it (started only if one does).
func TestMain(m *testing.M) { pgtest.Main(m) }
