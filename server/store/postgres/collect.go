package postgres

import (
	"context"
	"fmt"

	"github.com/doorbook/doorbook/server/store"
)

// collectChunk is how many rows one collecting transaction deletes: small
// enough that it holds the counter, and the rows it deletes, for
// milliseconds.
const collectChunk = 500

// tombstoneQuery finds, a chunk at a time, the tombstones committed at or
// before the horizon ($1): removed tags and deleted persons, and the tags
// and persons of households deleted then (the household's row stays, a
// tombstone of a few bytes).
const tombstoneQuery = `
	SELECT f.kind, f.entity_id, f.household_id FROM tag_elements t
		JOIN feed f ON f.kind = 3 AND f.entity_id = t.add_id AND f.household_id = t.household_id
		WHERE t.removed AND f.seq <= $1
	UNION ALL
	SELECT f.kind, f.entity_id, f.household_id FROM persons p
		JOIN feed f ON f.kind = 2 AND f.entity_id = p.id AND f.household_id = p.household_id
		WHERE p.deleted AND f.seq <= $1
	UNION ALL
	SELECT x.kind, x.id, h.id FROM households h
		JOIN feed f ON f.kind = 1 AND f.entity_id = h.id AND f.household_id = h.id
		JOIN (SELECT 3 AS kind, add_id AS id, household_id FROM tag_elements
			UNION ALL SELECT 2, id, household_id FROM persons) x ON x.household_id = h.id
		WHERE h.deleted AND f.seq <= $1
	LIMIT $2`

// The deletes of a chunk of tombstones, each checking again, on the row as
// it is now (a write that waited for it may have changed it), that it is
// one: only a write made before the horizon could have, and a tombstone
// stays one, but a deleted person may be written again.
const (
	deleteTags = `DELETE FROM tag_elements t WHERE t.add_id = ANY($1)
		AND (t.removed OR EXISTS (SELECT 1 FROM households h WHERE h.id = t.household_id AND h.deleted))
		RETURNING t.add_id, t.household_id`
	deletePersons = `DELETE FROM persons p WHERE p.id = ANY($1)
		AND (p.deleted OR EXISTS (SELECT 1 FROM households h WHERE h.id = p.household_id AND h.deleted))
		RETURNING p.id, p.household_id`
)

// collectTombstones deletes tombstones committed at or before feed
// position before. Each one's feed entry moves to a new position rather
// than going: devices that hold the row learn at their next pull that it
// was purged.
func (db *DB) collectTombstones(ctx context.Context, before uint64, at int64) (int, error) {
	total := 0
	for {
		found, deleted := 0, 0
		_, err := db.Write(ctx, func(tx *Tx) error {
			found, deleted = 0, 0
			rows, err := tx.Query(ctx, tombstoneQuery, int64(before), collectChunk)
			if err != nil {
				return err
			}
			ids := map[int][]string{}
			var kind int
			var id, household string
			n, err := forEachRow(rows, []any{&kind, &id, &household}, func() { ids[kind] = append(ids[kind], id) })
			if err != nil {
				return err
			}
			found = n
			for _, d := range []struct {
				kind int
				sql  string
			}{{int(store.EntityTag), deleteTags}, {int(store.EntityPerson), deletePersons}} {
				if len(ids[d.kind]) == 0 {
					continue
				}
				rows, err := tx.Query(ctx, d.sql, ids[d.kind])
				if err != nil {
					return err
				}
				var gone []string
				n, err := forEachRow(rows, []any{&id, &household}, func() {
					gone = append(gone, id)
					tx.Touch(d.kind, id, household, "")
				})
				if err != nil {
					return err
				}
				deleted += n
				if _, err := tx.Exec(ctx, `INSERT INTO collected (kind, entity_id, at) SELECT $1, unnest($2::text[]), $3
					ON CONFLICT (kind, entity_id) DO UPDATE SET at = excluded.at`, d.kind, gone, at); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("collect tombstones: %w", err)
		}
		total += deleted
		if found < collectChunk {
			return total, nil
		}
	}
}

// Collect deletes what the server keeps only for devices whose feed
// position is older than r.Before (see the SQLite backend's Collect, which
// this follows step by step), in small transactions, so that pushes go on
// meanwhile; it is safe to stop and run again at any point. Several
// servers collecting at once do the same work twice, not harm.
func (db *DB) Collect(ctx context.Context, r store.CollectRequest) (store.Collected, error) {
	var c store.Collected
	before := int64(r.Before)
	// Cursors before the horizon are refused as expired from now on: what
	// follows may go.
	if _, err := db.pool.Exec(ctx, `INSERT INTO counters (name, value) VALUES ('collected', $1)
		ON CONFLICT (name) DO UPDATE SET value = GREATEST(counters.value, excluded.value)`, before); err != nil {
		return c, fmt.Errorf("collect: %w", err)
	}
	var err error
	if c.Tombstones, err = db.collectTombstones(ctx, r.Before, r.At.UnixMilli()); err != nil {
		return c, err
	}
	steps := []struct {
		count *int
		query string
		arg   int64
	}{
		{&c.AppliedChanges, `DELETE FROM applied_changes WHERE change_id IN (SELECT change_id FROM applied_changes WHERE seq <= $1 LIMIT $2)`, before},
		{&c.Feed, `DELETE FROM feed WHERE seq IN (SELECT seq FROM feed WHERE seq <= $1 LIMIT $2)`, before},
		{&c.ScopeEvents, `DELETE FROM scope_events WHERE seq IN (SELECT seq FROM scope_events WHERE seq <= $1 LIMIT $2)`, before},
		{&c.Moves, `DELETE FROM household_moves WHERE seq IN (SELECT seq FROM household_moves WHERE seq <= $1 LIMIT $2)`, before},
		// The commit ending at the horizon stays: a device that pulled up to
		// it (the up-to-date device of an idle server) keeps a valid cursor.
		{&c.Commits, `DELETE FROM commits WHERE last_seq IN (SELECT last_seq FROM commits WHERE last_seq < $1 LIMIT $2)`, before},
		{&c.Tombstones, `DELETE FROM collected WHERE (kind, entity_id) IN (SELECT kind, entity_id FROM collected WHERE at < $1 LIMIT $2)`, r.ForgetBefore.UnixMilli()},
		{&c.Codes, `DELETE FROM enrollment_codes WHERE code_hash IN (SELECT code_hash FROM enrollment_codes WHERE expires_at < $1 LIMIT $2)`, r.CodesBefore.Unix()},
	}
	for _, st := range steps {
		for {
			// Each chunk commits on its own (autocommit): it takes no feed
			// position.
			tag, err := db.pool.Exec(ctx, st.query, st.arg, collectChunk)
			if err != nil {
				return c, fmt.Errorf("collect: %w", err)
			}
			n := int(tag.RowsAffected())
			*st.count += n
			if n < collectChunk {
				break
			}
		}
	}
	return c, nil
}
