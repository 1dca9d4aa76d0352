package fieldwork_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/fieldwork/fieldworktest"
	se "github.com/doorbook/doorbook/syncengine"
)

// memRows is fieldwork.Rows over a bundle held in memory: the reference a
// database's implementation is held to, as plain as can be.
type memRows struct {
	b     *se.Bundle
	grids []string
}

var _ fieldwork.Rows = (*memRows)(nil)

func (m *memRows) inScope(id string) bool {
	for _, h := range m.b.Households {
		if h.ID == id {
			return !h.Deleted.Value && slices.Contains(m.grids, h.GridID.Value)
		}
	}
	return false
}

func (m *memRows) Households(ctx context.Context, fn func(*fieldwork.HouseholdRow) error) error {
	for _, h := range m.b.Households {
		if !m.inScope(h.ID) {
			continue
		}
		r := fieldwork.HouseholdRow{ID: h.ID, GridID: h.GridID.Value, HeadName: h.HeadName.Value, Address: h.Address.Value, MemberCount: h.MemberCount.Value}
		for _, p := range m.b.Persons {
			if p.HouseholdID != h.ID || p.Deleted.Value {
				continue
			}
			switch p.Residence.Value {
			case se.ResidenceMovedAway:
				r.MovedAway++
			case se.ResidenceMigrant:
				r.Migrants++
				r.Persons++
			default:
				r.Persons++
			}
		}
		for _, t := range m.b.Tags {
			if t.HouseholdID == h.ID && !t.Removed && !slices.Contains(r.Categories, t.Category) {
				r.Categories = append(r.Categories, t.Category)
			}
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}

func (m *memRows) amendments(visitID string) []se.Amendment {
	var out []se.Amendment
	for _, a := range m.b.Amendments {
		if a.VisitID == visitID {
			out = append(out, a)
		}
	}
	return out
}

func (m *memRows) Amendments(ctx context.Context) (map[string][]se.Amendment, error) {
	out := map[string][]se.Amendment{}
	for _, v := range m.b.Visits {
		if slices.ContainsFunc(v.HouseholdIDs, m.inScope) {
			if as := m.amendments(v.ID); len(as) > 0 {
				out[v.ID] = as
			}
		}
	}
	return out, nil
}

// plain reports whether PlainVisits sums v up.
func (m *memRows) plain(v *se.Visit) bool {
	return len(m.amendments(v.ID)) == 0 && v.RevisitDue.IsZero() && v.CampaignID == "" &&
		len(v.Materials)+len(v.Findings)+len(v.RevisitReasons)+len(v.Answers) == 0
}

func (m *memRows) PlainVisits(ctx context.Context, from, to, until time.Time, fn func(*fieldwork.VisitAggregate) error) error {
	sums := map[[2]string]*fieldwork.VisitAggregate{}
	var keys [][2]string
	for i := range m.b.Visits {
		v := &m.b.Visits[i]
		if !m.plain(v) || !until.IsZero() && !v.VisitedAt.Before(until) {
			continue
		}
		for _, id := range v.HouseholdIDs {
			if !m.inScope(id) {
				continue
			}
			k := [2]string{id, v.VisitorID}
			a := sums[k]
			if a == nil {
				a = &fieldwork.VisitAggregate{HouseholdID: id, VisitorID: v.VisitorID}
				sums[k] = a
				keys = append(keys, k)
			}
			if v.VisitedAt.After(a.Last) {
				a.Last = v.VisitedAt
			}
			if !v.VisitedAt.Before(from) && v.VisitedAt.Before(to) {
				a.InWindow++
			}
		}
	}
	for _, k := range keys {
		if err := fn(sums[k]); err != nil {
			return err
		}
	}
	return nil
}

func (m *memRows) SpecialVisits(ctx context.Context, fn func(*fieldwork.VisitRow) error) error {
	for i := range m.b.Visits {
		v := &m.b.Visits[i]
		if m.plain(v) {
			continue
		}
		for ord, id := range v.HouseholdIDs {
			if !m.inScope(id) {
				continue
			}
			r := fieldwork.VisitRow{HouseholdID: id, Ord: ord, Visit: *v}
			r.Visit.HouseholdIDs = nil
			for _, f := range v.Findings {
				if f.Kind.Tracked() {
					r.Tracked++
				}
			}
			if err := fn(&r); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *memRows) Visits(ctx context.Context, ids []string) ([]se.Visit, error) {
	var out []se.Visit
	for _, v := range m.b.Visits {
		if slices.Contains(ids, v.ID) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(x, y se.Visit) int { return strings.Compare(x.ID, y.ID) })
	return out, nil
}

// TestLoad runs the conformance suite of fieldwork.Rows over memRows.
func TestLoad(t *testing.T) {
	t.Parallel()
	fieldworktest.Run(t, func(t *testing.T, b *se.Bundle, grids []string) fieldwork.Rows {
		return &memRows{b: b, grids: grids}
	})
}

func TestAddVisitsMatchesAddVisit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		visits []se.VisitView // plain visits, all to hh1
	}{
		{"none", nil},
		{"one in the window", []se.VisitView{visit(1, hh1, apr(2, 10))}},
		{"two in the window by two visitors", []se.VisitView{visit(1, hh1, apr(2, 10)), visit(2, hh1, apr(9, 10), by(workerB))}},
		{"one before, one in", []se.VisitView{visit(1, hh1, mar(2, 10)), visit(2, hh1, apr(9, 10))}},
		{"only before the window", []se.VisitView{visit(1, hh1, mar(2, 10)), visit(2, hh1, mar(9, 10))}},
		{"at both edges", []se.VisitView{visit(1, hh1, campStart), visit(2, hh1, campEnd)}},
	}
	for _, tt := range tests {
		for _, withCampaign := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/campaign=%v", tt.name, withCampaign), func(t *testing.T) {
				t.Parallel()
				var c *se.Campaign
				if withCampaign {
					c = campaign(t, nil)
				}
				one := fieldwork.NewBuilder(c, categories())
				sum := fieldwork.NewBuilder(c, categories())
				for _, b := range []*fieldwork.Builder{one, sum} {
					b.AddHousehold(fieldwork.Household{ID: hh1, GridID: grid1}, []string{"petitioner"})
				}
				type agg struct {
					last     time.Time
					inWindow int
				}
				sums := map[string]*agg{}
				for i := range tt.visits {
					v := tt.visits[i]
					one.AddVisit(hh1, true, &v)
					s := sums[v.VisitorID]
					if s == nil {
						s = &agg{}
						sums[v.VisitorID] = s
					}
					if v.VisitedAt.After(s.last) {
						s.last = v.VisitedAt
					}
					if !v.VisitedAt.Before(campStart) && v.VisitedAt.Before(campEnd) {
						s.inWindow++
					}
				}
				for who, s := range sums {
					sum.AddVisits(hh1, who, s.last, s.inWindow)
				}
				sum.AddVisits(hhOut, workerA, apr(2, 10), 1) // outside the scope: ignored
				a, b := one.Finish(), sum.Finish()
				ha, hb := household(t, a, hh1), household(t, b, hh1)
				if !ha.LastVisit.Equal(hb.LastVisit) || ha.CampaignVisits != hb.CampaignVisits {
					t.Errorf("summed: last %s, %d in campaign; one by one: last %s, %d", hb.LastVisit, hb.CampaignVisits, ha.LastVisit, ha.CampaignVisits)
				}
				if !slices.Equal(a.Visitors(), b.Visitors()) {
					t.Errorf("summed visitors %v, one by one %v", b.Visitors(), a.Visitors())
				}
				for _, who := range []string{workerA, workerB} {
					if a.VisitedBy(who) != b.VisitedBy(who) {
						t.Errorf("VisitedBy(%s): summed %d, one by one %d", who, b.VisitedBy(who), a.VisitedBy(who))
					}
				}
			})
		}
	}
}

