package sqlite

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

func requireWorker(p store.Principal) error {
	if p.Kind != store.KindWorker {
		return fmt.Errorf("%w: sync is for workers' devices", syncengine.ErrOutOfScope)
	}
	return nil
}

// scope reads a worker's grids and their names.
func scope(ctx context.Context, q statedb.Querier, workerID string) (store.Scope, error) {
	w, err := getWorker(ctx, q, workerID)
	if err != nil {
		return store.Scope{}, err
	}
	sc := store.Scope{Worker: w}
	for _, g := range w.GridIDs {
		n, err := getNode(ctx, q, g)
		if err != nil {
			return sc, err
		}
		sc.Grids = append(sc.Grids, n)
	}
	return sc, nil
}

// Scope returns a worker's grids.
func (s *Store) Scope(ctx context.Context, p store.Principal) (store.Scope, error) {
	if err := requireWorker(p); err != nil {
		return store.Scope{}, err
	}
	return scope(ctx, s.db.R, p.ID)
}

// pushScope decides which households a push may write. A household is
// writable if it is in one of the worker's grids now, or if it was in the
// worker's scope at some moment inside the device's grace: after the feed
// position the device has shown it applied (see store.Store.Push), and
// within the scope grace on the server's clock. Such writes were made
// while, as far as the device knew, the household was theirs, and must not
// be lost (DESIGN.md, partial replication); beyond that, they would be a
// standing permission. (A position merely sent is not enough: a phone that
// finds a pending change to a household in a pull's evictions pushes it
// before it applies the pull, and that push must be taken.)
type pushScope struct {
	tx  *sqlitex.Tx
	now map[string]bool // the worker's grids now
	// since: the feed position after which a write is judged: what the
	// device applied, or the last position committed before the grace
	// began, whichever is later.
	since uint64
	// recent: the grids the worker has held at some moment after since
	// (where a device may still register a household).
	recent map[string]bool
	// events: the worker's grid changes after sinceVisit, oldest first.
	events    []scopeEvent
	decisions map[string]bool
	// erased: rows this push blanked on arrival, being older than an
	// erasure of their household (see erasedBefore).
	erased erasureMarks
	// anyErased: the server has erased some household (else nothing
	// pushed needs checking against erasures).
	anyErased bool
}

type scopeEvent struct {
	seq   uint64
	grid  string
	added bool
}

