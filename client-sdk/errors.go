package sdk

import (
	"errors"
	"fmt"
	"strings"

	"connectrpc.com/connect"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/internal/deadline"
	"github.com/doorbook/doorbook/internal/sqlitex"

	"github.com/doorbook/doorbook/syncengine"
)

// ErrNotEnrolled: the replica has no device token yet; call Enroll.
var ErrNotEnrolled = errors.New("replica not enrolled: enrol it with a code from an admin first")

// ErrStorageFull and ErrReadOnly: the phone's storage refused a write.
// The write (or the sync step) was rolled back whole; everything saved
// before is intact, and the same call succeeds once space is freed or the
// file is writable again.
var (
	ErrStorageFull = sqlitex.ErrFull
	ErrReadOnly    = sqlitex.ErrReadOnly
)

// remoteError is a call's failure as the server (or the network) told it:
// errors.Is finds both the domain error and the Connect error, and it
// prints each thing once: the call, the code, then the server's words
// without the call's name they may start with.
type remoteError struct {
	call string
	kind error
	err  *connect.Error
}

func (e *remoteError) Error() string {
	msg := strings.TrimPrefix(e.err.Message(), e.call+": ")
	if msg == "" {
		return e.call + ": " + e.err.Code().String()
	}
	return e.call + ": " + e.err.Code().String() + ": " + msg
}

func (e *remoteError) Unwrap() []error {
	if e.kind == nil {
		return []error{e.err}
	}
	return []error{e.kind, e.err}
}

// callError is fromConnect for a call named call ("push", "enroll").
func callError(call string, err error) error {
	if err == nil {
		return nil
	}
	var te *deadline.Error
	if errors.As(err, &te) {
		return fmt.Errorf("%s: %w: %w", call, ErrTimeout, te)
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return fmt.Errorf("%s: %w", call, err)
	}
	return &remoteError{call: call, kind: kindOf(err), err: ce}
}

// fromConnect maps a Connect error back to the domain error the server
// started from, so that errors.Is works on this side of the wire too.
func fromConnect(err error) error {
	if err == nil {
		return nil
	}
	kind := kindOf(err)
	if kind == nil {
		return err
	}
	return fmt.Errorf("%w: %w", kind, err)
}

// kindOf is the domain error behind a Connect code, if any.
func kindOf(err error) error {
	var kind error
	switch connect.CodeOf(err) {
	case connect.CodeInvalidArgument:
		kind = syncengine.ErrInvalid
	case connect.CodeNotFound:
		kind = syncengine.ErrNotFound
	case connect.CodeAlreadyExists:
		kind = syncengine.ErrAlreadyExists
	case connect.CodePermissionDenied:
		kind = syncengine.ErrOutOfScope
	case connect.CodeUnauthenticated:
		kind = syncengine.ErrUnauthenticated
	case connect.CodeResourceExhausted:
		kind = syncengine.ErrLimit
	case connect.CodeFailedPrecondition:
		kind = syncengine.ErrStaleCursor
		var ce *connect.Error
		if errors.As(err, &ce) && skewDetail(ce) != nil {
			kind = syncengine.ErrClockSkew
		}
		if errors.As(err, &ce) && expiredDetail(ce) {
			kind = syncengine.ErrCursorExpired
		}
	}
	return kind
}

// expiredDetail reports whether a stale-cursor error says the cursor is
// past the server's horizon (not from a restored database).
func expiredDetail(ce *connect.Error) bool {
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if _, ok := v.(*pb.CursorExpired); ok {
				return true
			}
		}
	}
	return false
}
