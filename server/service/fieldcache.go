package service

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/doorbook/doorbook/fieldwork"
	"github.com/doorbook/doorbook/server/store"
)

// The rows of recent reports. A street's report reads some 300,000 rows
// of 50,000 households, about a second of SQLite; an office opening its
// dashboard, then the households behind a figure, then the dashboard
// again, asks for the same rows three times while a few households
// changed. fieldCache keeps each recent scope's rows (fieldwork.Snapshot)
// with the feed position they were read at, and a later report of the
// scope reads again only the households with feed entries since: every
// write of a household's rows touches the feed (see store.Feed), in this
// process or another sharing the database. A report as of a moment of
// its campaign's window, and a campaign's weeks, take the kept rows too,
// and the scope's plain visits one by one (fieldwork.Timeline), kept and
// followed the same way; one as of another moment reads its rows whole, as
// do scopes too large to keep. So that an office seldom waits for a read
// whole, a report has both read again in the background as they near their
// age, and a campaign's plain visits read as soon as its dashboard is
// (Service.warm); a server starting reads the scopes of the campaigns
// running (Service.WarmCampaigns).
const (
	// DefaultReportCache bounds the households whose rows are kept over
	// all scopes (WithReportCache): a street of 50,000 and more, about
	// 53 MiB (and, once a campaign's report of it is read, its plain
	// visits one by one, not counted: some 10 MiB for a campaign of a
	// month).
	DefaultReportCache = 60_000
	// fieldCacheAge is how long rows are kept once read whole; past it a
	// report reads them whole again, whatever the feed says: a bound on
	// what a write missing from the feed could leave wrong (the feed keeps
	// entries for the server's horizon, far longer).
	fieldCacheAge = time.Hour
	// fieldCacheRefresh is how old kept rows (and plain visits) are when a
	// report that takes them has them read whole again in the background
	// (Service.warm): a scope in use is never read whole by a report
	// an office waits for, only by the first after a quiet hour.
	fieldCacheRefresh = 45 * time.Minute
	// fieldCacheChanged is how many households changed since the rows
	// were read are always read again rather than all of them; past it,
	// and past half the scope's, reading them whole costs less.
	fieldCacheChanged = 5_000
	// fieldCachePage is how many changed households one read takes.
	fieldCachePage = 5_000
)

// fieldCache holds the rows of recent report scopes, one entry per scope
// and window.
type fieldCache struct {
	// households bounds the households kept (0 keeps none).
	households int
	mu         sync.Mutex
	entries    map[fieldKey]*fieldEntry
	// cleared counts the clears: rows read before one are not kept.
	cleared uint64
	// filling are the scopes being read whole by fill, each closed when
	// done: a report of one waits for it rather than reading it too.
	filling map[fieldKey]chan struct{}
	// filled, if set, runs as fill begins to read; reading as rows
	// begins, within its report's transaction; clearing when a clear is
	// done (tests).
	filled, reading, clearing func()
	// timelines are the plain visits of kept scopes one by one, for their
	// campaign's weeks: each kept only while its scope's rows are.
	timelines map[fieldKey]*timelineEntry
	// noTimelines is set once the backend is seen not to read plain
	// visits one by one: none is warmed then.
	noTimelines bool
}

// timelineEntry is a kept scope's fieldwork.Timeline, with the feed
// position it was read at and when it was read whole.
type timelineEntry struct {
	t    *fieldwork.Timeline
	head uint64
	read time.Time
}

// era is the count of clears, taken before reading rows to keep.
func (c *fieldCache) era() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cleared
}

type fieldKey struct {
	scope    string
	from, to int64
	// timeline marks the key of a scope's plain visits one by one being
	// filled (filling), apart from its rows.
	timeline bool
}

// keyOf is the key of the rows of grids (sorted) for [from, to).
func keyOf(grids []string, from, to time.Time) fieldKey {
	return fieldKey{scope: scopeKey(grids), from: from.UnixMilli(), to: to.UnixMilli()}
}

type fieldEntry struct {
	snap *fieldwork.Snapshot
	// head is the feed position snap holds the rows of.
	head uint64
	// read is when the rows were read whole; used when a report last
	// took them (the least recently used go first).
	read, used time.Time
}

