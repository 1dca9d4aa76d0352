package store

import (
	"context"
	"time"
)

// Org holds the org tree, workers and the grids they hold.
type Org interface {
	// NodePath is a node and the nodes above it, the node first
	// (syncengine.ErrNotFound if there is no such node).
	NodePath(ctx context.Context, id string) ([]string, error)
	// Subtree lists root and the nodes under it (every node for ""), by
	// level, name and id.
	Subtree(ctx context.Context, root string) ([]OrgNode, error)
	InsertNode(ctx context.Context, n OrgNode) error

	// WorkerIDs lists every worker, by name and id.
	WorkerIDs(ctx context.Context) ([]string, error)
	// InsertWorker adds a worker (without grids), managed from node home.
	InsertWorker(ctx context.Context, w Worker, home string, at time.Time) error
	// WorkerHome is the node whose admin last gave the worker grids.
	WorkerHome(ctx context.Context, id string) (string, error)
	SetWorkerHome(ctx context.Context, id, home string) error
	// AddWorkerGrid and RemoveWorkerGrid change a worker's grids, each
	// recorded at the next feed position (see Scopes.ScopeEvents).
	AddWorkerGrid(ctx context.Context, workerID, grid string) error
	RemoveWorkerGrid(ctx context.Context, workerID, grid string) error
	// RecordMove records a household's move at the next feed position
	// (see Scopes.HouseholdMoves). A household's grid changes only with a
	// move recorded in the same transaction, and entries touched after the
	// move are of the grid it went to: a backend may file the feed by grid
	// and rely on the moves to know when it must not.
	RecordMove(ctx context.Context, household, from, to string) error

	// DevicePolicy reads the installation's lost-phone policy (zero if
	// never set).
	DevicePolicy(ctx context.Context) (DevicePolicy, error)
	PutDevicePolicy(ctx context.Context, p DevicePolicy) error
	// ItemPolicy reads the installation's item policy (zero if never set).
	ItemPolicy(ctx context.Context) (ItemPolicy, error)
	PutItemPolicy(ctx context.Context, p ItemPolicy) error
}

// ItemPolicy is how the installation treats tracked items: an overdue
// item stays EscalationDays with a level of the org tree before it goes up
// (0: syncengine.EscalationPeriod).
type ItemPolicy struct {
	EscalationDays uint32
}

// Escalation is the period the policy sets, or 0 for the default.
func (p ItemPolicy) Escalation() time.Duration {
	return time.Duration(p.EscalationDays) * 24 * time.Hour
}

// DevicePolicy is what a phone that has not synced for long does: after
// LockAfterDays it refuses reads until it syncs, after WipeAfterDays it
// wipes itself (0: never).
type DevicePolicy struct {
	LockAfterDays, WipeAfterDays uint32
}

// Auth holds credentials: admins' tokens, devices, enrolment codes.
type Auth interface {
	// Credential reads a credential by id.
	Credential(ctx context.Context, id string) (Credential, bool, error)
	HasAdmin(ctx context.Context) (bool, error)
	// InsertAdmin adds an admin and its credential (a token's hash).
	InsertAdmin(ctx context.Context, a Principal, secretHash []byte, at time.Time) error
	// InsertDevice adds a worker's device and its credential; known is the
	// feed position its grace starts from (see Feed.KnownCursor).
	InsertDevice(ctx context.Context, d Device, secretHash []byte, known uint64) error
	// Devices lists a worker's devices, oldest first.
	Devices(ctx context.Context, workerID string) ([]Device, error)
	Device(ctx context.Context, id string) (Device, bool, error)
	// RecordDeviceSync records a device's account of itself at a sync.
	RecordDeviceSync(ctx context.Context, id string, s DeviceSync) error
	// RevokeDevice revokes a device not revoked yet.
	RevokeDevice(ctx context.Context, id string, at time.Time, reason string) error
	// AdminsNamed lists the admins of a name, each with its password's
	// hash ("" for none): names are not unique, passwords are per admin.
	AdminsNamed(ctx context.Context, name string) ([]AdminLogin, error)
	// SetAdminPassword sets an admin's password hash.
	SetAdminPassword(ctx context.Context, adminID, hash string) error
	// InsertSession adds a session: an admin's credential that expires.
	// Sessions expired before its creation are deleted.
	InsertSession(ctx context.Context, s Session) error
	// EndSession deletes a session; a credential that is not a session
	// stays.
	EndSession(ctx context.Context, credentialID string) error
	// SeeCredential records that a credential called the server at at.
	SeeCredential(ctx context.Context, id string, at time.Time) error
	// CountDevicesSeen counts the devices, revoked or not, seen at or
	// after since.
	CountDevicesSeen(ctx context.Context, since time.Time) (int, error)
	// CountDevicesSilent counts the devices, not revoked, that have not
	// finished a sync since t (one that never has, since its enrolment).
	CountDevicesSilent(ctx context.Context, since time.Time) (int, error)
	InsertCode(ctx context.Context, c EnrollmentCode) error
	Code(ctx context.Context, hash []byte) (EnrollmentCode, bool, error)
	SpendCode(ctx context.Context, hash []byte, at time.Time) error
	// CountFailures counts the failures recorded at or after since: of
	// key, and of every key.
	CountFailures(ctx context.Context, key string, since time.Time) (ofKey, all int, err error)
	// RecordFailure records a failure of key at at, and deletes those
	// recorded before forget.
	RecordFailure(ctx context.Context, key string, at, forget time.Time) error
}

// Credential is a stored token: a device's or an admin's.
type Credential struct {
	ID         string
	SecretHash []byte
	// WorkerID is set for a device, Admin for an admin's token (the
	// principal whole but for Path); a name is "" if its row is gone.
	WorkerID, WorkerName string
	Admin                Principal
	RevokedAt            time.Time
	RevokedReason        string
	// LastSeen is when the credential last called the server (zero if
	// never), as recorded by SeeCredential.
	LastSeen time.Time
	// ExpiresAt is when a session ends (zero for a token or a device).
	ExpiresAt time.Time
}

// AdminLogin is an admin with its password's hash.
type AdminLogin struct {
	Admin        Principal
	PasswordHash string
}

// Session is an admin's signed-in session: a credential that expires.
type Session struct {
	CredentialID string
	AdminID      string
	SecretHash   []byte
	CreatedAt    time.Time
	ExpiresAt    time.Time
}

// EnrollmentCode is a one-time code, by the hash of its text.
type EnrollmentCode struct {
	Hash      []byte
	WorkerID  string
	CreatedBy string
	Expires   time.Time
	Used      bool
}
