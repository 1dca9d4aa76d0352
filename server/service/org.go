package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/doorbook/doorbook/server/authz"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// node reads a node and decides whether p may take action a on it.
func node(ctx context.Context, tx store.Tx, p store.Principal, a authz.Action, id string) (store.OrgNode, error) {
	if err := authz.Decide(p, a, authz.Anywhere); err != nil {
		return store.OrgNode{}, err
	}
	path, err := tx.NodePath(ctx, id)
	if err != nil {
		return store.OrgNode{}, err
	}
	if err := authz.Decide(p, a, authz.Node(path)); err != nil {
		return store.OrgNode{}, err
	}
	return tx.Node(ctx, id)
}

// checkGrids checks that every id is a grid p may act on with a.
func checkGrids(ctx context.Context, tx store.Tx, p store.Principal, a authz.Action, ids []string) error {
	for _, g := range ids {
		n, err := node(ctx, tx, p, a, g)
		if err != nil {
			return err
		}
		if n.Level != store.LevelGrid {
			return fmt.Errorf("%w: %s is a %s, not a grid", syncengine.ErrInvalid, g, n.Level)
		}
	}
	return nil
}

// CreateOrgNode adds a node under a parent one level up.
func (s *Service) CreateOrgNode(ctx context.Context, p store.Principal, n store.OrgNode) (store.OrgNode, error) {
	if err := authz.Decide(p, authz.ManageOrg, authz.Anywhere); err != nil {
		return n, err
	}
	if n.Level < store.LevelDistrict || n.Level > store.LevelGrid {
		return n, fmt.Errorf("%w: unknown org level %d", syncengine.ErrInvalid, n.Level)
	}
	if n.Name == "" || len(n.Name) > 256 {
		return n, fmt.Errorf("%w: a node needs a name of 1–256 bytes", syncengine.ErrInvalid)
	}
	n.ID = newID()
	err := s.db.Update(ctx, func(tx store.Tx) error {
		if n.Level == store.LevelDistrict {
			if n.ParentID != "" {
				return fmt.Errorf("%w: a district is a root and has no parent", syncengine.ErrInvalid)
			}
			if err := authz.Decide(p, authz.ManageOrg, authz.Installation); err != nil {
				return err
			}
		} else {
			par, err := node(ctx, tx, p, authz.ManageOrg, n.ParentID)
			if err != nil {
				return err
			}
			if par.Level != n.Level-1 {
				return fmt.Errorf("%w: a %s goes under a %s, not a %s", syncengine.ErrInvalid, n.Level, n.Level-1, par.Level)
			}
		}
		return tx.InsertNode(ctx, n)
	})
	if err != nil {
		return store.OrgNode{}, fmt.Errorf("create org node: %w", err)
	}
	return n, nil
}

// ListOrgNodes lists the nodes of p's subtree, parents before children.
func (s *Service) ListOrgNodes(ctx context.Context, p store.Principal) ([]store.OrgNode, error) {
	if err := authz.Decide(p, authz.ReadOrg, authz.Anywhere); err != nil {
		return nil, err
	}
	var out []store.OrgNode
	err := s.db.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.Subtree(ctx, p.Node)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list org nodes: %w", err)
	}
	return out, nil
}

// managedWorker loads a worker on whom p may take action a: one whose
// grids all lie where p may act.
func managedWorker(ctx context.Context, tx store.Tx, p store.Principal, a authz.Action, id string) (store.Worker, error) {
	if err := authz.Decide(p, a, authz.Anywhere); err != nil {
		return store.Worker{}, err
	}
	w, err := tx.Worker(ctx, id)
	if err != nil {
		return w, err
	}
	if len(w.GridIDs) == 0 {
		// A worker with no grids belongs to no street: the subtree that
		// last gave them grids keeps them (every admin would otherwise).
		home, err := tx.WorkerHome(ctx, id)
		if err != nil {
			return w, err
		}
		var path []string
		if home != "" {
			if path, err = tx.NodePath(ctx, home); err != nil {
				return w, err
			}
		}
		if authz.Decide(p, a, authz.Node(path)) != nil {
			return w, fmt.Errorf("%w: worker %s has no grids and was last managed outside your subtree", syncengine.ErrOutOfScope, id)
		}
	}
	for _, g := range w.GridIDs {
		if _, err := node(ctx, tx, p, a, g); err != nil {
			return w, fmt.Errorf("worker %s: %w", id, err)
		}
	}
	return w, nil
}

