package sdk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/internal/sqlitex"
)

// ErrLocked: the replica has not synced for longer than the installation's
// lost-phone policy allows (or the phone's clock was set back), and
// refuses reads until a sync succeeds. Its pending writes are kept;
// errors.As finds the *LockedError with why.
var ErrLocked = errors.New("replica locked")

// LockedError says why the replica is locked.
type LockedError struct {
	// LastSync is the last successful sync, on the server's clock.
	LastSync time.Time
	// Days is the policy's lock (0 when the clock was set back).
	Days int
	// ClockSetBack: the phone's clock went back by more than
	// clockTolerance since the replica last saw it.
	ClockSetBack bool
}

func (e *LockedError) Error() string {
	if e.ClockSetBack {
		return "the phone's clock was set back: its data stays locked until it syncs with the server"
	}
	return fmt.Sprintf("this phone has not synced since %s (the limit is %d days): its data stays locked until it syncs",
		e.LastSync.UTC().Format(time.DateOnly), e.Days)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

const (
	// clockTolerance is how far back the phone's clock may step (a network
	// time correction) before the replica takes it for tampering.
	clockTolerance = time.Hour
	// seenStep: the highest time seen is written at most this often, not
	// on every read.
	seenStep = time.Minute
	day      = 24 * time.Hour
)

// lockState is what the policy is counted from: all times in milliseconds
// on the server's clock, as the phone's clock corrected by the skew seen
// at the last pull.
type lockState struct {
	lockDays, wipeDays int64
	syncedAt, seenAt   int64
	skew               int64
}

// unlocked returns nil if the replica may show its data now, else a
// *LockedError; past the policy's wipe it wipes the replica first and
// returns a *RevokedError. Reads call it before they read.
//
// The time counts from the last pull on the server's clock, so a phone
// whose clock is wrong counts right. Setting the clock back cannot extend
// the time: the replica keeps the highest time it has seen, and a clock
// found more than clockTolerance behind it locks the replica until the
// clock is right again or a sync learns the server's time again.
func (r *Replica) unlocked(ctx context.Context) error {
	var s lockState
	err := r.db.R.QueryRowContext(ctx, `SELECT lock_after_days, wipe_after_days, synced_server_at, seen_at, clock_skew_ms
		FROM sync_state WHERE id = 1`).Scan(&s.lockDays, &s.wipeDays, &s.syncedAt, &s.seenAt, &s.skew)
	if err != nil {
		return fmt.Errorf("read the lock state: %w", err)
	}
	if s.syncedAt == 0 || (s.lockDays == 0 && s.wipeDays == 0) {
		return nil // never pulled, or no policy
	}
	now := r.now().UnixMilli() + s.skew
	if now < s.seenAt-clockTolerance.Milliseconds() {
		return &LockedError{LastSync: time.UnixMilli(s.syncedAt), ClockSetBack: true}
	}
	if now > s.seenAt+seenStep.Milliseconds() {
		err := r.db.Write(ctx, func(tx *sqlitex.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE sync_state SET seen_at = max(seen_at, ?) WHERE id = 1`, now)
			return err
		})
		if err != nil {
			return fmt.Errorf("record the time: %w", err)
		}
	}
	idle := time.Duration(max(now, s.seenAt)-s.syncedAt) * time.Millisecond
	if s.wipeDays > 0 && idle >= time.Duration(s.wipeDays)*day {
		d := &pb.DeviceRevoked{RevokedAt: timestamppb.New(time.UnixMilli(max(now, s.seenAt))),
			Reason: fmt.Sprintf("it had not synced for %d days: wiped under the lost-phone policy", s.wipeDays)}
		r.syncMu.Lock()
		defer r.syncMu.Unlock()
		if err := r.wipe(ctx, d); err != nil {
			return err
		}
		return &RevokedError{At: d.GetRevokedAt().AsTime().UTC(), Reason: d.GetReason()}
	}
	if s.lockDays > 0 && idle >= time.Duration(s.lockDays)*day {
		return &LockedError{LastSync: time.UnixMilli(s.syncedAt), Days: int(s.lockDays)}
	}
	return nil
}

// notePolicy records, with an applied pull, the policy it carried and the
// server's time: the lock counts from here. The skew is the server's clock
// less the phone's.
func (r *Replica) notePolicy(ctx context.Context, tx *sqlitex.Tx, res *pb.PullResponse) error {
	serverAt := int64(res.GetServerHlc() >> 16)
	if serverAt == 0 {
		return nil
	}
	p := res.GetDevicePolicy()
	_, err := tx.ExecContext(ctx, `UPDATE sync_state SET lock_after_days = ?, wipe_after_days = ?, synced_server_at = ?,
		seen_at = ?, clock_skew_ms = ? WHERE id = 1`,
		p.GetLockAfterDays(), p.GetWipeAfterDays(), serverAt, serverAt, serverAt-r.now().UnixMilli())
	return err
}
