package fieldwork_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/syncengine"
)

// seed000 is the district's table of seed 000: the top 7, 14 and 21
// rewarded, 41-50, 51-60 and from 61 fined, community and link cadre.
var seed000 = []fieldwork.Band{
	{From: 1, To: 7, Community: 3000, LinkCadre: 300},
	{From: 8, To: 14, Community: 2000, LinkCadre: 200},
	{From: 15, To: 21, Community: 1000, LinkCadre: 100},
	{From: 41, To: 50, Community: -1000, LinkCadre: -100},
	{From: 51, To: 60, Community: -2000, LinkCadre: -200},
	{From: 61, Community: -3000, LinkCadre: -300},
}

func TestRankingBands(t *testing.T) {
	t.Parallel()
	r := fieldwork.Ranking{Bands: seed000}
	for _, tc := range []struct {
		rank             int
		community, cadre int64
		none             bool
	}{
		{1, 3000, 300, false}, {7, 3000, 300, false}, {8, 2000, 200, false}, {14, 2000, 200, false},
		{21, 1000, 100, false}, {22, 0, 0, true}, {40, 0, 0, true}, {41, -1000, -100, false},
		{60, -2000, -200, false}, {61, -3000, -300, false}, {500, -3000, -300, false},
	} {
		b, ok := r.Band(tc.rank)
		if ok == tc.none || b.Community != tc.community || b.LinkCadre != tc.cadre {
			t.Errorf("rank %d: band %+v (%v), want %d/%d", tc.rank, b, ok, tc.community, tc.cadre)
		}
	}
	if err := r.Validate(nil); err != nil {
		t.Errorf("seed 000's table: %v", err)
	}
}

func TestRankingScoreAndOrder(t *testing.T) {
	t.Parallel()
	q := syncengine.Question{Code: "satisfied"}
	// a: everyone visited, half satisfied; b: half visited, all satisfied.
	a := &fieldwork.Figures{Households: 10, Visited: 10, KeyGroupHouseholds: 2, KeyGroupVisited: 1, Survey: []fieldwork.Rate{{Question: q, Answered: 10, Positive: 5}}}
	b := &fieldwork.Figures{Households: 10, Visited: 5, KeyGroupHouseholds: 2, KeyGroupVisited: 2, Survey: []fieldwork.Rate{{Question: q, Answered: 4, Positive: 4}}}
	for _, tc := range []struct {
		name    string
		weights []fieldwork.Weight
		scoreA  float64
		scoreB  float64
		aFirst  bool
	}{
		{"no weights: coverage first", nil, 0, 0, true},
		{"coverage only", []fieldwork.Weight{{Metric: "coverage", Weight: 1}}, 1, 0.5, true},
		{"satisfaction only", []fieldwork.Weight{{Metric: "satisfied", Weight: 5}}, 0.5, 1, false},
		{"key group and satisfaction", []fieldwork.Weight{{Metric: "key_group", Weight: 1}, {Metric: "satisfied", Weight: 1}}, 0.5, 1, false},
		{"40/30/30", []fieldwork.Weight{{Metric: "coverage", Weight: 40}, {Metric: "key_group", Weight: 30}, {Metric: "satisfied", Weight: 30}}, 0.4 + 0.15 + 0.15, 0.2 + 0.3 + 0.3, false},
		{"a question no one answered counts 0", []fieldwork.Weight{{Metric: "safe", Weight: 1}, {Metric: "coverage", Weight: 1}}, 0.5, 0.25, true},
	} {
		r := fieldwork.Ranking{Weights: tc.weights}
		if sa, sb := r.Score(a), r.Score(b); !near(sa, tc.scoreA) || !near(sb, tc.scoreB) {
			t.Errorf("%s: scores %.3f, %.3f; want %.3f, %.3f", tc.name, sa, sb, tc.scoreA, tc.scoreB)
		}
		if got := r.Compare(a, b) < 0; got != tc.aFirst {
			t.Errorf("%s: a ranks first %v, want %v", tc.name, got, tc.aFirst)
		}
	}
}

func near(x, y float64) bool { return x-y < 1e-9 && y-x < 1e-9 }

func TestRankingValidateAndEncoding(t *testing.T) {
	t.Parallel()
	qs := []syncengine.Question{{Code: "satisfied"}}
	for _, tc := range []struct {
		name string
		r    fieldwork.Ranking
		err  error
	}{
		{"seed 000", fieldwork.Ranking{Weights: []fieldwork.Weight{{Metric: "coverage", Weight: 40}, {Metric: "satisfied", Weight: 60}}, Bands: seed000}, nil},
		{"unknown metric", fieldwork.Ranking{Weights: []fieldwork.Weight{{Metric: "happiness", Weight: 1}}}, syncengine.ErrInvalid},
		{"a metric twice", fieldwork.Ranking{Weights: []fieldwork.Weight{{Metric: "coverage", Weight: 1}, {Metric: "coverage", Weight: 2}}}, syncengine.ErrInvalid},
		{"rank 0", fieldwork.Ranking{Bands: []fieldwork.Band{{From: 0, To: 3}}}, syncengine.ErrInvalid},
		{"backwards", fieldwork.Ranking{Bands: []fieldwork.Band{{From: 5, To: 3}}}, syncengine.ErrInvalid},
		{"overlap", fieldwork.Ranking{Bands: []fieldwork.Band{{From: 1, To: 7}, {From: 7, To: 9}}}, syncengine.ErrInvalid},
		{"after an open band", fieldwork.Ranking{Bands: []fieldwork.Band{{From: 10}, {From: 20, To: 30}}}, syncengine.ErrInvalid},
		{"too much", fieldwork.Ranking{Bands: []fieldwork.Band{{From: 1, To: 1, Community: 20_000_000}}}, syncengine.ErrInvalid},
	} {
		err := tc.r.Validate(qs)
		if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
		if tc.err != nil {
			continue
		}
		text := fieldwork.EncodeRanking(tc.r)
		back, err := fieldwork.DecodeRanking(text)
		if err != nil || fieldwork.EncodeRanking(back) != text || len(back.Bands) != len(tc.r.Bands) || !slices.Equal(back.Weights, []fieldwork.Weight{{Metric: "coverage", Weight: 40}, {Metric: "satisfied", Weight: 60}}) {
			t.Errorf("%s: %q read back as %+v (%v)", tc.name, text, back, err)
		}
	}
	if want := "coverage=40,satisfied=60;1-7=3000/300,8-14=2000/200,15-21=1000/100,41-50=-1000/-100,51-60=-2000/-200,61-=-3000/-300"; fieldwork.EncodeRanking(fieldwork.Ranking{Weights: []fieldwork.Weight{{Metric: "satisfied", Weight: 60}, {Metric: "coverage", Weight: 40}}, Bands: seed000}) != want {
		t.Errorf("encoding: %q, want %q", fieldwork.EncodeRanking(fieldwork.Ranking{Weights: []fieldwork.Weight{{Metric: "satisfied", Weight: 60}, {Metric: "coverage", Weight: 40}}, Bands: seed000}), want)
	}
	for _, bad := range []string{"coverage", "coverage=x", ";1-7", ";a-7=1/1", ";1-7=1"} {
		if _, err := fieldwork.DecodeRanking(bad); !errors.Is(err, syncengine.ErrInvalid) {
			t.Errorf("DecodeRanking(%q): %v, want ErrInvalid", bad, err)
		}
	}
}

// TestLinkage: the person–house linkage rate (人房关联率, seed 001) counts
// each household up to its member count; households without one do not
// count; those whose persons listed differ are listed.
func TestLinkage(t *testing.T) {
	t.Parallel()
	b := fieldwork.NewBuilder(nil, nil)
	for i, h := range []fieldwork.Household{
		{MemberCount: 3, Persons: 3}, // all linked
		{MemberCount: 5, Persons: 2}, // 2 of 5
		{MemberCount: 2, Persons: 4}, // more listed than counted: 2 of 2, a mismatch
		{MemberCount: 0, Persons: 6}, // no count: not in the rate
	} {
		h.ID = fmt.Sprintf("h%d", i)
		b.AddHousehold(h, nil)
	}
	f := b.Finish().Figures(time.Now(), nil)
	if f.Members != 10 || f.MembersLinked != 7 || f.MembersMismatch != 2 || !near(f.LinkageRate(), 0.7) {
		t.Errorf("linkage: %d of %d members linked, %d households mismatched, rate %.2f; want 7 of 10, 2, 0.70",
			f.MembersLinked, f.Members, f.MembersMismatch, f.LinkageRate())
	}
}
