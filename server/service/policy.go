package service

import (
	"context"
	"fmt"

	"github.com/doorbook/doorbook/server/authz"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// SetDevicePolicy sets the installation's lost-phone policy. A wipe, when
// set beside a lock, comes after it: a phone locks first and can still be
// unlocked by a sync before its data goes.
func (s *Service) SetDevicePolicy(ctx context.Context, p store.Principal, policy store.DevicePolicy) (store.DevicePolicy, error) {
	if err := authz.Decide(p, authz.SetPolicy, authz.Installation); err != nil {
		return store.DevicePolicy{}, fmt.Errorf("set the device policy: %w", err)
	}
	if policy.LockAfterDays != 0 && policy.WipeAfterDays != 0 && policy.WipeAfterDays <= policy.LockAfterDays {
		return store.DevicePolicy{}, fmt.Errorf("%w: a phone wipes itself (after %d days) only after it locks (after %d)",
			syncengine.ErrInvalid, policy.WipeAfterDays, policy.LockAfterDays)
	}
	err := s.db.Update(ctx, func(tx store.Tx) error { return tx.PutDevicePolicy(ctx, policy) })
	if err != nil {
		return store.DevicePolicy{}, fmt.Errorf("set the device policy: %w", err)
	}
	return policy, nil
}

// DevicePolicy reads the installation's lost-phone policy.
func (s *Service) DevicePolicy(ctx context.Context, p store.Principal) (store.DevicePolicy, error) {
	if err := authz.Decide(p, authz.ReadOrg, authz.Anywhere); err != nil {
		return store.DevicePolicy{}, fmt.Errorf("read the device policy: %w", err)
	}
	var policy store.DevicePolicy
	err := s.db.View(ctx, func(tx store.Tx) error {
		var err error
		policy, err = tx.DevicePolicy(ctx)
		return err
	})
	return policy, err
}

// maxEscalationDays bounds the item policy's period: a year.
const maxEscalationDays = 366

// SetItemPolicy sets the installation's item policy: how many days an
// overdue item stays with a level of the org tree before it goes up (0:
// syncengine.EscalationPeriod).
func (s *Service) SetItemPolicy(ctx context.Context, p store.Principal, policy store.ItemPolicy) (store.ItemPolicy, error) {
	if err := authz.Decide(p, authz.SetPolicy, authz.Installation); err != nil {
		return store.ItemPolicy{}, fmt.Errorf("set the item policy: %w", err)
	}
	if policy.EscalationDays > maxEscalationDays {
		return store.ItemPolicy{}, fmt.Errorf("%w: an item goes up a level after at most %d days", syncengine.ErrInvalid, maxEscalationDays)
	}
	err := s.db.Update(ctx, func(tx store.Tx) error { return tx.PutItemPolicy(ctx, policy) })
	if err != nil {
		return store.ItemPolicy{}, fmt.Errorf("set the item policy: %w", err)
	}
	return policy, nil
}

// ItemPolicy reads the installation's item policy.
func (s *Service) ItemPolicy(ctx context.Context, p store.Principal) (store.ItemPolicy, error) {
	if err := authz.Decide(p, authz.ReadOrg, authz.Anywhere); err != nil {
		return store.ItemPolicy{}, fmt.Errorf("read the item policy: %w", err)
	}
	var policy store.ItemPolicy
	err := s.db.View(ctx, func(tx store.Tx) error {
		var err error
		policy, err = tx.ItemPolicy(ctx)
		return err
	})
	return policy, err
}
