package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

func (t *tx) NodePath(ctx context.Context, id string) ([]string, error) {
	rows, err := t.QueryContext(ctx, `WITH RECURSIVE up(id, parent_id, depth) AS (
			SELECT id, parent_id, 0 FROM org_nodes WHERE id = ?
			UNION ALL SELECT o.id, o.parent_id, up.depth + 1 FROM org_nodes o JOIN up ON o.id = up.parent_id)
		SELECT id FROM up ORDER BY depth`, id)
	if err != nil {
		return nil, fmt.Errorf("read org node %s: %w", id, err)
	}
	defer rows.Close()
	var path []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("read org node %s: %w", id, err)
		}
		path = append(path, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read org node %s: %w", id, err)
	}
	if len(path) == 0 {
		return nil, fmt.Errorf("%w: org node %s", syncengine.ErrNotFound, id)
	}
	return path, nil
}

func (t *tx) Subtree(ctx context.Context, root string) ([]store.OrgNode, error) {
	query := `SELECT id, parent_id, level, name FROM org_nodes ORDER BY level, name, id`
	args := []any{}
	if root != "" {
		query = `WITH RECURSIVE down(id) AS (SELECT ? UNION ALL SELECT o.id FROM org_nodes o JOIN down ON o.parent_id = down.id)
			SELECT id, parent_id, level, name FROM org_nodes WHERE id IN (SELECT id FROM down) ORDER BY level, name, id`
		args = append(args, root)
	}
	rows, err := t.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read org tree: %w", err)
	}
	defer rows.Close()
	var out []store.OrgNode
	for rows.Next() {
		var n store.OrgNode
		var parent sql.NullString
		if err := rows.Scan(&n.ID, &parent, &n.Level, &n.Name); err != nil {
			return nil, fmt.Errorf("read org tree: %w", err)
		}
		n.ParentID = parent.String
		out = append(out, n)
	}
	return out, rows.Err()
}

func (t *tx) InsertNode(ctx context.Context, n store.OrgNode) error {
	var parent any
	if n.ParentID != "" {
		parent = n.ParentID
	}
	if _, err := t.ExecContext(ctx, `INSERT INTO org_nodes (id, parent_id, level, name) VALUES (?, ?, ?, ?)`, n.ID, parent, n.Level, n.Name); err != nil {
		return fmt.Errorf("insert org node: %w", err)
	}
	return nil
}

func (t *tx) WorkerIDs(ctx context.Context) ([]string, error) {
	return queryStrings(ctx, t.Tx, `SELECT id FROM workers ORDER BY name, id`)
}

func (t *tx) InsertWorker(ctx context.Context, w store.Worker, home string, at time.Time) error {
	if _, err := t.ExecContext(ctx, `INSERT INTO workers (id, name, role, created_at, home_node) VALUES (?, ?, ?, ?, ?)`,
		w.ID, w.Name, w.Role, at.Unix(), home); err != nil {
		return fmt.Errorf("insert worker: %w", err)
	}
	return nil
}

func (t *tx) WorkerHome(ctx context.Context, id string) (string, error) {
	var home string
	if err := t.QueryRowContext(ctx, `SELECT home_node FROM workers WHERE id = ?`, id).Scan(&home); err != nil {
		return "", fmt.Errorf("read worker %s: %w", id, err)
	}
	return home, nil
}

func (t *tx) SetWorkerHome(ctx context.Context, id, home string) error {
	if _, err := t.ExecContext(ctx, `UPDATE workers SET home_node = ? WHERE id = ?`, home, id); err != nil {
		return fmt.Errorf("update worker %s: %w", id, err)
	}
	return nil
}

func (t *tx) AddWorkerGrid(ctx context.Context, workerID, grid string) error {
	seq, err := t.positions()
	if err != nil {
		return err
	}
	if _, err := t.ExecContext(ctx, `INSERT INTO worker_grids (worker_id, grid_id) VALUES (?, ?)`, workerID, grid); err != nil {
		return fmt.Errorf("add grid: %w", err)
	}
	if _, err := t.ExecContext(ctx, `INSERT INTO scope_events (seq, worker_id, grid_id, added) VALUES (?, ?, ?, 1)`, seq.next(), workerID, grid); err != nil {
		return fmt.Errorf("add grid: %w", err)
	}
	return nil
}

func (t *tx) RemoveWorkerGrid(ctx context.Context, workerID, grid string) error {
	seq, err := t.positions()
	if err != nil {
		return err
	}
	if _, err := t.ExecContext(ctx, `DELETE FROM worker_grids WHERE worker_id = ? AND grid_id = ?`, workerID, grid); err != nil {
		return fmt.Errorf("remove grid: %w", err)
	}
	if _, err := t.ExecContext(ctx, `INSERT INTO scope_events (seq, worker_id, grid_id, added) VALUES (?, ?, ?, 0)`, seq.next(), workerID, grid); err != nil {
		return fmt.Errorf("remove grid: %w", err)
	}
	return nil
}

