package service

import (
	"context"
	"fmt"

	"github.com/doorbook/doorbook/server/authz"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// Import merges ledger rows (an admin's bulk load, or demo data) as if
// pushed, into households of p's subtree, in one transaction. It admits
// rows by the admin's subtree rather than a device's scope, and takes no
// amendments.
func (s *Service) Import(ctx context.Context, p store.Principal, b syncengine.Bundle) error {
	if err := authz.Decide(p, authz.ManageOrg, authz.Anywhere); err != nil {
		return err
	}
	// Phones refuse a batch with an invalid row: one such row imported
	// would stop every pull of its grid.
	if err := b.Validate(); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if len(b.Amendments) > 0 {
		return fmt.Errorf("import: %w: import does not take amendments", syncengine.ErrInvalid)
	}
	err := s.db.Update(ctx, func(tx store.Tx) error { return importRows(ctx, tx, p, b) })
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}

// importRows merges b's rows in tx, each into a household of p's subtree.
func importRows(ctx context.Context, tx store.Tx, p store.Principal, b syncengine.Bundle) error {
	grids := map[string]bool{}
	// inSubtree are the households checked (or written) in p's subtree:
	// a ledger's persons and tags come by the household.
	inSubtree := map[string]bool{}
	checkGrid := func(g string) error {
		if grids[g] {
			return nil
		}
		if err := checkGrids(ctx, tx, p, authz.ManageOrg, []string{g}); err != nil {
			return err
		}
		grids[g] = true
		return nil
	}
	for i := range b.Households {
		h := &b.Households[i]
		cur, exists, err := tx.Household(ctx, h.ID)
		if err != nil {
			return err
		}
		if !exists {
			cur = syncengine.Household{ID: h.ID}
		}
		before := cur.GridID.Value
		changed := cur.Merge(*h) || !exists
		if err := checkGrid(cur.GridID.Value); err != nil {
			return err
		}
		if exists && before != cur.GridID.Value {
			return fmt.Errorf("%w: import may not move household %s; use MoveHousehold", syncengine.ErrInvalid, h.ID)
		}
		inSubtree[h.ID] = true
		if changed {
			if err := tx.PutHousehold(ctx, &cur); err != nil {
				return err
			}
			if err := tx.Touch(ctx, store.EntityHousehold, h.ID, h.ID, ""); err != nil {
				return err
			}
		}
	}
	// Everything else must hang off a household of the subtree.
	inTree := func(hh string) error {
		if inSubtree[hh] {
			return nil
		}
		h, ok, err := tx.Household(ctx, hh)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: household %s", syncengine.ErrNotFound, hh)
		}
		if err := checkGrid(h.GridID.Value); err != nil {
			return err
		}
		inSubtree[hh] = true
		return nil
	}
	for i := range b.Persons {
		pr := &b.Persons[i]
		if err := inTree(pr.HouseholdID); err != nil {
			return err
		}
		found, err := tx.Persons(ctx, []string{pr.ID})
		if err != nil {
			return err
		}
		cur := syncengine.Person{ID: pr.ID}
		if len(found) > 0 {
			if cur = found[0]; cur.HouseholdID != pr.HouseholdID {
				return fmt.Errorf("%w: person %s belongs to household %s", syncengine.ErrInvalid, pr.ID, cur.HouseholdID)
			}
		}
		if cur.Merge(*pr) || len(found) == 0 {
			if err := tx.PutPerson(ctx, &cur); err != nil {
				return err
			}
			if err := tx.Touch(ctx, store.EntityPerson, pr.ID, pr.HouseholdID, ""); err != nil {
				return err
			}
		}
	}
	for i := range b.Tags {
		t := &b.Tags[i]
		if err := inTree(t.HouseholdID); err != nil {
			return err
		}
		found, err := tx.Tags(ctx, []string{t.AddID})
		if err != nil {
			return err
		}
		cur := *t
		if len(found) == 0 {
			if err := checkTagPerson(ctx, tx, t); err != nil {
				return err
			}
		}
		if len(found) > 0 {
			if cur = found[0]; cur.HouseholdID != t.HouseholdID || cur.Category != t.Category {
				return fmt.Errorf("%w: tag %s is another household's or category's", syncengine.ErrInvalid, t.AddID)
			}
		}
		if len(found) == 0 || cur.Merge(*t) {
			if err := tx.PutTag(ctx, &cur); err != nil {
				return err
			}
			if err := tx.Touch(ctx, store.EntityTag, t.AddID, t.HouseholdID, ""); err != nil {
				return err
			}
		}
	}
	for i := range b.Visits {
		v := &b.Visits[i]
		for _, hh := range v.HouseholdIDs {
			if err := inTree(hh); err != nil {
				return err
			}
		}
		inserted, err := tx.InsertVisit(ctx, v)
		if err != nil || !inserted {
			if err != nil {
				return err
			}
			continue
		}
		for _, hh := range v.HouseholdIDs {
			if err := tx.Touch(ctx, store.EntityVisit, v.ID, hh, ""); err != nil {
				return err
			}
		}
	}
	return nil
}
