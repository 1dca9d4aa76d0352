package sdk

import (
	"errors"
	"fmt"

	"connectrpc.com/connect"

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

// fromConnect maps a Connect error back to the domain error the server
// started from, so that errors.Is works on this side of the wire too.
func fromConnect(err error) error {
	if err == nil {
		return nil
	}
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
	default:
		return err
	}
	return fmt.Errorf("%w: %w", kind, err)
}
