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

// CreateOrgNode adds a node under a parent one level up.
func (s *Store) CreateOrgNode(ctx context.Context, p store.Principal, n store.OrgNode) (store.OrgNode, error) {
	if err := requireAdmin(p); err != nil {
		return n, err
	}
	if n.Level < store.LevelDistrict || n.Level > store.LevelGrid {
		return n, fmt.Errorf("%w: unknown org level %d", syncengine.ErrInvalid, n.Level)
	}
	if n.Name == "" || len(n.Name) > 256 {
		return n, fmt.Errorf("%w: a node needs a name of 1–256 bytes", syncengine.ErrInvalid)
	}
	n.ID = newID()
	err := s.db.Write(ctx, func(tx *sqlitex.Tx) error {
		var parent any
		if n.Level == store.LevelDistrict {
			if n.ParentID != "" {
				return fmt.Errorf("%w: a district is a root and has no parent", syncengine.ErrInvalid)
			}
			if p.Node != "" {
				return fmt.Errorf("%w: only an installation-wide admin creates districts", syncengine.ErrOutOfScope)
			}
		} else {
			par, err := adminNode(ctx, tx, p, n.ParentID)
			if err != nil {
				return err
			}
			if par.Level != n.Level-1 {
				return fmt.Errorf("%w: a %s goes under a %s, not a %s", syncengine.ErrInvalid, n.Level, n.Level-1, par.Level)
			}
			parent = n.ParentID
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO org_nodes (id, parent_id, level, name) VALUES (?, ?, ?, ?)`, n.ID, parent, n.Level, n.Name)
		return err
	})
	if err != nil {
		return store.OrgNode{}, fmt.Errorf("create org node: %w", err)
	}
	return n, nil
}

// ListOrgNodes lists the nodes of p's subtree, parents before children.
func (s *Store) ListOrgNodes(ctx context.Context, p store.Principal) ([]store.OrgNode, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	query := `SELECT id, parent_id, level, name FROM org_nodes ORDER BY level, name, id`
	args := []any{}
	if p.Node != "" {
		query = `WITH RECURSIVE down(id) AS (SELECT ? UNION ALL SELECT o.id FROM org_nodes o JOIN down ON o.parent_id = down.id)
			SELECT id, parent_id, level, name FROM org_nodes WHERE id IN (SELECT id FROM down) ORDER BY level, name, id`
		args = append(args, p.Node)
	}
	rows, err := s.db.R.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list org nodes: %w", err)
	}
	defer rows.Close()
	var out []store.OrgNode
	for rows.Next() {
		var n store.OrgNode
		var parent sql.NullString
		if err := rows.Scan(&n.ID, &parent, &n.Level, &n.Name); err != nil {
			return nil, err
		}
		n.ParentID = parent.String
		out = append(out, n)
	}
	return out, rows.Err()
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

// CreateWorker adds a worker with their grids.
func (s *Store) CreateWorker(ctx context.Context, p store.Principal, w store.Worker) (store.Worker, error) {
	if w.Name == "" || len(w.Name) > 256 {
		return w, fmt.Errorf("%w: a worker needs a name of 1–256 bytes", syncengine.ErrInvalid)
	}
	w.ID = newID()
	w.GridIDs = dedupe(w.GridIDs)
	err := s.db.Write(ctx, func(tx *sqlitex.Tx) error {
		if err := requireAdmin(p); err != nil {
			return err
		}
		if err := checkGrids(ctx, tx, p, w.GridIDs); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO workers (id, name, role, created_at, home_node) VALUES (?, ?, ?, ?, ?)`, w.ID, w.Name, w.Role, time.Now().Unix(), p.Node); err != nil {
			return err
		}
		return s.setGrids(ctx, tx, w.ID, nil, w.GridIDs)
	})
	if err != nil {
		return store.Worker{}, fmt.Errorf("create worker: %w", err)
	}
	return w, nil
}

