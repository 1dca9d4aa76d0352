package syncengine

import "fmt"

// Household is one row of the ledger (台账), each field a register of its
// own: two workers editing different fields offline both keep their edit.
// GridID decides whose scope the household is in. Deleted is a tombstone
// with its own clock: an edit of another field does not bring it back.
type Household struct {
	ID                string
	GridID            Register[string]
	HeadName          Register[string]
	Address           Register[string]
	PhoneMobile       Register[string]
	PhoneLandline     Register[string]
	ResponsibleWorker Register[string]
	ResponsibleLeader Register[string]
	ResponsibleUnit   Register[string]
	MemberCount       Register[int64]
	HousingType       Register[string]
	Notes             Register[string]
	Deleted           Register[bool]
}

// householdFields is the storage order of the household's registers; append
// only, since stored clock columns follow it.
var householdFields = []field[Household]{
	{name: "grid_id", str: func(h *Household) *Register[string] { return &h.GridID }},
	{name: "head_name", str: func(h *Household) *Register[string] { return &h.HeadName }},
	{name: "address", str: func(h *Household) *Register[string] { return &h.Address }},
	{name: "phone_mobile", str: func(h *Household) *Register[string] { return &h.PhoneMobile }},
	{name: "phone_landline", str: func(h *Household) *Register[string] { return &h.PhoneLandline }},
	{name: "responsible_worker", str: func(h *Household) *Register[string] { return &h.ResponsibleWorker }},
	{name: "responsible_leader", str: func(h *Household) *Register[string] { return &h.ResponsibleLeader }},
	{name: "responsible_unit", str: func(h *Household) *Register[string] { return &h.ResponsibleUnit }},
	{name: "member_count", num: func(h *Household) *Register[int64] { return &h.MemberCount }},
	{name: "housing_type", str: func(h *Household) *Register[string] { return &h.HousingType }},
	{name: "notes", str: func(h *Household) *Register[string] { return &h.Notes }},
	{name: "deleted", flag: func(h *Household) *Register[bool] { return &h.Deleted }},
}

// HouseholdFieldNames lists the household's fields by name, in storage order.
func HouseholdFieldNames() []string { return fieldNames(householdFields) }

// Merge joins o into h field by field and reports whether h changed. Both
// must be the same household.
func (h *Household) Merge(o Household) bool { return mergeFields(householdFields, h, &o) }

// Clocks returns the clock of every field, in storage order.
func (h *Household) Clocks() []Clock { return clocksOf(householdFields, h) }

// SetClocks restores the clocks returned by Clocks.
func (h *Household) SetClocks(c []Clock) { setClocks(householdFields, h, c) }

// MaxClock is the newest clock of any field.
func (h *Household) MaxClock() Clock { return maxClock(h.Clocks()) }

// SetField writes a field by name, parsing text for its type.
func (h *Household) SetField(name, text string, c Clock) error {
	f, err := findField(householdFields, name)
	if err != nil {
		return err
	}
	return f.set(h, text, c)
}

// Field renders a field's value by name.
func (h *Household) Field(name string) (string, error) {
	f, err := findField(householdFields, name)
	if err != nil {
		return "", err
	}
	return f.text(h), nil
}

// Validate checks a household state or delta.
func (h *Household) Validate() error {
	if err := checkID("household id", h.ID); err != nil {
		return err
	}
	if h.GridID.Set() {
		if err := checkID("grid_id", h.GridID.Value); err != nil {
			return err
		}
	}
	for _, f := range householdFields {
		if f.str == nil || f.name == "grid_id" {
			continue
		}
		limit := maxNameLen
		if f.name == "notes" || f.name == "address" {
			limit = maxTextLen
		}
		if err := checkText(f.name, f.str(h).Value, limit); err != nil {
			return err
		}
	}
	if n := h.MemberCount.Value; n < 0 || n > 1000 {
		return fmt.Errorf("%w: member_count %d out of range 0..1000", ErrInvalid, n)
	}
	return nil
}

