package sqlite

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// A token is "<credential id>.<secret>": the id finds the row, the secret's
// SHA-256 is compared in constant time. Secrets are 256 random bits, so a
// fast hash is enough; the database never holds a usable token.
func newToken(credentialID string) (token string, hash []byte) {
	secret := make([]byte, 32)
	rand.Read(secret)
	s := base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256([]byte(s))
	return credentialID + "." + s, sum[:]
}

var errBadToken = fmt.Errorf("%w: token not valid", syncengine.ErrUnauthenticated)

// Authenticate resolves a bearer token to its principal.
func (s *Store) Authenticate(ctx context.Context, token string) (store.Principal, error) {
	id, secret, ok := strings.Cut(token, ".")
	if !ok || !syncengine.IsID(id) || secret == "" {
		return store.Principal{}, errBadToken
	}
	var (
		hash                  []byte
		workerID, adminID     sql.NullString
		revoked               sql.NullInt64
		reason                string
		workerName, adminName sql.NullString
		adminNode             sql.NullString
		adminReadOnly         sql.NullBool
	)
	// Every request comes through here: one statement, prepared once per
	// connection (a read transaction reuses it), not two parsed per call.
	err := s.db.Read(ctx, func(tx *sqlitex.Tx) error {
		return tx.QueryRowContext(ctx, `SELECT c.secret_hash, c.worker_id, c.admin_id, c.revoked_at, c.revoked_reason,
			w.name, a.name, a.node_id, a.read_only
			FROM credentials c LEFT JOIN workers w ON w.id = c.worker_id LEFT JOIN admins a ON a.id = c.admin_id
			WHERE c.id = ?`, id).
			Scan(&hash, &workerID, &adminID, &revoked, &reason, &workerName, &adminName, &adminNode, &adminReadOnly)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return store.Principal{}, errBadToken
	}
	if err != nil {
		return store.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], hash) != 1 {
		return store.Principal{}, errBadToken
	}
	if revoked.Valid {
		// Only the holder of the secret learns that (and why) it was
		// revoked: the device needs it to wipe its replica.
		return store.Principal{}, &store.RevokedError{DeviceID: id, At: time.Unix(revoked.Int64, 0).UTC(), Reason: reason}
	}
	p := store.Principal{CredentialID: id}
	switch {
	case workerID.Valid && workerName.Valid:
		p.Kind, p.ID, p.Name = store.KindWorker, workerID.String, workerName.String
	case adminID.Valid && adminName.Valid:
		p.Kind, p.ID, p.Name = store.KindAdmin, adminID.String, adminName.String
		p.Node, p.ReadOnly = adminNode.String, adminReadOnly.Bool
	case workerID.Valid || adminID.Valid:
		return store.Principal{}, fmt.Errorf("authenticate: credential %s names a worker or admin that does not exist", id)
	default:
		return store.Principal{}, errBadToken
	}
	return p, nil
}

// CreateAdmin creates an admin and its token.
func (s *Store) CreateAdmin(ctx context.Context, name, node string) (store.Principal, string, error) {
	return s.insertAdmin(ctx, nil, name, node, false)
}

// AddAdmin creates an admin or a leader under an existing admin.
func (s *Store) AddAdmin(ctx context.Context, p store.Principal, name, node string, readOnly bool) (store.Principal, string, error) {
	if err := requireAdmin(p); err != nil {
		return store.Principal{}, "", err
	}
	if strings.TrimSpace(name) == "" {
		return store.Principal{}, "", fmt.Errorf("%w: an admin needs a name", syncengine.ErrInvalid)
	}
	if node == "" && p.Node != "" {
		return store.Principal{}, "", fmt.Errorf("%w: only an installation-wide admin creates another", syncengine.ErrOutOfScope)
	}
	return s.insertAdmin(ctx, &p, name, node, readOnly)
}

func (s *Store) insertAdmin(ctx context.Context, by *store.Principal, name, node string, readOnly bool) (store.Principal, string, error) {
	a := store.Principal{Kind: store.KindAdmin, ID: newID(), Name: name, Node: node, CredentialID: newID(), ReadOnly: readOnly}
	token, hash := newToken(a.CredentialID)
	err := s.db.Write(ctx, func(tx *sqlitex.Tx) error {
		if node != "" {
			var err error
			if by != nil {
				_, err = adminNode(ctx, tx, *by, node)
			} else {
				_, err = getNode(ctx, tx, node)
			}
			if err != nil {
				return err
			}
		}
		now := time.Now().Unix()
		if _, err := tx.ExecContext(ctx, `INSERT INTO admins (id, name, node_id, created_at, read_only) VALUES (?, ?, ?, ?, ?)`,
			a.ID, name, node, now, readOnly); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO credentials (id, admin_id, label, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
			a.CredentialID, a.ID, "admin token", hash, now)
		return err
	})
	if err != nil {
		return store.Principal{}, "", fmt.Errorf("create admin: %w", err)
	}
	return a, token, nil
}

