package statedb

import (
	"context"
	"fmt"
	"strings"

	"github.com/doorbook/doorbook/syncengine"
)

// Visit sums. A due list or a report reads, per household and visitor, the
// newest of their plain visits and how many fall in the campaign's window
// (fieldwork.Rows.PlainVisits). Summing them per call reads every visit of
// the scope; visit_sums keeps the sums instead, so that a call reads a row
// per household and visitor. A visit stored is summed by the code that
// stores it (InsertVisit, the only code that inserts a visit's row or its
// links, InBulk aside); every other write (an amendment, an erasure, a
// deletion, a row updated in place) has triggers sum its households again
// in the statement that makes it, whichever code makes it. One invariant
// holds after every write, which the tests hold over randomised histories:
// visit_sums is what sumsSelect computes from the raw rows.
//
// A visit's own sums were kept by triggers too until SchemaV8: a trigger
// makes SQLite keep a statement journal for the insert that fires it, and
// the two, with their reads of the row just written, were a quarter of
// what storing a visit cost the server.
//
// A sum is kept over all time and over each campaign window in
// visit_sum_windows: the distinct windows of the undeleted campaigns, kept
// by SyncWindows whenever a campaign is written. A window asked for that is
// not kept (a campaign the database does not hold) is summed from the raw
// rows, as before there were sums.

// The all-time window, in SQL and in Go (a test keeps them equal). One less
// than the smallest int64, because SQLite reads the smallest as a real.
const (
	allTimeSQL  = `-9223372036854775807 AS win_from, 9223372036854775807 AS win_to`
	allTimeFrom = -9223372036854775807
	allTimeTo   = 9223372036854775807
)

// plainVisit is the SQL of fieldwork.Rows' plain visit, of v.
const plainVisit = `v.revisit_due = 0 AND v.tracked = 0 AND NOT (v.details != '')
	AND NOT EXISTS (SELECT 1 FROM visit_amendments a WHERE a.visit_id = v.id)`

// sumsSelect computes visit_sums' rows from the raw rows, for the windows
// windows selects (win_from, win_to) and the household links filter
// accepts (SQL of vh).
func sumsSelect(windows, filter string) string {
	return sumsHead + windows + sumsMid + " AND " + filter + sumsTail
}

// The parts of sumsSelect: SchemaV3 builds the first sums with them too.
const (
	sumsHead = `SELECT vh.household_id, w.win_from, w.win_to, v.visitor_id, MAX(v.visited_at), COUNT(*) FROM (`
	sumsMid  = `) w JOIN visit_households vh JOIN visits v ON v.id = vh.visit_id
		AND v.visited_at >= w.win_from AND v.visited_at < w.win_to
	WHERE ` + plainVisit
	sumsTail = `
	GROUP BY vh.household_id, w.win_from, w.win_to, v.visitor_id`
)

// everyWindow selects the all-time window and the kept ones.
const everyWindow = `SELECT ` + allTimeSQL + ` UNION ALL SELECT win_from, win_to FROM visit_sum_windows`

// campaignWindows selects the windows to keep: those of the undeleted
// campaigns, a window being [starts_at, ends_at).
const campaignWindows = `SELECT DISTINCT starts_at, ends_at FROM campaigns WHERE deleted = 0 AND ends_at > starts_at`

// resumOf computes again the sums of the households the SQL set selects.
func resumOf(set string) string {
	return `DELETE FROM visit_sums WHERE household_id IN (` + set + `);
	INSERT INTO visit_sums ` + sumsSelect(everyWindow, "vh.household_id IN ("+set+")") + `;`
}

// upsertSum adds a visit to its sums.
const upsertSum = ` ON CONFLICT DO UPDATE SET last = max(last, excluded.last), n = n + 1;`

// sumInsertTriggers were SchemaV3's: they summed a visit as its row and a
// link to a household were both in, whichever came first. SchemaV8 drops
// them, and InsertVisit sums a visit it stores (sumLink).
var sumInsertTriggers = `
CREATE TRIGGER visit_households_sum AFTER INSERT ON visit_households BEGIN
	INSERT INTO visit_sums (household_id, win_from, win_to, visitor_id, last, n)
	SELECT NEW.household_id, w.win_from, w.win_to, v.visitor_id, v.visited_at, 1
	FROM visits v JOIN (` + everyWindow + `) w ON v.visited_at >= w.win_from AND v.visited_at < w.win_to
	WHERE v.id = NEW.visit_id AND ` + plainVisit + upsertSum + `
END;
CREATE TRIGGER visits_sum AFTER INSERT ON visits
WHEN NEW.revisit_due = 0 AND NEW.tracked = 0 AND NEW.details = ''
	AND NOT EXISTS (SELECT 1 FROM visit_amendments a WHERE a.visit_id = NEW.id) BEGIN
	INSERT INTO visit_sums (household_id, win_from, win_to, visitor_id, last, n)
	SELECT vh.household_id, w.win_from, w.win_to, NEW.visitor_id, NEW.visited_at, 1
	FROM visit_households vh JOIN (` + everyWindow + `) w ON NEW.visited_at >= w.win_from AND NEW.visited_at < w.win_to
	WHERE vh.visit_id = NEW.id` + upsertSum + `
END;
`

