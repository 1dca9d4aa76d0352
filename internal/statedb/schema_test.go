package statedb_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/doorbook/doorbook/internal/statedb"
)

// TestSharedSchemaNamed: a migration's line naming a shared schema is
// replaced by it; a name misspelt, or a line without its end, is an error
// rather than a comment that leaves the database without the schema.
func TestSharedSchemaNamed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, sql string
		ok        bool
	}{
		{"known", "-- why\n-- statedb: SchemaV8\n", true},
		{"misspelt", "-- statedb: SchemaV88\n", false},
		{"unknown", "-- statedb: SchemaV9\n", false},
		{"no line end", "-- statedb: SchemaV8", false},
	} {
		fsys := fstest.MapFS{"m/002_a.sql": {Data: []byte(tc.sql)}}
		ms, err := statedb.Migrations(fsys, "m")
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want an error: %v", tc.name, err, !tc.ok)
			continue
		}
		if tc.ok && (len(ms) != 2 || !strings.Contains(ms[1].SQL, "DROP TRIGGER visits_sum")) {
			t.Errorf("%s: migrations %+v, want the schema in place of its name", tc.name, ms)
		}
	}
}
