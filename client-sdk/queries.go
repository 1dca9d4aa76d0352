package sdk

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/syncengine"
)

// Grid is one of the worker's grids.
type Grid struct {
	ID   string
	Name string
}

// Grids lists the worker's grids as of the last sync.
func (r *Replica) Grids(ctx context.Context) ([]Grid, error) {
	if err := r.unlocked(ctx); err != nil {
		return nil, err
	}
	return r.grids(ctx)
}

func (r *Replica) grids(ctx context.Context) ([]Grid, error) {
	rows, err := r.db.R.QueryContext(ctx, `SELECT grid_id, name FROM my_grids ORDER BY name, grid_id`)
	if err != nil {
		return nil, fmt.Errorf("grids: %w", err)
	}
	defer rows.Close()
	var out []Grid
	for rows.Next() {
		var g Grid
		if err := rows.Scan(&g.ID, &g.Name); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// HouseholdSummary is one line of the worker's household list.
type HouseholdSummary struct {
	ID          string
	GridID      string
	HeadName    string
	Address     string
	MemberCount int64
	Categories  []string
	// Visits counts visits not voided; LastVisit is the newest one's
	// recorded time (zero if never visited).
	Visits    int
	LastVisit time.Time
}

const summaryQuery = `SELECT h.id, h.grid_id, h.head_name, h.address, h.member_count,
	(SELECT group_concat(category, ',') FROM (SELECT DISTINCT category FROM tag_elements t
		WHERE t.household_id = h.id AND t.removed = 0 ORDER BY category)),
	(SELECT COUNT(*) FROM visit_households vh JOIN visits v ON v.id = vh.visit_id
		WHERE vh.household_id = h.id AND NOT EXISTS (SELECT 1 FROM visit_amendments a WHERE a.visit_id = v.id AND a.kind = 2)),
	(SELECT MAX(v.visited_at) FROM visit_households vh JOIN visits v ON v.id = vh.visit_id
		WHERE vh.household_id = h.id AND NOT EXISTS (SELECT 1 FROM visit_amendments a WHERE a.visit_id = v.id AND a.kind = 2))
	FROM households h WHERE h.deleted = 0`

func scanSummaries(rows *sql.Rows) ([]HouseholdSummary, error) {
	defer rows.Close()
	var out []HouseholdSummary
	for rows.Next() {
		var s HouseholdSummary
		var cats sql.NullString
		var last sql.NullInt64
		if err := rows.Scan(&s.ID, &s.GridID, &s.HeadName, &s.Address, &s.MemberCount, &cats, &s.Visits, &last); err != nil {
			return nil, err
		}
		if cats.String != "" {
			s.Categories = strings.Split(cats.String, ",")
		}
		if last.Valid {
			s.LastVisit = time.UnixMilli(last.Int64).UTC()
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Households lists the households of the worker's grids, by grid and head's
// name. (A visit's date corrected by an amendment shows in Household, not in
// LastVisit here.)
func (r *Replica) Households(ctx context.Context) ([]HouseholdSummary, error) {
	if err := r.unlocked(ctx); err != nil {
		return nil, err
	}
	rows, err := r.db.R.QueryContext(ctx, summaryQuery+` AND h.grid_id IN (SELECT grid_id FROM my_grids) ORDER BY h.grid_id, h.head_name, h.id`)
	if err != nil {
		return nil, fmt.Errorf("households: %w", err)
	}
	return scanSummaries(rows)
}

// CategoryMembers lists the households that carry a must-visit category.
func (r *Replica) CategoryMembers(ctx context.Context, category string) ([]HouseholdSummary, error) {
	if err := r.unlocked(ctx); err != nil {
		return nil, err
	}
	rows, err := r.db.R.QueryContext(ctx, summaryQuery+` AND h.id IN (SELECT household_id FROM tag_elements WHERE category = ? AND removed = 0)
		ORDER BY h.grid_id, h.head_name, h.id`, category)
	if err != nil {
		return nil, fmt.Errorf("category members: %w", err)
	}
	return scanSummaries(rows)
}

// HouseholdDetail is a household with everything linked to it.
type HouseholdDetail struct {
	Household  syncengine.Household
	Persons    []syncengine.Person
	Categories []string
	// Visits, newest first, as they read after their amendments.
	Visits []syncengine.VisitView
}

// Household loads one household whole.
func (r *Replica) Household(ctx context.Context, id string) (HouseholdDetail, error) {
	if err := r.unlocked(ctx); err != nil {
		return HouseholdDetail{}, err
	}
	var d HouseholdDetail
	err := r.db.Read(ctx, func(tx *sqlitex.Tx) error {
		b, err := statedb.LoadBundle(ctx, tx, []string{id})
		if err != nil {
			return err
		}
		if len(b.Households) == 0 {
			return fmt.Errorf("%w: household %s is not in this replica", syncengine.ErrNotFound, id)
		}
		d.Household = b.Households[0]
		d.Persons = b.Persons
		d.Categories = syncengine.Categories(b.Tags)
		for _, v := range b.Visits {
			var ams []syncengine.Amendment
			for _, a := range b.Amendments {
				if a.VisitID == v.ID {
					ams = append(ams, a)
				}
			}
			d.Visits = append(d.Visits, syncengine.Effective(v, ams))
		}
		slices.SortFunc(d.Visits, func(a, b syncengine.VisitView) int { return b.VisitedAt.Compare(a.VisitedAt) })
		return nil
	})
	if err != nil {
		return d, fmt.Errorf("household: %w", err)
	}
	return d, nil
}

// Pending counts changes waiting to be pushed.
func (r *Replica) Pending(ctx context.Context) (int, error) {
	var n int
	if err := r.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count outbox: %w", err)
	}
	return n, nil
}

// Status describes the replica.
type Status struct {
	ReplicaID  string
	Enrolled   bool
	ServerURL  string
	DeviceID   string
	WorkerID   string
	WorkerName string
	Grids      []Grid
	Cursor     uint64
	Pending    int
	Households int
	LastSync   time.Time
	// LastError is why the last sync failed ("" if it succeeded).
	LastError string
	// Rejected counts changes the server refused for good (see Rejected).
	Rejected int
	// Bootstrapping: a bootstrap has not finished yet.
	Bootstrapping bool
	SchemaVersion int
	ClockOffset   time.Duration
	// Revoked is set when an admin revoked this device, or the lost-phone
	// policy wiped it: its data is gone.
	Revoked *RevokedError
	// Locked is set while the lost-phone policy locks the replica (see
	// ErrLocked): reads fail until a sync succeeds.
	Locked *LockedError
}

// Status reads the replica's sync state.
func (r *Replica) Status(ctx context.Context) (Status, error) {
	s, err := readState(ctx, r.db.R)
	if err != nil {
		return Status{}, err
	}
	st := Status{
		ReplicaID: r.id, Enrolled: s.Token != "", ServerURL: s.ServerURL, DeviceID: s.DeviceID,
		WorkerID: s.WorkerID, WorkerName: s.WorkerName, Cursor: s.Cursor, LastError: s.LastError,
		ClockOffset: r.clock.Offset(),
	}
	if s.LastSyncAt > 0 {
		st.LastSync = time.UnixMilli(s.LastSyncAt).UTC()
	}
	if st.Pending, err = r.Pending(ctx); err != nil {
		return st, err
	}
	switch err := r.unlocked(ctx); {
	case errors.As(err, &st.Locked):
	case errors.As(err, &st.Revoked):
		s.RevokedAt = 0 // wiped just now: said below
	case err != nil:
		return st, err
	default:
		if st.Grids, err = r.grids(ctx); err != nil {
			return st, err
		}
	}
	if s.RevokedAt != 0 {
		st.Revoked = s.revoked()
	}
	if st.Revoked != nil {
		st.Enrolled = false
	}
	if st.Bootstrapping, err = r.hasPendingBootstraps(ctx); err != nil {
		return st, err
	}
	if err := r.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM households WHERE deleted = 0`).Scan(&st.Households); err != nil {
		return st, err
	}
	if err := r.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM rejected_changes`).Scan(&st.Rejected); err != nil {
		return st, err
	}
	st.SchemaVersion, err = sqlitex.SchemaVersion(ctx, r.db.R)
	return st, err
}

// Dump returns every replicated row in id order: for comparing replicas.
func (r *Replica) Dump(ctx context.Context) (syncengine.Bundle, error) {
	if err := r.unlocked(ctx); err != nil {
		return syncengine.Bundle{}, err
	}
	var b syncengine.Bundle
	err := r.db.Read(ctx, func(tx *sqlitex.Tx) error {
		var err error
		b, err = statedb.LoadAll(ctx, tx)
		return err
	})
	return b, err
}

// Check verifies the replica's file (SQLite's integrity check) and that
// what it derives from its rows (the visit sums behind the due list) is
// what the rows give, in one snapshot: for tests and for an app's
// diagnostics.
func (r *Replica) Check(ctx context.Context) error {
	return r.db.Read(ctx, func(tx *sqlitex.Tx) error {
		var res string
		if err := tx.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
			return fmt.Errorf("check: %w", err)
		}
		if res != "ok" {
			return fmt.Errorf("check: the file is damaged: %s", res)
		}
		return statedb.CheckSums(ctx, tx)
	})
}

// Outbox lists the changes waiting to be pushed, oldest first: what an app
// shows as "not yet sent".
func (r *Replica) Outbox(ctx context.Context) ([]syncengine.Change, error) {
	if err := r.unlocked(ctx); err != nil {
		return nil, err
	}
	entries, err := readOutbox(ctx, r.db.R, 0)
	if err != nil {
		return nil, err
	}
	out := make([]syncengine.Change, len(entries))
	for i, e := range entries {
		out[i] = e.change
	}
	return out, nil
}
