package sqlitex_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/doorbook/doorbook/internal/sqlitex"
)

var (
	m1 = sqlitex.Migration{Version: 1, Name: "001_people.sql", SQL: `CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`}
	m2 = sqlitex.Migration{Version: 2, Name: "002_email.sql", SQL: `ALTER TABLE people ADD COLUMN email TEXT`}
	// m3 has two statements: both or neither must apply.
	m3 = sqlitex.Migration{Version: 3, Name: "003_pets.sql", SQL: `
		CREATE TABLE pets (id INTEGER PRIMARY KEY, owner INTEGER NOT NULL REFERENCES people(id));
		CREATE INDEX pets_owner ON pets (owner);`}
)

// open opens path with ms and closes it when the test ends.
func open(t *testing.T, path string, ms ...sqlitex.Migration) *sqlitex.DB {
	t.Helper()
	db, err := sqlitex.Open(t.Context(), path, ms)
	if err != nil {
		t.Fatalf("Open(%s): %v", filepath.Base(path), err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func tempFile(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "test.db")
}

type appliedRow struct {
	Version   int
	Name      string
	AppliedAt string
}

// applied lists the rows of schema_migrations, read through the read pool.
func applied(t *testing.T, db *sqlitex.DB) []appliedRow {
	t.Helper()
	rows, err := db.R.QueryContext(t.Context(), `SELECT version, name, applied_at FROM schema_migrations ORDER BY rowid`)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	var out []appliedRow
	for rows.Next() {
		var r appliedRow
		if err := rows.Scan(&r.Version, &r.Name, &r.AppliedAt); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func versions(rows []appliedRow) []int {
	var out []int
	for _, r := range rows {
		out = append(out, r.Version)
	}
	return out
}

// hasObject reports whether the schema holds a table or index called name.
func hasObject(t *testing.T, db *sqlitex.DB, name string) bool {
	t.Helper()
	var n int
	if err := db.R.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM sqlite_master WHERE name = ?`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func count(t *testing.T, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, table string) int {
	t.Helper()
	var n int
	if err := q.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func pragma(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var v string
	if err := db.QueryRowContext(t.Context(), `PRAGMA `+name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func TestOpenPragmas(t *testing.T) {
	t.Parallel()
	path := tempFile(t)
	db := open(t, path, m1, m2, m3)
	if db.Path != path {
		t.Errorf("Path = %q, want %q", db.Path, path)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Open did not create the file: %v", err)
	}
	busy := fmt.Sprint(sqlitex.BusyTimeout.Milliseconds())
	for _, c := range []struct {
		pool *sql.DB
		name string
		want map[string]string
	}{
		{db.R, "R", map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": busy, "synchronous": "1", "query_only": "1", "mmap_size": "0"}},
		{db.W, "W", map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": busy, "synchronous": "1", "query_only": "0", "mmap_size": "0"}},
	} {
		for name, want := range c.want {
			if got := pragma(t, c.pool, name); got != want {
				t.Errorf("PRAGMA %s through %s = %q, want %q", name, c.name, got, want)
			}
		}
	}

	err := db.Write(t.Context(), func(tx *sqlitex.Tx) error {
		_, err := tx.ExecContext(t.Context(), `INSERT INTO people (id, name) VALUES (1, 'a')`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("no write-ahead log beside the file after a write: %v", err)
	}
	// Foreign keys are enforced.
	err = db.Write(t.Context(), func(tx *sqlitex.Tx) error {
		_, err := tx.ExecContext(t.Context(), `INSERT INTO pets (id, owner) VALUES (1, 42)`)
		return err
	})
	if err == nil {
		t.Error("a pet with no owner was inserted: foreign keys are off")
	}

	if err := db.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v, want nil (Close is documented as safe to repeat)", err)
	}
}

// TestOpenOptionsByPool: a file opened to be mapped is mapped by its
// readers, not by the writer; one opened with its temporary files in
// memory has its writer keep them so (2, MEMORY), its readers as by
// default.
func TestOpenOptionsByPool(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		opt          sqlitex.Option
		pragma       string
		wantR, wantW string
	}{
		{sqlitex.WithMmapSize(1 << 30), "mmap_size", "1073741824", "0"},
		{sqlitex.WithMemoryTemp(), "temp_store", "0", "2"},
		{sqlitex.WithBackgroundCheckpoints(), "wal_autocheckpoint", "1000", "16384"},
	} {
		db, err := sqlitex.Open(t.Context(), tempFile(t), []sqlitex.Migration{m1}, c.opt)
		if err != nil {
			t.Fatal(err)
		}
		if got := pragma(t, db.R, c.pragma); got != c.wantR {
			t.Errorf("PRAGMA %s through R = %s, want %s", c.pragma, got, c.wantR)
		}
		if got := pragma(t, db.W, c.pragma); got != c.wantW {
			t.Errorf("PRAGMA %s through W = %s, want %s", c.pragma, got, c.wantW)
		}
		db.Close()
	}
}

func TestMigrationsApplyOnceInOrder(t *testing.T) {
	t.Parallel()
	path := tempFile(t)
	ctx := t.Context()

	db, err := sqlitex.Open(ctx, path, []sqlitex.Migration{m1, m2})
	if err != nil {
		t.Fatal(err)
	}
	first := applied(t, db)
	if got := versions(first); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("applied versions %v, want [1 2] in that order", got)
	}
	for i, m := range []sqlitex.Migration{m1, m2} {
		if first[i].Name != m.Name {
			t.Errorf("migration %d recorded as %q, want %q", m.Version, first[i].Name, m.Name)
		}
		if at, err := time.Parse(time.RFC3339, first[i].AppliedAt); err != nil || time.Since(at) > time.Hour || time.Until(at) > time.Minute {
			t.Errorf("migration %d applied_at %q: not a recent RFC 3339 time (%v)", m.Version, first[i].AppliedAt, err)
		}
	}
	if v, err := sqlitex.SchemaVersion(ctx, db.R); err != nil || v != 2 {
		t.Errorf("SchemaVersion = %d, %v; want 2", v, err)
	}
	// m2 ran after m1: the column it adds exists.
	if err := db.Write(ctx, func(tx *sqlitex.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO people (name, email) VALUES ('a', 'a@example.com')`)
		return err
	}); err != nil {
		t.Fatalf("insert using both migrations' columns: %v", err)
	}
	// Migrate again on the open file: nothing to do. (m1 would fail if re-run:
	// its CREATE TABLE has no IF NOT EXISTS.)
	if err := sqlitex.Migrate(ctx, db.W, []sqlitex.Migration{m1, m2}); err != nil {
		t.Fatalf("Migrate with nothing new: %v", err)
	}
	db.Close()

	// Re-opening applies nothing new and keeps the data.
	db = open(t, path, m1, m2)
	if got := applied(t, db); !slices.Equal(got, first) {
		t.Errorf("re-open changed schema_migrations:\n got %v\nwant %v", got, first)
	}
	if n := count(t, db.R, "people"); n != 1 {
		t.Errorf("people = %d after re-open, want 1", n)
	}
	db.Close()

	// Adding a migration applies only it.
	db = open(t, path, m1, m2, m3)
	got := applied(t, db)
	if !slices.Equal(versions(got), []int{1, 2, 3}) || !slices.Equal(got[:2], first) || got[2].Name != m3.Name {
		t.Errorf("after adding migration 3, schema_migrations = %v, want the first two untouched and 003_pets.sql", got)
	}
	if !hasObject(t, db, "pets") || !hasObject(t, db, "pets_owner") {
		t.Error("migration 3's two statements did not both apply")
	}
	if v, err := sqlitex.SchemaVersion(ctx, db.W); err != nil || v != 3 {
		t.Errorf("SchemaVersion = %d, %v; want 3", v, err)
	}
}

func TestMigrationsOutOfOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ms   []sqlitex.Migration
	}{
		{"reversed", []sqlitex.Migration{m2, m1}},
		{"unsorted tail", []sqlitex.Migration{m1, m3, m2}},
		{"duplicate version", []sqlitex.Migration{m1, {Version: 1, Name: "001_again.sql", SQL: `CREATE TABLE again (x)`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := tempFile(t)
			db, err := sqlitex.Open(t.Context(), path, tc.ms)
			if err == nil {
				db.Close()
				t.Fatal("Open with migrations out of order succeeded")
			}
			if !strings.Contains(err.Error(), "out of order") {
				t.Errorf("error %q does not say the migrations are out of order", err)
			}
			// Nothing was applied.
			db = open(t, path)
			if hasObject(t, db, "people") || hasObject(t, db, "again") {
				t.Error("a migration ran although the list was out of order")
			}
		})
	}
}

