package syncengine

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestPositionValidate(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		p    *Position
		ok   bool
	}{
		{name: "none", ok: true},
		{name: "a fix", p: &Position{Latitude: 28.194, Longitude: 112.976, AccuracyMeters: 15, FixedAt: at}, ok: true},
		{name: "the poles and the date line", p: &Position{Latitude: -90, Longitude: 180, FixedAt: at}, ok: true},
		{name: "accuracy unknown", p: &Position{Latitude: 1, Longitude: 2, FixedAt: at}, ok: true},
		{name: "latitude past the pole", p: &Position{Latitude: 90.0001, Longitude: 0, FixedAt: at}},
		{name: "longitude past the date line", p: &Position{Latitude: 0, Longitude: -180.5, FixedAt: at}},
		{name: "NaN", p: &Position{Latitude: math.NaN(), Longitude: 0, FixedAt: at}},
		{name: "infinite longitude", p: &Position{Latitude: 0, Longitude: math.Inf(1), FixedAt: at}},
		{name: "negative accuracy", p: &Position{Latitude: 0, Longitude: 0, AccuracyMeters: -1, FixedAt: at}},
		{name: "accuracy of a country", p: &Position{Latitude: 0, Longitude: 0, AccuracyMeters: MaxAccuracyMeters + 1, FixedAt: at}},
		{name: "no time of fix", p: &Position{Latitude: 0, Longitude: 0}},
		{name: "fixed in 1970", p: &Position{Latitude: 0, Longitude: 0, FixedAt: time.Unix(0, 0)}},
	} {
		err := tc.p.validate()
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// TestPositionStorage: what EncodePosition stores, DecodePosition reads
// back exactly, for random fixes and the edges.
func TestPositionStorage(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	ps := []*Position{nil, {Latitude: -90, Longitude: -180, FixedAt: time.UnixMilli(946684800000).UTC()},
		{Latitude: 90, Longitude: 180, AccuracyMeters: MaxAccuracyMeters, FixedAt: time.UnixMilli(7258118399999).UTC()}}
	for range 1000 {
		ps = append(ps, &Position{Latitude: rng.Float64()*180 - 90, Longitude: rng.Float64()*360 - 180,
			AccuracyMeters: rng.Float64() * 100, FixedAt: time.UnixMilli(946684800000 + rng.Int64N(1e12)).UTC()})
	}
	for _, p := range ps {
		got, err := DecodePosition(EncodePosition(p))
		if err != nil || !got.equal(p) {
			t.Fatalf("%+v stored as %q reads back as %+v (%v)", p, EncodePosition(p), got, err)
		}
	}
	for _, bad := range []string{"1 2 3", "a b c 4", "1 2 3 x", "1 2 3 4 5"} {
		if _, err := DecodePosition(bad); err == nil {
			t.Errorf("DecodePosition(%q) read it", bad)
		}
	}
}
