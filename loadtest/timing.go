package loadtest

import (
	"io"
	"net/http"
	"path"
	"sync"
	"sync/atomic"
	"time"
)

// rpcTimes records round trips (client side) or handler times (server
// side) by method, while on.
type rpcTimes struct {
	on atomic.Bool
	mu sync.Mutex
	by map[string][]time.Duration
}

func (t *rpcTimes) add(method string, d time.Duration) {
	if !t.on.Load() {
		return
	}
	t.mu.Lock()
	t.by[method] = append(t.by[method], d)
	t.mu.Unlock()
}

func (t *rpcTimes) get(method string) []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.by[method]
}

// timedTransport times each call from the request until its response body
// has been read to the end (or closed).
type timedTransport struct {
	base  http.RoundTripper
	times *rpcTimes
}

func (t *timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := t.base.RoundTrip(req)
	if err != nil {
		return res, err
	}
	method := path.Base(req.URL.Path)
	res.Body = &timedBody{ReadCloser: res.Body, done: func() { t.times.add(method, time.Since(start)) }}
	return res, nil
}

type timedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.done)
	}
	return n, err
}

func (b *timedBody) Close() error {
	b.once.Do(b.done)
	return b.ReadCloser.Close()
}
