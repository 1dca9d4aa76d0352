package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
	"github.com/jackc/pgx/v5"
)

func (r *repo) Node(ctx context.Context, id string) (store.OrgNode, error) {
	var n store.OrgNode
	var parent *string
	err := r.q.QueryRow(ctx, `SELECT id, parent_id, level, name FROM org_nodes WHERE id = $1`, id).Scan(&n.ID, &parent, &n.Level, &n.Name)
	if noRows(err) {
		return n, fmt.Errorf("%w: org node %s", syncengine.ErrNotFound, id)
	}
	if err != nil {
		return n, fmt.Errorf("read org node %s: %w", id, err)
	}
	if parent != nil {
		n.ParentID = *parent
	}
	return n, nil
}

// Worker reads a worker and their grids in one statement.
func (r *repo) Worker(ctx context.Context, id string) (store.Worker, error) {
	w := store.Worker{ID: id}
	err := r.q.QueryRow(ctx, `SELECT name, role, ARRAY(SELECT grid_id FROM worker_grids WHERE worker_id = $1 ORDER BY grid_id)
		FROM workers WHERE id = $1`, id).Scan(&w.Name, &w.Role, &w.GridIDs)
	if noRows(err) {
		return w, fmt.Errorf("%w: worker %s", syncengine.ErrNotFound, id)
	}
	if err != nil {
		return w, fmt.Errorf("read worker %s: %w", id, err)
	}
	if len(w.GridIDs) == 0 {
		w.GridIDs = nil
	}
	return w, nil
}

func (r *repo) ScopeEvents(ctx context.Context, workerID string, after, upto uint64) ([]store.ScopeEvent, error) {
	out, err := queryAll(ctx, r.q, `SELECT seq, grid_id, added FROM scope_events WHERE worker_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq`,
		func(s scanner) (store.ScopeEvent, error) {
			var e store.ScopeEvent
			var seq int64
			err := s.Scan(&seq, &e.Grid, &e.Added)
			e.Seq = uint64(seq)
			return e, err
		}, workerID, int64(after), int64(upto))
	if err != nil {
		return nil, fmt.Errorf("read scope events: %w", err)
	}
	return out, nil
}

func (r *repo) HouseholdMoves(ctx context.Context, household string, after uint64) ([]store.Move, error) {
	out, err := queryAll(ctx, r.q, `SELECT seq, from_grid, to_grid FROM household_moves WHERE household_id = $1 AND seq > $2 ORDER BY seq`,
		func(s scanner) (store.Move, error) {
			m := store.Move{Household: household}
			var seq int64
			err := s.Scan(&seq, &m.From, &m.To)
			m.Seq = uint64(seq)
			return m, err
		}, household, int64(after))
	if err != nil {
		return nil, fmt.Errorf("read moves: %w", err)
	}
	return out, nil
}

func (r *repo) Moves(ctx context.Context, after, upto uint64) ([]store.Move, error) {
	out, err := queryAll(ctx, r.q, `SELECT m.seq, m.household_id, m.from_grid, m.to_grid, h.grid_id FROM household_moves m
		JOIN households h ON h.id = m.household_id WHERE m.seq > $1 AND m.seq <= $2 ORDER BY m.seq`,
		func(s scanner) (store.Move, error) {
			var m store.Move
			var seq int64
			err := s.Scan(&seq, &m.Household, &m.From, &m.To, &m.Now)
			m.Seq = uint64(seq)
			return m, err
		}, int64(after), int64(upto))
	if err != nil {
		return nil, fmt.Errorf("read moves: %w", err)
	}
	return out, nil
}

func (r *repo) NodePath(ctx context.Context, id string) ([]string, error) {
	path, err := collectStrings(ctx, r.q, `WITH RECURSIVE up(id, parent_id, depth) AS (
			SELECT id, parent_id, 0 FROM org_nodes WHERE id = $1
			UNION ALL SELECT o.id, o.parent_id, up.depth + 1 FROM org_nodes o JOIN up ON o.id = up.parent_id)
		SELECT id FROM up ORDER BY depth`, id)
	if err != nil {
		return nil, fmt.Errorf("read org node %s: %w", id, err)
	}
	if len(path) == 0 {
		return nil, fmt.Errorf("%w: org node %s", syncengine.ErrNotFound, id)
	}
	return path, nil
}

func (r *repo) Subtree(ctx context.Context, root string) ([]store.OrgNode, error) {
	query := `SELECT id, parent_id, level, name FROM org_nodes ORDER BY level, name, id`
	var args []any
	if root != "" {
		query = `WITH RECURSIVE down(id) AS (SELECT $1::text COLLATE "C" UNION ALL SELECT o.id FROM org_nodes o JOIN down ON o.parent_id = down.id)
			SELECT id, parent_id, level, name FROM org_nodes WHERE id IN (SELECT id FROM down) ORDER BY level, name, id`
		args = append(args, root)
	}
	out, err := queryAll(ctx, r.q, query, func(s scanner) (store.OrgNode, error) {
		var n store.OrgNode
		var parent *string
		err := s.Scan(&n.ID, &parent, &n.Level, &n.Name)
		if parent != nil {
			n.ParentID = *parent
		}
		return n, err
	}, args...)
	if err != nil {
		return nil, fmt.Errorf("read org tree: %w", err)
	}
	return out, nil
}

