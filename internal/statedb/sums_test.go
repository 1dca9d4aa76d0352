package statedb_test

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	se "github.com/doorbook/doorbook/syncengine"
)

var (
	sumSeeds = flag.Int("statedb.sum-seeds", 40, "random histories TestSumsFollowRows runs")
	sumSteps = flag.Int("statedb.sum-steps", 60, "writes per history of TestSumsFollowRows")
)

// TestSumsFollowRows holds the visit sums to their invariant over random
// histories: after every write (plain, detailed, revisit and tracked
// visits, group visits, visits stored again, amendments before and after
// their visit, corrections and voids, replaced and deleted visits and
// amendments, households leaving and coming back, campaigns created, moved
// and deleted), visit_sums is what a recomputation in Go from the raw rows
// gives, and visit_sum_windows the windows of the undeleted campaigns.
//
// A server's database (linked) keeps the special links too, which must
// follow the same writes; a phone's, without them, writes visits and
// bundles through the functions of its own.
func TestSumsFollowRows(t *testing.T) {
	t.Parallel()
	for seed := range *sumSeeds {
		linked := seed%2 == 0
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			h := newHistory(t, uint64(seed), linked)
			for step := range *sumSteps {
				what := h.step()
				if t.Failed() {
					t.Fatalf("step %d (%s) failed", step, what)
				}
				if diff := h.check(); diff != "" {
					t.Fatalf("seed %d, after step %d (%s): %s", seed, step, what, diff)
				}
			}
		})
	}
}

// history writes random rows through statedb into one database.
type history struct {
	t      *testing.T
	db     *sqlitex.DB
	linked bool // the database keeps special links (a server's)
	rng    *rand.Rand
	n      int
	visits []se.Visit // every visit written (some since deleted)
	amends []se.Amendment
	camps  []se.Campaign
}

var (
	sumHouseholds = []string{"h0", "h1", "h2", "h3", "h4", "h5"}
	sumVisitors   = []string{"w0", "w1", "w2"}
	sumGrids      = []string{"g0", "g1"}
	sumEpoch      = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
)

func newHistory(t *testing.T, seed uint64, linked bool) *history {
	h := &history{t: t, db: openPhoneState(t), linked: linked, rng: rand.New(rand.NewPCG(seed, 1))}
	if linked {
		h.db = openState(t)
	}
	// The households, in two grids, for the reads of a scope's rows.
	h.write(func(tx *sqlitex.Tx) error {
		for i, id := range sumHouseholds {
			if _, err := tx.ExecContext(context.Background(), `INSERT INTO households (id, grid_id, clocks) VALUES (?, ?, x'')`, id, sumGrids[i%2]); err != nil {
				return err
			}
		}
		return nil
	})
	return h
}

func (h *history) id(kind string) string { h.n++; return fmt.Sprintf("%s%04d", kind, h.n) }

func (h *history) clock() se.Clock { return se.Clock{HLC: uint64(h.n + 1), Node: 1} }

// at is a time in a 90-day span, sometimes on a window's edge.
func (h *history) at() time.Time {
	if h.rng.IntN(4) == 0 && len(h.camps) > 0 {
		c := h.camps[h.rng.IntN(len(h.camps))]
		edge := []int64{c.StartsAt.Value, c.EndsAt.Value, c.EndsAt.Value - 1}[h.rng.IntN(3)]
		return time.UnixMilli(edge).UTC()
	}
	return sumEpoch.Add(time.Duration(h.rng.Int64N(int64(90 * 24 * time.Hour)))).Truncate(time.Millisecond)
}

// insert stores v as the history's database would.
func (h *history) insert(tx *sqlitex.Tx, v *se.Visit) error {
	if h.linked {
		_, err := statedb.InsertLinkedVisit(context.Background(), tx, v)
		return err
	}
	_, err := statedb.InsertVisit(context.Background(), tx, v)
	return err
}

