package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// The replicated rows: the SQL of internal/statedb in PostgreSQL's
// dialect. Rows are read by id with = ANY($1) (one statement for any
// number), and in a write transaction locked as they are read (repo.lock).

type scanner interface{ Scan(dest ...any) error }

// queryAll runs a query and scans every row.
func queryAll[T any](ctx context.Context, q querier, sql string, scan func(scanner) (T, error), args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
}

// batchAll scans every row of a batch's next result.
func batchAll[T any](br pgx.BatchResults, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
}

// upsertSet is the SET list of an ON CONFLICT update of every column of
// cols but key.
func upsertSet(cols, key string) string {
	var set []string
	for c := range strings.SplitSeq(cols, ",") {
		c = strings.TrimSpace(c)
		if c != key {
			set = append(set, c+" = excluded."+c)
		}
	}
	return strings.Join(set, ", ")
}

// placeholders is "$1, $2, ..., $n".
func placeholders(n int) string {
	p := make([]string, n)
	for i := range p {
		p[i] = fmt.Sprintf("$%d", i+1)
	}
	return strings.Join(p, ", ")
}

// decodeClocks restores a row's field clocks from their stored bytes.
func decodeClocks(blob []byte, row interface {
	Clocks() []syncengine.Clock
	SetClocks([]syncengine.Clock)
}, what string) error {
	c := make([]syncengine.Clock, len(row.Clocks()))
	if err := syncengine.DecodeClocks(blob, c); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	row.SetClocks(c)
	return nil
}

// ids lists the ids of rows.
func ids[T any](rows []T, id func(*T) string) []string {
	out := make([]string, len(rows))
	for i := range rows {
		out[i] = id(&rows[i])
	}
	return out
}

const householdCols = `id, grid_id, head_name, address, phone_mobile, phone_landline, responsible_worker,
	responsible_leader, responsible_unit, member_count, housing_type, notes, deleted, clocks`

var (
	householdInsert = `INSERT INTO households (` + householdCols + `) VALUES (` + placeholders(14) + `)`
	householdSet    = upsertSet(householdCols, "id")
)

func scanHousehold(s scanner) (syncengine.Household, error) {
	var h syncengine.Household
	var clocks []byte
	err := s.Scan(&h.ID, &h.GridID.Value, &h.HeadName.Value, &h.Address.Value, &h.PhoneMobile.Value,
		&h.PhoneLandline.Value, &h.ResponsibleWorker.Value, &h.ResponsibleLeader.Value, &h.ResponsibleUnit.Value,
		&h.MemberCount.Value, &h.HousingType.Value, &h.Notes.Value, &h.Deleted.Value, &clocks)
	if err != nil {
		return h, err
	}
	return h, decodeClocks(clocks, &h, "household "+h.ID)
}

func householdID(h *syncengine.Household) string { return h.ID }

func (r *repo) Household(ctx context.Context, id string) (syncengine.Household, bool, error) {
	hs, err := r.Households(ctx, []string{id})
	if err != nil || len(hs) == 0 {
		return syncengine.Household{}, false, err
	}
	return hs[0], true, nil
}

func (r *repo) Households(ctx context.Context, want []string) ([]syncengine.Household, error) {
	if len(want) == 0 {
		return nil, nil
	}
	hs, err := queryAll(ctx, r.q, `SELECT `+householdCols+` FROM households WHERE id = ANY($1) ORDER BY id`+r.lock(), scanHousehold, want)
	if err != nil {
		return nil, fmt.Errorf("read households: %w", err)
	}
	r.missed("households", want, ids(hs, householdID))
	return hs, nil
}