func TestNewerSchema(t *testing.T) {
	t.Parallel()
	path := tempFile(t)
	db := open(t, path, m1, m2, m3)
	db.Close()

	db, err := sqlitex.Open(t.Context(), path, []sqlitex.Migration{m1, m2})
	if err == nil {
		db.Close()
		t.Fatal("an older program opened a file of a newer schema")
	}
	if !errors.Is(err, sqlitex.ErrNewerSchema) {
		t.Errorf("err = %v, want errors.Is(err, ErrNewerSchema)", err)
	}
	if db != nil {
		t.Error("Open returned a DB with its error")
	}
	// The file is untouched and the right program still opens it.
	db = open(t, path, m1, m2, m3)
	if got := versions(applied(t, db)); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("schema_migrations after the refused open: %v, want [1 2 3]", got)
	}
}

func TestFailingMigrationRollsBack(t *testing.T) {
	t.Parallel()
	// The first statement of bad succeeds, the second fails: neither may stay.
	bad := sqlitex.Migration{Version: 2, Name: "002_bad.sql", SQL: `
		CREATE TABLE tags (id INTEGER PRIMARY KEY);
		INSERT INTO no_such_table VALUES (1);`}

	t.Run("on a file at version 1", func(t *testing.T) {
		t.Parallel()
		path := tempFile(t)
		db := open(t, path, m1)
		db.Close()

		db, err := sqlitex.Open(t.Context(), path, []sqlitex.Migration{m1, bad, m3})
		if err == nil {
			db.Close()
			t.Fatal("Open with a failing migration succeeded")
		}
		if !strings.Contains(err.Error(), bad.Name) {
			t.Errorf("error %q does not name the failing migration %s", err, bad.Name)
		}
		db = open(t, path)
		if got := versions(applied(t, db)); !slices.Equal(got, []int{1}) {
			t.Errorf("schema_migrations = %v, want [1]: the failed migration must not be recorded", got)
		}
		if hasObject(t, db, "tags") {
			t.Error("table tags exists: the failed migration's first statement was not rolled back")
		}
		if hasObject(t, db, "pets") {
			t.Error("migration 3 ran after migration 2 failed")
		}
		db.Close()

		// Once fixed, the migration applies.
		good := sqlitex.Migration{Version: 2, Name: "002_tags.sql", SQL: `CREATE TABLE tags (id INTEGER PRIMARY KEY)`}
		db = open(t, path, m1, good, m3)
		if got := versions(applied(t, db)); !slices.Equal(got, []int{1, 2, 3}) {
			t.Errorf("after the fix, schema_migrations = %v, want [1 2 3]", got)
		}
	})
	t.Run("on a new file", func(t *testing.T) {
		t.Parallel()
		path := tempFile(t)
		bad1 := bad
		bad1.Version, bad1.Name = 1, "001_bad.sql"
		db, err := sqlitex.Open(t.Context(), path, []sqlitex.Migration{bad1, m2})
		if err == nil {
			db.Close()
			t.Fatal("Open with a failing first migration succeeded")
		}
		db = open(t, path)
		if v, err := sqlitex.SchemaVersion(t.Context(), db.R); err != nil || v != 0 {
			t.Errorf("SchemaVersion = %d, %v; want 0", v, err)
		}
		if hasObject(t, db, "tags") {
			t.Error("table tags exists: the failed migration was not rolled back")
		}
	})
}

