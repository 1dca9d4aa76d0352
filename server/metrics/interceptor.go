package metrics

import (
	"context"

	"connectrpc.com/connect"
)

// Interceptor observes every call the handlers run: its code, its
// duration, and the rows it moved (see WithRows). A server stream is
// observed when it ends. A nil *Metrics returns an interceptor that
// observes nothing.
func (m *Metrics) Interceptor() connect.Interceptor { return interceptor{m} }

type interceptor struct{ m *Metrics }

func (i interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	if i.m == nil {
		return next
	}
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		done := i.m.start(req.Spec().Procedure)
		res, err := next(ctx, req)
		done(ctx, err)
		return res, err
	}
}

func (i interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	if i.m == nil {
		return next
	}
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		done := i.m.start(conn.Spec().Procedure)
		err := next(ctx, conn)
		done(ctx, err)
		return err
	}
}

// start marks a call of procedure in flight; the function it returns
// records how it ended.
func (m *Metrics) start(procedure string) func(context.Context, error) {
	began := m.now()
	inFlight := m.inFlight.WithLabelValues(procedure)
	inFlight.Inc()
	return func(ctx context.Context, err error) {
		inFlight.Dec()
		m.duration.WithLabelValues(procedure).Observe(m.now().Sub(began).Seconds())
		m.finish(procedure, codeOf(err))
		if m.rows == nil {
			return
		}
		// A bootstrap cut midway still sent what it sent; a failed push
		// applied nothing (it is all or none) and counted nothing.
		r := m.rows(ctx)
		if r.Applied > 0 {
			m.pushed.WithLabelValues("applied").Add(float64(r.Applied))
		}
		if r.Duplicates > 0 {
			m.pushed.WithLabelValues("duplicate").Add(float64(r.Duplicates))
		}
		if r.Pulled > 0 {
			m.pulled.WithLabelValues(procedure).Add(float64(r.Pulled))
		}
	}
}