func (r *repo) HouseholdGrids(ctx context.Context, want []string) (map[string]string, error) {
	grids := make(map[string]string, len(want))
	if len(want) == 0 {
		return grids, nil
	}
	rows, err := r.q.Query(ctx, `SELECT id, grid_id FROM households WHERE id = ANY($1) ORDER BY id`+r.lock(), want)
	if err != nil {
		return nil, fmt.Errorf("read households: %w", err)
	}
	var id, grid string
	found := make([]string, 0, len(want))
	if _, err := pgx.ForEachRow(rows, []any{&id, &grid}, func() error {
		grids[id] = grid
		found = append(found, id)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read households: %w", err)
	}
	r.missed("households", want, found)
	return grids, nil
}

func (r *repo) PutHousehold(ctx context.Context, h *syncengine.Household) error {
	return r.put(ctx, "households", "id", h.ID, householdInsert, householdSet,
		h.ID, h.GridID.Value, h.HeadName.Value, h.Address.Value, h.PhoneMobile.Value, h.PhoneLandline.Value,
		h.ResponsibleWorker.Value, h.ResponsibleLeader.Value, h.ResponsibleUnit.Value, h.MemberCount.Value,
		h.HousingType.Value, h.Notes.Value, h.Deleted.Value, syncengine.EncodeClocks(h.Clocks()))
}

const personCols = `id, household_id, name, id_number, gender, birth_date, phone, relation, notes, deleted, residence, clocks`

var (
	personInsert = `INSERT INTO persons (` + personCols + `) VALUES (` + placeholders(12) + `)`
	personSet    = upsertSet(personCols, "id")
)

func scanPerson(s scanner) (syncengine.Person, error) {
	var p syncengine.Person
	var clocks []byte
	err := s.Scan(&p.ID, &p.HouseholdID, &p.Name.Value, &p.IDNumber.Value, &p.Gender.Value, &p.BirthDate.Value,
		&p.Phone.Value, &p.Relation.Value, &p.Notes.Value, &p.Deleted.Value, &p.Residence.Value, &clocks)
	if err != nil {
		return p, err
	}
	return p, decodeClocks(clocks, &p, "person "+p.ID)
}

func (r *repo) Persons(ctx context.Context, want []string) ([]syncengine.Person, error) {
	if len(want) == 0 {
		return nil, nil
	}
	ps, err := queryAll(ctx, r.q, `SELECT `+personCols+` FROM persons WHERE id = ANY($1) ORDER BY id`+r.lock(), scanPerson, want)
	if err != nil {
		return nil, fmt.Errorf("read persons: %w", err)
	}
	r.missed("persons", want, ids(ps, func(p *syncengine.Person) string { return p.ID }))
	return ps, nil
}

func (r *repo) PutPerson(ctx context.Context, p *syncengine.Person) error {
	return r.put(ctx, "persons", "id", p.ID, personInsert, personSet,
		p.ID, p.HouseholdID, p.Name.Value, p.IDNumber.Value, p.Gender.Value, p.BirthDate.Value, p.Phone.Value,
		p.Relation.Value, p.Notes.Value, p.Deleted.Value, p.Residence.Value, syncengine.EncodeClocks(p.Clocks()))
}

const tagCols = `add_id, household_id, category, removed, hlc, node, person_id`

var (
	tagInsert = `INSERT INTO tag_elements (` + tagCols + `) VALUES (` + placeholders(7) + `)`
	tagSet    = upsertSet(tagCols, "add_id")
)

func scanTag(s scanner) (syncengine.TagElement, error) {
	var t syncengine.TagElement
	var hlc, node int64
	err := s.Scan(&t.AddID, &t.HouseholdID, &t.Category, &t.Removed, &hlc, &node, &t.PersonID)
	t.Clock = syncengine.Clock{HLC: uint64(hlc), Node: uint64(node)}
	return t, err
}

func (r *repo) Tags(ctx context.Context, want []string) ([]syncengine.TagElement, error) {
	if len(want) == 0 {
		return nil, nil
	}
	ts, err := queryAll(ctx, r.q, `SELECT `+tagCols+` FROM tag_elements WHERE add_id = ANY($1) ORDER BY add_id`+r.lock(), scanTag, want)
	if err != nil {
		return nil, fmt.Errorf("read tags: %w", err)
	}
	r.missed("tag_elements", want, ids(ts, func(t *syncengine.TagElement) string { return t.AddID }))
	return ts, nil
}

func (r *repo) PutTag(ctx context.Context, t *syncengine.TagElement) error {
	return r.put(ctx, "tag_elements", "add_id", t.AddID, tagInsert, tagSet,
		t.AddID, t.HouseholdID, t.Category, t.Removed, int64(t.Clock.HLC), int64(t.Clock.Node), t.PersonID)
}

// visitCols reads a visit with its households, in their order.
const visitCols = `v.id, v.visitor_id, v.visited_at, v.form, v.notes, v.hlc, v.node, v.details, v.revisit_due, v.position,
	(SELECT array_agg(vh.household_id ORDER BY vh.ord) FROM visit_households vh WHERE vh.visit_id = v.id)`

func scanVisit(s scanner) (syncengine.Visit, error) {
	var v syncengine.Visit
	var at, hlc, node, due int64
	var form int32
	var details, position string
	if err := s.Scan(&v.ID, &v.VisitorID, &at, &form, &v.Notes, &hlc, &node, &details, &due, &position, &v.HouseholdIDs); err != nil {
		return v, err
	}
	if err := syncengine.DecodeDetails(details, &v); err != nil {
		return v, fmt.Errorf("visit %s: %w", v.ID, err)
	}
	var err error
	if v.Position, err = syncengine.DecodePosition(position); err != nil {
		return v, fmt.Errorf("visit %s: %w", v.ID, err)
	}
	if due != 0 {
		v.RevisitDue = time.UnixMilli(due).UTC()
	}
	v.Form = syncengine.VisitForm(form)
	v.VisitedAt = time.UnixMilli(at).UTC()
	v.Clock = syncengine.Clock{HLC: uint64(hlc), Node: uint64(node)}
	return v, nil
}

func (r *repo) Visits(ctx context.Context, want []string) ([]syncengine.Visit, error) {
	return visits(ctx, r.q, want)
}

func visits(ctx context.Context, q querier, want []string) ([]syncengine.Visit, error) {
	if len(want) == 0 {
		return nil, nil
	}
	vs, err := queryAll(ctx, q, `SELECT `+visitCols+` FROM visits v WHERE v.id = ANY($1) ORDER BY v.id`, scanVisit, want)
	if err != nil {
		return nil, fmt.Errorf("read visits: %w", err)
	}
	return vs, nil
}

// insertVisitSQL inserts a visit unless its id is taken, and then its
// households, in one statement; it answers whether it inserted.
const insertVisitSQL = `WITH v AS (
	INSERT INTO visits (id, visitor_id, visited_at, form, notes, hlc, node, details, revisit_due, tracked, position)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $12) ON CONFLICT (id) DO NOTHING RETURNING id
), vh AS (
	INSERT INTO visit_households (household_id, visit_id, ord)
	SELECT x.household_id, v.id, x.n - 1 FROM v, unnest($11::text[]) WITH ORDINALITY AS x(household_id, n)
)
SELECT count(*) FROM v`

// InsertVisit stores a visit. Most visits are new: insert first, and only
// when the id is taken read the stored copy, which must be the same. An
// insert of an id another transaction is inserting waits for it.
func (r *repo) InsertVisit(ctx context.Context, v *syncengine.Visit) (bool, error) {
	details, err := syncengine.EncodeDetails(v)
	if err != nil {
		return false, fmt.Errorf("insert visit %s: %w", v.ID, err)
	}
	var due int64
	if !v.RevisitDue.IsZero() {
		due = v.RevisitDue.UnixMilli()
	}
	var n int
	err = r.q.QueryRow(ctx, insertVisitSQL, v.ID, v.VisitorID, v.VisitedAt.UnixMilli(), int32(v.Form), v.Notes,
		int64(v.Clock.HLC), int64(v.Clock.Node), details, due, tracked(v), v.HouseholdIDs, syncengine.EncodePosition(v.Position)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("insert visit %s: %w", v.ID, err)
	}
	if n == 1 {
		return true, nil
	}
	existing, err := r.Visits(ctx, []string{v.ID})
	if err != nil {
		return false, err
	}
	if len(existing) == 0 || !existing[0].Equal(v) {
		return false, fmt.Errorf("%w: visit %s was recorded with other content", syncengine.ErrAlreadyExists, v.ID)
	}
	return false, nil
}

const amendmentCols = `id, visit_id, author_id, kind, reason, notes, form, visited_at, hlc, node, finding, unit, deadline, co_units`

func scanAmendment(s scanner) (syncengine.Amendment, error) {
	var a syncengine.Amendment
	var kind, form int32
	var at, hlc, node, finding, deadline int64
	var coUnits string
	err := s.Scan(&a.ID, &a.VisitID, &a.AuthorID, &kind, &a.Reason, &a.Notes, &form, &at, &hlc, &node, &finding, &a.Unit, &deadline, &coUnits)
	if err != nil {
		return a, err
	}
	if a.CoUnits, err = syncengine.DecodeCoUnits(coUnits); err != nil {
		return a, err
	}
	a.Kind, a.Form, a.Finding = syncengine.AmendmentKind(kind), syncengine.VisitForm(form), uint32(finding)
	if deadline != 0 {
		a.Deadline = time.UnixMilli(deadline).UTC()
	}
	if at != 0 {
		a.VisitedAt = time.UnixMilli(at).UTC()
	}
	a.Clock = syncengine.Clock{HLC: uint64(hlc), Node: uint64(node)}
	return a, nil
}

func (r *repo) Amendments(ctx context.Context, want []string) ([]syncengine.Amendment, error) {
	if len(want) == 0 {
		return nil, nil
	}
	as, err := queryAll(ctx, r.q, `SELECT `+amendmentCols+` FROM visit_amendments WHERE id = ANY($1) ORDER BY id`, scanAmendment, want)
	if err != nil {
		return nil, fmt.Errorf("read amendments: %w", err)
	}
	return as, nil
}

// InsertAmendment stores an amendment, immutable like a visit.
func (r *repo) InsertAmendment(ctx context.Context, a *syncengine.Amendment) (bool, error) {
	var at, deadline int64
	if !a.VisitedAt.IsZero() {
		at = a.VisitedAt.UnixMilli()
	}
	if !a.Deadline.IsZero() {
		deadline = a.Deadline.UnixMilli()
	}
	tag, err := r.q.Exec(ctx, `INSERT INTO visit_amendments (`+amendmentCols+`) VALUES (`+placeholders(14)+`) ON CONFLICT (id) DO NOTHING`,
		a.ID, a.VisitID, a.AuthorID, int32(a.Kind), a.Reason, a.Notes, int32(a.Form), at, int64(a.Clock.HLC), int64(a.Clock.Node),
		int64(a.Finding), a.Unit, deadline, syncengine.EncodeCoUnits(a.CoUnits))
	if err != nil {
		return false, fmt.Errorf("insert amendment %s: %w", a.ID, err)
	}
	if tag.RowsAffected() == 1 {
		return true, nil
	}
	existing, err := r.Amendments(ctx, []string{a.ID})
	if err != nil {
		return false, err
	}
	if len(existing) == 0 || !existing[0].Equal(a) {
		return false, fmt.Errorf("%w: amendment %s was recorded with other content", syncengine.ErrAlreadyExists, a.ID)
	}
	return false, nil
}

// Bundle loads whole households in one round trip: five statements in a
// batch.
func (r *repo) Bundle(ctx context.Context, households []string) (syncengine.Bundle, error) {
	var b syncengine.Bundle
	if len(households) == 0 {
		return b, nil
	}
	const ofHouseholds = `(SELECT visit_id FROM visit_households WHERE household_id = ANY($1))`
	batch := &pgx.Batch{}
	queueLedgers(batch, households, r.lock())
	batch.Queue(`SELECT `+visitCols+` FROM visits v WHERE v.id IN `+ofHouseholds+` ORDER BY v.id`, households)
	batch.Queue(`SELECT `+amendmentCols+` FROM visit_amendments WHERE visit_id IN `+ofHouseholds+` ORDER BY visit_id, id`, households)
	br := r.q.SendBatch(ctx, batch)
	err := func() error {
		err := readLedgers(br, &b)
		if err != nil {
			return err
		}
		if b.Visits, err = batchAll(br, scanVisit); err != nil {
			return err
		}
		b.Amendments, err = batchAll(br, scanAmendment)
		return err
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return syncengine.Bundle{}, fmt.Errorf("read households: %w", err)
	}
	return b, nil
}

// Ledgers loads households with their persons and tags in one round trip.
func (r *repo) Ledgers(ctx context.Context, households []string) (syncengine.Bundle, error) {
	var b syncengine.Bundle
	if len(households) == 0 {
		return b, nil
	}
	batch := &pgx.Batch{}
	queueLedgers(batch, households, r.lock())
	br := r.q.SendBatch(ctx, batch)
	err := readLedgers(br, &b)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return syncengine.Bundle{}, fmt.Errorf("read households: %w", err)
	}
	return b, nil
}

