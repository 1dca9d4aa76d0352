package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/doorbook/doorbook/server/store"
)

// Entry is one feed entry: row entityID of kind changed, as part of
// household householdID, at position Seq.
type Entry struct {
	Seq         uint64
	Kind        int
	EntityID    string
	HouseholdID string
	// Origin is the device whose push created an immutable row, which its
	// own pulls leave out; "" otherwise.
	Origin string
}

// Commit is a write transaction's range of feed positions, First to Last;
// zero for a transaction that touched no feed entry (and took no number).
type Commit struct {
	First, Last uint64
	// Tag is the random tag a cursor into this commit carries.
	Tag int64
	// At is when the commit was made, on the server's clock.
	At time.Time
}

// Tx is a write transaction, given to the function Write runs. Its
// queries run at READ COMMITTED: a read-modify-write of a row locks it
// first (SELECT ... FOR UPDATE).
//
// Everything that takes a feed position (an entry touched, and the rows
// the backend numbers from the same counter: grid changes, moves,
// reference rows' stamps) takes a slot, in call order; the slots get
// their numbers when the transaction is sealed, in that order, so that
// positions order exactly as the calls did. A slot given up (its entry
// touched again, its row stamped again) takes none: positions stay
// contiguous. Marks (applied change ids, erasures) record how many slots
// had been taken when they were made, and get the position that many
// slots reach.
type Tx struct {
	conn *pgxpool.Conn
	// slots are the positions taken, in order; true if given up.
	slots []bool
	// live counts the slots not given up: the numbers the seal takes.
	live int
	// pending are the entries touched, in order.
	pending []pending
	// at indexes pending by the entry's key.
	at map[entryKey]int
	// events, moves and stamps are rows written at the seal, at their
	// slot's position.
	events []scopeEvent
	moves  []householdMove
	stamps []stamp
	// stampAt indexes stamps by row.
	stampAt map[stampKey]int
	// applied and erasures are marks.
	applied  []appliedMark
	erasures []erasureMark
	// erasureAt indexes erasures by row.
	erasureAt map[erasureKey]int
	// sealed run once the numbers are known, before the commit.
	sealed []func(context.Context, Commit) error
}

type pending struct {
	Entry
	slot int
	// moved: touched again later in the transaction.
	moved bool
}

type entryKey struct {
	kind              int
	entity, household string
}

// scopeEvent is a grid given to (added) or taken from a worker.
type scopeEvent struct {
	slot         int
	worker, grid string
	added        bool
}

// householdMove is a household moved between grids.
type householdMove struct {
	slot                int
	household, from, to string
}

// stampTable names the reference table a stamp sets seq in.
type stampTable int

const (
	stampCategory stampTable = iota
	stampCampaign
)

type stampKey struct {
	table stampTable
	key   string
}

// stamp sets the seq of a reference row to its slot's position.
type stamp struct {
	stampKey
	slot int
}

// appliedMark records a change id applied at the position the slots
// taken before it reach.
type appliedMark struct {
	changeID, credentialID, digest string
	// taken is how many slots were taken when it was recorded.
	taken int
}

type erasureKey struct {
	kind int
	id   string
}

// erasureMark records an erased row with the range of positions the
// transaction had taken when it was recorded: from its first to the last
// so far, empty if none.
type erasureMark struct {
	erasureKey
	at    int64
	hlc   uint64
	taken int
}

// take takes the next slot and returns its index.
func (tx *Tx) take() int {
	tx.slots = append(tx.slots, false)
	tx.live++
	return len(tx.slots) - 1
}

// giveUp gives up slot i.
func (tx *Tx) giveUp(i int) {
	tx.slots[i] = true
	tx.live--
}

// Exec runs a statement in the transaction.
func (tx *Tx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return tx.conn.Exec(ctx, sql, args...)
}

// Query runs a query in the transaction.
func (tx *Tx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return tx.conn.Query(ctx, sql, args...)
}

// QueryRow runs a query of one row in the transaction.
func (tx *Tx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return tx.conn.QueryRow(ctx, sql, args...)
}

