package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// loopback is an http.RoundTripper that hands each request to the API's
// handler in this process: the console's calls go through exactly what a
// phone's or the CLI's do (authentication, intake's limits, validation,
// authorisation, audit, logs and metrics), without a socket. The answer's
// body is streamed through a pipe, so an export flows to the browser as the
// API writes it.
type loopback struct{ api http.Handler }

type remoteKey struct{}

// withRemote makes the calls of ctx come from the browser's address, which
// the API throttles sign-ins by and writes in its logs.
func withRemote(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, remoteKey{}, addr)
}

func (l loopback) RoundTrip(req *http.Request) (*http.Response, error) {
	in := req.Clone(req.Context())
	if in.Body == nil {
		in.Body = http.NoBody
	}
	in.RemoteAddr, _ = req.Context().Value(remoteKey{}).(string)
	in.RequestURI = in.URL.RequestURI()
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, body: pw, headed: make(chan struct{})}
	go func() {
		defer func() {
			// net/http recovers a handler's panic on its own goroutines;
			// this one is the console's, so it does the same: the call
			// fails, the process goes on.
			if p := recover(); p != nil {
				err := fmt.Errorf("the API's handler stopped: %v", p)
				w.fail(err)
				pw.CloseWithError(err)
				return
			}
			w.WriteHeader(http.StatusOK) // a handler that wrote nothing
			pw.Close()
		}()
		l.api.ServeHTTP(w, in)
	}()
	select {
	case <-w.headed:
		if w.err != nil {
			return nil, w.err
		}
	case <-req.Context().Done():
		pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	return &http.Response{
		Status: http.StatusText(w.status), StatusCode: w.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.sent, Body: pr, ContentLength: -1, Request: req,
	}, nil
}

// pipeWriter is the API handler's http.ResponseWriter: headers once, then
// the body into the pipe the client reads.
type pipeWriter struct {
	header http.Header
	sent   http.Header
	status int
	body   *io.PipeWriter
	once   sync.Once
	headed chan struct{}
	// err is why the handler stopped before its headers, if it did.
	err error
}

// fail ends a call whose handler stopped before writing its headers.
func (w *pipeWriter) fail(err error) {
	w.once.Do(func() {
		w.err = err
		close(w.headed)
	})
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(status int) {
	w.once.Do(func() {
		w.status, w.sent = status, w.header.Clone()
		close(w.headed)
	})
}

func (w *pipeWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

// Flush is a no-op (each Write reaches the reader at once); streaming
// handlers require an http.Flusher.
func (w *pipeWriter) Flush() {}