func (s *Store) newPushScope(ctx context.Context, tx *sqlitex.Tx, p store.Principal, cursor uint64) (*pushScope, error) {
	ps := &pushScope{tx: tx, now: map[string]bool{}, recent: map[string]bool{}, decisions: map[string]bool{}}
	var known, expired uint64
	if err := tx.QueryRowContext(ctx, `SELECT known_cursor FROM credentials WHERE id = ?`, p.CredentialID).Scan(&known); err != nil {
		return nil, fmt.Errorf("read device: %w", err)
	}
	if cursor != 0 {
		top, err := head(ctx, tx)
		if err != nil {
			return nil, err
		}
		applied, err := cursorSeq(ctx, tx, cursor, top)
		if err != nil {
			return nil, err
		}
		known = max(known, applied)
	}
	cutoff := s.now().Add(-s.grace).UnixMilli()
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(last_seq), 0) FROM commits WHERE at < ?`, cutoff).Scan(&expired); err != nil {
		return nil, fmt.Errorf("read grace: %w", err)
	}
	ps.since = max(known, expired)
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM erasures WHERE kind = ?)`, kindHousehold).Scan(&ps.anyErased); err != nil {
		return nil, fmt.Errorf("read erasures: %w", err)
	}
	grids, err := queryStrings(ctx, tx, `SELECT grid_id FROM worker_grids WHERE worker_id = ?`, p.ID)
	if err != nil {
		return nil, err
	}
	for _, g := range grids {
		ps.now[g], ps.recent[g] = true, true
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, grid_id, added FROM scope_events WHERE worker_id = ? AND seq > ? ORDER BY seq`, p.ID, ps.since)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var e scopeEvent
		if err := rows.Scan(&e.seq, &e.grid, &e.added); err != nil {
			return nil, err
		}
		ps.events = append(ps.events, e)
		ps.recent[e.grid] = true
	}
	return ps, rows.Err()
}

// judge fails unless the push may write household h, read by the caller.
func (ps *pushScope) judge(ctx context.Context, h syncengine.Household) error {
	allowed, seen := ps.decisions[h.ID]
	if !seen {
		var err error
		if allowed, err = ps.allowed(ctx, h); err != nil {
			return err
		}
		ps.decisions[h.ID] = allowed
	}
	if !allowed {
		return notYours(h.ID)
	}
	return nil
}

// notYours refuses a write to a household outside the worker's grids, or
// to one that does not exist: the two get the same answer, so that a
// worker learns nothing of which ids exist beyond their scope.
func notYours(household string) error {
	return fmt.Errorf("%w: household %s is not in your grids", syncengine.ErrOutOfScope, household)
}

// check is household for callers that need only the verdict: a push of a
// day's visits names the same households again and again, and a household
// judged once in this push is not read again.
func (ps *pushScope) check(ctx context.Context, id string) error {
	if allowed, seen := ps.decisions[id]; seen {
		if !allowed {
			return notYours(id)
		}
		return nil
	}
	h, ok, err := statedb.GetHousehold(ctx, ps.tx, id)
	if err != nil {
		return err
	}
	if !ok {
		return notYours(id)
	}
	return ps.judge(ctx, h)
}

// prefetch judges at once every household that the changes not yet applied
// name and that exists. The verdicts are the ones check would reach one by
// one: within a push a household's grid cannot change (a device never moves
// one), and those registered by the push itself are judged as they come.
func (ps *pushScope) prefetch(ctx context.Context, changes []syncengine.Change, applied map[string]appliedChange) error {
	var ids []string
	for i := range changes {
		c := &changes[i]
		if _, ok := applied[c.ID]; ok {
			continue
		}
		switch {
		case c.Person != nil:
			ids = append(ids, c.Person.HouseholdID)
		case c.Tag != nil:
			ids = append(ids, c.Tag.HouseholdID)
		case c.Visit != nil:
			ids = append(ids, c.Visit.HouseholdIDs...)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	ids = slices.DeleteFunc(ids, func(id string) bool {
		_, seen := ps.decisions[id]
		return seen
	})
	hs, err := statedb.Households(ctx, ps.tx, ids)
	if err != nil {
		return err
	}
	for _, h := range hs {
		allowed, err := ps.allowed(ctx, h)
		if err != nil {
			return err
		}
		ps.decisions[h.ID] = allowed
	}
	return nil
}

// appliedChange is what the server recorded of a change id it applied.
type appliedChange struct {
	credential string
	digest     string
}

// appliedChanges reads which of the changes' ids were applied before, by
// which device and with which content.
func appliedChanges(ctx context.Context, tx *sqlitex.Tx, changes []syncengine.Change) (map[string]appliedChange, error) {
	ids := make([]string, len(changes))
	for i := range changes {
		ids[i] = changes[i].ID
	}
	applied := make(map[string]appliedChange, len(changes))
	for start := 0; start < len(ids); start += maxInList {
		part := ids[start:min(start+maxInList, len(ids))]
		rows, err := tx.QueryContext(ctx, `SELECT change_id, credential_id, COALESCE(digest, '') FROM applied_changes WHERE change_id IN (`+sqlitex.InPlaceholders(len(part))+`)`, anys(part)...)
		if err != nil {
			return nil, fmt.Errorf("read applied changes: %w", err)
		}
		for rows.Next() {
			var id string
			var a appliedChange
			var d []byte
			if err := rows.Scan(&id, &a.credential, &d); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read applied changes: %w", err)
			}
			a.digest = string(d)
			applied[id] = a
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("read applied changes: %w", err)
		}
	}
	return applied, nil
}

// resent reports whether c is a change applied before (a resend, counted as
// a duplicate), or fails if its id was applied before as another change.
func (a appliedChange) resent(p store.Principal, c *syncengine.Change) error {
	if a.credential != p.CredentialID {
		return fmt.Errorf("%w: change id %s was pushed before by another device: a change id belongs to the device that made it", syncengine.ErrAlreadyExists, c.ID)
	}
	if a.digest != "" && c.Digest != "" && a.digest != c.Digest {
		return fmt.Errorf("%w: change id %s was pushed before with other content: a new change needs a new id", syncengine.ErrAlreadyExists, c.ID)
	}
	return nil
}

// maxInList bounds the arguments of one IN (...) list, well under SQLite's limit.
const maxInList = 500

// allowed replays, from the start of the device's grace to now, the
// worker's grid changes and the household's moves, and reports whether the
// household was in one of the worker's grids at any moment of it.
func (ps *pushScope) allowed(ctx context.Context, h syncengine.Household) (bool, error) {
	if ps.now[h.GridID.Value] {
		return true, nil
	}
	since := ps.since
	rows, err := ps.tx.QueryContext(ctx, `SELECT seq, from_grid, to_grid FROM household_moves WHERE household_id = ? AND seq > ? ORDER BY seq`, h.ID, since)
	if err != nil {
		return false, err
	}
	type move struct {
		seq      uint64
		from, to string
	}
	var moves []move
	for rows.Next() {
		var m move
		if err := rows.Scan(&m.seq, &m.from, &m.to); err != nil {
			rows.Close()
			return false, err
		}
		moves = append(moves, m)
	}
	if err := rows.Close(); err != nil {
		return false, err
	}
	// Wind both back to the start of the grace...
	events := ps.events
	for len(events) > 0 && events[0].seq <= since {
		events = events[1:]
	}
	grids := maps.Clone(ps.now)
	for i := len(events) - 1; i >= 0; i-- {
		grids[events[i].grid] = !events[i].added
	}
	grid := h.GridID.Value
	if len(moves) > 0 {
		grid = moves[0].from
	}
	// ...then forward, event by event.
	if grids[grid] {
		return true, nil
	}
	for i, j := 0, 0; i < len(events) || j < len(moves); {
		if j >= len(moves) || (i < len(events) && events[i].seq < moves[j].seq) {
			grids[events[i].grid] = events[i].added
			i++
		} else {
			grid = moves[j].to
			j++
		}
		if grids[grid] {
			return true, nil
		}
	}
	return false, nil
}

// Push applies a device's changes in one transaction.
func (s *Store) Push(ctx context.Context, p store.Principal, cursor uint64, changes []syncengine.Change) (store.PushResult, error) {
	var res store.PushResult
	if err := requireWorker(p); err != nil {
		return res, err
	}
	err := s.db.Write(ctx, func(tx *sqlitex.Tx) error {
		res = store.PushResult{}
		ps, err := s.newPushScope(ctx, tx, p, cursor)
		if err != nil {
			return err
		}
		seq, err := s.newSeqAlloc(ctx, tx)
		if err != nil {
			return err
		}
		// Statements, not rows, are what a push pays for most: the change
		// ids already applied and the households named are read for the
		// whole push at once rather than once per change.
		applied, err := appliedChanges(ctx, tx, changes)
		if err != nil {
			return err
		}
		if err := ps.prefetch(ctx, changes, applied); err != nil {
			return err
		}
		for i := range changes {
			c := &changes[i]
			if before, ok := applied[c.ID]; ok {
				if err := before.resent(p, c); err != nil {
					return &store.ChangeError{ChangeID: c.ID, Err: err}
				}
				res.Duplicates++
				continue
			}
			applied[c.ID] = appliedChange{credential: p.CredentialID, digest: c.Digest} // the same change twice in one push
			if err := applyChange(ctx, tx, ps, seq, p, c); err != nil {
				return &store.ChangeError{ChangeID: c.ID, Err: fmt.Errorf("%s: %w", c.Kind(), err)}
			}
			var d any
			if c.Digest != "" {
				d = []byte(c.Digest)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO applied_changes (change_id, credential_id, seq, digest) VALUES (?, ?, ?, ?)`, c.ID, p.CredentialID, seq.last, d); err != nil {
				return err
			}
			res.Applied++
		}
		ps.erased.at = s.now()
		if err := ps.erased.save(ctx, tx, seq); err != nil {
			return err
		}
		return seq.save(ctx)
	})
	if err != nil {
		return store.PushResult{}, fmt.Errorf("push: %w", err)
	}
	return res, nil
}

