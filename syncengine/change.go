package syncengine

import "fmt"

// Change is one entry of a device's outbox: a delta of exactly one row,
// identified by a client-generated id that makes pushing it idempotent.
type Change struct {
	ID        string
	Household *Household
	Person    *Person
	Tag       *TagElement
	Visit     *Visit
	Amendment *Amendment
	// Digest fingerprints the change as the server received it (empty
	// elsewhere). A change id belongs to the device that first pushed it
	// with its content: the same id again with another digest is not a
	// resend but a different change, and is refused.
	Digest string
}

// MaxChangesPerPush bounds one push.
const MaxChangesPerPush = 1000

// Validate checks the change and its payload.
func (c *Change) Validate() error {
	if err := checkID("change id", c.ID); err != nil {
		return err
	}
	n := 0
	var err error
	if c.Household != nil {
		n++
		err = c.Household.Validate()
	}
	if c.Person != nil {
		n++
		err = c.Person.Validate()
	}
	if c.Tag != nil {
		n++
		err = c.Tag.Validate()
	}
	if c.Visit != nil {
		n++
		err = c.Visit.Validate()
	}
	if c.Amendment != nil {
		n++
		err = c.Amendment.Validate()
	}
	if n != 1 {
		return fmt.Errorf("%w: change %s carries %d payloads, want 1", ErrInvalid, c.ID, n)
	}
	if err != nil {
		return fmt.Errorf("change %s: %w", c.ID, err)
	}
	return nil
}

// MaxClock is the newest clock the change carries, for the skew check.
func (c *Change) MaxClock() Clock {
	switch {
	case c.Household != nil:
		return c.Household.MaxClock()
	case c.Person != nil:
		return c.Person.MaxClock()
	case c.Tag != nil:
		return c.Tag.Clock
	case c.Visit != nil:
		return c.Visit.Clock
	case c.Amendment != nil:
		return c.Amendment.Clock
	}
	return Clock{}
}

// Kind names the payload, for logs and errors.
func (c *Change) Kind() string {
	switch {
	case c.Household != nil:
		return "household"
	case c.Person != nil:
		return "person"
	case c.Tag != nil:
		return "tag"
	case c.Visit != nil:
		return "visit"
	case c.Amendment != nil:
		return "visit_amendment"
	}
	return "empty"
}