var errBoom = errors.New("boom")

func TestWrite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := open(t, tempFile(t), m1)

	err := db.Write(ctx, func(tx *sqlitex.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO people (name) VALUES ('rolled back')`); err != nil {
			return err
		}
		if n := count(t, tx, "people"); n != 1 {
			t.Errorf("inside the transaction people = %d, want 1", n)
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("Write returned %v, want fn's error", err)
	}
	if n := count(t, db.W, "people"); n != 0 {
		t.Errorf("people = %d through W after a failed Write, want 0: not rolled back", n)
	}
	if n := count(t, db.R, "people"); n != 0 {
		t.Errorf("people = %d through R after a failed Write, want 0", n)
	}

	if err := db.Write(ctx, func(tx *sqlitex.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO people (name) VALUES ('kept')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	err = db.Read(ctx, func(tx *sqlitex.Tx) error {
		var name string
		if err := tx.QueryRowContext(ctx, `SELECT name FROM people`).Scan(&name); err != nil {
			return err
		}
		if name != "kept" {
			t.Errorf("read %q, want the committed row", name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The single writer connection is free again after both outcomes.
	if err := db.Write(ctx, func(*sqlitex.Tx) error { return nil }); err != nil {
		t.Errorf("empty Write: %v", err)
	}
}

func TestReadPoolIsReadOnly(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := open(t, tempFile(t), m1)

	if _, err := db.R.ExecContext(ctx, `INSERT INTO people (name) VALUES ('x')`); err == nil {
		t.Error("an INSERT through R succeeded")
	}
	if _, err := db.R.ExecContext(ctx, `CREATE TABLE sneaky (x)`); err == nil {
		t.Error("a CREATE TABLE through R succeeded")
	}
	err := db.Read(ctx, func(tx *sqlitex.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO people (name) VALUES ('y')`)
		return err
	})
	if err == nil {
		t.Error("an INSERT inside Read succeeded")
	}
	if n := count(t, db.W, "people"); n != 0 || hasObject(t, db, "sneaky") {
		t.Errorf("writes through the read pool landed: people = %d", n)
	}
}

