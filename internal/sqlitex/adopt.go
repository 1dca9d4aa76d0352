package sqlitex

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"

	"modernc.org/sqlite"
)

// Adopt makes the file at path the content of db, whole, in one write:
// SQLite's backup API copies its pages over db's (a database file taken as
// it is, rather than its rows inserted one by one). fn runs first, holding
// db's one write connection with no transaction open on it, and the copy
// happens only if it returns nil: no write of this process lands between
// what fn reads of db and the copy that replaces it. Readers of db see the
// old content until the copy commits, then the new.
func (db *DB) Adopt(ctx context.Context, path string, fn func() error) error {
	defer db.wrote(nil, nil)
	conn, err := db.W.Conn(ctx)
	if err != nil {
		return classify(fmt.Errorf("adopt %s: %w", path, err))
	}
	defer conn.Close()
	if err := fn(); err != nil {
		return err
	}
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(interface {
			NewRestore(string) (*sqlite.Backup, error)
		})
		if !ok {
			return fmt.Errorf("driver connection %T has no backup API", dc)
		}
		b, err := c.NewRestore(ReadOnlyURI(path))
		if err != nil {
			return err
		}
		_, err = b.Step(-1)
		if ferr := b.Finish(); err == nil {
			err = ferr
		}
		return err
	})
	if err != nil {
		return classify(fmt.Errorf("adopt %s: %w", path, err))
	}
	return nil
}

// ReadOnlyURI names the file at path, opened read-only, for ATTACH or a
// backup: a file: URI, so that SQLite reads no parameters from the name.
func ReadOnlyURI(path string) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro"
}

// Schema is every table, index, view and trigger of q's main database with
// its SQL, one per line in name order (SQLite's own tables left out): two
// files with equal schemas have the same objects defined the same way.
func Schema(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) (string, error) {
	rows, err := q.QueryContext(ctx, `SELECT type, name, tbl_name, coalesce(sql, '') FROM main.sqlite_master
		WHERE name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY type, name`)
	if err != nil {
		return "", fmt.Errorf("schema: %w", err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var typ, name, table, text string
		if err := rows.Scan(&typ, &name, &table, &text); err != nil {
			return "", fmt.Errorf("schema: %w", err)
		}
		fmt.Fprintf(&b, "%s %s ON %s: %s\n", typ, name, table, text)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("schema: %w", err)
	}
	return b.String(), nil
}
