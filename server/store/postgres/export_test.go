package postgres

import "testing"

// MigratedDSN is migratedDSN, for the tests of package postgres_test.
func MigratedDSN(t testing.TB) string { return migratedDSN(t) }
