package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/doorbook/doorbook/server/store"
)

// Credential reads a credential with its worker's or admin's row, in one
// statement: every request comes through here.
func (r *repo) Credential(ctx context.Context, id string) (store.Credential, bool, error) {
	c := store.Credential{ID: id}
	var (
		workerID, adminID     *string
		revoked               *int64
		workerName, adminName *string
		adminNode             *string
		adminReadOnly         *bool
		seen, expires         *int64
	)
	err := r.q.QueryRow(ctx, `SELECT c.secret_hash, c.worker_id, c.admin_id, c.revoked_at, c.revoked_reason, c.last_seen_at, c.expires_at,
			w.name, a.name, a.node_id, a.read_only
			FROM credentials c LEFT JOIN workers w ON w.id = c.worker_id LEFT JOIN admins a ON a.id = c.admin_id
			WHERE c.id = $1`, id).
		Scan(&c.SecretHash, &workerID, &adminID, &revoked, &c.RevokedReason, &seen, &expires, &workerName, &adminName, &adminNode, &adminReadOnly)
	if noRows(err) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("read credential: %w", err)
	}
	c.WorkerID, c.WorkerName = deref(workerID), deref(workerName)
	if adminID != nil {
		c.Admin = store.Principal{Kind: store.KindAdmin, ID: *adminID, Name: deref(adminName), CredentialID: id,
			Node: deref(adminNode), ReadOnly: adminReadOnly != nil && *adminReadOnly}
	}
	if revoked != nil {
		c.RevokedAt = time.Unix(*revoked, 0).UTC()
	}
	if seen != nil {
		c.LastSeen = time.Unix(*seen, 0).UTC()
	}
	if expires != nil {
		c.ExpiresAt = time.Unix(*expires, 0).UTC()
	}
	return c, true, nil
}

func (r *repo) AdminsNamed(ctx context.Context, name string) ([]store.AdminLogin, error) {
	out, err := queryAll(ctx, r.q, `SELECT id, name, node_id, read_only, password_hash FROM admins WHERE name = $1 ORDER BY id`,
		func(s scanner) (store.AdminLogin, error) {
			a := store.AdminLogin{Admin: store.Principal{Kind: store.KindAdmin}}
			err := s.Scan(&a.Admin.ID, &a.Admin.Name, &a.Admin.Node, &a.Admin.ReadOnly, &a.PasswordHash)
			return a, err
		}, name)
	if err != nil {
		return nil, fmt.Errorf("read admins: %w", err)
	}
	return out, nil
}

func (r *repo) SetAdminPassword(ctx context.Context, adminID, hash string) error {
	if _, err := r.q.Exec(ctx, `UPDATE admins SET password_hash = $1 WHERE id = $2`, hash, adminID); err != nil {
		return fmt.Errorf("set admin password: %w", err)
	}
	return nil
}

func (r *repo) InsertSession(ctx context.Context, s store.Session) error {
	if _, err := r.q.Exec(ctx, `DELETE FROM credentials WHERE expires_at < $1`, s.CreatedAt.Unix()); err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	if _, err := r.q.Exec(ctx, `INSERT INTO credentials (id, admin_id, label, secret_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		s.CredentialID, s.AdminID, "console session", s.SecretHash, s.CreatedAt.Unix(), s.ExpiresAt.Unix()); err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	return nil
}

func (r *repo) EndSession(ctx context.Context, credentialID string) error {
	if _, err := r.q.Exec(ctx, `DELETE FROM credentials WHERE id = $1 AND expires_at IS NOT NULL`, credentialID); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (r *repo) HasAdmin(ctx context.Context) (bool, error) {
	var any bool
	if err := r.q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM admins)`).Scan(&any); err != nil {
		return false, fmt.Errorf("read admins: %w", err)
	}
	return any, nil
}