// queueLedgers queues the reads of households with their persons and tags
// (lock: the rows' lock clause, if any).
func queueLedgers(batch *pgx.Batch, households []string, lock string) {
	batch.Queue(`SELECT `+householdCols+` FROM households WHERE id = ANY($1) ORDER BY id`+lock, households)
	batch.Queue(`SELECT `+personCols+` FROM persons WHERE household_id = ANY($1) ORDER BY household_id, id`+lock, households)
	batch.Queue(`SELECT `+tagCols+` FROM tag_elements WHERE household_id = ANY($1) ORDER BY household_id, add_id`+lock, households)
}

// readLedgers reads what queueLedgers queued into b.
func readLedgers(br pgx.BatchResults, b *syncengine.Bundle) error {
	var err error
	if b.Households, err = batchAll(br, scanHousehold); err != nil {
		return err
	}
	if b.Persons, err = batchAll(br, scanPerson); err != nil {
		return err
	}
	b.Tags, err = batchAll(br, scanTag)
	return err
}

func (r *repo) CountPersons(ctx context.Context, household string) (int, error) {
	var n int
	if err := r.q.QueryRow(ctx, `SELECT count(*) FROM persons WHERE household_id = $1`, household).Scan(&n); err != nil {
		return 0, fmt.Errorf("count persons: %w", err)
	}
	return n, nil
}