// TestSnapshot runs the conformance suite over a snapshot of memRows.
func TestSnapshot(t *testing.T) {
	t.Parallel()
	fieldworktest.RunNow(t, func(t *testing.T, b *se.Bundle, grids []string, from, to time.Time) fieldwork.Rows {
		s, err := fieldwork.ReadSnapshot(t.Context(), &memRows{b: b, grids: grids}, from, to, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s.Rows()
	})
}

// TestSnapshotWithKeepsOrder: a snapshot taking the rows of some of its
// households again walks them by id, as one read whole does, so that an
// analysis finds them sorted.
func TestSnapshotWithKeepsOrder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := &se.Bundle{}
	var ids []string
	for i := range 40 {
		id := fmt.Sprintf("h%02d", (i*17)%40) // not in order
		ids = append(ids, id)
		b.Households = append(b.Households, se.Household{ID: id, GridID: se.NewRegister(fmt.Sprint("g", i%2), se.Clock{HLC: 1})})
	}
	from, to := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	read := func(grids ...string) *fieldwork.Snapshot {
		s, err := fieldwork.ReadSnapshot(ctx, &memRows{b: b, grids: grids}, from, to, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	walk := func(s *fieldwork.Snapshot) []string {
		var out []string
		err := s.Rows().Households(ctx, func(r *fieldwork.HouseholdRow) error {
			out = append(out, r.ID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// The halves of a scope read apart, then one of them again with
	// households gone.
	s, err := read("g0").With(read("g1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(ids))
	if got := walk(s); !slices.Equal(got, want) {
		t.Fatalf("halves joined walk %v, want %v", got, want)
	}
	b.Households = b.Households[:30]
	s, err = s.With(read("g0", "g1"), ids[20:])
	if err != nil {
		t.Fatal(err)
	}
	want = slices.DeleteFunc(want, func(id string) bool { return slices.Contains(ids[30:], id) })
	if got := walk(s); !slices.Equal(got, want) {
		t.Fatalf("after a change walk %v, want %v", got, want)
	}
}
