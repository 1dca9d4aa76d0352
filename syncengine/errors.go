package syncengine

import (
	"errors"
	"fmt"
)

// The closed set of domain errors. Callers wrap them with context; the
// server maps each to one Connect code and the SDK maps the codes back, so
// errors.Is works on both sides of the wire.
var (
	// ErrInvalid: the input breaks a rule of the data model.
	ErrInvalid = errors.New("invalid")
	// ErrNotFound: a referenced row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: an immutable record was sent again with other content.
	ErrAlreadyExists = errors.New("already exists")
	// ErrOutOfScope: the caller may not read or write this row.
	ErrOutOfScope = errors.New("out of scope")
	// ErrUnauthenticated: the caller's credentials are missing or not valid.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrStaleCursor: the cursor is older than what the server keeps; the
	// device must bootstrap again.
	ErrStaleCursor = errors.New("stale cursor")
	// ErrCursorExpired is the ErrStaleCursor of a cursor older than the
	// server's collection horizon (rather than one from a database since
	// restored): the server has everything the device pushed.
	ErrCursorExpired = fmt.Errorf("%w: older than the server's horizon", ErrStaleCursor)
	// ErrClockSkew: a clock runs too far ahead of the server's.
	ErrClockSkew = errors.New("clock skew")
	// ErrLimit: the input exceeds a size or count limit.
	ErrLimit = errors.New("limit exceeded")
)
