package service

import (
	"context"
	"fmt"

	"github.com/doorbook/doorbook/server/authz"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// notInSubtree refuses an id outside the admin's subtree, or unknown: the
// same answer for both.
func notInSubtree(what, id string) error {
	return fmt.Errorf("%w: %s %s is not in your subtree", syncengine.ErrOutOfScope, what, id)
}

// eraseVisit blanks what an erasure takes from a visit of the household:
// its notes, its findings' notes and where the phone stood, which is where
// the household lives. The facts stay.
func eraseVisit(v *syncengine.Visit) {
	v.Notes, v.Position = "", nil
	for j := range v.Findings {
		v.Findings[j].Note = ""
	}
}

// ErasePersonalData blanks a household's personal fields (head, address,
// phones, notes), its persons' fields and the notes of its visits and their
// amendments, or one person's fields, under clocks newer than any the rows
// hold, so that the blanks win on every replica. Visits keep their facts.
// A backend that keeps old values in a log (store.Scrubber) is scrubbed
// after.
func (s *Service) ErasePersonalData(ctx context.Context, p store.Principal, t store.ErasureTarget, clock func(observed syncengine.Clock) syncengine.Clock) (store.Erased, error) {
	var out store.Erased
	if err := authz.Decide(p, authz.Erase, authz.Anywhere); err != nil {
		return out, err
	}
	err := s.db.Update(ctx, func(tx store.Tx) error {
		out = store.Erased{}
		householdID := t.HouseholdID
		var person syncengine.Person
		if t.PersonID != "" {
			found, err := tx.Persons(ctx, []string{t.PersonID})
			if err != nil {
				return err
			}
			if len(found) == 0 {
				return notInSubtree("person", t.PersonID)
			}
			person = found[0]
			householdID = person.HouseholdID
		}
		h, ok, err := tx.Household(ctx, householdID)
		if err != nil {
			return err
		}
		if !ok {
			return notInSubtree("household", householdID)
		}
		path, err := tx.NodePath(ctx, h.GridID.Value)
		if err != nil {
			return err
		}
		if authz.Decide(p, authz.Erase, authz.Node(path)) != nil {
			if t.PersonID != "" {
				return notInSubtree("person", t.PersonID)
			}
			return notInSubtree("household", householdID)
		}
		action := "erase household " + householdID
		if t.PersonID != "" {
			action = "erase person " + t.PersonID
		}
		if err := tx.InsertAudit(ctx, store.AuditEntry{ID: newID(), At: t.At, AdminID: p.ID, Action: action + ": " + t.Reason, NodeID: h.GridID.Value}); err != nil {
			return err
		}
		var marks []store.ErasureMark
		erasePerson := func(pr syncengine.Person, tags []syncengine.TagElement) error {
			blank := syncengine.NewRegister("", clock(pr.MaxClock()))
			pr.Merge(syncengine.Person{ID: pr.ID, HouseholdID: pr.HouseholdID, Name: blank, IDNumber: blank, Gender: blank,
				BirthDate: blank, Phone: blank, Relation: blank, Notes: blank, Residence: blank})
			if err := tx.PutPerson(ctx, &pr); err != nil {
				return err
			}
			out.Persons++
			marks = append(marks, store.ErasureMark{Kind: store.EntityPerson, ID: pr.ID})
			if err := tx.Touch(ctx, store.EntityPerson, pr.ID, pr.HouseholdID, ""); err != nil {
				return err
			}
			// The categories put on the person (a released prisoner, a
			// drug user) are personal data too: their adds go.
			for _, tg := range tags {
				if tg.PersonID != pr.ID || tg.Removed {
					continue
				}
				tg.Removed = true
				if err := tx.PutTag(ctx, &tg); err != nil {
					return err
				}
				if err := tx.Touch(ctx, store.EntityTag, tg.AddID, tg.HouseholdID, ""); err != nil {
					return err
				}
			}
			return nil
		}
		if t.PersonID != "" {
			b, err := tx.Ledgers(ctx, []string{householdID})
			if err != nil {
				return err
			}
			if err := erasePerson(person, b.Tags); err != nil {
				return err
			}
			return tx.RecordErasures(ctx, s.now(), marks)
		}

		c := clock(h.MaxClock())
		blank := syncengine.NewRegister("", c)
		h.Merge(syncengine.Household{ID: h.ID, HeadName: blank, Address: blank, PhoneMobile: blank, PhoneLandline: blank, Notes: blank})
		if err := tx.PutHousehold(ctx, &h); err != nil {
			return err
		}
		out.Households++
		// The household's clock: changes made before it and pushed later
		// are blanked on arrival (see pushScope.erasedBefore).
		marks = append(marks, store.ErasureMark{Kind: store.EntityHousehold, ID: h.ID, HLC: c.HLC})
		if err := tx.Touch(ctx, store.EntityHousehold, h.ID, h.ID, ""); err != nil {
			return err
		}
		b, err := tx.Bundle(ctx, []string{h.ID})
		if err != nil {
			return err
		}
		for _, pr := range b.Persons {
			if err := erasePerson(pr, b.Tags); err != nil {
				return err
			}
		}
		for i := range b.Visits {
			v := b.Visits[i]
			eraseVisit(&v)
			if err := tx.ReplaceVisit(ctx, &v); err != nil {
				return err
			}
			out.Visits++
			marks = append(marks, store.ErasureMark{Kind: store.EntityVisit, ID: v.ID})
			for _, hh := range v.HouseholdIDs {
				if err := tx.Touch(ctx, store.EntityVisit, v.ID, hh, ""); err != nil {
					return err
				}
			}
		}
		// Photos of the household are its personal data as much as its
		// notes are: every file of its visits goes, unless another visit
		// has it too. After the visits are rewritten (and, on PostgreSQL,
		// locked): an upload to one of them that committed first is
		// undone here, one that waits finds the erasure.
		visitIDs := make([]string, len(b.Visits))
		for i, v := range b.Visits {
			visitIDs[i] = v.ID
		}
		orphans, err := tx.UnlinkAttachments(ctx, visitIDs)
		if err != nil {
			return err
		}
		for _, k := range orphans {
			if err := tx.DropAttachment(ctx, k); err != nil {
				return err
			}
		}
		out.Files = len(orphans)
		for i := range b.Amendments {
			a := b.Amendments[i]
			a.Reason = "(erased)"
			if a.Notes != nil {
				a.Notes = new(string)
			}
			if err := tx.ReplaceAmendment(ctx, &a); err != nil {
				return err
			}
			out.Amendments++
			marks = append(marks, store.ErasureMark{Kind: store.EntityAmendment, ID: a.ID})
			vs, err := tx.Visits(ctx, []string{a.VisitID})
			if err != nil {
				return err
			}
			for _, v := range vs {
				for _, hh := range v.HouseholdIDs {
					if err := tx.Touch(ctx, store.EntityAmendment, a.ID, hh, ""); err != nil {
						return err
					}
				}
			}
		}
		return tx.RecordErasures(ctx, s.now(), marks)
	})
	if err != nil {
		return out, fmt.Errorf("erase personal data: %w", err)
	}
	// The snapshots kept for reuse hold what was erased: no new device
	// gets them, and each goes once sent.
	s.snapshots.close()
	s.fields.clear()
	if sc, ok := s.db.(store.Scrubber); ok {
		if out.Scrubbed, err = sc.Scrub(ctx); err != nil {
			return out, fmt.Errorf("erase personal data: %w", err)
		}
	} else {
		// A backend that keeps old values beside its data implements
		// store.Scrubber; this one keeps none.
		out.Scrubbed = true
	}
	return out, nil
}
