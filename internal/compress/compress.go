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
	"errors"
	"io"
	"sync"

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

// Coders keeps zstd encoders and decoders between messages for the
// clients and handlers made with its options. Connect pools codecs in a
// sync.Pool of each client, which each garbage collection empties, and a
// phone makes its clients anew at each sync: a new encoder costs four
// times the message it compresses (a push of 220 changes, 165 KB: 1.3 ms
// and 4.9 MB against 0.3 ms reused). So a codec from Connect's pool is a
// shell that takes its coder from here for one message and gives it back
// at Close, and a phone keeps one Coders for its life. A few coders are
// kept whatever the collector does, enough for a client (one push or pull
// at a time); those given back beyond them wait in a sync.Pool, as
// Connect's own pool held them, for a server's next burst of answers.
type Coders struct {
	encoders chan *zstd.Encoder
	decoders chan *zstd.Decoder
	// spareEncoders and spareDecoders hold the coders given back past the
	// kept ones, until a collection.
	spareEncoders, spareDecoders sync.Pool
}

// keptCoders is how many encoders and decoders a Coders keeps through
// collections: an encoder holds about 5 MB.
const keptCoders = 2

// keepBelow is the largest message after which a coder is used again: as
// large as a request may be by default (4 MiB) and twice a bootstrap page
// of 200 households. The buffers of a coder that handled a larger message
// grew to it (a decoder holds its whole output when it decodes from
// memory), and would hold that memory, and the message's text, for as long
// as the coder is kept. (At 1 MiB, every page of a bootstrap made its own
// coders: 4-13% slower than keeping them.)
const keepBelow = 4 << 20

// NewCoders returns a Coders keeping none yet.
func NewCoders() *Coders {
	return &Coders{encoders: make(chan *zstd.Encoder, keptCoders), decoders: make(chan *zstd.Decoder, keptCoders)}
}

func (k *Coders) encoder() *zstd.Encoder {
	select {
	case e := <-k.encoders:
		return e
	default:
	}
	if e, ok := k.spareEncoders.Get().(*zstd.Encoder); ok {
		return e
	}
	// Options are constants known to be valid: NewWriter cannot fail here.
	e, _ := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true),
	)
	return e
}

func (k *Coders) decoder() *zstd.Decoder {
	select {
	case d := <-k.decoders:
		return d
	default:
	}
	if d, ok := k.spareDecoders.Get().(*zstd.Decoder); ok {
		return d
	}
	// A single-goroutine decoder: messages are small and many run at once.
	// The window is bounded as the server's intake bounds it: a frame
	// declaring a larger one would make the decoder allocate it up front.
	d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(MaxWindow), zstd.WithDecoderMaxMemory(256<<20))
	return d
}

// putEncoder gives back e, which has just compressed n bytes.
func (k *Coders) putEncoder(e *zstd.Encoder, n int64) {
	e.Reset(io.Discard) // let go of the message's buffer
	if n > keepBelow {
		return
	}
	select {
	case k.encoders <- e:
	default:
		k.spareEncoders.Put(e)
	}
}

// putDecoder gives back d, which has just decompressed n bytes.
func (k *Coders) putDecoder(d *zstd.Decoder, n int64) {
	if d.Reset(nil) != nil || n > keepBelow {
		return
	}
	select {
	case k.decoders <- d:
	default:
		k.spareDecoders.Put(d)
	}
}

// errClosed is a write to a compressor closed and not reset since.
var errClosed = errors.New("zstd: write after close")

// zstdCompressor is a connect.Compressor whose encoder is taken at its
// message's first write and given back at Close: Connect resets a pooled
// compressor to io.Discard after Close, which must not take one.
type zstdCompressor struct {
	k   *Coders
	enc *zstd.Encoder
	w   io.Writer // nil once closed
	n   int64     // the bytes of this message
}

func (c *zstdCompressor) Reset(w io.Writer) {
	c.w, c.n = w, 0
	if c.enc != nil {
		c.enc.Reset(w)
	}
}

func (c *zstdCompressor) take() *zstd.Encoder {
	if c.enc == nil {
		c.enc = c.k.encoder()
		c.enc.Reset(c.w)
	}
	return c.enc
}

func (c *zstdCompressor) Write(p []byte) (int, error) {
	if c.w == nil {
		return 0, errClosed
	}
	c.n += int64(len(p))
	return c.take().Write(p)
}

// Close ends the message, once: a second Close writes nothing.
func (c *zstdCompressor) Close() error {
	if c.w == nil {
		return nil
	}
	err := c.take().Close()
	c.k.putEncoder(c.enc, c.n)
	c.enc, c.w = nil, nil
	return err
}

// zstdDecompressor adapts a zstd.Decoder to connect.Decompressor in the
// same way: the decoder is taken at the message's first read and given
// back at Close (Connect then resets it to an empty body, which must not
// take one).
type zstdDecompressor struct {
	k   *Coders
	dec *zstd.Decoder
	r   io.Reader
	err error // the decoder's Reset's, reported by the first read
	n   int64 // the bytes of this message
}

func (d *zstdDecompressor) Reset(r io.Reader) error {
	d.r, d.err, d.n = r, nil, 0
	if d.dec != nil {
		d.err = d.dec.Reset(r)
	}
	return nil
}

func (d *zstdDecompressor) Read(p []byte) (int, error) {
	if d.dec == nil {
		d.dec = d.k.decoder()
		d.err = d.dec.Reset(d.r)
	}
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.dec.Read(p)
	d.n += int64(n)
	return n, err
}

func (d *zstdDecompressor) Close() error {
	if d.dec != nil {
		d.k.putDecoder(d.dec, d.n)
		d.dec = nil
	}
	d.r, d.err, d.n = nil, nil, 0
	return nil
}

func (k *Coders) codecs() (func() connect.Decompressor, func() connect.Compressor) {
	return func() connect.Decompressor { return &zstdDecompressor{k: k} },
		func() connect.Compressor { return &zstdCompressor{k: k} }
}

// HandlerOptions make a handler accept and answer in zstd as well as gzip.
func HandlerOptions() connect.HandlerOption {
	dec, enc := NewCoders().codecs()
	return connect.WithHandlerOptions(
		connect.WithCompression(Zstd, dec, enc),
		connect.WithCompressMinBytes(MinBytes),
	)
}

// ClientOptions make a client ask for zstd answers and send zstd requests,
// with coders from k; with off, it asks for no compression at all (a fast
// link, where the CPU costs more than the bytes).
func (k *Coders) ClientOptions(off bool) connect.ClientOption {
	if off {
		return connect.WithAcceptCompression("gzip", nil, nil)
	}
	dec, enc := k.codecs()
	return connect.WithClientOptions(
		connect.WithAcceptCompression(Zstd, dec, enc),
		connect.WithSendCompression(Zstd),
		connect.WithCompressMinBytes(MinBytes),
	)
}
