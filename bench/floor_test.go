package bench

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/internal/wire"
	"github.com/doorbook/doorbook/syncengine"
)

// The floor is what the rows cost with no sync machinery at all: the same
// rows inserted into a fresh file with the replica's own schema (its tables
// and indexes, the same pragmas through sqlitex), one prepared INSERT per
// table in one transaction; and the same messages marshalled and
// unmarshalled. A sync does both, one after the other, so the floor of a
// bootstrap is 1/(1/insert + 1/proto) rows per second.

// stopwatch accumulates the timed parts of a run; with a *testing.B it also
// stops the benchmark's timer between them.
type stopwatch struct {
	b     *testing.B
	total time.Duration
	start time.Time
}

func (s *stopwatch) Start() {
	if s.b != nil {
		s.b.StartTimer()
	}
	s.start = time.Now()
}

func (s *stopwatch) Stop() {
	s.total += time.Since(s.start)
	if s.b != nil {
		s.b.StopTimer()
	}
}

// floorInsert inserts the fixture's rows into a fresh replica-schema file
// in dir; only the inserts and the commit are timed.
func floorInsert(tb testing.TB, f *fixture, dir string, sw *stopwatch) (rows int) {
	tb.Helper()
	ctx := context.Background()
	ms, err := replicaMigrations()
	if err != nil {
		tb.Fatal(err)
	}
	db, err := sqlitex.Open(ctx, filepath.Join(dir, fmt.Sprintf("floor-%d.db", time.Now().UnixNano())), ms)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	sw.Start()
	tx, err := db.W.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	prep := func(q string) *sqlStmt {
		s, err := tx.PrepareContext(ctx, q)
		if err != nil {
			tb.Fatal(err)
		}
		return &sqlStmt{tb: tb, s: s}
	}
	hh := prep(`INSERT INTO households (id, grid_id, head_name, address, phone_mobile, phone_landline, responsible_worker,
		responsible_leader, responsible_unit, member_count, housing_type, notes, deleted, clocks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	ps := prep(`INSERT INTO persons (id, household_id, name, id_number, gender, birth_date, phone, relation, notes, deleted, clocks)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	ts := prep(`INSERT INTO tag_elements (add_id, household_id, category, removed, hlc, node) VALUES (?, ?, ?, ?, ?, ?)`)
	vs := prep(`INSERT INTO visits (id, visitor_id, visited_at, form, notes, hlc, node, details, revisit_due, tracked)
		VALUES (?, ?, ?, ?, ?, ?, ?, '', 0, 0)`)
	vh := prep(`INSERT INTO visit_households (household_id, visit_id, ord) VALUES (?, ?, ?)`)
	// The replica's schema keeps the sums of plain visits, which
	// storing a visit writes (until SchemaV8 a trigger did).
	sums := prep(statedb.SumPlainVisit)
	sw.Stop()
	err = f.bundles(func(b *syncengine.Bundle) error {
		sw.Start()
		defer sw.Stop()
		for i := range b.Households {
			h := &b.Households[i]
			hh.exec(ctx, h.ID, h.GridID.Value, h.HeadName.Value, h.Address.Value, h.PhoneMobile.Value, h.PhoneLandline.Value,
				h.ResponsibleWorker.Value, h.ResponsibleLeader.Value, h.ResponsibleUnit.Value, h.MemberCount.Value,
				h.HousingType.Value, h.Notes.Value, h.Deleted.Value, syncengine.EncodeClocks(h.Clocks()))
		}
		for i := range b.Persons {
			p := &b.Persons[i]
			ps.exec(ctx, p.ID, p.HouseholdID, p.Name.Value, p.IDNumber.Value, p.Gender.Value, p.BirthDate.Value, p.Phone.Value,
				p.Relation.Value, p.Notes.Value, p.Deleted.Value, syncengine.EncodeClocks(p.Clocks()))
		}
		for _, t := range b.Tags {
			ts.exec(ctx, t.AddID, t.HouseholdID, t.Category, t.Removed, int64(t.Clock.HLC), int64(t.Clock.Node))
		}
		for i := range b.Visits {
			v := &b.Visits[i]
			vs.exec(ctx, v.ID, v.VisitorID, v.VisitedAt.UnixMilli(), v.Form, v.Notes, int64(v.Clock.HLC), int64(v.Clock.Node))
			for j, h := range v.HouseholdIDs {
				vh.exec(ctx, h, v.ID, j)
				sums.exec(ctx, h, v.VisitorID, v.VisitedAt.UnixMilli(), v.ID)
			}
		}
		rows += b.Rows()
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	sw.Start()
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	sw.Stop()
	return rows
}

type sqlStmt struct {
	tb testing.TB
	s  *sql.Stmt
}

func (s *sqlStmt) exec(ctx context.Context, args ...any) {
	if _, err := s.s.ExecContext(ctx, args...); err != nil {
		s.tb.Fatal(err)
	}
}

// pages splits a grid's rows into bootstrap pages of 200 households (the
// SDK's page), each with its households' persons, tags and visits.
func pages(b *syncengine.Bundle) []*pb.BootstrapResponse {
	const page = 200
	rows := wire.BundleToProto(b)
	var out []*pb.BootstrapResponse
	at := map[string]*pb.BootstrapResponse{}
	for i, h := range rows.Households {
		if i%page == 0 {
			out = append(out, &pb.BootstrapResponse{})
		}
		m := out[len(out)-1]
		m.Households = append(m.Households, h)
		m.LastHouseholdId = h.GetId()
		at[h.GetId()] = m
	}
	for _, p := range rows.Persons {
		m := at[p.GetHouseholdId()]
		m.Persons = append(m.Persons, p)
	}
	for _, t := range rows.Tags {
		m := at[t.GetHouseholdId()]
		m.Tags = append(m.Tags, t)
	}
	for _, v := range rows.Visits {
		m := at[v.GetHouseholdIds()[0]]
		m.Visits = append(m.Visits, v)
	}
	return out
}

// pushes splits a grid's rows into push requests of 500 changes (the SDK's
// batch), one change per row as a phone's outbox holds them.
func pushes(b *syncengine.Bundle) []*pb.PushRequest {
	var changes []*pb.Change
	for _, c := range changesOf(b) {
		changes = append(changes, wire.ChangeToProto(&c))
	}
	var out []*pb.PushRequest
	for len(changes) > 0 {
		n := min(500, len(changes))
		out = append(out, &pb.PushRequest{Changes: changes[:n]})
		changes = changes[n:]
	}
	return out
}

// changesOf is one change per row of b, ids from the rows' own (stable).
func changesOf(b *syncengine.Bundle) []syncengine.Change {
	var out []syncengine.Change
	for i := range b.Households {
		out = append(out, syncengine.Change{ID: b.Households[i].ID, Household: &b.Households[i]})
	}
	for i := range b.Persons {
		out = append(out, syncengine.Change{ID: b.Persons[i].ID, Person: &b.Persons[i]})
	}
	for i := range b.Tags {
		out = append(out, syncengine.Change{ID: b.Tags[i].AddID, Tag: &b.Tags[i]})
	}
	for i := range b.Visits {
		out = append(out, syncengine.Change{ID: b.Visits[i].ID, Visit: &b.Visits[i]})
	}
	return out
}

// floorProto marshals and unmarshals the fixture's rows as bootstrap pages
// (push false) or push requests (push true); only that is timed. bytes is
// the marshalled size.
func floorProto(tb testing.TB, f *fixture, push bool, sw *stopwatch) (rows int, bytes int64) {
	tb.Helper()
	var buf []byte
	err := f.bundles(func(b *syncengine.Bundle) error {
		var msgs []proto.Message
		if push {
			for _, m := range pushes(b) {
				msgs = append(msgs, m)
			}
		} else {
			for _, m := range pages(b) {
				msgs = append(msgs, m)
			}
		}
		sw.Start()
		defer sw.Stop()
		for _, m := range msgs {
			var err error
			buf, err = proto.MarshalOptions{}.MarshalAppend(buf[:0], m)
			if err != nil {
				return err
			}
			bytes += int64(len(buf))
			out := m.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(buf, out); err != nil {
				return err
			}
		}
		rows += b.Rows()
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return rows, bytes
}

// floorRates is the floor of the current process, measured once: rows per
// second of the insert, of bootstrap pages' protobuf and of push requests'.
type floorRates struct {
	Insert, ProtoPages, ProtoPush float64
}

// Bootstrap and Push are the combined floors.
func (r floorRates) Bootstrap() float64 { return 1 / (1/r.Insert + 1/r.ProtoPages) }
func (r floorRates) Push() float64      { return 1 / (1/r.Insert + 1/r.ProtoPush) }

var (
	floorMu    sync.Mutex
	floorCache = map[string]floorRates{}
)

// floor measures (once per size and process) the floor, the best of a few
// runs (one at street size).
func floor(tb testing.TB, f *fixture) floorRates {
	tb.Helper()
	floorMu.Lock()
	defer floorMu.Unlock()
	if r, ok := floorCache[f.Size.Name]; ok {
		return r
	}
	runs := 3
	if f.Size.Households() > 10000 {
		runs = 1
	}
	var r floorRates
	dir := tb.TempDir()
	for range runs {
		sw := &stopwatch{}
		n := floorInsert(tb, f, dir, sw)
		r.Insert = max(r.Insert, float64(n)/sw.total.Seconds())
		sw = &stopwatch{}
		n, _ = floorProto(tb, f, false, sw)
		r.ProtoPages = max(r.ProtoPages, float64(n)/sw.total.Seconds())
		sw = &stopwatch{}
		n, _ = floorProto(tb, f, true, sw)
		r.ProtoPush = max(r.ProtoPush, float64(n)/sw.total.Seconds())
	}
	floorCache[f.Size.Name] = r
	tb.Logf("%s floor: insert %.0f rows/s, protobuf %.0f rows/s (bootstrap pages), %.0f rows/s (push requests); bootstrap floor %.0f rows/s, push floor %.0f rows/s",
		f.Size.Name, r.Insert, r.ProtoPages, r.ProtoPush, r.Bootstrap(), r.Push())
	return r
}

// BenchmarkFloorInsert: the fixture's rows into a fresh file, one prepared
// INSERT per table, one transaction (generating the rows is not timed).
func BenchmarkFloorInsert(b *testing.B) {
	f := getFixture(b, currentSize(b))
	dir := b.TempDir()
	sw := &stopwatch{b: b}
	rows := 0
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		rows += floorInsert(b, f, dir, sw)
	}
	b.ReportMetric(float64(rows)/sw.total.Seconds(), "rows/s")
}

// BenchmarkFloorProto: the same rows as protobuf messages, marshalled and
// unmarshalled: as bootstrap pages of 200 households, and as push requests
// of 500 changes.
func BenchmarkFloorProto(b *testing.B) {
	f := getFixture(b, currentSize(b))
	for _, push := range []bool{false, true} {
		b.Run(map[bool]string{false: "pages", true: "push"}[push], func(b *testing.B) {
			sw := &stopwatch{b: b}
			var rows int
			var bytes int64
			b.ResetTimer()
			b.StopTimer()
			for range b.N {
				n, m := floorProto(b, f, push, sw)
				rows, bytes = rows+n, bytes+m
			}
			b.ReportMetric(float64(rows)/sw.total.Seconds(), "rows/s")
			b.ReportMetric(float64(bytes)/sw.total.Seconds()/1e6, "MB/s")
		})
	}
}