// Touch records that a row changed: when the transaction commits, the
// row's feed entry moves to a new position, after every position
// committed before. origin is the device that pushed an immutable row
// ("" for any other). Touching a row again in the same transaction moves
// it after the entries touched since.
func (tx *Tx) Touch(kind int, entityID, householdID, origin string) {
	k := entryKey{kind, entityID, householdID}
	if i, ok := tx.at[k]; ok {
		tx.pending[i].moved = true
		tx.giveUp(tx.pending[i].slot)
	}
	if tx.at == nil {
		tx.at = make(map[entryKey]int)
	}
	tx.at[k] = len(tx.pending)
	tx.pending = append(tx.pending, pending{Entry: Entry{Kind: kind, EntityID: entityID, HouseholdID: householdID, Origin: origin}, slot: tx.take()})
}

// scopeEvent records, at the next position, a grid given to or taken from
// a worker.
func (tx *Tx) scopeEvent(worker, grid string, added bool) {
	tx.events = append(tx.events, scopeEvent{slot: tx.take(), worker: worker, grid: grid, added: added})
}

// move records, at the next position, a household's move.
func (tx *Tx) move(household, from, to string) {
	tx.moves = append(tx.moves, householdMove{slot: tx.take(), household: household, from: from, to: to})
}

// stamp stamps a reference row with the next position; a row stamped
// again in the transaction keeps the later one.
func (tx *Tx) stamp(table stampTable, key string) {
	k := stampKey{table, key}
	slot := tx.take()
	if i, ok := tx.stampAt[k]; ok {
		tx.giveUp(tx.stamps[i].slot)
		tx.stamps[i].slot = slot
		return
	}
	if tx.stampAt == nil {
		tx.stampAt = make(map[stampKey]int)
	}
	tx.stampAt[k] = len(tx.stamps)
	tx.stamps = append(tx.stamps, stamp{stampKey: k, slot: slot})
}

// recordApplied records a change id as applied at the last position taken
// so far (the previous commit's last if none yet), as SQLite's backend
// does.
func (tx *Tx) recordApplied(changeID, credentialID, digest string) {
	tx.applied = append(tx.applied, appliedMark{changeID: changeID, credentialID: credentialID, digest: digest, taken: len(tx.slots)})
}

// recordErasure records an erased row with the range of positions taken so
// far; the same row again keeps the newest clock and the later range.
func (tx *Tx) recordErasure(kind int, id string, at int64, hlc uint64) {
	k := erasureKey{kind, id}
	m := erasureMark{erasureKey: k, at: at, hlc: hlc, taken: len(tx.slots)}
	if i, ok := tx.erasureAt[k]; ok {
		m.hlc = max(m.hlc, tx.erasures[i].hlc)
		tx.erasures[i] = m
		return
	}
	if tx.erasureAt == nil {
		tx.erasureAt = make(map[erasureKey]int)
	}
	tx.erasureAt[k] = len(tx.erasures)
	tx.erasures = append(tx.erasures, m)
}

// Sealed adds fn to run when the transaction has its feed positions, just
// before it commits, with the counter locked: for rows that record the
// position (which change ids a commit applied). Keep it to a few
// statements: every writer waits for it.
func (tx *Tx) Sealed(fn func(ctx context.Context, c Commit) error) {
	tx.sealed = append(tx.sealed, fn)
}

// maxAttempts bounds the runs of a write transaction that fails on a
// deadlock or serialisation failure.
const maxAttempts = 10

// Write runs fn in a write transaction, then numbers the feed entries fn
// touched and commits (see the package doc for why the numbers are taken
// last). If the transaction deadlocks or fails to serialise (SQLSTATE
// 40P01, 40001), or conflicts with a concurrent writer (errConflict, a
// change id applied meanwhile), it is rolled back and fn runs again, from
// the start, in a new one: fn must do nothing outside the transaction that
// it cannot do twice. An error from fn rolls the transaction back and is returned.
//
// An error at the commit itself (the connection broke) may leave the
// writes committed: a push, idempotent by change id, is safe to send
// again.
func (db *DB) Write(ctx context.Context, fn func(tx *Tx) error) (Commit, error) {
	for attempt := 1; ; attempt++ {
		c, err := db.writeOnce(ctx, fn)
		if err == nil || !retryable(err) || attempt == maxAttempts {
			return c, err
		}
		// A little jitter, growing, so the transactions that deadlocked
		// do not meet again at once.
		wait := time.Duration(rand.Int64N(int64(attempt) * int64(time.Millisecond)))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return Commit{}, err
		}
	}
}

