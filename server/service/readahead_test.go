package service

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
)

// TestReadAhead: pages come to fn in the order read, at most one read
// ahead of fn; an error of either side ends both, and is returned.
func TestReadAhead(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pages := func(n int, fail error) (func(context.Context) (int, bool, error), *atomic.Int64) {
		var read atomic.Int64
		return func(ctx context.Context) (int, bool, error) {
			if err := ctx.Err(); err != nil {
				return 0, false, err
			}
			i := int(read.Load())
			if i == n {
				return 0, false, fail
			}
			read.Add(1)
			return i, true, nil
		}, &read
	}

	read, count := pages(5, nil)
	var got []int
	err := readAhead(ctx, read, func(p int) error {
		// The reader may be one page ahead of the writer, not more.
		if ahead := int(count.Load()) - p; ahead > 2 {
			t.Errorf("page %d written with %d read", p, count.Load())
		}
		got = append(got, p)
		return nil
	})
	if err != nil || !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Errorf("readAhead = %v, pages %v; want nil, 0..4", err, got)
	}

	broken := errors.New("disk")
	read, _ = pages(3, broken)
	got = nil
	if err := readAhead(ctx, read, func(p int) error { got = append(got, p); return nil }); !errors.Is(err, broken) || len(got) != 3 {
		t.Errorf("a read failing after 3 pages: %v, pages %v; want %v after 3", err, got, broken)
	}

	full := errors.New("client gone")
	read, count = pages(100, nil)
	got = nil
	if err := readAhead(ctx, read, func(p int) error {
		got = append(got, p)
		if p == 2 {
			return full
		}
		return nil
	}); !errors.Is(err, full) || len(got) != 3 || count.Load() > 5 {
		t.Errorf("a write failing at page 2: %v, pages %v, %d read; want %v, 3 pages, a page or two read ahead", err, got, count.Load(), full)
	}

	// A read that panics ends the export with an error, not the process.
	if err := readAhead(ctx, func(context.Context) (int, bool, error) { panic("a bug") }, func(int) error { return nil }); err == nil {
		t.Error("a read that panicked: no error")
	}

	cancelled, cancel := context.WithCancel(ctx)
	read, _ = pages(100, nil)
	if err := readAhead(cancelled, func(ctx context.Context) (int, bool, error) {
		p, ok, err := read(ctx)
		if p == 1 {
			cancel()
		}
		return p, ok, err
	}, func(int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled while reading: %v, want %v", err, context.Canceled)
	}
}