func (r *repo) InsertNode(ctx context.Context, n store.OrgNode) error {
	var parent *string
	if n.ParentID != "" {
		parent = &n.ParentID
	}
	if _, err := r.q.Exec(ctx, `INSERT INTO org_nodes (id, parent_id, level, name) VALUES ($1, $2, $3, $4)`, n.ID, parent, int32(n.Level), n.Name); err != nil {
		return fmt.Errorf("insert org node: %w", err)
	}
	return nil
}

func (r *repo) WorkerIDs(ctx context.Context) ([]string, error) {
	out, err := collectStrings(ctx, r.q, `SELECT id FROM workers ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("read workers: %w", err)
	}
	return out, nil
}

func (r *repo) InsertWorker(ctx context.Context, w store.Worker, home string, at time.Time) error {
	if _, err := r.q.Exec(ctx, `INSERT INTO workers (id, name, role, created_at, home_node) VALUES ($1, $2, $3, $4, $5)`,
		w.ID, w.Name, w.Role, at.Unix(), home); err != nil {
		return fmt.Errorf("insert worker: %w", err)
	}
	return nil
}

func (r *repo) WorkerHome(ctx context.Context, id string) (string, error) {
	var home string
	if err := r.q.QueryRow(ctx, `SELECT home_node FROM workers WHERE id = $1`, id).Scan(&home); err != nil {
		return "", fmt.Errorf("read worker %s: %w", id, err)
	}
	return home, nil
}

func (r *repo) SetWorkerHome(ctx context.Context, id, home string) error {
	if _, err := r.q.Exec(ctx, `UPDATE workers SET home_node = $1 WHERE id = $2`, home, id); err != nil {
		return fmt.Errorf("update worker %s: %w", id, err)
	}
	return nil
}

// AddWorkerGrid gives a worker a grid and records it at the next feed
// position. A grid another transaction gave meanwhile (two admins setting
// the worker's grids at once) is no change, and records none: the events
// replay to the grids the worker holds.
func (r *repo) AddWorkerGrid(ctx context.Context, workerID, grid string) error {
	w, err := r.writer()
	if err != nil {
		return err
	}
	tag, err := r.q.Exec(ctx, `INSERT INTO worker_grids (worker_id, grid_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, workerID, grid)
	if err != nil {
		return fmt.Errorf("add grid: %w", err)
	}
	if tag.RowsAffected() > 0 {
		w.scopeEvent(workerID, grid, true)
	}
	return nil
}

// RemoveWorkerGrid takes a grid from a worker, recorded at the next feed
// position if the worker held it.
func (r *repo) RemoveWorkerGrid(ctx context.Context, workerID, grid string) error {
	w, err := r.writer()
	if err != nil {
		return err
	}
	tag, err := r.q.Exec(ctx, `DELETE FROM worker_grids WHERE worker_id = $1 AND grid_id = $2`, workerID, grid)
	if err != nil {
		return fmt.Errorf("remove grid: %w", err)
	}
	if tag.RowsAffected() > 0 {
		w.scopeEvent(workerID, grid, false)
	}
	return nil
}

// RecordMove records a household's move at the next feed position.
func (r *repo) RecordMove(ctx context.Context, household, from, to string) error {
	w, err := r.writer()
	if err != nil {
		return err
	}
	w.move(household, from, to)
	return nil
}

// WorkersOfGrids lists the workers holding any of grids.
func (r *repo) WorkersOfGrids(ctx context.Context, grids []string) ([]string, error) {
	if len(grids) == 0 {
		return nil, nil
	}
	out, err := collectStrings(ctx, r.q, `SELECT DISTINCT worker_id FROM worker_grids WHERE grid_id = ANY($1)`, grids)
	if err != nil {
		return nil, fmt.Errorf("read workers: %w", err)
	}
	return out, nil
}

var (
	_ store.Scopes = (*repo)(nil)
	_ store.Org    = (*repo)(nil)
)

func (r *repo) DevicePolicy(ctx context.Context) (store.DevicePolicy, error) {
	var p store.DevicePolicy
	err := r.q.QueryRow(ctx, `SELECT lock_after_days, wipe_after_days FROM device_policy WHERE id = 1`).Scan(&p.LockAfterDays, &p.WipeAfterDays)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("read the device policy: %w", err)
	}
	return p, nil
}

func (r *repo) PutDevicePolicy(ctx context.Context, p store.DevicePolicy) error {
	_, err := r.q.Exec(ctx, `INSERT INTO device_policy (id, lock_after_days, wipe_after_days) VALUES (1, $1, $2)
		ON CONFLICT (id) DO UPDATE SET lock_after_days = excluded.lock_after_days, wipe_after_days = excluded.wipe_after_days`,
		int64(p.LockAfterDays), int64(p.WipeAfterDays))
	if err != nil {
		return fmt.Errorf("set the device policy: %w", err)
	}
	return nil
}

func (r *repo) ItemPolicy(ctx context.Context) (store.ItemPolicy, error) {
	var p store.ItemPolicy
	var days int64
	err := r.q.QueryRow(ctx, `SELECT escalation_days FROM item_policy WHERE id = 1`).Scan(&days)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("read the item policy: %w", err)
	}
	p.EscalationDays = uint32(days)
	return p, nil
}

func (r *repo) PutItemPolicy(ctx context.Context, p store.ItemPolicy) error {
	_, err := r.q.Exec(ctx, `INSERT INTO item_policy (id, escalation_days) VALUES (1, $1)
		ON CONFLICT (id) DO UPDATE SET escalation_days = excluded.escalation_days`, int64(p.EscalationDays))
	if err != nil {
		return fmt.Errorf("set the item policy: %w", err)
	}
	return nil
}
