package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

var _ store.Backend = (*Store)(nil)

// Update runs fn in the single writer's transaction, together with the
// other updates waiting for the writer (sqlitex.DB.WriteGrouped: each in a
// savepoint of its own, all or nothing, returning once the group has
// committed). Feed numbers are handed out in it and saved, with a tag of
// its own, when fn succeeds: the one writer commits them in order.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	return storageError(s.db.WriteGrouped(ctx, func(t *sqlitex.Tx) error {
		seq, err := s.newSeqAlloc(ctx, t)
		if err != nil {
			return err
		}
		x := &tx{Tx: t, seq: seq}
		if err := fn(x); err != nil {
			return err
		}
		if err := x.erased.save(ctx, t, seq); err != nil {
			return err
		}
		return seq.save(ctx)
	}))
}

// View runs fn in a read transaction.
func (s *Store) View(ctx context.Context, fn func(store.Tx) error) error {
	return storageError(s.db.Read(ctx, func(t *sqlitex.Tx) error { return fn(&tx{Tx: t}) }))
}

// storageError marks the file's conditions as the store's (see
// store.ErrStorageFull).
func storageError(err error) error {
	switch {
	case errors.Is(err, sqlitex.ErrFull):
		return fmt.Errorf("%w: %w", store.ErrStorageFull, err)
	case errors.Is(err, sqlitex.ErrReadOnly):
		return fmt.Errorf("%w: %w", store.ErrStorageReadOnly, err)
	}
	return err
}

// tx is every repository over one SQLite transaction; seq is nil in a
// read transaction.
type tx struct {
	*sqlitex.Tx
	seq *seqAlloc
	// erased: the erasure marks recorded, saved with the transaction's
	// positions when it commits.
	erased erasureMarks
}

// errReadTx refuses a write that takes a feed position in a read
// transaction.
var errReadTx = errors.New("a write in a read transaction")

// positions is the transaction's allocator, or an error in a read one.
func (t *tx) positions() (*seqAlloc, error) {
	if t.seq == nil {
		return nil, errReadTx
	}
	return t.seq, nil
}

var _ store.Tx = (*tx)(nil)

func (t *tx) Head(ctx context.Context) (uint64, error) { return head(ctx, t.Tx) }

func (t *tx) Position(ctx context.Context, cursor, top uint64) (uint64, error) {
	return cursorSeq(ctx, t.Tx, cursor, top)
}

func (t *tx) Cursor(ctx context.Context, seq uint64) (uint64, error) { return cursorAt(ctx, t.Tx, seq) }

// positionBefore is the last position committed before ?1. Commit times
// go back only where the clock stepped back by more than store.ClockStep
// (seqAlloc.save): the last commit by time is then the last by position,
// two seeks into the time index; otherwise one before it. MAX(last_seq)
// walked the commits from the newest back to the first before ?1: every
// commit of a push's grace, for each push (a seventh of a loaded server's
// CPU).
const positionBefore = `SELECT COALESCE(MAX(last_seq), 0) FROM commits INDEXED BY commits_at
	WHERE at = (SELECT MAX(at) FROM commits INDEXED BY commits_at WHERE at < ?1)`

func (t *tx) PositionBefore(ctx context.Context, at time.Time) (uint64, error) {
	var seq uint64
	if err := t.QueryRowContext(ctx, positionBefore, at.UnixMilli()).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read commits: %w", err)
	}
	return seq, nil
}

func (t *tx) Touch(ctx context.Context, kind store.EntityKind, id, household, origin string) error {
	seq, err := t.positions()
	if err != nil {
		return err
	}
	return seq.touchFrom(ctx, int(kind), id, household, origin)
}

func (t *tx) Entries(ctx context.Context, q store.FeedQuery) ([]store.FeedEntry, error) {
	if err := t.flushed(ctx); err != nil {
		return nil, err
	}
	return feedAfter(ctx, t.Tx, q.Grids, q.Origin, q.After, q.Upto, q.Limit)
}

