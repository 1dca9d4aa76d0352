// Package store defines the storage contract of the Doorbook server: the
// repositories a backend offers inside transactions (Backend, Tx: SQL and
// transactions only; server/store/sqlite and server/store/postgres), the
// API the server's handlers call (Store, implemented by server/service
// over any Backend), and the types that cross them. The conformance suites
// in storetest hold every backend to the same behaviour.
package store

import (
	"context"
	"fmt"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/server/ledger"
	"github.com/doorbook/doorbook/syncengine"
)

// Store is what the server's API calls: the rules over storage
// (server/service implements it over any Backend). Every method is safe for
// concurrent use.
//
// The change feed: every write that changes replicated state takes the next
// sequence number, and sequence numbers become visible in order — a Pull
// must never see seq n+1 before seq n has committed, or a cursor would skip
// n for good. (SQLite's single writer gives this for free; a backend with
// concurrent writers must serialise the allocation with the commit.)
type Store interface {
	Sync
	Admin
	Reporting
	Attachments

	// Collect deletes what is kept only for devices whose feed position
	// is older than horizon (tombstones, applied change ids, commit tags,
	// grid changes, moves, feed entries, spent codes), in small
	// transactions; such a device is then told to start over.
	Collect(ctx context.Context, horizon time.Duration) (Collected, error)
	Close() error
}

// Sync is the device's side of the API: push, pull, bootstrap.
type Sync interface {
	// Push applies a device's changes in one transaction: all or none. The
	// caller has validated them and checked their clocks.
	//
	// A device writes the households of its worker's grids. A household
	// that left them (moved away, or its grid taken) stays writable for the
	// writes the device made while, as far as it knew, it was still theirs,
	// and no longer: until the device shows it applied the move (it pulled,
	// or pushes, from a cursor past it), and in any case for no longer than
	// the scope grace after the move, on the server's clock (a device that
	// never pulls, or whose clock is set back, gains nothing).
	//
	// cursor is the feed position the device says it has applied (0 if it
	// does not say): it ends the grace as a pull from it would. A cursor
	// the store did not issue refuses the push as Pull refuses it
	// (syncengine.ErrStaleCursor, ErrCursorExpired), before anything is
	// applied: a restored server makes its devices start over first.
	Push(ctx context.Context, p Principal, cursor uint64, changes []syncengine.Change) (PushResult, error)
	// Pull returns the feed entries in p's scope after cursor. Cursors are
	// opaque and order like feed positions; a cursor the store did not
	// issue (past its feed, or from a database it was restored over) is
	// syncengine.ErrStaleCursor, so that the device starts over rather than
	// skip or keep what the store no longer has.
	Pull(ctx context.Context, p Principal, cursor uint64, limit int) (*PullBatch, error)
	// Bootstrap sends pages of whole households of p's grids (all of them
	// if grids is empty) after household id after, until done or send fails.
	Bootstrap(ctx context.Context, p Principal, req BootstrapRequest, send func(*BootstrapPage) error) error
	// Snapshot writes p's whole scope, in the replica's own tables, to a new
	// SQLite file: a new device copies the tables whole instead of
	// inserting rows one by one. A scope of fewer than minHouseholds
	// households gets ErrNoSnapshot (pages suit it better). The caller calls
	// the snapshot's Release when done with it.
	Snapshot(ctx context.Context, p Principal, minHouseholds int) (*Snapshot, error)
	// Scope is a worker's grids.
	Scope(ctx context.Context, p Principal) (Scope, error)
	// RecordDeviceSync records what p's device said of itself as it
	// finished a sync, with the time on the server's clock.
	RecordDeviceSync(ctx context.Context, p Principal, s DeviceSync) error
}

// Attachments is the visits' files: phones upload their own, phones and
// admins download those they may read.
type Attachments interface {
	// UploadAttachment keeps the part of a visit's file at offset (none:
	// a question) and says how much of the file the store holds and
	// whether it is whole and checked.
	UploadAttachment(ctx context.Context, p Principal, visitID string, a syncengine.Attachment, offset int64, data []byte) (received int64, complete bool, err error)
	// ListAttachments lists the whole files of visits p may read.
	ListAttachments(ctx context.Context, p Principal, visitIDs []string) ([]VisitAttachment, error)
	// DownloadAttachment sends a whole file p may read from offset, piece
	// by piece, until done or send fails.
	DownloadAttachment(ctx context.Context, p Principal, sha string, offset int64, send func(size, at int64, data []byte) error) error
}