func (r *repo) CountTags(ctx context.Context, household string) (live, all int, err error) {
	if err := r.q.QueryRow(ctx, `SELECT count(*) FILTER (WHERE NOT removed), count(*) FROM tag_elements WHERE household_id = $1`,
		household).Scan(&live, &all); err != nil {
		return 0, 0, fmt.Errorf("count tags: %w", err)
	}
	return live, all, nil
}

func (r *repo) CountVisits(ctx context.Context, household string, from, to time.Time) (int, error) {
	var n int
	var err error
	if from.IsZero() && to.IsZero() {
		err = r.q.QueryRow(ctx, `SELECT count(*) FROM visit_households WHERE household_id = $1`, household).Scan(&n)
	} else {
		err = r.q.QueryRow(ctx, `SELECT count(*) FROM visit_households vh JOIN visits v ON v.id = vh.visit_id
			WHERE vh.household_id = $1 AND v.visited_at >= $2 AND v.visited_at < $3`, household, from.UnixMilli(), to.UnixMilli()).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("count visits: %w", err)
	}
	return n, nil
}

func (r *repo) VisitCounts(ctx context.Context, households []string) (map[string]int, error) {
	counts := make(map[string]int, len(households))
	if len(households) == 0 {
		return counts, nil
	}
	rows, err := r.q.Query(ctx, `SELECT household_id, count(*) FROM visit_households WHERE household_id = ANY($1) GROUP BY household_id`, households)
	if err != nil {
		return nil, fmt.Errorf("count visits: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count visits: %w", err)
		}
		counts[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count visits: %w", err)
	}
	return counts, nil
}