func (h *history) write(fn func(tx *sqlitex.Tx) error) {
	h.t.Helper()
	if err := h.db.Write(context.Background(), fn); err != nil {
		h.t.Fatal(err)
	}
}

// step makes one random write and says what it was.
func (h *history) step() string {
	ctx := context.Background()
	r := h.rng
	switch k := r.IntN(116); {
	case k < 40: // a new visit
		v := se.Visit{ID: h.id("v"), VisitorID: sumVisitors[r.IntN(len(sumVisitors))], VisitedAt: h.at(),
			Form: se.VisitForm(1), Clock: h.clock()}
		perm := r.Perm(len(sumHouseholds))
		for _, i := range perm[:1+r.IntN(3)*r.IntN(2)] {
			v.HouseholdIDs = append(v.HouseholdIDs, sumHouseholds[i])
		}
		switch r.IntN(6) {
		case 0:
			v.Materials = []se.Material{se.MaterialOpenLetter}
		case 1:
			v.RevisitReasons, v.RevisitDue = []se.RevisitReason{se.RevisitUnstableMood}, v.VisitedAt.AddDate(0, 0, 7)
		case 2:
			v.Findings = []se.Finding{{Kind: se.FindingHazard, Note: "堆物"}}
		}
		h.visits = append(h.visits, v)
		h.write(func(tx *sqlitex.Tx) error { return h.insert(tx, &v) })
		return "visit " + v.ID
	case k < 48: // a visit stored again, as a retried push or a pull would
		if len(h.visits) == 0 {
			return "nothing"
		}
		v := h.visits[r.IntN(len(h.visits))]
		h.write(func(tx *sqlitex.Tx) error { return h.insert(tx, &v) })
		return "visit again " + v.ID
	case k < 62: // an amendment, sometimes of a visit not stored yet
		if len(h.visits) == 0 {
			return "nothing"
		}
		v := h.visits[r.IntN(len(h.visits))]
		a := se.Amendment{ID: h.id("a"), VisitID: v.ID, AuthorID: v.VisitorID, Kind: se.AmendCorrect, Reason: "r", Clock: h.clock()}
		switch r.IntN(3) {
		case 0:
			a.Kind = se.AmendVoid
		case 1:
			a.VisitedAt = h.at()
		}
		if r.IntN(5) == 0 {
			// Of a visit yet to come.
			future := se.Visit{ID: h.id("v"), VisitorID: v.VisitorID, VisitedAt: h.at(), Form: se.VisitForm(1),
				HouseholdIDs: []string{sumHouseholds[r.IntN(len(sumHouseholds))]}, Clock: h.clock()}
			h.visits = append(h.visits, future)
			a.VisitID = future.ID
		}
		h.amends = append(h.amends, a)
		h.write(func(tx *sqlitex.Tx) error { _, err := statedb.InsertAmendment(ctx, tx, &a); return err })
		return "amend " + a.VisitID
	case k < 68: // a visit replaced (an erasure)
		if len(h.visits) == 0 {
			return "nothing"
		}
		i := r.IntN(len(h.visits))
		v := h.visits[i]
		v.Notes, v.Materials = "", nil
		h.visits[i] = v
		h.write(func(tx *sqlitex.Tx) error {
			if h.linked {
				return statedb.ReplaceLinkedVisit(ctx, tx, &v)
			}
			return statedb.ReplaceVisit(ctx, tx, &v)
		})
		return "replace " + v.ID
	case k < 72: // visits deleted
		if len(h.visits) == 0 {
			return "nothing"
		}
		ids := []string{h.visits[r.IntN(len(h.visits))].ID, h.visits[r.IntN(len(h.visits))].ID}
		h.write(func(tx *sqlitex.Tx) error { return statedb.DeleteVisits(ctx, tx, ids) })
		return fmt.Sprint("delete visits ", ids)
	case k < 78: // amendments replaced or deleted
		if len(h.amends) == 0 {
			return "nothing"
		}
		a := h.amends[r.IntN(len(h.amends))]
		if r.IntN(2) == 0 {
			h.write(func(tx *sqlitex.Tx) error { return statedb.ReplaceAmendment(ctx, tx, &a) })
			return "replace amendment " + a.ID
		}
		h.write(func(tx *sqlitex.Tx) error { return statedb.DeleteAmendments(ctx, tx, []string{a.ID, "a-none"}) })
		return "delete amendment " + a.ID
	case k < 84: // households leave the replica
		ids := []string{sumHouseholds[r.IntN(len(sumHouseholds))], sumHouseholds[r.IntN(len(sumHouseholds))]}
		h.write(func(tx *sqlitex.Tx) error { return statedb.DeleteHouseholds(ctx, tx, ids) })
		return fmt.Sprint("delete households ", ids)
	case k < 90: // a household comes back with its visits, as a pull brings it
		hh := sumHouseholds[r.IntN(len(sumHouseholds))]
		b := se.Bundle{Households: []se.Household{{ID: hh, GridID: se.NewRegister("g", h.clock())}}}
		for _, v := range h.visits {
			if slices.Contains(v.HouseholdIDs, hh) {
				b.Visits = append(b.Visits, v)
			}
		}
		for _, a := range h.amends {
			if slices.ContainsFunc(b.Visits, func(v se.Visit) bool { return v.ID == a.VisitID }) {
				b.Amendments = append(b.Amendments, a)
			}
		}
		h.write(func(tx *sqlitex.Tx) error {
			if h.linked {
				return statedb.ApplyLinkedBundle(ctx, tx, &b)
			}
			return statedb.ApplyBundle(ctx, tx, &b)
		})
		return "household back " + hh
	case k < 105: // a visit whose links come before it, as a snapshot copies them (on a phone)
		v := se.Visit{ID: h.id("v"), VisitorID: sumVisitors[r.IntN(len(sumVisitors))], VisitedAt: h.at(),
			Form: se.VisitForm(1), Clock: h.clock(), HouseholdIDs: []string{sumHouseholds[r.IntN(len(sumHouseholds))]}}
		if r.IntN(3) == 0 {
			v.HouseholdIDs = append(v.HouseholdIDs, sumHouseholds[r.IntN(len(sumHouseholds))])
			v.HouseholdIDs = slices.Compact(v.HouseholdIDs)
		}
		h.visits = append(h.visits, v)
		if h.linked {
			h.write(func(tx *sqlitex.Tx) error { return h.insert(tx, &v) })
			return "visit " + v.ID
		}
		h.write(func(tx *sqlitex.Tx) error {
			return statedb.InBulk(ctx, tx, func() error {
				return rawVisit(ctx, tx, &v)
			})
		})
		return "visit, links first " + v.ID
	case k < 109: // a visit's row updated in place
		if len(h.visits) == 0 {
			return "nothing"
		}
		i := r.IntN(len(h.visits))
		h.visits[i].VisitedAt = h.at()
		v := h.visits[i]
		h.write(func(tx *sqlitex.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE visits SET visited_at = ? WHERE id = ?`, v.VisitedAt.UnixMilli(), v.ID)
			return err
		})
		return "visit moved in time " + v.ID
	case k < 112: // an amendment moved onto another visit
		if len(h.amends) == 0 || len(h.visits) == 0 {
			return "nothing"
		}
		i := r.IntN(len(h.amends))
		h.amends[i].VisitID = h.visits[r.IntN(len(h.visits))].ID
		a := h.amends[i]
		h.write(func(tx *sqlitex.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE visit_amendments SET visit_id = ? WHERE id = ?`, a.VisitID, a.ID)
			return err
		})
		return "amendment moved " + a.ID
	case k < 114: // every row deleted in bulk, as a reset does
		h.write(func(tx *sqlitex.Tx) error {
			return statedb.InBulk(ctx, tx, func() error {
				for _, table := range []string{"visits", "visit_households", "visit_amendments", "households"} {
					if _, err := tx.ExecContext(ctx, `DELETE FROM `+table); err != nil {
						return err
					}
				}
				return nil
			})
		})
		return "reset"
	case k < 116: // a household's visits deleted one by one, triggers firing
		hh := sumHouseholds[r.IntN(len(sumHouseholds))]
		h.write(func(tx *sqlitex.Tx) error {
			if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE gone AS SELECT visit_id FROM visit_households WHERE household_id = ?`, hh); err != nil {
				return err
			}
			for _, stmt := range []string{`DELETE FROM visits WHERE id IN (SELECT visit_id FROM gone)`,
				`DELETE FROM visit_households WHERE visit_id IN (SELECT visit_id FROM gone)`, `DROP TABLE gone`} {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return err
				}
			}
			return nil
		})
		return "visits of " + hh + " deleted"
	default: // a campaign created, moved or deleted
		var c se.Campaign
		if len(h.camps) == 0 || r.IntN(3) == 0 {
			c = se.Campaign{ID: h.id("c")}
		} else {
			c = h.camps[r.IntN(len(h.camps))]
		}
		clock := se.Clock{HLC: uint64(1000 + h.n), Node: 1}
		h.n++
		from := h.at()
		to := from.Add(time.Duration(r.IntN(40)-5) * 24 * time.Hour) // some empty
		c.StartsAt = se.NewRegister(from.UnixMilli(), clock)
		c.EndsAt = se.NewRegister(to.UnixMilli(), clock)
		c.Deleted = se.NewRegister(r.IntN(4) == 0, clock)
		if i := slices.IndexFunc(h.camps, func(o se.Campaign) bool { return o.ID == c.ID }); i >= 0 {
			h.camps[i] = c
		} else {
			h.camps = append(h.camps, c)
		}
		h.write(func(tx *sqlitex.Tx) error { _, _, err := statedb.MergeCampaign(ctx, tx, &c, 0); return err })
		return "campaign " + c.ID
	}
}

// rawVisit writes v's links then its row, as a snapshot copied in whole
// does, bypassing InsertVisit.
func rawVisit(ctx context.Context, tx *sqlitex.Tx, v *se.Visit) error {
	for i, hh := range v.HouseholdIDs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO visit_households (household_id, visit_id, ord) VALUES (?, ?, ?)`, hh, v.ID, i); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO visits (id, visitor_id, visited_at, form, notes, hlc, node) VALUES (?, ?, ?, 1, '', ?, 1)`,
		v.ID, v.VisitorID, v.VisitedAt.UnixMilli(), int64(v.Clock.HLC))
	return err
}

type sumKey struct {
	household      string
	winFrom, winTo int64
	visitor        string
}

type sum struct{ last, n int64 }

// check recomputes the sums in Go from the raw rows and compares.
func (h *history) check() string {
	ctx := context.Background()
	q := h.db.R
	type visit struct {
		visitor string
		at      int64
		plain   bool
	}
	visits := map[string]visit{}
	rows, err := q.QueryContext(ctx, `SELECT id, visitor_id, visited_at, revisit_due = 0 AND tracked = 0 AND details = '' FROM visits`)
	if err != nil {
		h.t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var v visit
		if err := rows.Scan(&id, &v.visitor, &v.at, &v.plain); err != nil {
			h.t.Fatal(err)
		}
		visits[id] = v
	}
	rows.Close()
	amended := map[string]bool{}
	for _, id := range column(h.t, q, `SELECT visit_id FROM visit_amendments`) {
		amended[id] = true
	}
	type window struct{ from, to int64 }
	windows := map[window]bool{}
	rows, err = q.QueryContext(ctx, `SELECT starts_at, ends_at, deleted FROM campaigns`)
	if err != nil {
		h.t.Fatal(err)
	}
	for rows.Next() {
		var w window
		var deleted bool
		if err := rows.Scan(&w.from, &w.to, &deleted); err != nil {
			h.t.Fatal(err)
		}
		if !deleted && w.to > w.from {
			windows[w] = true
		}
	}
	rows.Close()
	kept := map[window]bool{}
	rows, err = q.QueryContext(ctx, `SELECT win_from, win_to FROM visit_sum_windows`)
	if err != nil {
		h.t.Fatal(err)
	}
	for rows.Next() {
		var w window
		if err := rows.Scan(&w.from, &w.to); err != nil {
			h.t.Fatal(err)
		}
		kept[w] = true
	}
	rows.Close()
	if !maps.Equal(kept, windows) {
		return fmt.Sprintf("windows kept %v, campaigns' %v", kept, windows)
	}
	windows[window{statedb.AllTimeFrom, statedb.AllTimeTo}] = true

	want := map[sumKey]sum{}
	rows, err = q.QueryContext(ctx, `SELECT household_id, visit_id FROM visit_households`)
	if err != nil {
		h.t.Fatal(err)
	}
	for rows.Next() {
		var hh, id string
		if err := rows.Scan(&hh, &id); err != nil {
			h.t.Fatal(err)
		}
		v, ok := visits[id]
		if !ok || !v.plain || amended[id] {
			continue
		}
		for w := range windows {
			if v.at < w.from || v.at >= w.to {
				continue
			}
			k := sumKey{hh, w.from, w.to, v.visitor}
			s := want[k]
			want[k] = sum{max(s.last, v.at), s.n + 1}
		}
	}
	rows.Close()
	got := map[sumKey]sum{}
	rows, err = q.QueryContext(ctx, `SELECT household_id, win_from, win_to, visitor_id, last, n FROM visit_sums`)
	if err != nil {
		h.t.Fatal(err)
	}
	for rows.Next() {
		var k sumKey
		var s sum
		if err := rows.Scan(&k.household, &k.winFrom, &k.winTo, &k.visitor, &s.last, &s.n); err != nil {
			h.t.Fatal(err)
		}
		got[k] = s
	}
	rows.Close()
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			return fmt.Sprintf("sum %+v: %+v (held %v), want %+v", k, g, ok, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			return fmt.Sprintf("sum %+v: %+v held, want none", k, g)
		}
	}
	special := maps.Clone(amended)
	for id, v := range visits {
		if !v.plain {
			special[id] = true
		}
	}
	if !h.linked {
		return h.checkTimeline()
	}
	if diff := h.checkSpecialLinks(special); diff != "" {
		return diff
	}
	return h.checkTimeline()
}

// checkTimeline compares a series of the plain visits of one grid as of
// moments in a window, from one read of them one by one
// (fieldwork.Timeline), with the sums as of each moment read apart
// (PlainVisits), for each campaign's window and a window of its own.
func (h *history) checkTimeline() string {
	ctx := context.Background()
	// Its own draws, so that the history's writes stay what their seed
	// makes them (and a history with no draws of its own can be checked).
	rng := rand.New(rand.NewPCG(uint64(h.n), 3))
	type window struct{ from, to time.Time }
	// Windows of their own: one in the middle of the history, and one at
	// its end, which nothing is visited after (read through the visitors'
	// index when special links are kept).
	windows := []window{{sumEpoch.Add(30 * 24 * time.Hour), sumEpoch.Add(60 * 24 * time.Hour)}, {sumEpoch.Add(80 * 24 * time.Hour), sumEpoch.Add(100 * 24 * time.Hour)}}
	for _, c := range h.camps {
		windows = append(windows, window{time.UnixMilli(c.StartsAt.Value).UTC(), time.UnixMilli(c.EndsAt.Value).UTC()})
	}
	grid := sumGrids[rng.IntN(len(sumGrids))]
	for _, w := range windows {
		if !w.from.Before(w.to) {
			continue
		}
		untils := []time.Time{w.from, w.to}
		for range 3 {
			untils = append(untils, w.from.Add(time.Duration(rng.Int64N(int64(w.to.Sub(w.from))))).Truncate(time.Millisecond))
		}
		rows := statedb.FieldRows(h.db.R, []string{grid})
		type key struct {
			i         int
			household string
			visitor   string
		}
		// The timeline read from every visit before the window's end, and
		// from the window's visits through the visitors' index (a database
		// keeping its special links).
		reads := []fieldwork.TimelineRows{rows}
		if h.linked {
			reads = append(reads, statedb.FieldRows(h.db.R, []string{grid}).WithSpecialLinks())
		}
		gots := make([]map[key]fieldwork.VisitAggregate, len(reads))
		for j, tr := range reads {
			tl, err := fieldwork.ReadTimeline(ctx, tr, w.from, w.to, nil)
			if err != nil {
				h.t.Fatal(err)
			}
			gots[j] = map[key]fieldwork.VisitAggregate{}
			err = tl.PlainVisitsSeries(ctx, w.from, w.to, untils, func(i int, a *fieldwork.VisitAggregate) error {
				gots[j][key{i, a.HouseholdID, a.VisitorID}] = *a
				return nil
			})
			if err != nil {
				h.t.Fatal(err)
			}
		}
		want := map[key]fieldwork.VisitAggregate{}
		for i, u := range untils {
			err := rows.PlainVisits(ctx, w.from, w.to, u, func(a *fieldwork.VisitAggregate) error {
				want[key{i, a.HouseholdID, a.VisitorID}] = *a
				return nil
			})
			if err != nil {
				h.t.Fatal(err)
			}
		}
		for j, got := range gots {
			if !maps.Equal(got, want) {
				return fmt.Sprintf("grid %s, window [%v, %v), as of %v: the timeline's sums (read %d) %v, want %v", grid, w.from, w.to, untils, j, got, want)
			}
		}
	}
	return ""
}

// checkSpecialLinks compares visit_special_links with the links of the
// special visits: those with details, a revisit or a tracked finding, and
// the amended ones whether their visit is in or not.
func (h *history) checkSpecialLinks(special map[string]bool) string {
	ctx := context.Background()
	read := func(query string, keep func(visit string) bool) map[string]int {
		rows, err := h.db.R.QueryContext(ctx, query)
		if err != nil {
			h.t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int{}
		for rows.Next() {
			var hh, id string
			var ord int
			if err := rows.Scan(&hh, &id, &ord); err != nil {
				h.t.Fatal(err)
			}
			if keep(id) {
				out[hh+" "+id] = ord
			}
		}
		return out
	}
	want := read(`SELECT household_id, visit_id, ord FROM visit_households`, func(id string) bool { return special[id] })
	got := read(`SELECT household_id, visit_id, ord FROM visit_special_links`, func(string) bool { return true })
	if !maps.Equal(got, want) {
		return fmt.Sprintf("special links %v, want %v", got, want)
	}
	return ""
}

func column(t *testing.T, q statedb.Querier, query string) []string {
	t.Helper()
	rows, err := q.QueryContext(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestSchemaV3SumsWhatIsThere: a database written before there were sums
// has them built by the migration that adds them, and so its special links.
func TestSchemaV3SumsWhatIsThere(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	v2 := []sqlitex.Migration{
		{Version: 1, Name: "001_state.sql", SQL: statedb.SchemaV1},
		{Version: 2, Name: "002_state.sql", SQL: statedb.SchemaV2},
	}
	old, err := sqlitex.Open(ctx, path, v2)
	if err != nil {
		t.Fatal(err)
	}
	apr := func(d int) int64 { return time.Date(2026, 4, d, 10, 0, 0, 0, time.UTC).UnixMilli() }
	err = old.Write(ctx, func(tx *sqlitex.Tx) error {
		for _, stmt := range []string{
			`INSERT INTO visits (id, visitor_id, visited_at, form, notes, hlc, node) VALUES
				('v1', 'w1', ` + fmt.Sprint(apr(2)) + `, 1, '', 1, 1), ('v2', 'w1', ` + fmt.Sprint(apr(20)) + `, 1, '', 2, 1),
				('v3', 'w2', ` + fmt.Sprint(apr(3)) + `, 1, '', 3, 1), ('v4', 'w2', ` + fmt.Sprint(apr(4)) + `, 1, '', 4, 1)`,
			`UPDATE visits SET revisit_due = ` + fmt.Sprint(apr(11)) + `, details = '{"r":[1]}' WHERE id = 'v3'`,
			`INSERT INTO visit_households (household_id, visit_id, ord) VALUES
				('h1', 'v1', 0), ('h2', 'v1', 1), ('h1', 'v2', 0), ('h2', 'v3', 0), ('h3', 'v4', 0)`,
			`INSERT INTO visit_amendments (id, visit_id, author_id, kind, reason, hlc, node) VALUES ('a1', 'v4', 'w2', 2, 'wrong door', 5, 1)`,
			`INSERT INTO campaigns (id, starts_at, ends_at, clocks) VALUES
				('c1', ` + fmt.Sprint(apr(1)) + `, ` + fmt.Sprint(apr(10)) + `, x''), ('c2', 0, 0, x'')`,
		} {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	db, err := sqlitex.Open(ctx, path, append(v2, sqlitex.Migration{Version: 3, Name: "003_state.sql", SQL: statedb.SchemaV3},
		sqlitex.Migration{Version: 4, Name: "004_state.sql", SQL: statedb.SchemaV4},
		sqlitex.Migration{Version: 5, Name: "005_state.sql", SQL: statedb.SchemaV5},
		sqlitex.Migration{Version: 6, Name: "006_state.sql", SQL: statedb.SchemaV6},
		sqlitex.Migration{Version: 7, Name: "007_state.sql", SQL: statedb.SchemaV7},
		sqlitex.Migration{Version: 8, Name: "008_special_links.sql", SQL: statedb.SpecialLinks}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h := &history{t: t, db: db}
	if diff := h.check(); diff != "" {
		t.Fatal(diff)
	}
	var n int
	if err := db.R.QueryRowContext(ctx, `SELECT count(*) FROM visit_sums`).Scan(&n); err != nil || n != 4 {
		// h1: w1 all time, w1 in April 1-10; h2: w1 both (v1; v3 is
		// special); h3: none (v4 is voided).
		t.Fatalf("%d sums (%v), want 4", n, err)
	}
	if err := db.R.QueryRowContext(ctx, `SELECT count(*) FROM visit_special_links`).Scan(&n); err != nil || n != 2 {
		// v3 (a revisit) to h2, v4 (amended) to h3.
		t.Fatalf("%d special links (%v), want 2", n, err)
	}
}

// BenchmarkInsertVisit measures storing a plain visit to one household,
// sums included, with a campaign window over it.
func BenchmarkInsertVisit(b *testing.B) {
	ctx := context.Background()
	db := openState(b)
	at := time.Date(2026, 4, 10, 10, 0, 0, 0, time.UTC)
	c := se.Campaign{ID: "c", StartsAt: se.NewRegister(at.AddDate(0, 0, -30).UnixMilli(), se.Clock{HLC: 1, Node: 1}),
		EndsAt: se.NewRegister(at.AddDate(0, 0, 30).UnixMilli(), se.Clock{HLC: 1, Node: 1})}
	if err := db.Write(ctx, func(tx *sqlitex.Tx) error { _, _, err := statedb.MergeCampaign(ctx, tx, &c, 0); return err }); err != nil {
		b.Fatal(err)
	}
	const batch = 500
	n := 0
	for b.Loop() {
		err := db.Write(ctx, func(tx *sqlitex.Tx) error {
			for range batch {
				n++
				v := se.Visit{ID: fmt.Sprintf("v%08d", n), HouseholdIDs: []string{fmt.Sprintf("h%05d", n%5000)}, VisitorID: "w",
					VisitedAt: at.Add(time.Duration(n) * time.Second), Form: se.VisitForm(1), Notes: "notes", Clock: se.Clock{HLC: uint64(n), Node: 1}}
				if _, err := statedb.InsertLinkedVisit(ctx, tx, &v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "visits/s")
}

// TestInBulk: rows written in bulk with the triggers set aside are summed
// as if written one by one, and the triggers are back after.
func TestInBulk(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHistory(t, 99, false)
	for range 80 {
		h.step()
	}
	if diff := h.check(); diff != "" {
		t.Fatal(diff)
	}
	// A second database takes the first's rows in bulk.
	other := &history{t: t, db: openPhoneState(t)}
	err := other.db.Write(ctx, func(tx *sqlitex.Tx) error {
		if _, err := tx.ExecContext(ctx, `ATTACH DATABASE ? AS src`, h.db.Path); err != nil {
			return err
		}
		return statedb.InBulk(ctx, tx, func() error {
			for _, table := range []string{"households", "campaigns", "visit_households", "visits", "visit_amendments"} {
				if _, err := tx.ExecContext(ctx, `INSERT INTO main.`+table+` SELECT * FROM src.`+table); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	// The campaigns came in without SyncWindows: one more write of one
	// keeps them.
	if len(h.camps) > 0 {
		c := h.camps[0]
		if err := other.db.Write(ctx, func(tx *sqlitex.Tx) error { return statedb.PutCampaign(ctx, tx, &c, 0) }); err != nil {
			t.Fatal(err)
		}
	}
	if diff := other.check(); diff != "" {
		t.Fatalf("after the bulk copy: %s", diff)
	}
	// The triggers sum the next write.
	other.rng, other.n = h.rng, h.n
	other.visits, other.amends, other.camps = h.visits, h.amends, h.camps
	for range 20 {
		other.step()
		if diff := other.check(); diff != "" {
			t.Fatalf("a write after the bulk copy: %s", diff)
		}
	}
}

// TestSpecialLinksFollowUpdates: the writes no code makes today (a visit's
// details or revisit changed in place, a link moved to another household,
// a visit deleted with its links left) keep the special links too.
func TestSpecialLinksFollowUpdates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHistory(t, 7, true)
	for range 60 {
		h.step()
	}
	for _, stmt := range []string{
		`UPDATE visits SET details = '' WHERE id = (SELECT min(id) FROM visits WHERE details != '')`,
		`UPDATE visits SET revisit_due = 1 WHERE id = (SELECT min(id) FROM visits WHERE revisit_due = 0 AND tracked = 0 AND details = '')`,
		`UPDATE visits SET tracked = 1 WHERE id = (SELECT max(id) FROM visits WHERE revisit_due = 0 AND tracked = 0)`,
		`UPDATE visit_households SET household_id = 'h9' WHERE (household_id, visit_id) = (SELECT household_id, visit_id FROM visit_special_links ORDER BY visit_id LIMIT 1)`,
		`UPDATE visit_households SET ord = ord + 5 WHERE visit_id = (SELECT max(visit_id) FROM visit_special_links)`,
		`UPDATE visit_amendments SET visit_id = (SELECT max(id) FROM visits) WHERE id = (SELECT min(id) FROM visit_amendments)`,
		`DELETE FROM visits WHERE id = (SELECT max(visit_id) FROM visit_special_links WHERE visit_id NOT IN (SELECT visit_id FROM visit_amendments))`,
	} {
		if _, err := h.db.W.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
		if diff := h.check(); diff != "" {
			t.Fatalf("after %s: %s", stmt, diff)
		}
	}
}