func (t *tx) HouseholdsTouched(ctx context.Context, after, upto uint64, limit int) ([]string, error) {
	if err := t.flushed(ctx); err != nil {
		return nil, err
	}
	return queryStrings(ctx, t.Tx, `SELECT DISTINCT household_id FROM feed WHERE seq > ? AND seq <= ? LIMIT +?`, after, upto, limit)
}

func (t *tx) AppliedChanges(ctx context.Context, ids []string) (map[string]store.AppliedChange, error) {
	if err := t.flushed(ctx); err != nil {
		return nil, err
	}
	applied := make(map[string]store.AppliedChange, len(ids))
	for start := 0; start < len(ids); start += maxInList {
		part := ids[start:min(start+maxInList, len(ids))]
		rows, err := t.QueryContext(ctx, `SELECT change_id, credential_id, COALESCE(digest, '') FROM applied_changes WHERE change_id IN (`+sqlitex.InPlaceholders(len(part))+`)`, anys(part)...)
		if err != nil {
			return nil, fmt.Errorf("read applied changes: %w", err)
		}
		for rows.Next() {
			var id string
			var a store.AppliedChange
			var d []byte
			if err := rows.Scan(&id, &a.CredentialID, &d); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read applied changes: %w", err)
			}
			a.Digest = string(d)
			applied[id] = a
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("read applied changes: %w", err)
		}
	}
	return applied, nil
}

// maxInList bounds the arguments of one IN (...) list, well under SQLite's limit.
const maxInList = 500

func (t *tx) RecordApplied(ctx context.Context, changeID string, a store.AppliedChange) error {
	var d any
	if a.Digest != "" {
		d = []byte(a.Digest)
	}
	seq, err := t.positions()
	if err != nil {
		return err
	}
	return seq.recordApplied(ctx, changeID, a.CredentialID, d)
}

// flushed writes what the transaction recorded of the feed and applied
// changes and not yet written, before a read of them.
func (t *tx) flushed(ctx context.Context) error {
	if t.seq == nil {
		return nil
	}
	return t.seq.flush(ctx)
}

func (t *tx) WasCollected(ctx context.Context, kind store.EntityKind, id string) (bool, error) {
	return wasCollected(ctx, t.Tx, int(kind), id)
}

func (t *tx) KnownCursor(ctx context.Context, credentialID string) (uint64, error) {
	var known uint64
	if err := t.QueryRowContext(ctx, `SELECT known_cursor FROM credentials WHERE id = ?`, credentialID).Scan(&known); err != nil {
		return 0, fmt.Errorf("read device: %w", err)
	}
	return known, nil
}

func (t *tx) RaiseKnownCursor(ctx context.Context, credentialID string, seq uint64) error {
	_, err := t.ExecContext(ctx, `UPDATE credentials SET known_cursor = ? WHERE id = ? AND known_cursor < ?`, seq, credentialID, seq)
	return err
}

func (t *tx) Household(ctx context.Context, id string) (syncengine.Household, bool, error) {
	return statedb.GetHousehold(ctx, t.Tx, id)
}

func (t *tx) Households(ctx context.Context, ids []string) ([]syncengine.Household, error) {
	return statedb.Households(ctx, t.Tx, ids)
}

func (t *tx) HouseholdGrids(ctx context.Context, ids []string) (map[string]string, error) {
	grids, err := statedb.HouseholdGrids(ctx, t.Tx, ids)
	if err == nil && t.seq != nil {
		for h, g := range grids {
			t.seq.knowGrid(h, g)
		}
	}
	return grids, err
}

func (t *tx) Persons(ctx context.Context, ids []string) ([]syncengine.Person, error) {
	return statedb.Persons(ctx, t.Tx, ids)
}

func (t *tx) Tags(ctx context.Context, ids []string) ([]syncengine.TagElement, error) {
	return statedb.Tags(ctx, t.Tx, ids)
}

