package syncengine

import (
	"fmt"
	"strconv"
	"strings"
)

// field describes one register of a row type E, so that merging, clock
// storage and edits by name are written once for households and persons.
// Exactly one accessor is set.
type field[E any] struct {
	name string
	str  func(*E) *Register[string]
	num  func(*E) *Register[int64]
	flag func(*E) *Register[bool]
}

func (f field[E]) clock(e *E) Clock {
	switch {
	case f.str != nil:
		return f.str(e).Clock
	case f.num != nil:
		return f.num(e).Clock
	default:
		return f.flag(e).Clock
	}
}

func (f field[E]) setClock(e *E, c Clock) {
	switch {
	case f.str != nil:
		f.str(e).Clock = c
	case f.num != nil:
		f.num(e).Clock = c
	default:
		f.flag(e).Clock = c
	}
}

func (f field[E]) merge(e, o *E) bool {
	switch {
	case f.str != nil:
		return f.str(e).Merge(*f.str(o))
	case f.num != nil:
		return f.num(e).Merge(*f.num(o))
	default:
		return f.flag(e).Merge(*f.flag(o))
	}
}

// text renders the field's value as the CLI and exports show it.
func (f field[E]) text(e *E) string {
	switch {
	case f.str != nil:
		return f.str(e).Value
	case f.num != nil:
		return strconv.FormatInt(f.num(e).Value, 10)
	default:
		return strconv.FormatBool(f.flag(e).Value)
	}
}

// set parses text into the field and stamps it with c.
func (f field[E]) set(e *E, text string, c Clock) error {
	switch {
	case f.str != nil:
		*f.str(e) = NewRegister(text, c)
	case f.num != nil:
		n, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: %s must be a whole number, got %q", ErrInvalid, f.name, text)
		}
		*f.num(e) = NewRegister(n, c)
	default:
		b, err := strconv.ParseBool(strings.TrimSpace(text))
		if err != nil {
			return fmt.Errorf("%w: %s must be true or false, got %q", ErrInvalid, f.name, text)
		}
		*f.flag(e) = NewRegister(b, c)
	}
	return nil
}

func mergeFields[E any](fields []field[E], e, o *E) bool {
	changed := false
	for _, f := range fields {
		if f.merge(e, o) {
			changed = true
		}
	}
	return changed
}

func clocksOf[E any](fields []field[E], e *E) []Clock {
	clocks := make([]Clock, len(fields))
	for i, f := range fields {
		clocks[i] = f.clock(e)
	}
	return clocks
}

func setClocks[E any](fields []field[E], e *E, clocks []Clock) {
	for i, f := range fields {
		if i < len(clocks) {
			f.setClock(e, clocks[i])
		}
	}
}

func findField[E any](fields []field[E], name string) (field[E], error) {
	for _, f := range fields {
		if f.name == name {
			return f, nil
		}
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return field[E]{}, fmt.Errorf("%w: unknown field %q (known: %s)", ErrInvalid, name, strings.Join(names, ", "))
}

func fieldNames[E any](fields []field[E]) []string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return names
}

// maxClock is the newest clock of a row, for the skew check.
func maxClock(clocks []Clock) Clock {
	var m Clock
	for _, c := range clocks {
		if c.Compare(m) > 0 {
			m = c
		}
	}
	return m
}