// Readers see the last commit while a write transaction is open (WAL), and
// are not blocked by it.
func TestReadersDuringWrite(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := open(t, tempFile(t), m1)

	err := db.Write(ctx, func(tx *sqlitex.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO people (name) VALUES ('pending')`); err != nil {
			return err
		}
		readCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var n int
		if err := db.R.QueryRowContext(readCtx, `SELECT COUNT(*) FROM people`).Scan(&n); err != nil {
			return fmt.Errorf("read during a write: %w", err)
		}
		if n != 0 {
			t.Errorf("a reader saw %d uncommitted rows", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, db.R, "people"); n != 1 {
		t.Errorf("people = %d after the commit, want 1", n)
	}
}

// Writes from many goroutines are serialised by the one writer connection:
// none meets SQLITE_BUSY and none is lost.
func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := open(t, tempFile(t), m1)
	const goroutines, writes = 8, 25
	errs := make(chan error, goroutines*writes)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range writes {
				errs <- db.Write(ctx, func(tx *sqlitex.Tx) error {
					var n int
					if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM people`).Scan(&n); err != nil {
						return err
					}
					_, err := tx.ExecContext(ctx, `INSERT INTO people (id, name) VALUES (?, ?)`, n+1, fmt.Sprintf("g%d-%d", g, i))
					return err
				})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Write: %v", err)
		}
	}
	if n := count(t, db.R, "people"); n != goroutines*writes {
		t.Errorf("people = %d, want %d", n, goroutines*writes)
	}
}

