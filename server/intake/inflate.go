package intake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/doorbook/doorbook/internal/compress"
)

// maxZstdWindow bounds the window a zstd frame may ask for. The decoder
// allocates the window before it writes a byte, so a 13 KB frame that
// declares 256 MiB would cost 256 MiB; the SDK's encoder (fastest level,
// lower memory) stays within it.
const maxZstdWindow = compress.MaxWindow

var zstdDecoders = sync.Pool{New: func() any {
	// Options are constants known to be valid: NewReader cannot fail here.
	d, _ := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(maxZstdWindow),
		zstd.WithDecoderMaxMemory(maxZstdWindow),
	)
	return d
}}

var gzipReaders sync.Pool

func supported(encoding string) bool { return encoding == "gzip" || encoding == "zstd" }

// inflate decompresses raw, stopping as soon as it has more than limit
// bytes: a bomb costs the limit, not what it would inflate to. What it
// writes is charged to acct as it grows.
func inflate(ctx context.Context, raw []byte, encoding string, limit int, acct *account, wait time.Duration) ([]byte, error) {
	var dec io.Reader
	switch encoding {
	case "zstd":
		d := zstdDecoders.Get().(*zstd.Decoder)
		defer func() {
			_ = d.Reset(nil)
			zstdDecoders.Put(d)
		}()
		if err := d.Reset(bytes.NewReader(raw)); err != nil {
			return nil, corrupt(encoding, err)
		}
		dec = d
	case "gzip":
		var z *gzip.Reader
		if v := gzipReaders.Get(); v != nil {
			z = v.(*gzip.Reader)
			if err := z.Reset(bytes.NewReader(raw)); err != nil {
				gzipReaders.Put(z)
				return nil, corrupt(encoding, err)
			}
		} else {
			var err error
			if z, err = gzip.NewReader(bytes.NewReader(raw)); err != nil {
				return nil, corrupt(encoding, err)
			}
		}
		defer gzipReaders.Put(z)
		dec = z
	default:
		return nil, connect.NewError(connect.CodeUnimplemented, fmt.Errorf("unknown compression %q", encoding))
	}
	out, err := readCharged(ctx, io.LimitReader(dec, int64(limit)+1), limit, acct, wait)
	if err != nil {
		var ce *connect.Error
		if errors.As(err, &ce) {
			return nil, ce
		}
		if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return nil, connect.NewError(connect.CodeResourceExhausted,
				fmt.Errorf("a zstd message may use a window of at most %d MiB: %w", maxZstdWindow>>20, err))
		}
		return nil, corrupt(encoding, err)
	}
	return out, nil
}

func corrupt(encoding string, err error) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("the message's %s data is corrupt: %w", encoding, err))
}
