package statedb_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/fieldwork/fieldworktest"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/syncengine"
)

// TestFieldRows holds FieldRows over the replicated tables to the contract
// of fieldwork.Rows: with the suite's campaign window summed (a campaign
// of that window stored), and without (summed from the visits per call);
// and FieldRowsOf, given the households of the grids.
func TestFieldRows(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name              string
		summed, of, links bool
		// pages reads the households two at a time (fieldwork.Pages).
		pages bool
		// special reads the special links (WithSpecialLinks).
		special bool
	}{{"Summed", true, false, false, false, false}, {"Unsummed", false, false, false, false, false}, {"OfHouseholds", true, true, false, false, false},
		{"WalkingLinks", true, false, true, false, false}, {"Pages", true, true, false, true, false},
		{"SpecialLinks", true, false, false, false, true}, {"SpecialLinksOfHouseholds", false, true, false, false, true}} {
		summed := c.summed
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			fieldworktest.Run(t, func(t *testing.T, b *syncengine.Bundle, grids []string) fieldwork.Rows {
				t.Helper()
				ctx := t.Context()
				db := openState(t)
				err := db.Write(ctx, func(tx *sqlitex.Tx) error {
					if summed {
						c := fieldworktest.Campaign()
						if _, _, err := statedb.MergeCampaign(ctx, tx, &c, 0); err != nil {
							return err
						}
					}
					return statedb.ApplyLinkedBundle(ctx, tx, b)
				})
				if err != nil {
					t.Fatalf("store: %v", err)
				}
				if c.of {
					var ids []string
					for _, h := range b.Households {
						if slices.Contains(grids, h.GridID.Value) {
							ids = append(ids, h.ID)
						}
					}
					if c.special {
						return statedb.FieldRowsOf(db.R, ids).WithSpecialLinks()
					}
					if !c.pages {
						return statedb.FieldRowsOf(db.R, ids)
					}
					var pages []fieldwork.Rows
					for page := range slices.Chunk(ids, 2) {
						pages = append(pages, statedb.FieldRowsOf(db.R, page))
					}
					return fieldwork.Pages(pages...)
				}
				if c.links {
					return statedb.FieldRowsWalkingLinks(db.R, grids)
				}
				if c.special {
					return statedb.FieldRows(db.R, grids).WithSpecialLinks()
				}
				return statedb.FieldRows(db.R, grids)
			})
		})
	}
}

// openState opens a database of the replicated tables alone, with the
// special links a server keeps.
func openState(t testing.TB) *sqlitex.DB {
	t.Helper()
	return openStateOf(t, statedb.SpecialLinks+statedb.SpecialLinksV2)
}

// openPhoneState opens a database of the replicated tables without the
// special links, as a phone's.
func openPhoneState(t testing.TB) *sqlitex.DB {
	t.Helper()
	return openStateOf(t, "SELECT 1")
}

