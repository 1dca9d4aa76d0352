package syncengine

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Position is where the phone was when a visit was recorded, as its
// location service reported it: never required, never invented.
type Position struct {
	// Latitude and Longitude are WGS 84 degrees.
	Latitude, Longitude float64
	// AccuracyMeters is the radius of the fix's uncertainty (0: unknown).
	AccuracyMeters float64
	// FixedAt is when the fix was taken.
	FixedAt time.Time
}

// MaxAccuracyMeters bounds a position's uncertainty: a fix worse than this
// says nothing of the door.
const MaxAccuracyMeters = 100_000

func (p *Position) validate() error {
	switch {
	case p == nil:
		return nil
	case math.IsNaN(p.Latitude) || p.Latitude < -90 || p.Latitude > 90:
		return fmt.Errorf("%w: latitude %v is not -90..90", ErrInvalid, p.Latitude)
	case math.IsNaN(p.Longitude) || p.Longitude < -180 || p.Longitude > 180:
		return fmt.Errorf("%w: longitude %v is not -180..180", ErrInvalid, p.Longitude)
	case math.IsNaN(p.AccuracyMeters) || p.AccuracyMeters < 0 || p.AccuracyMeters > MaxAccuracyMeters:
		return fmt.Errorf("%w: a position's accuracy %v m is not 0..%d", ErrInvalid, p.AccuracyMeters, MaxAccuracyMeters)
	case p.FixedAt.IsZero():
		return fmt.Errorf("%w: a position needs the time of its fix", ErrInvalid)
	case p.FixedAt.Before(minVisitTime) || p.FixedAt.After(maxVisitTime):
		return fmt.Errorf("%w: a position fixed at %s is not a plausible date", ErrInvalid, p.FixedAt.Format(time.RFC3339))
	}
	return nil
}

func (p *Position) equal(o *Position) bool {
	if p == nil || o == nil {
		return p == o
	}
	return p.Latitude == o.Latitude && p.Longitude == o.Longitude && p.AccuracyMeters == o.AccuracyMeters && p.FixedAt.Equal(o.FixedAt)
}

// EncodePosition is the storage form of a visit's position that every
// store of visits keeps: "latitude longitude accuracy fix-milliseconds",
// "" for none. Floats round-trip exactly.
func EncodePosition(p *Position) string {
	if p == nil {
		return ""
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	return f(p.Latitude) + " " + f(p.Longitude) + " " + f(p.AccuracyMeters) + " " + strconv.FormatInt(p.FixedAt.UnixMilli(), 10)
}

// DecodePosition reads EncodePosition's text (nil for "").
func DecodePosition(text string) (*Position, error) {
	if text == "" {
		return nil, nil
	}
	parts := strings.Fields(text)
	if len(parts) != 4 {
		return nil, fmt.Errorf("decode position %q: want 4 fields", text)
	}
	var xs [3]float64
	for i := range xs {
		x, err := strconv.ParseFloat(parts[i], 64)
		if err != nil {
			return nil, fmt.Errorf("decode position %q: %w", text, err)
		}
		xs[i] = x
	}
	ms, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("decode position %q: %w", text, err)
	}
	return &Position{Latitude: xs[0], Longitude: xs[1], AccuracyMeters: xs[2], FixedAt: time.UnixMilli(ms).UTC()}, nil
}
