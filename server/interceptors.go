package server

import (
	"context"
	"errors"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/rs/zerolog"

	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/server/store"
)

type principalKey struct{}

// principal is the caller the auth interceptor put in ctx.
func principal(ctx context.Context) store.Principal {
	p, _ := ctx.Value(principalKey{}).(store.Principal)
	return p
}

// public procedures need no token.
var public = map[string]bool{
	doorbookv1connect.EnrollmentServiceEnrollProcedure: true,
}

// authInterceptor resolves the bearer token of every call but enrolment.
type authInterceptor struct {
	store store.Store
	log   zerolog.Logger
}

type peerKey struct{}

// peerAddr is the caller's network address, for the public procedures'
// throttling.
func peerAddr(ctx context.Context) string {
	addr, _ := ctx.Value(peerKey{}).(string)
	return addr
}

func (a *authInterceptor) authenticate(ctx context.Context, procedure, peer string, h interface{ Get(string) string }) (context.Context, error) {
	if public[procedure] {
		return context.WithValue(ctx, peerKey{}, peer), nil
	}
	raw := h.Get("Authorization")
	token, ok := strings.CutPrefix(raw, "Bearer ")
	if !ok || token == "" {
		return ctx, connect.NewError(connect.CodeUnauthenticated, errors.New("missing bearer token"))
	}
	p, err := a.store.Authenticate(ctx, token)
	var revoked *store.RevokedError
	if errors.As(err, &revoked) {
		return ctx, revokedError(revoked)
	}
	if err != nil {
		return ctx, toConnect(a.log, err)
	}
	if p.ReadOnly && !leaderProcedures[procedure] {
		return ctx, connect.NewError(connect.CodePermissionDenied, errLeaderWrite)
	}
	addStat(ctx, "principal", p.ID)
	return context.WithValue(ctx, principalKey{}, p), nil
}

func (a *authInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		ctx, err := a.authenticate(ctx, req.Spec().Procedure, req.Peer().Addr, req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (a *authInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (a *authInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := a.authenticate(ctx, conn.Spec().Procedure, conn.Peer().Addr, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// logInterceptor writes one log line per call. It runs outside the auth
// interceptor so that refused calls are logged too.
type logInterceptor struct {
	log zerolog.Logger
	now func() time.Time
}

// callStats collects what handlers (and the auth interceptor, which runs
// inside the log interceptor) add to the call's log line.
type callStats struct {
	fields map[string]any
}

type statsKey struct{}

func addStat(ctx context.Context, key string, v any) {
	if s, ok := ctx.Value(statsKey{}).(*callStats); ok {
		s.fields[key] = v
	}
}

func (l *logInterceptor) line(procedure, peer string, start time.Time, stats *callStats, err error) {
	ev := l.log.Info()
	if err != nil {
		code := connect.CodeOf(err)
		if code == connect.CodeInternal || code == connect.CodeUnknown {
			ev = l.log.Error()
		} else {
			ev = l.log.Warn()
		}
		ev = ev.Str("code", code.String()).Str("error", err.Error())
	} else {
		ev = ev.Str("code", "ok")
	}
	ev.Str("procedure", procedure).Str("peer", peer).Dur("duration", l.now().Sub(start)).Fields(stats.fields).Msg("request")
}

func (l *logInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := l.now()
		stats := &callStats{fields: map[string]any{}}
		res, err := next(context.WithValue(ctx, statsKey{}, stats), req)
		l.line(req.Spec().Procedure, req.Peer().Addr, start, stats, err)
		return res, err
	}
}

func (l *logInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (l *logInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := l.now()
		stats := &callStats{fields: map[string]any{}}
		err := next(context.WithValue(ctx, statsKey{}, stats), conn)
		l.line(conn.Spec().Procedure, conn.Peer().Addr, start, stats, err)
		return err
	}
}
