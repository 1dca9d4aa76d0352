package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

func requireAdmin(p store.Principal) error {
	if p.Kind != store.KindAdmin {
		return fmt.Errorf("%w: admins only", syncengine.ErrOutOfScope)
	}
	return nil
}

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

// inSubtree reports whether node lies under root (or is root). Every node is
// under "", the root of an installation-wide admin.
func inSubtree(ctx context.Context, q statedb.Querier, root, node string) (bool, error) {
	if root == "" {
		return true, nil
	}
	var n int
	err := q.QueryRowContext(ctx, `WITH RECURSIVE up(id, parent_id) AS (
			SELECT id, parent_id FROM org_nodes WHERE id = ?
			UNION ALL SELECT o.id, o.parent_id FROM org_nodes o JOIN up ON o.id = up.parent_id)
		SELECT COUNT(*) FROM up WHERE id = ?`, node, root).Scan(&n)
	return n > 0, err
}

// adminNode checks that node exists and lies in p's subtree.
func adminNode(ctx context.Context, q statedb.Querier, p store.Principal, id string) (store.OrgNode, error) {
	if err := requireAdmin(p); err != nil {
		return store.OrgNode{}, err
	}
	n, err := getNode(ctx, q, id)
	if err != nil {
		return n, err
	}
	ok, err := inSubtree(ctx, q, p.Node, id)
	if err != nil {
		return n, err
	}
	if !ok {
		return n, fmt.Errorf("%w: org node %s is outside your subtree", syncengine.ErrOutOfScope, id)
	}
	return n, nil
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

// adminWorker loads a worker that p may manage: one whose grids all lie in
// p's subtree.
func (s *Store) adminWorker(ctx context.Context, q statedb.Querier, p store.Principal, id string) (store.Worker, error) {
	if err := requireAdmin(p); err != nil {
		return store.Worker{}, err
	}
	w, err := getWorker(ctx, q, id)
	if err != nil {
		return w, err
	}
	if len(w.GridIDs) == 0 {
		var home string
		if err := q.QueryRowContext(ctx, `SELECT home_node FROM workers WHERE id = ?`, id).Scan(&home); err != nil {
			return w, err
		}
		// A worker with no grids belongs to no street: the subtree that
		// last gave them grids keeps them (every admin would otherwise).
		if ok, err := inSubtree(ctx, q, p.Node, home); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("%w: worker %s has no grids and was last managed outside your subtree", syncengine.ErrOutOfScope, id)
			}
			return w, err
		}
	}
	for _, g := range w.GridIDs {
		if _, err := adminNode(ctx, q, p, g); err != nil {
			return w, fmt.Errorf("worker %s: %w", id, err)
		}
	}
	return w, nil
}

// checkGrids checks that every id is a grid in p's subtree.
func checkGrids(ctx context.Context, q statedb.Querier, p store.Principal, ids []string) error {
	for _, g := range ids {
		n, err := adminNode(ctx, q, p, g)
		if err != nil {
			return err
		}
		if n.Level != store.LevelGrid {
			return fmt.Errorf("%w: %s is a %s, not a grid", syncengine.ErrInvalid, g, n.Level)
		}
	}
	return nil
}

func dedupe(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}
