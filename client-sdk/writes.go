package sdk

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/syncengine"
)

// setFields writes fields by name into a delta, in name order (so errors are
// deterministic), all under one clock: one user action is one write.
func setFields(fields map[string]string, set func(name, value string) error) error {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := set(n, fields[n]); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) requireGrid(ctx context.Context, gridID string) error {
	var n int
	if err := w.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM my_grids WHERE grid_id = ?`, gridID).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: grid %s is not one of yours", syncengine.ErrOutOfScope, gridID)
	}
	return nil
}

func (w *writer) household(ctx context.Context, id string) (syncengine.Household, error) {
	h, ok, err := statedb.GetHousehold(ctx, w.tx, id)
	if err != nil {
		return h, err
	}
	if !ok {
		return h, fmt.Errorf("%w: household %s is not in this replica", syncengine.ErrNotFound, id)
	}
	return h, nil
}

// RegisterHousehold adds a household to one of the worker's grids, with
// fields by name (see syncengine.HouseholdFieldNames), and returns its id.
func (r *Replica) RegisterHousehold(ctx context.Context, gridID string, fields map[string]string) (string, error) {
	var id string
	err := r.write(ctx, func(w *writer) error {
		if err := w.requireGrid(ctx, gridID); err != nil {
			return err
		}
		c := w.stamp()
		h := syncengine.Household{ID: w.newID(), GridID: syncengine.NewRegister(gridID, c)}
		err := setFields(fields, func(name, value string) error {
			if name == "grid_id" || name == "deleted" {
				return fmt.Errorf("%w: %s is not set at registration", syncengine.ErrInvalid, name)
			}
			return h.SetField(name, value, c)
		})
		if err != nil {
			return err
		}
		if err := h.Validate(); err != nil {
			return err
		}
		if _, _, _, err := statedb.MergeHousehold(ctx, w.tx, &h); err != nil {
			return err
		}
		w.tx.Changed(h.ID)
		id = h.ID
		return w.emit(ctx, syncengine.Change{Household: &h})
	})
	if err != nil {
		return "", fmt.Errorf("register household: %w", err)
	}
	return id, nil
}

// EditHousehold writes household fields by name. Only an admin moves a
// household to another grid, so grid_id is refused.
func (r *Replica) EditHousehold(ctx context.Context, id string, fields map[string]string) error {
	err := r.write(ctx, func(w *writer) error {
		if _, err := w.household(ctx, id); err != nil {
			return err
		}
		c := w.stamp()
		delta := syncengine.Household{ID: id}
		err := setFields(fields, func(name, value string) error {
			if name == "grid_id" {
				return fmt.Errorf("%w: only an admin moves a household to another grid", syncengine.ErrInvalid)
			}
			return delta.SetField(name, value, c)
		})
		if err != nil {
			return err
		}
		return w.mergeHousehold(ctx, &delta)
	})
	if err != nil {
		return fmt.Errorf("edit household %s: %w", id, err)
	}
	return nil
}

// DeleteHousehold marks a household deleted (a tombstone with its own clock).
func (r *Replica) DeleteHousehold(ctx context.Context, id string) error {
	return r.EditHousehold(ctx, id, map[string]string{"deleted": "true"})
}

func (w *writer) mergeHousehold(ctx context.Context, delta *syncengine.Household) error {
	if err := delta.Validate(); err != nil {
		return err
	}
	if _, _, _, err := statedb.MergeHousehold(ctx, w.tx, delta); err != nil {
		return err
	}
	w.tx.Changed(delta.ID)
	return w.emit(ctx, syncengine.Change{Household: delta})
}

// AddPerson links a new person to a household and returns the person's id.
func (r *Replica) AddPerson(ctx context.Context, householdID string, fields map[string]string) (string, error) {
	var id string
	err := r.write(ctx, func(w *writer) error {
		if _, err := w.household(ctx, householdID); err != nil {
			return err
		}
		c := w.stamp()
		p := syncengine.Person{ID: w.newID(), HouseholdID: householdID}
		if err := setFields(fields, func(name, value string) error { return p.SetField(name, value, c) }); err != nil {
			return err
		}
		id = p.ID
		return w.mergePerson(ctx, &p)
	})
	if err != nil {
		return "", fmt.Errorf("add person: %w", err)
	}
	return id, nil
}

// EditPerson writes person fields by name (see syncengine.PersonFieldNames).
func (r *Replica) EditPerson(ctx context.Context, id string, fields map[string]string) error {
	err := r.write(ctx, func(w *writer) error {
		cur, ok, err := statedb.GetPerson(ctx, w.tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: person %s is not in this replica", syncengine.ErrNotFound, id)
		}
		c := w.stamp()
		delta := syncengine.Person{ID: id, HouseholdID: cur.HouseholdID}
		if err := setFields(fields, func(name, value string) error { return delta.SetField(name, value, c) }); err != nil {
			return err
		}
		return w.mergePerson(ctx, &delta)
	})
	if err != nil {
		return fmt.Errorf("edit person %s: %w", id, err)
	}
	return nil
}

func (w *writer) mergePerson(ctx context.Context, p *syncengine.Person) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if _, _, _, err := statedb.MergePerson(ctx, w.tx, p); err != nil {
		return err
	}
	w.tx.Changed(p.HouseholdID)
	return w.emit(ctx, syncengine.Change{Person: p})
}

// AddTag puts a must-visit category on a household. Adding a category the
// household already has changes nothing.
func (r *Replica) AddTag(ctx context.Context, householdID, category string) error {
	return r.addTag(ctx, householdID, "", category)
}

// AddPersonTag puts a category on a person (a released prisoner in a
// household of five): the household counts it for its due list and
// key-group rate, as it does its own.
func (r *Replica) AddPersonTag(ctx context.Context, personID, category string) error {
	p, ok, err := statedb.GetPerson(ctx, r.db.R, personID)
	if err != nil {
		return fmt.Errorf("add tag: %w", err)
	}
	if !ok || p.Deleted.Value {
		return fmt.Errorf("add tag: %w: person %s", syncengine.ErrNotFound, personID)
	}
	return r.addTag(ctx, p.HouseholdID, personID, category)
}

func (r *Replica) addTag(ctx context.Context, householdID, personID, category string) error {
	err := r.write(ctx, func(w *writer) error {
		if _, err := w.household(ctx, householdID); err != nil {
			return err
		}
		if err := syncengine.ValidateCategoryCode(category); err != nil {
			return err
		}
		if _, known, err := statedb.GetCategory(ctx, w.tx, category); err != nil {
			return err
		} else if !known {
			return fmt.Errorf("%w: unknown category %q: the admins have not defined it (or this phone has not synced since)", syncengine.ErrInvalid, category)
		}
		elems, err := statedb.TagsOf(ctx, w.tx, []string{householdID})
		if err != nil {
			return err
		}
		live := 0
		for _, e := range elems {
			if !e.Removed {
				live++
			}
		}
		if live >= syncengine.MaxLiveTagsPerHousehold || len(elems) >= syncengine.MaxTagElementsPerHousehold {
			return syncengine.CapError("tags of household "+householdID, len(elems)+1, syncengine.MaxTagElementsPerHousehold)
		}
		// An add of its own even when the household shows the category
		// already: a co-worker may be removing the adds this phone has seen,
		// offline, and the worker's add must win over that (add-wins), or a
		// key person could fall off the must-visit list by a merge.
		t := syncengine.TagElement{AddID: w.newID(), HouseholdID: householdID, PersonID: personID, Category: category, Clock: w.stamp()}
		if _, _, err := statedb.MergeTag(ctx, w.tx, &t); err != nil {
			return err
		}
		w.tx.Changed(t.HouseholdID)
		return w.emit(ctx, syncengine.Change{Tag: &t})
	})
	if err != nil {
		return fmt.Errorf("add tag: %w", err)
	}
	return nil
}

// RemoveTag takes a category off a household: it removes the adds this
// replica has seen, so an add made concurrently elsewhere survives.
func (r *Replica) RemoveTag(ctx context.Context, householdID, category string) error {
	return r.removeTag(ctx, householdID, "", category)
}

// RemovePersonTag takes a category off a person, as RemoveTag does off a
// household.
func (r *Replica) RemovePersonTag(ctx context.Context, personID, category string) error {
	p, ok, err := statedb.GetPerson(ctx, r.db.R, personID)
	if err != nil {
		return fmt.Errorf("remove tag: %w", err)
	}
	if !ok {
		return fmt.Errorf("remove tag: %w: person %s", syncengine.ErrNotFound, personID)
	}
	return r.removeTag(ctx, p.HouseholdID, personID, category)
}

func (r *Replica) removeTag(ctx context.Context, householdID, personID, category string) error {
	err := r.write(ctx, func(w *writer) error {
		elems, err := statedb.TagsOf(ctx, w.tx, []string{householdID})
		if err != nil {
			return err
		}
		removes := syncengine.RemoveCategory(elems, personID, category)
		if len(removes) == 0 {
			if personID != "" {
				return fmt.Errorf("%w: person %s has no category %q", syncengine.ErrNotFound, personID, category)
			}
			return fmt.Errorf("%w: household %s has no category %q", syncengine.ErrNotFound, householdID, category)
		}
		for i := range removes {
			t := &removes[i]
			if _, _, err := statedb.MergeTag(ctx, w.tx, t); err != nil {
				return err
			}
			w.tx.Changed(t.HouseholdID)
			if err := w.emit(ctx, syncengine.Change{Tag: t}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove tag: %w", err)
	}
	return nil
}

// VisitInput describes a visit to record.
type VisitInput struct {
	// HouseholdIDs: one for in-person and phone visits, several for group
	// forms (talk, meeting, Q&A), which count for each.
	HouseholdIDs []string
	Form         syncengine.VisitForm
	Notes        string
	// VisitedAt defaults to now.
	VisitedAt time.Time

	Materials []syncengine.Material
	// Findings that are hazards or disputes become tracked items.
	Findings []syncengine.Finding
	// RevisitReasons open a follow-up due by RevisitDue (by default
	// DefaultRevisitDays after the visit).
	RevisitReasons []syncengine.RevisitReason
	RevisitDue     time.Time
	// Answers to the questionnaire of campaign CampaignID.
	CampaignID string
	Answers    []syncengine.SurveyAnswer
	// Position is the phone's fix when the app has one; nil otherwise
	// (never required, never to be made up).
	Position *syncengine.Position
}

// DefaultRevisitDays is when a follow-up is due if the visit sets no date.
const DefaultRevisitDays = 7

// RecordVisit records a visit by the replica's worker and returns its id.
func (r *Replica) RecordVisit(ctx context.Context, in VisitInput) (string, error) {
	var id string
	err := r.write(ctx, func(w *writer) error {
		for _, hh := range in.HouseholdIDs {
			if _, err := w.household(ctx, hh); err != nil {
				return err
			}
		}
		c := w.stamp()
		at := in.VisitedAt
		if at.IsZero() {
			at = c.Time()
		}
		at = at.UTC().Truncate(time.Millisecond)
		due := in.RevisitDue
		if len(in.RevisitReasons) > 0 && due.IsZero() {
			due = at.AddDate(0, 0, DefaultRevisitDays)
		}
		if !due.IsZero() {
			due = due.UTC().Truncate(time.Millisecond)
		}
		v := syncengine.Visit{
			ID: w.newID(), HouseholdIDs: in.HouseholdIDs, VisitorID: w.worker,
			VisitedAt: at, Form: in.Form, Notes: in.Notes, Clock: c,
			Materials: in.Materials, Findings: in.Findings, RevisitReasons: in.RevisitReasons, RevisitDue: due,
			CampaignID: in.CampaignID, Answers: in.Answers, Position: in.Position,
		}
		if p := v.Position; p != nil {
			// Stored to the millisecond, as every copy of the visit is.
			fix := *p
			fix.FixedAt = fix.FixedAt.UTC().Truncate(time.Millisecond)
			v.Position = &fix
		}
		if v.CampaignID != "" {
			if err := checkAnswers(ctx, w.tx, &v); err != nil {
				return err
			}
		}
		if err := v.Validate(); err != nil {
			return err
		}
		if _, err := statedb.InsertVisit(ctx, w.tx, &v); err != nil {
			return err
		}
		id = v.ID
		// Its households alone: the due list reads again only those.
		w.tx.Changed(v.HouseholdIDs...)
		return w.emit(ctx, syncengine.Change{Visit: &v})
	})
	if err != nil {
		return "", fmt.Errorf("record visit: %w", err)
	}
	return id, nil
}

// Correction is what an amendment changes; nil and zero fields stay as
// they are.
type Correction struct {
	Notes     *string
	Form      syncengine.VisitForm
	VisitedAt time.Time
}

// AmendVisit corrects a visit, with a reason. The original record stays.
func (r *Replica) AmendVisit(ctx context.Context, visitID, reason string, c Correction) (string, error) {
	return r.amend(ctx, syncengine.Amendment{VisitID: visitID, Kind: syncengine.AmendCorrect, Reason: reason,
		Notes: c.Notes, Form: c.Form, VisitedAt: c.VisitedAt.UTC().Truncate(time.Millisecond)})
}

// UpdateItem moves a tracked item (finding number finding of a visit)
// forward: assigned (with unit and deadline), resolved or closed. An item
// never moves back: the greatest state any replica recorded wins.
//
// An assignment may name co-units (配合单位) after its lead unit.
func (r *Replica) UpdateItem(ctx context.Context, visitID string, finding uint32, kind syncengine.AmendmentKind, note, unit string, deadline time.Time, coUnits ...string) (string, error) {
	if !kind.IsItemUpdate() {
		return "", fmt.Errorf("update item: %w: not an item update", syncengine.ErrInvalid)
	}
	if !deadline.IsZero() {
		deadline = deadline.UTC().Truncate(time.Millisecond)
	}
	return r.amend(ctx, syncengine.Amendment{VisitID: visitID, Kind: kind, Reason: note, Finding: finding, Unit: unit, Deadline: deadline,
		CoUnits: coUnits})
}

// VoidVisit voids a visit, with a reason. The original record stays.
func (r *Replica) VoidVisit(ctx context.Context, visitID, reason string) (string, error) {
	return r.amend(ctx, syncengine.Amendment{VisitID: visitID, Kind: syncengine.AmendVoid, Reason: reason})
}

func (r *Replica) amend(ctx context.Context, a syncengine.Amendment) (string, error) {
	err := r.write(ctx, func(w *writer) error {
		vs, err := statedb.Visits(ctx, w.tx, []string{a.VisitID})
		if err != nil {
			return err
		}
		if len(vs) == 0 {
			return fmt.Errorf("%w: visit %s is not in this replica", syncengine.ErrNotFound, a.VisitID)
		}
		if err := a.CheckItemUpdate(&vs[0]); err != nil {
			return err
		}
		a.ID, a.AuthorID, a.Clock = w.newID(), w.worker, w.stamp()
		// Refused here, offline, rather than queued to be refused by the
		// server at the next sync.
		if err := a.CheckAuthority(&vs[0], false); err != nil {
			return err
		}
		if err := a.Validate(); err != nil {
			return err
		}
		if _, err := statedb.InsertAmendment(ctx, w.tx, &a); err != nil {
			return err
		}
		w.tx.Changed(vs[0].HouseholdIDs...)
		return w.emit(ctx, syncengine.Change{Amendment: &a})
	})
	if err != nil {
		return "", fmt.Errorf("amend visit %s: %w", a.VisitID, err)
	}
	return a.ID, nil
}
