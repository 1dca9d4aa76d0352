package fieldwork

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/doorbook/doorbook/syncengine"
)

// LoadSeries is LoadUntil as of each of untils (none zero), reading the
// scope's rows once: a campaign's weeks, each as of its end. Only the
// plain visits differ from one moment to the next. They come from t, a
// Timeline of the scope kept by the caller, if it holds the moments; with
// no t, from one read of rows' timeline when rows are TimelineRows and the
// moments lie in the campaign's window; otherwise rows sum them for each
// moment. The rest comes from shared (rows itself if nil: the same scope's
// rows, kept by the caller perhaps), read once and kept (as a Snapshot
// keeps it) while the field rules run over each moment.
func LoadSeries(ctx context.Context, rows, shared Rows, t *Timeline, campaign *syncengine.Campaign, cats []syncengine.Category, untils []time.Time) ([]*Analysis, error) {
	for _, u := range untils {
		if u.IsZero() {
			return nil, errors.New("fieldwork: a series is of moments: a zero until is a report as of now")
		}
	}
	var from, to time.Time
	if campaign != nil {
		from, to = campaign.Window()
	}
	if shared == nil {
		shared = rows
	}
	var s *Snapshot
	if kept, ok := shared.(snapshotRows); ok && kept.s.from.Equal(from) && kept.s.to.Equal(to) {
		// Kept rows are never changed: the moments read them as they are.
		s = kept.s
	} else {
		var err error
		if s, err = readSnapshot(ctx, shared, from, to, nil, false); err != nil {
			return nil, err
		}
	}
	plain := make([][]VisitAggregate, len(untils))
	collect := func(i int, a *VisitAggregate) error {
		plain[i] = append(plain[i], *a)
		return nil
	}
	if tr, ok := rows.(TimelineRows); t == nil && ok && campaign != nil && inWindow(from, to, untils) {
		var err error
		if t, err = ReadTimeline(ctx, tr, from, to, nil); err != nil {
			return nil, err
		}
	}
	var err error
	if t != nil && t.Holds(from, to, untils) {
		err = t.PlainVisitsSeries(ctx, from, to, untils, collect)
	} else {
		for i, u := range untils {
			if err = rows.PlainVisits(ctx, from, to, u, func(a *VisitAggregate) error { return collect(i, a) }); err != nil {
				break
			}
		}
	}
	if err != nil {
		return nil, err
	}
	// The moments are analysed side by side: each reads the kept rows
	// and builds its own analysis.
	out := make([]*Analysis, len(untils))
	errs := make([]error, len(untils))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(untils)) {
		wg.Go(func() {
			for i := range next {
				if errs[i] = ctx.Err(); errs[i] != nil {
					// Kept rows never look at ctx: a series given up
					// stops between its moments.
					continue
				}
				errs[i] = func() (err error) {
					// A panic here is no handler's to recover: it would
					// end the process, not the report.
					defer func() {
						if p := recover(); p != nil {
							err = fmt.Errorf("fieldwork: the series as of %v: %v", untils[i], p)
						}
					}()
					out[i], err = LoadUntil(ctx, seriesRows{snapshotRows{s}, untils[i], plain[i]}, campaign, cats, untils[i])
					return err
				}()
			}
		})
	}
	for i := range untils {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// seriesRows are the kept rows of a series as of one of its moments.
type seriesRows struct {
	snapshotRows
	until time.Time
	plain []VisitAggregate
}

func (r seriesRows) PlainVisits(ctx context.Context, from, to, until time.Time, fn func(*VisitAggregate) error) error {
	if !from.Equal(r.s.from) || !to.Equal(r.s.to) || !until.Equal(r.until) {
		return fmt.Errorf("fieldwork: a series' rows of [%v, %v) until %v read for [%v, %v) until %v", r.s.from, r.s.to, r.until, from, to, until)
	}
	for i := range r.plain {
		a := r.plain[i]
		if err := fn(&a); err != nil {
			return err
		}
	}
	return nil
}
