package demo_test

import (
	"testing"
	"time"

	"github.com/doorbook/doorbook/internal/demo"
)

// TestSeedIsDeterministic: the same seed gives the same households.
func TestSeedIsDeterministic(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	a := demo.NewGenerator(5, base).Grid("g", demo.DefaultShape, "w", "v")
	b := demo.NewGenerator(5, base).Grid("g", demo.DefaultShape, "w", "v")
	if len(a.Households) != demo.DefaultShape.HouseholdsPerGrid || a.Households[17].HeadName != b.Households[17].HeadName || a.Persons[3].ID != b.Persons[3].ID {
		t.Fatalf("generator is not deterministic for a seed")
	}
	c := demo.NewGenerator(6, base).Grid("g", demo.DefaultShape, "w", "v")
	if c.Households[0].ID == a.Households[0].ID {
		t.Fatalf("different seeds gave the same ids")
	}
}
