package intake

import (
	"bytes"
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
)

// BudgetIdle reports whether all of g's budget is free: no request holds
// any of it. Call it only when no request is in flight.
func BudgetIdle(g *Guard) bool { return g.budget.idle() }

// PublicBudgetFull reports whether the public budget has no room for n
// more bytes.
func PublicBudgetFull(g *Guard, n int64) bool { return g.public.free() < n }

// BudgetWaiting is how many requests wait for room in g's budget.
func BudgetWaiting(g *Guard) int {
	g.budget.mu.Lock()
	defer g.budget.mu.Unlock()
	return len(g.budget.holders) + len(g.budget.newcomers)
}

// WithClock is cfg with body deadlines and waits measured by now.
func WithClock(cfg Config, now func() time.Time) Config {
	cfg.now = now
	return cfg
}

func descriptor(m proto.Message) protoreflect.MessageDescriptor { return m.ProtoReflect().Descriptor() }

func TestLimitsFromOptions(t *testing.T) {
	t.Parallel()
	c := newLimitCache()
	for _, tc := range []struct {
		md   protoreflect.MessageDescriptor
		want map[protowire.Number]int
	}{
		{md: descriptor(&pb.PushRequest{}), want: map[protowire.Number]int{1: 1000}},
		// household_ids 500, materials none, findings 20, revisit_reasons
		// none, answers 50.
		{md: descriptor(&pb.Visit{}), want: map[protowire.Number]int{2: 500, 8: DefaultMaxItems, 9: 20, 10: DefaultMaxItems, 13: 50}},
		{md: descriptor(&pb.Change{}), want: map[protowire.Number]int{}},
		// A map without max_pairs.
		{md: descriptor(&structpb.Struct{}), want: map[protowire.Number]int{1: DefaultMaxItems}},
	} {
		for range 2 { // the second from the cache
			if got := c.of(tc.md); !maps.Equal(got, tc.want) {
				t.Errorf("%s: limits %v, want %v", tc.md.FullName(), got, tc.want)
			}
		}
	}
}

func TestPackedItems(t *testing.T) {
	t.Parallel()
	varints := func(vs ...uint64) []byte {
		var b []byte
		for _, v := range vs {
			b = protowire.AppendVarint(b, v)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		kind protoreflect.Kind
		b    []byte
		want int
	}{
		{name: "one-byte enums", kind: protoreflect.EnumKind, b: varints(1, 2, 3), want: 3},
		{name: "multi-byte enums", kind: protoreflect.EnumKind, b: varints(300, 1<<20, 1), want: 3},
		{name: "negative int32", kind: protoreflect.Int32Kind, b: varints(uint64(1<<64-1), uint64(1<<64-2)), want: 2},
		{name: "max uint64", kind: protoreflect.Uint64Kind, b: varints(1<<64-1, 0), want: 2},
		{name: "bools", kind: protoreflect.BoolKind, b: varints(1, 0, 1, 1), want: 4},
		{name: "fixed32", kind: protoreflect.Fixed32Kind, b: make([]byte, 12), want: 3},
		{name: "floats", kind: protoreflect.FloatKind, b: make([]byte, 8), want: 2},
		{name: "sfixed64", kind: protoreflect.Sfixed64Kind, b: make([]byte, 24), want: 3},
		{name: "doubles", kind: protoreflect.DoubleKind, b: make([]byte, 16), want: 2},
		{name: "empty", kind: protoreflect.EnumKind, want: 0},
	} {
		if got := packedItems(tc.kind, tc.b); got != tc.want {
			t.Errorf("%s: %d items, want %d", tc.name, got, tc.want)
		}
	}
}

func TestCountObjects(t *testing.T) {
	t.Parallel()
	c := newLimitCache()
	for _, tc := range []struct {
		name string
		msg  proto.Message
		want int
	}{
		{name: "empty", msg: &pb.PushRequest{}, want: 1},
		// The request; each change, its id; a visit, its timestamp and two
		// household ids.
		{name: "a visit", msg: &pb.PushRequest{Changes: []*pb.Change{{Id: "c", Payload: &pb.Change_Visit{Visit: &pb.Visit{
			HouseholdIds: []string{"a", "b"}, VisitedAt: timestamppb.Now(), Materials: []pb.Material{1, 2, 3},
		}}}}}, want: 1 + 2 + 1 + 1 + 2},
		{name: "three ids", msg: &pb.PushRequest{Changes: []*pb.Change{{Id: "a"}, {Id: "b"}, {Id: "c"}}}, want: 1 + 3*2},
	} {
		b, err := proto.Marshal(tc.msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.count(b, tc.msg.ProtoReflect().Descriptor())
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: %d objects, want %d", tc.name, got, tc.want)
		}
	}
}

// nestWire is a google.protobuf.Value on the wire whose deepest message is
// depth levels below it (Value.list_value = 6, ListValue.values = 1), built
// by hand.
func nestWire(depth int) []byte {
	var b []byte
	for d := depth; d > 0; d-- {
		num := protowire.Number(6) // the parent, at d-1, is a Value
		if (d-1)%2 == 1 {
			num = 1 // a ListValue
		}
		b = protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), b)
	}
	return b
}

