package syncengine_test

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	se "github.com/doorbook/doorbook/syncengine"
)

const (
	refCampaignID = "00000000-0000-7000-8000-00000000c001"
	refNodeID     = "00000000-0000-7000-8000-00000000d001"
)

// checkMergeLaws folds deltas into an empty row (made by empty) in every
// order and checks the result is want each time, that merging any delta or
// the result again changes nothing, and that the first merge into an empty
// row reports a change.
func checkMergeLaws[R any](t *testing.T, empty func() R, merge func(*R, R) bool, deltas []R, want R) {
	t.Helper()
	for _, order := range itOrders(deltas) {
		got := empty()
		for i, d := range order {
			changed := merge(&got, d)
			if i == 0 && !changed {
				t.Errorf("first merge into an empty row reports no change")
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("merging deltas in order %+v:\n got  %+v\n want %+v", order, got, want)
		}
		for _, d := range deltas {
			if merge(&got, d) {
				t.Errorf("merging delta %+v again changed the row", d)
			}
		}
		if merge(&got, got) {
			t.Errorf("merging the row into itself changed it")
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("merging again moved the row:\n got  %+v\n want %+v", got, want)
		}
	}
}

func TestCategoryMerge(t *testing.T) {
	t.Parallel()
	other := se.Clock{HLC: 10, Node: 2}
	cat := func(edit func(*se.Category)) se.Category {
		c := se.Category{Code: "petitioner"}
		edit(&c)
		return c
	}
	tests := []struct {
		name   string
		deltas []se.Category
		want   se.Category
	}{
		{
			name: "different fields both kept",
			deltas: []se.Category{
				cat(func(c *se.Category) { c.NameZH = se.NewRegister("上访老户", itClock(10)) }),
				cat(func(c *se.Category) { c.RevisitDays = se.NewRegister(int64(30), itClock(11)) }),
			},
			want: cat(func(c *se.Category) {
				c.NameZH = se.NewRegister("上访老户", itClock(10))
				c.RevisitDays = se.NewRegister(int64(30), itClock(11))
			}),
		},
		{
			name: "same field: the higher clock wins",
			deltas: []se.Category{
				cat(func(c *se.Category) { c.RevisitDays = se.NewRegister(int64(30), itClock(12)) }),
				cat(func(c *se.Category) { c.RevisitDays = se.NewRegister(int64(60), itClock(10)) }),
			},
			want: cat(func(c *se.Category) { c.RevisitDays = se.NewRegister(int64(30), itClock(12)) }),
		},
		{
			name: "same field, same time: the higher node wins",
			deltas: []se.Category{
				cat(func(c *se.Category) { c.NameEN = se.NewRegister("petitioner", other) }),
				cat(func(c *se.Category) { c.NameEN = se.NewRegister("zealot", itClock(10)) }),
			},
			want: cat(func(c *se.Category) { c.NameEN = se.NewRegister("petitioner", other) }),
		},
		{
			name: "same clock reused: the larger value",
			deltas: []se.Category{
				cat(func(c *se.Category) { c.KeyGroup = se.NewRegister(true, itClock(10)) }),
				cat(func(c *se.Category) { c.KeyGroup = se.NewRegister(false, itClock(10)) }),
			},
			want: cat(func(c *se.Category) { c.KeyGroup = se.NewRegister(true, itClock(10)) }),
		},
		{
			name: "three admins: a rename, a regroup and a deletion",
			deltas: []se.Category{
				cat(func(c *se.Category) {
					c.NameEN = se.NewRegister("old name", itClock(10))
					c.ParentCode = se.NewRegister("key_person", itClock(10))
				}),
				cat(func(c *se.Category) { c.NameEN = se.NewRegister("new name", itClock(11)) }),
				cat(func(c *se.Category) { c.Deleted = se.NewRegister(true, itClock(12)) }),
			},
			want: cat(func(c *se.Category) {
				c.NameEN = se.NewRegister("new name", itClock(11))
				c.ParentCode = se.NewRegister("key_person", itClock(10))
				c.Deleted = se.NewRegister(true, itClock(12))
			}),
		},
		{
			name: "an undelete later than the deletion",
			deltas: []se.Category{
				cat(func(c *se.Category) { c.Deleted = se.NewRegister(true, itClock(10)) }),
				cat(func(c *se.Category) { c.Deleted = se.NewRegister(false, itClock(11)) }),
			},
			want: cat(func(c *se.Category) { c.Deleted = se.NewRegister(false, itClock(11)) }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkMergeLaws(t, func() se.Category { return se.Category{Code: "petitioner"} },
				func(c *se.Category, o se.Category) bool { return c.Merge(o) }, tt.deltas, tt.want)
		})
	}
}

func TestCampaignMerge(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	end := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	camp := func(edit func(*se.Campaign)) se.Campaign {
		c := se.Campaign{ID: refCampaignID}
		edit(&c)
		return c
	}
	tests := []struct {
		name   string
		deltas []se.Campaign
		want   se.Campaign
	}{
		{
			name: "different fields both kept",
			deltas: []se.Campaign{
				camp(func(c *se.Campaign) { c.Quotas = se.NewRegister("1=20", itClock(10)) }),
				camp(func(c *se.Campaign) { c.EndsAt = se.NewRegister(end, itClock(11)) }),
			},
			want: camp(func(c *se.Campaign) {
				c.Quotas = se.NewRegister("1=20", itClock(10))
				c.EndsAt = se.NewRegister(end, itClock(11))
			}),
		},
		{
			name: "same field: the higher clock wins",
			deltas: []se.Campaign{
				camp(func(c *se.Campaign) { c.Quotas = se.NewRegister("1=20", itClock(10)) }),
				camp(func(c *se.Campaign) { c.Quotas = se.NewRegister("1=30,2=5", itClock(12)) }),
			},
			want: camp(func(c *se.Campaign) { c.Quotas = se.NewRegister("1=30,2=5", itClock(12)) }),
		},
		{
			name: "a questionnaire is replaced whole",
			deltas: []se.Campaign{
				camp(func(c *se.Campaign) {
					c.Questionnaire = se.NewRegister(`[{"code":"a","scale":5,"positive_from":4}]`, itClock(11))
				}),
				camp(func(c *se.Campaign) {
					c.Questionnaire = se.NewRegister(`[{"code":"b","scale":5,"positive_from":4}]`, itClock(10))
				}),
			},
			want: camp(func(c *se.Campaign) {
				c.Questionnaire = se.NewRegister(`[{"code":"a","scale":5,"positive_from":4}]`, itClock(11))
			}),
		},
		{
			name: "a whole campaign and a later rename",
			deltas: []se.Campaign{
				camp(func(c *se.Campaign) {
					c.NodeID = se.NewRegister(refNodeID, itClock(10))
					c.Name = se.NewRegister("Spring visits", itClock(10))
					c.StartsAt = se.NewRegister(start, itClock(10))
					c.EndsAt = se.NewRegister(end, itClock(10))
				}),
				camp(func(c *se.Campaign) { c.Name = se.NewRegister("April visits", itClock(13)) }),
				camp(func(c *se.Campaign) { c.StartsAt = se.NewRegister(start-1, itClock(9)) }),
			},
			want: camp(func(c *se.Campaign) {
				c.NodeID = se.NewRegister(refNodeID, itClock(10))
				c.Name = se.NewRegister("April visits", itClock(13))
				c.StartsAt = se.NewRegister(start, itClock(10))
				c.EndsAt = se.NewRegister(end, itClock(10))
			}),
		},
		{
			name: "deletion beside an edit",
			deltas: []se.Campaign{
				camp(func(c *se.Campaign) { c.Deleted = se.NewRegister(true, itClock(10)) }),
				camp(func(c *se.Campaign) { c.Name = se.NewRegister("renamed", itClock(11)) }),
			},
			want: camp(func(c *se.Campaign) {
				c.Deleted = se.NewRegister(true, itClock(10))
				c.Name = se.NewRegister("renamed", itClock(11))
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkMergeLaws(t, func() se.Campaign { return se.Campaign{ID: refCampaignID} },
				func(c *se.Campaign, o se.Campaign) bool { return c.Merge(o) }, tt.deltas, tt.want)
		})
	}
}

func TestReferenceClocksRoundTrip(t *testing.T) {
	t.Parallel()
	cat := se.Category{Code: "x", NameZH: se.NewRegister("甲", itClock(3)), Deleted: se.NewRegister(true, itClock(9))}
	camp := se.Campaign{ID: refCampaignID, Name: se.NewRegister("n", itClock(4)), Questionnaire: se.NewRegister("", itClock(7))}
	tests := []struct {
		name  string
		round func() bool
	}{
		{"category", func() bool {
			var c se.Category
			c.SetClocks(cat.Clocks())
			return reflect.DeepEqual(c.Clocks(), cat.Clocks()) && c.NameZH.Clock == itClock(3) && c.Deleted.Clock == itClock(9)
		}},
		{"campaign", func() bool {
			var c se.Campaign
			c.SetClocks(camp.Clocks())
			return reflect.DeepEqual(c.Clocks(), camp.Clocks()) && c.Name.Clock == itClock(4) && c.Questionnaire.Clock == itClock(7)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !tt.round() {
				t.Errorf("SetClocks(Clocks()) lost clocks")
			}
		})
	}
}

func TestQuotasRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		quotas map[int32]uint32
		want   string
		back   map[int32]uint32
	}{
		{"none", nil, "", map[int32]uint32{}},
		{"one role", map[int32]uint32{1: 20}, "1=20", map[int32]uint32{1: 20}},
		{"by role", map[int32]uint32{3: 1, 1: 20, 2: 300}, "1=20,2=300,3=1", map[int32]uint32{1: 20, 2: 300, 3: 1}},
		{"numeric, not text, order", map[int32]uint32{10: 1, 9: 2}, "9=2,10=1", map[int32]uint32{9: 2, 10: 1}},
		{"zero quotas dropped", map[int32]uint32{1: 0, 2: 5}, "2=5", map[int32]uint32{2: 5}},
		{"the largest quota", map[int32]uint32{1: se.MaxQuota}, "1=100000", map[int32]uint32{1: se.MaxQuota}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := se.EncodeQuotas(tt.quotas)
			if got != tt.want {
				t.Errorf("EncodeQuotas = %q, want %q", got, tt.want)
			}
			// The same quotas built in another order encode the same.
			again := map[int32]uint32{}
			for r, n := range tt.quotas {
				again[r] = n
			}
			if se.EncodeQuotas(again) != got {
				t.Errorf("EncodeQuotas is not canonical")
			}
			back, err := se.DecodeQuotas(got)
			if err != nil {
				t.Fatalf("DecodeQuotas(%q): %v", got, err)
			}
			if !maps.Equal(back, tt.back) {
				t.Errorf("DecodeQuotas(%q) = %v, want %v", got, back, tt.back)
			}
			c := se.Campaign{Quotas: se.NewRegister(got, itClock(1))}
			for r, n := range tt.back {
				if q := c.QuotaFor(r); q != n {
					t.Errorf("QuotaFor(%d) = %d, want %d", r, q, n)
				}
			}
			if q := c.QuotaFor(99); q != 0 {
				t.Errorf("QuotaFor(99) = %d, want 0", q)
			}
		})
	}
}

func TestDecodeQuotasRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"1", "=5", "1=", "a=1", "1=b", "0=5", "-1=5", "1=-5", "1=100001", "1=5,", ",", "1=5;2=3",
		"99999999999=1", "1=99999999999", " 1=5", "1=5 ", "1==5", "1=5=6",
	} {
		t.Run(fmt.Sprintf("%q", in), func(t *testing.T) {
			t.Parallel()
			q, err := se.DecodeQuotas(in)
			if !errors.Is(err, se.ErrInvalid) {
				t.Errorf("DecodeQuotas = %v, %v; want ErrInvalid", q, err)
			}
			c := se.Campaign{ID: refCampaignID, Quotas: se.NewRegister(in, itClock(1))}
			if !errors.Is(c.Validate(), se.ErrInvalid) {
				t.Errorf("Campaign.Validate accepts quotas %q", in)
			}
			if got := c.QuotaFor(1); got != 0 {
				t.Errorf("QuotaFor(1) = %d from garbage, want 0", got)
			}
		})
	}
}

func TestEncodeQuestionnaire(t *testing.T) {
	t.Parallel()
	q := func(code string, scale, positiveFrom int32) se.Question {
		return se.Question{Code: code, TextZH: "满意吗", TextEN: "Satisfied?", Scale: scale, PositiveFrom: positiveFrom}
	}
	twentyOne := make([]se.Question, se.MaxQuestions+1)
	for i := range twentyOne {
		twentyOne[i] = q(fmt.Sprintf("q%d", i), 5, 4)
	}
	tests := []struct {
		name    string
		qs      []se.Question
		wantErr error
	}{
		{"none", nil, nil},
		{"one question", []se.Question{q("satisfied", 5, 4)}, nil},
		{"two questions", []se.Question{q("satisfied", 5, 4), q("safe", 10, 7)}, nil},
		{"smallest scale", []se.Question{q("yes_no", 2, 2)}, nil},
		{"largest scale", []se.Question{q("score", 10, 1)}, nil},
		{"scale of 1", []se.Question{q("one", 1, 1)}, se.ErrInvalid},
		{"scale of 0", []se.Question{q("zero", 0, 0)}, se.ErrInvalid},
		{"scale over 10", []se.Question{q("eleven", 11, 6)}, se.ErrInvalid},
		{"positive from 0", []se.Question{q("satisfied", 5, 0)}, se.ErrInvalid},
		{"positive from the top of the scale", []se.Question{q("satisfied", 5, 5)}, nil},
		{"positive from past the scale", []se.Question{q("satisfied", 5, 6)}, se.ErrInvalid},
		{"duplicate codes", []se.Question{q("satisfied", 5, 4), q("safe", 10, 7), q("satisfied", 10, 7)}, se.ErrInvalid},
		{"empty code", []se.Question{q("", 5, 4)}, se.ErrInvalid},
		{"code with a space", []se.Question{q("is safe", 5, 4)}, se.ErrInvalid},
		{"text too long", []se.Question{{Code: "long", TextEN: strings.Repeat("x", 4001), Scale: 5, PositiveFrom: 4}}, se.ErrLimit},
		{"the most questions", twentyOne[:se.MaxQuestions], nil},
		{"too many questions", twentyOne, se.ErrLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			text, err := se.EncodeQuestionnaire(tt.qs)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("EncodeQuestionnaire: %q, %v; want %v", text, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("EncodeQuestionnaire: %v", err)
			}
			if len(tt.qs) == 0 && text != "" {
				t.Errorf("EncodeQuestionnaire(nil) = %q, want \"\"", text)
			}
			back, err := se.DecodeQuestionnaire(text)
			if err != nil {
				t.Fatalf("DecodeQuestionnaire(%q): %v", text, err)
			}
			if len(back) != len(tt.qs) || (len(back) > 0 && !reflect.DeepEqual(back, tt.qs)) {
				t.Errorf("round trip = %+v, want %+v", back, tt.qs)
			}
			c := se.Campaign{ID: refCampaignID, Questionnaire: se.NewRegister(text, itClock(1))}
			if err := c.Validate(); err != nil {
				t.Errorf("Campaign.Validate: %v", err)
			}
			if got := c.Questions(); len(got) != len(tt.qs) {
				t.Errorf("Questions() has %d questions, want %d", len(got), len(tt.qs))
			}
		})
	}
}

func TestDecodeQuestionnaireRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		text    string
		wantErr error
	}{
		{"not JSON", "satisfied=5", se.ErrInvalid},
		{"an object, not a list", `{"code":"a","scale":5,"positive_from":4}`, se.ErrInvalid},
		{"a scale out of range", `[{"code":"a","scale":12,"positive_from":4}]`, se.ErrInvalid},
		{"no scale", `[{"code":"a"}]`, se.ErrInvalid},
		{"duplicate codes", `[{"code":"a","scale":5,"positive_from":4},{"code":"a","scale":5,"positive_from":4}]`, se.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := se.DecodeQuestionnaire(tt.text); !errors.Is(err, tt.wantErr) {
				t.Errorf("DecodeQuestionnaire: %v, want %v", err, tt.wantErr)
			}
			c := se.Campaign{ID: refCampaignID, Questionnaire: se.NewRegister(tt.text, itClock(1))}
			if err := c.Validate(); !errors.Is(err, tt.wantErr) {
				t.Errorf("Campaign.Validate: %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestCampaignIn(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	c := se.Campaign{
		ID:       refCampaignID,
		StartsAt: se.NewRegister(start.UnixMilli(), itClock(1)),
		EndsAt:   se.NewRegister(end.UnixMilli(), itClock(1)),
	}
	shanghai := time.FixedZone("CST", 8*3600)
	tests := []struct {
		name string
		at   time.Time
		want bool
	}{
		{"at the start", start, true},
		{"a millisecond before the start", start.Add(-time.Millisecond), false},
		{"a nanosecond before the start", start.Add(-time.Nanosecond), false},
		{"in the middle", start.Add(15 * 24 * time.Hour), true},
		{"a millisecond before the end", end.Add(-time.Millisecond), true},
		{"a nanosecond before the end", end.Add(-time.Nanosecond), true},
		{"at the end", end, false},
		{"after the end", end.Add(time.Hour), false},
		{"the start in another zone", start.In(shanghai), true},
		{"08:00 on May 1 in Beijing is the end", time.Date(2026, 5, 1, 8, 0, 0, 0, shanghai), false},
		{"the zero time", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := c.In(tt.at); got != tt.want {
				t.Errorf("In(%s) = %v, want %v", tt.at, got, tt.want)
			}
		})
	}
	t.Run("unset window contains nothing", func(t *testing.T) {
		t.Parallel()
		var empty se.Campaign
		if empty.In(start) || empty.In(time.UnixMilli(0)) {
			t.Errorf("a campaign without a window contains times")
		}
	})
}

func TestCategoryName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		zh, en string
		lang   string
		want   string
	}{
		{"zh asked, both set", "上访老户", "petitioner", "zh", "上访老户"},
		{"en asked, both set", "上访老户", "petitioner", "en", "petitioner"},
		{"en asked, only zh", "上访老户", "", "en", "上访老户"},
		{"zh asked, only en", "", "petitioner", "zh", "petitioner"},
		{"zh asked, neither", "", "", "zh", "petitioner_code"},
		{"en asked, neither", "", "", "en", "petitioner_code"},
		{"other language reads as zh", "上访老户", "petitioner", "fr", "上访老户"},
		{"no language reads as zh", "上访老户", "petitioner", "", "上访老户"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := se.Category{Code: "petitioner_code", NameZH: se.NewRegister(tt.zh, itClock(1)), NameEN: se.NewRegister(tt.en, itClock(1))}
			if got := c.Name(tt.lang); got != tt.want {
				t.Errorf("Name(%q) = %q, want %q", tt.lang, got, tt.want)
			}
		})
	}
}

func TestCategoryValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		edit    func(*se.Category)
		wantErr error
	}{
		{"valid", func(*se.Category) {}, nil},
		{"sub-group", func(c *se.Category) { c.ParentCode = se.NewRegister("key_person", itClock(1)) }, nil},
		{"its own group", func(c *se.Category) { c.ParentCode = se.NewRegister("drug_user", itClock(1)) }, se.ErrInvalid},
		{"bad group code", func(c *se.Category) { c.ParentCode = se.NewRegister("key person", itClock(1)) }, se.ErrInvalid},
		{"bad code", func(c *se.Category) { c.Code = "drug user" }, se.ErrInvalid},
		{"no code", func(c *se.Category) { c.Code = "" }, se.ErrInvalid},
		{"negative interval", func(c *se.Category) { c.RevisitDays = se.NewRegister(int64(-1), itClock(1)) }, se.ErrInvalid},
		{"longest interval", func(c *se.Category) { c.RevisitDays = se.NewRegister(int64(se.MaxRevisitDays), itClock(1)) }, nil},
		{"interval too long", func(c *se.Category) { c.RevisitDays = se.NewRegister(int64(se.MaxRevisitDays+1), itClock(1)) }, se.ErrInvalid},
		{"name too long", func(c *se.Category) { c.NameEN = se.NewRegister(strings.Repeat("n", 257), itClock(1)) }, se.ErrLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := se.Category{Code: "drug_user", NameZH: se.NewRegister("社会吸毒人员", itClock(1)), RevisitDays: se.NewRegister(int64(30), itClock(1))}
			tt.edit(&c)
			err := c.Validate()
			if (tt.wantErr == nil) != (err == nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("Validate: %v, want %v", err, tt.wantErr)
			}
			r := se.Reference{Categories: []se.Category{c}}
			if (r.Validate() == nil) != (err == nil) {
				t.Errorf("Reference.Validate disagrees with Category.Validate")
			}
		})
	}
}

func TestCampaignValidate(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	tests := []struct {
		name    string
		edit    func(*se.Campaign)
		wantErr error
	}{
		{"valid", func(*se.Campaign) {}, nil},
		{"bad id", func(c *se.Campaign) { c.ID = "april" }, se.ErrInvalid},
		{"bad node id", func(c *se.Campaign) { c.NodeID = se.NewRegister("district", itClock(1)) }, se.ErrInvalid},
		{"ends at its start", func(c *se.Campaign) { c.EndsAt = se.NewRegister(start, itClock(1)) }, se.ErrInvalid},
		{"ends before its start", func(c *se.Campaign) { c.EndsAt = se.NewRegister(start-1, itClock(1)) }, se.ErrInvalid},
		{"no end yet", func(c *se.Campaign) { c.EndsAt = se.Register[int64]{} }, nil},
		{"name too long", func(c *se.Campaign) { c.Name = se.NewRegister(strings.Repeat("n", 257), itClock(1)) }, se.ErrLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := se.Campaign{
				ID:       refCampaignID,
				NodeID:   se.NewRegister(refNodeID, itClock(1)),
				Name:     se.NewRegister("April visits", itClock(1)),
				StartsAt: se.NewRegister(start, itClock(1)),
				EndsAt:   se.NewRegister(start+1, itClock(1)),
				Quotas:   se.NewRegister("1=20", itClock(1)),
			}
			tt.edit(&c)
			err := c.Validate()
			if (tt.wantErr == nil) != (err == nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("Validate: %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestVisitValidateDetails(t *testing.T) {
	t.Parallel()
	base := func() se.Visit {
		return se.Visit{
			ID: itVisitID, HouseholdIDs: []string{itHH1}, VisitorID: itVisitorID,
			VisitedAt: itAt, Form: se.FormInPerson, Clock: itClock(100),
			Materials:      []se.Material{se.MaterialOpenLetter, se.MaterialSafetyCalendar},
			Findings:       []se.Finding{{Kind: se.FindingHazard, Note: "loose wiring"}, {Kind: se.FindingHardship}},
			RevisitReasons: []se.RevisitReason{se.RevisitUnstableMood},
			RevisitDue:     itDay(8),
			CampaignID:     refCampaignID,
			Answers:        []se.SurveyAnswer{{Question: "satisfied", Value: 4}, {Question: "safe", Value: 9}},
		}
	}
	tooMany := func(n int) []se.Finding { return make([]se.Finding, n) }
	tests := []struct {
		name    string
		edit    func(*se.Visit)
		wantErr error
	}{
		{"all details", func(*se.Visit) {}, nil},
		{"no details", func(v *se.Visit) {
			v.Materials, v.Findings, v.RevisitReasons, v.RevisitDue, v.CampaignID, v.Answers = nil, nil, nil, time.Time{}, "", nil
		}, nil},
		{"revisit reasons without a due date", func(v *se.Visit) { v.RevisitDue = time.Time{} }, se.ErrInvalid},
		{"a due date without reasons", func(v *se.Visit) { v.RevisitReasons = nil }, se.ErrInvalid},
		{"due before the visit", func(v *se.Visit) { v.RevisitDue = itAt.Add(-time.Minute) }, se.ErrInvalid},
		{"due at the visit", func(v *se.Visit) { v.RevisitDue = itAt }, nil},
		{"due after 2200", func(v *se.Visit) { v.RevisitDue = time.Date(2200, 1, 2, 0, 0, 0, 0, time.UTC) }, se.ErrInvalid},
		{"revisit reason twice", func(v *se.Visit) {
			v.RevisitReasons = []se.RevisitReason{se.RevisitUnstableMood, se.RevisitUnstableMood}
		}, se.ErrInvalid},
		{"every revisit reason", func(v *se.Visit) {
			v.RevisitReasons = []se.RevisitReason{se.RevisitSpecialDifficulty, se.RevisitImportantRequest, se.RevisitUnstableMood, se.RevisitStrongComplaint}
		}, nil},
		{"unknown revisit reason", func(v *se.Visit) { v.RevisitReasons = []se.RevisitReason{9} }, se.ErrInvalid},
		{"answers without a campaign", func(v *se.Visit) { v.CampaignID = "" }, se.ErrInvalid},
		{"answers of a campaign that is not a UUID", func(v *se.Visit) { v.CampaignID = "april" }, se.ErrInvalid},
		{"a campaign without answers", func(v *se.Visit) { v.Answers = nil }, nil},
		{"a bad campaign without answers", func(v *se.Visit) { v.Answers, v.CampaignID = nil, "april" }, se.ErrInvalid},
		{"material twice", func(v *se.Visit) {
			v.Materials = []se.Material{se.MaterialPledgeForm, se.MaterialOpenLetter, se.MaterialPledgeForm}
		}, se.ErrInvalid},
		{"unknown material", func(v *se.Visit) { v.Materials = []se.Material{4} }, se.ErrInvalid},
		{"answer of 0", func(v *se.Visit) { v.Answers[0].Value = 0 }, se.ErrInvalid},
		{"answer of 1", func(v *se.Visit) { v.Answers[0].Value = 1 }, nil},
		{"answer of 10", func(v *se.Visit) { v.Answers[0].Value = 10 }, nil},
		{"answer of 11", func(v *se.Visit) { v.Answers[0].Value = 11 }, se.ErrInvalid},
		{"negative answer", func(v *se.Visit) { v.Answers[1].Value = -3 }, se.ErrInvalid},
		{"question answered twice", func(v *se.Visit) { v.Answers[1].Question = "satisfied" }, se.ErrInvalid},
		{"bad question code", func(v *se.Visit) { v.Answers[0].Question = "how satisfied" }, se.ErrInvalid},
		{"too many answers", func(v *se.Visit) {
			v.Answers = nil
			for i := range se.MaxAnswers + 1 {
				v.Answers = append(v.Answers, se.SurveyAnswer{Question: fmt.Sprintf("q%d", i), Value: 1})
			}
		}, se.ErrLimit},
		{"unknown finding kind", func(v *se.Visit) { v.Findings[1].Kind = 6 }, se.ErrInvalid},
		{"finding note too long", func(v *se.Visit) { v.Findings[0].Note = strings.Repeat("x", 4001) }, se.ErrLimit},
		{"the most findings", func(v *se.Visit) {
			v.Findings = tooMany(se.MaxFindings)
			for i := range v.Findings {
				v.Findings[i].Kind = se.FindingDispute
			}
		}, nil},
		{"too many findings", func(v *se.Visit) {
			v.Findings = tooMany(se.MaxFindings + 1)
			for i := range v.Findings {
				v.Findings[i].Kind = se.FindingDispute
			}
		}, se.ErrLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := base()
			tt.edit(&v)
			err := v.Validate()
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Validate: %v, want nil", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate: %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestCampaignCheckAnswers(t *testing.T) {
	t.Parallel()
	text, err := se.EncodeQuestionnaire([]se.Question{
		{Code: "aware", Scale: 2, PositiveFrom: 2},
		{Code: "satisfied", Scale: 5, PositiveFrom: 4},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := se.Campaign{ID: refCampaignID, Name: se.NewRegister("April visits", itClock(1)), Questionnaire: se.NewRegister(text, itClock(1))}
	tests := []struct {
		name    string
		answers []se.SurveyAnswer
		wantErr bool
	}{
		{"none", nil, false},
		{"all within scale", []se.SurveyAnswer{{Question: "aware", Value: 2}, {Question: "satisfied", Value: 5}}, false},
		{"lowest value", []se.SurveyAnswer{{Question: "satisfied", Value: 1}}, false},
		{"above the question's scale", []se.SurveyAnswer{{Question: "aware", Value: 3}}, true},
		{"zero", []se.SurveyAnswer{{Question: "satisfied", Value: 0}}, true},
		{"unknown question", []se.SurveyAnswer{{Question: "safe", Value: 1}}, true},
		{"one bad among good", []se.SurveyAnswer{{Question: "aware", Value: 1}, {Question: "satisfied", Value: 6}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := c.CheckAnswers(tt.answers)
			if tt.wantErr != (err != nil) || (err != nil && !errors.Is(err, se.ErrInvalid)) {
				t.Errorf("CheckAnswers: %v, want error %v (ErrInvalid)", err, tt.wantErr)
			}
		})
	}
	t.Run("no questionnaire refuses any answer", func(t *testing.T) {
		t.Parallel()
		empty := se.Campaign{ID: refCampaignID}
		if err := empty.CheckAnswers([]se.SurveyAnswer{{Question: "aware", Value: 1}}); !errors.Is(err, se.ErrInvalid) {
			t.Errorf("CheckAnswers: %v, want ErrInvalid", err)
		}
	})
}
