package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/doorbook/doorbook/server/authz"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

func newID() string { return uuid.Must(uuid.NewV7()).String() }

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

// SeenResolution is how precisely a credential's last call is recorded:
// Authenticate writes it when the one recorded is older than this, so a
// phone syncing all day costs one small write per SeenResolution, not one
// per call, on whichever server process it reaches.
const SeenResolution = 10 * time.Minute

// Authenticate resolves a bearer token to its principal, and records that
// its credential was seen (see SeenResolution).
func (s *Service) Authenticate(ctx context.Context, token string) (store.Principal, error) {
	id, secret, ok := strings.Cut(token, ".")
	if !ok || !syncengine.IsID(id) || secret == "" {
		return store.Principal{}, errBadToken
	}
	var p store.Principal
	var lastSeen time.Time
	err := s.db.View(ctx, func(tx store.Tx) error {
		c, found, err := tx.Credential(ctx, id)
		if err != nil {
			return err
		}
		lastSeen = c.LastSeen
		if !found {
			return errBadToken
		}
		sum := sha256.Sum256([]byte(secret))
		if subtle.ConstantTimeCompare(sum[:], c.SecretHash) != 1 {
			return errBadToken
		}
		if !c.ExpiresAt.IsZero() && !s.now().Before(c.ExpiresAt) {
			return errBadToken // a session that ended
		}
		if !c.RevokedAt.IsZero() {
			// Only the holder of the secret learns that (and why) it was
			// revoked: the device needs it to wipe its replica.
			return &store.RevokedError{DeviceID: id, At: c.RevokedAt, Reason: c.RevokedReason}
		}
		switch {
		case c.WorkerID != "" && c.WorkerName != "":
			p = store.Principal{Kind: store.KindWorker, ID: c.WorkerID, Name: c.WorkerName, CredentialID: id}
		case c.Admin.ID != "" && c.Admin.Name != "":
			p = c.Admin
			if p.Node != "" {
				if p.Path, err = tx.NodePath(ctx, p.Node); err != nil {
					return err
				}
			}
		case c.WorkerID != "" || c.Admin.ID != "":
			return fmt.Errorf("authenticate: credential %s names a worker or admin that does not exist", id)
		default:
			return errBadToken
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	if now := s.now(); now.Sub(lastSeen) >= SeenResolution {
		// Being seen is bookkeeping, not the caller's business: a store that
		// cannot write now (full, read-only) still serves the call, and the
		// next call tries again.
		_ = s.db.Update(ctx, func(tx store.Tx) error { return tx.SeeCredential(ctx, id, now) })
	}
	return p, nil
}

// DevicesSeenSince counts the devices that called the server since t (to
// within SeenResolution), for the metrics.
func (s *Service) DevicesSeenSince(ctx context.Context, t time.Time) (int, error) {
	var n int
	err := s.db.View(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.CountDevicesSeen(ctx, t)
		return err
	})
	return n, err
}

// DevicesSilentSince counts the devices, not revoked, that have not
// finished a sync since t, for the metrics.
func (s *Service) DevicesSilentSince(ctx context.Context, t time.Time) (int, error) {
	var n int
	err := s.db.View(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.CountDevicesSilent(ctx, t)
		return err
	})
	return n, err
}

// HasAdmin reports whether any admin exists.
func (s *Service) HasAdmin(ctx context.Context) (bool, error) {
	var ok bool
	err := s.db.View(ctx, func(tx store.Tx) error {
		var err error
		ok, err = tx.HasAdmin(ctx)
		return err
	})
	return ok, err
}

// CreateAdmin creates an admin and its token: the first admin of an
// installation, made by whoever runs the server.
func (s *Service) CreateAdmin(ctx context.Context, name, node string) (store.Principal, string, error) {
	return s.insertAdmin(ctx, nil, name, node, false)
}

// AddAdmin creates an admin or a leader over a node of p's subtree.
func (s *Service) AddAdmin(ctx context.Context, p store.Principal, name, node string, readOnly bool) (store.Principal, string, error) {
	if err := authz.Decide(p, authz.AddAdmin, authz.Anywhere); err != nil {
		return store.Principal{}, "", err
	}
	if strings.TrimSpace(name) == "" {
		return store.Principal{}, "", fmt.Errorf("%w: an admin needs a name", syncengine.ErrInvalid)
	}
	return s.insertAdmin(ctx, &p, name, node, readOnly)
}

func (s *Service) insertAdmin(ctx context.Context, by *store.Principal, name, node string, readOnly bool) (store.Principal, string, error) {
	a := store.Principal{Kind: store.KindAdmin, ID: newID(), Name: name, Node: node, CredentialID: newID(), ReadOnly: readOnly}
	token, hash := newToken(a.CredentialID)
	err := s.db.Update(ctx, func(tx store.Tx) error {
		var res authz.Resource
		if node != "" {
			var err error
			if a.Path, err = tx.NodePath(ctx, node); err != nil {
				return err
			}
			res = authz.Node(a.Path)
		}
		if by != nil {
			if err := authz.Decide(*by, authz.AddAdmin, res); err != nil {
				return err
			}
		}
		return tx.InsertAdmin(ctx, a, hash, time.Now())
	})
	if err != nil {
		return store.Principal{}, "", fmt.Errorf("create admin: %w", err)
	}
	return a, token, nil
}

// ListDevices lists the devices of the workers p manages (one worker's if
// workerID is set).
func (s *Service) ListDevices(ctx context.Context, p store.Principal, workerID string) ([]store.Device, error) {
	if err := authz.Decide(p, authz.ReadOrg, authz.Anywhere); err != nil {
		return nil, err
	}
	var out []store.Device
	err := s.db.View(ctx, func(tx store.Tx) error {
		var workers []string
		if workerID != "" {
			if _, err := managedWorker(ctx, tx, p, authz.ReadOrg, workerID); err != nil {
				return err
			}
			workers = []string{workerID}
		} else {
			ws, err := managedWorkers(ctx, tx, p)
			if err != nil {
				return err
			}
			for _, w := range ws {
				workers = append(workers, w.ID)
			}
		}
		for _, w := range workers {
			ds, err := tx.Devices(ctx, w)
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

// RevokeDevice revokes a device of a worker p manages: its token stops
// working at once. Revoking a revoked device keeps the first record.
func (s *Service) RevokeDevice(ctx context.Context, p store.Principal, deviceID, reason string, now time.Time) (store.Device, error) {
	var d store.Device
	err := s.db.Update(ctx, func(tx store.Tx) error {
		if err := authz.Decide(p, authz.ManageDevices, authz.Anywhere); err != nil {
			return err
		}
		found, ok, err := tx.Device(ctx, deviceID)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: device %s", syncengine.ErrNotFound, deviceID)
		}
		if _, err := managedWorker(ctx, tx, p, authz.ManageDevices, found.WorkerID); err != nil {
			return err
		}
		if err := tx.RevokeDevice(ctx, deviceID, now, reason); err != nil {
			return err
		}
		d, _, err = tx.Device(ctx, deviceID)
		return err
	})
	if err != nil {
		return store.Device{}, fmt.Errorf("revoke device: %w", err)
	}
	return d, nil
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

// CreateEnrollmentCode issues a one-time code for a new device of a worker
// p manages.
func (s *Service) CreateEnrollmentCode(ctx context.Context, p store.Principal, workerID string, expires time.Time) (string, error) {
	code := newCode()
	err := s.db.Update(ctx, func(tx store.Tx) error {
		if _, err := managedWorker(ctx, tx, p, authz.ManageOrg, workerID); err != nil {
			return err
		}
		return tx.InsertCode(ctx, store.EnrollmentCode{Hash: codeHash(code), WorkerID: workerID, CreatedBy: p.ID, Expires: expires})
	})
	if err != nil {
		return "", fmt.Errorf("create enrolment code: %w", err)
	}
	return code, nil
}

// Enroll spends a one-time code and creates a device with its token.
func (s *Service) Enroll(ctx context.Context, code, deviceName string, now time.Time) (store.Enrollment, error) {
	var e store.Enrollment
	err := s.db.Update(ctx, func(tx store.Tx) error {
		h := codeHash(code)
		c, ok, err := tx.Code(ctx, h)
		if err != nil {
			return err
		}
		if !ok || c.Used || now.Unix() >= c.Expires.Unix() {
			return fmt.Errorf("%w: enrolment code not valid (unknown, used or expired)", syncengine.ErrUnauthenticated)
		}
		if err := tx.SpendCode(ctx, h, now); err != nil {
			return err
		}
		e.DeviceID = newID()
		var hash []byte
		e.Token, hash = newToken(e.DeviceID)
		// A new device never held what left the worker's scope before it
		// existed: its grace for such writes starts at the feed's head.
		top, err := tx.Head(ctx)
		if err != nil {
			return err
		}
		if err := tx.InsertDevice(ctx, store.Device{ID: e.DeviceID, WorkerID: c.WorkerID, Name: deviceName, EnrolledAt: now}, hash, top); err != nil {
			return err
		}
		e.Scope, err = scope(ctx, tx, c.WorkerID)
		return err
	})
	if err != nil {
		return store.Enrollment{}, fmt.Errorf("enroll: %w", err)
	}
	return e, nil
}

// Failures counts the failures of a throttled action recorded since t, by
// every server process on this database: of key, and of every key.
func (s *Service) Failures(ctx context.Context, key string, since time.Time) (ofKey, all int, err error) {
	err = s.db.View(ctx, func(tx store.Tx) error {
		ofKey, all, err = tx.CountFailures(ctx, key, since)
		return err
	})
	return ofKey, all, err
}

// RecordFailure records a failure of key at at, forgetting those before
// forget.
func (s *Service) RecordFailure(ctx context.Context, key string, at, forget time.Time) error {
	return s.db.Update(ctx, func(tx store.Tx) error { return tx.RecordFailure(ctx, key, at, forget) })
}

// RecordDeviceSync records what p's device said of itself as it finished a
// sync, stamped with the server's time. The device's own times are its
// word: one past the server's now is dropped rather than believed.
func (s *Service) RecordDeviceSync(ctx context.Context, p store.Principal, ds store.DeviceSync) error {
	if err := authz.Decide(p, authz.Sync, authz.Anywhere); err != nil {
		return err
	}
	if len(ds.AppVersion) > 64 || !utf8.ValidString(ds.AppVersion) || ds.Outbox < 0 {
		return fmt.Errorf("%w: a device's state: version of 0..64 bytes of text, an outbox of 0 or more", syncengine.ErrInvalid)
	}
	ds.At = s.now()
	if ds.OldestUnsynced.After(ds.At) {
		ds.OldestUnsynced = time.Time{}
	}
	return s.db.Update(ctx, func(tx store.Tx) error { return tx.RecordDeviceSync(ctx, p.CredentialID, ds) })
}