func (t *tx) Visits(ctx context.Context, ids []string) ([]syncengine.Visit, error) {
	return statedb.Visits(ctx, t.Tx, ids)
}

func (t *tx) Amendments(ctx context.Context, ids []string) ([]syncengine.Amendment, error) {
	return statedb.Amendments(ctx, t.Tx, ids)
}

func (t *tx) Bundle(ctx context.Context, ids []string) (syncengine.Bundle, error) {
	return statedb.LoadBundle(ctx, t.Tx, ids)
}

func (t *tx) Ledgers(ctx context.Context, ids []string) (syncengine.Bundle, error) {
	return statedb.LoadLedgers(ctx, t.Tx, ids)
}

func (t *tx) PutHousehold(ctx context.Context, h *syncengine.Household) error {
	if err := statedb.PutHousehold(ctx, t.Tx, h); err != nil {
		return err
	}
	if t.seq != nil {
		t.seq.knowGrid(h.ID, h.GridID.Value)
	}
	return nil
}

func (t *tx) PutPerson(ctx context.Context, p *syncengine.Person) error {
	return statedb.PutPerson(ctx, t.Tx, p)
}

func (t *tx) PutTag(ctx context.Context, e *syncengine.TagElement) error {
	return statedb.PutTag(ctx, t.Tx, e)
}

func (t *tx) InsertVisit(ctx context.Context, v *syncengine.Visit) (bool, error) {
	return statedb.InsertLinkedVisit(ctx, t.Tx, v)
}

func (t *tx) InsertAmendment(ctx context.Context, a *syncengine.Amendment) (bool, error) {
	return statedb.InsertAmendment(ctx, t.Tx, a)
}

func (t *tx) CountPersons(ctx context.Context, household string) (int, error) {
	var n int
	if err := t.QueryRowContext(ctx, `SELECT COUNT(*) FROM persons WHERE household_id = ?`, household).Scan(&n); err != nil {
		return 0, fmt.Errorf("count persons: %w", err)
	}
	return n, nil
}

func (t *tx) CountTags(ctx context.Context, household string) (live, all int, err error) {
	if err := t.QueryRowContext(ctx, `SELECT COUNT(*) FILTER (WHERE NOT removed), COUNT(*) FROM tag_elements WHERE household_id = ?`, household).Scan(&live, &all); err != nil {
		return 0, 0, fmt.Errorf("count tags: %w", err)
	}
	return live, all, nil
}

func (t *tx) CountVisits(ctx context.Context, household string, from, to time.Time) (int, error) {
	var n int
	var err error
	if from.IsZero() && to.IsZero() {
		// From the index alone.
		err = t.QueryRowContext(ctx, `SELECT COUNT(*) FROM visit_households WHERE household_id = ?`, household).Scan(&n)
	} else {
		err = t.QueryRowContext(ctx, `SELECT COUNT(*) FROM visit_households vh JOIN visits v ON v.id = vh.visit_id
			WHERE vh.household_id = ? AND v.visited_at >= ? AND v.visited_at < ?`, household, from.UnixMilli(), to.UnixMilli()).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("count visits: %w", err)
	}
	return n, nil
}

func (t *tx) VisitCounts(ctx context.Context, households []string) (map[string]int, error) {
	counts := make(map[string]int, len(households))
	for part := range slices.Chunk(households, maxInList) {
		rows, err := t.QueryContext(ctx, `SELECT household_id, COUNT(*) FROM visit_households WHERE household_id IN (`+sqlitex.InPlaceholders(len(part))+`)
			GROUP BY household_id`, anys(part)...)
		if err != nil {
			return nil, fmt.Errorf("count visits: %w", err)
		}
		for rows.Next() {
			var id string
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("count visits: %w", err)
			}
			counts[id] = n
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("count visits: %w", err)
		}
	}
	return counts, nil
}

