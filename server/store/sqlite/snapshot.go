package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/server/store"
)

// WriteSnapshot writes the rows of grids to a new file beside the database
// (on the disk sized for the data, not a small temporary one). SQLite
// copies the rows from this database into the file (INSERT … SELECT across
// an ATTACH), so no row passes through Go; the phone then copies the file's
// tables into its own the same way.
func (s *Store) WriteSnapshot(ctx context.Context, grids, campaigns []string) (path string, households int, release func(), err error) {
	f, err := os.CreateTemp(filepath.Dir(s.db.Path), filepath.Base(s.db.Path)+snapshotInfix+"*")
	if err != nil {
		return "", 0, nil, err
	}
	path = f.Name()
	// Held until released: another server process opening this database
	// leaves the file alone while this one sends it.
	if err := holdShared(f); err != nil {
		f.Close()
		removeSnapshot(path)
		return "", 0, nil, err
	}
	release = func() {
		removeSnapshot(path)
		f.Close()
	}
	if households, err = s.writeSnapshot(ctx, path, grids, campaigns); err != nil {
		release()
		return "", 0, nil, err
	}
	return path, households, release, nil
}

var _ store.Snapshotter = (*Store)(nil)

// writeSnapshot fills the file at path with the rows of grids, the
// campaigns and the sums of their windows, and leaves it whole in one file
// (no write-ahead log beside it).
func (s *Store) writeSnapshot(ctx context.Context, path string, grids, campaigns []string) (households int, err error) {
	db, err := sqlitex.Open(ctx, path, statedb.SnapshotMigrations())
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	conn, err := db.W.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	// Read-only: the copy must never hold a lock that keeps the server's
	// own writer waiting.
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS src`, sqlitex.ReadOnlyURI(s.db.Path)); err != nil {
		return 0, fmt.Errorf("attach: %w", err)
	}
	// Detached on every path, so the connection goes back to the pool clean.
	defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE src`)
	// A file nobody else has open until it is whole needs no journal: the
	// rows go straight to it, not through a log and then again into it.
	for _, pragma := range []string{`PRAGMA main.journal_mode = OFF`, `PRAGMA main.synchronous = OFF`} {
		if _, err := conn.ExecContext(ctx, pragma); err != nil {
			return 0, err
		}
	}
	// One transaction: a single read of the server's file, and one commit.
	// A deferred BEGIN: IMMEDIATE would take the write lock of every
	// attached file, the server's too, and stall its pushes for the whole
	// copy.
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		return 0, err
	}
	committed := false
	defer func() {
		if !committed {
			conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
		}
	}()
	inGrids := "(" + sqlitex.InPlaceholders(len(grids)) + ")"
	if len(grids) == 0 {
		inGrids = "(NULL)"
	}
	// Which rows of each table: those LoadBundle would send for the
	// scope's households, each table filled from the ones before it. Rows
	// go in key order, so that SQLite appends to each table's b-tree.
	where := map[string]string{
		"households":       `grid_id IN ` + inGrids + ` ORDER BY id`,
		"persons":          `household_id IN (SELECT id FROM main.households) ORDER BY id`,
		"tag_elements":     `household_id IN (SELECT id FROM main.households) ORDER BY add_id`,
		"visit_households": `visit_id IN (SELECT visit_id FROM src.visit_households WHERE household_id IN (SELECT id FROM main.households)) ORDER BY household_id, visit_id`,
		"visits":           `id IN (SELECT visit_id FROM main.visit_households) ORDER BY id`,
		"visit_amendments": `visit_id IN (SELECT id FROM main.visits) ORDER BY id`,
	}
	for _, table := range statedb.ReplicatedTables() {
		cols, err := columns(ctx, conn, table)
		if err != nil {
			return 0, err
		}
		var args []any
		if table == "households" {
			args = anys(grids)
		}
		q := `INSERT INTO main.` + table + ` (` + cols + `) SELECT ` + cols + ` FROM src.` + table + ` WHERE ` + where[table]
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			return 0, fmt.Errorf("copy %s: %w", table, err)
		}
	}
	if len(campaigns) > 0 {
		cols, err := columns(ctx, conn, "campaigns")
		if err != nil {
			return 0, err
		}
		q := `INSERT INTO main.campaigns (` + cols + `) SELECT ` + cols + ` FROM src.campaigns WHERE id IN (` + sqlitex.InPlaceholders(len(campaigns)) + `) ORDER BY id`
		if _, err := conn.ExecContext(ctx, q, anys(campaigns)...); err != nil {
			return 0, fmt.Errorf("copy campaigns: %w", err)
		}
	}
	if err := statedb.CopySums(ctx, conn, "src"); err != nil {
		return 0, err
	}
	if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM main.households`).Scan(&households); err != nil {
		return 0, err
	}
	if s.snapshotCopied != nil {
		s.snapshotCopied()
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		return 0, err
	}
	committed = true
	return households, nil
}

// columns lists a table's columns as the snapshot file has them.
func columns(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, table string) (string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name FROM pragma_table_info(?, 'main') ORDER BY cid`, table)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return "", err
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	if len(names) == 0 {
		return "", fmt.Errorf("table %s has no columns", table)
	}
	return strings.Join(names, ", "), nil
}

// snapshotInfix names snapshot files: DB.snapshot-RANDOM beside DB.
const snapshotInfix = ".snapshot-"

// removeSnapshots removes the snapshots a server that died while sending
// them left beside its database, and only those: another process serving
// the same file holds a lock on each of its own until it is sent.
func removeSnapshots(dbPath string) {
	dir := filepath.Dir(dbPath)
	entries, _ := os.ReadDir(dir)
	prefix := filepath.Base(dbPath) + snapshotInfix
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || strings.HasSuffix(name, "-wal") || strings.HasSuffix(name, "-shm") || strings.HasSuffix(name, "-journal") {
			continue
		}
		if path := filepath.Join(dir, name); unused(path) {
			removeSnapshot(path)
		}
	}
}

// removeSnapshot removes a snapshot file and anything SQLite left beside it.
func removeSnapshot(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		os.Remove(path + suffix)
	}
}
