package syncengine_test

import (
	"math"
	"testing"

	se "github.com/doorbook/doorbook/syncengine"
)

// clk is a Clock from its HLC value and node, for readable tables.
func clk(hlc, node uint64) se.Clock { return se.Clock{HLC: hlc, Node: node} }

func TestRegisterMerge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		r, o        se.Register[string]
		want        se.Register[string]
		wantChanged bool
	}{
		{
			name: "newer clock wins",
			r:    se.NewRegister("old", clk(1, 9)), o: se.NewRegister("new", clk(2, 1)),
			want: se.NewRegister("new", clk(2, 1)), wantChanged: true,
		},
		{
			name: "older clock loses",
			r:    se.NewRegister("new", clk(2, 1)), o: se.NewRegister("old", clk(1, 9)),
			want: se.NewRegister("new", clk(2, 1)),
		},
		{
			name: "HLC decides before node",
			r:    se.NewRegister("a", clk(1, math.MaxUint64)), o: se.NewRegister("b", clk(2, 0)),
			want: se.NewRegister("b", clk(2, 0)), wantChanged: true,
		},
		{
			name: "same HLC: larger node wins, whatever the values",
			r:    se.NewRegister("zzz", clk(5, 1)), o: se.NewRegister("aaa", clk(5, 2)),
			want: se.NewRegister("aaa", clk(5, 2)), wantChanged: true,
		},
		{
			name: "same HLC: smaller node loses",
			r:    se.NewRegister("aaa", clk(5, 2)), o: se.NewRegister("zzz", clk(5, 1)),
			want: se.NewRegister("aaa", clk(5, 2)),
		},
		{
			name: "equal clock: larger value wins",
			r:    se.NewRegister("a", clk(5, 1)), o: se.NewRegister("b", clk(5, 1)),
			want: se.NewRegister("b", clk(5, 1)), wantChanged: true,
		},
		{
			name: "equal clock: smaller value loses",
			r:    se.NewRegister("b", clk(5, 1)), o: se.NewRegister("a", clk(5, 1)),
			want: se.NewRegister("b", clk(5, 1)),
		},
		{
			name: "the same write again changes nothing",
			r:    se.NewRegister("a", clk(5, 1)), o: se.NewRegister("a", clk(5, 1)),
			want: se.NewRegister("a", clk(5, 1)),
		},
		{
			name: "an unset register loses to a set one",
			r:    se.NewRegister("a", clk(1, 0)), o: se.Register[string]{},
			want: se.NewRegister("a", clk(1, 0)),
		},
		{
			name: "a set register beats an unset one, even with the empty value",
			r:    se.Register[string]{}, o: se.NewRegister("", clk(1, 0)),
			want: se.NewRegister("", clk(1, 0)), wantChanged: true,
		},
		{
			name: "a write under the smallest clock beats an unset register",
			r:    se.Register[string]{}, o: se.NewRegister("x", clk(0, 1)),
			want: se.NewRegister("x", clk(0, 1)), wantChanged: true,
		},
		{
			name: "unset meets unset",
			r:    se.Register[string]{}, o: se.Register[string]{},
			want: se.Register[string]{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.r
			changed := got.Merge(tt.o)
			if got != tt.want || changed != tt.wantChanged {
				t.Errorf("%+v.Merge(%+v) = %+v, changed %v; want %+v, changed %v",
					tt.r, tt.o, got, changed, tt.want, tt.wantChanged)
			}
			// The other way round must reach the same register.
			rev := tt.o
			rev.Merge(tt.r)
			if rev != tt.want {
				t.Errorf("%+v.Merge(%+v) = %+v; want %+v (merge is not commutative)", tt.o, tt.r, rev, tt.want)
			}
		})
	}
}

// Two different values under one clock resolve to the larger value, for
// every value type, in both merge orders.
func TestRegisterEqualClockTieByValue(t *testing.T) {
	t.Parallel()
	c := clk(7, 3)
	t.Run("int64", func(t *testing.T) {
		t.Parallel()
		lo, hi := se.NewRegister(int64(-5), c), se.NewRegister(int64(3), c)
		for _, pair := range [][2]se.Register[int64]{{lo, hi}, {hi, lo}} {
			got := pair[0]
			got.Merge(pair[1])
			if got != hi {
				t.Errorf("%+v.Merge(%+v) = %+v; want %+v", pair[0], pair[1], got, hi)
			}
		}
	})
	t.Run("bool", func(t *testing.T) {
		t.Parallel()
		lo, hi := se.NewRegister(false, c), se.NewRegister(true, c)
		for _, pair := range [][2]se.Register[bool]{{lo, hi}, {hi, lo}} {
			got := pair[0]
			got.Merge(pair[1])
			if got != hi {
				t.Errorf("%+v.Merge(%+v) = %+v; want %+v", pair[0], pair[1], got, hi)
			}
		}
	})
	t.Run("string", func(t *testing.T) {
		t.Parallel()
		lo, hi := se.NewRegister("Zhang", c), se.NewRegister("zhang", c)
		for _, pair := range [][2]se.Register[string]{{lo, hi}, {hi, lo}} {
			got := pair[0]
			got.Merge(pair[1])
			if got != hi {
				t.Errorf("%+v.Merge(%+v) = %+v; want %+v", pair[0], pair[1], got, hi)
			}
		}
	})
}

func TestRegisterSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    se.Register[string]
		want bool
	}{
		{"zero register", se.Register[string]{}, false},
		{"value without clock", se.Register[string]{Value: "x"}, false},
		{"empty value written", se.NewRegister("", clk(1, 0)), true},
		{"node only", se.NewRegister("x", clk(0, 1)), true},
	}
	for _, tt := range tests {
		if got := tt.r.Set(); got != tt.want {
			t.Errorf("%s: %+v.Set() = %v; want %v", tt.name, tt.r, got, tt.want)
		}
	}
}
