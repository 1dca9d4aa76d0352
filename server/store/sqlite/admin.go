package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

func getNode(ctx context.Context, q statedb.Querier, id string) (store.OrgNode, error) {
	var n store.OrgNode
	var parent sql.NullString
	err := q.QueryRowContext(ctx, `SELECT id, parent_id, level, name FROM org_nodes WHERE id = ?`, id).Scan(&n.ID, &parent, &n.Level, &n.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return n, fmt.Errorf("%w: org node %s", syncengine.ErrNotFound, id)
	}
	n.ParentID = parent.String
	return n, err
}

func getWorker(ctx context.Context, q statedb.Querier, id string) (store.Worker, error) {
	w := store.Worker{ID: id}
	err := q.QueryRowContext(ctx, `SELECT name, role FROM workers WHERE id = ?`, id).Scan(&w.Name, &w.Role)
	if errors.Is(err, sql.ErrNoRows) {
		return w, fmt.Errorf("%w: worker %s", syncengine.ErrNotFound, id)
	}
	if err != nil {
		return w, err
	}
	w.GridIDs, err = queryStrings(ctx, q, `SELECT grid_id FROM worker_grids WHERE worker_id = ? ORDER BY grid_id`, id)
	return w, err
}
