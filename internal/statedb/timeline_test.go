package statedb_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	se "github.com/doorbook/doorbook/syncengine"
)

// TestTimelineWith: a timeline that takes the households changed since it
// was read, as a fresh read of them holds them, answers as one read
// whole: a household whose last plain visit was voided since is left out,
// not kept as it was, and one moved out of the scope leaves too. So for
// both reads of the visits: every visit before the window's end, and the
// window's visits through the visitors' index (special links kept).
func TestTimelineWith(t *testing.T) {
	for _, special := range []bool{false, true} {
		t.Run(fmt.Sprint("special links ", special), func(t *testing.T) { timelineWith(t, special) })
	}
}

func timelineWith(t *testing.T, special bool) {
	ctx := context.Background()
	db := openState(t)
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 28)
	exec := func(query string, args ...any) {
		t.Helper()
		err := db.Write(ctx, func(tx *sqlitex.Tx) error {
			_, err := tx.ExecContext(ctx, query, args...)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	visit := func(id, household, visitor string, at time.Time) {
		t.Helper()
		v := se.Visit{ID: id, HouseholdIDs: []string{household}, VisitorID: visitor, VisitedAt: at, Form: se.VisitForm(1), Clock: se.Clock{HLC: 1, Node: 1}}
		err := db.Write(ctx, func(tx *sqlitex.Tx) error { _, err := statedb.InsertLinkedVisit(ctx, tx, &v); return err })
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []string{"h0", "h1", "h2"} {
		exec(`INSERT INTO households (id, grid_id, clocks) VALUES (?, 'g0', x'')`, h)
	}
	visit("v6", "h0", "w0", from.AddDate(0, 0, -10))
	visit("v0", "h0", "w0", from.AddDate(0, 0, -3))
	visit("v1", "h0", "w0", from.AddDate(0, 0, 2))
	visit("v2", "h0", "w1", from.AddDate(0, 0, 9))
	visit("v3", "h1", "w0", from.AddDate(0, 0, 5))
	visit("v4", "h2", "w1", from.AddDate(0, 0, 12))
	untils := []time.Time{from, from.AddDate(0, 0, 7), from.AddDate(0, 0, 14), to}
	series := func(tl *fieldwork.Timeline) map[[3]any]fieldwork.VisitAggregate {
		t.Helper()
		out := map[[3]any]fieldwork.VisitAggregate{}
		err := tl.PlainVisitsSeries(ctx, from, to, untils, func(i int, a *fieldwork.VisitAggregate) error {
			out[[3]any{i, a.HouseholdID, a.VisitorID}] = *a
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	read := func(g *statedb.GridRows) *fieldwork.Timeline {
		t.Helper()
		if special {
			g = g.WithSpecialLinks()
		}
		tl, err := fieldwork.ReadTimeline(ctx, g, from, to, func(grid string) bool { return grid == "g0" })
		if err != nil {
			t.Fatal(err)
		}
		return tl
	}
	kept := read(statedb.FieldRows(db.R, []string{"g0"}))
	if got := series(kept); len(got) != 11 {
		// h0: w0 at every moment (before the window at the first), w1 at
		// the last two; h1 from the second on, h2 from the third.
		t.Fatalf("the series holds %d sums, want 11: %v", len(got), got)
	}
	// h1's only plain visit voided, h2 moved out of the grid, h0 visited
	// again.
	exec(`INSERT INTO visit_amendments (id, visit_id, author_id, kind, reason, hlc, node) VALUES ('a0', 'v3', 'w0', 2, '误录', 2, 1)`)
	exec(`UPDATE households SET grid_id = 'g1' WHERE id = 'h2'`)
	visit("v5", "h0", "w1", from.AddDate(0, 0, 1))
	changed := []string{"h0", "h1", "h2"}
	fresh := read(statedb.FieldRowsOf(db.R, changed))
	followed, err := kept.With(fresh, changed)
	if err != nil {
		t.Fatal(err)
	}
	whole := read(statedb.FieldRows(db.R, []string{"g0"}))
	if got, want := series(followed), series(whole); !maps.Equal(got, want) {
		t.Fatalf("the timeline followed: %v\nread whole: %v", got, want)
	}
	if followed.Len() != 1 {
		t.Fatalf("the timeline followed holds %d households, want h0 alone", followed.Len())
	}
}
