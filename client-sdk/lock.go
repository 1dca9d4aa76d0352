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
// whose clock is wrong counts right. Setting the clock back does not
// extend the time once the replica has seen it move on: it keeps the
// highest time it has seen (on every read, and every tick of RunSync), and
// a clock found more than clockTolerance behind that locks the replica
// until the clock is right again or a sync learns the server's time. What
// no phone can tell offline is a clock set back before the app ran again:
// the lock then counts from the highest time the app saw.
func (r *Replica) unlocked(ctx context.Context) error {
	st, wipe, err := r.judgeLock(ctx)
	if err != nil || !wipe {
		return err
	}
	// The wipe takes the sync's lock. A read must not wait for it: a sync
	// in flight may be the one calling (its progress callback), and may
	// unlock the replica. Until it ends, the data stays locked.
	if !r.syncMu.TryLock() {
		return &LockedError{LastSync: time.UnixMilli(st.syncedAt), Days: int(st.lockDays)}
	}
	defer r.syncMu.Unlock()
	// Judged again under the lock: a sync may have just succeeded.
	if st, wipe, err = r.judgeLock(ctx); err != nil || !wipe {
		return err
	}
	now := max(r.now().UnixMilli()+st.skew, st.seenAt)
	d := &pb.DeviceRevoked{RevokedAt: timestamppb.New(time.UnixMilli(now)),
		Reason: fmt.Sprintf("it had not synced for %d days: wiped under the lost-phone policy", st.wipeDays)}
	if err := r.wipe(ctx, d); err != nil {
		return err
	}
	return &RevokedError{At: d.GetRevokedAt().AsTime().UTC(), Reason: d.GetReason()}
}

func (r *Replica) readLock(ctx context.Context) (lockState, error) {
	var s lockState
	err := r.db.R.QueryRowContext(ctx, `SELECT lock_after_days, wipe_after_days, synced_server_at, seen_at, clock_skew_ms
		FROM sync_state WHERE id = 1`).Scan(&s.lockDays, &s.wipeDays, &s.syncedAt, &s.seenAt, &s.skew)
	if err != nil {
		return s, fmt.Errorf("read the lock state: %w", err)
	}
	return s, nil
}

// judgeLock reads the lock state, records the time seen, and says whether
// the replica is past its wipe; a lock is its error.
func (r *Replica) judgeLock(ctx context.Context) (s lockState, wipe bool, err error) {
	if s, err = r.readLock(ctx); err != nil {
		return s, false, err
	}
	if s.syncedAt == 0 || (s.lockDays == 0 && s.wipeDays == 0) {
		return s, false, nil // never pulled, or no policy
	}
	now := r.now().UnixMilli() + s.skew
	if now < s.seenAt-clockTolerance.Milliseconds() {
		return s, false, &LockedError{LastSync: time.UnixMilli(s.syncedAt), ClockSetBack: true}
	}
	if err := r.noteSeen(ctx, s, now); err != nil {
		return s, false, err
	}
	idle := time.Duration(max(now, s.seenAt)-s.syncedAt) * time.Millisecond
	if s.wipeDays > 0 && idle >= time.Duration(s.wipeDays)*day {
		return s, true, nil
	}
	if s.lockDays > 0 && idle >= time.Duration(s.lockDays)*day {
		return s, false, &LockedError{LastSync: time.UnixMilli(s.syncedAt), Days: int(s.lockDays)}
	}
	return s, false, nil
}

// noteSeen records now as the highest time seen, at most every seenStep.
func (r *Replica) noteSeen(ctx context.Context, s lockState, now int64) error {
	if now <= s.seenAt+seenStep.Milliseconds() {
		return nil
	}
	err := r.db.Write(ctx, func(tx *sqlitex.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE sync_state SET seen_at = max(seen_at, ?) WHERE id = 1`, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("record the time: %w", err)
	}
	return nil
}

// seeTime records the time as seen, for a replica with a policy: the sync
// loop calls it on every tick, so that an app left running keeps the
// highest time even while no one reads.
func (r *Replica) seeTime(ctx context.Context) {
	s, err := r.readLock(ctx)
	if err != nil || s.syncedAt == 0 || (s.lockDays == 0 && s.wipeDays == 0) {
		return
	}
	if now := r.now().UnixMilli() + s.skew; now >= s.seenAt-clockTolerance.Milliseconds() {
		_ = r.noteSeen(ctx, s, now)
	}
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