// openStateOf opens a database of the replicated tables, with links
// (SQL) for the special links or without them.
func openStateOf(t testing.TB, links string) *sqlitex.DB {
	t.Helper()
	db, err := sqlitex.Open(t.Context(), filepath.Join(t.TempDir(), "state.db"), []sqlitex.Migration{
		{Version: 1, Name: "001_state.sql", SQL: statedb.SchemaV1},
		{Version: 2, Name: "002_state.sql", SQL: statedb.SchemaV2},
		{Version: 3, Name: "003_state.sql", SQL: statedb.SchemaV3},
		{Version: 4, Name: "004_state.sql", SQL: statedb.SchemaV4},
		{Version: 5, Name: "005_state.sql", SQL: statedb.SchemaV5},
		{Version: 6, Name: "006_state.sql", SQL: statedb.SchemaV6},
		{Version: 7, Name: "007_state.sql", SQL: statedb.SchemaV7},
		{Version: 8, Name: "008_special_links.sql", SQL: links},
		{Version: 9, Name: "009_by_insert.sql", SQL: statedb.SchemaV8},
	})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestAmendmentsPlan: the scope's amendments are found from each
// amendment's visit and households by id, or from the scope's households
// and their links. A plan that walks the scope's households for each
// amendment costs a street's report seconds once its items have been
// updated a few hundred times.
func TestAmendmentsPlan(t *testing.T) {
	t.Parallel()
	db := openState(t)
	for name, rows := range map[string]*statedb.GridRows{
		"grids":      statedb.FieldRows(db.R, []string{"g1", "g2", "g3"}),
		"households": statedb.FieldRowsOf(db.R, []string{"h1", "h2"}),
	} {
		for _, walkLinks := range []bool{false, true} {
			query, args := rows.AmendmentsQuery(walkLinks)
			whole := explain(t, db, query, args)
			want := []string{"SEARCH vh USING COVERING INDEX visit_households_visit (visit_id=?)", "SEARCH h USING INDEX sqlite_autoindex_households_1 (id=?)"}
			if walkLinks {
				want = []string{"SEARCH vh USING PRIMARY KEY (household_id=?)", "SEARCH a USING INDEX visit_amendments_visit (visit_id=?)"}
			}
			for _, w := range want {
				if !strings.Contains(whole, w) {
					t.Errorf("%s, walking the links %v: the plan lacks %q:\n%s", name, walkLinks, w, whole)
				}
			}
			if strings.Contains(whole, "SCAN h") || strings.Contains(whole, "AUTOMATIC") || !walkLinks && strings.Contains(whole, "households_grid") {
				t.Errorf("%s, walking the links %v: the plan walks households it need not:\n%s", name, walkLinks, whole)
			}
		}
	}
}

// TestSpecialVisitsPlan: walking a scope's links (a page of an export, a
// street among many), the amended visits are found from each link by the
// amendments' index, and only they are looked up in the visits' table:
// not every visit of the page, with an index of every amendment built
// for the query.
func TestSpecialVisitsPlan(t *testing.T) {
	t.Parallel()
	db := openState(t)
	for name, rows := range map[string]*statedb.GridRows{
		"grids":      statedb.FieldRows(db.R, []string{"g1", "g2", "g3"}),
		"households": statedb.FieldRowsOf(db.R, []string{"h1", "h2"}),
	} {
		query, args := rows.SpecialVisitsQuery(true)
		whole := explain(t, db, query, args)
		for _, w := range []string{"SEARCH v USING COVERING INDEX visits_special (id=?)", "SEARCH a USING COVERING INDEX visit_amendments_visit (visit_id=?)"} {
			if !strings.Contains(whole, w) {
				t.Errorf("%s: the plan lacks %q:\n%s", name, w, whole)
			}
		}
		if strings.Contains(whole, "AUTOMATIC") || strings.Contains(whole, "SCAN ") {
			t.Errorf("%s: the plan scans, or builds an index of its own:\n%s", name, whole)
		}
		// The amended visits' table comes after the amendments.
		if a, v := strings.Index(whole, "SEARCH a "), strings.LastIndex(whole, "SEARCH v USING INDEX sqlite_autoindex_visits_1"); a < 0 || v < a {
			t.Errorf("%s: the plan looks up visits before their amendments:\n%s", name, whole)
		}
	}
}

// TestSpecialLinksPlan: from the special links, a scope's special and
// amended visits and their amendments cost a seek per household and a
// row per such visit: no walk of every special visit of the database, no
// visit looked up that is not special.
func TestSpecialLinksPlan(t *testing.T) {
	t.Parallel()
	db := openState(t)
	for name, rows := range map[string]*statedb.GridRows{
		"grids":      statedb.FieldRows(db.R, []string{"g1", "g2", "g3"}).WithSpecialLinks(),
		"households": statedb.FieldRowsOf(db.R, []string{"h1", "h2"}).WithSpecialLinks(),
	} {
		visits, vargs := rows.SpecialLinksQuery()
		amendments, aargs := rows.AmendmentsQuery(true)
		for what, q := range map[string]struct {
			query string
			args  []any
			want  []string
		}{
			"visits":     {visits, vargs, []string{"SEARCH s USING PRIMARY KEY (household_id=?)", "SEARCH v USING INDEX sqlite_autoindex_visits_1 (id=?)"}},
			"amendments": {amendments, aargs, []string{"SEARCH vh USING PRIMARY KEY (household_id=?)", "visit_special_links", "SEARCH a USING INDEX visit_amendments_visit (visit_id=?)"}},
		} {
			whole := explain(t, db, q.query, q.args) + "\n" + q.query
			for _, w := range q.want {
				if !strings.Contains(whole, w) {
					t.Errorf("%s, %s: the plan lacks %q:\n%s", name, what, w, whole)
				}
			}
			if strings.Contains(whole, "AUTOMATIC") || strings.Contains(whole, "SCAN ") || strings.Contains(whole, "visits_special") {
				t.Errorf("%s, %s: the plan walks what it need not:\n%s", name, what, whole)
			}
		}
	}
}

// TestVisitTimesPlan: the window's visits by visitor come from the
// visitors' index and the links' index by visit, one seek a visit into the
// special links, and the newest first with no sort.
func TestVisitTimesPlan(t *testing.T) {
	t.Parallel()
	db := openState(t)
	for name, query := range statedb.VisitTimesQueries {
		args := []any{`["w1","w2"]`, int64(0)}
		if name == "before" {
			args[0] = "w1"
		}
		plan := explain(t, db, query, args)
		for _, w := range []string{"SEARCH v USING COVERING INDEX visits_visitor", "SEARCH vh USING COVERING INDEX visit_households_visit (visit_id=?)",
			"SEARCH s USING PRIMARY KEY (household_id=? AND visit_id=?)"} {
			if !strings.Contains(plan, w) {
				t.Errorf("%s: the plan lacks %q:\n%s", name, w, plan)
			}
		}
		if strings.Contains(plan, "TEMP B-TREE") || strings.Contains(plan, "SCAN v") || strings.Contains(plan, "SCAN vh") {
			t.Errorf("%s: the plan sorts or walks what it need not:\n%s", name, plan)
		}
	}
}

// explain is the plan SQLite takes for query, a step a line.
func explain(t *testing.T, db *sqlitex.DB, query string, args []any) string {
	t.Helper()
	plan, err := db.R.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for plan.Next() {
		var id, parent, unused int
		var detail string
		if err := plan.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, detail)
	}
	if err := errors.Join(plan.Err(), plan.Close()); err != nil {
		t.Fatal(err)
	}
	return strings.Join(steps, "\n")
}

