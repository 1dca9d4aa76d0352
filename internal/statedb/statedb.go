package statedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/syncengine"
)

// Querier is a transaction or a connection pool.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// chunk bounds the arguments of one IN (...) list, well under SQLite's limit.
const chunk = 500

const householdCols = `id, grid_id, head_name, address, phone_mobile, phone_landline, responsible_worker,
	responsible_leader, responsible_unit, member_count, housing_type, notes, deleted, clocks`

func scanHousehold(s scanner) (syncengine.Household, error) {
	var h syncengine.Household
	var clocks []byte
	err := s.Scan(&h.ID, &h.GridID.Value, &h.HeadName.Value, &h.Address.Value, &h.PhoneMobile.Value,
		&h.PhoneLandline.Value, &h.ResponsibleWorker.Value, &h.ResponsibleLeader.Value, &h.ResponsibleUnit.Value,
		&h.MemberCount.Value, &h.HousingType.Value, &h.Notes.Value, &h.Deleted.Value, &clocks)
	if err != nil {
		return h, err
	}
	c := make([]syncengine.Clock, len(h.Clocks()))
	if err := syncengine.DecodeClocks(clocks, c); err != nil {
		return h, fmt.Errorf("household %s: %w", h.ID, err)
	}
	h.SetClocks(c)
	return h, nil
}

// upsert is an INSERT of cols (the first, id, the primary key) that
// writes over the stored row in place when the id is taken. INSERT OR
// REPLACE deletes the row and its index entries and writes them all again:
// 45 µs a household against 33 (BenchmarkPutHousehold).
func upsert(table, cols string) string {
	names := strings.Split(cols, ",")
	set := make([]string, 0, len(names)-1)
	for _, n := range names[1:] {
		n = strings.TrimSpace(n)
		set = append(set, n+" = excluded."+n)
	}
	return `INSERT INTO ` + table + ` (` + cols + `) VALUES (?` + strings.Repeat(", ?", len(names)-1) + `)
		ON CONFLICT (id) DO UPDATE SET ` + strings.Join(set, ", ")
}

var (
	putHousehold = upsert("households", householdCols)
	putPerson    = upsert("persons", personCols)
)

// PutHousehold writes h whole, over any stored row.
func PutHousehold(ctx context.Context, q Querier, h *syncengine.Household) error {
	_, err := q.ExecContext(ctx, putHousehold,
		h.ID, h.GridID.Value, h.HeadName.Value, h.Address.Value, h.PhoneMobile.Value, h.PhoneLandline.Value,
		h.ResponsibleWorker.Value, h.ResponsibleLeader.Value, h.ResponsibleUnit.Value, h.MemberCount.Value,
		h.HousingType.Value, h.Notes.Value, h.Deleted.Value, syncengine.EncodeClocks(h.Clocks()))
	if err != nil {
		return fmt.Errorf("put household %s: %w", h.ID, err)
	}
	return nil
}

// GetHousehold loads one household; ok is false if there is none.
func GetHousehold(ctx context.Context, q Querier, id string) (h syncengine.Household, ok bool, err error) {
	return getRow(ctx, q, "household", `SELECT `+householdCols+` FROM households WHERE id = ?`, id, scanHousehold)
}

// MergeHousehold merges a delta into the stored household (creating it if
// new). It returns the merged state, the state before (nil if new), and
// whether anything changed.
func MergeHousehold(ctx context.Context, q Querier, delta *syncengine.Household) (merged syncengine.Household, before *syncengine.Household, changed bool, err error) {
	cur, ok, err := GetHousehold(ctx, q, delta.ID)
	if err != nil {
		return merged, nil, false, err
	}
	return MergeHouseholdOnto(ctx, q, cur, ok, delta)
}

// MergeHouseholdOnto is MergeHousehold for a caller that has read the stored
// household already: cur, if ok.
func MergeHouseholdOnto(ctx context.Context, q Querier, cur syncengine.Household, ok bool, delta *syncengine.Household) (merged syncengine.Household, before *syncengine.Household, changed bool, err error) {
	if !ok {
		cur = syncengine.Household{ID: delta.ID}
	}
	return mergeRow(ctx, q, cur, ok, delta, PutHousehold)
}

type scanner interface{ Scan(...any) error }

