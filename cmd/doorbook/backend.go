package main

import (
	"context"
	"net/url"
	"strings"

	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/server/store/postgres"
	"github.com/doorbook/doorbook/server/store/sqlite"
)

// isPostgres reports whether --db names a PostgreSQL database (a URL)
// rather than a SQLite file.
func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// openBackend opens the storage --db names: a PostgreSQL database by URL,
// else a SQLite file, opened with opts.
func openBackend(ctx context.Context, db string, opts ...sqlite.Option) (store.Backend, error) {
	if isPostgres(db) {
		return postgres.Open(ctx, db)
	}
	return sqlite.Open(ctx, db, opts...)
}

// credentialsBeside is the default credentials file of --db: beside a
// SQLite file, or in the working directory for a PostgreSQL database.
func credentialsBeside(db string) string {
	if isPostgres(db) {
		return "doorbook.credentials.json"
	}
	return db + ".credentials.json"
}

// redactDB is --db as it may be printed: a URL's password hidden.
func redactDB(db string) string {
	if !isPostgres(db) {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	return u.Redacted()
}
