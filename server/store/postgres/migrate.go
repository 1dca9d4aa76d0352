package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"

	"github.com/doorbook/doorbook/internal/migration"
)

// Migration is one numbered schema step.
type Migration = migration.Migration

// LoadMigrations reads the NNN_name.sql files of dir, in version order.
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) { return migration.Load(fsys, dir) }

// ErrNewerSchema means the database was migrated by a newer program.
var ErrNewerSchema = errors.New("database schema is newer than this program")

// migrationLock is the advisory lock key that serialises migrations:
// "doorbook" in ASCII. Advisory locks are per database.
const migrationLock int64 = 0x646f6f72626f6f6b

// Beginner starts transactions: a *pgxpool.Pool or a *pgx.Conn.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Migrate applies, each in its own transaction, the migrations not yet
// recorded in the database's schema_migrations table. ms must be in
// version order. Each transaction first takes an advisory lock, so that
// servers starting at once on one database apply each migration once: the
// others wait, then find it recorded. A migration's SQL may hold several
// statements, but none that cannot run in a transaction (CREATE INDEX
// CONCURRENTLY).
func Migrate(ctx context.Context, db Beginner, ms []Migration) error {
	for i := 1; i < len(ms); i++ {
		if ms[i].Version <= ms[i-1].Version {
			return fmt.Errorf("migrations out of order: %s after %s", ms[i].Name, ms[i-1].Name)
		}
	}
	if len(ms) == 0 {
		return nil
	}
	last := ms[len(ms)-1].Version
	for _, m := range ms {
		if err := migrateOne(ctx, db, m, last); err != nil {
			return err
		}
	}
	return nil
}

// migrateOne applies m unless the database has it.
func migrateOne(ctx context.Context, db Beginner, m Migration, last int) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	// Created under the lock: CREATE TABLE IF NOT EXISTS is not safe
	// against a concurrent one.
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	current, err := schemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	if current > last {
		return fmt.Errorf("%w: database at version %d, program knows up to %d", ErrNewerSchema, current, last)
	}
	if m.Version <= current {
		return tx.Commit(ctx)
	}
	// No arguments: pgx sends it by the simple protocol, which runs
	// several statements.
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return fmt.Errorf("migrate %s: %w", m.Name, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
		return fmt.Errorf("migrate %s: %w", m.Name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", m.Name, err)
	}
	return nil
}

// Querier runs queries: a pool, a connection or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// SchemaVersion is the newest migration recorded in the database (0 for
// none).
func SchemaVersion(ctx context.Context, q Querier) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	return schemaVersion(ctx, q)
}

func schemaVersion(ctx context.Context, q Querier) (int, error) {
	var v int
	err := q.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}
