package syncengine

import (
	"slices"
)

// TagElement is one add of a category to a household, in an add-wins
// observed-remove set. An add gets a fresh AddID; a remove marks the adds its
// replica has seen as Removed. A category is on the household while any of
// its adds is not removed, so a remove concurrent with an add (which it
// cannot have seen) leaves the tag on.
type TagElement struct {
	AddID       string
	HouseholdID string
	Category    string
	Removed     bool
	// Clock is when the add was made.
	Clock Clock
}

// Merge joins o into t (the same AddID) and reports whether t changed.
// Removed only ever goes from false to true.
func (t *TagElement) Merge(o TagElement) bool {
	changed := false
	if o.Removed && !t.Removed {
		t.Removed, changed = true, true
	}
	if o.Clock.Compare(t.Clock) > 0 {
		t.Clock, changed = o.Clock, true
	}
	// Household and category are fixed by the add; differing values come
	// only from a broken replica and resolve to the smaller, commutatively.
	if t.HouseholdID == "" || (o.HouseholdID != "" && o.HouseholdID < t.HouseholdID) {
		changed = changed || t.HouseholdID != o.HouseholdID
		t.HouseholdID = o.HouseholdID
	}
	if t.Category == "" || (o.Category != "" && o.Category < t.Category) {
		changed = changed || t.Category != o.Category
		t.Category = o.Category
	}
	return changed
}

// Categories is the set of categories that elements put on a household,
// sorted.
func Categories(elements []TagElement) []string {
	var out []string
	for _, e := range elements {
		if !e.Removed && !slices.Contains(out, e.Category) {
			out = append(out, e.Category)
		}
	}
	slices.Sort(out)
	return out
}

// RemoveCategory returns the removes of category on a household: every add
// of it among the elements seen so far, marked Removed.
func RemoveCategory(elements []TagElement, category string) []TagElement {
	var out []TagElement
	for _, e := range elements {
		if e.Category == category && !e.Removed {
			e.Removed = true
			out = append(out, e)
		}
	}
	return out
}

// Validate checks a tag element.
func (t *TagElement) Validate() error {
	if err := checkID("tag add_id", t.AddID); err != nil {
		return err
	}
	if err := checkID("household_id", t.HouseholdID); err != nil {
		return err
	}
	return ValidateCategoryCode(t.Category)
}

// ValidateCategoryCode checks a must-visit category code: 1–64 characters of
// ASCII letters, digits, '_', '-' and '.'.
func ValidateCategoryCode(code string) error { return checkCode("category code", code) }
