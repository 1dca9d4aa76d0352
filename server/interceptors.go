package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/rs/zerolog"

	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/server/authz"
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
	doorbookv1connect.SessionServiceSignInProcedure:    true,
}

type peerKey struct{}

// peerAddr is the caller's network address, for the public procedures'
// throttling.
func peerAddr(ctx context.Context) string {
	addr, _ := ctx.Value(peerKey{}).(string)
	return addr
}

// authenticate resolves the bearer token of a call from its headers,
// before intake reads a byte of its body (see Handler): a caller without a
// valid token costs the server one indexed read and nothing more.
func (s *Server) authenticate(ctx context.Context, procedure string, r *http.Request) (context.Context, error) {
	raw := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(raw, "Bearer ")
	if !ok || token == "" {
		return ctx, connect.NewError(connect.CodeUnauthenticated, errors.New("missing bearer token"))
	}
	p, err := s.store.Authenticate(ctx, token)
	var revoked *store.RevokedError
	if errors.As(err, &revoked) {
		return ctx, revokedError(revoked)
	}
	if err != nil {
		return ctx, toConnect(s.log, err)
	}
	action, ok := actions[procedure]
	if !ok {
		return ctx, connect.NewError(connect.CodePermissionDenied, errors.New("no one may call this procedure yet: it has no rule"))
	}
	if err := authz.Decide(p, action, authz.Anywhere); err != nil {
		return ctx, toConnect(s.log, err)
	}
	return context.WithValue(ctx, principalKey{}, p), nil
}

// withPeer gives handlers the caller's address (enrolment throttles by it).
func withPeer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), peerKey{}, r.RemoteAddr)))
	})
}

// refused logs a call intake turned away before Connect saw it, in the
// shape of the log interceptor's lines.
func (s *Server) refused(r *http.Request, procedure string, err *connect.Error) {
	code := connect.CodeOf(err)
	ev := s.log.Warn()
	if code == connect.CodeInternal || code == connect.CodeUnknown {
		ev = s.log.Error()
	}
	ev.Str("code", code.String()).Str("error", err.Error()).Str("procedure", procedure).Str("peer", r.RemoteAddr).
		Str("protocol", r.Header.Get("Content-Type")).Msg("request")
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
	fields    map[string]any
	principal string
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
	if p := stats.principal; p != "" {
		ev = ev.Str("principal", p)
	}
	ev.Str("procedure", procedure).Str("peer", peer).Dur("duration", l.now().Sub(start)).Fields(stats.fields).Msg("request")
}

func (l *logInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := l.now()
		stats := &callStats{fields: map[string]any{}, principal: principal(ctx).ID}
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
		stats := &callStats{fields: map[string]any{}, principal: principal(ctx).ID}
		err := next(context.WithValue(ctx, statsKey{}, stats), conn)
		l.line(conn.Spec().Procedure, conn.Peer().Addr, start, stats, err)
		return err
	}
}
