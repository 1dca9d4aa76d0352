package service

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

func requireWorker(p store.Principal) error {
	if p.Kind != store.KindWorker {
		return fmt.Errorf("%w: sync is for workers' devices", syncengine.ErrOutOfScope)
	}
	return nil
}

// Push applies a device's changes in one transaction: each is admitted by
// the rules below or the whole push is refused, naming the change.
func (s *Service) Push(ctx context.Context, p store.Principal, cursor uint64, changes []syncengine.Change) (store.PushResult, error) {
	var res store.PushResult
	if err := requireWorker(p); err != nil {
		return res, err
	}
	// A visit never changes, so its own id proves it applied: a visit keeps
	// no applied-change row (two b-trees fewer for most of what phones
	// push), and a resend is known by the stored visit.
	var ids, visitIDs []string
	for i := range changes {
		if v := changes[i].Visit; v != nil {
			visitIDs = append(visitIDs, v.ID)
		} else {
			ids = append(ids, changes[i].ID)
		}
	}
	err := s.db.Update(ctx, func(tx store.Tx) error {
		res = store.PushResult{}
		ps, err := s.newPushScope(ctx, tx, p, cursor)
		if err != nil {
			return err
		}
		// Statements, not rows, are what a push pays for most: the changes
		// applied before and the households named are read for the whole
		// push at once rather than once per change.
		applied, err := tx.AppliedChanges(ctx, ids)
		if err != nil {
			return err
		}
		stored, err := storedVisits(ctx, tx, visitIDs)
		if err != nil {
			return err
		}
		if err := ps.prefetch(ctx, changes, applied, stored); err != nil {
			return err
		}
		for i := range changes {
			c := &changes[i]
			if v := c.Visit; v != nil {
				// Known by its own id alone: its change id is not kept,
				// nor checked against other changes'.
				if before, ok := stored[v.ID]; ok {
					if err := ps.resentVisit(ctx, &before, p, v); err != nil {
						return &store.ChangeError{ChangeID: c.ID, Err: err}
					}
					res.Duplicates++
					continue
				}
			} else if before, ok := applied[c.ID]; ok {
				if err := resent(before, p, c); err != nil {
					return &store.ChangeError{ChangeID: c.ID, Err: err}
				}
				res.Duplicates++
				continue
			}
			a := store.AppliedChange{CredentialID: p.CredentialID, Digest: c.Digest}
			if c.Visit == nil {
				applied[c.ID] = a // the same change twice in one push
			}
			// A visit's second copy in the push is found stored by its
			// insert.
			fresh, err := admit(ctx, tx, ps, p, c)
			if err != nil {
				return &store.ChangeError{ChangeID: c.ID, Err: fmt.Errorf("%s: %w", c.Kind(), err)}
			}
			if !fresh {
				res.Duplicates++
				continue
			}
			if c.Visit == nil {
				if err := tx.RecordApplied(ctx, c.ID, a); err != nil {
					return err
				}
			}
			res.Applied++
		}
		if len(ps.erased) == 0 {
			return nil
		}
		return tx.RecordErasures(ctx, s.now(), ps.erased)
	})
	if err != nil {
		return store.PushResult{}, fmt.Errorf("push: %w", err)
	}
	return res, nil
}

// resent reports whether c is a change applied before (a resend, counted as
// a duplicate), or fails if its id was applied before as another change.
func resent(a store.AppliedChange, p store.Principal, c *syncengine.Change) error {
	if a.CredentialID != p.CredentialID {
		return fmt.Errorf("%w: change id %s was pushed before by another device: a change id belongs to the device that made it", syncengine.ErrAlreadyExists, c.ID)
	}
	if a.Digest != "" && c.Digest != "" && a.Digest != c.Digest {
		return fmt.Errorf("%w: change id %s was pushed before with other content: a new change needs a new id", syncengine.ErrAlreadyExists, c.ID)
	}
	return nil
}

// storedVisits reads which of ids are stored visits.
func storedVisits(ctx context.Context, tx store.Tx, ids []string) (map[string]syncengine.Visit, error) {
	vs, err := tx.Visits(ctx, ids)
	if err != nil {
		return nil, err
	}
	stored := make(map[string]syncengine.Visit, len(ids))
	for _, v := range vs {
		stored[v.ID] = v
	}
	return stored, nil
}

