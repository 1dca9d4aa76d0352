package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
)

// roundTripper forwards one call upstream as its plan says. It is the
// ReverseProxy's transport, so that header handling, trailers and streaming
// stay the standard library's.
type roundTripper struct{ p *Proxy }

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	p := rt.p
	c, _ := req.Context().Value(callKey{}).(*call)
	if c == nil {
		c = &call{forwarded: func() {}}
	}
	defer c.forwarded()
	ctx := req.Context()
	proc := procedure(req.URL.Path)
	if req.Body != nil {
		req.Body = &upBody{rc: req.Body, p: p, ctx: ctx, proc: proc}
	}
	if c.plan.dropRequest {
		// The request crossed the client's link and died in the network.
		if req.Body != nil {
			_, _ = io.Copy(io.Discard, req.Body)
			req.Body.Close()
		}
		p.count(func(s *Stats) { s.DroppedRequests++ })
		return nil, errInjected
	}
	var resp *http.Response
	var err error
	if c.plan.duplicate {
		resp, err = rt.duplicate(req, c.plan.lateCopy)
	} else {
		resp, err = p.transport(req).RoundTrip(req)
	}
	c.forwarded()
	if err != nil {
		return nil, err
	}
	if c.plan.dropResponse {
		// Let the server finish (its handler has returned once the body
		// ends), then lose its answer.
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		p.count(func(s *Stats) { s.DroppedResponses++ })
		return nil, errInjected
	}
	if err := sleep(ctx, p.halfRTT()); err != nil {
		resp.Body.Close()
		return nil, err
	}
	body := resp.Body
	if c.plan.cut {
		body = &cutBody{rc: body, left: c.plan.cutAfter, onCut: func() { p.count(func(s *Stats) { s.Cut++ }) }}
	}
	resp.Body = &downBody{rc: body, p: p, ctx: ctx, proc: proc}
	return resp, nil
}

func (p *Proxy) transport(req *http.Request) http.RoundTripper {
	if req.ProtoMajor == 2 {
		return p.h2c
	}
	return p.h1
}

// duplicate sends req twice and answers with the original. The copy runs
// on the proxy's context, not the client's, so that it reaches the server
// whole even after the client has its answer; its response is drained in
// the background.
func (rt roundTripper) duplicate(req *http.Request, late bool) (*http.Response, error) {
	p := rt.p
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	clone := func(ctx context.Context) *http.Request {
		r := req.Clone(ctx)
		r.Body, r.GetBody, r.ContentLength = nil, nil, int64(len(body))
		if req.Body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		return r
	}
	p.count(func(s *Stats) { s.Duplicated++ })
	sendCopy := func() {
		defer p.bg.Done()
		// Not the request's context: the client may be gone by the time
		// the copy travels, and the ReverseProxy's trace in it writes to
		// the client's response.
		resp, err := p.transport(req).RoundTrip(clone(p.ctx))
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if !p.background() {
		return nil, p.ctx.Err()
	}
	if !late {
		go sendCopy()
	}
	resp, err := p.transport(req).RoundTrip(clone(req.Context()))
	if late {
		go sendCopy()
	}
	return resp, err
}

// upBody counts and shapes a request body as the client sends it.
type upBody struct {
	rc   io.ReadCloser
	p    *Proxy
	ctx  context.Context
	proc string
}

func (b *upBody) Read(q []byte) (int, error) {
	q = q[:min(len(q), b.p.up.chunk())]
	n, err := b.rc.Read(q)
	if n > 0 {
		b.p.count(func(s *Stats) { s.BytesUp += int64(n); s.addProc(b.proc, int64(n), 0) })
		if werr := b.p.up.wait(b.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}

func (b *upBody) Close() error { return b.rc.Close() }

// downBody counts and shapes a response body on its way to the client.
type downBody struct {
	rc   io.ReadCloser
	p    *Proxy
	ctx  context.Context
	proc string
}

func (b *downBody) Read(q []byte) (int, error) {
	q = q[:min(len(q), b.p.down.chunk())]
	n, err := b.rc.Read(q)
	if n > 0 {
		if werr := b.p.down.wait(b.ctx, n); werr != nil {
			return 0, werr
		}
		b.p.count(func(s *Stats) { s.BytesDown += int64(n); s.addProc(b.proc, 0, int64(n)) })
	}
	return n, err
}

func (b *downBody) Close() error { return b.rc.Close() }

// errCut ends a body the plan cuts; the ReverseProxy then aborts the
// connection mid-response.
var errCut = errors.New("faultproxy: response cut")

// cutBody passes left bytes of a body, then fails. It hands a byte on only
// once it knows another follows, so that a body shorter than the cut point
// still loses its last byte: a cut response must never look complete. The
// cost is one byte of delay at the end of each read, which no
// request-response or server-streaming call notices.
type cutBody struct {
	rc    io.ReadCloser
	left  int64
	buf   []byte
	held  bool
	done  bool
	onCut func()
}

func (b *cutBody) Read(q []byte) (int, error) {
	if len(q) == 0 {
		return 0, nil
	}
	if b.done || b.left == 0 {
		return 0, b.cut()
	}
	want := int(min(int64(len(q)), b.left))
	if cap(b.buf) < want+1 {
		nb := make([]byte, len(b.buf), want+1)
		copy(nb, b.buf)
		b.buf = nb
	}
	have := 0
	if b.held {
		have = 1
	}
	n, err := b.rc.Read(b.buf[have : want+1])
	total := have + n
	if total == 0 {
		if err != nil {
			return 0, b.cut()
		}
		return 0, nil
	}
	// Hand on all but the newest byte (total is at most want+1), and keep
	// that one back until another follows.
	data := b.buf[:total]
	give := total - 1
	copy(q, data[:give])
	b.left -= int64(give)
	data[0] = data[give]
	b.buf, b.held = data[:1], true
	if err != nil {
		// The body ended (or failed) before the cut point: what is held
		// back is lost.
		b.done = true
	}
	return give, nil
}

func (b *cutBody) cut() error {
	if b.onCut != nil {
		b.onCut()
		b.onCut = nil
	}
	return errCut
}

func (b *cutBody) Close() error { return b.rc.Close() }