func (r *repo) InsertAdmin(ctx context.Context, a store.Principal, hash []byte, at time.Time) error {
	if _, err := r.q.Exec(ctx, `INSERT INTO admins (id, name, node_id, created_at, read_only) VALUES ($1, $2, $3, $4, $5)`,
		a.ID, a.Name, a.Node, at.Unix(), a.ReadOnly); err != nil {
		return fmt.Errorf("insert admin: %w", err)
	}
	if _, err := r.q.Exec(ctx, `INSERT INTO credentials (id, admin_id, label, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		a.CredentialID, a.ID, "admin token", hash, at.Unix()); err != nil {
		return fmt.Errorf("insert admin: %w", err)
	}
	return nil
}

func (r *repo) InsertDevice(ctx context.Context, d store.Device, hash []byte, known uint64) error {
	if _, err := r.q.Exec(ctx, `INSERT INTO credentials (id, worker_id, label, secret_hash, created_at, known_cursor) VALUES ($1, $2, $3, $4, $5, $6)`,
		d.ID, d.WorkerID, d.Name, hash, d.EnrolledAt.Unix(), int64(known)); err != nil {
		return fmt.Errorf("insert device: %w", err)
	}
	return nil
}

const deviceQuery = `SELECT id, worker_id, label, created_at, revoked_at, revoked_reason, last_seen_at,
	synced_at, app_version, oldest_unsynced_at, outbox FROM credentials WHERE worker_id IS NOT NULL AND `

func scanDevice(s scanner) (store.Device, error) {
	var d store.Device
	var enrolled int64
	var revoked, seen, synced, oldest *int64
	var outbox int64
	if err := s.Scan(&d.ID, &d.WorkerID, &d.Name, &enrolled, &revoked, &d.RevokedReason, &seen,
		&synced, &d.Sync.AppVersion, &oldest, &outbox); err != nil {
		return d, err
	}
	d.Sync.Outbox = int(outbox)
	if synced != nil {
		d.Sync.At = time.UnixMilli(*synced).UTC()
	}
	if oldest != nil {
		d.Sync.OldestUnsynced = time.UnixMilli(*oldest).UTC()
	}
	d.EnrolledAt = time.Unix(enrolled, 0).UTC()
	if revoked != nil {
		d.RevokedAt = time.Unix(*revoked, 0).UTC()
	}
	if seen != nil {
		d.LastSeen = time.Unix(*seen, 0).UTC()
	}
	return d, nil
}

func (r *repo) Devices(ctx context.Context, workerID string) ([]store.Device, error) {
	ds, err := queryAll(ctx, r.q, deviceQuery+`worker_id = $1 ORDER BY created_at, id`, scanDevice, workerID)
	if err != nil {
		return nil, fmt.Errorf("read devices: %w", err)
	}
	return ds, nil
}

func (r *repo) Device(ctx context.Context, id string) (store.Device, bool, error) {
	ds, err := queryAll(ctx, r.q, deviceQuery+`id = $1`, scanDevice, id)
	if err != nil {
		return store.Device{}, false, fmt.Errorf("read device: %w", err)
	}
	if len(ds) == 0 {
		return store.Device{}, false, nil
	}
	return ds[0], true, nil
}

func (r *repo) RevokeDevice(ctx context.Context, id string, at time.Time, reason string) error {
	if _, err := r.q.Exec(ctx, `UPDATE credentials SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL`,
		at.Unix(), reason, id); err != nil {
		return fmt.Errorf("revoke device: %w", err)
	}
	return nil
}

func (r *repo) RecordDeviceSync(ctx context.Context, id string, s store.DeviceSync) error {
	var oldest *int64
	if !s.OldestUnsynced.IsZero() {
		ms := s.OldestUnsynced.UnixMilli()
		oldest = &ms
	}
	if _, err := r.q.Exec(ctx, `UPDATE credentials SET synced_at = $1, app_version = $2, oldest_unsynced_at = $3, outbox = $4
		WHERE id = $5 AND worker_id IS NOT NULL`, s.At.UnixMilli(), s.AppVersion, oldest, int64(s.Outbox), id); err != nil {
		return fmt.Errorf("record a device's sync: %w", err)
	}
	return nil
}

func (r *repo) SeeCredential(ctx context.Context, id string, at time.Time) error {
	if _, err := r.q.Exec(ctx, `UPDATE credentials SET last_seen_at = greatest(last_seen_at, $1) WHERE id = $2`,
		at.Unix(), id); err != nil {
		return fmt.Errorf("record credential seen: %w", err)
	}
	return nil
}

func (r *repo) CountDevicesSeen(ctx context.Context, since time.Time) (int, error) {
	var n int
	if err := r.q.QueryRow(ctx, `SELECT COUNT(*) FROM credentials WHERE worker_id IS NOT NULL AND last_seen_at >= $1`,
		since.Unix()).Scan(&n); err != nil {
		return 0, fmt.Errorf("count devices seen: %w", err)
	}
	return n, nil
}

func (r *repo) CountDevicesSilent(ctx context.Context, since time.Time) (int, error) {
	var n int
	if err := r.q.QueryRow(ctx, `SELECT COUNT(*) FROM credentials WHERE worker_id IS NOT NULL AND revoked_at IS NULL
		AND coalesce(synced_at, created_at * 1000) < $1`, since.UnixMilli()).Scan(&n); err != nil {
		return 0, fmt.Errorf("count silent devices: %w", err)
	}
	return n, nil
}

func (r *repo) InsertCode(ctx context.Context, c store.EnrollmentCode) error {
	if _, err := r.q.Exec(ctx, `INSERT INTO enrollment_codes (code_hash, worker_id, created_by, expires_at) VALUES ($1, $2, $3, $4)`,
		c.Hash, c.WorkerID, c.CreatedBy, c.Expires.Unix()); err != nil {
		return fmt.Errorf("insert enrolment code: %w", err)
	}
	return nil
}

// Code reads an enrolment code; a write transaction locks it, so that two
// enrolments with one code spend it once (the second reads it used).
func (r *repo) Code(ctx context.Context, hash []byte) (store.EnrollmentCode, bool, error) {
	c := store.EnrollmentCode{Hash: hash}
	var expires int64
	var used *int64
	err := r.q.QueryRow(ctx, `SELECT worker_id, created_by, expires_at, used_at FROM enrollment_codes WHERE code_hash = $1`+r.lock(), hash).
		Scan(&c.WorkerID, &c.CreatedBy, &expires, &used)
	if noRows(err) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("read enrolment code: %w", err)
	}
	c.Expires, c.Used = time.Unix(expires, 0), used != nil
	return c, true, nil
}

func (r *repo) SpendCode(ctx context.Context, hash []byte, at time.Time) error {
	if _, err := r.q.Exec(ctx, `UPDATE enrollment_codes SET used_at = $1 WHERE code_hash = $2`, at.Unix(), hash); err != nil {
		return fmt.Errorf("spend enrolment code: %w", err)
	}
	return nil
}

func (r *repo) CountFailures(ctx context.Context, key string, since time.Time) (ofKey, all int, err error) {
	if err := r.q.QueryRow(ctx, `SELECT COUNT(*) FILTER (WHERE key = $1), COUNT(*) FROM failures WHERE at >= $2`, key, since.UnixMilli()).
		Scan(&ofKey, &all); err != nil {
		return 0, 0, fmt.Errorf("count failures: %w", err)
	}
	return ofKey, all, nil
}

func (r *repo) RecordFailure(ctx context.Context, key string, at, forget time.Time) error {
	if _, err := r.q.Exec(ctx, `DELETE FROM failures WHERE at < $1`, forget.UnixMilli()); err != nil {
		return fmt.Errorf("record failure: %w", err)
	}
	if _, err := r.q.Exec(ctx, `INSERT INTO failures (key, at) VALUES ($1, $2)`, key, at.UnixMilli()); err != nil {
		return fmt.Errorf("record failure: %w", err)
	}
	return nil
}

var _ store.Auth = (*repo)(nil)