// ListDevices lists the devices of the workers p manages.
func (s *Store) ListDevices(ctx context.Context, p store.Principal, workerID string) ([]store.Device, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	var out []store.Device
	err := s.db.Read(ctx, func(tx *sqlitex.Tx) error {
		var workers []string
		if workerID != "" {
			if _, err := s.adminWorker(ctx, tx, p, workerID); err != nil {
				return err
			}
			workers = []string{workerID}
		} else {
			ws, err := s.listWorkers(ctx, tx, p)
			if err != nil {
				return err
			}
			for _, w := range ws {
				workers = append(workers, w.ID)
			}
		}
		for _, w := range workers {
			ds, err := devices(ctx, tx, `worker_id = ?`, w)
			if err != nil {
				return err
			}
			out = append(out, ds...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

func devices(ctx context.Context, q statedb.Querier, where string, arg string) ([]store.Device, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, worker_id, label, created_at, revoked_at, revoked_reason
		FROM credentials WHERE worker_id IS NOT NULL AND `+where+` ORDER BY created_at, id`, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		var d store.Device
		var enrolled int64
		var revoked sql.NullInt64
		if err := rows.Scan(&d.ID, &d.WorkerID, &d.Name, &enrolled, &revoked, &d.RevokedReason); err != nil {
			return nil, err
		}
		d.EnrolledAt = time.Unix(enrolled, 0).UTC()
		if revoked.Valid {
			d.RevokedAt = time.Unix(revoked.Int64, 0).UTC()
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// RevokeDevice revokes a device of a worker p manages.
func (s *Store) RevokeDevice(ctx context.Context, p store.Principal, deviceID, reason string, now time.Time) (store.Device, error) {
	var d store.Device
	err := s.db.Write(ctx, func(tx *sqlitex.Tx) error {
		if err := requireAdmin(p); err != nil {
			return err
		}
		ds, err := devices(ctx, tx, `id = ?`, deviceID)
		if err != nil {
			return err
		}
		if len(ds) == 0 {
			return fmt.Errorf("%w: device %s", syncengine.ErrNotFound, deviceID)
		}
		if _, err := s.adminWorker(ctx, tx, p, ds[0].WorkerID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE credentials SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL`,
			now.Unix(), reason, deviceID); err != nil {
			return err
		}
		ds, err = devices(ctx, tx, `id = ?`, deviceID)
		if err == nil {
			d = ds[0]
		}
		return err
	})
	if err != nil {
		return store.Device{}, fmt.Errorf("revoke device: %w", err)
	}
	return d, nil
}

// HasAdmin reports whether any admin exists.
func (s *Store) HasAdmin(ctx context.Context) (bool, error) {
	var n int
	err := s.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM admins`).Scan(&n)
	return n > 0, err
}

// codeAlphabet leaves out letters and digits that are easy to confuse when a
// code is read out over the phone (0/O, 1/I).
const codeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

func newCode() string {
	b := make([]byte, 12)
	rand.Read(b)
	var sb strings.Builder
	for i, c := range b {
		if i > 0 && i%4 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(codeAlphabet[int(c)%len(codeAlphabet)])
	}
	return sb.String()
}

func codeHash(code string) []byte {
	norm := strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToUpper(strings.TrimSpace(code)))
	sum := sha256.Sum256([]byte(norm))
	return sum[:]
}

// CreateEnrollmentCode issues a one-time code for a worker's new device.
func (s *Store) CreateEnrollmentCode(ctx context.Context, p store.Principal, workerID string, expires time.Time) (string, error) {
	code := newCode()
	err := s.db.Write(ctx, func(tx *sqlitex.Tx) error {
		if _, err := s.adminWorker(ctx, tx, p, workerID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO enrollment_codes (code_hash, worker_id, created_by, expires_at) VALUES (?, ?, ?, ?)`,
			codeHash(code), workerID, p.ID, expires.Unix())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("create enrolment code: %w", err)
	}
	return code, nil
}

// Enroll spends a one-time code and creates a device with its token.
func (s *Store) Enroll(ctx context.Context, code, deviceName string, now time.Time) (store.Enrollment, error) {
	var e store.Enrollment
	err := s.db.Write(ctx, func(tx *sqlitex.Tx) error {
		var workerID string
		var expires int64
		var used sql.NullInt64
		h := codeHash(code)
		err := tx.QueryRowContext(ctx, `SELECT worker_id, expires_at, used_at FROM enrollment_codes WHERE code_hash = ?`, h).
			Scan(&workerID, &expires, &used)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && (used.Valid || now.Unix() >= expires)) {
			return fmt.Errorf("%w: enrolment code not valid (unknown, used or expired)", syncengine.ErrUnauthenticated)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE enrollment_codes SET used_at = ? WHERE code_hash = ?`, now.Unix(), h); err != nil {
			return err
		}
		e.DeviceID = newID()
		var hash []byte
		e.Token, hash = newToken(e.DeviceID)
		// A new device never held what left the worker's scope before it
		// existed: its grace for such writes starts at the feed's head.
		top, err := head(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO credentials (id, worker_id, label, secret_hash, created_at, known_cursor) VALUES (?, ?, ?, ?, ?, ?)`,
			e.DeviceID, workerID, deviceName, hash, now.Unix(), top); err != nil {
			return err
		}
		e.Scope, err = scope(ctx, tx, workerID)
		return err
	})
	if err != nil {
		return store.Enrollment{}, fmt.Errorf("enroll: %w", err)
	}
	return e, nil
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }
