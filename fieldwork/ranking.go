package fieldwork

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/doorbook/doorbook/syncengine"
)

// The ranking of communities (通报排名) and what it brings them (seed
// 000: the district's top 7 communities get 3,000 yuan and their link
// cadre 300; from the 41st they are fined). Without weights, communities
// rank by coverage, then key-group rate; a campaign's ranking may weigh
// coverage, the key-group rate and each survey question's positive rate
// instead, and carry a table of rewards and fines by rank.

// Ranking metrics besides a survey question's code.
const (
	MetricCoverage = "coverage"
	MetricKeyGroup = "key_group"
)

// Limits of a ranking.
const (
	maxWeights = 16
	maxBands   = 32
	maxWeight  = 1000
	// maxYuan bounds a reward or fine.
	maxYuan = 10_000_000
)

// Weight weighs one metric of the score.
type Weight struct {
	// Metric is MetricCoverage, MetricKeyGroup or a survey question's code
	// (its positive rate).
	Metric string
	Weight uint32
}

// Band is a reward (or, negative, a fine) for the ranks From..To (To 0:
// every rank from From on), for the community and for its link cadre.
type Band struct {
	From, To             uint32
	Community, LinkCadre int64
}

// Ranking is a campaign's ranking rule.
type Ranking struct {
	Weights []Weight
	Bands   []Band
}

// Validate checks a ranking: known metrics at most once, weights and
// amounts in bounds, bands that start at 1 or later and do not overlap.
func (r *Ranking) Validate(questions []syncengine.Question) error {
	if len(r.Weights) > maxWeights || len(r.Bands) > maxBands {
		return fmt.Errorf("%w: a ranking has at most %d weights and %d bands", syncengine.ErrLimit, maxWeights, maxBands)
	}
	seen := map[string]bool{}
	for _, w := range r.Weights {
		known := w.Metric == MetricCoverage || w.Metric == MetricKeyGroup ||
			slices.ContainsFunc(questions, func(q syncengine.Question) bool { return q.Code == w.Metric })
		switch {
		case !known:
			return fmt.Errorf("%w: %q is neither coverage, key_group nor a question of the campaign", syncengine.ErrInvalid, w.Metric)
		case seen[w.Metric]:
			return fmt.Errorf("%w: %s is weighed twice", syncengine.ErrInvalid, w.Metric)
		case w.Weight > maxWeight:
			return fmt.Errorf("%w: a weight is at most %d", syncengine.ErrInvalid, maxWeight)
		}
		seen[w.Metric] = true
	}
	bands := slices.Clone(r.Bands)
	slices.SortFunc(bands, func(a, b Band) int { return cmp.Compare(a.From, b.From) })
	for i, b := range bands {
		switch {
		case b.From == 0 || b.To != 0 && b.To < b.From:
			return fmt.Errorf("%w: a band of ranks runs from 1 or later, forward", syncengine.ErrInvalid)
		case b.Community < -maxYuan || b.Community > maxYuan || b.LinkCadre < -maxYuan || b.LinkCadre > maxYuan:
			return fmt.Errorf("%w: a reward or fine is at most %d yuan", syncengine.ErrInvalid, maxYuan)
		case i > 0 && (bands[i-1].To == 0 || bands[i-1].To >= b.From):
			return fmt.Errorf("%w: bands of ranks %s and %s overlap", syncengine.ErrInvalid, bands[i-1].ranks(), b.ranks())
		}
	}
	return nil
}

func (b Band) ranks() string {
	if b.To == 0 {
		return fmt.Sprintf("%d-", b.From)
	}
	return fmt.Sprintf("%d-%d", b.From, b.To)
}

// Score is f's weighted score in [0, 1]: the weighted mean of the rates
// the ranking weighs (a question no one answered counts 0). 0 without
// weights.
func (r *Ranking) Score(f *Figures) float64 {
	var sum, total float64
	for _, w := range r.Weights {
		rate := 0.0
		switch w.Metric {
		case MetricCoverage:
			rate = f.Coverage()
		case MetricKeyGroup:
			rate = f.KeyGroupRate()
		default:
			for _, s := range f.Survey {
				if s.Question.Code == w.Metric {
					rate = ratio(s.Positive, s.Answered)
				}
			}
		}
		sum += float64(w.Weight) * rate
		total += float64(w.Weight)
	}
	if total == 0 {
		return 0
	}
	return sum / total
}

// Weighed reports whether the ranking weighs anything (else the default
// order applies).
func (r *Ranking) Weighed() bool {
	return slices.ContainsFunc(r.Weights, func(w Weight) bool { return w.Weight > 0 })
}

// Compare orders two units' figures for the ranking, the better first:
// by score when the ranking weighs, else by coverage then key-group rate.
// Ties are the caller's to break (by name).
func (r *Ranking) Compare(a, b *Figures) int {
	if r.Weighed() {
		return -cmp.Compare(r.Score(a), r.Score(b))
	}
	return cmp.Or(-cmp.Compare(a.Coverage(), b.Coverage()), -cmp.Compare(a.KeyGroupRate(), b.KeyGroupRate()))
}

// Band is the band of rank (1 for the first), if one applies.
func (r *Ranking) Band(rank int) (Band, bool) {
	for _, b := range r.Bands {
		if uint32(rank) >= b.From && (b.To == 0 || uint32(rank) <= b.To) {
			return b, true
		}
	}
	return Band{}, false
}

// EncodeRanking renders a ranking canonically, as it is stored:
// "coverage=40,key_group=30;1-7=3000/300,61-=-3000/-300".
func EncodeRanking(r Ranking) string {
	ws := slices.Clone(r.Weights)
	slices.SortFunc(ws, func(a, b Weight) int { return cmp.Compare(a.Metric, b.Metric) })
	bs := slices.Clone(r.Bands)
	slices.SortFunc(bs, func(a, b Band) int { return cmp.Compare(a.From, b.From) })
	var parts []string
	for _, w := range ws {
		parts = append(parts, fmt.Sprintf("%s=%d", w.Metric, w.Weight))
	}
	var bands []string
	for _, b := range bs {
		bands = append(bands, fmt.Sprintf("%s=%d/%d", b.ranks(), b.Community, b.LinkCadre))
	}
	if len(bands) == 0 {
		return strings.Join(parts, ",")
	}
	return strings.Join(parts, ",") + ";" + strings.Join(bands, ",")
}

// DecodeRanking reads EncodeRanking's text.
func DecodeRanking(s string) (Ranking, error) {
	var r Ranking
	if s == "" {
		return r, nil
	}
	weights, bands, _ := strings.Cut(s, ";")
	bad := fmt.Errorf("%w: ranking %q", syncengine.ErrInvalid, s)
	for _, part := range strings.Split(weights, ",") {
		if part == "" {
			continue
		}
		m, n, ok := strings.Cut(part, "=")
		w, err := strconv.ParseUint(n, 10, 32)
		if !ok || err != nil {
			return r, bad
		}
		r.Weights = append(r.Weights, Weight{Metric: m, Weight: uint32(w)})
	}
	for _, part := range strings.Split(bands, ",") {
		if part == "" {
			continue
		}
		ranks, amounts, ok1 := strings.Cut(part, "=")
		from, to, ok2 := strings.Cut(ranks, "-")
		community, cadre, ok3 := strings.Cut(amounts, "/")
		f, err1 := strconv.ParseUint(from, 10, 32)
		var t uint64
		var err2 error
		if to != "" {
			t, err2 = strconv.ParseUint(to, 10, 32)
		}
		c, err3 := strconv.ParseInt(community, 10, 64)
		l, err4 := strconv.ParseInt(cadre, 10, 64)
		if !ok1 || !ok2 || !ok3 || err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			return r, bad
		}
		r.Bands = append(r.Bands, Band{From: uint32(f), To: uint32(t), Community: c, LinkCadre: l})
	}
	return r, nil
}
