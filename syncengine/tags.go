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
	// PersonID, when set, names the person of the household the category
	// is on (a released prisoner in a household of five): the household
	// counts it as its own for its due list and key-group rate.
	PersonID string
	Category string
	Removed  bool
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
	// A replica that does not know persons' tags sends none: "" is not
	// known rather than the household's own.
	if t.PersonID == "" || (o.PersonID != "" && o.PersonID < t.PersonID) {
		changed = changed || t.PersonID != o.PersonID
		t.PersonID = o.PersonID
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

// RemoveCategory returns the removes of category on a household (person
// "") or on one of its persons: every add of it there among the elements
// seen so far, marked Removed.
func RemoveCategory(elements []TagElement, person, category string) []TagElement {
	var out []TagElement
	for _, e := range elements {
		if e.Category == category && e.PersonID == person && !e.Removed {
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
	if t.PersonID != "" {
		if err := checkID("person_id", t.PersonID); err != nil {
			return err
		}
	}
	return ValidateCategoryCode(t.Category)
}

// PersonCategories is the set of categories elements put on one person,
// sorted.
func PersonCategories(elements []TagElement, person string) []string {
	var own []TagElement
	for _, e := range elements {
		if e.PersonID == person && person != "" {
			own = append(own, e)
		}
	}
	return Categories(own)
}

// ValidateCategoryCode checks a must-visit category code: 1–64 characters of
// ASCII letters, digits, '_', '-' and '.'.
func ValidateCategoryCode(code string) error { return checkCode("category code", code) }