func applyChange(ctx context.Context, tx *sqlitex.Tx, ps *pushScope, seq *seqAlloc, p store.Principal, c *syncengine.Change) error {
	switch {
	case c.Household != nil:
		return applyHousehold(ctx, tx, ps, seq, c.Household)
	case c.Person != nil:
		if err := ps.check(ctx, c.Person.HouseholdID); err != nil {
			return err
		}
		cur, ok, err := statedb.GetPerson(ctx, tx, c.Person.ID)
		if err != nil {
			return err
		}
		if ok && cur.HouseholdID != c.Person.HouseholdID {
			// Another household's person: say which only if it is the
			// worker's own.
			if ps.check(ctx, cur.HouseholdID) != nil {
				return fmt.Errorf("%w: person %s is not in your grids", syncengine.ErrOutOfScope, c.Person.ID)
			}
			return fmt.Errorf("%w: person %s belongs to household %s", syncengine.ErrInvalid, c.Person.ID, cur.HouseholdID)
		}
		if !ok {
			if gone, err := wasCollected(ctx, tx, kindPerson, c.Person.ID); err != nil {
				return err
			} else if gone {
				return fmt.Errorf("%w: person %s was deleted", syncengine.ErrNotFound, c.Person.ID)
			}
			if err := checkCount(ctx, tx, `SELECT COUNT(*) FROM persons WHERE household_id = ?`, "persons of household "+c.Person.HouseholdID,
				syncengine.MaxPersonsPerHousehold, c.Person.HouseholdID); err != nil {
				return err
			}
		}
		delta := c.Person
		if !ok {
			// A resident added offline before their household was erased
			// arrives blank.
			h, err := ps.erasedBefore(ctx, []string{c.Person.HouseholdID})
			if err != nil {
				return err
			}
			if h > 0 && c.Person.MaxClock().HLC < h {
				blank := syncengine.NewRegister("", syncengine.Clock{HLC: h})
				delta = &syncengine.Person{ID: c.Person.ID, HouseholdID: c.Person.HouseholdID, Name: blank, IDNumber: blank, Gender: blank,
					BirthDate: blank, Phone: blank, Relation: blank, Notes: blank, Deleted: c.Person.Deleted}
				ps.erased.add(kindPerson, c.Person.ID, 0)
			}
		}
		_, _, changed, err := statedb.MergePersonOnto(ctx, tx, cur, ok, delta)
		if err != nil || !changed {
			return err
		}
		return seq.touch(ctx, kindPerson, c.Person.ID, c.Person.HouseholdID)
	case c.Tag != nil:
		if err := ps.check(ctx, c.Tag.HouseholdID); err != nil {
			return err
		}
		cur, err := statedb.Tags(ctx, tx, []string{c.Tag.AddID})
		if err != nil {
			return err
		}
		if len(cur) == 0 {
			if gone, err := wasCollected(ctx, tx, kindTag, c.Tag.AddID); err != nil {
				return err
			} else if gone {
				return fmt.Errorf("%w: tag %s was removed", syncengine.ErrNotFound, c.Tag.AddID)
			}
			if err := checkNewTag(ctx, tx, c.Tag); err != nil {
				return err
			}
		}
		if len(cur) > 0 && (cur[0].HouseholdID != c.Tag.HouseholdID || cur[0].Category != c.Tag.Category) {
			if cur[0].HouseholdID != c.Tag.HouseholdID && ps.check(ctx, cur[0].HouseholdID) != nil {
				return fmt.Errorf("%w: tag %s is not in your grids", syncengine.ErrOutOfScope, c.Tag.AddID)
			}
			return fmt.Errorf("%w: tag %s is another household's or category's", syncengine.ErrInvalid, c.Tag.AddID)
		}
		_, changed, err := statedb.MergeTag(ctx, tx, c.Tag)
		if err != nil || !changed {
			return err
		}
		return seq.touch(ctx, kindTag, c.Tag.AddID, c.Tag.HouseholdID)
	case c.Visit != nil:
		v := c.Visit
		if v.VisitorID != p.ID {
			return fmt.Errorf("%w: a device records visits of its own worker only", syncengine.ErrOutOfScope)
		}
		for _, hh := range v.HouseholdIDs {
			if err := ps.check(ctx, hh); err != nil {
				return err
			}
		}
		if v.CampaignID != "" {
			camp, ok, err := statedb.GetCampaign(ctx, tx, v.CampaignID)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w: campaign %s", syncengine.ErrNotFound, v.CampaignID)
			}
			if err := camp.CheckAnswers(v.Answers); err != nil {
				return err
			}
		}
		// A visit made before its household was erased, pushed after,
		// keeps its facts and loses its notes, as the erased ones did; its
		// author's phone gets the blank copy back (origin "").
		origin := p.CredentialID
		if h, err := ps.erasedBefore(ctx, v.HouseholdIDs); err != nil {
			return err
		} else if h > 0 && v.Clock.HLC < h {
			v.Notes = ""
			for i := range v.Findings {
				v.Findings[i].Note = ""
			}
			origin = ""
			ps.erased.add(kindVisit, v.ID, 0)
		}
		inserted, err := statedb.InsertVisit(ctx, tx, v)
		if err != nil || !inserted {
			return err
		}
		// Counted once inserted, so that the visits of this push count too.
		// Most households hold fewer visits in all than a day may: counting
		// those (from the index alone) spares reading each visit's date.
		start, end := syncengine.VisitDay(v.VisitedAt)
		for _, hh := range v.HouseholdIDs {
			var all int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM visit_households WHERE household_id = ?`, hh).Scan(&all); err != nil {
				return err
			}
			if all <= syncengine.MaxVisitsPerHouseholdPerDay {
				continue
			}
			if err := checkCount(ctx, tx, `SELECT COUNT(*) FROM visit_households vh JOIN visits v ON v.id = vh.visit_id
				WHERE vh.household_id = ? AND v.visited_at >= ? AND v.visited_at < ?`,
				"visits to household "+hh+" on "+start.Format(time.DateOnly), -syncengine.MaxVisitsPerHouseholdPerDay,
				hh, start.UnixMilli(), end.UnixMilli()); err != nil {
				return err
			}
		}
		for _, hh := range v.HouseholdIDs {
			if err := seq.touchFrom(ctx, kindVisit, v.ID, hh, origin); err != nil {
				return err
			}
		}
		return nil
	case c.Amendment != nil:
		a := c.Amendment
		if a.AuthorID != p.ID {
			return fmt.Errorf("%w: a device amends as its own worker only", syncengine.ErrOutOfScope)
		}
		vs, err := statedb.Visits(ctx, tx, []string{a.VisitID})
		if err != nil {
			return err
		}
		// An unknown visit and another grid's get the same answer.
		outside := fmt.Errorf("%w: visit %s is not in your grids", syncengine.ErrOutOfScope, a.VisitID)
		if len(vs) == 0 {
			return outside
		}
		// The author sees the visit through any of its households; a group
		// visit may cover some that are now in other workers' grids.
		var scopeErr error
		for _, hh := range vs[0].HouseholdIDs {
			if scopeErr = ps.check(ctx, hh); scopeErr == nil {
				break
			}
		}
		if scopeErr != nil {
			return outside
		}
		if err := a.CheckItemUpdate(&vs[0]); err != nil {
			return err
		}
		if err := a.CheckAuthority(&vs[0], false); err != nil {
			return err
		}
		origin := p.CredentialID
		if h, err := ps.erasedBefore(ctx, vs[0].HouseholdIDs); err != nil {
			return err
		} else if h > 0 && a.Clock.HLC < h {
			a.Reason = "(erased)"
			if a.Notes != nil {
				a.Notes = new(string)
			}
			origin = ""
			ps.erased.add(kindAmendment, a.ID, 0)
		}
		inserted, err := statedb.InsertAmendment(ctx, tx, a)
		if err != nil || !inserted {
			return err
		}
		for _, hh := range vs[0].HouseholdIDs {
			if err := seq.touchFrom(ctx, kindAmendment, a.ID, hh, origin); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%w: empty change", syncengine.ErrInvalid)
}

func applyHousehold(ctx context.Context, tx *sqlitex.Tx, ps *pushScope, seq *seqAlloc, delta *syncengine.Household) error {
	cur, exists, err := statedb.GetHousehold(ctx, tx, delta.ID)
	if err != nil {
		return err
	}
	if !exists {
		// A registration: it must place the household in one of the
		// worker's grids, as the device knew them.
		if !delta.GridID.Set() || !ps.recent[delta.GridID.Value] {
			return notYours(delta.ID)
		}
	} else if err := ps.judge(ctx, cur); err != nil {
		return err
	}
	merged, before, changed, err := statedb.MergeHouseholdOnto(ctx, tx, cur, exists, delta)
	if err != nil || !changed {
		return err
	}
	if before != nil && before.GridID.Value != merged.GridID.Value {
		return fmt.Errorf("%w: only an admin moves a household to another grid", syncengine.ErrOutOfScope)
	}
	return seq.touch(ctx, kindHousehold, delta.ID, delta.ID)
}

// Pull returns the feed after cursor within p's scope.
func (s *Store) Pull(ctx context.Context, p store.Principal, cursor uint64, limit int) (*store.PullBatch, error) {
	if err := requireWorker(p); err != nil {
		return nil, err
	}
	limit = max(1, min(limit, store.MaxPullLimit))
	b := &store.PullBatch{}
	var from uint64 // the feed position of cursor
	err := s.db.Read(ctx, func(tx *sqlitex.Tx) error {
		top, err := head(ctx, tx)
		if err != nil {
			return err
		}
		if from, err = cursorSeq(ctx, tx, cursor, top); err != nil {
			return err
		}
		if b.Scope, err = scope(ctx, tx, p.ID); err != nil {
			return err
		}
		mine := map[string]bool{}
		for _, g := range b.Scope.Worker.GridIDs {
			mine[g] = true
		}
		// The device's own visits and amendments are on it already: a pull
		// that sent them back would double the work of every sync.
		entries, err := feedAfter(ctx, tx, b.Scope.Worker.GridIDs, p.CredentialID, from, top, limit)
		if err != nil {
			return err
		}
		upto := top
		if len(entries) == limit {
			upto, b.More = entries[len(entries)-1].seq, true
		}
		if b.Cursor, err = cursorAt(ctx, tx, upto); err != nil {
			return err
		}
		bundleIDs, err := s.scopeChanges(ctx, tx, b, p.ID, mine, from, upto, top)
		if err != nil {
			return err
		}
		since := from
		if len(b.AddedGrids) > 0 {
			since = 0 // campaigns of the new grids' nodes may be older
		}
		if b.Reference, err = reference(ctx, tx, b.Scope.Worker.GridIDs, since); err != nil {
			return err
		}
		return loadEntries(ctx, tx, b, entries, bundleIDs)
	})
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	// The device shows it applied everything up to cursor: its grace to
	// write what left its scope ends there (see pushScope). Best effort: a
	// failure here only widens the grace, which the server's clock still
	// bounds.
	if from > 0 {
		_ = s.db.Write(ctx, func(tx *sqlitex.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE credentials SET known_cursor = ? WHERE id = ? AND known_cursor < ?`, from, p.CredentialID, from)
			return err
		})
	}
	return b, nil
}