// SchemaV8 drops the triggers that summed a visit as it was inserted:
// InsertVisit sums it instead, without the statement journal a trigger
// costs its insert.
const SchemaV8 = `
DROP TRIGGER visit_households_sum;
DROP TRIGGER visits_sum;
`

// SumPlainVisit is the statement that adds a plain visit just stored (with
// visit_id ?4, visitor ?2, visited at ?3 in Unix milliseconds) to the sums
// of its household ?1, unless it is amended. The benchmarks' floor runs it
// too, as what a replica's schema makes a visit cost.
const SumPlainVisit = `INSERT INTO visit_sums (household_id, win_from, win_to, visitor_id, last, n)
	SELECT ?1, w.win_from, w.win_to, ?2, ?3, 1 FROM (` + everyWindow + `) w WHERE ?3 >= w.win_from AND ?3 < w.win_to
		AND NOT EXISTS (SELECT 1 FROM visit_amendments a WHERE a.visit_id = ?4)` + upsertSum

// sumLink adds the visit v, just stored, to the sums of household hh, its
// i-th, as the triggers before SchemaV8 did: a plain visit to its sums, and
// in a database that keeps special links (linked), a special one, or one
// amended before it came, to those.
func sumLink(ctx context.Context, q Querier, v *syncengine.Visit, hh string, i int, special, linked bool) error {
	if !special {
		at := v.VisitedAt.UnixMilli()
		res, err := q.ExecContext(ctx, SumPlainVisit, hh, v.VisitorID, at, v.ID)
		if err != nil {
			return fmt.Errorf("sum: %w", err)
		}
		// The all-time window holds every visit: none summed means the
		// visit is amended, so special after all.
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sum: %w", err)
		} else if n > 0 || !linked {
			return nil
		}
	} else if !linked {
		return nil
	}
	if _, err := q.ExecContext(ctx, `INSERT OR REPLACE INTO visit_special_links (household_id, visit_id, ord) VALUES (?, ?, ?)`, hh, v.ID, i); err != nil {
		return fmt.Errorf("special link: %w", err)
	}
	return nil
}

// sumTriggers keep visit_sums through every write but a visit stored: the
// first amendment of a visit, and any deletion or update, has the
// households it touches summed again.
var sumTriggers = `
CREATE TRIGGER visit_amendments_sum AFTER INSERT ON visit_amendments
WHEN NOT EXISTS (SELECT 1 FROM visit_amendments a WHERE a.visit_id = NEW.visit_id AND a.id != NEW.id) BEGIN
	` + resumOfVisit("NEW.visit_id") + `
END;
CREATE TRIGGER visit_amendments_unsum AFTER DELETE ON visit_amendments
WHEN NOT EXISTS (SELECT 1 FROM visit_amendments a WHERE a.visit_id = OLD.visit_id) BEGIN
	` + resumOfVisit("OLD.visit_id") + `
END;
CREATE TRIGGER visits_unsum AFTER DELETE ON visits BEGIN
	` + resumOfVisit("OLD.id") + `
END;
CREATE TRIGGER visits_resum AFTER UPDATE OF id, visitor_id, visited_at, revisit_due, tracked, details ON visits BEGIN
	` + resumOfVisit("OLD.id") + `
	` + resumOfVisit("NEW.id") + `
END;
CREATE TRIGGER visit_households_unsum AFTER DELETE ON visit_households BEGIN
	DELETE FROM visit_sums WHERE household_id = OLD.household_id;
	INSERT INTO visit_sums ` + sumsHead + everyWindow + sumsMid + ` AND vh.household_id = OLD.household_id` + sumsTail + `;
END;
CREATE TRIGGER visit_households_resum AFTER UPDATE ON visit_households BEGIN
	` + resumOfPair + `
END;
CREATE TRIGGER visit_amendments_resum AFTER UPDATE OF visit_id ON visit_amendments BEGIN
	` + resumOfVisit("OLD.visit_id") + `
	` + resumOfVisit("NEW.visit_id") + `
END;
`

// sumTriggerNames are the triggers sumTriggers creates.
var sumTriggerNames = []string{"visit_amendments_sum", "visit_amendments_unsum",
	"visits_unsum", "visits_resum", "visit_households_unsum", "visit_households_resum", "visit_amendments_resum"}