func TestWalkDepth(t *testing.T) {
	t.Parallel()
	c := newLimitCache()
	md := descriptor(&structpb.Value{})
	for _, tc := range []struct {
		depth int
		ok    bool
	}{
		{depth: 0, ok: true},
		{depth: maxDepth - 1, ok: true},
		{depth: maxDepth, ok: true},
		{depth: maxDepth + 1},
		{depth: 2000},
	} {
		b := nestWire(tc.depth)
		// The wire is what Go's protobuf reads: it decodes the same depth.
		var v structpb.Value
		if err := proto.Unmarshal(b, &v); err != nil {
			t.Fatalf("depth %d: %v", tc.depth, err)
		}
		_, err := c.count(b, md)
		if tc.ok {
			if err != nil {
				t.Errorf("depth %d: %v", tc.depth, err)
			}
			continue
		}
		if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "nested more than 32 deep") {
			t.Errorf("depth %d: %v, want invalid_argument naming the depth", tc.depth, err)
		}
	}
}

func TestCountMapPairs(t *testing.T) {
	t.Parallel()
	c := newLimitCache()
	md := descriptor(&structpb.Struct{})
	entry := func(key string) []byte {
		e := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), key)
		return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), e)
	}
	var b []byte
	for i := range DefaultMaxItems {
		b = append(b, entry(string(rune('a'+i%26)))...)
	}
	if _, err := c.count(b, md); err != nil {
		t.Errorf("%d pairs: %v", DefaultMaxItems, err)
	}
	b = append(b, entry("z")...)
	if _, err := c.count(b, md); connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "google.protobuf.Struct.fields holds at most 10000 items") {
		t.Errorf("%d pairs: %v, want resource_exhausted naming the map", DefaultMaxItems+1, err)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, ctype string
		want          protocol
		ok            bool
	}{
		{method: "POST", ctype: "application/proto", want: protocol{encodingHeader: "Content-Encoding"}, ok: true},
		{method: "POST", ctype: "application/json; charset=utf-8", want: protocol{encodingHeader: "Content-Encoding", json: true}, ok: true},
		{method: "POST", ctype: "application/connect+proto", want: protocol{enveloped: true, encodingHeader: "Connect-Content-Encoding"}, ok: true},
		{method: "POST", ctype: "application/connect+json", want: protocol{enveloped: true, encodingHeader: "Connect-Content-Encoding", json: true}, ok: true},
		{method: "POST", ctype: "application/grpc", want: protocol{enveloped: true, encodingHeader: "Grpc-Encoding"}, ok: true},
		{method: "POST", ctype: "application/grpc+proto", want: protocol{enveloped: true, encodingHeader: "Grpc-Encoding"}, ok: true},
		{method: "POST", ctype: "application/grpc+json", want: protocol{enveloped: true, encodingHeader: "Grpc-Encoding", json: true}, ok: true},
		{method: "POST", ctype: "application/grpc-web", want: protocol{enveloped: true, encodingHeader: "Grpc-Encoding"}, ok: true},
		{method: "POST", ctype: "application/grpc-web+proto", want: protocol{enveloped: true, encodingHeader: "Grpc-Encoding"}, ok: true},
		{method: "POST", ctype: "application/grpc-web+json", want: protocol{enveloped: true, encodingHeader: "Grpc-Encoding", json: true}, ok: true},
		{method: "GET", ctype: "application/proto"},
		{method: "POST", ctype: "text/plain"},
		{method: "POST", ctype: "application/xml"},
		{method: "POST", ctype: ""},
		{method: "POST", ctype: "application/grpcfoo"},
	} {
		r, err := http.NewRequest(tc.method, "http://x/p", http.NoBody)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", tc.ctype)
		got, ok := classify(r)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s %q: %+v %v, want %+v %v", tc.method, tc.ctype, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzCount holds the count to its promise: whatever it lets through
// decodes to a push of at most 1,000 changes and at most maxObjects
// objects, and it refuses with a Connect error, never a panic.
func FuzzCount(f *testing.F) {
	seeds := []*pb.PushRequest{
		{},
		{Changes: []*pb.Change{{Id: "a"}, {Id: "b"}}},
		{Changes: []*pb.Change{
			{Id: "h", Payload: &pb.Change_Household{Household: &pb.Household{Id: "h", HeadName: &pb.StringField{Value: "Li", Clock: &pb.Clock{Hlc: 7, Node: 3}}}}},
			{Id: "v", Payload: &pb.Change_Visit{Visit: &pb.Visit{
				HouseholdIds: []string{"h"}, VisitedAt: timestamppb.Now(), Materials: []pb.Material{1, 2, 300},
				Findings: []*pb.Finding{{Kind: 1, Note: "n"}}, Answers: []*pb.SurveyAnswer{{Question: "q", Value: 3}},
			}}},
			{Id: "t", Payload: &pb.Change_Tag{Tag: &pb.TagElement{AddId: "a", CategoryCode: "c"}}},
		}},
	}
	thousand := &pb.PushRequest{}
	for range 1000 {
		thousand.Changes = append(thousand.Changes, &pb.Change{})
	}
	seeds = append(seeds, thousand)
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(bytes.Repeat([]byte{0x0a, 0x00}, 1001))
	f.Add([]byte{0x0a, 0x05, 0x01})
	f.Add([]byte{0x0b, 0x0c})
	c := newLimitCache()
	md := descriptor(&pb.PushRequest{})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := c.count(b, md)
		if err != nil {
			var ce *connect.Error
			if !errors.As(err, &ce) || (ce.Code() != connect.CodeInvalidArgument && ce.Code() != connect.CodeResourceExhausted) {
				t.Fatalf("count refused with %v, want invalid_argument or resource_exhausted", err)
			}
			return
		}
		if n < 1 || n > maxObjects {
			t.Fatalf("count let through %d objects", n)
		}
		var req pb.PushRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			return // Connect refuses it in turn
		}
		if len(req.GetChanges()) > 1000 {
			t.Fatalf("count let through a push of %d changes", len(req.GetChanges()))
		}
	})
}

// GateWaiting is how many calls of the procedure at path wait for a slot.
func GateWaiting(g *Guard, path string) int {
	if gt := g.gates[path]; gt != nil {
		return int(gt.waiting.Load())
	}
	return 0
}

// BudgetUsed is how much of g's budget requests hold.
func BudgetUsed(g *Guard) int64 { return g.budget.size - g.budget.free() }
