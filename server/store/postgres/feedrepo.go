package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// A cursor is seq<<cursorTagBits | tag: a feed position and the tag of the
// commit that position lies in, as in the SQLite backend. It orders like
// the position, and a database restored from a backup, which reuses
// positions for other commits, knows a cursor it did not issue.
const cursorTagBits = 16

func (r *repo) Head(ctx context.Context) (uint64, error) {
	var seq int64
	if err := r.q.QueryRow(ctx, `SELECT seq FROM feed_head`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("feed head: %w", err)
	}
	return uint64(seq), nil
}

// Position checks that cursor is one this database issued and returns its
// feed position. A cursor past the feed, or whose commit tag differs (the
// database was restored from a backup and has reused the position), is
// stale; one before the collection horizon is expired.
func (r *repo) Position(ctx context.Context, cursor, top uint64) (uint64, error) {
	if cursor == 0 {
		return 0, nil
	}
	seq, tag := cursor>>cursorTagBits, int64(cursor&(1<<cursorTagBits-1))
	if seq > top {
		return 0, fmt.Errorf("%w: cursor at %d is past the server's feed (%d): was the database restored?", syncengine.ErrStaleCursor, seq, top)
	}
	// One round trip: the horizon, and the commit the position lies in.
	var collected int64
	var want, first *int64
	err := r.q.QueryRow(ctx, `SELECT COALESCE((SELECT value FROM counters WHERE name = 'collected'), 0), c.tag, c.first_seq
		FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT tag, first_seq FROM commits WHERE last_seq >= $1 ORDER BY last_seq LIMIT 1) c ON true`,
		int64(seq)).Scan(&collected, &want, &first)
	if err != nil {
		return 0, fmt.Errorf("check cursor: %w", err)
	}
	if int64(seq) < collected {
		return 0, fmt.Errorf("%w: cursor at %d, history kept from %d", syncengine.ErrCursorExpired, seq, collected)
	}
	if want == nil || *first > int64(seq) || *want != tag {
		return 0, fmt.Errorf("%w: cursor at %d was not issued by this database: was it restored?", syncengine.ErrStaleCursor, seq)
	}
	return seq, nil
}

func (r *repo) Cursor(ctx context.Context, seq uint64) (uint64, error) {
	if seq == 0 {
		return 0, nil
	}
	var tag int64
	err := r.q.QueryRow(ctx, `SELECT tag FROM commits WHERE last_seq >= $1 AND first_seq <= $1 ORDER BY last_seq LIMIT 1`, int64(seq)).Scan(&tag)
	if err != nil {
		return 0, fmt.Errorf("cursor at %d: %w", seq, err)
	}
	return seq<<cursorTagBits | uint64(tag), nil
}

func (r *repo) PositionBefore(ctx context.Context, t time.Time) (uint64, error) {
	var seq int64
	// Commit times go back only where a clock stepped back by more than
	// store.ClockStep (sealStatement): the last commit by time before t
	// is then the last by position, two seeks into the time index;
	// otherwise one before it, a grace a little longer.
	err := r.q.QueryRow(ctx, `SELECT COALESCE(max(last_seq), 0) FROM commits WHERE at = (SELECT max(at) FROM commits WHERE at < $1)`, t.UnixMilli()).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("read commits: %w", err)
	}
	return uint64(seq), nil
}

func (r *repo) Touch(ctx context.Context, kind store.EntityKind, id, household, origin string) error {
	w, err := r.writer()
	if err != nil {
		return err
	}
	w.Touch(int(kind), id, household, origin)
	return nil
}