func (t *tx) RecordMove(ctx context.Context, household, from, to string) error {
	seq, err := t.positions()
	if err != nil {
		return err
	}
	if _, err := t.ExecContext(ctx, `INSERT INTO household_moves (seq, household_id, from_grid, to_grid) VALUES (?, ?, ?, ?)`,
		seq.next(), household, from, to); err != nil {
		return fmt.Errorf("record move: %w", err)
	}
	// Entries after the move are filed under the grid it went to, even
	// before the household's row says so (see feedAfter).
	seq.knowGrid(household, to)
	return nil
}

func (t *tx) Credential(ctx context.Context, id string) (store.Credential, bool, error) {
	c := store.Credential{ID: id}
	var (
		workerID, adminID     sql.NullString
		revoked               sql.NullInt64
		workerName, adminName sql.NullString
		adminNode             sql.NullString
		adminReadOnly         sql.NullBool
		seen, expires         sql.NullInt64
	)
	// Every request comes through here: one statement, prepared once per
	// connection, not two parsed per call.
	err := t.QueryRowContext(ctx, `SELECT c.secret_hash, c.worker_id, c.admin_id, c.revoked_at, c.revoked_reason, c.last_seen_at, c.expires_at,
			w.name, a.name, a.node_id, a.read_only
			FROM credentials c LEFT JOIN workers w ON w.id = c.worker_id LEFT JOIN admins a ON a.id = c.admin_id
			WHERE c.id = ?`, id).
		Scan(&c.SecretHash, &workerID, &adminID, &revoked, &c.RevokedReason, &seen, &expires, &workerName, &adminName, &adminNode, &adminReadOnly)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("read credential: %w", err)
	}
	c.WorkerID, c.WorkerName = workerID.String, workerName.String
	if adminID.Valid {
		c.Admin = store.Principal{Kind: store.KindAdmin, ID: adminID.String, Name: adminName.String, CredentialID: id,
			Node: adminNode.String, ReadOnly: adminReadOnly.Bool}
	}
	if revoked.Valid {
		c.RevokedAt = time.Unix(revoked.Int64, 0).UTC()
	}
	if seen.Valid {
		c.LastSeen = time.Unix(seen.Int64, 0).UTC()
	}
	if expires.Valid {
		c.ExpiresAt = time.Unix(expires.Int64, 0).UTC()
	}
	return c, true, nil
}

