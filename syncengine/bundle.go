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

// Validate checks every row, as a replica does with rows a peer sent.
func (b *Bundle) Validate() error {
	for i := range b.Households {
		if err := b.Households[i].Validate(); err != nil {
			return err
		}
	}
	for i := range b.Persons {
		if err := b.Persons[i].Validate(); err != nil {
			return err
		}
	}
	for i := range b.Tags {
		if err := b.Tags[i].Validate(); err != nil {
			return err
		}
	}
	for i := range b.Visits {
		if err := b.Visits[i].Validate(); err != nil {
			return err
		}
	}
	for i := range b.Amendments {
		if err := b.Amendments[i].Validate(); err != nil {
			return err
		}
	}
	return nil
}
