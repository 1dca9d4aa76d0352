package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/server/store"
)

// Scrub checkpoints the write-ahead log, so that the values an erasure
// blanked do not outlive it there (secure_delete leaves no copy in freed
// pages). A reader's snapshot (a bootstrap streaming) holds the log back:
// it waits for it, a while.
func (s *Store) Scrub(ctx context.Context) (bool, error) {
	for try := 0; ; try++ {
		busy, err := s.db.Checkpoint(ctx, "TRUNCATE")
		if err != nil {
			return false, err
		}
		if !busy {
			return true, nil
		}
		if try == 50 {
			// Erased in the database; the old bytes leave the log at the
			// next checkpoint, once the readers are done.
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, nil
		case <-time.After(100 * time.Millisecond):
		}
	}
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
	if len(m.rows) == 0 {
		return nil
	}
	first, last := seq.first, seq.last
	if !seq.used {
		first = last + 1 // no entry announces it
	}
	for _, r := range m.rows {
		if _, err := tx.ExecContext(ctx, `INSERT INTO erasures (kind, entity_id, at, hlc, first_seq, last_seq) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT DO UPDATE SET at = excluded.at, hlc = max(hlc, excluded.hlc), first_seq = excluded.first_seq, last_seq = excluded.last_seq`,
			r.kind, r.id, m.at.UnixMilli(), int64(r.hlc), first, last); err != nil {
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

var _ store.Scrubber = (*Store)(nil)
