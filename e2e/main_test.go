package e2e

import (
	"flag"
	"testing"

	"github.com/doorbook/doorbook/internal/pgtest"
)

// flagDB is the database every test's server runs on, unless the test
// names one: the whole suite runs over PostgreSQL with -e2e.db=postgres.
// Tests that read the SQLite file itself (backups, its bytes after an
// erasure, a full disk) skip there, saying so.
var flagDB = flag.String("e2e.db", "sqlite", "the database the servers run on: sqlite or postgres")

// TestMain shares one throwaway PostgreSQL server among the tests that run
// on it (started only if one does).
func TestMain(m *testing.M) { pgtest.Main(m) }