func (r *repo) CountHouseholds(ctx context.Context, grids []string, after string) (int, error) {
	if len(grids) == 0 {
		return 0, nil
	}
	var n int
	if err := r.q.QueryRow(ctx, `SELECT count(*) FROM households WHERE grid_id = ANY($1) AND id > $2`, grids, after).Scan(&n); err != nil {
		return 0, fmt.Errorf("count households: %w", err)
	}
	return n, nil
}

func (r *repo) HouseholdIDs(ctx context.Context, grids []string, after string, limit int) ([]string, error) {
	if len(grids) == 0 {
		return nil, nil
	}
	out, err := collectStrings(ctx, r.q, `SELECT id FROM households WHERE grid_id = ANY($1) AND id > $2 ORDER BY id LIMIT $3`, grids, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read households: %w", err)
	}
	return out, nil
}

const categoryCols = `code, name_zh, name_en, parent_code, revisit_days, key_group, deleted, clocks`

var (
	categoryInsert = `INSERT INTO categories (` + categoryCols + `) VALUES (` + placeholders(8) + `)`
	categorySet    = upsertSet(categoryCols, "code")
)

func scanCategory(s scanner) (syncengine.Category, error) {
	var c syncengine.Category
	var clocks []byte
	err := s.Scan(&c.Code, &c.NameZH.Value, &c.NameEN.Value, &c.ParentCode.Value, &c.RevisitDays.Value,
		&c.KeyGroup.Value, &c.Deleted.Value, &clocks)
	if err != nil {
		return c, err
	}
	return c, decodeClocks(clocks, &c, "category "+c.Code)
}