// Person is a resident linked to a household (人房关联). HouseholdID is fixed
// at creation; every other field is a register.
type Person struct {
	ID          string
	HouseholdID string
	Name        Register[string]
	IDNumber    Register[string]
	Gender      Register[string]
	BirthDate   Register[string]
	Phone       Register[string]
	Relation    Register[string]
	Notes       Register[string]
	Deleted     Register[bool]
	// Residence is where the person stands in the ledger: one of the
	// Residence values ("" for not said).
	Residence Register[string]
}

// A person's residence status (户籍/流动人口/迁出).
const (
	ResidenceResident  = "resident"
	ResidenceMigrant   = "migrant"
	ResidenceMovedAway = "moved_away"
)

// ValidResidence reports whether s is a residence status, or "".
func ValidResidence(s string) bool {
	return s == "" || s == ResidenceResident || s == ResidenceMigrant || s == ResidenceMovedAway
}

var personFields = []field[Person]{
	{name: "name", str: func(p *Person) *Register[string] { return &p.Name }},
	{name: "id_number", str: func(p *Person) *Register[string] { return &p.IDNumber }},
	{name: "gender", str: func(p *Person) *Register[string] { return &p.Gender }},
	{name: "birth_date", str: func(p *Person) *Register[string] { return &p.BirthDate }},
	{name: "phone", str: func(p *Person) *Register[string] { return &p.Phone }},
	{name: "relation", str: func(p *Person) *Register[string] { return &p.Relation }},
	{name: "notes", str: func(p *Person) *Register[string] { return &p.Notes }},
	{name: "deleted", flag: func(p *Person) *Register[bool] { return &p.Deleted }},
	{name: "residence", str: func(p *Person) *Register[string] { return &p.Residence }},
}

// PersonFieldNames lists the person's fields by name, in storage order.
func PersonFieldNames() []string { return fieldNames(personFields) }

// Merge joins o into p field by field and reports whether p changed. A
// different HouseholdID (which honest replicas never send) resolves to the
// smaller id, so that the merge stays commutative.
func (p *Person) Merge(o Person) bool {
	changed := false
	if p.HouseholdID == "" || (o.HouseholdID != "" && o.HouseholdID < p.HouseholdID) {
		changed = p.HouseholdID != o.HouseholdID
		p.HouseholdID = o.HouseholdID
	}
	return mergeFields(personFields, p, &o) || changed
}

// Clocks returns the clock of every field, in storage order.
func (p *Person) Clocks() []Clock { return clocksOf(personFields, p) }

// SetClocks restores the clocks returned by Clocks.
func (p *Person) SetClocks(c []Clock) { setClocks(personFields, p, c) }

// MaxClock is the newest clock of any field.
func (p *Person) MaxClock() Clock { return maxClock(p.Clocks()) }

// SetField writes a field by name, parsing text for its type.
func (p *Person) SetField(name, text string, c Clock) error {
	f, err := findField(personFields, name)
	if err != nil {
		return err
	}
	return f.set(p, text, c)
}

// Field renders a field's value by name.
func (p *Person) Field(name string) (string, error) {
	f, err := findField(personFields, name)
	if err != nil {
		return "", err
	}
	return f.text(p), nil
}

// Validate checks a person state or delta.
func (p *Person) Validate() error {
	if err := checkID("person id", p.ID); err != nil {
		return err
	}
	if err := checkID("household_id", p.HouseholdID); err != nil {
		return err
	}
	for _, f := range personFields {
		if f.str == nil {
			continue
		}
		limit := maxNameLen
		if f.name == "notes" {
			limit = maxTextLen
		}
		if err := checkText(f.name, f.str(p).Value, limit); err != nil {
			return err
		}
	}
	if !ValidResidence(p.Residence.Value) {
		return fmt.Errorf("%w: residence %q is none of resident, migrant, moved_away", ErrInvalid, truncate(p.Residence.Value))
	}
	return nil
}