// Admin is the admins' side of the API: credentials, the org tree,
// workers, devices, moves, imports, categories, campaigns and items.
type Admin interface {
	// Authenticate resolves a bearer token.
	Authenticate(ctx context.Context, token string) (Principal, error)
	// Failures counts the failures of a throttled action recorded since
	// t, by every server process: of key, and of every key.
	Failures(ctx context.Context, key string, since time.Time) (ofKey, all int, err error)
	// RecordFailure records a failure of key at at, forgetting those before
	// forget.
	RecordFailure(ctx context.Context, key string, at, forget time.Time) error
	// Enroll spends a one-time code and creates a device.
	Enroll(ctx context.Context, code, deviceName string, now time.Time) (Enrollment, error)
	// CreateAdmin creates an admin over the subtree of node (every tree if
	// node is "") and returns its token.
	CreateAdmin(ctx context.Context, name, node string) (Principal, string, error)
	// HasAdmin reports whether any admin exists.
	HasAdmin(ctx context.Context) (bool, error)
	// SetAdminPassword sets the password of the one admin named name, for
	// the installation's operator.
	SetAdminPassword(ctx context.Context, name, password string) error
	// SignIn opens a session for the admin of name whose password this is:
	// the admin, the session's token and when it expires.
	SignIn(ctx context.Context, name, password string) (Principal, string, time.Time, error)
	// SignOut ends p's session.
	SignOut(ctx context.Context, p Principal) error
	// AddAdmin creates an admin (or, readOnly, a leader) over node, which
	// must lie in p's subtree, and returns its token.
	AddAdmin(ctx context.Context, p Principal, name, node string, readOnly bool) (Principal, string, error)
	// ListDevices lists the devices of the workers p manages (one worker's
	// if workerID is set).
	ListDevices(ctx context.Context, p Principal, workerID string) ([]Device, error)
	// RevokeDevice revokes a device of a worker p manages: its token stops
	// working at once. Revoking a revoked device keeps the first record.
	RevokeDevice(ctx context.Context, p Principal, deviceID, reason string, now time.Time) (Device, error)
	// SetDevicePolicy sets the installation's lost-phone policy;
	// DevicePolicy reads it.
	SetDevicePolicy(ctx context.Context, p Principal, policy DevicePolicy) (DevicePolicy, error)
	DevicePolicy(ctx context.Context, p Principal) (DevicePolicy, error)
	// SetItemPolicy sets the installation's item policy; ItemPolicy reads
	// it.
	SetItemPolicy(ctx context.Context, p Principal, policy ItemPolicy) (ItemPolicy, error)
	ItemPolicy(ctx context.Context, p Principal) (ItemPolicy, error)

	CreateOrgNode(ctx context.Context, p Principal, n OrgNode) (OrgNode, error)
	ListOrgNodes(ctx context.Context, p Principal) ([]OrgNode, error)
	CreateWorker(ctx context.Context, p Principal, w Worker) (Worker, error)
	ListWorkers(ctx context.Context, p Principal) ([]Worker, error)
	SetWorkerGrids(ctx context.Context, p Principal, workerID string, gridIDs []string) (Worker, error)
	CreateEnrollmentCode(ctx context.Context, p Principal, workerID string, expires time.Time) (string, error)
	// MoveHousehold writes the household's grid under clock c (newer than
	// any clock the household holds: see MoveClock).
	MoveHousehold(ctx context.Context, p Principal, householdID, gridID string, clock func(observed syncengine.Clock) syncengine.Clock) (syncengine.Household, error)

	// Import merges ledger rows (an admin's bulk load, or demo data) as if
	// pushed, into households of p's subtree, recording them in the feed.
	Import(ctx context.Context, p Principal, rows syncengine.Bundle) error
	// ImportLedger reads an office's ledger file into the grids of a node
	// of p's subtree: what each row does (see package ledger), applied
	// unless a dry run.
	ImportLedger(ctx context.Context, p Principal, in LedgerImport) (LedgerReport, error)

	// PutCategory merges a category stamped by the server (only district
	// and installation-wide admins define categories); with onlyNew, a
	// category already defined is left alone (applied false).
	PutCategory(ctx context.Context, p Principal, delta syncengine.Category, onlyNew bool) (c syncengine.Category, applied bool, err error)
	// ListCategories lists every category, deleted ones included.
	ListCategories(ctx context.Context, p Principal) ([]syncengine.Category, error)
	// PutCampaign merges a campaign stamped by the server. Its node, before
	// and after, must lie in p's subtree; a new campaign needs a node, a
	// name and a window.
	PutCampaign(ctx context.Context, p Principal, delta syncengine.Campaign) (syncengine.Campaign, error)
	// ListCampaigns lists the campaigns p sees: of nodes in p's subtree and
	// of the nodes above it.
	ListCampaigns(ctx context.Context, p Principal) ([]syncengine.Campaign, error)
	// UpdateItem records an item update (an amendment stamped by the
	// server) of a visit to a household in p's subtree.
	UpdateItem(ctx context.Context, p Principal, a syncengine.Amendment) error
	// SetRanking sets how a campaign of p's subtree ranks its
	// communities.
	SetRanking(ctx context.Context, p Principal, campaignID string, r fieldwork.Ranking) (fieldwork.Ranking, error)
	// PutZeroReport records a zero report of a grid or community of p's
	// subtree.
	PutZeroReport(ctx context.Context, p Principal, z ZeroReport) (ZeroReport, error)
}