const campaignCols = `id, node_id, name, starts_at, ends_at, quotas, questionnaire, deleted, clocks`

var (
	campaignInsert = `INSERT INTO campaigns (` + campaignCols + `) VALUES (` + placeholders(9) + `)`
	campaignSet    = upsertSet(campaignCols, "id")
)

func scanCampaign(s scanner) (syncengine.Campaign, error) {
	var c syncengine.Campaign
	var clocks []byte
	err := s.Scan(&c.ID, &c.NodeID.Value, &c.Name.Value, &c.StartsAt.Value, &c.EndsAt.Value, &c.Quotas.Value,
		&c.Questionnaire.Value, &c.Deleted.Value, &clocks)
	if err != nil {
		return c, err
	}
	return c, decodeClocks(clocks, &c, "campaign "+c.ID)
}

func (r *repo) Category(ctx context.Context, code string) (syncengine.Category, bool, error) {
	cs, err := queryAll(ctx, r.q, `SELECT `+categoryCols+` FROM categories WHERE code = $1`+r.lock(), scanCategory, code)
	if err != nil {
		return syncengine.Category{}, false, fmt.Errorf("read category %s: %w", code, err)
	}
	r.missed("categories", []string{code}, ids(cs, func(c *syncengine.Category) string { return c.Code }))
	if len(cs) == 0 {
		return syncengine.Category{}, false, nil
	}
	return cs[0], true, nil
}

func (r *repo) Campaign(ctx context.Context, id string) (syncengine.Campaign, bool, error) {
	cs, err := queryAll(ctx, r.q, `SELECT `+campaignCols+` FROM campaigns WHERE id = $1`+r.lock(), scanCampaign, id)
	if err != nil {
		return syncengine.Campaign{}, false, fmt.Errorf("read campaign %s: %w", id, err)
	}
	r.missed("campaigns", []string{id}, ids(cs, func(c *syncengine.Campaign) string { return c.ID }))
	if len(cs) == 0 {
		return syncengine.Campaign{}, false, nil
	}
	return cs[0], true, nil
}

// Categories lists the categories changed after since (every one for 0,
// the rows this transaction wrote and has not sealed yet included).
func (r *repo) Categories(ctx context.Context, since uint64) ([]syncengine.Category, error) {
	cs, err := queryAll(ctx, r.q, `SELECT `+categoryCols+` FROM categories WHERE $1::bigint = 0 OR seq > $1 ORDER BY code`, scanCategory, int64(since))
	if err != nil {
		return nil, fmt.Errorf("read categories: %w", err)
	}
	return cs, nil
}

