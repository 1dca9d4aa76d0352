package server

import (
	"context"
	"errors"
	"strings"

	"connectrpc.com/connect"
	"github.com/rs/zerolog"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// codes maps each domain error to its Connect code: the one place where
// that happens. The SDK maps the codes back (client-sdk/errors.go).
var codes = []struct {
	err  error
	code connect.Code
}{
	{syncengine.ErrInvalid, connect.CodeInvalidArgument},
	{syncengine.ErrNotFound, connect.CodeNotFound},
	{syncengine.ErrAlreadyExists, connect.CodeAlreadyExists},
	{syncengine.ErrOutOfScope, connect.CodePermissionDenied},
	{syncengine.ErrUnauthenticated, connect.CodeUnauthenticated},
	{syncengine.ErrStaleCursor, connect.CodeFailedPrecondition},
	{syncengine.ErrClockSkew, connect.CodeFailedPrecondition},
	{syncengine.ErrLimit, connect.CodeResourceExhausted},
}

// toConnect turns an error from the store or the engine into a Connect
// error. Unknown errors become Internal with a generic message; the full
// error goes to the log only.
func toConnect(log zerolog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			ce := connect.NewError(c.code, saidOnce(c.code, c.err, err))
			if errors.Is(err, syncengine.ErrCursorExpired) {
				if d, derr := connect.NewErrorDetail(&pb.CursorExpired{}); derr == nil {
					ce.AddDetail(d)
				}
			}
			return ce
		}
	}
	switch {
	case errors.Is(err, store.ErrStorageFull):
		log.Error().Err(err).Msg("storage full")
		return connect.NewError(connect.CodeResourceExhausted, errStorageFull)
	case errors.Is(err, store.ErrStorageReadOnly):
		log.Error().Err(err).Msg("storage read-only")
		return connect.NewError(connect.CodeUnavailable, errStorageReadOnly)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	log.Error().Err(err).Msg("internal error")
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}

// What a phone is told when the server's storage cannot take a write: the
// call changed nothing, and the same call succeeds later.
var (
	errStorageFull     = errors.New("the server's storage is full: nothing of this call was applied; try again later")
	errStorageReadOnly = errors.New("the server cannot write its storage: nothing of this call was applied; try again later")
)

// retryable reports whether err is the server's condition rather than the
// request's: such a push must not blame one of its changes.
func retryable(err error) bool {
	return errors.Is(err, store.ErrStorageFull) || errors.Is(err, store.ErrStorageReadOnly)
}

// publicError is an error with the words a caller is sent: what the
// Connect code already says is not said again.
type publicError struct {
	msg string
	err error
}

func (e *publicError) Error() string { return e.msg }
func (e *publicError) Unwrap() error { return e.err }

// saidOnce drops kind's words from err's message where they only repeat
// code ("unauthenticated: enroll: unauthenticated: code not valid").
func saidOnce(code connect.Code, kind, err error) error {
	if strings.ReplaceAll(code.String(), "_", " ") != kind.Error() {
		return err
	}
	msg := err.Error()
	if short := strings.Replace(msg, kind.Error()+": ", "", 1); short != msg {
		return &publicError{msg: short, err: err}
	}
	return err
}