// Reporting is what offices read: reports, exports, the audit log; and
// the erasure of personal data.
type Reporting interface {
	// ErasePersonalData blanks the personal data of a household (its
	// fields, its persons', its visits' notes) or of one person in p's
	// subtree, under clocks from clock newer than the rows hold, so that
	// every replica takes the blanks at its next pull.
	ErasePersonalData(ctx context.Context, p Principal, t ErasureTarget, clock func(observed syncengine.Clock) syncengine.Clock) (Erased, error)

	// Analyze reads what a report of node for campaign (none if "") needs.
	Analyze(ctx context.Context, p Principal, nodeID, campaignID string, until time.Time) (*Analysis, error)
	// AnalyzeSeries is Analyze as of each of the moments (none zero) that
	// moments gives for the campaign's window, from one read: a campaign's
	// weeks. It returns the moments with their analyses.
	AnalyzeSeries(ctx context.Context, p Principal, nodeID, campaignID string, moments func(from, to time.Time) []time.Time) ([]time.Time, []*Analysis, error)
	// AnalyzeItems is Analyze with no campaign over only the households
	// of node with a tracked item: what the items register reads.
	AnalyzeItems(ctx context.Context, p Principal, nodeID string, until time.Time) (*Analysis, error)
	// Household reads one household whole, if p may read reports of its
	// grid.
	Household(ctx context.Context, p Principal, id string) (*HouseholdView, error)
	// LedgerPages calls fn with pages of the ledger of node's grids, in
	// household id order, each read in its own transaction.
	LedgerPages(ctx context.Context, p Principal, nodeID string, fn func(LedgerPage) error) error
	// VisitPages calls fn with pages of the visits to households of node's
	// grids, by visitor and date, with their amendments and households.
	VisitPages(ctx context.Context, p Principal, nodeID string, fn func(syncengine.Bundle) error) error
	// Reporting tells, for each community and grid of node, what it
	// reported in [from, until): tracked items found, zero reports.
	Reporting(ctx context.Context, p Principal, nodeID string, from, until time.Time) ([]ReportingUnit, error)
	// Audit records that p read something (a report, an export).
	Audit(ctx context.Context, p Principal, e AuditEntry) error
	// AuditLog lists the newest entries of admins in p's subtree.
	AuditLog(ctx context.Context, p Principal, limit int) ([]AuditEntry, error)
}

// DefaultHorizon is how long the server keeps what only a device that has
// not synced since needs: a phone off for longer starts over, keeping its
// unsent changes.
const DefaultHorizon = 90 * 24 * time.Hour

// ErasureTarget is a household or a person whose data is to be erased,
// and why (the audit log keeps it, written with the erasure).
type ErasureTarget struct {
	HouseholdID, PersonID string
	Reason                string
	At                    time.Time
}

// Erased counts the rows an erasure blanked.
type Erased struct {
	Households, Persons, Visits, Amendments int
	// Files counts the visits' files deleted with them.
	Files int
	// Scrubbed: the old values are gone from the file's log too (readers
	// holding old snapshots can delay that to a later checkpoint).
	Scrubbed bool
}

// Collected counts what one collection deleted.
type Collected struct {
	Tombstones, AppliedChanges, Feed, ScopeEvents, Moves, Commits, Codes int
}

