// Package hostile builds what an attacker sends a Doorbook server, for the
// tests that prove the server survives it: decompression bombs of either
// codec, raw message bytes of any shape, and Connect client options that
// send them through a real client over Connect, gRPC or gRPC-Web.
package hostile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"

	"connectrpc.com/connect"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"
)

// RawCodec sends Body as the message, whatever the message is. Marshal
// returns a copy: Connect puts what it returns into its buffer pool.
type RawCodec struct{ Body []byte }

func (c RawCodec) Name() string                    { return "proto" }
func (c RawCodec) Marshal(any) ([]byte, error)     { return bytes.Clone(c.Body), nil }
func (c RawCodec) Unmarshal(b []byte, m any) error { return proto.Unmarshal(b, m.(proto.Message)) }

// preCompressed "compresses" a message by sending body instead.
type preCompressed struct {
	body []byte
	w    io.Writer
}

func (p *preCompressed) Write(b []byte) (int, error) { return len(b), nil }
func (p *preCompressed) Close() error                { _, err := p.w.Write(p.body); return err }
func (p *preCompressed) Reset(w io.Writer)           { p.w = w }

type nopDecompressor struct{ r io.Reader }

func (d *nopDecompressor) Read(b []byte) (int, error) { return d.r.Read(b) }
func (d *nopDecompressor) Reset(r io.Reader) error    { d.r = r; return nil }
func (d *nopDecompressor) Close() error               { return nil }

// SendCompressed makes a client send body as every request message,
// declared compressed with encoding.
func SendCompressed(encoding string, body []byte) connect.ClientOption {
	return connect.WithClientOptions(
		connect.WithAcceptCompression(encoding,
			func() connect.Decompressor { return &nopDecompressor{} },
			func() connect.Compressor { return &preCompressed{body: body} }),
		connect.WithSendCompression(encoding),
	)
}

// Gzip compresses b at the best ratio.
func Gzip(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

// Zstd compresses b at the fastest level.
func Zstd(b []byte) []byte {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// GzipZeros is a gzip stream of n zeros (n a multiple of 1 MiB), built
// from one flushed deflate block of zeros repeated: compressing a
// gigabyte would take seconds. Its checksum is wrong, which only a reader
// that reaches the end notices.
func GzipZeros(n int) ([]byte, error) {
	const chunk = 1 << 20
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	zeros := make([]byte, chunk)
	var blocks [][]byte
	for range 3 {
		start := buf.Len()
		_, _ = fw.Write(zeros)
		_ = fw.Flush()
		blocks = append(blocks, bytes.Clone(buf.Bytes()[start:]))
	}
	if !bytes.Equal(blocks[1], blocks[2]) {
		return nil, errors.New("deflate's blocks of zeros differ: cannot repeat one")
	}
	out := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}
	out = append(out, blocks[0]...)
	for range n/chunk - 1 {
		out = append(out, blocks[1]...)
	}
	out = append(out, 0x03, 0x00) // an empty final block
	out = binary.LittleEndian.AppendUint32(out, 0)
	return binary.LittleEndian.AppendUint32(out, uint32(n)), nil
}

// ZstdRLEBomb is a zstd frame of n zeros in RLE blocks of 128 KiB (four
// bytes each), declaring a window of 2^windowLog bytes.
func ZstdRLEBomb(n int, windowLog int) []byte {
	out := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, byte((windowLog - 10) << 3)}
	const block = 128 << 10
	for left := n; left > 0; left -= block {
		size := min(left, block)
		hdr := uint32(size)<<3 | 1<<1 // an RLE block
		if left <= block {
			hdr |= 1 // the last
		}
		out = append(out, byte(hdr), byte(hdr>>8), byte(hdr>>16), 0x00)
	}
	return out
}
