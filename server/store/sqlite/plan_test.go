package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
)

// TestReportPlans: the report's queries that must not read every visit of
// a street, and the feed's, keep to their indexes. SQLite plans without
// statistics here, as on a server's file, so an empty database shows the
// plan a street's gets; a plan that scans a table reads all of it (a
// count(DISTINCT) walking every visit in id order took 390 ms of a
// street's report).
func TestReportPlans(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, c := range []struct {
		name, query string
		args        []any
		uses        []string
		// walks is an index the query walks whole by design.
		walks string
	}{
		{"the last commit before a time", positionBefore, []any{1}, []string{"SEARCH commits USING COVERING INDEX commits_at (at<?)", "commits_at (at=?)"}, ""},
		{"placed visits by grid", placedByGrid, []any{1, 2, `["g"]`}, []string{"visits_placed"}, ""},
		{"placed visits in all", placedTotal, []any{1, 2, `["g"]`}, []string{"visits_placed"}, ""},
		{"visits by workers, a kept window", visitsBySums, []any{1, 2, `["w"]`, `["g"]`, `["w"]`}, []string{"visit_sums_visitor", "visits_special_visitor"}, ""},
		{"visits by workers, any window", visitsByRaw, []any{1, 2, `["w"]`, `["g"]`, `["w"]`}, []string{"visits_visitor"}, ""},
		{"households with items", trackedHouseholds, []any{`["g"]`}, []string{"visits_special"}, "SCAN v USING COVERING INDEX visits_special"},
		{"households per worker", sumsPerVisitor, []any{`["w"]`, 1, 2}, []string{"COVERING INDEX visit_sums_visitor"}, ""},
		{"whether an erasure came after a pull's cursor", erasuresAfter, []any{1}, []string{"COVERING INDEX erasures_last_seq (last_seq>?)"}, ""},
		{"the feed walked", feedQuery(2, true), []any{1, 2, "o", "g1", "g2", 10}, []string{"SEARCH f USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)", "SEARCH h USING INDEX sqlite_autoindex_households_1 (id=?)"}, ""},
		{"the feed sought by grid", feedQuery(2, false), []any{"g1", "g2", 1, 2, "o", "g1", "g2", 10}, []string{"SEARCH f USING INDEX feed_grid (grid_id=? AND rowid>? AND rowid<?)", "SEARCH h USING INDEX sqlite_autoindex_households_1 (id=?)"}, ""},
		{"a move into a scope after a cursor", movedIntoQuery(2), []any{1, "g1", "g2"}, []string{"SEARCH household_moves USING INTEGER PRIMARY KEY (rowid>?)"}, ""},
	} {
		var plan []string
		err := s.db.Read(ctx, func(tx *sqlitex.Tx) error {
			rows, err := tx.QueryContext(ctx, "EXPLAIN QUERY PLAN "+c.query, c.args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					return err
				}
				plan = append(plan, detail)
			}
			return rows.Err()
		})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		whole := strings.Join(plan, "\n")
		for _, step := range plan {
			// The amended visits are found from every amendment's visit
			// (a, from visit_amendments' index): amendments are few.
			if strings.HasPrefix(step, "SCAN ") && !strings.Contains(step, "json_each") && step != "SCAN a" && step != "SCAN CONSTANT ROW" &&
				step != "SCAN visit_amendments USING COVERING INDEX visit_amendments_visit" && step != c.walks {
				t.Errorf("%s: the plan scans a table (%s):\n%s", c.name, step, whole)
			}
		}
		if strings.Contains(whole, "(grid_id=? AND id=?)") {
			t.Errorf("%s: the plan probes the grids' index once per grid for each row:\n%s", c.name, whole)
		}
		if strings.Contains(whole, "AUTOMATIC") {
			t.Errorf("%s: the plan builds an index of its own:\n%s", c.name, whole)
		}
		for _, index := range c.uses {
			if !strings.Contains(whole, index) {
				t.Errorf("%s: the plan does not use %s:\n%s", c.name, index, whole)
			}
		}
	}
}

// planQuerier runs each query it is given after recording its plan.
type planQuerier struct {
	*sqlitex.Tx
	plans []string
}

func (q *planQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	rows, err := q.Tx.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		return nil, err
	}
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			rows.Close()
			return nil, err
		}
		plan = append(plan, detail)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	q.plans = append(q.plans, strings.Join(plan, "\n"))
	return q.Tx.QueryContext(ctx, query, args...)
}

// TestHouseholdRowPlan: a report reads a street's households and counts
// their persons from two indexes alone, not from a row of each (240 →
// 140 ms at 50,000 households).
func TestHouseholdRowPlan(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.db.Read(ctx, func(tx *sqlitex.Tx) error {
		q := &planQuerier{Tx: tx}
		if err := statedb.FieldRows(q, []string{"g1", "g2"}).Households(ctx, func(*fieldwork.HouseholdRow) error { return nil }); err != nil {
			return err
		}
		whole := strings.Join(q.plans, "\n")
		for _, want := range []string{"SEARCH h USING COVERING INDEX households_grid_live", "SEARCH p USING COVERING INDEX persons_household_live"} {
			if !strings.Contains(whole, want) {
				t.Errorf("the households' plans do not %s:\n%s", strings.ToLower(want), whole)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
