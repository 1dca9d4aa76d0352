package syncengine

// Value is what a register can hold.
type Value interface {
	string | int64 | bool
}

// Register is a last-writer-wins register: the value written under the
// newest clock. The zero Register has never been written.
type Register[T Value] struct {
	Value T
	Clock Clock
}

// Set reports whether the register has been written.
func (r Register[T]) Set() bool { return !r.Clock.IsZero() }

// Merge keeps the newer of r and o and reports whether r changed.
func (r *Register[T]) Merge(o Register[T]) bool {
	switch c := o.Clock.Compare(r.Clock); {
	case c < 0:
		return false
	case c > 0:
		*r = o
		return true
	}
	// Same clock: the same write, unless a replica reused a clock. Pick the
	// larger value so that the merge is commutative on any input.
	if valueLess(r.Value, o.Value) {
		r.Value = o.Value
		return true
	}
	return false
}

func valueLess[T Value](a, b T) bool {
	switch x := any(a).(type) {
	case string:
		return x < any(b).(string)
	case int64:
		return x < any(b).(int64)
	case bool:
		return !x && any(b).(bool)
	}
	return false
}

// NewRegister is a register written with v at c.
func NewRegister[T Value](v T, c Clock) Register[T] { return Register[T]{Value: v, Clock: c} }
