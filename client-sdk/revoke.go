package sdk

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"connectrpc.com/connect"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
)

// ErrDeviceRevoked: an admin revoked this device (a lost phone). Its
// replica's data is gone and it will not sync again; errors.As finds the
// *RevokedError with when and why.
var ErrDeviceRevoked = errors.New("device revoked")

// RevokedError says when and why this device was revoked.
type RevokedError struct {
	At     time.Time
	Reason string
}

func (e *RevokedError) Error() string {
	return fmt.Sprintf("this device was revoked on %s (%s): the data on it has been wiped; enrol again with a new code",
		e.At.UTC().Format(time.DateOnly), e.Reason)
}

func (e *RevokedError) Unwrap() error { return ErrDeviceRevoked }

// revokedDetail finds the server's DeviceRevoked detail in err.
func revokedDetail(err error) *pb.DeviceRevoked {
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeUnauthenticated {
		return nil
	}
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if r, ok := v.(*pb.DeviceRevoked); ok {
				return r
			}
		}
	}
	return nil
}

// serverTables hold what the server sent, and the sums the replica keeps of
// it: what a reset drops and fetches again.
var serverTables = []string{
	"households", "persons", "tag_elements", "visits", "visit_households", "visit_amendments",
	"categories", "campaigns", "pending_bootstraps", "visit_sums", "visit_sum_windows",
}

// dataTables hold everything of the worker's scope on the phone: what a
// revoked device must lose. sync_state keeps the replica's identity.
var dataTables = append(slices.Clone(serverTables), "outbox", "pushed", "rejected_changes", "my_grids", "visited_elsewhere", "attachments")

// wipe empties the replica after the server refused it as revoked: every
// row of the scope goes, unsent changes too (they must not leave a lost
// phone), and the token. The file is then rewritten so that the deleted
// bytes are not left in free pages or the write-ahead log.
func (r *Replica) wipe(ctx context.Context, d *pb.DeviceRevoked) error {
	at := d.GetRevokedAt().AsTime()
	err := r.db.Write(ctx, func(tx *sqlitex.Tx) error {
		err := statedb.InBulk(ctx, tx, func() error {
			for _, table := range dataTables {
				if _, err := tx.ExecContext(ctx, `DELETE FROM `+table); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		// The lost-phone policy counts from a sync no longer: with nothing
		// left to lock, reads must not wipe again.
		_, err = tx.ExecContext(ctx, `UPDATE sync_state SET token = '', cursor = 0, revoked_at = ?, revoked_reason = ?,
			synced_server_at = 0, seen_at = 0 WHERE id = 1`, at.UnixMilli(), d.GetReason())
		return err
	})
	if err != nil {
		return fmt.Errorf("wipe revoked replica: %w", err)
	}
	r.removeSnapshotFile()
	r.partial = partialSnapshot{}
	if err := r.removeFiles(); err != nil {
		return fmt.Errorf("wipe revoked replica: %w", err)
	}
	if _, err := r.db.W.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("wipe revoked replica: vacuum: %w", err)
	}
	if err := r.scrub(ctx); err != nil {
		return fmt.Errorf("wipe revoked replica: %w", err)
	}
	r.log.Warn().Str("reason", d.GetReason()).Msg("device revoked by an admin: replica wiped")
	return nil
}

// scrub moves the write-ahead log into the file and truncates it, so that
// rows deleted under secure_delete leave no copy in the log. Readers still
// holding old snapshots can stop a checkpoint short; that is reported.
func (r *Replica) scrub(ctx context.Context) error {
	var busy, logFrames, checkpointed int
	if err := r.db.W.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &checkpointed); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if busy != 0 {
		return fmt.Errorf("checkpoint: %w: readers kept %d of %d log frames", errScrubBusy, logFrames-checkpointed, logFrames)
	}
	return nil
}

var errScrubBusy = errors.New("write-ahead log still in use")