// Two processes (here: two DBs over one file, which SQLite locks the same
// way) may open a file at once, e.g. an app's sync loop and the CLI on one
// replica, or two server instances started together after an upgrade. Each
// must either apply a pending migration or see it applied, and wait for the
// other's lock for up to BusyTimeout rather than fail.
func TestOpenConcurrently(t *testing.T) {
	t.Parallel()
	const rounds, opens = 10, 4
	for _, tc := range []struct {
		name     string
		existing []sqlitex.Migration // what the file holds before the opens
	}{
		{"new file", nil},
		{"upgrade", []sqlitex.Migration{m1}},
		{"up to date", []sqlitex.Migration{m1, m2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var failures []error
			for range rounds {
				path := tempFile(t)
				if tc.existing != nil {
					db := open(t, path, tc.existing...)
					db.Close()
				}
				errs := make([]error, opens)
				var wg sync.WaitGroup
				for i := range opens {
					wg.Go(func() {
						db, err := sqlitex.Open(t.Context(), path, []sqlitex.Migration{m1, m2})
						if err == nil {
							err = db.Close()
						}
						errs[i] = err
					})
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						failures = append(failures, err)
					}
				}
				db := open(t, path)
				if got := versions(applied(t, db)); !slices.Equal(got, []int{1, 2}) {
					t.Errorf("schema_migrations = %v after concurrent opens, want [1 2]", got)
				}
				db.Close()
			}
			if len(failures) > 0 {
				// Group the failures by message, without the file's path.
				kinds := map[string]int{}
				for _, err := range failures {
					msg := err.Error()
					if i := strings.Index(msg, ".db: "); i >= 0 {
						msg = msg[i+len(".db: "):]
					}
					kinds[msg]++
				}
				t.Errorf("BUG: %d of %d concurrent Opens of one file (%s) failed: %v\n"+
					"Migrate reads the current version outside the transaction that applies a migration, so two openers both apply it "+
					"(\"already exists\", \"duplicate column\"); and switching a new file to WAL can return SQLITE_BUSY at once, without waiting BusyTimeout.",
					len(failures), rounds*opens, tc.name, kinds)
			}
		})
	}
}