// resentVisit reports whether v is a resend of the stored visit (counted as
// a duplicate), or fails if its id holds another visit. A resend made
// before its household was erased, and arriving after, still has what the
// erasure blanked: once a household of the visit was erased, a stored copy
// equal to v blanked is v.
func (ps *pushScope) resentVisit(ctx context.Context, stored *syncengine.Visit, p store.Principal, v *syncengine.Visit) error {
	if v.VisitorID != p.ID {
		return fmt.Errorf("%w: a device records visits of its own worker only", syncengine.ErrOutOfScope)
	}
	if stored.Equal(v) {
		return nil
	}
	other := fmt.Errorf("%w: visit %s was recorded with other content", syncengine.ErrAlreadyExists, v.ID)
	if erased, err := ps.erasedBefore(ctx, stored.HouseholdIDs); err != nil {
		return err
	} else if erased == 0 {
		return other
	}
	blank := *v
	blank.Findings = slices.Clone(v.Findings)
	eraseVisit(&blank)
	if stored.Equal(&blank) {
		return nil
	}
	return other
}

// admit applies one change of p's device if the rules admit it. It reports
// false for a visit another push stored while this one waited for it.
func admit(ctx context.Context, tx store.Tx, ps *pushScope, p store.Principal, c *syncengine.Change) (bool, error) {
	switch {
	case c.Household != nil:
		return true, admitHousehold(ctx, tx, ps, c.Household)
	case c.Person != nil:
		return true, admitPerson(ctx, tx, ps, c.Person)
	case c.Tag != nil:
		return true, admitTag(ctx, tx, ps, c.Tag)
	case c.Visit != nil:
		return admitVisit(ctx, tx, ps, p, c.Visit)
	case c.Amendment != nil:
		return true, admitAmendment(ctx, tx, ps, p, c.Amendment)
	}
	return false, fmt.Errorf("%w: empty change", syncengine.ErrInvalid)
}

func admitHousehold(ctx context.Context, tx store.Tx, ps *pushScope, delta *syncengine.Household) error {
	cur, exists, err := tx.Household(ctx, delta.ID)
	if err != nil {
		return err
	}
	if !exists {
		// A registration: it must place the household in one of the
		// worker's grids, as the device knew them.
		if !delta.GridID.Set() || !ps.recent[delta.GridID.Value] {
			return notYours(delta.ID)
		}
		cur = syncengine.Household{ID: delta.ID}
	} else if err := ps.judge(ctx, cur); err != nil {
		return err
	}
	before := cur.GridID.Value
	if !cur.Merge(*delta) && exists {
		return nil
	}
	if exists && cur.GridID.Value != before {
		return fmt.Errorf("%w: only an admin moves a household to another grid", syncengine.ErrOutOfScope)
	}
	if err := tx.PutHousehold(ctx, &cur); err != nil {
		return err
	}
	return tx.Touch(ctx, store.EntityHousehold, delta.ID, delta.ID, "")
}

func admitPerson(ctx context.Context, tx store.Tx, ps *pushScope, delta *syncengine.Person) error {
	if err := ps.check(ctx, delta.HouseholdID); err != nil {
		return err
	}
	found, err := tx.Persons(ctx, []string{delta.ID})
	if err != nil {
		return err
	}
	var cur syncengine.Person
	ok := len(found) > 0
	if ok {
		cur = found[0]
	}
	if ok && cur.HouseholdID != delta.HouseholdID {
		// Another household's person: say which only if it is the
		// worker's own.
		if ps.check(ctx, cur.HouseholdID) != nil {
			return fmt.Errorf("%w: person %s is not in your grids", syncengine.ErrOutOfScope, delta.ID)
		}
		return fmt.Errorf("%w: person %s belongs to household %s", syncengine.ErrInvalid, delta.ID, cur.HouseholdID)
	}
	if !ok {
		if gone, err := tx.WasCollected(ctx, store.EntityPerson, delta.ID); err != nil {
			return err
		} else if gone {
			return fmt.Errorf("%w: person %s was deleted", syncengine.ErrNotFound, delta.ID)
		}
		n, err := tx.CountPersons(ctx, delta.HouseholdID)
		if err != nil {
			return err
		}
		if n >= syncengine.MaxPersonsPerHousehold {
			return syncengine.CapError("persons of household "+delta.HouseholdID, n+1, syncengine.MaxPersonsPerHousehold)
		}
		// A resident added offline before their household was erased
		// arrives blank.
		h, err := ps.erasedBefore(ctx, []string{delta.HouseholdID})
		if err != nil {
			return err
		}
		if h > 0 && delta.MaxClock().HLC < h {
			blank := syncengine.NewRegister("", syncengine.Clock{HLC: h})
			delta = &syncengine.Person{ID: delta.ID, HouseholdID: delta.HouseholdID, Name: blank, IDNumber: blank, Gender: blank,
				BirthDate: blank, Phone: blank, Relation: blank, Notes: blank, Residence: blank, Deleted: delta.Deleted}
			ps.markErased(store.EntityPerson, delta.ID)
		}
		cur = syncengine.Person{ID: delta.ID}
	}
	if !cur.Merge(*delta) && ok {
		return nil
	}
	if err := tx.PutPerson(ctx, &cur); err != nil {
		return err
	}
	return tx.Touch(ctx, store.EntityPerson, delta.ID, delta.HouseholdID, "")
}