// InBulk runs fn, which writes or deletes many replicated rows at once (a
// snapshot's tables copied into a new replica, a replica emptied for a
// reset or a wipe), with the sums' triggers set aside, then sums every
// household from its rows and puts the triggers back: one pass over the
// rows rather than a trigger per row (a deleted visit has its household
// summed again, so deleting a household's visits one by one is
// quadratic). q must be a transaction, so that no other write runs
// without the triggers, and a phone's: InBulk sums again, but writes no
// special links for the visits fn brings in.
func InBulk(ctx context.Context, q Querier, fn func() error) error {
	for _, name := range sumTriggerNames {
		if _, err := q.ExecContext(ctx, `DROP TRIGGER `+name); err != nil {
			return fmt.Errorf("bulk write: %w", err)
		}
	}
	if err := fn(); err != nil {
		return err
	}
	for _, stmt := range []string{`DELETE FROM visit_sums`, `INSERT INTO visit_sums ` + sumsSelect(everyWindow, "1"), sumTriggers} {
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("bulk write: %w", err)
		}
	}
	return nil
}

// resumOfVisit sums again the households of the visit with the given id.
func resumOfVisit(id string) string {
	return resumOf(`SELECT household_id FROM visit_households WHERE visit_id = ` + id)
}

// resumOfPair sums again the households a link moved between.
var resumOfPair = resumOf(`SELECT OLD.household_id UNION SELECT NEW.household_id`)

// SchemaV3 adds the visit sums, built from the rows a database already
// holds, and trades the index that let due lists read every visit cheaply
// (visits_scan, written for every visit) for one that covers the few
// special visits whole.
var SchemaV3 = schemaV3Indexes + schemaV3Sums

// schemaV3Indexes is what a snapshot file takes of SchemaV3: its tables
// then carry the replica's indexes, so that SQLite copies each whole into
// a new replica.
const schemaV3Indexes = `
DROP INDEX visits_scan;
DROP INDEX visits_special;
CREATE INDEX visits_special ON visits(id, visitor_id, visited_at, form, hlc, node, revisit_due, tracked, details)
	WHERE revisit_due != 0 OR tracked != 0 OR details != '';
-- The visit register's order, walked a page at a time.
DROP INDEX visits_visitor;
CREATE INDEX visits_visitor ON visits(visitor_id, visited_at, id);
-- A visit's households in order, without reading the links' table.
DROP INDEX visit_households_visit;
CREATE INDEX visit_households_visit ON visit_households(visit_id, ord);
`

var schemaV3Sums = schemaV3SumTables + `
INSERT INTO visit_sum_windows ` + campaignWindows + `;
INSERT INTO visit_sums ` + sumsHead + everyWindow + sumsMid + sumsTail + `;
` + schemaV3Triggers

// schemaV3Triggers are the sums' triggers as SchemaV3 made them.
var schemaV3Triggers = sumInsertTriggers + sumTriggers

// schemaV3SumTables is what a snapshot file takes of SchemaV3's sums: the
// tables, which its writer fills (CopySums), without the triggers.
const schemaV3SumTables = `
-- Plain visits summed per household and visitor (see statedb's sums.go):
-- over all time, and over each window of visit_sum_windows.
CREATE TABLE visit_sums (
	household_id TEXT NOT NULL,
	win_from     INTEGER NOT NULL,
	win_to       INTEGER NOT NULL,
	visitor_id   TEXT NOT NULL,
	last         INTEGER NOT NULL,
	n            INTEGER NOT NULL,
	PRIMARY KEY (household_id, win_from, win_to, visitor_id)
) WITHOUT ROWID;
CREATE TABLE visit_sum_windows (
	win_from INTEGER NOT NULL,
	win_to   INTEGER NOT NULL,
	PRIMARY KEY (win_from, win_to)
) WITHOUT ROWID;
`