func (r *repo) Campaigns(ctx context.Context) ([]syncengine.Campaign, error) {
	cs, err := queryAll(ctx, r.q, `SELECT `+campaignCols+` FROM campaigns ORDER BY starts_at, id`, scanCampaign)
	if err != nil {
		return nil, fmt.Errorf("read campaigns: %w", err)
	}
	return cs, nil
}

// PutCategory writes the row now and stamps it with its feed position
// when the transaction is sealed.
func (r *repo) PutCategory(ctx context.Context, c *syncengine.Category) error {
	w, err := r.writer()
	if err != nil {
		return err
	}
	if err := r.put(ctx, "categories", "code", c.Code, categoryInsert, categorySet,
		c.Code, c.NameZH.Value, c.NameEN.Value, c.ParentCode.Value, c.RevisitDays.Value, c.KeyGroup.Value, c.Deleted.Value,
		syncengine.EncodeClocks(c.Clocks())); err != nil {
		return err
	}
	w.stamp(stampCategory, c.Code)
	return nil
}

// PutCampaign writes the row now and stamps it with its feed position
// when the transaction is sealed.
func (r *repo) PutCampaign(ctx context.Context, c *syncengine.Campaign) error {
	w, err := r.writer()
	if err != nil {
		return err
	}
	if err := r.put(ctx, "campaigns", "id", c.ID, campaignInsert, campaignSet,
		c.ID, c.NodeID.Value, c.Name.Value, c.StartsAt.Value, c.EndsAt.Value, c.Quotas.Value, c.Questionnaire.Value,
		c.Deleted.Value, syncengine.EncodeClocks(c.Clocks())); err != nil {
		return err
	}
	w.stamp(stampCampaign, c.ID)
	return nil
}

// CampaignsAbove lists the campaigns of the grids' nodes and the nodes
// above them, found in one statement by walking up the tree.
func (r *repo) CampaignsAbove(ctx context.Context, grids []string, since uint64) ([]syncengine.Campaign, error) {
	if len(grids) == 0 {
		return nil, nil
	}
	cs, err := queryAll(ctx, r.q, `WITH RECURSIVE up(id) AS (
			SELECT unnest($1::text[]) COLLATE "C"
			UNION SELECT o.parent_id FROM org_nodes o JOIN up ON o.id = up.id WHERE o.parent_id IS NOT NULL)
		SELECT `+campaignCols+` FROM campaigns WHERE ($2::bigint = 0 OR seq > $2) AND node_id IN (SELECT id FROM up)
		ORDER BY starts_at, id`, scanCampaign, grids, int64(since))
	if err != nil {
		return nil, fmt.Errorf("read campaigns: %w", err)
	}
	return cs, nil
}

// ReplaceVisit overwrites a visit: an erasure's, the one change a visit
// ever takes.
func (r *repo) ReplaceVisit(ctx context.Context, v *syncengine.Visit) error {
	if _, err := r.q.Exec(ctx, `DELETE FROM visit_households WHERE visit_id = $1`, v.ID); err != nil {
		return fmt.Errorf("replace visit %s: %w", v.ID, err)
	}
	if _, err := r.q.Exec(ctx, `DELETE FROM visits WHERE id = $1`, v.ID); err != nil {
		return fmt.Errorf("replace visit %s: %w", v.ID, err)
	}
	_, err := r.InsertVisit(ctx, v)
	return err
}

// ReplaceAmendment overwrites an amendment (see ReplaceVisit).
func (r *repo) ReplaceAmendment(ctx context.Context, a *syncengine.Amendment) error {
	if _, err := r.q.Exec(ctx, `DELETE FROM visit_amendments WHERE id = $1`, a.ID); err != nil {
		return fmt.Errorf("replace amendment %s: %w", a.ID, err)
	}
	_, err := r.InsertAmendment(ctx, a)
	return err
}

var _ store.Rows = (*repo)(nil)
