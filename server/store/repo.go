package store

import (
	"context"
	"errors"
	"time"

	"github.com/doorbook/doorbook/syncengine"
)

// Backend is a storage backend: repositories read and written inside
// transactions. A backend holds SQL and transactions only; the rules (who
// may write what, when a change is admitted, what a pull sends) live above
// it, in server/service, written once for every backend.
type Backend interface {
	// Update runs fn in one write transaction and commits it if fn returns
	// nil. It may run fn again, from the start, when a concurrent writer
	// made the transaction fail (fn leaves nothing behind it but its
	// writes through tx). Rows an Update reads by id are locked until it
	// ends. The feed entries it writes take numbers that become visible in
	// order: a reader never sees a number before every smaller one has
	// committed (see Feed).
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in one read transaction: a consistent snapshot. A
	// write in it fails, or is not kept.
	View(ctx context.Context, fn func(Tx) error) error
	Collector
	Close() error
}

// Tx is every repository, inside one transaction.
type Tx interface {
	Feed
	Rows
	Scopes
	Erasures
	Org
	Auth
	Reports
	Files
}

// EntityKind is what a feed entry names.
type EntityKind int

const (
	EntityHousehold EntityKind = 1
	EntityPerson    EntityKind = 2
	EntityTag       EntityKind = 3
	EntityVisit     EntityKind = 4
	EntityAmendment EntityKind = 5
)

// Feed is the change feed: one entry per (row, household) naming the last
// change of the row, at a position that only grows. Cursors are the
// backend's: opaque numbers that order like feed positions and tell a
// position the backend issued from one it did not.
type Feed interface {
	// Head is the newest committed feed position.
	Head(ctx context.Context) (uint64, error)
	// Position checks that cursor is one this database issued, at or
	// below top, and still kept (else syncengine.ErrStaleCursor or
	// ErrCursorExpired), and returns its feed position (0 for cursor 0).
	Position(ctx context.Context, cursor, top uint64) (uint64, error)
	// Cursor is the cursor of feed position seq (0 for 0).
	Cursor(ctx context.Context, seq uint64) (uint64, error)
	// PositionBefore is the last position committed before t on the
	// server's clock (0 if none). A commit whose clock is behind the
	// commit before it by less than ClockStep takes that commit's time;
	// past a step back longer than that, the answer may be a position
	// before the last (never after it).
	PositionBefore(ctx context.Context, t time.Time) (uint64, error)
	// Touch gives the entry of (kind, id, household) the next position
	// (touched again in one transaction, the later one; positions may
	// then have gaps). origin is the device that pushed an immutable row
	// ("" otherwise): its own pulls leave the entry out.
	Touch(ctx context.Context, kind EntityKind, id, household, origin string) error
	// Entries reads up to q.Limit entries in (q.After, q.Upto] of
	// households now in q.Grids, leaving out those whose origin is
	// q.Origin (a device's credential id), in feed order.
	Entries(ctx context.Context, q FeedQuery) ([]FeedEntry, error)

	// HouseholdsTouched lists the households with an entry in (after,
	// upto], each once, up to limit of them.
	HouseholdsTouched(ctx context.Context, after, upto uint64, limit int) ([]string, error)

	// AppliedChanges reads which of ids were applied before.
	AppliedChanges(ctx context.Context, ids []string) (map[string]AppliedChange, error)
	// RecordApplied records that a change was applied in this transaction.
	RecordApplied(ctx context.Context, changeID string, a AppliedChange) error
	// WasCollected reports whether (kind, id) was a tombstone the
	// collector deleted.
	WasCollected(ctx context.Context, kind EntityKind, id string) (bool, error)

	// KnownCursor is the feed position a device has shown it applied.
	KnownCursor(ctx context.Context, credentialID string) (uint64, error)
	// RaiseKnownCursor raises it to seq (never lowers it).
	RaiseKnownCursor(ctx context.Context, credentialID string, seq uint64) error
}

// FeedQuery selects feed entries (see Feed.Entries).
type FeedQuery struct {
	Grids       []string
	Origin      string
	After, Upto uint64
	Limit       int
}