// rows returns the rows of grids (sorted) for plain visits summed over
// [from, to), as of tx's snapshot of the database: those kept, with the
// households changed since read again, or all of them read whole. era is
// the cache's, taken before tx began: a clear after it (an erasure) keeps
// what tx read from being kept.
func (c *fieldCache) rows(ctx context.Context, tx store.Tx, era uint64, grids []string, from, to, now time.Time) (fieldwork.Rows, error) {
	if c.reading != nil {
		c.reading()
	}
	head, err := tx.Head(ctx)
	if err != nil {
		return nil, err
	}
	key := keyOf(grids, from, to)
	inScope := func(r *fieldwork.HouseholdRow) bool { _, ok := slices.BinarySearch(grids, r.GridID); return ok }
	c.mu.Lock()
	e := c.entries[key]
	c.mu.Unlock()
	var snap *fieldwork.Snapshot
	read := now
	if e != nil && e.head <= head && now.Sub(e.read) < fieldCacheAge {
		most := max(fieldCacheChanged, e.snap.Len()/2)
		changed, err := tx.HouseholdsTouched(ctx, e.head, head, most+1)
		if err != nil {
			return nil, err
		}
		if len(changed) <= most {
			slices.Sort(changed)
			var pages []fieldwork.Rows
			for page := range slices.Chunk(changed, fieldCachePage) {
				pages = append(pages, tx.HouseholdRows(page))
			}
			fresh, err := fieldwork.ReadSnapshot(ctx, fieldwork.Pages(pages...), from, to, inScope)
			if err != nil {
				return nil, err
			}
			if snap, err = e.snap.With(fresh, changed); err != nil {
				return nil, err
			}
			read = e.read
		}
	}
	if snap == nil {
		// A scope too large to keep is read as it is analysed, a row at a
		// time, rather than held whole first.
		n, err := tx.CountHouseholds(ctx, grids, "")
		if err != nil {
			return nil, err
		}
		if n > c.households {
			return tx.FieldRows(grids), nil
		}
		if snap, err = fieldwork.ReadSnapshot(ctx, tx.FieldRows(grids), from, to, nil); err != nil {
			return nil, err
		}
	}
	c.put(key, &fieldEntry{snap: snap, head: head, read: read, used: now}, era)
	return snap.Rows(), nil
}

// fillTerms are how a fill reads: it reads when what is kept was read whole
// longer than fresh ago, in parts read at once (inParts).
type fillTerms struct {
	fresh time.Duration
	parts int
}

var (
	// forReport reads for a report, or a start, which waits for it:
	// what is older than the age, with both cores.
	forReport = fillTerms{fresh: fieldCacheAge, parts: 2}
	// behindReport reads in the background what nears the age, on one
	// core, leaving the other to the reports.
	behindReport = fillTerms{fresh: fieldCacheRefresh, parts: 1}
)

// fill reads the rows of grids (sorted) whole as terms say, unless being
// read, and keeps them: the report's own read (rows) then reads again the
// households changed since.
func (c *fieldCache) fill(ctx context.Context, db store.Backend, grids []string, from, to, now time.Time, terms fillTerms) error {
	key := keyOf(grids, from, to)
	c.mu.Lock()
	e := c.entries[key]
	if len(grids) < 2 || c.households == 0 || e != nil && now.Sub(e.read) < terms.fresh {
		c.mu.Unlock()
		return nil
	}
	// Several reports of a scope none keeps (an office's pages opened at
	// once in a server just started): one reads it, each holding a
	// street's rows while it does, and the others wait for it.
	done, wait := c.startFilling(key)
	era := c.cleared
	c.mu.Unlock()
	if wait != nil {
		return waitFor(ctx, wait)
	}
	defer done()
	if c.filled != nil {
		c.filled()
	}
	snaps, head, err := inParts(ctx, db, grids, terms.parts, func(tx store.Tx, part []string) (*fieldwork.Snapshot, error) {
		n, err := tx.CountHouseholds(ctx, part, "")
		if err != nil || n > c.households {
			return nil, err
		}
		return fieldwork.ReadSnapshot(ctx, tx.FieldRows(part), from, to, nil)
	})
	if err != nil || slices.Contains(snaps, nil) {
		return err // or too large to keep
	}
	whole, err := joined(snaps)
	if err != nil {
		return err
	}
	c.put(key, &fieldEntry{snap: whole, head: head, read: now, used: now}, era)
	return nil
}