func admitTag(ctx context.Context, tx store.Tx, ps *pushScope, t *syncengine.TagElement) error {
	if err := ps.check(ctx, t.HouseholdID); err != nil {
		return err
	}
	found, err := tx.Tags(ctx, []string{t.AddID})
	if err != nil {
		return err
	}
	if len(found) == 0 {
		if gone, err := tx.WasCollected(ctx, store.EntityTag, t.AddID); err != nil {
			return err
		} else if gone {
			return fmt.Errorf("%w: tag %s was removed", syncengine.ErrNotFound, t.AddID)
		}
		if err := checkNewTag(ctx, tx, t); err != nil {
			return err
		}
		if err := tx.PutTag(ctx, t); err != nil {
			return err
		}
		return tx.Touch(ctx, store.EntityTag, t.AddID, t.HouseholdID, "")
	}
	cur := found[0]
	if cur.HouseholdID != t.HouseholdID || cur.Category != t.Category || cur.PersonID != "" && t.PersonID != "" && cur.PersonID != t.PersonID {
		if cur.HouseholdID != t.HouseholdID && ps.check(ctx, cur.HouseholdID) != nil {
			return fmt.Errorf("%w: tag %s is not in your grids", syncengine.ErrOutOfScope, t.AddID)
		}
		return fmt.Errorf("%w: tag %s is another household's or category's", syncengine.ErrInvalid, t.AddID)
	}
	if !cur.Merge(*t) {
		return nil
	}
	if err := tx.PutTag(ctx, &cur); err != nil {
		return err
	}
	return tx.Touch(ctx, store.EntityTag, t.AddID, t.HouseholdID, "")
}

// checkNewTag admits a tag element the server has not seen: its category
// must be one the admins defined, and its household must have room.
func checkNewTag(ctx context.Context, tx store.Tx, t *syncengine.TagElement) error {
	if _, known, err := tx.Category(ctx, t.Category); err != nil {
		return err
	} else if !known {
		return fmt.Errorf("%w: unknown category %q: the admins have not defined it", syncengine.ErrInvalid, t.Category)
	}
	if err := checkTagPerson(ctx, tx, t); err != nil {
		return err
	}
	live, all, err := tx.CountTags(ctx, t.HouseholdID)
	if err != nil {
		return err
	}
	if all >= syncengine.MaxTagElementsPerHousehold {
		return syncengine.CapError("tag adds and removals of household "+t.HouseholdID, all+1, syncengine.MaxTagElementsPerHousehold)
	}
	if !t.Removed && live >= syncengine.MaxLiveTagsPerHousehold {
		return syncengine.CapError("tags on household "+t.HouseholdID, live+1, syncengine.MaxLiveTagsPerHousehold)
	}
	return nil
}

// checkTagPerson admits a new tag element's person: one of its household
// (written before the tag, in this push or an earlier one).
func checkTagPerson(ctx context.Context, tx store.Tx, t *syncengine.TagElement) error {
	if t.PersonID == "" {
		return nil
	}
	found, err := tx.Persons(ctx, []string{t.PersonID})
	if err != nil {
		return err
	}
	if len(found) == 0 || found[0].HouseholdID != t.HouseholdID {
		return fmt.Errorf("%w: tag %s names person %s, who is not of household %s", syncengine.ErrInvalid, t.AddID, t.PersonID, t.HouseholdID)
	}
	return nil
}

