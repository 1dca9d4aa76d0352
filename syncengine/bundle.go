package syncengine

// Bundle is a set of replicated rows: what a pull batch or a bootstrap page
// carries, and what a household is whole (with its persons, tags, visits and
// the visits' amendments).
type Bundle struct {
	Households []Household
	Persons    []Person
	Tags       []TagElement
	Visits     []Visit
	Amendments []Amendment
}

// Rows counts the rows of the bundle.
func (b *Bundle) Rows() int {
	return len(b.Households) + len(b.Persons) + len(b.Tags) + len(b.Visits) + len(b.Amendments)
}
