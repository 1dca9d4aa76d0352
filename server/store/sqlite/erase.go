package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// ErasePersonalData blanks a household's personal fields (head, address,
// phones, notes), its persons' fields and the notes of its visits and their
// amendments, or one person's fields, under clocks newer than any the rows
// hold, so that the blanks win on every replica. Visits keep their facts.
// The database's secure_delete leaves no copy of the old values in freed
// space, and its log is checkpointed so that none stays there either.
func (s *Store) ErasePersonalData(ctx context.Context, p store.Principal, t store.ErasureTarget, clock func(observed syncengine.Clock) syncengine.Clock) (store.Erased, error) {
	var out store.Erased
	if err := requireAdmin(p); err != nil {
		return out, err
	}
	err := s.db.Write(ctx, func(tx *sqlitex.Tx) error {
		out = store.Erased{}
		householdID := t.HouseholdID
		var person syncengine.Person
		if t.PersonID != "" {
			var ok bool
			var err error
			if person, ok, err = statedb.GetPerson(ctx, tx, t.PersonID); err != nil {
				return err
			}
			if !ok {
				return notInSubtree("person", t.PersonID)
			}
			householdID = person.HouseholdID
		}
		h, ok, err := statedb.GetHousehold(ctx, tx, householdID)
		if err != nil {
			return err
		}
		if !ok {
			return notInSubtree("household", householdID)
		}
		if in, err := inSubtree(ctx, tx, p.Node, h.GridID.Value); err != nil {
			return err
		} else if !in {
			if t.PersonID != "" {
				return notInSubtree("person", t.PersonID)
			}
			return notInSubtree("household", householdID)
		}
		action := "erase household " + householdID
		if t.PersonID != "" {
			action = "erase person " + t.PersonID
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (id, at, admin_id, action, node_id, campaign_id) VALUES (?, ?, ?, ?, ?, '')`,
			newID(), t.At.UnixMilli(), p.ID, action+": "+t.Reason, h.GridID.Value); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		seq, err := s.newSeqAlloc(ctx, tx)
		if err != nil {
			return err
		}
		marks := &erasureMarks{at: s.now()}
		mark := func(kind int, id string) error {
			marks.add(kind, id, 0)
			return nil
		}
		erasePerson := func(pr syncengine.Person) error {
			c := clock(pr.MaxClock())
			blank := syncengine.NewRegister("", c)
			delta := syncengine.Person{ID: pr.ID, HouseholdID: pr.HouseholdID, Name: blank, IDNumber: blank, Gender: blank,
				BirthDate: blank, Phone: blank, Relation: blank, Notes: blank}
			if _, _, _, err := statedb.MergePersonOnto(ctx, tx, pr, true, &delta); err != nil {
				return err
			}
			out.Persons++
			if err := mark(kindPerson, pr.ID); err != nil {
				return err
			}
			return seq.touch(ctx, kindPerson, pr.ID, pr.HouseholdID)
		}
		if t.PersonID != "" {
			if err := erasePerson(person); err != nil {
				return err
			}
			if err := marks.save(ctx, tx, seq); err != nil {
				return err
			}
			return seq.save(ctx)
		}

		c := clock(h.MaxClock())
		blank := syncengine.NewRegister("", c)
		delta := syncengine.Household{ID: h.ID, HeadName: blank, Address: blank, PhoneMobile: blank, PhoneLandline: blank, Notes: blank}
		if _, _, _, err := statedb.MergeHouseholdOnto(ctx, tx, h, true, &delta); err != nil {
			return err
		}
		out.Households++
		// The household's clock: changes made before it and pushed later
		// are blanked on arrival (see erasedBefore).
		marks.add(kindHousehold, h.ID, c.HLC)
		if err := seq.touch(ctx, kindHousehold, h.ID, h.ID); err != nil {
			return err
		}
		b, err := statedb.LoadBundle(ctx, tx, []string{h.ID})
		if err != nil {
			return err
		}
		for _, pr := range b.Persons {
			if err := erasePerson(pr); err != nil {
				return err
			}
		}
		for i := range b.Visits {
			v := b.Visits[i]
			v.Notes = ""
			for j := range v.Findings {
				v.Findings[j].Note = ""
			}
			if err := statedb.ReplaceVisit(ctx, tx, &v); err != nil {
				return err
			}
			out.Visits++
			if err := mark(kindVisit, v.ID); err != nil {
				return err
			}
			for _, hh := range v.HouseholdIDs {
				if err := seq.touch(ctx, kindVisit, v.ID, hh); err != nil {
					return err
				}
			}
		}
		for i := range b.Amendments {
			a := b.Amendments[i]
			a.Reason = "(erased)"
			if a.Notes != nil {
				a.Notes = new(string)
			}
			if err := statedb.ReplaceAmendment(ctx, tx, &a); err != nil {
				return err
			}
			out.Amendments++
			if err := mark(kindAmendment, a.ID); err != nil {
				return err
			}
			vs, err := statedb.Visits(ctx, tx, []string{a.VisitID})
			if err != nil {
				return err
			}
			for _, v := range vs {
				for _, hh := range v.HouseholdIDs {
					if err := seq.touch(ctx, kindAmendment, a.ID, hh); err != nil {
						return err
					}
				}
			}
		}
		if err := marks.save(ctx, tx, seq); err != nil {
			return err
		}
		return seq.save(ctx)
	})
	if err != nil {
		return out, fmt.Errorf("erase personal data: %w", err)
	}
	// The old values must not outlive the erasure in the write-ahead log. A
	// reader's snapshot (a bootstrap streaming) holds the log back: wait for
	// it, a while.
	for try := 0; ; try++ {
		var busy, frames, done int
		if err := s.db.W.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &done); err != nil {
			return out, fmt.Errorf("erase personal data: checkpoint: %w", err)
		}
		if busy == 0 {
			out.Scrubbed = true
			return out, nil
		}
		if try == 50 {
			// Erased in the database; the old bytes leave the log at the
			// next checkpoint, once the readers are done.
			return out, nil
		}
		select {
		case <-ctx.Done():
			return out, nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// notInSubtree refuses an id outside the admin's subtree, or unknown: the
// same answer for both.
func notInSubtree(what, id string) error {
	return fmt.Errorf("%w: %s %s is not in your subtree", syncengine.ErrOutOfScope, what, id)
}

// erasureMarks records, within one transaction, the rows whose personal
// data it erased, and the feed positions that announce them.
type erasureMarks struct {
	at   time.Time
	rows []erasureMark
}

type erasureMark struct {
	kind int
	id   string
	hlc  uint64
}

func (m *erasureMarks) add(kind int, id string, hlc uint64) {
	m.rows = append(m.rows, erasureMark{kind, id, hlc})
}

// save writes the marks with the transaction's feed range: a pull tells a
// device of an erasure only through the entries written with it, not every
// later change of the row.
func (m *erasureMarks) save(ctx context.Context, tx *sqlitex.Tx, seq *seqAlloc) error {
	for _, r := range m.rows {
		if _, err := tx.ExecContext(ctx, `INSERT INTO erasures (kind, entity_id, at, hlc, first_seq, last_seq) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT DO UPDATE SET at = excluded.at, hlc = max(hlc, excluded.hlc), first_seq = excluded.first_seq, last_seq = excluded.last_seq`,
			r.kind, r.id, m.at.UnixMilli(), int64(r.hlc), seq.first, seq.last); err != nil {
			return fmt.Errorf("record erasure: %w", err)
		}
	}
	return nil
}

// erasedBefore is the clock of the newest erasure of any of households, 0
// if none was erased: a change older than it was made before the erasure
// and arrives after it, and its personal data is blanked on arrival.
func erasedBefore(ctx context.Context, tx *sqlitex.Tx, households []string) (uint64, error) {
	var newest uint64
	for _, h := range households {
		var hlc int64
		err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT hlc FROM erasures WHERE kind = ? AND entity_id = ?), 0)`, kindHousehold, h).Scan(&hlc)
		if err != nil {
			return 0, fmt.Errorf("read erasures: %w", err)
		}
		newest = max(newest, uint64(hlc))
	}
	return newest, nil
}