// FeedEntry is one entry of the feed.
type FeedEntry struct {
	Seq       uint64
	Kind      EntityKind
	EntityID  string
	Household string
	Origin    string
}

// AppliedChange is what the server recorded of a change it applied: the
// device that pushed it and the digest of its content ("" if unknown).
type AppliedChange struct {
	CredentialID string
	Digest       string
}

// Rows holds the replicated rows. Merging is the caller's: a row is read,
// merged by syncengine's rules and written back whole.
type Rows interface {
	Household(ctx context.Context, id string) (syncengine.Household, bool, error)
	// Households, Persons, Tags, Visits and Amendments load rows by id, in
	// id order; unknown ids are left out.
	Households(ctx context.Context, ids []string) ([]syncengine.Household, error)
	// HouseholdGrids reads the grid of each household by id, what a push
	// judges a household's scope by; unknown ids are left out. In a write
	// transaction it takes the rows as Households does.
	HouseholdGrids(ctx context.Context, ids []string) (map[string]string, error)
	Persons(ctx context.Context, ids []string) ([]syncengine.Person, error)
	Tags(ctx context.Context, addIDs []string) ([]syncengine.TagElement, error)
	Visits(ctx context.Context, ids []string) ([]syncengine.Visit, error)
	Amendments(ctx context.Context, ids []string) ([]syncengine.Amendment, error)
	// Bundle loads whole households: each with its persons, tags, visits
	// and the visits' amendments.
	Bundle(ctx context.Context, householdIDs []string) (syncengine.Bundle, error)
	// Ledgers loads households with their persons and tags: a Bundle
	// without visits.
	Ledgers(ctx context.Context, householdIDs []string) (syncengine.Bundle, error)

	// PutHousehold writes a household; one that changes its grid is a
	// move, recorded by RecordMove.
	PutHousehold(ctx context.Context, h *syncengine.Household) error
	PutPerson(ctx context.Context, p *syncengine.Person) error
	PutTag(ctx context.Context, t *syncengine.TagElement) error
	// InsertVisit and InsertAmendment store an immutable row: again is a
	// no-op (inserted false), other content under its id is
	// syncengine.ErrAlreadyExists.
	InsertVisit(ctx context.Context, v *syncengine.Visit) (inserted bool, err error)
	InsertAmendment(ctx context.Context, a *syncengine.Amendment) (inserted bool, err error)

	// CountPersons counts a household's persons, deleted ones included.
	CountPersons(ctx context.Context, household string) (int, error)
	// CountTags counts a household's tag elements: live ones, and all.
	CountTags(ctx context.Context, household string) (live, all int, err error)
	// CountVisits counts the visits to a household in [from, to); all of
	// them if from and to are zero.
	CountVisits(ctx context.Context, household string, from, to time.Time) (int, error)
	// VisitCounts counts all the visits to each of households, read at
	// once; a household with none is absent.
	VisitCounts(ctx context.Context, households []string) (map[string]int, error)

	// CountHouseholds counts the households of grids with id > after.
	CountHouseholds(ctx context.Context, grids []string, after string) (int, error)
	// HouseholdIDs lists up to limit households of grids with id > after,
	// in id order.
	HouseholdIDs(ctx context.Context, grids []string, after string, limit int) ([]string, error)

	Category(ctx context.Context, code string) (syncengine.Category, bool, error)
	Campaign(ctx context.Context, id string) (syncengine.Campaign, bool, error)
	// Categories lists every category changed after feed position since.
	Categories(ctx context.Context, since uint64) ([]syncengine.Category, error)
	// Campaigns lists every campaign, by window and id.
	Campaigns(ctx context.Context) ([]syncengine.Campaign, error)
	// PutCategory and PutCampaign write a row whole, at the next feed
	// position (devices pull reference rows changed after their cursor).
	PutCategory(ctx context.Context, c *syncengine.Category) error
	PutCampaign(ctx context.Context, c *syncengine.Campaign) error
	// CampaignsAbove lists the campaigns of nodes at or above any of
	// grids, changed after feed position since.
	CampaignsAbove(ctx context.Context, grids []string, since uint64) ([]syncengine.Campaign, error)
}