func admitVisit(ctx context.Context, tx store.Tx, ps *pushScope, p store.Principal, v *syncengine.Visit) (bool, error) {
	if v.VisitorID != p.ID {
		return false, fmt.Errorf("%w: a device records visits of its own worker only", syncengine.ErrOutOfScope)
	}
	for _, hh := range v.HouseholdIDs {
		if err := ps.check(ctx, hh); err != nil {
			return false, err
		}
	}
	if v.CampaignID != "" {
		camp, ok, err := tx.Campaign(ctx, v.CampaignID)
		if err != nil {
			return false, err
		}
		if !ok {
			return false, fmt.Errorf("%w: campaign %s", syncengine.ErrNotFound, v.CampaignID)
		}
		if err := camp.CheckAnswers(v.Answers); err != nil {
			return false, err
		}
	}
	// A visit made before its household was erased, pushed after, keeps
	// its facts and loses its notes and place, as the erased ones did; its author's
	// phone gets the blank copy back (origin "").
	origin := p.CredentialID
	if h, err := ps.erasedBefore(ctx, v.HouseholdIDs); err != nil {
		return false, err
	} else if h > 0 && v.Clock.HLC < h {
		eraseVisit(v)
		origin = ""
		ps.markErased(store.EntityVisit, v.ID)
	}
	inserted, err := tx.InsertVisit(ctx, v)
	if err != nil || !inserted {
		return false, err
	}
	// Counted once inserted, so that the visits of this push count too.
	// Most households hold fewer visits in all than a day may: their
	// counts, read for the whole push at once (prefetch) and followed by
	// each visit it inserts, spare reading each visit's date.
	start, end := syncengine.VisitDay(v.VisitedAt)
	for _, hh := range v.HouseholdIDs {
		all, ok := ps.visits[hh]
		if ok {
			all++
			ps.visits[hh] = all
		} else if all, err = tx.CountVisits(ctx, hh, time.Time{}, time.Time{}); err != nil {
			return false, err
		}
		if all <= syncengine.MaxVisitsPerHouseholdPerDay {
			continue
		}
		n, err := tx.CountVisits(ctx, hh, start, end)
		if err != nil {
			return false, err
		}
		if n > syncengine.MaxVisitsPerHouseholdPerDay {
			return false, syncengine.CapError("visits to household "+hh+" on "+start.Format(time.DateOnly), n, syncengine.MaxVisitsPerHouseholdPerDay)
		}
	}
	for _, hh := range v.HouseholdIDs {
		if err := tx.Touch(ctx, store.EntityVisit, v.ID, hh, origin); err != nil {
			return false, err
		}
	}
	return true, nil
}

func admitAmendment(ctx context.Context, tx store.Tx, ps *pushScope, p store.Principal, a *syncengine.Amendment) error {
	if a.AuthorID != p.ID {
		return fmt.Errorf("%w: a device amends as its own worker only", syncengine.ErrOutOfScope)
	}
	vs, err := tx.Visits(ctx, []string{a.VisitID})
	if err != nil {
		return err
	}
	// An unknown visit and another grid's get the same answer.
	outside := fmt.Errorf("%w: visit %s is not in your grids", syncengine.ErrOutOfScope, a.VisitID)
	if len(vs) == 0 {
		return outside
	}
	// The author sees the visit through any of its households; a group
	// visit may cover some that are now in other workers' grids.
	var scopeErr error
	for _, hh := range vs[0].HouseholdIDs {
		if scopeErr = ps.check(ctx, hh); scopeErr == nil {
			break
		}
	}
	if scopeErr != nil {
		return outside
	}
	if err := a.CheckItemUpdate(&vs[0]); err != nil {
		return err
	}
	if err := a.CheckAuthority(&vs[0], false); err != nil {
		return err
	}
	origin := p.CredentialID
	if h, err := ps.erasedBefore(ctx, vs[0].HouseholdIDs); err != nil {
		return err
	} else if h > 0 && a.Clock.HLC < h {
		a.Reason = "(erased)"
		if a.Notes != nil {
			a.Notes = new(string)
		}
		origin = ""
		ps.markErased(store.EntityAmendment, a.ID)
	}
	inserted, err := tx.InsertAmendment(ctx, a)
	if err != nil || !inserted {
		return err
	}
	for _, hh := range vs[0].HouseholdIDs {
		if err := tx.Touch(ctx, store.EntityAmendment, a.ID, hh, origin); err != nil {
			return err
		}
	}
	return nil
}
