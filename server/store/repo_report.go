package store

import (
	"context"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/syncengine"
)

// Reports reads what reports, exports and the audit log need, and keeps
// the audit log.
type Reports interface {
	// FieldRows reads the rows of grids the field rules take, in this
	// transaction.
	FieldRows(grids []string) fieldwork.Rows
	// HouseholdRows reads the rows of the given households (a page of
	// them) the field rules take, in this transaction.
	HouseholdRows(householdIDs []string) fieldwork.Rows
	// WorkersOfGrids lists the workers holding any of grids.
	WorkersOfGrids(ctx context.Context, grids []string) ([]string, error)
	// VisitsBy lists, per household, the visits of workers made in [from,
	// to) or amended (whenever made), with each household's grid, leaving
	// out those to households now in one of the grids of except. inside,
	// if not nil, counts per worker the live households of except that
	// their plain visits in [from, to) reached (as the caller read them in
	// this transaction). With it a backend that keeps sums may fold the
	// plain visits (fieldwork.Rows.PlainVisits) of a worker to a household
	// into one row with no visit id and the newest time, and leave out
	// those of a worker whose sums reach no other household. With a nil
	// inside each visit is a row of its own, with its time: a series of
	// reports reads them once for all its moments.
	VisitsBy(ctx context.Context, workers []string, from, to time.Time, except []string, inside map[string]int) ([]WorkerVisit, error)
	// AmendmentsOfVisits loads the amendments of visits.
	AmendmentsOfVisits(ctx context.Context, visitIDs []string) ([]syncengine.Amendment, error)
	// TrackedHouseholds lists the households of grids not deleted with a
	// tracked finding (an item), in id order.
	TrackedHouseholds(ctx context.Context, grids []string) ([]string, error)
	// LiveHouseholdIDs lists up to limit households of grids not deleted,
	// with id > after, in id order.
	LiveHouseholdIDs(ctx context.Context, grids []string, after string, limit int) ([]string, error)
	// VisitKeys lists up to limit visits to households of grids not
	// deleted, after key, in (visitor, time, id) order.
	VisitKeys(ctx context.Context, grids []string, after VisitKey, limit int) ([]VisitKey, error)

	// PlacedVisits counts the visits made in [from, to), with a position
	// and not voided, to households of grids: each visit once in Total,
	// and once in each grid it covers.
	PlacedVisits(ctx context.Context, grids []string, from, to time.Time) (PlacedVisits, error)

	// Ranking reads a campaign's ranking rule (fieldwork.EncodeRanking),
	// "" if it has none; PutRanking sets it.
	Ranking(ctx context.Context, campaignID string) (string, error)
	PutRanking(ctx context.Context, campaignID, spec string) error
	// InsertZeroReport records a zero report.
	InsertZeroReport(ctx context.Context, z ZeroReport) error
	// ZeroReports lists the zero reports of nodes whose periods overlap
	// [from, until), by node and period.
	ZeroReports(ctx context.Context, nodeIDs []string, from, until time.Time) ([]ZeroReport, error)

	// InsertAudit records an entry of the audit log.
	InsertAudit(ctx context.Context, e AuditEntry) error
	// AuditEntries calls fn with the audit log's entries, newest first,
	// each with its admin's node, until fn returns false.
	AuditEntries(ctx context.Context, fn func(e AuditEntry, adminNode string) bool) error

	// ReplaceVisit and ReplaceAmendment overwrite an immutable row: only
	// an erasure does.
	ReplaceVisit(ctx context.Context, v *syncengine.Visit) error
	ReplaceAmendment(ctx context.Context, a *syncengine.Amendment) error
}

// ZeroReport is a grid's or community's word that it found nothing to
// report (no dispute, no hazard) in [From, Until).
type ZeroReport struct {
	ID, NodeID  string
	From, Until time.Time
	Note        string
	// The admin who made it, and when.
	AdminID, AdminName string
	ReportedAt         time.Time
}

// ReportingUnit is what a community or grid reported in a period.
type ReportingUnit struct {
	Node OrgNode
	// Items counts the tracked items found in its households.
	Items       int
	ZeroReports []ZeroReport
	// Silent: neither items nor a zero report.
	Silent bool
}

// PlacedVisits counts visits recorded with the phone's position.
type PlacedVisits struct {
	Total  int
	ByGrid map[string]int
}

// WorkerVisit is a visit as VisitsBy lists it: one row per household.
type WorkerVisit struct {
	VisitID, VisitorID string
	At                 time.Time
	HouseholdID        string
	// GridID is "" if the household is gone.
	GridID  string
	Amended bool
}

// VisitKey orders the visit register: by visitor, time and id.
type VisitKey struct {
	VisitorID string
	At        time.Time
	ID        string
}

// Collector deletes what only devices far behind need (see
// Store.Collect for what).
type Collector interface {
	// Collect deletes, in small transactions, what only a device whose
	// cursor is before feed position Before needs, and refuses such
	// cursors from now on as expired; rows of the collected table older
	// than ForgetBefore, and enrolment codes expired before CodesBefore.
	// At stamps what it records. A collected tombstone's feed entry moves
	// to a new position, with no row behind it: a pull then tells devices
	// that hold the row to delete it.
	Collect(ctx context.Context, r CollectRequest) (Collected, error)
}

// CollectRequest says what a collection deletes (see Collector).
type CollectRequest struct {
	Before       uint64
	At           time.Time
	ForgetBefore time.Time
	CodesBefore  time.Time
}

// Scrubber is a backend whose old values may outlive an erasure in a log
// beside the data: Scrub rewrites it, and reports whether it could (a
// reader holding an old snapshot may keep it until later).
type Scrubber interface {
	Scrub(ctx context.Context) (bool, error)
}