// A file name is a name, not a URI: characters that mean something in a
// URI ('#', '?', '%') must not change which file is opened. Today Open
// builds "file:" + path + "?pragmas", so "li#2.db" opens "li" and
// "a%20b.db" opens "a b.db": two replicas can silently share one file.
func TestOpenPathWithURICharacters(t *testing.T) {
	t.Parallel()
	// One directory per case, under a parent whose own name holds none of
	// these characters (t.TempDir keeps '#' and '%' from a subtest's name).
	root := t.TempDir()
	for i, name := range []string{"space in name.db", "li#2.db", "what?.db", "a%20b.db", "100%.db", "网格.db"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(root, fmt.Sprint(i))
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, name)
			db, err := sqlitex.Open(t.Context(), path, []sqlitex.Migration{m1})
			if err != nil {
				t.Fatalf("BUG: Open(%q): %v", name, err)
			}
			err = db.Write(t.Context(), func(tx *sqlitex.Tx) error {
				_, err := tx.ExecContext(t.Context(), `INSERT INTO people (name) VALUES ('x')`)
				return err
			})
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var files []string
			for _, e := range entries {
				files = append(files, e.Name())
			}
			if _, err := os.Stat(path); err != nil || !slices.Contains(files, name) {
				t.Errorf("BUG: Open(%q) wrote to another file: the directory holds %q", name, files)
			}
		})
	}
}

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"migrations/010_pets.sql":       {Data: []byte(m3.SQL)},
		"migrations/001_people.sql":     {Data: []byte(m1.SQL)},
		"migrations/002_email.sql":      {Data: []byte(m2.SQL)},
		"migrations/README.md":          {Data: []byte("not a migration")},
		"migrations/sub/004_nested.sql": {Data: []byte("nested: not read")},
		"other/003_elsewhere.sql":       {Data: []byte("another directory")},
	}
	ms, err := sqlitex.LoadMigrations(fsys, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	want := []sqlitex.Migration{
		{Version: 1, Name: "001_people.sql", SQL: m1.SQL},
		{Version: 2, Name: "002_email.sql", SQL: m2.SQL},
		{Version: 10, Name: "010_pets.sql", SQL: m3.SQL},
	}
	if !slices.Equal(ms, want) {
		t.Errorf("LoadMigrations =\n%+v\nwant\n%+v", ms, want)
	}
	// What it loads, Open applies.
	db := open(t, tempFile(t), ms...)
	if got := versions(applied(t, db)); !slices.Equal(got, []int{1, 2, 10}) {
		t.Errorf("applied %v, want [1 2 10]", got)
	}

	for _, bad := range []string{"people.sql", "abc_people.sql", "0_zero.sql", "-1_negative.sql", "_people.sql", "1.5_people.sql"} {
		t.Run("bad name "+bad, func(t *testing.T) {
			_, err := sqlitex.LoadMigrations(fstest.MapFS{
				"m/001_people.sql": {Data: []byte(m1.SQL)},
				"m/" + bad:         {Data: []byte("SELECT 1")},
			}, "m")
			if err == nil || !strings.Contains(err.Error(), bad) {
				t.Errorf("LoadMigrations with %q: err = %v, want an error naming the file", bad, err)
			}
		})
	}
	t.Run("duplicate version", func(t *testing.T) {
		_, err := sqlitex.LoadMigrations(fstest.MapFS{
			"m/001_people.sql": {Data: []byte(m1.SQL)},
			"m/1_persons.sql":  {Data: []byte(m1.SQL)},
			"m/002_email.sql":  {Data: []byte(m2.SQL)},
		}, "m")
		if err == nil || !strings.Contains(err.Error(), "share version 1") ||
			!strings.Contains(err.Error(), "001_people.sql") || !strings.Contains(err.Error(), "1_persons.sql") {
			t.Errorf("err = %v, want both files named as sharing version 1", err)
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		_, err := sqlitex.LoadMigrations(fsys, "nope")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("empty directory", func(t *testing.T) {
		ms, err := sqlitex.LoadMigrations(fstest.MapFS{"m/README.md": {}}, "m")
		if err != nil || len(ms) != 0 {
			t.Errorf("LoadMigrations = %v, %v; want none", ms, err)
		}
	})
}

func TestInPlaceholders(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{-1: "", 0: "", 1: "?", 2: "?, ?", 5: "?, ?, ?, ?, ?"} {
		if got := sqlitex.InPlaceholders(n); got != want {
			t.Errorf("InPlaceholders(%d) = %q, want %q", n, got, want)
		}
	}
	// And SQLite takes them.
	ctx := t.Context()
	db := open(t, tempFile(t), m1)
	if err := db.Write(ctx, func(tx *sqlitex.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO people (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ids := []any{1, 3, 4}
	var n int
	if err := db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM people WHERE id IN (`+sqlitex.InPlaceholders(len(ids))+`)`, ids...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("IN (%s) matched %d rows, want 3", sqlitex.InPlaceholders(len(ids)), n)
	}
}

// BenchmarkSmallWrites is what a phone recording visits does: many short
// write transactions, each running the same few statements.
//
//	go test ./internal/sqlitex -run XXX -bench SmallWrites
func BenchmarkSmallWrites(b *testing.B) {
	ctx := context.Background()
	db, err := sqlitex.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), []sqlitex.Migration{{Version: 1, Name: "001_t.sql",
		SQL: `CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT NOT NULL, b INTEGER NOT NULL); CREATE TABLE log (n INTEGER)`}})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	i := 0
	for b.Loop() {
		i++
		err := db.Write(ctx, func(tx *sqlitex.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM t WHERE id = ? AND a <> ?`, i-1, "x").Scan(&n); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO t (id, a, b) VALUES (?, ?, ?)`, i, "visit notes", i%7); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO log (n) VALUES (?)`, n)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