// CopySums fills the empty sums of a snapshot file, the main schema of q,
// from those of the database attached as schema from, whose rows the file
// took in the same read of from: the windows of the file's campaigns and
// the sums of its households. Copying keeps a new replica from summing
// every visit of its scope again; the sums of a household are the same
// wherever its rows are, since all of its visits come with it. A household
// outside the file that a group visit links to has only that visit there,
// so its sums are made from the file's rows.
func CopySums(ctx context.Context, q Querier, from string) error {
	stmts := []string{
		`INSERT INTO main.visit_sum_windows (win_from, win_to)
		SELECT w.win_from, w.win_to FROM ` + from + `.visit_sum_windows w
		WHERE (w.win_from, w.win_to) IN (` + strings.Replace(campaignWindows, "FROM campaigns", "FROM main.campaigns", 1) + `)
		ORDER BY w.win_from, w.win_to`,
		`INSERT INTO main.visit_sums (household_id, win_from, win_to, visitor_id, last, n)
		SELECT s.household_id, s.win_from, s.win_to, s.visitor_id, s.last, s.n
		FROM main.households h JOIN ` + from + `.visit_sums s ON s.household_id = h.id
		WHERE (s.win_from = ?1 AND s.win_to = ?2)
			OR (s.win_from, s.win_to) IN (SELECT win_from, win_to FROM main.visit_sum_windows)
		ORDER BY s.household_id, s.win_from, s.win_to, s.visitor_id`,
		`INSERT INTO main.visit_sums ` + sumsSelect(everyWindow,
			`vh.household_id IN (SELECT household_id FROM main.visit_households EXCEPT SELECT id FROM main.households)`),
	}
	for i, stmt := range stmts {
		var args []any
		if i == 1 {
			args = []any{int64(allTimeFrom), int64(allTimeTo)}
		}
		if _, err := q.ExecContext(ctx, stmt, args...); err != nil {
			return fmt.Errorf("copy sums: %w", err)
		}
	}
	return nil
}

// SyncWindows keeps visit_sum_windows the windows of the undeleted
// campaigns (PutCampaign calls it; so does a write of the campaigns table
// that bypasses it): it sums the visits of a window new there (reading every visit
// once, as a campaign is created or moved) and drops the sums of a window
// no campaign has any more.
func SyncWindows(ctx context.Context, q Querier) error {
	type window struct{ from, to int64 }
	read := func(query string) (map[window]bool, error) {
		rows, err := q.QueryContext(ctx, query)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := map[window]bool{}
		for rows.Next() {
			var w window
			if err := rows.Scan(&w.from, &w.to); err != nil {
				return nil, err
			}
			out[w] = true
		}
		return out, rows.Err()
	}
	want, err := read(campaignWindows)
	if err != nil {
		return fmt.Errorf("campaign windows: %w", err)
	}
	have, err := read(`SELECT win_from, win_to FROM visit_sum_windows`)
	if err != nil {
		return fmt.Errorf("campaign windows: %w", err)
	}
	for w := range have {
		if want[w] {
			continue
		}
		for _, stmt := range []string{`DELETE FROM visit_sum_windows WHERE win_from = ?1 AND win_to = ?2`,
			`DELETE FROM visit_sums WHERE win_from = ?1 AND win_to = ?2`} {
			if _, err := q.ExecContext(ctx, stmt, w.from, w.to); err != nil {
				return fmt.Errorf("drop window: %w", err)
			}
		}
	}
	for w := range want {
		if have[w] {
			continue
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO visit_sum_windows (win_from, win_to) VALUES (?, ?)`, w.from, w.to); err != nil {
			return fmt.Errorf("add window: %w", err)
		}
		_, err := q.ExecContext(ctx, `INSERT INTO visit_sums `+sumsSelect(`SELECT ?1 AS win_from, ?2 AS win_to`, "1"), w.from, w.to)
		if err != nil {
			return fmt.Errorf("add window: %w", err)
		}
	}
	return nil
}

// CheckSums reports how visit_sums and visit_sum_windows differ from a
// recomputation from the rows and the campaigns (nil when they do not): a
// check for tests and for diagnosing a replica.
func CheckSums(ctx context.Context, q Querier) error {
	const kept = `SELECT household_id, win_from, win_to, visitor_id, last, n FROM visit_sums`
	const windows = `SELECT win_from, win_to FROM visit_sum_windows`
	var extra, missing, extraWindows, missingWindows int
	err := q.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM (`+kept+` EXCEPT `+sumsSelect(everyWindow, "1")+`)),
		(SELECT count(*) FROM (`+sumsSelect(everyWindow, "1")+` EXCEPT `+kept+`)),
		(SELECT count(*) FROM (`+windows+` EXCEPT `+campaignWindows+`)),
		(SELECT count(*) FROM (`+campaignWindows+` EXCEPT `+windows+`))`).Scan(&extra, &missing, &extraWindows, &missingWindows)
	if err != nil {
		return fmt.Errorf("check sums: %w", err)
	}
	if extra+missing+extraWindows+missingWindows > 0 {
		return fmt.Errorf("check sums: %d sums held that the rows do not give, %d missing; %d windows kept that no campaign has, %d missing",
			extra, missing, extraWindows, missingWindows)
	}
	return nil
}

// WindowKept tells whether visit_sums keeps the window [from, to) (Unix
// milliseconds): whether a campaign of the database has it.
func WindowKept(ctx context.Context, q Querier, from, to int64) (bool, error) {
	var kept bool
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM visit_sum_windows WHERE win_from = ? AND win_to = ?)`, from, to).Scan(&kept)
	return kept, err
}
