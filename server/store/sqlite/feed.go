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
// grid of the scope for its entries past the cursor, then sort them all.
// The walk costs a lookup per entry of the range it passes, the seeks one
// per grid plus every entry of the scope in the range, for each batch. A
// phone that syncs often, or one catching up on its own big push, has a
// range far longer than its scope is wide and wants the walk; one grid in
// a busy street, back after a week, wants the seeks.
//
// An entry is filed under the grid its household was in when the entry
// was written (feed_grid): a household that moved into the scope after the
// cursor may have entries past it filed under another grid, which the
// seeks would not find, so then the feed is walked, until the cursor
// passes the move: one walk of the range, the batches each taking up
// where the last stopped. Moves are an office's, and few.
func feedAfter(ctx context.Context, q statedb.Querier, grids []string, origin string, cursor, top uint64, limit int) ([]store.FeedEntry, error) {
	if len(grids) == 0 || top <= cursor {
		return nil, nil
	}
	walk, err := feedWalks(ctx, q, grids, cursor, top)
	if err != nil {
		return nil, err
	}
	return readFeed(ctx, q, grids, origin, cursor, top, limit, walk)
}

// feedWalks is feedAfter's choice of plan: whether to walk the range.
func feedWalks(ctx context.Context, q statedb.Querier, grids []string, cursor, top uint64) (bool, error) {
	if top-cursor <= feedWalkAlways {
		return true, nil
	}
	var households uint64
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM households WHERE grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`)`, anys(grids)...).Scan(&households); err != nil {
		return false, fmt.Errorf("read feed: %w", err)
	}
	if top-cursor < feedWalkPerHousehold*households {
		return true, nil
	}
	return movedInto(ctx, q, grids, cursor)
}

// feedWalkAlways is the feed range below which walking it is cheap whatever
// the scope, and counting the scope's households would cost more than it saves.
const feedWalkAlways = 64

// feedWalkPerHousehold: the feed is walked while its range is shorter than
// this many entries per household of the scope. At worst (none of them in
// the scope) the walk then costs this many lookups per household where the
// seeks would cost a seek per grid; at best it stops after limit entries
// where the seeks would sort every entry of the scope, batch after batch.
const feedWalkPerHousehold = 16

// movedInto reports whether a household moved into one of grids after
// position after. A household's grid changes only by a move (RecordMove),
// and the last move of one now in grids went into one of them: if none
// did after the cursor, every entry past the cursor of a household now in
// grids is filed under one of grids.
func movedInto(ctx context.Context, q statedb.Querier, grids []string, after uint64) (bool, error) {
	var moved bool
	if err := q.QueryRowContext(ctx, movedIntoQuery(len(grids)), append([]any{after}, anys(grids)...)...).Scan(&moved); err != nil {
		return false, fmt.Errorf("read moves: %w", err)
	}
	return moved, nil
}

// movedIntoQuery is movedInto's query for a scope of grids grids.
func movedIntoQuery(grids int) string {
	return `SELECT EXISTS (SELECT 1 FROM household_moves WHERE seq > ? AND to_grid IN (` + sqlitex.InPlaceholders(grids) + `))`
}

// readFeed is feedAfter by the plan given: the walk, or the seeks by grid.
func readFeed(ctx context.Context, q statedb.Querier, grids []string, origin string, cursor, top uint64, limit int, walk bool) ([]store.FeedEntry, error) {
	var args []any
	if !walk {
		args = append(args, anys(grids)...)
	}
	args = append(args, cursor, top, origin)
	args = append(args, anys(grids)...)
	args = append(args, limit)
	rows, err := q.QueryContext(ctx, feedQuery(len(grids), walk), args...)
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

// feedQuery is readFeed's query for a scope of grids grids. A CROSS JOIN
// keeps the order written, and the unary + keeps SQLite from seeking the
// household by (grid, id) once per grid for each entry: one seek by id,
// then the row's grid, is cheaper.
func feedQuery(grids int, walk bool) string {
	in := sqlitex.InPlaceholders(grids)
	from, where := "feed f", ""
	if !walk {
		from, where = "feed f INDEXED BY feed_grid", "f.grid_id IN ("+in+") AND "
	}
	return `SELECT f.seq, f.kind, f.entity_id, f.household_id, f.origin FROM ` + from + `
		CROSS JOIN households h ON h.id = f.household_id
		WHERE ` + where + `f.seq > ? AND f.seq <= ? AND f.origin != ? AND +h.grid_id IN (` + in + `)
		ORDER BY f.seq LIMIT +?`
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