func (db *DB) writeOnce(ctx context.Context, fn func(tx *Tx) error) (Commit, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return Commit{}, fmt.Errorf("begin: %w", err)
	}
	// A connection left in a transaction (a broken one) is closed, not
	// pooled.
	defer conn.Release()
	if _, err := conn.Exec(ctx, `BEGIN ISOLATION LEVEL READ COMMITTED`); err != nil {
		return Commit{}, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if conn.Conn().PgConn().TxStatus() != 'I' {
			_, _ = conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`)
		}
	}()
	tx := &Tx{conn: conn}
	if err := fn(tx); err != nil {
		return Commit{}, err
	}
	return db.sealAndCommit(ctx, tx)
}

// sealStatement builds the statement that seals tx: it takes tx.live
// numbers from the counter, locking it (or, taking none, reads where it
// stands), and writes at them, in one statement and so one round trip, the
// entries, the commit's range (tag and time from c), the grid changes,
// moves, reference stamps, applied change ids and erasures. A
// data-modifying WITH runs once and to the end whether or not the query
// reads it. It returns the position before the first number (base).
func (tx *Tx) sealStatement(c Commit) (string, []any) {
	// Slot i's position is base + off[i]; the slots taken before a mark
	// made after k of them reach base + reach[k].
	off := make([]int64, len(tx.slots))
	reach := make([]int64, len(tx.slots)+1)
	var n int64
	for i, gone := range tx.slots {
		if !gone {
			n++
			off[i] = n
		}
		reach[i+1] = n
	}
	var a sqlArgs
	var sb strings.Builder
	if tx.live > 0 {
		live := a.add(int64(tx.live))
		// A commit takes the time of the one before it when its clock is
		// behind that by less than store.ClockStep (servers' clocks differ
		// a little; one may step back): read and set in the locked row, so
		// commits in position order have times in order, and the last
		// commit before a time is the last of the time index
		// (PositionBefore).
		at, step := a.add(c.At.UnixMilli()), a.add(store.ClockStep.Milliseconds())
		fmt.Fprintf(&sb, `WITH head AS (UPDATE feed_head SET seq = seq + %s, at = CASE WHEN at > %s AND at - %[2]s <= %s THEN at ELSE %[2]s END
			RETURNING seq - %[1]s AS base, at)`, live, at, step)
		fmt.Fprintf(&sb, `, recorded AS (INSERT INTO commits (last_seq, first_seq, tag, at) SELECT base + %s, base + 1, %s, at FROM head)`,
			live, a.add(c.Tag))
	} else {
		sb.WriteString(`WITH head AS (SELECT seq AS base FROM feed_head)`)
	}
	if len(tx.pending) > 0 {
		var offs []int64
		var kinds []int32
		var entities, households, origins []string
		for _, e := range tx.pending {
			if !e.moved {
				offs = append(offs, off[e.slot])
				kinds = append(kinds, int32(e.Kind))
				entities = append(entities, e.EntityID)
				households = append(households, e.HouseholdID)
				origins = append(origins, e.Origin)
			}
		}
		fmt.Fprintf(&sb, `, entries AS (INSERT INTO feed (seq, kind, entity_id, household_id, origin)
			SELECT base + e.off, e.kind, e.entity_id, e.household_id, e.origin
			FROM head, unnest(%s::bigint[], %s::integer[], %s::text[], %s::text[], %s::text[]) AS e(off, kind, entity_id, household_id, origin)
			ON CONFLICT (kind, entity_id, household_id) DO UPDATE SET seq = excluded.seq, origin = excluded.origin)`,
			a.add(offs), a.add(kinds), a.add(entities), a.add(households), a.add(origins))
	}
	if len(tx.events) > 0 {
		offs := make([]int64, len(tx.events))
		workers := make([]string, len(tx.events))
		grids := make([]string, len(tx.events))
		added := make([]bool, len(tx.events))
		for i, e := range tx.events {
			offs[i], workers[i], grids[i], added[i] = off[e.slot], e.worker, e.grid, e.added
		}
		fmt.Fprintf(&sb, `, events AS (INSERT INTO scope_events (seq, worker_id, grid_id, added)
			SELECT base + e.off, e.worker_id, e.grid_id, e.added
			FROM head, unnest(%s::bigint[], %s::text[], %s::text[], %s::boolean[]) AS e(off, worker_id, grid_id, added))`,
			a.add(offs), a.add(workers), a.add(grids), a.add(added))
	}
	if len(tx.moves) > 0 {
		offs := make([]int64, len(tx.moves))
		hs := make([]string, len(tx.moves))
		from := make([]string, len(tx.moves))
		to := make([]string, len(tx.moves))
		for i, m := range tx.moves {
			offs[i], hs[i], from[i], to[i] = off[m.slot], m.household, m.from, m.to
		}
		fmt.Fprintf(&sb, `, moves AS (INSERT INTO household_moves (seq, household_id, from_grid, to_grid)
			SELECT base + m.off, m.household_id, m.from_grid, m.to_grid
			FROM head, unnest(%s::bigint[], %s::text[], %s::text[], %s::text[]) AS m(off, household_id, from_grid, to_grid))`,
			a.add(offs), a.add(hs), a.add(from), a.add(to))
	}
	for _, t := range []struct {
		table stampTable
		name  string
		sql   string
	}{
		{stampCategory, "categories", `UPDATE categories r SET seq = base + s.off FROM head, unnest(%s::text[], %s::bigint[]) AS s(key, off) WHERE r.code = s.key`},
		{stampCampaign, "campaigns", `UPDATE campaigns r SET seq = base + s.off FROM head, unnest(%s::text[], %s::bigint[]) AS s(key, off) WHERE r.id = s.key`},
	} {
		var keys []string
		var offs []int64
		for _, st := range tx.stamps {
			if st.table == t.table {
				keys = append(keys, st.key)
				offs = append(offs, off[st.slot])
			}
		}
		if len(keys) > 0 {
			fmt.Fprintf(&sb, `, stamp_%s AS (`+t.sql+`)`, t.name, a.add(keys), a.add(offs))
		}
	}
	if len(tx.applied) > 0 {
		ids := make([]string, len(tx.applied))
		creds := make([]string, len(tx.applied))
		reaches := make([]int64, len(tx.applied))
		digests := make([][]byte, len(tx.applied))
		for i, m := range tx.applied {
			ids[i], creds[i], reaches[i] = m.changeID, m.credentialID, reach[m.taken]
			if m.digest != "" {
				digests[i] = []byte(m.digest)
			}
		}
		fmt.Fprintf(&sb, `, applied AS (INSERT INTO applied_changes (change_id, credential_id, seq, digest)
			SELECT a.change_id, a.credential_id, base + a.reach, a.digest
			FROM head, unnest(%s::text[], %s::text[], %s::bigint[], %s::bytea[]) AS a(change_id, credential_id, reach, digest))`,
			a.add(ids), a.add(creds), a.add(reaches), a.add(digests))
	}
	if len(tx.erasures) > 0 {
		kinds := make([]int32, len(tx.erasures))
		ids := make([]string, len(tx.erasures))
		ats := make([]int64, len(tx.erasures))
		hlcs := make([]int64, len(tx.erasures))
		lasts := make([]int64, len(tx.erasures))
		for i, m := range tx.erasures {
			kinds[i], ids[i], ats[i], hlcs[i], lasts[i] = int32(m.kind), m.id, m.at, int64(m.hlc), reach[m.taken]
		}
		// The range runs from the transaction's first position to the last
		// it had taken: empty if it had taken none, announcing nothing.
		fmt.Fprintf(&sb, `, erased AS (INSERT INTO erasures (kind, entity_id, at, hlc, first_seq, last_seq)
			SELECT e.kind, e.entity_id, e.at, e.hlc, base + 1, base + e.reach
			FROM head, unnest(%s::integer[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[]) AS e(kind, entity_id, at, hlc, reach)
			ON CONFLICT (kind, entity_id) DO UPDATE SET at = excluded.at, hlc = GREATEST(erasures.hlc, excluded.hlc),
				first_seq = excluded.first_seq, last_seq = excluded.last_seq)`,
			a.add(kinds), a.add(ids), a.add(ats), a.add(hlcs), a.add(lasts))
	}
	sb.WriteString(` SELECT base FROM head`)
	return sb.String(), a.args
}

// sqlArgs collects a statement's arguments.
type sqlArgs struct{ args []any }

// add adds v and returns its placeholder.
func (a *sqlArgs) add(v any) string {
	a.args = append(a.args, v)
	return "$" + strconv.Itoa(len(a.args))
}

// needsSeal reports whether tx wrote anything that takes or reads a
// position.
func (tx *Tx) needsSeal() bool {
	return tx.live > 0 || len(tx.applied) > 0 || len(tx.erasures) > 0
}

// sealAndCommit numbers tx's slots, writes what they number, and commits.
// Taking the counter row locks it until the transaction ends, so the lock
// is held for this alone: the seal and the COMMIT go in one pipeline, one
// round trip (twice the commits a second of a COMMIT sent after the
// seal's answer, on two cores), unless Sealed functions must run between.
func (db *DB) sealAndCommit(ctx context.Context, tx *Tx) (Commit, error) {
	var c Commit
	b := &pgx.Batch{}
	if tx.needsSeal() {
		if tx.live > 0 {
			c = Commit{Tag: rand.Int64N(1 << 16), At: db.now()}
		}
		sql, args := tx.sealStatement(c)
		live := uint64(tx.live)
		b.Queue(sql, args...).QueryRow(func(row pgx.Row) error {
			var base uint64
			if err := row.Scan(&base); err != nil {
				return fmt.Errorf("seal feed: %w", err)
			}
			if live > 0 {
				c.First, c.Last = base+1, base+live
			}
			return nil
		})
	}
	if len(tx.sealed) > 0 {
		if b.Len() > 0 {
			if err := tx.conn.SendBatch(ctx, b).Close(); err != nil {
				return Commit{}, err
			}
			b = &pgx.Batch{}
		}
		for _, fn := range tx.sealed {
			if err := fn(ctx, c); err != nil {
				return Commit{}, err
			}
		}
	}
	b.Queue(`COMMIT`).Exec(func(tag pgconn.CommandTag) error {
		// A transaction that failed earlier answers COMMIT with ROLLBACK.
		if tag.String() != "COMMIT" {
			return fmt.Errorf("commit: rolled back (%s): an error in the transaction went unreported", tag)
		}
		return nil
	})
	if err := tx.conn.SendBatch(ctx, b).Close(); err != nil {
		return Commit{}, fmt.Errorf("commit: %w", err)
	}
	return c, nil
}

// retryable reports whether err is a deadlock or serialisation failure, or
// a conflict with a concurrent writer: the transaction was rolled back and
// may run again.
func retryable(err error) bool {
	if errors.Is(err, errConflict) {
		return true
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "40001", "40P01":
		return true
	case "23505":
		// A change id applied by a transaction that committed while this
		// one ran: run again, and it is a resend.
		return pgErr.ConstraintName == "applied_changes_pkey"
	}
	return false
}

// errConflict means a transaction found a row it had read as absent
// written by another one since: it runs again, and reads it.
var errConflict = errors.New("a concurrent transaction wrote the same row")

// ReadFeed returns up to limit entries after position after, in position
// order. Every entry at or before the last one returned is committed, and
// no transaction still running will commit one there: after is a cursor
// that never skips a change.
func (db *DB) ReadFeed(ctx context.Context, after uint64, limit int) ([]Entry, error) {
	rows, err := db.pool.Query(ctx, `SELECT seq, kind, entity_id, household_id, origin FROM feed
		WHERE seq > $1 ORDER BY seq LIMIT $2`, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("read feed: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := r.Scan(&e.Seq, &e.Kind, &e.EntityID, &e.HouseholdID, &e.Origin)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("read feed: %w", err)
	}
	return out, nil
}

// Head is the last feed position handed out by a committed transaction.
func (db *DB) Head(ctx context.Context) (uint64, error) {
	var seq uint64
	if err := db.pool.QueryRow(ctx, `SELECT seq FROM feed_head`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("feed head: %w", err)
	}
	return seq, nil
}
