package service

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// Console sessions. An admin signs in with a name and a password; the
// session is a credential of the admin's that expires, so that every call
// it makes is authenticated and authorised as the admin's token would be
// (Authenticate), and signing out deletes it on the server.

// SessionLifetime is how long a session lasts from signing in.
const SessionLifetime = 12 * time.Hour

// Password limits, checked before any hashing: a password is hashed only
// if it could have been set.
const (
	MinPasswordRunes = 10
	MaxPasswordBytes = 256
)

// argon2id's cost: RFC 9106's second recommended option, with the memory
// OWASP gives as a floor (19 MiB, two passes): about 40 ms on this
// project's 2-core machine.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

var errBadSignIn = fmt.Errorf("%w: name or password not valid", syncengine.ErrUnauthenticated)

// hashPassword returns password's argon2id hash in the PHC string format.
func hashPassword(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key))
}

// checkPassword reports whether password matches hash (from hashPassword,
// with any parameters it may have been made with).
func checkPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var version int
	var mem, passes uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &passes, &threads); err != nil ||
		mem == 0 || mem > 1<<20 || passes == 0 || passes > 16 || threads == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(key) == 0 || len(key) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, passes, mem, threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1
}

// dummyHash is checked against when no admin of the name has a password,
// so that a sign-in takes as long whether or not the name exists. Made at
// the first such sign-in, not at every start of the program.
var dummyHash = sync.OnceValue(func() string { return hashPassword("no admin has this password") })

// checkPasswordText refuses a password that could not have been set.
func checkPasswordText(password string) error {
	if len(password) > MaxPasswordBytes || !utf8.ValidString(password) {
		return fmt.Errorf("%w: a password is valid UTF-8 of at most %d bytes", syncengine.ErrInvalid, MaxPasswordBytes)
	}
	if utf8.RuneCountInString(password) < MinPasswordRunes {
		return fmt.Errorf("%w: a password has at least %d characters", syncengine.ErrInvalid, MinPasswordRunes)
	}
	return nil
}

// SetAdminPassword sets the password of the admin named name, for the
// operator of the installation (the command line, with the database in
// hand). Names are not unique: the password goes to the only admin of that
// name, or is refused if there are several.
func (s *Service) SetAdminPassword(ctx context.Context, name, password string) error {
	if err := checkPasswordText(password); err != nil {
		return err
	}
	hash := hashPassword(password)
	err := s.db.Update(ctx, func(tx store.Tx) error {
		admins, err := tx.AdminsNamed(ctx, name)
		if err != nil {
			return err
		}
		switch len(admins) {
		case 0:
			return fmt.Errorf("%w: no admin is named %q", syncengine.ErrNotFound, name)
		case 1:
			return tx.SetAdminPassword(ctx, admins[0].Admin.ID, hash)
		default:
			return fmt.Errorf("%w: %d admins are named %q; a password needs a name of one", syncengine.ErrInvalid, len(admins), name)
		}
	})
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	return nil
}

// SignIn opens a session for the admin of name whose password this is,
// and returns its token and when it expires.
func (s *Service) SignIn(ctx context.Context, name, password string) (store.Principal, string, time.Time, error) {
	if name == "" || len(name) > 256 || len(password) > MaxPasswordBytes {
		return store.Principal{}, "", time.Time{}, errBadSignIn
	}
	var admin store.Principal
	var hash string
	err := s.db.View(ctx, func(tx store.Tx) error {
		admins, err := tx.AdminsNamed(ctx, name)
		if err != nil {
			return err
		}
		for _, a := range admins {
			if a.PasswordHash != "" {
				admin, hash = a.Admin, a.PasswordHash
			}
		}
		return nil
	})
	if err != nil {
		return store.Principal{}, "", time.Time{}, fmt.Errorf("sign in: %w", err)
	}
	if hash == "" {
		checkPassword(dummyHash(), password)
		return store.Principal{}, "", time.Time{}, errBadSignIn
	}
	if !checkPassword(hash, password) {
		return store.Principal{}, "", time.Time{}, errBadSignIn
	}
	now := s.now()
	sess := store.Session{CredentialID: newID(), AdminID: admin.ID, CreatedAt: now, ExpiresAt: now.Add(SessionLifetime)}
	token, secretHash := newToken(sess.CredentialID)
	sess.SecretHash = secretHash
	if err := s.db.Update(ctx, func(tx store.Tx) error { return tx.InsertSession(ctx, sess) }); err != nil {
		return store.Principal{}, "", time.Time{}, fmt.Errorf("sign in: %w", err)
	}
	admin.CredentialID = sess.CredentialID
	return admin, token, sess.ExpiresAt, nil
}

// SignOut ends p's session; a principal that signed in with a token has
// none, and keeps its token.
func (s *Service) SignOut(ctx context.Context, p store.Principal) error {
	if p.Kind != store.KindAdmin || p.CredentialID == "" {
		return fmt.Errorf("%w: only an admin's session can be signed out", syncengine.ErrInvalid)
	}
	err := s.db.Update(ctx, func(tx store.Tx) error {
		c, ok, err := tx.Credential(ctx, p.CredentialID)
		if err != nil {
			return err
		}
		if !ok || c.ExpiresAt.IsZero() {
			return fmt.Errorf("%w: this token is not a session (an admin's own token is revoked, not signed out)", syncengine.ErrInvalid)
		}
		return tx.EndSession(ctx, p.CredentialID)
	})
	if err != nil {
		return fmt.Errorf("sign out: %w", err)
	}
	return nil
}
