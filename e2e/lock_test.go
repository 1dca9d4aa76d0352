package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"

	sdk "github.com/doorbook/doorbook/client-sdk"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/syncengine"
)

// TestLostPhoneLocksAndWipes: the installation's lost-phone policy reaches
// a phone with its pull. Offline, the phone shows its data for the days
// the policy allows, then refuses reads (its pending visit kept) until a
// sync unlocks it; setting its clock back does not buy it time; past the
// wipe it deletes its data and its token, and must enrol again.
func TestLostPhoneLocksAndWipes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	const lockDays, wipeDays = 14, 30
	if _, err := e.Admin.SetDevicePolicy(ctx, &pb.SetDevicePolicyRequest{Policy: &pb.DevicePolicy{LockAfterDays: 30, WipeAfterDays: 30}}); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("a wipe no later than the lock: %v, want invalid_argument", err)
	}
	if _, err := e.Admin.SetDevicePolicy(ctx, &pb.SetDevicePolicyRequest{Policy: &pb.DevicePolicy{LockAfterDays: lockDays, WipeAfterDays: wipeDays}}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.Admin.GetDevicePolicy(ctx, &pb.GetDevicePolicyRequest{}); err != nil || got.GetPolicy().GetLockAfterDays() != lockDays || got.GetPolicy().GetWipeAfterDays() != wipeDays {
		t.Fatalf("the policy read back: %v %v", got, err)
	}
	phoneClock := &fakeNow{}
	worker, _ := e.worker("李明", e.Grids[0])
	phone := e.device("li-phone", worker, sdk.WithNow(phoneClock.Now))
	const marker = "Lock-Marker-5d1e"
	h, err := phone.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": marker, "address": marker + " Road"})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, phone)
	// Days pass for the phone and the server alike.
	days := func(n int) {
		e.now.Add(time.Duration(n) * 24 * time.Hour)
		phoneClock.Add(time.Duration(n) * 24 * time.Hour)
	}
	readable := func(what string) error {
		t.Helper()
		_, err := phone.Households(ctx)
		return err
	}

	days(lockDays - 1)
	if err := readable("a day before the lock"); err != nil {
		t.Fatalf("a day before the lock: %v", err)
	}
	if _, err := phone.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson}); err != nil {
		t.Fatal(err)
	}
	days(1)
	var locked *sdk.LockedError
	if err := readable("on the lock's day"); !errors.As(err, &locked) || locked.ClockSetBack || locked.Days != lockDays {
		t.Fatalf("reading on the lock's day: %v, want locked after %d days", err, lockDays)
	}
	for _, read := range []func() error{
		func() error { _, err := phone.Household(ctx, h); return err },
		func() error { _, err := phone.Due(ctx, "", phoneClock.Now()); return err },
		func() error { _, err := phone.Categories(ctx); return err },
		func() error { _, err := phone.Grids(ctx); return err },
	} {
		if err := read(); !errors.Is(err, sdk.ErrLocked) {
			t.Errorf("a read of a locked replica: %v, want ErrLocked", err)
		}
	}
	st, err := phone.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Locked == nil || st.Pending != 1 || len(st.Grids) != 0 {
		t.Errorf("the locked replica's status: locked %v, pending %d, grids %v; want locked, the visit kept, no grid shown", st.Locked, st.Pending, st.Grids)
	}

	// The clock set back three weeks: still locked, now for the clock.
	phoneClock.Add(-21 * 24 * time.Hour)
	if err := readable("the clock set back"); !errors.As(err, &locked) || !locked.ClockSetBack {
		t.Fatalf("reading with the clock set back: %v, want locked for the clock", err)
	}
	phoneClock.Add(21 * 24 * time.Hour)

	// A sync unlocks it and sends the visit kept.
	rep := mustSync(t, phone)
	if rep.Pushed != 1 {
		t.Errorf("the sync that unlocks pushed %d changes, want the visit kept", rep.Pushed)
	}
	if err := readable("after the sync"); err != nil {
		t.Fatalf("reading after a sync: %v", err)
	}
	// Set back after that sync, the clock locks it again.
	phoneClock.Add(-2 * 24 * time.Hour)
	if err := readable("set back after the sync"); !errors.Is(err, sdk.ErrLocked) {
		t.Fatalf("reading with the clock set back after a sync: %v, want ErrLocked", err)
	}
	phoneClock.Add(2 * 24 * time.Hour)

	// Offline past the wipe: the data and the token go.
	if !fileHolds(t, phone.Path(), marker) {
		t.Fatal("the marker is not in the replica's files before the wipe: the test cannot see one")
	}
	days(wipeDays)
	var revoked *sdk.RevokedError
	if err := readable("past the wipe"); !errors.As(err, &revoked) {
		t.Fatalf("reading past the wipe: %v, want the replica wiped", err)
	}
	if st, err := phone.Status(ctx); err != nil || st.Revoked == nil || st.Households != 0 || st.Pending != 0 || st.Enrolled {
		t.Errorf("after the wipe: %+v %v; want wiped, empty, not enrolled", st, err)
	}
	if fileHolds(t, phone.Path(), marker) {
		t.Error("the wiped replica's files still hold the household")
	}
	// Wiped once: later reads find nothing, and wipe nothing again.
	if got, err := phone.Households(ctx); err != nil || len(got) != 0 {
		t.Errorf("a read after the wipe: %v, %v; want nothing, no error", got, err)
	}
	if _, err := phone.Sync(ctx); !errors.Is(err, sdk.ErrDeviceRevoked) {
		t.Errorf("a sync after the wipe: %v, want ErrDeviceRevoked (enrol again)", err)
	}
}

// TestLockedReadDuringSync: a read from a sync's progress callback, on a
// replica past its wipe, neither waits for the sync (which holds the
// sync's lock) nor wipes what that sync is about to unlock: it is refused
// as locked, and the sync's success unlocks the replica whole.
func TestLockedReadDuringSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, 1)
	if _, err := e.Admin.SetDevicePolicy(ctx, &pb.SetDevicePolicyRequest{Policy: &pb.DevicePolicy{LockAfterDays: 7, WipeAfterDays: 14}}); err != nil {
		t.Fatal(err)
	}
	phoneClock := &fakeNow{}
	var phone *sdk.Replica
	var during []error
	worker, _ := e.worker("李明", e.Grids[0])
	phone = e.device("li-phone", worker, sdk.WithNow(phoneClock.Now), sdk.WithProgress(func(p sdk.Progress) {
		if phone != nil && p.Phase == "push" {
			_, err := phone.Households(ctx)
			during = append(during, err)
		}
	}))
	h, err := phone.RegisterHousehold(ctx, e.Grids[0], map[string]string{"head_name": "张伟", "address": "幸福路 1 号"})
	if err != nil {
		t.Fatal(err)
	}
	mustSync(t, phone)
	e.now.Add(15 * 24 * time.Hour)
	phoneClock.Add(15 * 24 * time.Hour)
	if _, err := phone.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson}); err != nil {
		t.Fatal(err)
	}
	during = nil
	mustSync(t, phone)
	if len(during) == 0 {
		t.Fatal("the sync reported no push progress: the test read nothing during it")
	}
	for _, err := range during {
		if !errors.Is(err, sdk.ErrLocked) {
			t.Errorf("a read during the sync, past the wipe: %v, want ErrLocked", err)
		}
	}
	if got, err := phone.Households(ctx); err != nil || len(got) != 1 {
		t.Errorf("after the sync: %d households, %v; want the household, unlocked", len(got), err)
	}
}