// Total is every row deleted.
func (c Collected) Total() int {
	return c.Tombstones + c.AppliedChanges + c.Feed + c.ScopeEvents + c.Moves + c.Commits + c.Codes
}

// LedgerPage is a page of the ledger: households whole but for their
// visits, and when each was last visited under the field rules (absent if
// never).
type LedgerPage struct {
	syncengine.Bundle
	LastVisit map[string]time.Time
}

// Analysis is what a report on an org node needs.
type Analysis struct {
	Node     OrgNode
	Campaign *syncengine.Campaign
	// Ranking is the campaign's ranking rule (zero: by coverage).
	Ranking fieldwork.Ranking
	// Nodes of the subtree by id, and the workers with grids in it.
	Nodes   map[string]OrgNode
	Workers []Worker
	// Fieldwork is the households of the node's grids under the rules.
	Fieldwork *fieldwork.Analysis
	// Placed counts the campaign's visits recorded with a position.
	Placed PlacedVisits
}

// HouseholdView is one household whole, with the field rules' reading.
type HouseholdView struct {
	// Bundle holds the household, its persons and tags, and every visit
	// to it with its amendments.
	Bundle    syncengine.Bundle
	Grid      OrgNode
	Fieldwork fieldwork.Household
}

// LedgerImport is a ledger file to import.
type LedgerImport struct {
	NodeID string
	// Name is the file's name (it tells a CSV from an .xlsx only when the
	// bytes do not).
	Name   string
	File   []byte
	DryRun bool
	// Clock stamps what the import writes: newer than observed.
	Clock func(observed syncengine.Clock) syncengine.Clock
}

// LedgerReport is what an import did, or would do, with a ledger file.
type LedgerReport struct {
	// Sheet is the sheet read, of an .xlsx.
	Sheet string
	// Unknown are the header cells that name no column.
	Unknown []string
	// Rows say what each row does, in the file's order.
	Rows []ledger.Outcome
	// Applied: the rows were written.
	Applied bool
}

// AuditEntry is one read of sensitive data.
type AuditEntry struct {
	ID         string
	At         time.Time
	AdminID    string
	AdminName  string
	Action     string
	NodeID     string
	CampaignID string
}

// ChangeError is the error of a push refused because of one change: the
// change can never be applied as it is.
type ChangeError struct {
	ChangeID string
	Err      error
}

func (e *ChangeError) Error() string { return "change " + e.ChangeID + ": " + e.Err.Error() }

func (e *ChangeError) Unwrap() error { return e.Err }

// Kind is what a principal is.
type Kind int

const (
	KindWorker Kind = iota + 1
	KindAdmin
)

// Principal is the authenticated caller.
type Principal struct {
	Kind Kind
	// ID is the worker's or the admin's id.
	ID   string
	Name string
	// CredentialID is the device (for a worker) or token the call came with.
	CredentialID string
	// Node is the root of an admin's subtree; "" means every tree.
	Node string
	// Path is Node and the nodes above it, Node first (nil for "").
	Path []string
	// ReadOnly marks a leader: an admin who may only read.
	ReadOnly bool
}

// Device is a worker's enrolled phone.
type Device struct {
	ID, WorkerID, Name string
	EnrolledAt         time.Time
	// RevokedAt is zero while the device may sync.
	RevokedAt     time.Time
	RevokedReason string
	// LastSeen is when the device last called the server (zero if never),
	// to within service.SeenResolution.
	LastSeen time.Time
	// Sync is what the device said of itself when it last finished a
	// sync (its At zero if it never has).
	Sync DeviceSync
}

// DeviceSync is a device's account of itself at a sync: when the sync
// ended (on the server's clock), the app's version, and what waited on
// the phone when the sync began (the oldest visit, zero if none, and the
// changes in its outbox).
type DeviceSync struct {
	At             time.Time
	AppVersion     string
	OldestUnsynced time.Time
	Outbox         int
}

// Silent reports whether d, not revoked, has not finished a sync since
// t (one that never has counts from its enrolment).
func (d Device) Silent(t time.Time) bool {
	if !d.RevokedAt.IsZero() {
		return false
	}
	last := d.Sync.At
	if last.IsZero() {
		last = d.EnrolledAt
	}
	return last.Before(t)
}

// RevokedError refuses a revoked device. It is an ErrUnauthenticated; the
// API sends its fields so that the device can wipe its replica.
type RevokedError struct {
	DeviceID string
	At       time.Time
	Reason   string
}

