package mobile

import (
	"errors"
	"net"
	"strings"

	"connectrpc.com/connect"

	sdk "github.com/doorbook/doorbook/client-sdk"
	"github.com/doorbook/doorbook/syncengine"
)

// The codes an error starts with ("offline: sync: ..."): what an app
// switches on. They do not change between releases.
const (
	// CodeOffline: the server could not be reached, or did not answer in
	// time. Nothing is lost; sync again later.
	CodeOffline = "offline"
	// CodeBusy: the server is busy (or this phone over its limits for
	// now); sync again later.
	CodeBusy = "busy"
	// CodeClock: the phone's clock is too far from the server's; the user
	// sets it right (the SDK re-stamps what it can on its own).
	CodeClock = "clock"
	// CodeUnauthenticated: the server does not know this phone's token
	// (not revoked: a server restored from an old backup); enrol again.
	CodeUnauthenticated = "unauthenticated"
	// CodeRevoked: an admin revoked the phone, or the lost-phone policy
	// wiped it. Its data is gone; it must enrol again.
	CodeRevoked = "revoked"
	// CodeLocked: the lost-phone policy locks the replica's data until a
	// sync succeeds.
	CodeLocked = "locked"
	// CodeNotEnrolled: enrol first.
	CodeNotEnrolled = "not_enrolled"
	// CodeStorageFull and CodeReadOnly: the phone's storage refused a
	// write; the call succeeds once space is freed.
	CodeStorageFull = "storage_full"
	CodeReadOnly    = "read_only"
	// CodeInvalid: the call's input was refused (a field, a JSON value);
	// CodeRejected: the server refused a change.
	CodeInvalid  = "invalid"
	CodeRejected = "rejected"
	// CodeNotFound: no such household, visit or campaign here.
	CodeNotFound = "not_found"
	// CodeOutOfScope: not the worker's to change.
	CodeOutOfScope = "out_of_scope"
	// CodeInternal: anything else; the message says what.
	CodeInternal = "internal"
)

// Error is an error with its code.
type Error struct {
	Code string
	err  error
}

func (e *Error) Error() string { return e.Code + ": " + e.err.Error() }

func (e *Error) Unwrap() error { return e.err }

// ErrorCode is the code of an error this package returned ("" for nil),
// for Go callers; a bound app reads it from the start of the message.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return codeOf(err)
}

// wrap gives err its code.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Code: codeOf(err), err: err}
}

func codeOf(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, sdk.ErrDeviceRevoked):
		return CodeRevoked
	case errors.Is(err, sdk.ErrLocked):
		return CodeLocked
	case errors.Is(err, sdk.ErrNotEnrolled):
		return CodeNotEnrolled
	case errors.Is(err, sdk.ErrStorageFull):
		return CodeStorageFull
	case errors.Is(err, sdk.ErrReadOnly):
		return CodeReadOnly
	case errors.Is(err, sdk.ErrTimeout), errors.As(err, &netErr),
		connect.CodeOf(err) == connect.CodeUnavailable, connect.CodeOf(err) == connect.CodeDeadlineExceeded:
		return CodeOffline
	case errors.Is(err, syncengine.ErrClockSkew):
		return CodeClock
	case connect.CodeOf(err) == connect.CodeResourceExhausted:
		return CodeBusy
	case errors.Is(err, syncengine.ErrUnauthenticated):
		return CodeUnauthenticated
	case errors.Is(err, syncengine.ErrNotFound):
		return CodeNotFound
	case errors.Is(err, syncengine.ErrOutOfScope):
		return CodeOutOfScope
	case errors.Is(err, syncengine.ErrInvalid), errors.Is(err, syncengine.ErrLimit):
		// Refused by the server (its code is in the chain) or here.
		if connect.CodeOf(err) == connect.CodeInvalidArgument && strings.Contains(err.Error(), "invalid_argument") {
			return CodeRejected
		}
		return CodeInvalid
	}
	return CodeInternal
}
