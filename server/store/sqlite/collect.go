package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/server/store"
)

// tombstoneQuery finds, a chunk at a time, the tombstones committed before
// the horizon: removed tags and deleted persons, and the tags and persons
// of households deleted then (the household's row stays, a tombstone of a
// few bytes).
const tombstoneQuery = `
	SELECT f.kind, f.entity_id, f.household_id FROM tag_elements t
		JOIN feed f ON f.kind = 3 AND f.entity_id = t.add_id AND f.household_id = t.household_id
		WHERE t.removed = 1 AND f.seq <= ?1
	UNION ALL
	SELECT f.kind, f.entity_id, f.household_id FROM persons p
		JOIN feed f ON f.kind = 2 AND f.entity_id = p.id AND f.household_id = p.household_id
		WHERE p.deleted = 1 AND f.seq <= ?1
	UNION ALL
	SELECT CASE WHEN x.kind = 'tag' THEN 3 ELSE 2 END, x.id, h.id FROM households h
		JOIN feed f ON f.kind = 1 AND f.entity_id = h.id AND f.household_id = h.id
		JOIN (SELECT 'tag' AS kind, add_id AS id, household_id FROM tag_elements
			UNION ALL SELECT 'person', id, household_id FROM persons) x ON x.household_id = h.id
		WHERE h.deleted = 1 AND f.seq <= ?1
	LIMIT +?2`

// collectTombstones deletes tombstones committed before feed position
// before. Each one's feed entry moves to a new position rather than going:
// devices that hold the row learn at their next pull that it was purged
// and delete it too, so that every replica still equals the server.
func (s *Store) collectTombstones(ctx context.Context, before uint64, at time.Time) (int, error) {
	total := 0
	for {
		n := 0
		err := s.db.Write(ctx, func(tx *sqlitex.Tx) error {
			rows, err := tx.QueryContext(ctx, tombstoneQuery, before, collectChunk)
			if err != nil {
				return err
			}
			type row struct {
				kind            int
				id, householdID string
			}
			var found []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.kind, &r.id, &r.householdID); err != nil {
					rows.Close()
					return err
				}
				found = append(found, r)
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if len(found) == 0 {
				return nil
			}
			seq, err := s.newSeqAlloc(ctx, tx)
			if err != nil {
				return err
			}
			for _, r := range found {
				del := `DELETE FROM tag_elements WHERE add_id = ?`
				if r.kind == kindPerson {
					del = `DELETE FROM persons WHERE id = ?`
				}
				if _, err := tx.ExecContext(ctx, del, r.id); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO collected (kind, entity_id, at) VALUES (?, ?, ?)`, r.kind, r.id, at.UnixMilli()); err != nil {
					return err
				}
				if err := seq.touch(ctx, r.kind, r.id, r.householdID); err != nil {
					return err
				}
			}
			n = len(found)
			return seq.save(ctx)
		})
		if err != nil {
			return total, fmt.Errorf("collect tombstones: %w", err)
		}
		total += n
		if n < collectChunk {
			return total, nil
		}
	}
}

// collectChunk is how many rows one collecting transaction deletes: small
// enough that a push waiting for the write lock waits milliseconds.
const collectChunk = 500

// Collect deletes what the server keeps only for devices whose feed
// position is older than r.Before: tombstones (removed tags, deleted
// persons, deleted households with their persons and tags), the change ids
// applied before it, its commits (their tags: a cursor into them is then
// stale, and its device starts over), grid changes, moves, feed entries and
// spent enrolment codes. Visits stay: they are evidence. It works in small
// transactions, so that pushes go on meanwhile, and it is safe to stop and
// run again at any point.
func (s *Store) Collect(ctx context.Context, r store.CollectRequest) (store.Collected, error) {
	var c store.Collected
	before := r.Before
	// Cursors before the horizon are refused as expired from now on, and
	// every device holding one starts over: what follows may go.
	err := s.db.Write(ctx, func(tx *sqlitex.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO counters (name, value) VALUES ('collected', ?)
			ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)`, before)
		return err
	})
	if err != nil {
		return c, fmt.Errorf("collect: %w", err)
	}
	if c.Tombstones, err = s.collectTombstones(ctx, before, r.At); err != nil {
		return c, err
	}
	steps := []struct {
		count *int
		query string
		args  []any
	}{
		{&c.AppliedChanges, `DELETE FROM applied_changes WHERE change_id IN (SELECT change_id FROM applied_changes WHERE seq <= ? LIMIT +?)`, []any{before}},
		{&c.Feed, `DELETE FROM feed WHERE seq IN (SELECT seq FROM feed WHERE seq <= ? LIMIT +?)`, []any{before}},
		{&c.ScopeEvents, `DELETE FROM scope_events WHERE seq IN (SELECT seq FROM scope_events WHERE seq <= ? LIMIT +?)`, []any{before}},
		{&c.Moves, `DELETE FROM household_moves WHERE seq IN (SELECT seq FROM household_moves WHERE seq <= ? LIMIT +?)`, []any{before}},
		// The commit ending at the horizon stays: a device that pulled up to
		// it (the up-to-date device of an idle server) keeps a valid cursor.
		{&c.Commits, `DELETE FROM commits WHERE last_seq IN (SELECT last_seq FROM commits WHERE last_seq < ? LIMIT +?)`, []any{before}},
		{&c.Tombstones, `DELETE FROM collected WHERE (kind, entity_id) IN (SELECT kind, entity_id FROM collected WHERE at < ? LIMIT +?)`, []any{r.ForgetBefore.UnixMilli()}},
		{&c.Codes, `DELETE FROM enrollment_codes WHERE code_hash IN (SELECT code_hash FROM enrollment_codes WHERE expires_at < ? LIMIT +?)`, []any{r.CodesBefore.Unix()}},
	}
	for _, st := range steps {
		for {
			var n int64
			err := s.db.Write(ctx, func(tx *sqlitex.Tx) error {
				res, err := tx.ExecContext(ctx, st.query, append(st.args, collectChunk)...)
				if err != nil {
					return err
				}
				n, err = res.RowsAffected()
				return err
			})
			if err != nil {
				return c, fmt.Errorf("collect: %w", err)
			}
			*st.count += int(n)
			if n < collectChunk {
				break
			}
		}
	}
	return c, nil
}