// TestRowsWrittenInPlace: a household or person written again is updated
// where it is, not deleted and inserted anew with all its index entries
// (which INSERT OR REPLACE does, and shows in a new rowid).
func TestRowsWrittenInPlace(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openPhoneState(t)
	c := syncengine.Clock{HLC: 1, Node: 1}
	h := syncengine.Household{ID: "h1", GridID: syncengine.NewRegister("g1", c), Notes: syncengine.NewRegister("first", c)}
	p := syncengine.Person{ID: "p1", HouseholdID: "h1", Name: syncengine.NewRegister("李四", c)}
	rowids := func() (hr, pr int64) {
		t.Helper()
		if err := db.R.QueryRowContext(ctx, `SELECT (SELECT rowid FROM households WHERE id = 'h1'), (SELECT rowid FROM persons WHERE id = 'p1')`).Scan(&hr, &pr); err != nil {
			t.Fatal(err)
		}
		return hr, pr
	}
	write := func() {
		t.Helper()
		err := db.Write(ctx, func(tx *sqlitex.Tx) error {
			return errors.Join(statedb.PutHousehold(ctx, tx, &h), statedb.PutPerson(ctx, tx, &p))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	write()
	hr, pr := rowids()
	h.Notes = syncengine.NewRegister("second", syncengine.Clock{HLC: 2, Node: 1})
	p.Name = syncengine.NewRegister("王五", syncengine.Clock{HLC: 2, Node: 1})
	write()
	if hr2, pr2 := rowids(); hr2 != hr || pr2 != pr {
		t.Errorf("rowids after a second write: household %d → %d, person %d → %d; want them kept", hr, hr2, pr, pr2)
	}
	err := db.Read(ctx, func(tx *sqlitex.Tx) error {
		got, ok, err := statedb.GetHousehold(ctx, tx, "h1")
		if err != nil || !ok || got.Notes.Value != "second" || got.Notes.Clock != h.Notes.Clock {
			t.Errorf("household after a second write: %+v, %v, %v; want its new notes", got.Notes, ok, err)
		}
		gp, ok, err := statedb.GetPerson(ctx, tx, "p1")
		if err != nil || !ok || gp.Name.Value != "王五" {
			t.Errorf("person after a second write: %+v, %v, %v; want the new name", gp.Name, ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPutHousehold measures writing households again, 20 a
// transaction, into a phone's database of 5,000.
//
//	go test ./internal/statedb -run XXX -bench PutHousehold -benchtime 300x
func BenchmarkPutHousehold(b *testing.B) {
	ctx := context.Background()
	db := openPhoneState(b)
	c := syncengine.Clock{HLC: 1, Node: 1}
	hs := make([]syncengine.Household, 5000)
	err := db.Write(ctx, func(tx *sqlitex.Tx) error {
		for i := range hs {
			hs[i] = syncengine.Household{ID: fmt.Sprintf("0190f3a2-7b1c-7cde-8f00-%012d", (i*7919)%100000), GridID: syncengine.NewRegister(fmt.Sprintf("g%d", i%10), c),
				HeadName: syncengine.NewRegister("张三", c), Address: syncengine.NewRegister("某某路100号5栋3单元201室", c)}
			if err := statedb.PutHousehold(ctx, tx, &hs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for b.Loop() {
		err := db.Write(ctx, func(tx *sqlitex.Tx) error {
			for range 20 {
				n++
				h := hs[(n*37)%len(hs)]
				h.Notes = syncengine.NewRegister(fmt.Sprintf("round %d", n), syncengine.Clock{HLC: uint64(n + 1), Node: 2})
				if err := statedb.PutHousehold(ctx, tx, &h); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*20), "µs/household")
}
