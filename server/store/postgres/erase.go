package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/doorbook/doorbook/server/store"
)

func (r *repo) AnyHouseholdErased(ctx context.Context) (bool, error) {
	var any bool
	if err := r.q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM erasures WHERE kind = $1)`, int32(store.EntityHousehold)).Scan(&any); err != nil {
		return false, fmt.Errorf("read erasures: %w", err)
	}
	return any, nil
}

// HouseholdErasure is the clock of the newest erasure of any of
// households, 0 if none was erased.
func (r *repo) HouseholdErasure(ctx context.Context, households []string) (uint64, error) {
	if len(households) == 0 {
		return 0, nil
	}
	var hlc int64
	if err := r.q.QueryRow(ctx, `SELECT COALESCE(max(hlc), 0) FROM erasures WHERE kind = $1 AND entity_id = ANY($2)`,
		int32(store.EntityHousehold), households).Scan(&hlc); err != nil {
		return 0, fmt.Errorf("read erasures: %w", err)
	}
	return uint64(hlc), nil
}

// RecordErasures records the marks with the range of feed positions the
// transaction has taken so far, written when it is sealed.
func (r *repo) RecordErasures(ctx context.Context, at time.Time, marks []store.ErasureMark) error {
	w, err := r.writer()
	if err != nil {
		return err
	}
	for _, m := range marks {
		w.recordErasure(int(m.Kind), m.ID, at.UnixMilli(), m.HLC)
	}
	return nil
}

func (r *repo) ErasuresOf(ctx context.Context, after uint64, kind store.EntityKind, ids []string) ([]store.Erasure, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := r.q.Query(ctx, `SELECT entity_id, first_seq, last_seq FROM erasures WHERE kind = $1 AND entity_id = ANY($2) AND last_seq > $3`,
		int32(kind), ids, int64(after))
	if err != nil {
		return nil, fmt.Errorf("read erasures: %w", err)
	}
	defer rows.Close()
	var out []store.Erasure
	for rows.Next() {
		var first, last int64
		e := store.Erasure{Kind: kind}
		if err := rows.Scan(&e.ID, &first, &last); err != nil {
			return nil, fmt.Errorf("read erasures: %w", err)
		}
		e.FirstSeq, e.LastSeq = uint64(first), uint64(last)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read erasures: %w", err)
	}
	return out, nil
}

// erasedTables hold the personal data an erasure blanks.
var erasedTables = []string{"households", "persons", "visits", "visit_amendments"}

// scrubWait bounds how long Scrub waits for the snapshots older than the
// erasure to end.
const scrubWait = 5 * time.Second

// Scrub removes the row versions an erasure left behind. PostgreSQL keeps
// the old version of an updated or deleted row in the table until VACUUM
// removes it, and VACUUM can only once no snapshot that might still see it
// remains: Scrub waits for the transactions of this database older than
// its call (a bootstrap's pages, a report; each a short transaction here)
// to end, for a while, then vacuums the tables an erasure writes. It
// reports false if an older snapshot remained: the old versions then go at
// a later VACUUM (autovacuum's, or the next erasure's).
//
// What it cannot reach, and a deployment must cover by its own policy: the
// write-ahead log holds the old values until its segments are recycled
// after a checkpoint (and archives and base backups keep them for as long
// as they are kept), a standby holds its own copy of both, and the bytes
// of a removed version may stay in a page's free space until reused.
func (db *DB) Scrub(ctx context.Context) (bool, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("scrub: %w", err)
	}
	defer conn.Release()
	// Every transaction that began before now has an id below the
	// snapshot's xmax; wait for those still holding a snapshot. (xid8 to
	// the xid pg_stat_activity shows: its low 32 bits.)
	var horizon string
	if err := conn.QueryRow(ctx, `SELECT (pg_snapshot_xmax(pg_current_snapshot())::text::bigint % 4294967296)::text`).Scan(&horizon); err != nil {
		return false, fmt.Errorf("scrub: %w", err)
	}
	clear := false
	for deadline := time.Now().Add(scrubWait); ; {
		var older bool
		err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL
			AND age(backend_xmin) > age($1::text::xid))`, horizon).Scan(&older)
		if err != nil {
			return false, fmt.Errorf("scrub: %w", err)
		}
		if !older {
			clear = true
			break
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return false, nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, t := range erasedTables {
		if _, err := conn.Exec(ctx, `VACUUM `+t); err != nil {
			return false, fmt.Errorf("scrub: vacuum %s: %w", t, err)
		}
	}
	return clear, nil
}

var _ store.Erasures = (*repo)(nil)
