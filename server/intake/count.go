package intake

import (
	"errors"
	"fmt"
	"sync"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// DefaultMaxItems bounds a repeated field whose proto declares no limit.
const DefaultMaxItems = 10_000

// maxDepth bounds how deeply messages may nest on the wire; Doorbook's
// deepest is a handful of levels.
const maxDepth = 32

// limitCache holds, per message type, each field's item limit, read once
// from the buf.validate options.
type limitCache struct {
	mu    sync.RWMutex
	types map[protoreflect.FullName]map[protowire.Number]int
}

func newLimitCache() *limitCache {
	return &limitCache{types: map[protoreflect.FullName]map[protowire.Number]int{}}
}

func (c *limitCache) of(md protoreflect.MessageDescriptor) map[protowire.Number]int {
	c.mu.RLock()
	m, ok := c.types[md.FullName()]
	c.mu.RUnlock()
	if ok {
		return m
	}
	m = map[protowire.Number]int{}
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Cardinality() != protoreflect.Repeated {
			continue
		}
		limit := DefaultMaxItems
		if rules, ok := proto.GetExtension(fd.Options(), validatepb.E_Field).(*validatepb.FieldRules); ok && rules != nil {
			if r := rules.GetRepeated(); r != nil && r.MaxItems != nil {
				limit = int(r.GetMaxItems())
			}
			if r := rules.GetMap(); r != nil && r.MaxPairs != nil {
				limit = int(r.GetMaxPairs())
			}
		}
		m[fd.Number()] = limit
	}
	c.mu.Lock()
	c.types[md.FullName()] = m
	c.mu.Unlock()
	return m
}

// count walks a protobuf message on the wire before anything is decoded.
// The request's own repeated fields are held to the limits the proto
// declares (a push of 1,001 changes is refused here); those of nested
// messages to DefaultMaxItems, leaving their declared limits to
// validation, which names the change at fault so that a phone can set it
// aside. It returns how many objects (messages, strings, bytes, map
// entries) decoding the message would allocate, at most maxObjects.
func (c *limitCache) count(b []byte, md protoreflect.MessageDescriptor) (int, error) {
	n, err := c.walk(b, md, 0)
	if err == nil && n > maxObjects {
		return 0, tooManyObjects(n)
	}
	return n, err
}

// maxObjects bounds the objects one request decodes to: a push of 1,000
// visits is about 40,000.
const maxObjects = 200_000

func tooManyObjects(n int) error {
	return connect.NewError(connect.CodeResourceExhausted,
		fmt.Errorf("a request decodes to at most %d objects (messages and strings), this one to about %d: send less at a time", maxObjects, n))
}

var errMalformed = errors.New("malformed protobuf")

func (c *limitCache) walk(b []byte, md protoreflect.MessageDescriptor, depth int) (int, error) {
	if depth > maxDepth {
		return 0, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%s: messages nested more than %d deep", md.FullName(), maxDepth))
	}
	limits := c.of(md)
	var counts map[protowire.Number]int
	objects := 1
	fields := md.Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, malformed(md, protowire.ParseError(n))
		}
		b = b[n:]
		fd := fields.ByNumber(num)
		var value []byte
		if typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return 0, malformed(md, protowire.ParseError(m))
			}
			value, n = v, m
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return 0, malformed(md, protowire.ParseError(n))
			}
		}
		b = b[n:]
		if fd == nil {
			continue // kept as unknown bytes, not objects
		}
		items := 1
		if typ == protowire.BytesType && fd.Cardinality() == protoreflect.Repeated && isPackable(fd.Kind()) {
			items = packedItems(fd.Kind(), value)
		}
		if limit, repeated := limits[num]; repeated {
			if depth > 0 {
				limit = max(limit, DefaultMaxItems)
			}
			if counts == nil {
				counts = map[protowire.Number]int{}
			}
			counts[num] += items
			if counts[num] > limit {
				return 0, connect.NewError(connect.CodeResourceExhausted,
					fmt.Errorf("%s holds at most %d items", fd.FullName(), limit))
			}
		}
		switch {
		case typ == protowire.BytesType && (fd.Kind() == protoreflect.MessageKind):
			sub, err := c.walk(value, fd.Message(), depth+1)
			if err != nil {
				return 0, err
			}
			objects += sub
			if objects > maxObjects {
				return 0, tooManyObjects(objects)
			}
		case typ == protowire.BytesType && (fd.Kind() == protoreflect.StringKind || fd.Kind() == protoreflect.BytesKind):
			objects++
		case typ == protowire.StartGroupType:
			objects++
		}
	}
	return objects, nil
}

func malformed(md protoreflect.MessageDescriptor, err error) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%s: %w: %w", md.FullName(), errMalformed, err))
}

func isPackable(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind, protoreflect.GroupKind:
		return false
	}
	return true
}

// packedItems counts the elements of a packed repeated scalar.
func packedItems(k protoreflect.Kind, b []byte) int {
	switch k {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return len(b) / 4
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return len(b) / 8
	}
	n := 0
	for _, c := range b {
		if c < 0x80 {
			n++
		}
	}
	return n
}