type feedEntry struct {
	seq       uint64
	kind      int
	entityID  string
	household string
	origin    string
}

// feedAfter reads up to limit feed entries in (cursor, top] of households
// now in grids, leaving out those of rows the device origin pushed itself.
//
// Two plans answer it, and SQLite cannot tell which is cheaper (it does not
// know how much of the feed lies past the cursor): walk the feed range and
// look up each entry's household, stopping at limit entries; or seek each
// household of the scope for its entries past the cursor, then sort them
// all. The walk costs a lookup per entry of the range it passes, the seeks
// one per household plus every entry of the scope in the range, for each
// batch. A phone that syncs often, or one catching up on its own big push,
// has a range far longer than its scope is wide and wants the walk; one
// grid in a busy street, back after a week, wants the seeks.
func feedAfter(ctx context.Context, q statedb.Querier, grids []string, origin string, cursor, top uint64, limit int) ([]feedEntry, error) {
	if len(grids) == 0 || top <= cursor {
		return nil, nil
	}
	feedFirst := top-cursor <= feedWalkAlways
	if !feedFirst {
		var households uint64
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM households WHERE grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`)`, anys(grids)...).Scan(&households); err != nil {
			return nil, fmt.Errorf("read feed: %w", err)
		}
		feedFirst = top-cursor < feedWalkPerHousehold*households
	}
	return readFeed(ctx, q, grids, origin, cursor, top, limit, feedFirst)
}