func (t *tx) CountHouseholds(ctx context.Context, grids []string, after string) (int, error) {
	var n int
	if len(grids) == 0 {
		return 0, nil
	}
	if err := t.QueryRowContext(ctx, `SELECT COUNT(*) FROM households WHERE grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`) AND id > ?`,
		append(anys(grids), after)...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count households: %w", err)
	}
	return n, nil
}

func (t *tx) HouseholdIDs(ctx context.Context, grids []string, after string, limit int) ([]string, error) {
	if len(grids) == 0 {
		return nil, nil
	}
	return queryStrings(ctx, t.Tx, `SELECT id FROM households WHERE grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`) AND id > ? ORDER BY id LIMIT +?`,
		append(anys(grids), after, limit)...)
}

func (t *tx) Category(ctx context.Context, code string) (syncengine.Category, bool, error) {
	return statedb.GetCategory(ctx, t.Tx, code)
}

func (t *tx) Campaign(ctx context.Context, id string) (syncengine.Campaign, bool, error) {
	return statedb.GetCampaign(ctx, t.Tx, id)
}

func (t *tx) Categories(ctx context.Context, since uint64) ([]syncengine.Category, error) {
	return statedb.Categories(ctx, t.Tx, since)
}

func (t *tx) Campaigns(ctx context.Context) ([]syncengine.Campaign, error) {
	return statedb.Campaigns(ctx, t.Tx, 0)
}

func (t *tx) PutCategory(ctx context.Context, c *syncengine.Category) error {
	seq, err := t.positions()
	if err != nil {
		return err
	}
	return statedb.PutCategory(ctx, t.Tx, c, seq.next())
}

func (t *tx) PutCampaign(ctx context.Context, c *syncengine.Campaign) error {
	seq, err := t.positions()
	if err != nil {
		return err
	}
	return statedb.PutCampaign(ctx, t.Tx, c, seq.next())
}

func (t *tx) CampaignsAbove(ctx context.Context, grids []string, since uint64) ([]syncengine.Campaign, error) {
	return campaignsFor(ctx, t.Tx, grids, since)
}

func (t *tx) Node(ctx context.Context, id string) (store.OrgNode, error) {
	return getNode(ctx, t.Tx, id)
}

func (t *tx) Worker(ctx context.Context, id string) (store.Worker, error) {
	return getWorker(ctx, t.Tx, id)
}