// inParts reads grids (sorted) in parts at once, each by its own read
// transaction, and returns what read made of each and the oldest of their
// feed positions: reading again the households changed since makes the
// parts one consistent scope (a household that moved between them among
// those). Two cores read a street in two parts in about half the time one
// does in one.
func inParts[T any](ctx context.Context, db store.Backend, grids []string, parts int, read func(tx store.Tx, part []string) (T, error)) ([]T, uint64, error) {
	parts = max(1, min(parts, len(grids)))
	out := make([]T, parts)
	heads := make([]uint64, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for i := range parts {
		part := grids[i*len(grids)/parts : (i+1)*len(grids)/parts]
		wg.Go(func() {
			errs[i] = db.View(ctx, func(tx store.Tx) error {
				var err error
				if heads[i], err = tx.Head(ctx); err != nil {
					return err
				}
				out[i], err = read(tx, part)
				return err
			})
		})
	}
	wg.Wait()
	return out, slices.Min(heads), errors.Join(errs...)
}

// joined is the parts inParts read, one scope: each part's households
// taken into the first (a Snapshot's or a Timeline's With).
func joined[T interface{ With(T, []string) (T, error) }](parts []T) (T, error) {
	whole := parts[0]
	for _, part := range parts[1:] {
		var err error
		if whole, err = whole.With(part, nil); err != nil {
			return whole, err
		}
	}
	return whole, nil
}

// fillTimeline reads the plain visits of grids (sorted) one by one as
// terms say, when their rows are kept, unless being read, and keeps them:
// what a campaign's weeks read (timeline) first.
func (c *fieldCache) fillTimeline(ctx context.Context, db store.Backend, grids []string, from, to, now time.Time, terms fillTerms) error {
	key := keyOf(grids, from, to)
	c.mu.Lock()
	e, kept, era := c.timelines[key], c.entries[key] != nil, c.cleared
	if len(grids) < 2 || !kept || e != nil && now.Sub(e.read) < terms.fresh {
		c.mu.Unlock()
		return nil
	}
	// A weekly report as of a date reads its weeks and its moment at
	// once: one of them reads the visits, the other waits (as in fill).
	done, wait := c.startFilling(fieldKey{scope: key.scope, from: key.from, to: key.to, timeline: true})
	c.mu.Unlock()
	if wait != nil {
		return waitFor(ctx, wait)
	}
	defer done()
	ts, head, err := inParts(ctx, db, grids, terms.parts, func(tx store.Tx, part []string) (*fieldwork.Timeline, error) {
		rows, ok := tx.FieldRows(part).(fieldwork.TimelineRows)
		if !ok {
			c.mu.Lock()
			c.noTimelines = true
			c.mu.Unlock()
			return nil, nil
		}
		return fieldwork.ReadTimeline(ctx, rows, from, to, nil)
	})
	if err != nil || slices.Contains(ts, nil) {
		return err
	}
	whole, err := joined(ts)
	if err != nil {
		return err
	}
	c.putTimeline(key, &timelineEntry{t: whole, head: head, read: now}, era)
	return nil
}

// startFilling marks key as being filled and returns done, which unmarks
// it, or, if another fill of key is under way, the channel it closes when
// done. c.mu must be held.
func (c *fieldCache) startFilling(key fieldKey) (done func(), wait <-chan struct{}) {
	if w := c.filling[key]; w != nil {
		return nil, w
	}
	ch := make(chan struct{})
	if c.filling == nil {
		c.filling = map[fieldKey]chan struct{}{}
	}
	c.filling[key] = ch
	return func() {
		c.mu.Lock()
		delete(c.filling, key)
		c.mu.Unlock()
		close(ch)
	}, nil
}

// waitFor waits for another fill to close wait, or for ctx to end.
func waitFor(ctx context.Context, wait <-chan struct{}) error {
	select {
	case <-wait:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// toWarm reports what of the scope of grids (sorted) for [from, to) to
// read whole again in the background, if kept and not being read: its rows
// once read fieldCacheRefresh ago, and for a campaign's window its plain
// visits one by one, unless kept and as recent.
func (c *fieldCache) toWarm(grids []string, from, to, now time.Time) (rows, timeline bool) {
	key := keyOf(grids, from, to)
	tkey := key
	tkey.timeline = true
	c.mu.Lock()
	defer c.mu.Unlock()
	e, t := c.entries[key], c.timelines[key]
	if e == nil || len(grids) < 2 {
		return false, false
	}
	rows = now.Sub(e.read) >= fieldCacheRefresh && c.filling[key] == nil
	timeline = !c.noTimelines && from.Before(to) && (t == nil || now.Sub(t.read) >= fieldCacheRefresh) && c.filling[tkey] == nil
	return rows, timeline
}

// keeps reports whether the rows of grids (sorted) for [from, to) are
// kept: a scope small enough to keep, read by a report or fill.
func (c *fieldCache) keeps(grids []string, from, to time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[keyOf(grids, from, to)] != nil
}

// put keeps e, read in era, unless a newer entry of the scope is kept
// (newer) or a clear came after it began to read (what an erasure blanked
// may be in it), then drops the least recently used entries past the
// bound.
func (c *fieldCache) put(key fieldKey, e *fieldEntry, era uint64) {
	if e.snap.Len() > c.households {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if era != c.cleared {
		return
	}
	if c.entries == nil {
		c.entries = map[fieldKey]*fieldEntry{}
	}
	if old := c.entries[key]; old != nil && newer(old.read, old.head, e.read, e.head) {
		return
	}
	c.entries[key] = e
	for k, x := range c.entries {
		if e.used.Sub(x.read) >= fieldCacheAge {
			delete(c.entries, k)
		}
	}
	defer func() {
		for k := range c.timelines {
			if c.entries[k] == nil {
				delete(c.timelines, k)
			}
		}
	}()
	for {
		total := 0
		var oldest *fieldKey
		for k, x := range c.entries {
			total += x.snap.Len()
			if oldest == nil || x.used.Before(c.entries[*oldest].used) {
				oldest = &k
			}
		}
		if total <= c.households {
			return
		}
		delete(c.entries, *oldest)
	}
}

// newer reports whether what was read whole at read and followed to head
// is to be kept over what was at read2 and to head2: the later read whole
// (it lasts longer, and the next report reads again what changed since),
// then the later head.
func newer(read time.Time, head uint64, read2 time.Time, head2 uint64) bool {
	return read.After(read2) || read.Equal(read2) && head > head2
}

// clear drops every scope's rows: an erasure must leave no copy of what
// it blanked.
func (c *fieldCache) clear() {
	c.mu.Lock()
	c.entries = nil
	c.timelines = nil
	c.cleared++
	c.mu.Unlock()
	if c.clearing != nil {
		c.clearing()
	}
}

// timeline returns the plain visits of grids (sorted) over [from, to) one
// by one, as of tx's snapshot of the database: those kept, with the
// households changed since read again, or all of them read whole, and kept
// while the scope's rows are (rows keeps those; era as there). It returns
// nil when tx cannot read them so: the series then sums them for each
// moment.
func (c *fieldCache) timeline(ctx context.Context, tx store.Tx, era uint64, grids []string, from, to, now time.Time) (*fieldwork.Timeline, error) {
	whole, ok := tx.FieldRows(grids).(fieldwork.TimelineRows)
	if !ok {
		return nil, nil
	}
	head, err := tx.Head(ctx)
	if err != nil {
		return nil, err
	}
	key := keyOf(grids, from, to)
	inScope := func(grid string) bool { _, ok := slices.BinarySearch(grids, grid); return ok }
	c.mu.Lock()
	e := c.timelines[key]
	c.mu.Unlock()
	if e != nil && e.head <= head && now.Sub(e.read) < fieldCacheAge {
		most := max(fieldCacheChanged, e.t.Len()/2)
		changed, err := tx.HouseholdsTouched(ctx, e.head, head, most+1)
		if err != nil {
			return nil, err
		}
		if len(changed) <= most {
			slices.Sort(changed)
			t := e.t
			for page := range slices.Chunk(changed, fieldCachePage) {
				rows, ok := tx.HouseholdRows(page).(fieldwork.TimelineRows)
				if !ok {
					return nil, nil
				}
				fresh, err := fieldwork.ReadTimeline(ctx, rows, from, to, inScope)
				if err != nil {
					return nil, err
				}
				if t, err = t.With(fresh, page); err != nil {
					return nil, err
				}
			}
			c.putTimeline(key, &timelineEntry{t: t, head: head, read: e.read}, era)
			return t, nil
		}
	}
	t, err := fieldwork.ReadTimeline(ctx, whole, from, to, nil)
	if err != nil {
		return nil, err
	}
	c.putTimeline(key, &timelineEntry{t: t, head: head, read: now}, era)
	return t, nil
}

// putTimeline keeps e, read in era, if the scope's rows are kept, no clear
// came after it began to read, and no newer timeline of the scope is.
func (c *fieldCache) putTimeline(key fieldKey, e *timelineEntry, era uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if era != c.cleared || c.entries[key] == nil {
		return
	}
	if old := c.timelines[key]; old != nil && newer(old.read, old.head, e.read, e.head) {
		return
	}
	if c.timelines == nil {
		c.timelines = map[fieldKey]*timelineEntry{}
	}
	c.timelines[key] = e
}
