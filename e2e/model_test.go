package e2e

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// model is what the merge rules say the data must be: every delta any
// replica (or the admin) produced, merged with syncengine in memory.
type model struct {
	households map[string]syncengine.Household
	persons    map[string]syncengine.Person
	tags       map[string]syncengine.TagElement
	visits     map[string]syncengine.Visit
	amendments map[string]syncengine.Amendment
	changeIDs  map[string]bool
	// visitChanges maps the change ids of visits to the visits: a visit
	// is its own proof of being applied, and keeps no change id.
	visitChanges map[string]string
}

func newModel() *model {
	return &model{
		households: map[string]syncengine.Household{}, persons: map[string]syncengine.Person{},
		tags: map[string]syncengine.TagElement{}, visits: map[string]syncengine.Visit{},
		amendments: map[string]syncengine.Amendment{}, changeIDs: map[string]bool{}, visitChanges: map[string]string{},
	}
}

func (m *model) household(h syncengine.Household) {
	cur, ok := m.households[h.ID]
	if !ok {
		cur = syncengine.Household{ID: h.ID}
	}
	cur.Merge(h)
	m.households[h.ID] = cur
}

func (m *model) person(p syncengine.Person) {
	cur, ok := m.persons[p.ID]
	if !ok {
		cur = syncengine.Person{ID: p.ID}
	}
	cur.Merge(p)
	m.persons[p.ID] = cur
}

func (m *model) tag(t syncengine.TagElement) {
	cur, ok := m.tags[t.AddID]
	if !ok {
		m.tags[t.AddID] = t
		return
	}
	cur.Merge(t)
	m.tags[t.AddID] = cur
}

func (m *model) bundle(b syncengine.Bundle) {
	for _, h := range b.Households {
		m.household(h)
	}
	for _, p := range b.Persons {
		m.person(p)
	}
	for _, t := range b.Tags {
		m.tag(t)
	}
	for _, v := range b.Visits {
		m.visits[v.ID] = v
	}
	for _, a := range b.Amendments {
		m.amendments[a.ID] = a
	}
}

// change records an outbox change; a change id seen again must carry the
// same delta (outboxes are append-only).
func (m *model) change(c syncengine.Change) {
	if c.Visit != nil {
		m.visitChanges[c.ID] = c.Visit.ID
	} else {
		m.changeIDs[c.ID] = true
	}
	switch {
	case c.Household != nil:
		m.household(*c.Household)
	case c.Person != nil:
		m.person(*c.Person)
	case c.Tag != nil:
		m.tag(*c.Tag)
	case c.Visit != nil:
		m.visits[c.Visit.ID] = *c.Visit
	case c.Amendment != nil:
		m.amendments[c.Amendment.ID] = *c.Amendment
	}
}

func (m *model) state() syncengine.Bundle {
	var b syncengine.Bundle
	for _, h := range m.households {
		b.Households = append(b.Households, h)
	}
	for _, p := range m.persons {
		b.Persons = append(b.Persons, p)
	}
	for _, t := range m.tags {
		b.Tags = append(b.Tags, t)
	}
	for _, v := range m.visits {
		b.Visits = append(b.Visits, v)
	}
	for _, a := range m.amendments {
		b.Amendments = append(b.Amendments, a)
	}
	return canonical(b)
}

// canonical sorts every list by id and turns empty lists into nil, so that
// bundles from different sources compare with reflect.DeepEqual.
func canonical(b syncengine.Bundle) syncengine.Bundle {
	slices.SortFunc(b.Households, func(x, y syncengine.Household) int { return cmp.Compare(x.ID, y.ID) })
	slices.SortFunc(b.Persons, func(x, y syncengine.Person) int { return cmp.Compare(x.ID, y.ID) })
	slices.SortFunc(b.Tags, func(x, y syncengine.TagElement) int { return cmp.Compare(x.AddID, y.AddID) })
	slices.SortFunc(b.Visits, func(x, y syncengine.Visit) int { return cmp.Compare(x.ID, y.ID) })
	slices.SortFunc(b.Amendments, func(x, y syncengine.Amendment) int { return cmp.Compare(x.ID, y.ID) })
	if len(b.Households) == 0 {
		b.Households = nil
	}
	if len(b.Persons) == 0 {
		b.Persons = nil
	}
	if len(b.Tags) == 0 {
		b.Tags = nil
	}
	if len(b.Visits) == 0 {
		b.Visits = nil
	}
	if len(b.Amendments) == 0 {
		b.Amendments = nil
	}
	return b
}

