package sqlite

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/server/service"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// TestFeedPlansAgree: feedAfter picks one of two query plans by the size of
// the feed range against the scope; both must give the same entries for any
// range, scope, limit and device, or a pull would depend on which one ran,
// and neither gives a device its own rows back. Households move between
// grids as the feed grows, so that some entries are filed under a grid
// their household has since left: feedAfter must then walk.
func TestFeedPlansAgree(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(20261122, 5))
	grids := []string{"g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8", "g9"}
	const households, feedRows = 120, 600
	err = s.db.Write(ctx, func(tx *sqlitex.Tx) error {
		for i := range households {
			h := syncengine.Household{ID: fmt.Sprintf("h%03d", i)}
			h.GridID.Value = grids[rng.IntN(len(grids))]
			if err := statedb.PutHousehold(ctx, tx, &h); err != nil {
				return err
			}
		}
		for seq := 1; seq <= feedRows; seq++ {
			hh := fmt.Sprintf("h%03d", rng.IntN(households+20)) // some of no household at all
			if seq < feedRows/3 && rng.IntN(20) == 0 {
				// A move, at its own position, as RecordMove writes it.
				// None in the last two thirds, where cursors may seek.
				to := grids[rng.IntN(len(grids))]
				if _, err := tx.ExecContext(ctx, `INSERT INTO household_moves (seq, household_id, from_grid, to_grid)
					SELECT ?, id, grid_id, ? FROM households WHERE id = ?`, seq, to, hh); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `UPDATE households SET grid_id = ? WHERE id = ?`, to, hh); err != nil {
					return err
				}
				continue
			}
			origin := []string{"", "device-a", "device-b"}[rng.IntN(3)]
			if _, err := tx.ExecContext(ctx, `INSERT INTO feed (seq, kind, entity_id, household_id, origin, grid_id) VALUES `+feedRow,
				seq, kindVisit, fmt.Sprintf("v%d", seq), hh, origin, nil, hh); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var seeks, moved int // cases feedAfter sought by grid, and with a move into the scope
	for i := range 300 {
		scope := slices.Clone(grids)
		rng.Shuffle(len(scope), func(a, b int) { scope[a], scope[b] = scope[b], scope[a] })
		scope = scope[:1+rng.IntN(3)]
		cursor := uint64(rng.IntN(feedRows + 1))
		top := cursor + uint64(rng.IntN(feedRows+10-int(cursor)))
		limit := 1 + rng.IntN(200)
		device := []string{"device-a", "device-b"}[rng.IntN(2)]
		var walked, sought, chosen []store.FeedEntry
		var movedIn, walks bool
		err := s.db.Read(ctx, func(tx *sqlitex.Tx) error {
			var err error
			if walked, err = readFeed(ctx, tx, scope, device, cursor, top, limit, true); err != nil {
				return err
			}
			if sought, err = readFeed(ctx, tx, scope, device, cursor, top, limit, false); err != nil {
				return err
			}
			if movedIn, err = movedInto(ctx, tx, scope, cursor); err != nil {
				return err
			}
			if walks, err = feedWalks(ctx, tx, scope, cursor, top); err != nil {
				return err
			}
			chosen, err = feedAfter(ctx, tx, scope, device, cursor, top, limit)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if !walks {
			seeks++
		}
		if movedIn {
			moved++
		} else {
			if !slices.Equal(walked, sought) {
				t.Fatalf("case %d (grids %v, range (%d, %d], limit %d, no move into them): the walk gives %d entries, the seeks by grid %d",
					i, scope, cursor, top, limit, len(walked), len(sought))
			}
		}
		if !slices.Equal(walked, chosen) {
			t.Fatalf("case %d (grids %v, range (%d, %d], limit %d, a move into them: %v): the walk gives %d entries, feedAfter %d",
				i, scope, cursor, top, limit, movedIn, len(walked), len(chosen))
		}
		for j, e := range walked {
			if e.Seq <= cursor || e.Seq > top || (j > 0 && e.Seq <= walked[j-1].Seq) {
				t.Fatalf("case %d: entry %d at seq %d is out of (%d, %d] or out of order", i, j, e.Seq, cursor, top)
			}
			if e.Origin == device {
				t.Fatalf("case %d: entry %d at seq %d is %s's own", i, j, e.Seq, device)
			}
		}
	}
	if seeks < 10 || moved < 20 {
		t.Fatalf("feedAfter sought by grid in %d cases, and %d had a move into the scope; want both", seeks, moved)
	}
}

// TestFeedFiledByGrid: each feed entry the store writes is filed under the
// grid its household is in as the transaction writes it or reads it last,
// the one a move in the same transaction gave it included; an entry of no
// household known, under none.
func TestFeedFiledByGrid(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put := func(tx store.Tx, id, grid string) error {
		h := syncengine.Household{ID: id}
		h.GridID.Value = grid
		return tx.PutHousehold(ctx, &h)
	}
	err = s.Update(ctx, func(tx store.Tx) error {
		for i := range 150 { // past a statement's batch of rows
			if err := put(tx, fmt.Sprintf("h%03d", i), fmt.Sprintf("g%d", i%3)); err != nil {
				return err
			}
			if err := tx.Touch(ctx, store.EntityVisit, fmt.Sprintf("v%03d", i), fmt.Sprintf("h%03d", i), "device"); err != nil {
				return err
			}
		}
		return tx.Touch(ctx, store.EntityVisit, "v-none", "h-none", "")
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx store.Tx) error {
		if err := tx.Touch(ctx, store.EntityHousehold, "h000", "h000", ""); err != nil {
			return err
		}
		if err := put(tx, "h000", "g9"); err != nil {
			return err
		}
		return tx.RecordMove(ctx, "h000", "g0", "g9")
	})
	if err != nil {
		t.Fatal(err)
	}
	// The grid the transaction read, before a move: the entry, at a
	// position before the move's, is filed under it, not under the grid
	// its household has when the entries are written.
	err = s.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.HouseholdGrids(ctx, []string{"h001", "h002"}); err != nil {
			return err
		}
		if err := tx.Touch(ctx, store.EntityPerson, "p001", "h001", ""); err != nil {
			return err
		}
		if err := put(tx, "h001", "g8"); err != nil {
			return err
		}
		if err := tx.RecordMove(ctx, "h001", "g1", "g8"); err != nil {
			return err
		}
		// After a move recorded before the household is written, the
		// grid it went to.
		if err := tx.RecordMove(ctx, "h002", "g2", "g7"); err != nil {
			return err
		}
		if err := tx.Touch(ctx, store.EntityPerson, "p002", "h002", ""); err != nil {
			return err
		}
		return put(tx, "h002", "g7")
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"v-none": "", "h000": "g9", "p001": "g1", "p002": "g7"}
	for i := range 150 {
		want[fmt.Sprintf("v%03d", i)] = fmt.Sprintf("g%d", i%3)
	}
	got := map[string]string{}
	err = s.db.Read(ctx, func(tx *sqlitex.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT entity_id, grid_id FROM feed`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, grid string
			if err := rows.Scan(&id, &grid); err != nil {
				return err
			}
			got[id] = grid
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, g := range want {
		if grid, ok := got[id]; !ok || grid != g {
			t.Errorf("entry %s filed under %q (found: %v); want %q", id, grid, ok, g)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d entries; want %d", len(got), len(want))
	}
}

// TestSnapshotLetsWritesGoOn: while a snapshot's transaction reads this
// database, the server's own writes must go through at once. (A BEGIN
// IMMEDIATE there would take the write lock of the attached database too,
// and every push would wait for the copy, then fail.)
func TestSnapshotLetsWritesGoOn(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	svc := service.New(s)
	admin, _, err := svc.CreateAdmin(ctx, "root", "")
	if err != nil {
		t.Fatal(err)
	}
	parent := ""
	for _, level := range []store.OrgLevel{store.LevelDistrict, store.LevelStreet, store.LevelCommunity, store.LevelGrid} {
		n, err := svc.CreateOrgNode(ctx, admin, store.OrgNode{ParentID: parent, Level: level, Name: "n"})
		if err != nil {
			t.Fatal(err)
		}
		parent = n.ID
	}
	w, err := svc.CreateWorker(ctx, admin, store.Worker{Name: "Wang", Role: 1, GridIDs: []string{parent}})
	if err != nil {
		t.Fatal(err)
	}
	h := syncengine.Household{ID: "0190b3c5-7a10-7000-8000-000000000001"}
	h.GridID.Value = parent
	if err := svc.Import(ctx, admin, syncengine.Bundle{Households: []syncengine.Household{h}}); err != nil {
		t.Fatal(err)
	}
	var writeErr error
	var writeTook time.Duration
	s.snapshotCopied = func() {
		began := time.Now()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		writeErr = s.db.Write(ctx, func(tx *sqlitex.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE counters SET value = value WHERE name = 'seq'`)
			return err
		})
		writeTook = time.Since(began)
	}
	_, households, release, err := s.WriteSnapshot(ctx, w.GridIDs, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if writeErr != nil {
		t.Errorf("a write during the snapshot's copy failed after %v: %v", writeTook, writeErr)
	}
	if households == 0 {
		t.Errorf("snapshot of %s holds no households", w.Name)
	}
}

// TestOpenRemovesLeftSnapshots: a server killed while sending a snapshot
// leaves the file (a copy of a worker's scope) beside its database; the
// next start removes it, and nothing else.
func TestOpenRemovesLeftSnapshots(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	left, other := path+snapshotInfix+"12345", filepath.Join(dir, "other.db"+snapshotInfix+"1")
	for _, f := range []string{left, left + "-journal", other} {
		if err := os.WriteFile(f, []byte("scope"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, f := range []string{left, left + "-journal"} {
		if _, err := os.Stat(f); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still there (%v)", filepath.Base(f), err)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another database's snapshot %s was removed: %v", filepath.Base(other), err)
	}
}

// TestOpenLeavesLiveSnapshots: a second server process opening the same
// database leaves alone the snapshot the first is sending.
func TestOpenLeavesLiveSnapshots(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "s.db")
	first, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	snap, _, release, err := first.WriteSnapshot(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if _, err := os.Stat(snap); err != nil {
		t.Fatalf("opening the database again removed the live snapshot %s: %v", filepath.Base(snap), err)
	}
	release()
	if _, err := os.Stat(snap); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a released snapshot is still there (%v)", err)
	}
}

// TestStoredVisitsSummed: the server's database sums a visit it stores
// once, through the store (no trigger does since migration 029), and links
// its special ones.
func TestStoredVisitsSummed(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var triggers []string
	err = s.db.Read(ctx, func(tx *sqlitex.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name IN ('visits', 'visit_households')
			AND sql LIKE '%AFTER INSERT%'`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				return err
			}
			triggers = append(triggers, name)
		}
		return rows.Err()
	})
	if err != nil || len(triggers) > 0 {
		t.Fatalf("triggers on a visit's insert: %v (%v)", triggers, err)
	}
	at := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	err = s.Update(ctx, func(tx store.Tx) error {
		for i, hh := range [][]string{{"h0"}, {"h0"}, {"h1", "h0"}, {"h1"}} {
			v := syncengine.Visit{ID: fmt.Sprintf("v%d", i), VisitorID: "w0", Form: syncengine.FormInPerson, HouseholdIDs: hh,
				VisitedAt: at.Add(time.Duration(i) * time.Hour), Clock: syncengine.Clock{HLC: uint64(i + 1), Node: 1}}
			if i == 3 {
				v.Materials = []syncengine.Material{syncengine.MaterialOpenLetter}
			}
			if _, err := tx.InsertVisit(ctx, &v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := statedb.CheckSums(ctx, s.db.R); err != nil {
		t.Error(err)
	}
	var links int
	if err := s.db.R.QueryRowContext(ctx, `SELECT count(*) FROM visit_special_links WHERE visit_id = 'v3' AND household_id = 'h1'`).Scan(&links); err != nil || links != 1 {
		t.Errorf("%d special links of the visit with materials (%v), want 1", links, err)
	}
}

// TestVisitKeyPlansAgree: VisitKeys sorts the scope's visits or walks the
// register's index by the scope's size; paging through either must give
// the same visits in the same order, each once, deleted households' left
// out and a group visit counted once.
func TestVisitKeyPlansAgree(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(20261203, 7))
	grids := []string{"g0", "g1", "g2", "g3"}
	visitors := []string{"w0", "w1", "w2"}
	const households, visits = 60, 400
	base := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	err = s.db.Write(ctx, func(tx *sqlitex.Tx) error {
		for i := range households {
			h := syncengine.Household{ID: fmt.Sprintf("h%03d", i)}
			h.GridID.Value = grids[rng.IntN(len(grids))]
			h.Deleted.Value = rng.IntN(10) == 0
			if err := statedb.PutHousehold(ctx, tx, &h); err != nil {
				return err
			}
		}
		for i := range visits {
			v := syncengine.Visit{ID: fmt.Sprintf("v%04d", i), VisitorID: visitors[rng.IntN(len(visitors))], Form: syncengine.FormInPerson,
				// Few distinct times: ties broken by id.
				VisitedAt: base.Add(time.Duration(rng.IntN(50)) * time.Hour), Clock: syncengine.Clock{HLC: uint64(i + 1), Node: 1}}
			for range 1 + rng.IntN(2) {
				v.HouseholdIDs = append(v.HouseholdIDs, fmt.Sprintf("h%03d", rng.IntN(households)))
			}
			v.HouseholdIDs = slices.Compact(v.HouseholdIDs)
			if _, err := statedb.InsertLinkedVisit(ctx, tx, &v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		scope := slices.Clone(grids)
		rng.Shuffle(len(scope), func(a, b int) { scope[a], scope[b] = scope[b], scope[a] })
		scope = scope[:1+rng.IntN(len(scope))]
		limit := 1 + rng.IntN(60)
		var pages [2][]store.VisitKey
		for p, byScope := range []bool{true, false} {
			var after store.VisitKey
			for {
				var page []store.VisitKey
				err := s.db.Read(ctx, func(tx *sqlitex.Tx) error {
					var err error
					page, err = visitKeys(ctx, tx, scope, after, limit, byScope)
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				pages[p] = append(pages[p], page...)
				after = page[len(page)-1]
			}
		}
		if !slices.Equal(pages[0], pages[1]) || len(pages[0]) == 0 {
			t.Fatalf("case %d (grids %v, pages of %d): sorting the scope gives %d visits, walking the index %d", i, scope, limit, len(pages[0]), len(pages[1]))
		}
		seen := map[string]bool{}
		for j, k := range pages[0] {
			if seen[k.ID] {
				t.Fatalf("case %d: visit %s twice", i, k.ID)
			}
			seen[k.ID] = true
			if j > 0 {
				p := pages[0][j-1]
				if c := cmp.Or(strings.Compare(p.VisitorID, k.VisitorID), p.At.Compare(k.At), strings.Compare(p.ID, k.ID)); c >= 0 {
					t.Fatalf("case %d: %v after %v, out of order", i, k, p)
				}
			}
		}
	}
}

// TestOpenMapsTheFile: a server's reading connections map its file, up to
// what it is told (none with 0).
func TestOpenMapsTheFile(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		opts []Option
		want string
	}{{nil, "2147418112"}, {[]Option{WithMmapSize(64 << 20)}, "67108864"}, {[]Option{WithMmapSize(0)}, "0"}} {
		s, err := Open(t.Context(), filepath.Join(t.TempDir(), "s.db"), c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := s.db.R.QueryRowContext(t.Context(), `PRAGMA mmap_size`).Scan(&got); err != nil || got != c.want {
			t.Errorf("mmap_size = %s (%v), want %s", got, err, c.want)
		}
		s.Close()
	}
}