// Scopes holds the org tree's nodes and who holds which grid, and the
// history a device's grace is judged by.
type Scopes interface {
	// Node and Worker read one by id (syncengine.ErrNotFound if none).
	Node(ctx context.Context, id string) (OrgNode, error)
	Worker(ctx context.Context, id string) (Worker, error)
	// ScopeEvents lists a worker's grid changes in (after, upto], oldest
	// first.
	ScopeEvents(ctx context.Context, workerID string, after, upto uint64) ([]ScopeEvent, error)
	// HouseholdMoves lists a household's moves after feed position after,
	// oldest first.
	HouseholdMoves(ctx context.Context, household string, after uint64) ([]Move, error)
	// Moves lists every move in (after, upto], oldest first, with each
	// household's grid now.
	Moves(ctx context.Context, after, upto uint64) ([]Move, error)
}

// ScopeEvent is a grid given to (Added) or taken from a worker.
type ScopeEvent struct {
	Seq   uint64
	Grid  string
	Added bool
}

// Move is a household moved between grids by an admin.
type Move struct {
	Seq       uint64
	Household string
	From, To  string
	// Now is the household's grid now (set by Scopes.Moves).
	Now string
}

// Erasures records which rows had their personal data erased.
type Erasures interface {
	// AnyHouseholdErased reports whether any household was ever erased.
	AnyHouseholdErased(ctx context.Context) (bool, error)
	// HouseholdErasure is the clock of the newest erasure of any of
	// households, 0 if none was erased.
	HouseholdErasure(ctx context.Context, households []string) (uint64, error)
	// RecordErasures records marks with the feed positions this
	// transaction wrote: a pull tells a device of an erasure through
	// those entries only.
	RecordErasures(ctx context.Context, at time.Time, marks []ErasureMark) error
	// ErasuresOf lists the erasures of the rows of kind ids whose feed
	// positions end after after: a pull reads those of its batch's rows
	// at once, not once an entry.
	ErasuresOf(ctx context.Context, after uint64, kind EntityKind, ids []string) ([]Erasure, error)
}

// Erasure is a row's erasure as the feed announces it: by the row's
// entries in [FirstSeq, LastSeq], the positions its transaction wrote. A
// later change of the row is no erasure; a new erasure of it replaces the
// range.
type Erasure struct {
	Kind              EntityKind
	ID                string
	FirstSeq, LastSeq uint64
}

// Announces reports whether e is an entry the erasure wrote.
func (r Erasure) Announces(e FeedEntry) bool {
	return e.Kind == r.Kind && e.EntityID == r.ID && r.FirstSeq <= e.Seq && e.Seq <= r.LastSeq
}

// ErasureMark is a row whose personal data a transaction erased; HLC is the
// erasure's clock, for households.
type ErasureMark struct {
	Kind EntityKind
	ID   string
	HLC  uint64
}

// Conditions of the storage, not of the data: a write refused for one of
// these changed nothing and succeeds later. A backend wraps its own errors
// with them.
var (
	// ErrStorageFull: the disk (or the database's size limit) is full.
	ErrStorageFull = errors.New("storage full")
	// ErrStorageReadOnly: the storage cannot take writes now.
	ErrStorageReadOnly = errors.New("storage read-only")
)

// Snapshotter is a backend that can write the rows of grids, in the
// replica's own tables, to a new SQLite file (store.Sync.Snapshot): an
// optional capability; without it, devices bootstrap by pages.
type Snapshotter interface {
	// WriteSnapshot writes the file, with the campaigns of the given ids
	// and the visit sums of their windows, and returns its path, how many
	// households it holds, and release, which the caller calls when done
	// with it (it removes the file).
	WriteSnapshot(ctx context.Context, grids, campaigns []string) (path string, households int, release func(), err error)
}

// ErrNoSnapshot: the backend offers no snapshots; bootstrap by pages.
var ErrNoSnapshot = errors.New("this server's storage offers no snapshots")
