package syncengine

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// ItemState is where a tracked item stands. States only move forward: a
// replica merges the updates it has by taking the greatest state, so no
// order of arrival can send an item back.
type ItemState int32

const (
	ItemReported ItemState = 1 // 登记
	ItemAssigned ItemState = 2 // 挂牌督办: a unit answers for it by a deadline
	ItemResolved ItemState = 3 // 解决
	ItemClosed   ItemState = 4 // 销号
)

var itemStates = enum[ItemState]{"item state", map[ItemState]string{
	ItemReported: "reported", ItemAssigned: "assigned", ItemResolved: "resolved", ItemClosed: "closed",
}}

func (s ItemState) String() string { return itemStates.name(s) }

// Open reports whether the item still needs work.
func (s ItemState) Open() bool { return s < ItemResolved }

func (k AmendmentKind) itemState() ItemState {
	switch k {
	case AmendItemAssign:
		return ItemAssigned
	case AmendItemResolve:
		return ItemResolved
	case AmendItemClose:
		return ItemClosed
	}
	return 0
}

// ParseItemUpdate reads an item update's kind by the state it moves to
// (assigned, resolved, closed).
func ParseItemUpdate(s string) (AmendmentKind, error) {
	st, err := itemStates.parse(s)
	for _, k := range []AmendmentKind{AmendItemAssign, AmendItemResolve, AmendItemClose} {
		if err == nil && k.itemState() == st {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: an item moves to assigned, resolved or closed, not %q", ErrInvalid, truncate(s))
}

func (a *Amendment) validateItemUpdate() error {
	if a.Notes != nil || a.Form != FormUnspecified || !a.VisitedAt.IsZero() {
		return fmt.Errorf("%w: an item update does not correct the visit", ErrInvalid)
	}
	if a.Finding >= MaxFindings {
		return fmt.Errorf("%w: finding %d out of range", ErrInvalid, a.Finding)
	}
	if err := checkText("reason", a.Reason, maxTextLen); err != nil {
		return err
	}
	if err := checkText("unit", a.Unit, maxNameLen); err != nil {
		return err
	}
	if a.Kind == AmendItemAssign {
		if a.Unit == "" || a.Deadline.IsZero() {
			return fmt.Errorf("%w: an assignment names a unit and a deadline", ErrInvalid)
		}
		if a.Deadline.Before(minVisitTime) || a.Deadline.After(maxVisitTime) {
			return fmt.Errorf("%w: deadline %s is not a plausible date", ErrInvalid, a.Deadline.Format(time.RFC3339))
		}
		if len(a.CoUnits) > MaxCoUnits {
			return fmt.Errorf("%w: an assignment names at most %d co-units", ErrLimit, MaxCoUnits)
		}
		for i, u := range a.CoUnits {
			if err := checkText("co-unit", u, maxNameLen); err != nil {
				return err
			}
			if u == "" || u == a.Unit || slices.Contains(a.CoUnits[:i], u) {
				return fmt.Errorf("%w: co-unit %q is empty, the lead unit, or named twice", ErrInvalid, truncate(u))
			}
		}
	} else if a.Unit != "" || !a.Deadline.IsZero() || len(a.CoUnits) > 0 {
		return fmt.Errorf("%w: only an assignment names units and a deadline", ErrInvalid)
	}
	if a.Clock.IsZero() {
		return fmt.Errorf("%w: amendment %s has no clock", ErrInvalid, a.ID)
	}
	return nil
}

// Item is a finding that needs action, tracked from the visit that found it
// until it is closed off.
type Item struct {
	VisitID      string
	Finding      uint32
	Kind         FindingKind
	Note         string
	HouseholdIDs []string
	ReportedAt   time.Time
	ReportedBy   string
	State        ItemState
	// The newest assignment's unit and deadline, and the units it named
	// to help (配合单位).
	Unit     string
	Deadline time.Time
	CoUnits  []string
	// The note of the update that set the state.
	StateNote string
}

// Overdue reports whether the item is still open past its deadline.
func (it *Item) Overdue(now time.Time) bool {
	return it.State.Open() && !it.Deadline.IsZero() && now.After(it.Deadline)
}

// MaxCoUnits bounds the co-units of an assignment.
const MaxCoUnits = 8

// EncodeCoUnits renders co-units as they are stored: a JSON list, "" for
// none.
func EncodeCoUnits(units []string) string {
	if len(units) == 0 {
		return ""
	}
	b, _ := json.Marshal(units)
	return string(b)
}

// DecodeCoUnits reads EncodeCoUnits's text.
func DecodeCoUnits(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("%w: co-units %q: %v", ErrInvalid, truncate(s), err)
	}
	return out, nil
}

// EscalationPeriod is how long an item past its deadline stays with one
// node of the org tree before it goes up to the next, unless the
// installation's admins set another (the server's item policy).
const EscalationPeriod = 7 * 24 * time.Hour

// The org levels an item escalates through, by the API's numbers.
const (
	levelDistrict  = 1
	levelCommunity = 3
)

// EscalatedTo is the level of the org tree an item has been escalated to
// at now (the API's numbers): the community above its grid once it is
// open past its deadline, the street a period later, the district after
// another (and there it stays); 0 while it is not overdue.
func (it *Item) EscalatedTo(now time.Time) int32 { return it.EscalatedAfter(now, EscalationPeriod) }

// EscalatedAfter is EscalatedTo with period between two levels
// (EscalationPeriod if not positive).
func (it *Item) EscalatedAfter(now time.Time, period time.Duration) int32 {
	if !it.Overdue(now) {
		return 0
	}
	if period <= 0 {
		period = EscalationPeriod
	}
	steps := int64(now.Sub(it.Deadline) / period)
	return int32(max(levelDistrict, levelCommunity-min(steps, levelCommunity)))
}

// Items derives the tracked items of a visit from the visit and all its
// amendments, in any order: the result depends only on the set. A voided
// visit tracks nothing; an update naming a finding the visit does not
// track is ignored.
func Items(view VisitView) []Item {
	if view.Voided {
		return nil
	}
	var items []Item
	index := map[uint32]int{}
	for i, f := range view.Findings {
		if !f.Kind.Tracked() {
			continue
		}
		index[uint32(i)] = len(items)
		items = append(items, Item{
			VisitID: view.ID, Finding: uint32(i), Kind: f.Kind, Note: f.Note,
			HouseholdIDs: slices.Clone(view.HouseholdIDs), ReportedAt: view.VisitedAt, ReportedBy: view.VisitorID,
			State: ItemReported,
		})
	}
	// view.Amendments is in clock order, so the last assignment wins and the
	// note of the greatest state is that of its newest update.
	for _, a := range view.Amendments {
		i, ok := index[a.Finding]
		if !ok || !a.Kind.IsItemUpdate() {
			continue
		}
		it := &items[i]
		if st := a.Kind.itemState(); st >= it.State {
			it.State, it.StateNote = st, a.Reason
		}
		if a.Kind == AmendItemAssign {
			it.Unit, it.Deadline, it.CoUnits = a.Unit, a.Deadline, slices.Clone(a.CoUnits)
		}
	}
	return items
}