func (t *tx) AdminsNamed(ctx context.Context, name string) ([]store.AdminLogin, error) {
	rows, err := t.QueryContext(ctx, `SELECT id, name, node_id, read_only, password_hash FROM admins WHERE name = ? ORDER BY id`, name)
	if err != nil {
		return nil, fmt.Errorf("read admins: %w", err)
	}
	defer rows.Close()
	var out []store.AdminLogin
	for rows.Next() {
		a := store.AdminLogin{Admin: store.Principal{Kind: store.KindAdmin}}
		if err := rows.Scan(&a.Admin.ID, &a.Admin.Name, &a.Admin.Node, &a.Admin.ReadOnly, &a.PasswordHash); err != nil {
			return nil, fmt.Errorf("read admins: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read admins: %w", err)
	}
	return out, nil
}

func (t *tx) SetAdminPassword(ctx context.Context, adminID, hash string) error {
	if _, err := t.ExecContext(ctx, `UPDATE admins SET password_hash = ? WHERE id = ?`, hash, adminID); err != nil {
		return fmt.Errorf("set admin password: %w", err)
	}
	return nil
}

func (t *tx) InsertSession(ctx context.Context, s store.Session) error {
	if _, err := t.ExecContext(ctx, `DELETE FROM credentials WHERE expires_at < ?`, s.CreatedAt.Unix()); err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	if _, err := t.ExecContext(ctx, `INSERT INTO credentials (id, admin_id, label, secret_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		s.CredentialID, s.AdminID, "console session", s.SecretHash, s.CreatedAt.Unix(), s.ExpiresAt.Unix()); err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	return nil
}

func (t *tx) EndSession(ctx context.Context, credentialID string) error {
	if _, err := t.ExecContext(ctx, `DELETE FROM credentials WHERE id = ? AND expires_at IS NOT NULL`, credentialID); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

func (t *tx) HasAdmin(ctx context.Context) (bool, error) {
	var n int
	if err := t.QueryRowContext(ctx, `SELECT COUNT(*) FROM admins`).Scan(&n); err != nil {
		return false, fmt.Errorf("read admins: %w", err)
	}
	return n > 0, nil
}

func (t *tx) InsertAdmin(ctx context.Context, a store.Principal, hash []byte, at time.Time) error {
	if _, err := t.ExecContext(ctx, `INSERT INTO admins (id, name, node_id, created_at, read_only) VALUES (?, ?, ?, ?, ?)`,
		a.ID, a.Name, a.Node, at.Unix(), a.ReadOnly); err != nil {
		return fmt.Errorf("insert admin: %w", err)
	}
	if _, err := t.ExecContext(ctx, `INSERT INTO credentials (id, admin_id, label, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
		a.CredentialID, a.ID, "admin token", hash, at.Unix()); err != nil {
		return fmt.Errorf("insert admin: %w", err)
	}
	return nil
}

func (t *tx) InsertDevice(ctx context.Context, d store.Device, hash []byte, known uint64) error {
	if _, err := t.ExecContext(ctx, `INSERT INTO credentials (id, worker_id, label, secret_hash, created_at, known_cursor) VALUES (?, ?, ?, ?, ?, ?)`,
		d.ID, d.WorkerID, d.Name, hash, d.EnrolledAt.Unix(), known); err != nil {
		return fmt.Errorf("insert device: %w", err)
	}
	return nil
}

func (t *tx) Devices(ctx context.Context, workerID string) ([]store.Device, error) {
	return devices(ctx, t.Tx, `worker_id = ?`, workerID)
}

func (t *tx) Device(ctx context.Context, id string) (store.Device, bool, error) {
	ds, err := devices(ctx, t.Tx, `id = ?`, id)
	if err != nil || len(ds) == 0 {
		return store.Device{}, false, err
	}
	return ds[0], true, nil
}

func (t *tx) RevokeDevice(ctx context.Context, id string, at time.Time, reason string) error {
	if _, err := t.ExecContext(ctx, `UPDATE credentials SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL`,
		at.Unix(), reason, id); err != nil {
		return fmt.Errorf("revoke device: %w", err)
	}
	return nil
}

func (t *tx) RecordDeviceSync(ctx context.Context, id string, s store.DeviceSync) error {
	var oldest sql.NullInt64
	if !s.OldestUnsynced.IsZero() {
		oldest = sql.NullInt64{Int64: s.OldestUnsynced.UnixMilli(), Valid: true}
	}
	if _, err := t.ExecContext(ctx, `UPDATE credentials SET synced_at = ?, app_version = ?, oldest_unsynced_at = ?, outbox = ?
		WHERE id = ? AND worker_id IS NOT NULL`, s.At.UnixMilli(), s.AppVersion, oldest, s.Outbox, id); err != nil {
		return fmt.Errorf("record a device's sync: %w", err)
	}
	return nil
}

func (t *tx) SeeCredential(ctx context.Context, id string, at time.Time) error {
	if _, err := t.ExecContext(ctx, `UPDATE credentials SET last_seen_at = max(coalesce(last_seen_at, 0), ?) WHERE id = ?`,
		at.Unix(), id); err != nil {
		return fmt.Errorf("record credential seen: %w", err)
	}
	return nil
}

func (t *tx) CountDevicesSeen(ctx context.Context, since time.Time) (int, error) {
	var n int
	if err := t.QueryRowContext(ctx, `SELECT COUNT(*) FROM credentials WHERE worker_id IS NOT NULL AND last_seen_at >= ?`,
		since.Unix()).Scan(&n); err != nil {
		return 0, fmt.Errorf("count devices seen: %w", err)
	}
	return n, nil
}

func (t *tx) CountDevicesSilent(ctx context.Context, since time.Time) (int, error) {
	var n int
	if err := t.QueryRowContext(ctx, `SELECT COUNT(*) FROM credentials WHERE worker_id IS NOT NULL AND revoked_at IS NULL
		AND coalesce(synced_at, created_at * 1000) < ?`, since.UnixMilli()).Scan(&n); err != nil {
		return 0, fmt.Errorf("count silent devices: %w", err)
	}
	return n, nil
}

func (t *tx) InsertCode(ctx context.Context, c store.EnrollmentCode) error {
	if _, err := t.ExecContext(ctx, `INSERT INTO enrollment_codes (code_hash, worker_id, created_by, expires_at) VALUES (?, ?, ?, ?)`,
		c.Hash, c.WorkerID, c.CreatedBy, c.Expires.Unix()); err != nil {
		return fmt.Errorf("insert enrolment code: %w", err)
	}
	return nil
}

func (t *tx) Code(ctx context.Context, hash []byte) (store.EnrollmentCode, bool, error) {
	c := store.EnrollmentCode{Hash: hash}
	var expires int64
	var used sql.NullInt64
	err := t.QueryRowContext(ctx, `SELECT worker_id, created_by, expires_at, used_at FROM enrollment_codes WHERE code_hash = ?`, hash).
		Scan(&c.WorkerID, &c.CreatedBy, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("read enrolment code: %w", err)
	}
	c.Expires, c.Used = time.Unix(expires, 0), used.Valid
	return c, true, nil
}

func (t *tx) SpendCode(ctx context.Context, hash []byte, at time.Time) error {
	if _, err := t.ExecContext(ctx, `UPDATE enrollment_codes SET used_at = ? WHERE code_hash = ?`, at.Unix(), hash); err != nil {
		return fmt.Errorf("spend enrolment code: %w", err)
	}
	return nil
}

func (t *tx) CountFailures(ctx context.Context, key string, since time.Time) (ofKey, all int, err error) {
	if err := t.QueryRowContext(ctx, `SELECT COUNT(*) FILTER (WHERE key = ?), COUNT(*) FROM failures WHERE at >= ?`, key, since.UnixMilli()).
		Scan(&ofKey, &all); err != nil {
		return 0, 0, fmt.Errorf("count failures: %w", err)
	}
	return ofKey, all, nil
}

func (t *tx) RecordFailure(ctx context.Context, key string, at, forget time.Time) error {
	if _, err := t.ExecContext(ctx, `DELETE FROM failures WHERE at < ?`, forget.UnixMilli()); err != nil {
		return fmt.Errorf("record failure: %w", err)
	}
	if _, err := t.ExecContext(ctx, `INSERT INTO failures (key, at) VALUES (?, ?)`, key, at.UnixMilli()); err != nil {
		return fmt.Errorf("record failure: %w", err)
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

func devices(ctx context.Context, q statedb.Querier, where string, arg string) ([]store.Device, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, worker_id, label, created_at, revoked_at, revoked_reason, last_seen_at,
		synced_at, app_version, oldest_unsynced_at, outbox
		FROM credentials WHERE worker_id IS NOT NULL AND `+where+` ORDER BY created_at, id`, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		var d store.Device
		var enrolled int64
		var revoked, seen, synced, oldest sql.NullInt64
		if err := rows.Scan(&d.ID, &d.WorkerID, &d.Name, &enrolled, &revoked, &d.RevokedReason, &seen,
			&synced, &d.Sync.AppVersion, &oldest, &d.Sync.Outbox); err != nil {
			return nil, err
		}
		if synced.Valid {
			d.Sync.At = time.UnixMilli(synced.Int64).UTC()
		}
		if oldest.Valid {
			d.Sync.OldestUnsynced = time.UnixMilli(oldest.Int64).UTC()
		}
		d.EnrolledAt = time.Unix(enrolled, 0).UTC()
		if revoked.Valid {
			d.RevokedAt = time.Unix(revoked.Int64, 0).UTC()
		}
		if seen.Valid {
			d.LastSeen = time.Unix(seen.Int64, 0).UTC()
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (t *tx) DevicePolicy(ctx context.Context) (store.DevicePolicy, error) {
	var p store.DevicePolicy
	err := t.QueryRowContext(ctx, `SELECT lock_after_days, wipe_after_days FROM device_policy WHERE id = 1`).Scan(&p.LockAfterDays, &p.WipeAfterDays)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("read the device policy: %w", err)
	}
	return p, nil
}

func (t *tx) PutDevicePolicy(ctx context.Context, p store.DevicePolicy) error {
	_, err := t.ExecContext(ctx, `INSERT INTO device_policy (id, lock_after_days, wipe_after_days) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET lock_after_days = excluded.lock_after_days, wipe_after_days = excluded.wipe_after_days`,
		p.LockAfterDays, p.WipeAfterDays)
	if err != nil {
		return fmt.Errorf("set the device policy: %w", err)
	}
	return nil
}

func (t *tx) ItemPolicy(ctx context.Context) (store.ItemPolicy, error) {
	var p store.ItemPolicy
	err := t.QueryRowContext(ctx, `SELECT escalation_days FROM item_policy WHERE id = 1`).Scan(&p.EscalationDays)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("read the item policy: %w", err)
	}
	return p, nil
}

func (t *tx) PutItemPolicy(ctx context.Context, p store.ItemPolicy) error {
	_, err := t.ExecContext(ctx, `INSERT INTO item_policy (id, escalation_days) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET escalation_days = excluded.escalation_days`, p.EscalationDays)
	if err != nil {
		return fmt.Errorf("set the item policy: %w", err)
	}
	return nil
}
