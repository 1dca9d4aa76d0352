package sqlite

import (
	"context"
	"fmt"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/server/store"
)

// feedAfter reads up to limit feed entries in (cursor, top] of households
// now in grids, leaving out those of rows the device origin pushed itself.
//
// Two plans answer it, and SQLite cannot tell which is cheaper (it does not
// know how much of the feed lies past the cursor): walk the feed range and
// look up each entry's household, stopping at limit entries; or seek each
// household of the scope for its entries past the cursor, then sort them
// all. The walk costs a lookup per entry of the range it passes, the seeks
// one per household plus every entry of the scope in the range, for each
// batch. A phone that syncs often, or one catching up on its own big push,
// has a range far longer than its scope is wide and wants the walk; one
// grid in a busy street, back after a week, wants the seeks.
func feedAfter(ctx context.Context, q statedb.Querier, grids []string, origin string, cursor, top uint64, limit int) ([]store.FeedEntry, error) {
	if len(grids) == 0 || top <= cursor {
		return nil, nil
	}
	feedFirst := top-cursor <= feedWalkAlways
	if !feedFirst {
		var households uint64
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM households WHERE grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`)`, anys(grids)...).Scan(&households); err != nil {
			return nil, fmt.Errorf("read feed: %w", err)
		}
		feedFirst = top-cursor < feedWalkPerHousehold*households
	}
	return readFeed(ctx, q, grids, origin, cursor, top, limit, feedFirst)
}

// feedWalkAlways is the feed range below which walking it is cheap whatever
// the scope, and counting the scope's households would cost more than it saves.
const feedWalkAlways = 64

// feedWalkPerHousehold: the feed is walked while its range is shorter than
// this many entries per household of the scope. At worst (none of them in
// the scope) the walk then costs this many lookups per household where the
// seeks would cost one; at best it stops after limit entries where the
// seeks would sort every entry of the scope, batch after batch.
const feedWalkPerHousehold = 16

// readFeed is feedAfter by the plan given.
func readFeed(ctx context.Context, q statedb.Querier, grids []string, origin string, cursor, top uint64, limit int, feedFirst bool) ([]store.FeedEntry, error) {
	// SQLite's own choice is households first. A CROSS JOIN keeps the order
	// written, and the unary + keeps it from seeking (grid, id) once per grid
	// for each entry: one seek by id, then the row's grid, is cheaper.
	join, grid := "JOIN", "h.grid_id"
	if feedFirst {
		join, grid = "CROSS JOIN", "+h.grid_id"
	}
	args := append([]any{cursor, top, origin}, anys(grids)...)
	args = append(args, limit)
	rows, err := q.QueryContext(ctx, `SELECT f.seq, f.kind, f.entity_id, f.household_id, f.origin FROM feed f
		`+join+` households h ON h.id = f.household_id
		WHERE f.seq > ? AND f.seq <= ? AND f.origin != ? AND `+grid+` IN (`+sqlitex.InPlaceholders(len(grids))+`)
		ORDER BY f.seq LIMIT +?`, args...)
	if err != nil {
		return nil, fmt.Errorf("read feed: %w", err)
	}
	defer rows.Close()
	var out []store.FeedEntry
	for rows.Next() {
		var e store.FeedEntry
		if err := rows.Scan(&e.Seq, &e.Kind, &e.EntityID, &e.Household, &e.Origin); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// wasCollected reports whether a row was a tombstone the collector deleted:
// a write naming it now (a phone back after the horizon) is refused, and
// set aside on the phone, rather than bring the row back.
func wasCollected(ctx context.Context, tx *sqlitex.Tx, kind int, id string) (bool, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM collected WHERE kind = ? AND entity_id = ?`, kind, id).Scan(&n); err != nil {
		return false, fmt.Errorf("read collected: %w", err)
	}
	return n > 0, nil
}
