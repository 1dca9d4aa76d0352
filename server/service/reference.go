package service

import (
	"context"
	"fmt"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/server/authz"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// PutCategory merges a category stamped by the server; with onlyNew, a
// category already defined is left alone (applied false).
func (s *Service) PutCategory(ctx context.Context, p store.Principal, delta syncengine.Category, onlyNew bool) (syncengine.Category, bool, error) {
	if err := delta.Validate(); err != nil {
		return delta, false, err
	}
	var merged syncengine.Category
	applied := false
	err := s.db.Update(ctx, func(tx store.Tx) error {
		applied = false // fn may run again (store.Backend.Update)
		if err := authz.Decide(p, authz.DefineCategory, authz.Installation); err != nil {
			return err
		}
		cur, ok, err := tx.Category(ctx, delta.Code)
		if err != nil {
			return err
		}
		if ok && onlyNew {
			merged = cur
			return nil
		}
		if !ok {
			cur = syncengine.Category{Code: delta.Code}
		}
		if !cur.Merge(delta) && ok {
			merged = cur
			return nil
		}
		merged, applied = cur, true
		return tx.PutCategory(ctx, &merged)
	})
	if err != nil {
		return merged, false, fmt.Errorf("put category: %w", err)
	}
	return merged, applied, nil
}

// ListCategories lists every category, deleted ones included.
func (s *Service) ListCategories(ctx context.Context, p store.Principal) ([]syncengine.Category, error) {
	if err := authz.Decide(p, authz.ReadOrg, authz.Anywhere); err != nil {
		return nil, err
	}
	var out []syncengine.Category
	err := s.db.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.Categories(ctx, 0)
		return err
	})
	return out, err
}

// PutCampaign merges a campaign stamped by the server. Its node, before
// and after, must be one p manages campaigns of; a new campaign needs a
// node, a name and a window.
func (s *Service) PutCampaign(ctx context.Context, p store.Principal, delta syncengine.Campaign) (syncengine.Campaign, error) {
	if err := delta.Validate(); err != nil {
		return delta, err
	}
	var merged syncengine.Campaign
	err := s.db.Update(ctx, func(tx store.Tx) error {
		cur, ok, err := tx.Campaign(ctx, delta.ID)
		if err != nil {
			return err
		}
		if ok {
			if _, err := node(ctx, tx, p, authz.ManageCampaign, cur.NodeID.Value); err != nil {
				return err
			}
		} else if !delta.NodeID.Set() || delta.Name.Value == "" || !delta.StartsAt.Set() || !delta.EndsAt.Set() {
			return fmt.Errorf("%w: a new campaign needs a node, a name and a window", syncengine.ErrInvalid)
		}
		if delta.NodeID.Set() {
			if _, err := node(ctx, tx, p, authz.ManageCampaign, delta.NodeID.Value); err != nil {
				return err
			}
		}
		if !ok {
			cur = syncengine.Campaign{ID: delta.ID}
		}
		merged = cur
		changed := merged.Merge(delta)
		if merged.EndsAt.Value <= merged.StartsAt.Value {
			return fmt.Errorf("%w: campaign ends before it starts", syncengine.ErrInvalid)
		}
		if !changed && ok {
			return nil
		}
		return tx.PutCampaign(ctx, &merged)
	})
	if err != nil {
		return merged, fmt.Errorf("put campaign: %w", err)
	}
	return merged, nil
}

// ListCampaigns lists the campaigns p sees: of nodes in p's subtree and of
// the nodes above it.
func (s *Service) ListCampaigns(ctx context.Context, p store.Principal) ([]syncengine.Campaign, error) {
	if err := authz.Decide(p, authz.ReadCampaign, authz.Anywhere); err != nil {
		return nil, err
	}
	var out []syncengine.Campaign
	err := s.db.View(ctx, func(tx store.Tx) error {
		all, err := tx.Campaigns(ctx)
		if err != nil {
			return err
		}
		paths := map[string][]string{}
		for _, c := range all {
			n := c.NodeID.Value
			if _, ok := paths[n]; !ok {
				if paths[n], err = tx.NodePath(ctx, n); err != nil {
					return err
				}
			}
			if authz.Decide(p, authz.ReadCampaign, authz.Node(paths[n])) == nil {
				out = append(out, c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	return out, nil
}

// UpdateItem records an item update (an amendment stamped by the server)
// of a visit to a household of p's subtree.
func (s *Service) UpdateItem(ctx context.Context, p store.Principal, a syncengine.Amendment) error {
	if err := authz.Decide(p, authz.UpdateItem, authz.Anywhere); err != nil {
		return err
	}
	if !a.Kind.IsItemUpdate() {
		return fmt.Errorf("%w: not an item update", syncengine.ErrInvalid)
	}
	if err := a.Validate(); err != nil {
		return err
	}
	err := s.db.Update(ctx, func(tx store.Tx) error {
		vs, err := tx.Visits(ctx, []string{a.VisitID})
		if err != nil {
			return err
		}
		// An unknown visit and one outside the subtree get the same answer:
		// an admin learns nothing of what lies outside it.
		outside := fmt.Errorf("%w: visit %s is not in your subtree", syncengine.ErrOutOfScope, a.VisitID)
		if len(vs) == 0 {
			return outside
		}
		v := vs[0]
		hs, err := tx.Households(ctx, v.HouseholdIDs)
		if err != nil {
			return err
		}
		inScope := false
		for _, h := range hs {
			path, err := tx.NodePath(ctx, h.GridID.Value)
			if err != nil {
				return err
			}
			if authz.Decide(p, authz.UpdateItem, authz.Node(path)) == nil {
				inScope = true
			}
		}
		if !inScope {
			return outside
		}
		if err := a.CheckItemUpdate(&v); err != nil {
			return err
		}
		if err := a.CheckAuthority(&v, true); err != nil {
			return err
		}
		if _, err := tx.InsertAmendment(ctx, &a); err != nil {
			return err
		}
		for _, h := range v.HouseholdIDs {
			if err := tx.Touch(ctx, store.EntityAmendment, a.ID, h, ""); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update item: %w", err)
	}
	return nil
}

// SetRanking sets how a campaign ranks the communities (fieldwork.Ranking),
// checked against the campaign's questions. The campaign's node must lie
// in p's subtree.
func (s *Service) SetRanking(ctx context.Context, p store.Principal, campaignID string, r fieldwork.Ranking) (fieldwork.Ranking, error) {
	if err := authz.Decide(p, authz.ManageCampaign, authz.Anywhere); err != nil {
		return r, err
	}
	err := s.db.Update(ctx, func(tx store.Tx) error {
		c, ok, err := tx.Campaign(ctx, campaignID)
		if err != nil {
			return err
		}
		if !ok || c.Deleted.Value {
			return fmt.Errorf("%w: campaign %s", syncengine.ErrNotFound, campaignID)
		}
		if _, err := node(ctx, tx, p, authz.ManageCampaign, c.NodeID.Value); err != nil {
			return err
		}
		if err := r.Validate(c.Questions()); err != nil {
			return err
		}
		return tx.PutRanking(ctx, campaignID, fieldwork.EncodeRanking(r))
	})
	if err != nil {
		return r, fmt.Errorf("set ranking: %w", err)
	}
	return fieldwork.DecodeRanking(fieldwork.EncodeRanking(r))
}
