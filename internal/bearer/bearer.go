// Package bearer sends a bearer token with every Connect call: the
// client-side half of Doorbook's authentication, shared by the SDK, the
// admin CLI and the tests.
package bearer

import (
	"context"

	"connectrpc.com/connect"
)

// Token is a client interceptor that sets "Authorization: Bearer <token>".
type Token string

var _ connect.Interceptor = Token("")

func (t Token) header() string { return "Bearer " + string(t) }

// WrapUnary adds the token to unary calls.
func (t Token) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", t.header())
		return next(ctx, req)
	}
}

// WrapStreamingClient adds the token to streaming calls.
func (t Token) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", t.header())
		return conn
	}
}

// WrapStreamingHandler does nothing: the token is for clients.
func (t Token) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// FromContext is a client interceptor that sends, with each call, the
// token that tokenOf finds in the call's context (none if ""): one client
// for callers with different tokens, such as the web console's sessions.
func FromContext(tokenOf func(context.Context) string) connect.Interceptor {
	return fromContext(tokenOf)
}

type fromContext func(context.Context) string

func (f fromContext) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if t := f(ctx); t != "" {
			req.Header().Set("Authorization", Token(t).header())
		}
		return next(ctx, req)
	}
}

func (f fromContext) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if t := f(ctx); t != "" {
			conn.RequestHeader().Set("Authorization", Token(t).header())
		}
		return conn
	}
}

func (f fromContext) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