// managedWorkers lists the workers p manages, by name.
func managedWorkers(ctx context.Context, tx store.Tx, p store.Principal) ([]store.Worker, error) {
	ids, err := tx.WorkerIDs(ctx)
	if err != nil {
		return nil, err
	}
	var out []store.Worker
	for _, id := range ids {
		w, err := managedWorker(ctx, tx, p, authz.ReadOrg, id)
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

// CreateWorker adds a worker with their grids.
func (s *Service) CreateWorker(ctx context.Context, p store.Principal, w store.Worker) (store.Worker, error) {
	if w.Name == "" || len(w.Name) > 256 {
		return w, fmt.Errorf("%w: a worker needs a name of 1–256 bytes", syncengine.ErrInvalid)
	}
	w.ID = newID()
	w.GridIDs = dedupe(w.GridIDs)
	err := s.db.Update(ctx, func(tx store.Tx) error {
		if err := authz.Decide(p, authz.ManageOrg, authz.Anywhere); err != nil {
			return err
		}
		if err := checkGrids(ctx, tx, p, authz.ManageOrg, w.GridIDs); err != nil {
			return err
		}
		if err := tx.InsertWorker(ctx, store.Worker{ID: w.ID, Name: w.Name, Role: w.Role}, p.Node, time.Now()); err != nil {
			return err
		}
		return setGrids(ctx, tx, w.ID, nil, w.GridIDs)
	})
	if err != nil {
		return store.Worker{}, fmt.Errorf("create worker: %w", err)
	}
	return w, nil
}

// setGrids moves a worker from grid set old to grid set new; each change
// takes a feed position, so that devices learn of them in order.
func setGrids(ctx context.Context, tx store.Tx, workerID string, old, new []string) error {
	for _, g := range new {
		if !slices.Contains(old, g) {
			if err := tx.AddWorkerGrid(ctx, workerID, g); err != nil {
				return err
			}
		}
	}
	for _, g := range old {
		if !slices.Contains(new, g) {
			if err := tx.RemoveWorkerGrid(ctx, workerID, g); err != nil {
				return err
			}
		}
	}
	return nil
}

// ListWorkers lists the workers p manages.
func (s *Service) ListWorkers(ctx context.Context, p store.Principal) ([]store.Worker, error) {
	if err := authz.Decide(p, authz.ReadOrg, authz.Anywhere); err != nil {
		return nil, err
	}
	var out []store.Worker
	err := s.db.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = managedWorkers(ctx, tx, p)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", err)
	}
	return out, nil
}

// SetWorkerGrids replaces the grids of a worker p manages.
func (s *Service) SetWorkerGrids(ctx context.Context, p store.Principal, workerID string, gridIDs []string) (store.Worker, error) {
	var w store.Worker
	gridIDs = dedupe(gridIDs)
	err := s.db.Update(ctx, func(tx store.Tx) error {
		old, err := managedWorker(ctx, tx, p, authz.ManageOrg, workerID)
		if err != nil {
			return err
		}
		if err := checkGrids(ctx, tx, p, authz.ManageOrg, gridIDs); err != nil {
			return err
		}
		if err := setGrids(ctx, tx, workerID, old.GridIDs, gridIDs); err != nil {
			return err
		}
		if err := tx.SetWorkerHome(ctx, workerID, p.Node); err != nil {
			return err
		}
		w, err = tx.Worker(ctx, workerID)
		return err
	})
	if err != nil {
		return store.Worker{}, fmt.Errorf("set worker grids: %w", err)
	}
	return w, nil
}

// MoveHousehold puts a household of p's subtree in another grid of it.
// clock issues the write's clock after observing the household's newest
// one, so the move wins over every write the server has seen.
func (s *Service) MoveHousehold(ctx context.Context, p store.Principal, householdID, gridID string, clock func(observed syncengine.Clock) syncengine.Clock) (syncengine.Household, error) {
	var merged syncengine.Household
	err := s.db.Update(ctx, func(tx store.Tx) error {
		h, ok, err := tx.Household(ctx, householdID)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: household %s", syncengine.ErrNotFound, householdID)
		}
		if _, err := node(ctx, tx, p, authz.ManageOrg, h.GridID.Value); err != nil {
			return err
		}
		if err := checkGrids(ctx, tx, p, authz.ManageOrg, []string{gridID}); err != nil {
			return err
		}
		merged = h
		if h.GridID.Value == gridID {
			return nil
		}
		merged.Merge(syncengine.Household{ID: householdID, GridID: syncengine.NewRegister(gridID, clock(h.MaxClock()))})
		if err := tx.PutHousehold(ctx, &merged); err != nil {
			return err
		}
		if err := tx.RecordMove(ctx, householdID, h.GridID.Value, gridID); err != nil {
			return err
		}
		return tx.Touch(ctx, store.EntityHousehold, householdID, householdID, "")
	})
	if err != nil {
		return merged, fmt.Errorf("move household: %w", err)
	}
	return merged, nil
}