// feedWalkAlways is the feed range below which walking it is cheap whatever
// the scope, and counting the scope's households would cost more than it saves.
const feedWalkAlways = 64

// feedWalkPerHousehold: the feed is walked while its range is shorter than
// this many entries per household of the scope. At worst (none of them in
// the scope) the walk then costs this many lookups per household where the
// seeks would cost one; at best it stops after limit entries where the
// seeks would sort every entry of the scope, batch after batch.
const feedWalkPerHousehold = 16

// readFeed is feedAfter by the plan given.
func readFeed(ctx context.Context, q statedb.Querier, grids []string, origin string, cursor, top uint64, limit int, feedFirst bool) ([]feedEntry, error) {
	// SQLite's own choice is households first. A CROSS JOIN keeps the order
	// written, and the unary + keeps it from seeking (grid, id) once per grid
	// for each entry: one seek by id, then the row's grid, is cheaper.
	join, grid := "JOIN", "h.grid_id"
	if feedFirst {
		join, grid = "CROSS JOIN", "+h.grid_id"
	}
	args := append([]any{cursor, top, origin}, anys(grids)...)
	args = append(args, limit)
	rows, err := q.QueryContext(ctx, `SELECT f.seq, f.kind, f.entity_id, f.household_id, f.origin FROM feed f
		`+join+` households h ON h.id = f.household_id
		WHERE f.seq > ? AND f.seq <= ? AND f.origin != ? AND `+grid+` IN (`+sqlitex.InPlaceholders(len(grids))+`)
		ORDER BY f.seq LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("read feed: %w", err)
	}
	defer rows.Close()
	var out []feedEntry
	for rows.Next() {
		var e feedEntry
		if err := rows.Scan(&e.seq, &e.kind, &e.entityID, &e.household, &e.origin); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// scopeChanges adds to b what changed in the worker's scope in (cursor,
// upto]: grids given and taken, households moved in and out. It judges each
// by the scope as it is now, so a household that moved out and back within
// the range arrives whole rather than being dropped. A move counts if it
// touches a grid the worker has now or held at any point after the cursor
// (up to top, beyond this batch): a household that left a grid the worker
// loses in a later batch must still leave the phone now. It returns the
// households to send whole.
func (s *Store) scopeChanges(ctx context.Context, tx *sqlitex.Tx, b *store.PullBatch, workerID string, mine map[string]bool, cursor, upto, top uint64) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT grid_id, seq FROM scope_events WHERE worker_id = ? AND seq > ? AND seq <= ? ORDER BY grid_id`, workerID, cursor, top)
	if err != nil {
		return nil, err
	}
	held := map[string]bool{}    // grids the worker held at some point after the cursor
	inRange := map[string]bool{} // grids given or taken within this batch
	for rows.Next() {
		var g string
		var seq uint64
		if err := rows.Scan(&g, &seq); err != nil {
			rows.Close()
			return nil, err
		}
		held[g] = true
		if seq <= upto {
			inRange[g] = true
		}
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	for _, g := range sortedKeys(inRange) {
		if mine[g] {
			b.AddedGrids = append(b.AddedGrids, g)
		} else {
			b.EvictedGrids = append(b.EvictedGrids, g)
		}
	}
	rows, err = tx.QueryContext(ctx, `SELECT m.household_id, m.from_grid, m.to_grid, h.grid_id FROM household_moves m
		JOIN households h ON h.id = m.household_id WHERE m.seq > ? AND m.seq <= ? ORDER BY m.seq`, cursor, upto)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var whole []string
	for rows.Next() {
		var id, from, to, now string
		if err := rows.Scan(&id, &from, &to, &now); err != nil {
			return nil, err
		}
		if !(mine[from] || mine[to] || held[from] || held[to]) {
			continue
		}
		switch {
		case !mine[now]:
			if !slices.Contains(b.EvictedHouseholds, id) {
				b.EvictedHouseholds = append(b.EvictedHouseholds, id)
			}
		case !slices.Contains(whole, id):
			whole = append(whole, id)
		}
	}
	return whole, rows.Err()
}

// loadEntries loads the rows behind feed entries, and whole households.
func loadEntries(ctx context.Context, tx *sqlitex.Tx, b *store.PullBatch, entries []feedEntry, whole []string) error {
	ids := map[int][]string{}
	seen := map[[2]string]bool{}
	for _, h := range whole {
		seen[[2]string{"whole", h}] = true
	}
	for _, e := range entries {
		k := [2]string{fmt.Sprint(e.kind), e.entityID}
		if seen[k] || seen[[2]string{"whole", e.household}] {
			continue // a group visit has an entry per household; whole households come below
		}
		seen[k] = true
		ids[e.kind] = append(ids[e.kind], e.entityID)
	}
	var err error
	r := &b.Rows
	if r.Households, err = statedb.Households(ctx, tx, ids[kindHousehold]); err != nil {
		return err
	}
	if r.Persons, err = statedb.Persons(ctx, tx, ids[kindPerson]); err != nil {
		return err
	}
	if r.Tags, err = statedb.Tags(ctx, tx, ids[kindTag]); err != nil {
		return err
	}
	// A feed entry without its row is a tombstone collected past the
	// horizon (see collectTombstones).
	b.PurgedPersons = missing(ids[kindPerson], len(r.Persons), func(i int) string { return r.Persons[i].ID })
	b.PurgedTags = missing(ids[kindTag], len(r.Tags), func(i int) string { return r.Tags[i].AddID })
	if err := erasedIn(ctx, tx, b, entries); err != nil {
		return err
	}
	if r.Visits, err = statedb.Visits(ctx, tx, ids[kindVisit]); err != nil {
		return err
	}
	if r.Amendments, err = statedb.Amendments(ctx, tx, ids[kindAmendment]); err != nil {
		return err
	}
	if len(whole) == 0 {
		return nil
	}
	extra, err := statedb.LoadBundle(ctx, tx, whole)
	if err != nil {
		return err
	}
	r.Households = append(r.Households, extra.Households...)
	r.Persons = append(r.Persons, extra.Persons...)
	r.Tags = append(r.Tags, extra.Tags...)
	r.Visits = append(r.Visits, extra.Visits...)
	r.Amendments = append(r.Amendments, extra.Amendments...)
	return nil
}

// Bootstrap sends pages of whole households. Each page is read in its own
// transaction, so a slow client never holds a snapshot open; what changes
// between pages reaches the device through the feed from the first page's
// cursor.
func (s *Store) Bootstrap(ctx context.Context, p store.Principal, req store.BootstrapRequest, send func(*store.BootstrapPage) error) error {
	if err := requireWorker(p); err != nil {
		return err
	}
	pageSize := req.PageSize
	if pageSize <= 0 {
		pageSize = store.DefaultBootstrapPage
	}
	pageSize = min(pageSize, store.MaxBootstrapPage)
	var (
		sc  store.Scope
		top uint64
		// cursor is the feed position read before the first page.
		cursor uint64
		total  int
		grids  []string
		ref    syncengine.Reference
	)
	err := s.db.Read(ctx, func(tx *sqlitex.Tx) error {
		var err error
		if top, err = head(ctx, tx); err != nil {
			return err
		}
		if cursor, err = cursorAt(ctx, tx, top); err != nil {
			return err
		}
		if sc, err = scope(ctx, tx, p.ID); err != nil {
			return err
		}
		if ref, err = reference(ctx, tx, sc.Worker.GridIDs, 0); err != nil {
			return err
		}
		grids = sc.Worker.GridIDs
		if len(req.GridIDs) > 0 {
			grids = dedupe(req.GridIDs)
			for _, g := range grids {
				if !slices.Contains(sc.Worker.GridIDs, g) {
					return fmt.Errorf("%w: grid %s is not yours", syncengine.ErrOutOfScope, g)
				}
			}
		}
		if len(grids) == 0 {
			return nil
		}
		return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM households WHERE grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`) AND id > ?`,
			append(anys(grids), req.AfterHouseholdID)...).Scan(&total)
	})
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	after := req.AfterHouseholdID
	first := true
	for {
		page := &store.BootstrapPage{Cursor: cursor, Scope: sc}
		if first {
			page.TotalHouseholds, page.Reference = total, ref
		}
		var ids []string
		if len(grids) > 0 {
			err = s.db.Read(ctx, func(tx *sqlitex.Tx) error {
				ids, err = queryStrings(ctx, tx, `SELECT id FROM households WHERE grid_id IN (`+sqlitex.InPlaceholders(len(grids))+`) AND id > ? ORDER BY id LIMIT ?`,
					append(anys(grids), after, pageSize)...)
				if err != nil {
					return err
				}
				page.Rows, err = statedb.LoadBundle(ctx, tx, ids)
				return err
			})
			if err != nil {
				return fmt.Errorf("bootstrap: %w", err)
			}
		}
		if len(ids) > 0 {
			after = ids[len(ids)-1]
			page.LastHouseholdID = after
		}
		// The first page goes out even when empty: it carries the cursor.
		if len(ids) > 0 || first {
			if err := send(page); err != nil {
				return err
			}
		}
		first = false
		if len(ids) < pageSize {
			return nil
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkCount fails with a cap error when query counts limit or more rows,
// leaving no room for one more; a negative limit counts rows already
// written, and fails past -limit.
func checkCount(ctx context.Context, tx *sqlitex.Tx, query, what string, limit int, args ...any) error {
	var n int
	if err := tx.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return fmt.Errorf("count %s: %w", what, err)
	}
	if limit < 0 {
		if n > -limit {
			return syncengine.CapError(what, n, -limit)
		}
		return nil
	}
	if n >= limit {
		return syncengine.CapError(what, n+1, limit)
	}
	return nil
}

// checkNewTag admits a tag element the server has not seen: its category
// must be one the admins defined, and its household must have room.
func checkNewTag(ctx context.Context, tx *sqlitex.Tx, t *syncengine.TagElement) error {
	var known int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM categories WHERE code = ?`, t.Category).Scan(&known); err != nil {
		return fmt.Errorf("read category: %w", err)
	}
	if known == 0 {
		return fmt.Errorf("%w: unknown category %q: the admins have not defined it", syncengine.ErrInvalid, t.Category)
	}
	var live, all int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FILTER (WHERE NOT removed), COUNT(*) FROM tag_elements WHERE household_id = ?`, t.HouseholdID).Scan(&live, &all); err != nil {
		return fmt.Errorf("count tags: %w", err)
	}
	if all >= syncengine.MaxTagElementsPerHousehold {
		return syncengine.CapError("tag adds and removals of household "+t.HouseholdID, all+1, syncengine.MaxTagElementsPerHousehold)
	}
	if !t.Removed && live >= syncengine.MaxLiveTagsPerHousehold {
		return syncengine.CapError("tags on household "+t.HouseholdID, live+1, syncengine.MaxLiveTagsPerHousehold)
	}
	return nil
}

// missing lists the ids of want that the n found rows (ids by id(i)) lack.
func missing(want []string, n int, id func(int) string) []string {
	if len(want) == n {
		return nil
	}
	found := make(map[string]bool, n)
	for i := range n {
		found[id(i)] = true
	}
	var out []string
	for _, w := range want {
		if !found[w] {
			out = append(out, w)
		}
	}
	return out
}

// erasedIn marks the rows of the batch whose personal data was erased, by
// the entries the erasure wrote: a later change of the row is no erasure.
func erasedIn(ctx context.Context, tx *sqlitex.Tx, b *store.PullBatch, entries []feedEntry) error {
	out := map[int]*[]string{kindHousehold: &b.ErasedHouseholds, kindPerson: &b.ErasedPersons,
		kindVisit: &b.ReplacedVisits, kindAmendment: &b.ReplacedAmendments}
	seen := map[[2]string]bool{}
	for _, e := range entries {
		list, ok := out[e.kind]
		key := [2]string{fmt.Sprint(e.kind), e.entityID}
		if !ok || seen[key] {
			continue
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM erasures WHERE kind = ? AND entity_id = ? AND first_seq <= ? AND last_seq >= ?`,
			e.kind, e.entityID, e.seq, e.seq).Scan(&n); err != nil {
			return fmt.Errorf("read erasures: %w", err)
		}
		if n > 0 {
			seen[key] = true
			*list = append(*list, e.entityID)
		}
	}
	return nil
}

// wasCollected reports whether a row was a tombstone the collector deleted:
// a write naming it now (a phone back after the horizon) is refused, and
// set aside on the phone, rather than bring the row back.
func wasCollected(ctx context.Context, tx *sqlitex.Tx, kind int, id string) (bool, error) {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM collected WHERE kind = ? AND entity_id = ?`, kind, id).Scan(&n); err != nil {
		return false, fmt.Errorf("read collected: %w", err)
	}
	return n > 0, nil
}

// erasedBefore is erasedBefore for this push.
func (ps *pushScope) erasedBefore(ctx context.Context, households []string) (uint64, error) {
	if !ps.anyErased {
		return 0, nil
	}
	return erasedBefore(ctx, ps.tx, households)
}