// Entries reads the entries of households now in the grids. Two plans
// answer it: walk the feed's range and look up each entry's household,
// stopping at the limit; or seek each household of the scope for its
// entries in the range (feed_household), then sort them. PostgreSQL's
// planner, estimating how soon the walk meets limit entries of the scope,
// walks a long range for a small scope (100 ms where seeking takes 10, on
// 200,000 entries and a grid of 200 households), so the choice is made
// here, as the SQLite backend makes it: walk a range shorter than
// feedWalkAlways, or than feedWalkPerHousehold entries per household of
// the scope; else seek, the LATERAL subquery (OFFSET 0 keeps it one)
// making the plan a loop over the households.
func (r *repo) Entries(ctx context.Context, q store.FeedQuery) ([]store.FeedEntry, error) {
	if len(q.Grids) == 0 || q.Upto <= q.After {
		return nil, nil
	}
	walk := q.Upto-q.After <= feedWalkAlways
	if !walk {
		var households uint64
		if err := r.q.QueryRow(ctx, `SELECT count(*) FROM households WHERE grid_id = ANY($1)`, q.Grids).Scan(&households); err != nil {
			return nil, fmt.Errorf("read feed: %w", err)
		}
		walk = q.Upto-q.After < feedWalkPerHousehold*households
	}
	query := `SELECT f.seq, f.kind, f.entity_id, f.household_id, f.origin FROM feed f
		JOIN households h ON h.id = f.household_id
		WHERE f.seq > $1 AND f.seq <= $2 AND f.origin <> $3 AND h.grid_id = ANY($4)
		ORDER BY f.seq LIMIT $5`
	if !walk {
		query = `SELECT f.seq, f.kind, f.entity_id, f.household_id, f.origin FROM households h
		CROSS JOIN LATERAL (SELECT seq, kind, entity_id, household_id, origin FROM feed
			WHERE household_id = h.id AND seq > $1 AND seq <= $2 AND origin <> $3 OFFSET 0) f
		WHERE h.grid_id = ANY($4)
		ORDER BY f.seq LIMIT $5`
	}
	rows, err := r.q.Query(ctx, query, int64(q.After), int64(q.Upto), q.Origin, q.Grids, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("read feed: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.FeedEntry, error) {
		var e store.FeedEntry
		var seq int64
		err := row.Scan(&seq, &e.Kind, &e.EntityID, &e.Household, &e.Origin)
		e.Seq = uint64(seq)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read feed: %w", err)
	}
	return out, nil
}

// feedWalkAlways is the feed range below which walking it is cheap whatever
// the scope, and counting the scope's households would cost more than it
// saves.
const feedWalkAlways = 64

// feedWalkPerHousehold: the feed is walked while its range is shorter than
// this many entries per household of the scope.
const feedWalkPerHousehold = 16

func (r *repo) HouseholdsTouched(ctx context.Context, after, upto uint64, limit int) ([]string, error) {
	out, err := collectStrings(ctx, r.q, `SELECT DISTINCT household_id FROM feed WHERE seq > $1 AND seq <= $2 LIMIT $3`,
		int64(after), int64(upto), limit)
	if err != nil {
		return nil, fmt.Errorf("read feed: %w", err)
	}
	return out, nil
}

func (r *repo) AppliedChanges(ctx context.Context, ids []string) (map[string]store.AppliedChange, error) {
	applied := make(map[string]store.AppliedChange, len(ids))
	if len(ids) == 0 {
		return applied, nil
	}
	rows, err := r.q.Query(ctx, `SELECT change_id, credential_id, digest FROM applied_changes WHERE change_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read applied changes: %w", err)
	}
	var id string
	var a store.AppliedChange
	var digest []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &a.CredentialID, &digest}, func() error {
		applied[id] = store.AppliedChange{CredentialID: a.CredentialID, Digest: string(digest)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read applied changes: %w", err)
	}
	return applied, nil
}

// RecordApplied records the change at the last feed position the
// transaction has taken so far (the previous commit's if none yet), as the
// SQLite backend does: the collector, deleting change ids applied at or
// before a commit's last position, deletes it with the entries it wrote.
func (r *repo) RecordApplied(ctx context.Context, changeID string, a store.AppliedChange) error {
	w, err := r.writer()
	if err != nil {
		return err
	}
	w.recordApplied(changeID, a.CredentialID, a.Digest)
	return nil
}

func (r *repo) WasCollected(ctx context.Context, kind store.EntityKind, id string) (bool, error) {
	var gone bool
	if err := r.q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM collected WHERE kind = $1 AND entity_id = $2)`, int32(kind), id).Scan(&gone); err != nil {
		return false, fmt.Errorf("read collected: %w", err)
	}
	return gone, nil
}

// KnownCursor, in a write transaction, locks the device's row: a device's
// pushes, one of them sent again while the first still runs, apply one
// after the other, the second finding the first's change ids applied.
func (r *repo) KnownCursor(ctx context.Context, credentialID string) (uint64, error) {
	lock := ""
	if r.w != nil {
		lock = " FOR NO KEY UPDATE"
	}
	var known int64
	if err := r.q.QueryRow(ctx, `SELECT known_cursor FROM credentials WHERE id = $1`+lock, credentialID).Scan(&known); err != nil {
		return 0, fmt.Errorf("read device: %w", err)
	}
	return uint64(known), nil
}

func (r *repo) RaiseKnownCursor(ctx context.Context, credentialID string, seq uint64) error {
	if _, err := r.q.Exec(ctx, `UPDATE credentials SET known_cursor = $1 WHERE id = $2 AND known_cursor < $1`, int64(seq), credentialID); err != nil {
		return fmt.Errorf("raise known cursor: %w", err)
	}
	return nil
}

// noRows reports whether err is a query's answer of no row.
func noRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
