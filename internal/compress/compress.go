// Package compress holds the wire compression Doorbook's server and SDK
// speak on top of Connect's default gzip: zstd, from
// github.com/klauspost/compress. Connect lets each side register codecs by
// name; the server answers in the first one a client lists that it knows,
// and a client lists its most preferred first.
//
// Why zstd: a bootstrap is megabytes of protobuf with repetitive text, sent
// over links of 1 Mbit/s. Go's gzip at its default level costs a Connect
// stream about 10× its uncompressed speed; zstd at its fastest level
// compresses as well or better at several times gzip's speed (figures in
// BENCHMARKS.md).
package compress

import (
	"io"

	"connectrpc.com/connect"
	"github.com/klauspost/compress/zstd"
)

// Zstd is the Connect name of zstd compression.
const Zstd = "zstd"

// MaxWindow is the largest zstd window a decoder accepts; the encoder
// here uses less.
const MaxWindow = 8 << 20

// MinBytes is the smallest message worth compressing: below it, framing
// and CPU cost more than the bytes saved.
const MinBytes = 1 << 10

type zstdCompressor struct{ *zstd.Encoder }

func newZstdCompressor() connect.Compressor {
	// Options are constants known to be valid: NewWriter cannot fail here.
	enc, _ := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true),
	)
	return zstdCompressor{enc}
}

// zstdDecompressor adapts a zstd.Decoder to connect.Decompressor. Connect
// pools decompressors and closes each after a message, then resets it for
// the next: Close must leave it reusable, so it only lets go of the input.
type zstdDecompressor struct{ dec *zstd.Decoder }

func newZstdDecompressor() connect.Decompressor {
	// A single-goroutine decoder: messages are small and many run at once.
	// The window is bounded as the server's intake bounds it: a frame
	// declaring a larger one would make the decoder allocate it up front.
	dec, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(MaxWindow), zstd.WithDecoderMaxMemory(256<<20))
	return &zstdDecompressor{dec: dec}
}

func (d *zstdDecompressor) Read(p []byte) (int, error) { return d.dec.Read(p) }
func (d *zstdDecompressor) Reset(r io.Reader) error    { return d.dec.Reset(r) }
func (d *zstdDecompressor) Close() error               { return d.dec.Reset(nil) }

// HandlerOptions make a handler accept and answer in zstd as well as gzip.
func HandlerOptions() connect.HandlerOption {
	return connect.WithHandlerOptions(
		connect.WithCompression(Zstd, newZstdDecompressor, newZstdCompressor),
		connect.WithCompressMinBytes(MinBytes),
	)
}

// ClientOptions make a client ask for zstd answers and send zstd requests;
// with off, it asks for no compression at all (a fast link, where the CPU
// costs more than the bytes).
func ClientOptions(off bool) connect.ClientOption {
	if off {
		return connect.WithAcceptCompression("gzip", nil, nil)
	}
	return connect.WithClientOptions(
		connect.WithAcceptCompression(Zstd, newZstdDecompressor, newZstdCompressor),
		connect.WithSendCompression(Zstd),
		connect.WithCompressMinBytes(MinBytes),
	)
}