// setGrids moves a worker from grid set old to grid set new, recording each
// change in the feed so that devices learn of it in order.
func (s *Store) setGrids(ctx context.Context, tx *sqlitex.Tx, workerID string, old, new []string) error {
	seq, err := s.newSeqAlloc(ctx, tx)
	if err != nil {
		return err
	}
	for _, g := range new {
		if slices.Contains(old, g) {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO worker_grids (worker_id, grid_id) VALUES (?, ?)`, workerID, g); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO scope_events (seq, worker_id, grid_id, added) VALUES (?, ?, ?, 1)`, seq.next(), workerID, g); err != nil {
			return err
		}
	}
	for _, g := range old {
		if slices.Contains(new, g) {
			continue
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM worker_grids WHERE worker_id = ? AND grid_id = ?`, workerID, g); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO scope_events (seq, worker_id, grid_id, added) VALUES (?, ?, ?, 0)`, seq.next(), workerID, g); err != nil {
			return err
		}
	}
	return seq.save(ctx)
}

// ListWorkers lists the workers p manages.
func (s *Store) ListWorkers(ctx context.Context, p store.Principal) ([]store.Worker, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	var out []store.Worker
	err := s.db.Read(ctx, func(tx *sqlitex.Tx) error {
		var err error
		out, err = s.listWorkers(ctx, tx, p)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	return out, nil
}

// listWorkers lists the workers p manages, by name.
func (s *Store) listWorkers(ctx context.Context, q statedb.Querier, p store.Principal) ([]store.Worker, error) {
	ids, err := queryStrings(ctx, q, `SELECT id FROM workers ORDER BY name, id`)
	if err != nil {
		return nil, err
	}
	var out []store.Worker
	for _, id := range ids {
		w, err := s.adminWorker(ctx, q, p, id)
		if errors.Is(err, syncengine.ErrOutOfScope) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// SetWorkerGrids replaces a worker's grids.
func (s *Store) SetWorkerGrids(ctx context.Context, p store.Principal, workerID string, gridIDs []string) (store.Worker, error) {
	var w store.Worker
	gridIDs = dedupe(gridIDs)
	err := s.db.Write(ctx, func(tx *sqlitex.Tx) error {
		old, err := s.adminWorker(ctx, tx, p, workerID)
		if err != nil {
			return err
		}
		if err := checkGrids(ctx, tx, p, gridIDs); err != nil {
			return err
		}
		if err := s.setGrids(ctx, tx, workerID, old.GridIDs, gridIDs); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE workers SET home_node = ? WHERE id = ?`, p.Node, workerID); err != nil {
			return err
		}
		w, err = getWorker(ctx, tx, workerID)
		return err
	})
	if err != nil {
		return store.Worker{}, fmt.Errorf("set worker grids: %w", err)
	}
	return w, nil
}

// MoveHousehold puts a household in another grid. clock issues the write's
// clock after observing the household's newest one, so the move wins over
// every write the server has seen.
func (s *Store) MoveHousehold(ctx context.Context, p store.Principal, householdID, gridID string, clock func(observed syncengine.Clock) syncengine.Clock) (syncengine.Household, error) {
	var merged syncengine.Household
	err := s.db.Write(ctx, func(tx *sqlitex.Tx) error {
		h, ok, err := statedb.GetHousehold(ctx, tx, householdID)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: household %s", syncengine.ErrNotFound, householdID)
		}
		if _, err := adminNode(ctx, tx, p, h.GridID.Value); err != nil {
			return err
		}
		if err := checkGrids(ctx, tx, p, []string{gridID}); err != nil {
			return err
		}
		if h.GridID.Value == gridID {
			merged = h
			return nil
		}
		delta := syncengine.Household{ID: householdID, GridID: syncengine.NewRegister(gridID, clock(h.MaxClock()))}
		merged, _, _, err = statedb.MergeHousehold(ctx, tx, &delta)
		if err != nil {
			return err
		}
		seq, err := s.newSeqAlloc(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO household_moves (seq, household_id, from_grid, to_grid) VALUES (?, ?, ?, ?)`,
			seq.next(), householdID, h.GridID.Value, gridID); err != nil {
			return err
		}
		if err := seq.touch(ctx, kindHousehold, householdID, householdID); err != nil {
			return err
		}
		return seq.save(ctx)
	})
	if err != nil {
		return merged, fmt.Errorf("move household: %w", err)
	}
	return merged, nil
}

func dedupe(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// Import merges rows into households of p's subtree, in one transaction.
func (s *Store) Import(ctx context.Context, p store.Principal, b syncengine.Bundle) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	// Phones refuse a batch with an invalid row: one such row imported
	// would stop every pull of its grid.
	if err := b.Validate(); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	err := s.db.Write(ctx, func(tx *sqlitex.Tx) error {
		seq, err := s.newSeqAlloc(ctx, tx)
		if err != nil {
			return err
		}
		grids := map[string]bool{}
		checkGrid := func(g string) error {
			if grids[g] {
				return nil
			}
			if err := checkGrids(ctx, tx, p, []string{g}); err != nil {
				return err
			}
			grids[g] = true
			return nil
		}
		for i := range b.Households {
			h := &b.Households[i]
			merged, before, changed, err := statedb.MergeHousehold(ctx, tx, h)
			if err != nil {
				return err
			}
			if err := checkGrid(merged.GridID.Value); err != nil {
				return err
			}
			if before != nil && before.GridID.Value != merged.GridID.Value {
				return fmt.Errorf("%w: import may not move household %s; use MoveHousehold", syncengine.ErrInvalid, h.ID)
			}
			if changed {
				if err := seq.touch(ctx, kindHousehold, h.ID, h.ID); err != nil {
					return err
				}
			}
		}
		// Everything else must hang off a household of the subtree.
		inTree := func(hh string) error {
			h, ok, err := statedb.GetHousehold(ctx, tx, hh)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w: household %s", syncengine.ErrNotFound, hh)
			}
			return checkGrid(h.GridID.Value)
		}
		for i := range b.Persons {
			pr := &b.Persons[i]
			if err := inTree(pr.HouseholdID); err != nil {
				return err
			}
			if cur, ok, err := statedb.GetPerson(ctx, tx, pr.ID); err != nil {
				return err
			} else if ok && cur.HouseholdID != pr.HouseholdID {
				return fmt.Errorf("%w: person %s belongs to household %s", syncengine.ErrInvalid, pr.ID, cur.HouseholdID)
			}
			if _, _, changed, err := statedb.MergePerson(ctx, tx, pr); err != nil {
				return err
			} else if changed {
				if err := seq.touch(ctx, kindPerson, pr.ID, pr.HouseholdID); err != nil {
					return err
				}
			}
		}
		for i := range b.Tags {
			t := &b.Tags[i]
			if err := inTree(t.HouseholdID); err != nil {
				return err
			}
			if cur, err := statedb.Tags(ctx, tx, []string{t.AddID}); err != nil {
				return err
			} else if len(cur) > 0 && (cur[0].HouseholdID != t.HouseholdID || cur[0].Category != t.Category) {
				return fmt.Errorf("%w: tag %s is another household's or category's", syncengine.ErrInvalid, t.AddID)
			}
			if _, changed, err := statedb.MergeTag(ctx, tx, t); err != nil {
				return err
			} else if changed {
				if err := seq.touch(ctx, kindTag, t.AddID, t.HouseholdID); err != nil {
					return err
				}
			}
		}
		for i := range b.Visits {
			v := &b.Visits[i]
			for _, hh := range v.HouseholdIDs {
				if err := inTree(hh); err != nil {
					return err
				}
			}
			inserted, err := statedb.InsertVisit(ctx, tx, v)
			if err != nil {
				return err
			}
			for _, hh := range v.HouseholdIDs {
				if inserted {
					if err := seq.touch(ctx, kindVisit, v.ID, hh); err != nil {
						return err
					}
				}
			}
		}
		if len(b.Amendments) > 0 {
			return fmt.Errorf("%w: import does not take amendments", syncengine.ErrInvalid)
		}
		return seq.save(ctx)
	})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}