// diffBundles describes the first differences between two bundles.
func diffBundles(want, got syncengine.Bundle) string {
	var sb strings.Builder
	report := func(kind string, w, g any) {
		wv, gv := reflect.ValueOf(w), reflect.ValueOf(g)
		if wv.Len() != gv.Len() {
			fmt.Fprintf(&sb, "%s: want %d rows, got %d\n", kind, wv.Len(), gv.Len())
		}
		for i := 0; i < min(wv.Len(), gv.Len()); i++ {
			if !reflect.DeepEqual(wv.Index(i).Interface(), gv.Index(i).Interface()) {
				fmt.Fprintf(&sb, "%s[%d]:\n  want %+v\n  got  %+v\n", kind, i, wv.Index(i).Interface(), gv.Index(i).Interface())
				return
			}
		}
	}
	report("households", want.Households, got.Households)
	report("persons", want.Persons, got.Persons)
	report("tags", want.Tags, got.Tags)
	report("visits", want.Visits, got.Visits)
	report("amendments", want.Amendments, got.Amendments)
	return sb.String()
}

// serverState reads the server's rows: all of them, or those of the
// households of grids.
func (e *env) serverState(grids ...string) syncengine.Bundle {
	e.t.Helper()
	ctx := context.Background()
	if e.pgDSN != "" {
		return e.backendState(ctx, grids)
	}
	db, err := sqlitex.Open(ctx, e.dbPath, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	var b syncengine.Bundle
	err = db.Read(ctx, func(tx *sqlitex.Tx) error {
		if grids == nil {
			b, err = statedb.LoadAll(ctx, tx)
			return err
		}
		ids, err := householdsOfGrids(ctx, tx, grids)
		if err != nil {
			return err
		}
		b, err = statedb.LoadBundle(ctx, tx, ids)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return canonical(b)
}

func householdsOfGrids(ctx context.Context, q statedb.Querier, grids []string) ([]string, error) {
	if len(grids) == 0 {
		return nil, nil
	}
	args := make([]any, len(grids))
	for i, g := range grids {
		args[i] = g
	}
	rows, err := q.QueryContext(ctx, `SELECT id FROM households WHERE grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func assertSameState(t testing.TB, what string, want, got syncengine.Bundle) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%s differs:\n%s", what, diffBundles(want, got))
	}
}

// appliedChanges is the set of change ids the server has applied.
func (e *env) appliedChanges() map[string]bool {
	e.t.Helper()
	return e.ids(`SELECT change_id FROM applied_changes`)
}

// storedVisits is the set of the server's visit ids.
func (e *env) storedVisits() map[string]bool {
	e.t.Helper()
	return e.ids(`SELECT id FROM visits`)
}

// ids reads a set of ids from the server's database.
func (e *env) ids(query string) map[string]bool {
	e.t.Helper()
	ctx := context.Background()
	if e.pgDSN != "" {
		conn, err := pgx.Connect(ctx, e.pgDSN)
		if err != nil {
			e.t.Fatal(err)
		}
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, query)
		if err != nil {
			e.t.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			e.t.Fatal(err)
		}
		out := map[string]bool{}
		for _, id := range ids {
			out[id] = true
		}
		return out
	}
	db, err := sqlitex.Open(ctx, e.dbPath, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.R.QueryContext(ctx, query)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			e.t.Fatal(err)
		}
		out[id] = true
	}
	return out
}

// backendState is serverState read through the backend's repositories:
// the households of grids (of every grid if none), whole.
func (e *env) backendState(ctx context.Context, grids []string) syncengine.Bundle {
	e.t.Helper()
	db, err := e.open(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	var b syncengine.Bundle
	err = db.View(ctx, func(tx store.Tx) error {
		if grids == nil {
			nodes, err := tx.Subtree(ctx, "")
			if err != nil {
				return err
			}
			for _, n := range nodes {
				if n.Level == store.LevelGrid {
					grids = append(grids, n.ID)
				}
			}
		}
		ids, err := tx.HouseholdIDs(ctx, grids, "", 1<<30)
		if err != nil {
			return err
		}
		b, err = tx.Bundle(ctx, ids)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return canonical(b)
}
