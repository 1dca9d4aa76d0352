package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations is the schema, in order.
func Migrations() ([]Migration, error) {
	return LoadMigrations(migrationFiles, "migrations")
}

// DB is a PostgreSQL database that several server processes may share.
type DB struct {
	pool *pgxpool.Pool
	// now is the server's clock: commits are stamped with it.
	now func() time.Time
}

// Option tunes Open.
type Option func(*options)

type options struct {
	now      func() time.Time
	maxConns int32
}

// WithClock sets the server's clock (default time.Now): commits are
// stamped with it, and the collection horizon and scope grace are
// measured against those stamps.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithMaxConns bounds the pool's connections (default: pgxpool's, the
// larger of 4 and the number of CPUs, or pool_max_conns in the DSN). Each
// server process sharing the database holds its own pool: their sum must
// stay under the server's max_connections.
func WithMaxConns(n int) Option { return func(o *options) { o.maxConns = int32(n) } }

// Open connects to the database named by dsn (a PostgreSQL URL or
// keyword/value string; pgxpool's settings such as pool_max_conns may be
// added) and brings its schema up to date.
func Open(ctx context.Context, dsn string, opts ...Option) (*DB, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	if o.maxConns > 0 {
		cfg.MaxConns = o.maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	if err := Migrate(ctx, pool, ms); err != nil {
		pool.Close()
		return nil, err
	}
	return &DB{pool: pool, now: o.now}, nil
}

// Close closes the pool, waiting for connections in use to be released.
// It is safe to call more than once.
func (db *DB) Close() error {
	db.pool.Close() // idempotent
	return nil
}

// DBStats is the statistics of the connection pool, named "pool", in
// database/sql's terms (the metrics' one vocabulary for pools): a wait is
// an acquire that found no idle connection.
func (db *DB) DBStats() map[string]sql.DBStats {
	s := db.pool.Stat()
	return map[string]sql.DBStats{"pool": {
		MaxOpenConnections: int(s.MaxConns()),
		OpenConnections:    int(s.TotalConns()),
		InUse:              int(s.AcquiredConns()),
		Idle:               int(s.IdleConns()),
		WaitCount:          s.EmptyAcquireCount(),
		WaitDuration:       s.EmptyAcquireWaitTime(),
		MaxIdleTimeClosed:  s.MaxIdleDestroyCount(),
		MaxLifetimeClosed:  s.MaxLifetimeDestroyCount(),
	}}
}
