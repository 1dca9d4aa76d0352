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
		hash              []byte
		workerID, adminID sql.NullString
		revoked           sql.NullInt64
	)
	err := s.db.R.QueryRowContext(ctx, `SELECT secret_hash, worker_id, admin_id, revoked_at FROM credentials WHERE id = ?`, id).
		Scan(&hash, &workerID, &adminID, &revoked)
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
		return store.Principal{}, fmt.Errorf("%w: device revoked", syncengine.ErrUnauthenticated)
	}
	p := store.Principal{CredentialID: id}
	switch {
	case workerID.Valid:
		p.Kind, p.ID = store.KindWorker, workerID.String
		err = s.db.R.QueryRowContext(ctx, `SELECT name FROM workers WHERE id = ?`, p.ID).Scan(&p.Name)
	case adminID.Valid:
		p.Kind, p.ID = store.KindAdmin, adminID.String
		err = s.db.R.QueryRowContext(ctx, `SELECT name, node_id FROM admins WHERE id = ?`, p.ID).Scan(&p.Name, &p.Node)
	default:
		return store.Principal{}, errBadToken
	}
	if err != nil {
		return store.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	return p, nil
}

// CreateAdmin creates an admin and its token.
func (s *Store) CreateAdmin(ctx context.Context, name, node string) (store.Principal, string, error) {
	p := store.Principal{Kind: store.KindAdmin, ID: newID(), Name: name, Node: node, CredentialID: newID()}
	token, hash := newToken(p.CredentialID)
	err := s.db.Write(ctx, func(tx *sqlitex.Tx) error {
		if node != "" {
			if _, err := getNode(ctx, tx, node); err != nil {
				return err
			}
		}
		now := time.Now().Unix()
		if _, err := tx.ExecContext(ctx, `INSERT INTO admins (id, name, node_id, created_at) VALUES (?, ?, ?, ?)`, p.ID, name, node, now); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO credentials (id, admin_id, label, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
			p.CredentialID, p.ID, "admin token", hash, now)
		return err
	})
	if err != nil {
		return store.Principal{}, "", fmt.Errorf("create admin: %w", err)
	}
	return p, token, nil
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
