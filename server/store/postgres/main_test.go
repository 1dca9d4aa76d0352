package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/doorbook/doorbook/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// open opens a fresh database with the schema, closed after the test.
// extra is appended to the DSN (pool settings).
func open(t testing.TB, extra string, opts ...Option) (*DB, string) {
	t.Helper()
	dsn := migratedDSN(t)
	if extra != "" {
		dsn += " " + extra
	}
	db, err := Open(t.Context(), dsn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dsn
}

// schema is a database of the test binary's cluster migrated once, which
// migratedDSN clones for each test (CREATE DATABASE ... TEMPLATE): copying
// its files costs less than running the migrations again, a tenth of a
// second each for some sixty databases under -race.
var schema struct {
	once sync.Once
	// dsn reaches the cluster's maintenance database, name is the
	// template's; err is why there is none.
	dsn, name string
	err       error
}

// errNoCluster: pgtest.Start skipped or failed the test that was to make
// the template.
var errNoCluster = errors.New("no cluster")

// migratedDSN returns a DSN for a fresh database with the schema, dropped
// after the test. On a server named by pgtest.EnvDSN (not thrown away
// with the tests), it makes each database and migrates it rather than
// leave a template behind.
func migratedDSN(t testing.TB) string {
	t.Helper()
	if os.Getenv(pgtest.EnvDSN) != "" {
		return pgtest.Start(t)
	}
	schema.once.Do(func() {
		schema.err = errNoCluster // unless pgtest.Start returns
		// The database pgtest makes goes with this test; the cluster's
		// maintenance database stays.
		schema.dsn, schema.name = pgtest.Start(t)+" dbname=postgres", "schema_"+randomHex()
		schema.err = makeTemplate(t.Context(), schema.dsn, schema.name)
	})
	if errors.Is(schema.err, errNoCluster) {
		pgtest.Start(t) // skips, or fails, as it did the first test
	}
	if schema.err != nil {
		t.Fatalf("schema template: %v", schema.err)
	}
	name := "t_" + randomHex()
	if err := admin(t.Context(), schema.dsn, `CREATE DATABASE `+name+` TEMPLATE `+schema.name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := admin(ctx, schema.dsn, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	// In the keyword/value form pgtest's own cluster answers with, the
	// last of a repeated keyword wins.
	return schema.dsn + " dbname=" + name
}

// makeTemplate creates database name on the cluster of dsn and migrates
// it; it keeps no connection to it (a template must have none).
func makeTemplate(ctx context.Context, dsn, name string) error {
	if err := admin(ctx, dsn, `CREATE DATABASE `+name); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, dsn+" dbname="+name)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	ms, err := Migrations()
	if err != nil {
		return err
	}
	return Migrate(ctx, conn, ms)
}

// admin runs one statement on a connection of its own to dsn's database.
func admin(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
