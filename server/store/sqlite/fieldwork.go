package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/syncengine"
)

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