func (t *tx) ScopeEvents(ctx context.Context, workerID string, after, upto uint64) ([]store.ScopeEvent, error) {
	rows, err := t.QueryContext(ctx, `SELECT seq, grid_id, added FROM scope_events WHERE worker_id = ? AND seq > ? AND seq <= ? ORDER BY seq`, workerID, after, upto)
	if err != nil {
		return nil, fmt.Errorf("read scope events: %w", err)
	}
	defer rows.Close()
	var out []store.ScopeEvent
	for rows.Next() {
		var e store.ScopeEvent
		if err := rows.Scan(&e.Seq, &e.Grid, &e.Added); err != nil {
			return nil, fmt.Errorf("read scope events: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (t *tx) HouseholdMoves(ctx context.Context, household string, after uint64) ([]store.Move, error) {
	rows, err := t.QueryContext(ctx, `SELECT seq, from_grid, to_grid FROM household_moves WHERE household_id = ? AND seq > ? ORDER BY seq`, household, after)
	if err != nil {
		return nil, fmt.Errorf("read moves: %w", err)
	}
	defer rows.Close()
	var out []store.Move
	for rows.Next() {
		m := store.Move{Household: household}
		if err := rows.Scan(&m.Seq, &m.From, &m.To); err != nil {
			return nil, fmt.Errorf("read moves: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func (t *tx) Moves(ctx context.Context, after, upto uint64) ([]store.Move, error) {
	rows, err := t.QueryContext(ctx, `SELECT m.seq, m.household_id, m.from_grid, m.to_grid, h.grid_id FROM household_moves m
		JOIN households h ON h.id = m.household_id WHERE m.seq > ? AND m.seq <= ? ORDER BY m.seq`, after, upto)
	if err != nil {
		return nil, fmt.Errorf("read moves: %w", err)
	}
	defer rows.Close()
	var out []store.Move
	for rows.Next() {
		var m store.Move
		if err := rows.Scan(&m.Seq, &m.Household, &m.From, &m.To, &m.Now); err != nil {
			return nil, fmt.Errorf("read moves: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func (t *tx) AnyHouseholdErased(ctx context.Context) (bool, error) {
	var any bool
	if err := t.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM erasures WHERE kind = ?)`, kindHousehold).Scan(&any); err != nil {
		return false, fmt.Errorf("read erasures: %w", err)
	}
	return any, nil
}

func (t *tx) HouseholdErasure(ctx context.Context, households []string) (uint64, error) {
	return erasedBefore(ctx, t.Tx, households)
}

func (t *tx) RecordErasures(ctx context.Context, at time.Time, marks []store.ErasureMark) error {
	if _, err := t.positions(); err != nil {
		return err
	}
	t.erased.at = at
	for _, r := range marks {
		t.erased.add(int(r.Kind), r.ID, r.HLC)
	}
	return nil
}

func (t *tx) ErasuresOf(ctx context.Context, after uint64, kind store.EntityKind, ids []string) ([]store.Erasure, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	// Most pulls come after no erasure at all, which one probe of
	// erasures_last_seq tells.
	var last uint64
	switch err := t.QueryRowContext(ctx, erasuresAfter, after).Scan(&last); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read erasures: %w", err)
	}
	var out []store.Erasure
	for part := range slices.Chunk(ids, maxInList) {
		// The unary plus keeps the lookup on the primary key, however many
		// erasures came after.
		rows, err := t.QueryContext(ctx, `SELECT entity_id, first_seq, last_seq FROM erasures
			WHERE kind = ? AND entity_id IN (`+sqlitex.InPlaceholders(len(part))+`) AND +last_seq > ?`,
			append(append([]any{kind}, anys(part)...), after)...)
		if err != nil {
			return nil, fmt.Errorf("read erasures: %w", err)
		}
		for rows.Next() {
			e := store.Erasure{Kind: kind}
			if err := rows.Scan(&e.ID, &e.FirstSeq, &e.LastSeq); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read erasures: %w", err)
			}
			out = append(out, e)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, fmt.Errorf("read erasures: %w", err)
		}
	}
	return out, nil
}

// erasuresAfter finds an erasure that wrote a position after ?, if any.
const erasuresAfter = `SELECT last_seq FROM erasures WHERE last_seq > ? LIMIT 1`

// ancestors lists the nodes above each of ids, and ids themselves.
func ancestors(ctx context.Context, q statedb.Querier, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, id := range ids {
		cur := id
		for cur != "" && !out[cur] {
			out[cur] = true
			var parent sql.NullString
			if err := q.QueryRowContext(ctx, `SELECT parent_id FROM org_nodes WHERE id = ?`, cur).Scan(&parent); err != nil {
				return nil, fmt.Errorf("read org node %s: %w", cur, err)
			}
			cur = parent.String
		}
	}
	return out, nil
}

// campaignsFor lists the campaigns relevant to a worker's grids (of a node
// at or above one of them) changed after feed position since.
func campaignsFor(ctx context.Context, q statedb.Querier, grids []string, since uint64) ([]syncengine.Campaign, error) {
	all, err := statedb.Campaigns(ctx, q, since)
	if err != nil || len(all) == 0 {
		return nil, err
	}
	above, err := ancestors(ctx, q, grids)
	if err != nil {
		return nil, err
	}
	var out []syncengine.Campaign
	for _, c := range all {
		if above[c.NodeID.Value] {
			out = append(out, c)
		}
	}
	return out, nil
}
