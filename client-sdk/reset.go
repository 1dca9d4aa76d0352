package sdk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/syncengine"
)

// resetReplica starts the replica over from the server's state: the server
// no longer has the feed position this replica stands at (its database was
// restored from a backup or replaced), or refused a change whose effect
// must be undone. Unsent changes stay queued and stay visible: they are
// merged into the emptied tables again. With requeue (a restored server),
// the changes the server acknowledged within the retention go back into
// the outbox first, in the order they were made: a server restored from a
// backup older than them no longer has them, and the push that follows
// gives them back (those it still has count as duplicates).
func (r *Replica) resetReplica(ctx context.Context, requeue bool) error {
	err := r.db.Write(ctx, func(tx *sqlitex.Tx) error {
		if requeue {
			// What is older than the retention is not pushed again: a
			// server restored from a backup older than that lost it.
			if _, err := tx.ExecContext(ctx, `DELETE FROM pushed WHERE pushed_at < ?`, r.now().Add(-r.keepPushed).UnixMilli()); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (seq, change_id, payload, created_at)
				SELECT seq, change_id, payload, created_at FROM pushed WHERE change_id NOT IN (SELECT change_id FROM outbox)`); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM pushed`); err != nil {
				return err
			}
		}
		err := statedb.InBulk(ctx, tx, func() error {
			for _, table := range serverTables {
				if _, err := tx.ExecContext(ctx, `DELETE FROM `+table); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		entries, err := readOutbox(ctx, tx, 0)
		if err != nil {
			return err
		}
		for i := range entries {
			if err := applyLocal(ctx, tx, &entries[i].change); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO pending_bootstraps (key) VALUES ('*')`); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE sync_state SET cursor = 0 WHERE id = 1`)
		return err
	})
	if err != nil {
		return fmt.Errorf("reset replica: %w", err)
	}
	r.log.Warn().Msg("server no longer has this replica's feed position: starting over from its state")
	return nil
}

// applyLocal merges one of this replica's own changes into its tables.
func applyLocal(ctx context.Context, tx *sqlitex.Tx, c *syncengine.Change) error {
	var err error
	switch {
	case c.Household != nil:
		_, _, _, err = statedb.MergeHousehold(ctx, tx, c.Household)
	case c.Person != nil:
		_, _, _, err = statedb.MergePerson(ctx, tx, c.Person)
	case c.Tag != nil:
		_, _, err = statedb.MergeTag(ctx, tx, c.Tag)
	case c.Visit != nil:
		_, err = statedb.InsertVisit(ctx, tx, c.Visit)
	case c.Amendment != nil:
		_, err = statedb.InsertAmendment(ctx, tx, c.Amendment)
	}
	return err
}

func isStaleCursor(err error) bool { return errors.Is(err, syncengine.ErrStaleCursor) }

// reject sets aside a change the server refused for good, with the reason:
// it leaves the outbox (so the rest can go) for rejected_changes.
func (r *Replica) reject(ctx context.Context, changeID string, reason error) error {
	err := r.db.Write(ctx, func(tx *sqlitex.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO rejected_changes (change_id, payload, reason, rejected_at)
			SELECT change_id, payload, ?, ? FROM outbox WHERE change_id = ?`, reason.Error(), r.now().UnixMilli(), changeID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("server refused change %s, which is not in the outbox: %w", changeID, reason)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM outbox WHERE change_id = ?`, changeID)
		return err
	})
	if err != nil {
		return fmt.Errorf("set aside refused change: %w", err)
	}
	r.log.Warn().Str("change", changeID).Err(reason).Msg("server refused a change for good: set aside")
	return nil
}

// RejectedChange is a change the server refused for good.
type RejectedChange struct {
	Change     syncengine.Change
	Reason     string
	RejectedAt time.Time
}

// Rejected lists the changes the server refused for good, oldest first:
// what an app shows as "not accepted", with why.
func (r *Replica) Rejected(ctx context.Context) ([]RejectedChange, error) {
	if err := r.unlocked(ctx); err != nil {
		return nil, err
	}
	rows, err := r.db.R.QueryContext(ctx, `SELECT payload, reason, rejected_at FROM rejected_changes ORDER BY rejected_at, change_id`)
	if err != nil {
		return nil, fmt.Errorf("rejected changes: %w", err)
	}
	defer rows.Close()
	var out []RejectedChange
	for rows.Next() {
		var payload []byte
		var rc RejectedChange
		var at int64
		if err := rows.Scan(&payload, &rc.Reason, &at); err != nil {
			return nil, err
		}
		if rc.Change, _, err = decodeChange(payload); err != nil {
			return nil, err
		}
		rc.RejectedAt = time.UnixMilli(at).UTC()
		out = append(out, rc)
	}
	return out, rows.Err()
}