func (e *RevokedError) Error() string {
	return fmt.Sprintf("device revoked on %s: %s", e.At.UTC().Format(time.DateOnly), e.Reason)
}

func (e *RevokedError) Unwrap() error { return syncengine.ErrUnauthenticated }

// OrgLevel is a level of the organisation tree; the numbers are the API's.
type OrgLevel int32

const (
	LevelDistrict  OrgLevel = 1
	LevelStreet    OrgLevel = 2
	LevelCommunity OrgLevel = 3
	LevelGrid      OrgLevel = 4
)

func (l OrgLevel) String() string {
	switch l {
	case LevelDistrict:
		return "district"
	case LevelStreet:
		return "street"
	case LevelCommunity:
		return "community"
	case LevelGrid:
		return "grid"
	}
	return "unknown level"
}

// OrgNode is a node of the tree district → street → community → grid.
type OrgNode struct {
	ID       string
	ParentID string
	Level    OrgLevel
	Name     string
}

// Worker is a person who visits, with the grids they answer for.
type Worker struct {
	ID      string
	Name    string
	Role    int32
	GridIDs []string
}

// Scope is what a worker's devices replicate.
type Scope struct {
	Worker Worker
	Grids  []OrgNode
}

// Enrollment is a device created from an enrolment code.
type Enrollment struct {
	DeviceID string
	Token    string
	Scope    Scope
}

// PushResult counts what a push did.
type PushResult struct {
	Applied    int
	Duplicates int
}

// PullBatch is one batch of the feed, to be applied in the order of its
// fields: evictions, rows, then bootstraps of added grids.
type PullBatch struct {
	// Policy is the installation's lost-phone policy, sent with every pull.
	Policy            DevicePolicy
	EvictedHouseholds []string
	EvictedGrids      []string
	// Tombstones collected past the horizon: the device deletes them.
	PurgedPersons, PurgedTags []string
	// Rows in the batch whose personal data was erased: the device
	// scrubs its file, and replaces its copies of the visits and amendments.
	ErasedHouseholds, ErasedPersons, ReplacedVisits, ReplacedAmendments []string
	Rows                                                                syncengine.Bundle
	AddedGrids                                                          []string
	Cursor                                                              uint64
	More                                                                bool
	Scope                                                               Scope
	// Reference rows changed in the batch's range (all of them in scope
	// when grids were added).
	Reference syncengine.Reference
}

// BootstrapRequest selects what a bootstrap sends.
type BootstrapRequest struct {
	GridIDs          []string
	AfterHouseholdID string
	PageSize         int
}

// Snapshot is a file of a worker's whole scope (see Store.Snapshot).
type Snapshot struct {
	// ID names the file: a device whose download was cut asks for the rest
	// of it by this name.
	ID string
	// Path is the SQLite file, holding the replicated tables only.
	Path string
	// Cursor is the feed position read before the file was written: what
	// changed since reaches the device through the feed.
	Cursor     uint64
	Scope      Scope
	Reference  syncengine.Reference
	Households int
	// Reused: the file was written for an earlier bootstrap of the same
	// scope (Cursor is its own).
	Reused bool
	// Release ends the sending of the file, which the store removes when
	// it no longer gives it.
	Release func()
}

// BootstrapPage is one page of whole households.
type BootstrapPage struct {
	// Cursor is the feed position read before the first page.
	Cursor          uint64
	Rows            syncengine.Bundle
	LastHouseholdID string
	Scope           Scope
	// TotalHouseholds and Reference (all of it in scope) are set on the
	// first page.
	TotalHouseholds int
	Reference       syncengine.Reference
}

// ClockStep is how far behind the commit before it a commit's clock may be
// and still take that commit's time, so that commit times stay in order
// (see Repos.PositionBefore): several servers' clocks differ by less, and
// a clock stepped back by NTP too. A clock stepped further, ahead or back,
// holds later commits' times no longer than this.
const ClockStep = 10 * time.Minute

// DefaultScopeGrace is how long after a household or grid leaves a
// worker's scope the worker's devices may still push what they wrote there
// offline: a week without signal is a long one.
const DefaultScopeGrace = 7 * 24 * time.Hour

// Limits on batch sizes.
const (
	DefaultPullLimit     = 1000
	MaxPullLimit         = 5000
	DefaultBootstrapPage = 200
	MaxBootstrapPage     = 1000
)