// getRow loads one row by id; ok is false if there is none.
func getRow[T any](ctx context.Context, q Querier, what, query, id string, scan func(scanner) (T, error)) (T, bool, error) {
	v, err := scan(q.QueryRowContext(ctx, query, id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, false, nil
	}
	if err != nil {
		return v, false, fmt.Errorf("get %s %s: %w", what, id, err)
	}
	return v, true, nil
}

// mergeRow merges delta into cur (the stored row if ok, else an empty one)
// and writes the result if it changed.
func mergeRow[T any, P interface {
	*T
	Merge(T) bool
}](ctx context.Context, q Querier, cur T, ok bool, delta *T, put func(context.Context, Querier, *T) error) (merged T, before *T, changed bool, err error) {
	if ok {
		prev := cur
		before = &prev
	}
	if !P(&cur).Merge(*delta) && ok {
		return cur, before, false, nil
	}
	return cur, before, true, put(ctx, q, &cur)
}

// Households loads the households with the given ids, in id order.
func Households(ctx context.Context, q Querier, ids []string) ([]syncengine.Household, error) {
	return loadIn(ctx, q, `SELECT `+householdCols+` FROM households WHERE id IN (%s) ORDER BY id`, ids, scanHousehold)
}

// HouseholdGrids reads the grid of each household by id; unknown ids are
// left out.
func HouseholdGrids(ctx context.Context, q Querier, ids []string) (map[string]string, error) {
	pairs, err := loadIn(ctx, q, `SELECT id, grid_id FROM households WHERE id IN (%s) ORDER BY id`, ids, func(s scanner) ([2]string, error) {
		var p [2]string
		err := s.Scan(&p[0], &p[1])
		return p, err
	})
	if err != nil {
		return nil, err
	}
	grids := make(map[string]string, len(pairs))
	for _, p := range pairs {
		grids[p[0]] = p[1]
	}
	return grids, nil
}

const personCols = `id, household_id, name, id_number, gender, birth_date, phone, relation, notes, deleted, residence, clocks`

func scanPerson(s scanner) (syncengine.Person, error) {
	var p syncengine.Person
	var clocks []byte
	err := s.Scan(&p.ID, &p.HouseholdID, &p.Name.Value, &p.IDNumber.Value, &p.Gender.Value, &p.BirthDate.Value,
		&p.Phone.Value, &p.Relation.Value, &p.Notes.Value, &p.Deleted.Value, &p.Residence.Value, &clocks)
	if err != nil {
		return p, err
	}
	c := make([]syncengine.Clock, len(p.Clocks()))
	if err := syncengine.DecodeClocks(clocks, c); err != nil {
		return p, fmt.Errorf("person %s: %w", p.ID, err)
	}
	p.SetClocks(c)
	return p, nil
}

// PutPerson writes p whole, over any stored row.
func PutPerson(ctx context.Context, q Querier, p *syncengine.Person) error {
	_, err := q.ExecContext(ctx, putPerson,
		p.ID, p.HouseholdID, p.Name.Value, p.IDNumber.Value, p.Gender.Value, p.BirthDate.Value, p.Phone.Value,
		p.Relation.Value, p.Notes.Value, p.Deleted.Value, p.Residence.Value, syncengine.EncodeClocks(p.Clocks()))
	if err != nil {
		return fmt.Errorf("put person %s: %w", p.ID, err)
	}
	return nil
}

// GetPerson loads one person; ok is false if there is none.
func GetPerson(ctx context.Context, q Querier, id string) (p syncengine.Person, ok bool, err error) {
	return getRow(ctx, q, "person", `SELECT `+personCols+` FROM persons WHERE id = ?`, id, scanPerson)
}

// MergePerson merges a delta into the stored person, like MergeHousehold.
func MergePerson(ctx context.Context, q Querier, delta *syncengine.Person) (merged syncengine.Person, before *syncengine.Person, changed bool, err error) {
	cur, ok, err := GetPerson(ctx, q, delta.ID)
	if err != nil {
		return merged, nil, false, err
	}
	return MergePersonOnto(ctx, q, cur, ok, delta)
}

// MergePersonOnto is MergePerson for a caller that has read the stored
// person already: cur, if ok.
func MergePersonOnto(ctx context.Context, q Querier, cur syncengine.Person, ok bool, delta *syncengine.Person) (merged syncengine.Person, before *syncengine.Person, changed bool, err error) {
	if !ok {
		cur = syncengine.Person{ID: delta.ID}
	}
	return mergeRow(ctx, q, cur, ok, delta, PutPerson)
}

// Persons loads persons by id.
func Persons(ctx context.Context, q Querier, ids []string) ([]syncengine.Person, error) {
	return loadIn(ctx, q, `SELECT `+personCols+` FROM persons WHERE id IN (%s) ORDER BY id`, ids, scanPerson)
}

// PersonsOf loads the persons linked to the given households.
func PersonsOf(ctx context.Context, q Querier, householdIDs []string) ([]syncengine.Person, error) {
	return loadIn(ctx, q, `SELECT `+personCols+` FROM persons WHERE household_id IN (%s) ORDER BY household_id, id`, householdIDs, scanPerson)
}

const tagCols = `add_id, household_id, category, removed, hlc, node, person_id`

func scanTag(s scanner) (syncengine.TagElement, error) {
	var t syncengine.TagElement
	var hlc, node int64
	err := s.Scan(&t.AddID, &t.HouseholdID, &t.Category, &t.Removed, &hlc, &node, &t.PersonID)
	t.Clock = syncengine.Clock{HLC: uint64(hlc), Node: uint64(node)}
	return t, err
}

// MergeTag merges a tag element into the stored one and reports whether it
// changed.
func MergeTag(ctx context.Context, q Querier, t *syncengine.TagElement) (merged syncengine.TagElement, changed bool, err error) {
	cur, err := scanTag(q.QueryRowContext(ctx, `SELECT `+tagCols+` FROM tag_elements WHERE add_id = ?`, t.AddID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		cur = *t
	case err != nil:
		return cur, false, fmt.Errorf("get tag %s: %w", t.AddID, err)
	default:
		if !cur.Merge(*t) {
			return cur, false, nil
		}
	}
	if err := PutTag(ctx, q, &cur); err != nil {
		return cur, false, err
	}
	return cur, true, nil
}

// PutTag writes a tag element whole, replacing any stored one.
func PutTag(ctx context.Context, q Querier, t *syncengine.TagElement) error {
	_, err := q.ExecContext(ctx, `INSERT OR REPLACE INTO tag_elements (`+tagCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.AddID, t.HouseholdID, t.Category, t.Removed, int64(t.Clock.HLC), int64(t.Clock.Node), t.PersonID)
	if err != nil {
		return fmt.Errorf("put tag %s: %w", t.AddID, err)
	}
	return nil
}

// Tags loads tag elements by add id.
func Tags(ctx context.Context, q Querier, ids []string) ([]syncengine.TagElement, error) {
	return loadIn(ctx, q, `SELECT `+tagCols+` FROM tag_elements WHERE add_id IN (%s) ORDER BY add_id`, ids, scanTag)
}

// TagsOf loads the tag elements of the given households.
func TagsOf(ctx context.Context, q Querier, householdIDs []string) ([]syncengine.TagElement, error) {
	return loadIn(ctx, q, `SELECT `+tagCols+` FROM tag_elements WHERE household_id IN (%s) ORDER BY household_id, add_id`, householdIDs, scanTag)
}

const visitCols = `v.id, v.visitor_id, v.visited_at, v.form, v.notes, v.hlc, v.node, v.details, v.revisit_due, v.position,
	(SELECT group_concat(household_id, ',') FROM (SELECT household_id FROM visit_households vh WHERE vh.visit_id = v.id ORDER BY ord))`

func scanVisit(s scanner) (syncengine.Visit, error) {
	var v syncengine.Visit
	var at, hlc, node, due int64
	var hh sql.NullString
	var details, position string
	err := s.Scan(&v.ID, &v.VisitorID, &at, &v.Form, &v.Notes, &hlc, &node, &details, &due, &position, &hh)
	if err != nil {
		return v, err
	}
	if err := syncengine.DecodeDetails(details, &v); err != nil {
		return v, fmt.Errorf("visit %s: %w", v.ID, err)
	}
	if v.Position, err = syncengine.DecodePosition(position); err != nil {
		return v, fmt.Errorf("visit %s: %w", v.ID, err)
	}
	if due != 0 {
		v.RevisitDue = time.UnixMilli(due).UTC()
	}
	v.VisitedAt = time.UnixMilli(at).UTC()
	v.Clock = syncengine.Clock{HLC: uint64(hlc), Node: uint64(node)}
	if hh.String != "" {
		v.HouseholdIDs = strings.Split(hh.String, ",")
	}
	return v, err
}

// InsertVisit stores a visit in a database that keeps no special links (a
// phone's). A visit is immutable: storing it again is a no-op (inserted
// false), storing other content under its id is
// syncengine.ErrAlreadyExists. It sums the visit as it stores it (see
// sums.go): this and InBulk are the only ways a visit's row or its links
// come in.
func InsertVisit(ctx context.Context, q Querier, v *syncengine.Visit) (inserted bool, err error) {
	return insertVisit(ctx, q, v, false)
}

// InsertLinkedVisit is InsertVisit for a database that keeps special links
// (SpecialLinks: the server's), which it writes too.
func InsertLinkedVisit(ctx context.Context, q Querier, v *syncengine.Visit) (inserted bool, err error) {
	return insertVisit(ctx, q, v, true)
}

func insertVisit(ctx context.Context, q Querier, v *syncengine.Visit, linked bool) (inserted bool, err error) {
	details, err := syncengine.EncodeDetails(v)
	if err != nil {
		return false, fmt.Errorf("insert visit %s: %w", v.ID, err)
	}
	var due int64
	if !v.RevisitDue.IsZero() {
		due = v.RevisitDue.UnixMilli()
	}
	tracked := 0
	for _, f := range v.Findings {
		if f.Kind.Tracked() {
			tracked++
		}
	}
	// Most visits are new: insert first, and only when the id is taken read
	// the stored copy, which must be the same (a visit never changes).
	res, err := q.ExecContext(ctx, `INSERT INTO visits (id, visitor_id, visited_at, form, notes, hlc, node, details, revisit_due, tracked, position)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		v.ID, v.VisitorID, v.VisitedAt.UnixMilli(), v.Form, v.Notes, int64(v.Clock.HLC), int64(v.Clock.Node), details, due, tracked,
		syncengine.EncodePosition(v.Position))
	if err != nil {
		return false, fmt.Errorf("insert visit %s: %w", v.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, fmt.Errorf("insert visit %s: %w", v.ID, err)
	} else if n == 0 {
		existing, err := Visits(ctx, q, []string{v.ID})
		if err != nil {
			return false, err
		}
		if len(existing) == 0 || !existing[0].Equal(v) {
			return false, fmt.Errorf("%w: visit %s was recorded with other content", syncengine.ErrAlreadyExists, v.ID)
		}
		return false, nil
	}
	special := due != 0 || tracked != 0 || details != ""
	for i, hh := range v.HouseholdIDs {
		if _, err := q.ExecContext(ctx, `INSERT INTO visit_households (household_id, visit_id, ord) VALUES (?, ?, ?)`, hh, v.ID, i); err != nil {
			return false, fmt.Errorf("insert visit %s: %w", v.ID, err)
		}
		if err := sumLink(ctx, q, v, hh, i, special, linked); err != nil {
			return false, fmt.Errorf("insert visit %s: %w", v.ID, err)
		}
	}
	return true, nil
}

// Visits loads visits by id.
func Visits(ctx context.Context, q Querier, ids []string) ([]syncengine.Visit, error) {
	return loadIn(ctx, q, `SELECT `+visitCols+` FROM visits v WHERE v.id IN (%s) ORDER BY v.id`, ids, scanVisit)
}

// VisitsOf loads the visits that cover any of the given households.
func VisitsOf(ctx context.Context, q Querier, householdIDs []string) ([]syncengine.Visit, error) {
	vs, err := loadIn(ctx, q, `SELECT `+visitCols+` FROM visits v WHERE v.id IN
		(SELECT visit_id FROM visit_households WHERE household_id IN (%s)) ORDER BY v.id`, householdIDs, scanVisit)
	if err != nil {
		return nil, err
	}
	// A group visit reached through two chunks appears twice.
	slices.SortFunc(vs, func(a, b syncengine.Visit) int { return strings.Compare(a.ID, b.ID) })
	return slices.CompactFunc(vs, func(a, b syncengine.Visit) bool { return a.ID == b.ID }), nil
}

const amendmentCols = `id, visit_id, author_id, kind, reason, notes, form, visited_at, hlc, node, finding, unit, deadline, co_units`

func scanAmendment(s scanner) (syncengine.Amendment, error) {
	var a syncengine.Amendment
	var notes sql.NullString
	var at, hlc, node, deadline int64
	var coUnits string
	err := s.Scan(&a.ID, &a.VisitID, &a.AuthorID, &a.Kind, &a.Reason, &notes, &a.Form, &at, &hlc, &node, &a.Finding, &a.Unit, &deadline, &coUnits)
	if err == nil {
		a.CoUnits, err = syncengine.DecodeCoUnits(coUnits)
	}
	if deadline != 0 {
		a.Deadline = time.UnixMilli(deadline).UTC()
	}
	if notes.Valid {
		a.Notes = &notes.String
	}
	if at != 0 {
		a.VisitedAt = time.UnixMilli(at).UTC()
	}
	a.Clock = syncengine.Clock{HLC: uint64(hlc), Node: uint64(node)}
	return a, err
}

// InsertAmendment stores an amendment, immutable like a visit.
func InsertAmendment(ctx context.Context, q Querier, a *syncengine.Amendment) (inserted bool, err error) {
	existing, err := Amendments(ctx, q, []string{a.ID})
	if err != nil {
		return false, err
	}
	if len(existing) > 0 {
		if !existing[0].Equal(a) {
			return false, fmt.Errorf("%w: amendment %s was recorded with other content", syncengine.ErrAlreadyExists, a.ID)
		}
		return false, nil
	}
	var notes sql.NullString
	if a.Notes != nil {
		notes = sql.NullString{String: *a.Notes, Valid: true}
	}
	var at int64
	if !a.VisitedAt.IsZero() {
		at = a.VisitedAt.UnixMilli()
	}
	var deadline int64
	if !a.Deadline.IsZero() {
		deadline = a.Deadline.UnixMilli()
	}
	_, err = q.ExecContext(ctx, `INSERT INTO visit_amendments (`+amendmentCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.VisitID, a.AuthorID, a.Kind, a.Reason, notes, a.Form, at, int64(a.Clock.HLC), int64(a.Clock.Node), a.Finding, a.Unit, deadline,
		syncengine.EncodeCoUnits(a.CoUnits))
	if err != nil {
		return false, fmt.Errorf("insert amendment %s: %w", a.ID, err)
	}
	return true, nil
}

// Amendments loads amendments by id.
func Amendments(ctx context.Context, q Querier, ids []string) ([]syncengine.Amendment, error) {
	return loadIn(ctx, q, `SELECT `+amendmentCols+` FROM visit_amendments WHERE id IN (%s) ORDER BY id`, ids, scanAmendment)
}

// AmendmentsOfVisits loads the amendments of the given visits.
func AmendmentsOfVisits(ctx context.Context, q Querier, visitIDs []string) ([]syncengine.Amendment, error) {
	return loadIn(ctx, q, `SELECT `+amendmentCols+` FROM visit_amendments WHERE visit_id IN (%s) ORDER BY visit_id, id`, visitIDs, scanAmendment)
}

// LoadLedgers loads households by id with their persons and tags: a
// bundle without visits.
func LoadLedgers(ctx context.Context, q Querier, householdIDs []string) (syncengine.Bundle, error) {
	var b syncengine.Bundle
	var err error
	if b.Households, err = Households(ctx, q, householdIDs); err != nil {
		return b, err
	}
	if b.Persons, err = PersonsOf(ctx, q, householdIDs); err != nil {
		return b, err
	}
	b.Tags, err = TagsOf(ctx, q, householdIDs)
	return b, err
}

// LoadBundle loads whole households by id.
func LoadBundle(ctx context.Context, q Querier, householdIDs []string) (syncengine.Bundle, error) {
	b, err := LoadLedgers(ctx, q, householdIDs)
	if err != nil {
		return b, err
	}
	if b.Visits, err = VisitsOf(ctx, q, householdIDs); err != nil {
		return b, err
	}
	visitIDs := make([]string, len(b.Visits))
	for i, v := range b.Visits {
		visitIDs[i] = v.ID
	}
	b.Amendments, err = AmendmentsOfVisits(ctx, q, visitIDs)
	return b, err
}

// ApplyBundle merges every row of b (state from a peer) into the tables of
// a database that keeps no special links (a phone's).
func ApplyBundle(ctx context.Context, q Querier, b *syncengine.Bundle) error {
	return applyBundle(ctx, q, b, false)
}

// ApplyLinkedBundle is ApplyBundle for a database that keeps special links
// (see InsertLinkedVisit).
func ApplyLinkedBundle(ctx context.Context, q Querier, b *syncengine.Bundle) error {
	return applyBundle(ctx, q, b, true)
}

func applyBundle(ctx context.Context, q Querier, b *syncengine.Bundle, linked bool) error {
	for i := range b.Households {
		if _, _, _, err := MergeHousehold(ctx, q, &b.Households[i]); err != nil {
			return err
		}
	}
	for i := range b.Persons {
		if _, _, _, err := MergePerson(ctx, q, &b.Persons[i]); err != nil {
			return err
		}
	}
	for i := range b.Tags {
		if _, _, err := MergeTag(ctx, q, &b.Tags[i]); err != nil {
			return err
		}
	}
	for i := range b.Visits {
		if _, err := insertVisit(ctx, q, &b.Visits[i], linked); err != nil {
			return err
		}
	}
	for i := range b.Amendments {
		if _, err := InsertAmendment(ctx, q, &b.Amendments[i]); err != nil {
			return err
		}
	}
	return nil
}

// DeleteHouseholds removes households and everything hanging off them: their
// persons and tags, and the visits (with amendments) that no remaining
// household refers to. A group visit that still covers a kept household
// stays whole, links included, so it reads the same as on the server. A
// phone uses it when households leave its scope.
func DeleteHouseholds(ctx context.Context, q Querier, ids []string) error {
	var visitIDs []string
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		args := toArgs(part)
		in := sqlitex.InPlaceholders(len(part))
		rows, err := q.QueryContext(ctx, fmt.Sprintf(`SELECT DISTINCT visit_id FROM visit_households WHERE household_id IN (%s)`, in), args...)
		if err != nil {
			return fmt.Errorf("delete households: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("delete households: %w", err)
			}
			visitIDs = append(visitIDs, id)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("delete households: %w", err)
		}
		for _, stmt := range []string{
			`DELETE FROM households WHERE id IN (%s)`,
			`DELETE FROM persons WHERE household_id IN (%s)`,
			`DELETE FROM tag_elements WHERE household_id IN (%s)`,
		} {
			if _, err := q.ExecContext(ctx, fmt.Sprintf(stmt, in), args...); err != nil {
				return fmt.Errorf("delete households: %w", err)
			}
		}
	}
	const orphan = `NOT EXISTS (SELECT 1 FROM visit_households vh JOIN households h ON h.id = vh.household_id WHERE vh.visit_id = ?1)`
	for _, id := range visitIDs {
		for _, stmt := range []string{
			`DELETE FROM visit_amendments WHERE visit_id = ?1 AND ` + orphan,
			`DELETE FROM visits WHERE id = ?1 AND ` + orphan,
			`DELETE FROM visit_households WHERE visit_id = ?1 AND ` + orphan,
		} {
			if _, err := q.ExecContext(ctx, stmt, id); err != nil {
				return fmt.Errorf("delete households: %w", err)
			}
		}
	}
	return nil
}

// LoadAll loads every row, in id order: a canonical dump for comparing
// replicas.
func LoadAll(ctx context.Context, q Querier) (syncengine.Bundle, error) {
	rows, err := q.QueryContext(ctx, `SELECT id FROM households ORDER BY id`)
	if err != nil {
		return syncengine.Bundle{}, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return syncengine.Bundle{}, err
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return syncengine.Bundle{}, err
	}
	return LoadBundle(ctx, q, ids)
}

// loadIn runs query (with one %s for the IN list) over ids in chunks.
func loadIn[T any](ctx context.Context, q Querier, query string, ids []string, scan func(scanner) (T, error)) ([]T, error) {
	var out []T
	if len(ids) > chunk {
		// Chunks of sorted ids come back in order one after another: the
		// queries order by the column the ids are of.
		ids = slices.Clone(ids)
		slices.Sort(ids)
	}
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		rows, err := q.QueryContext(ctx, fmt.Sprintf(query, sqlitex.InPlaceholders(len(part))), toArgs(part)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, v)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func toArgs(ids []string) []any {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return args
}

// Restamp replaces clock old by clock new on one row of table ("visits",
// "visit_amendments" or "tag_elements"), if the row still holds old. A phone
// uses it for changes no one else has seen, after learning its clock ran
// ahead.
func Restamp(ctx context.Context, q Querier, table, id string, old, new syncengine.Clock) error {
	key := map[string]string{"visits": "id", "visit_amendments": "id", "tag_elements": "add_id"}[table]
	if key == "" {
		return fmt.Errorf("restamp: unknown table %q", table)
	}
	_, err := q.ExecContext(ctx, `UPDATE `+table+` SET hlc = ?, node = ? WHERE `+key+` = ? AND hlc = ? AND node = ?`,
		int64(new.HLC), int64(new.Node), id, int64(old.HLC), int64(old.Node))
	return err
}

// NewestHLC is the newest clock in the replicated tables: a replica that
// took its rows whole from a file, not one by one, observes it so that its
// own writes order after every write it holds.
func NewestHLC(ctx context.Context, q Querier) (uint64, error) {
	var newest uint64
	for _, table := range []string{"tag_elements", "visits", "visit_amendments"} {
		var hlc sql.NullInt64
		if err := q.QueryRowContext(ctx, `SELECT max(hlc) FROM `+table).Scan(&hlc); err != nil {
			return 0, fmt.Errorf("newest clock of %s: %w", table, err)
		}
		newest = max(newest, uint64(hlc.Int64))
	}
	for _, table := range []string{"households", "persons"} {
		rows, err := q.QueryContext(ctx, `SELECT clocks FROM `+table)
		if err != nil {
			return 0, fmt.Errorf("newest clock of %s: %w", table, err)
		}
		var clocks []byte
		for rows.Next() {
			if err := rows.Scan(&clocks); err != nil {
				rows.Close()
				return 0, err
			}
			newest = max(newest, syncengine.NewestEncodedHLC(clocks))
		}
		if err := rows.Close(); err != nil {
			return 0, err
		}
		if err := rows.Err(); err != nil {
			return 0, err
		}
	}
	return newest, nil
}

// ReplaceVisit writes v over the stored visit of its id: the one change an
// immutable visit ever takes, the erasure of personal data on request.
func ReplaceVisit(ctx context.Context, q Querier, v *syncengine.Visit) error {
	if err := DeleteVisits(ctx, q, []string{v.ID}); err != nil {
		return err
	}
	_, err := InsertVisit(ctx, q, v)
	return err
}

// ReplaceLinkedVisit is ReplaceVisit for a database that keeps special
// links (see InsertLinkedVisit).
func ReplaceLinkedVisit(ctx context.Context, q Querier, v *syncengine.Visit) error {
	if err := DeleteVisits(ctx, q, []string{v.ID}); err != nil {
		return err
	}
	_, err := InsertLinkedVisit(ctx, q, v)
	return err
}

// DeleteVisits deletes visits (not their amendments), for a replacement.
func DeleteVisits(ctx context.Context, q Querier, ids []string) error {
	for _, id := range ids {
		for _, stmt := range []string{`DELETE FROM visits WHERE id = ?`, `DELETE FROM visit_households WHERE visit_id = ?`} {
			if _, err := q.ExecContext(ctx, stmt, id); err != nil {
				return fmt.Errorf("delete visit %s: %w", id, err)
			}
		}
	}
	return nil
}

// ReplaceAmendment writes a over the stored amendment of its id (see
// ReplaceVisit).
func ReplaceAmendment(ctx context.Context, q Querier, a *syncengine.Amendment) error {
	if err := DeleteAmendments(ctx, q, []string{a.ID}); err != nil {
		return err
	}
	_, err := InsertAmendment(ctx, q, a)
	return err
}

// DeleteAmendments deletes amendments, for a replacement.
func DeleteAmendments(ctx context.Context, q Querier, ids []string) error {
	for _, id := range ids {
		if _, err := q.ExecContext(ctx, `DELETE FROM visit_amendments WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete amendment %s: %w", id, err)
		}
	}
	return nil
}
