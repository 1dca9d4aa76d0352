package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/internal/wire"
	"github.com/doorbook/doorbook/syncengine"
)

// fakePull is a sync service whose Pull answers one response; nothing else
// is called by pull.
type fakePull struct {
	doorbookv1connect.SyncServiceClient
	res   *pb.PullResponse
	calls int
}

func (f *fakePull) Pull(ctx context.Context, req *pb.PullRequest) (*pb.PullResponse, error) {
	f.calls++
	if f.calls > 1 {
		return nil, errors.New("fakePull: pulled twice")
	}
	return f.res, nil
}

// Fixed ids of the fuzz replica: the worker, two grids of theirs and one
// not, households (1 and 2 in grid A, 3 in grid B), a person, tags, visits
// and an amendment.
const (
	fzWorker   = "01950000-0000-7000-8000-0000000f0001"
	fzGridA    = "01950000-0000-7000-8000-0000000f00a1"
	fzGridB    = "01950000-0000-7000-8000-0000000f00b1"
	fzGridC    = "01950000-0000-7000-8000-0000000f00c1"
	fzHH1      = "01950000-0000-7000-8000-0000000f0101"
	fzHH2      = "01950000-0000-7000-8000-0000000f0102"
	fzHH3      = "01950000-0000-7000-8000-0000000f0103"
	fzHH4      = "01950000-0000-7000-8000-0000000f0104"
	fzPerson   = "01950000-0000-7000-8000-0000000f0201"
	fzTag      = "01950000-0000-7000-8000-0000000f0301"
	fzVisit    = "01950000-0000-7000-8000-0000000f0401"
	fzGroup    = "01950000-0000-7000-8000-0000000f0402"
	fzAmend    = "01950000-0000-7000-8000-0000000f0501"
	fzCampaign = "01950000-0000-7000-8000-0000000f0601"
)

var fzTime = time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)

func fzClock(n uint16) syncengine.Clock {
	return syncengine.Clock{HLC: syncengine.PackHLC(fzTime.UnixMilli(), n), Node: 0xf0}
}

// fzBase is the first batch the fuzz replica applies: its scope and what is
// in it.
func fzBase() *pb.PullResponse {
	hh := func(id, grid, head string, n uint16) syncengine.Household {
		return syncengine.Household{ID: id, GridID: syncengine.NewRegister(grid, fzClock(n)), HeadName: syncengine.NewRegister(head, fzClock(n))}
	}
	b := syncengine.Bundle{
		Households: []syncengine.Household{hh(fzHH1, fzGridA, "one", 1), hh(fzHH2, fzGridA, "two", 2), hh(fzHH3, fzGridB, "three", 3)},
		Persons:    []syncengine.Person{{ID: fzPerson, HouseholdID: fzHH1, Name: syncengine.NewRegister("resident", fzClock(4))}},
		Tags:       []syncengine.TagElement{{AddID: fzTag, HouseholdID: fzHH1, Category: "elderly", Clock: fzClock(5)}},
		Visits: []syncengine.Visit{
			{ID: fzVisit, HouseholdIDs: []string{fzHH1}, VisitorID: fzWorker, VisitedAt: fzTime, Form: syncengine.FormInPerson, Clock: fzClock(6),
				Findings: []syncengine.Finding{{Kind: syncengine.FindingHazard, Note: "wiring"}}},
			{ID: fzGroup, HouseholdIDs: []string{fzHH1, fzHH3}, VisitorID: fzWorker, VisitedAt: fzTime, Form: syncengine.FormTalk, Clock: fzClock(7)},
		},
		Amendments: []syncengine.Amendment{{ID: fzAmend, VisitID: fzVisit, AuthorID: fzWorker, Kind: syncengine.AmendCorrect, Reason: "typo", Notes: new("fixed"), Clock: fzClock(8)}},
	}
	rows := wire.BundleToProto(&b)
	return &pb.PullResponse{
		Households: rows.Households, Persons: rows.Persons, Tags: rows.Tags, Visits: rows.Visits, VisitAmendments: rows.Amendments,
		Cursor: 10,
		Scope: &pb.Scope{
			Worker: &pb.Worker{Id: fzWorker, Name: "me", Role: pb.WorkerRole_WORKER_ROLE_GRID_WORKER, GridIds: []string{fzGridA, fzGridB}},
			Grids:  []*pb.OrgNode{{Id: fzGridA, Level: pb.OrgLevel_ORG_LEVEL_GRID, Name: "A"}, {Id: fzGridB, Level: pb.OrgLevel_ORG_LEVEL_GRID, Name: "B"}},
		},
		Categories: refProto(syncengine.Reference{Categories: []syncengine.Category{{Code: "elderly", NameEN: syncengine.NewRegister("Elderly", fzClock(9))}}}),
	}
}

func refProto(r syncengine.Reference) []*pb.Category {
	cats, _ := wire.ReferenceToProto(&r)
	return cats
}

// newFuzzReplicaFile makes the replica every fuzz input starts from, at
// path: enrolled (as Enroll leaves sync_state, without a server), the base
// batch applied through pull, and a local edit of household 2 not yet
// pushed.
func newFuzzReplicaFile(tb testing.TB, path string) {
	tb.Helper()
	ctx := context.Background()
	r, err := Open(ctx, path)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	err = r.db.Write(ctx, func(tx *sqlitex.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE sync_state SET server_url = ?, device_id = ?, token = ?, worker_id = ?, worker_name = ? WHERE id = 1`,
			"http://fake.invalid", "01950000-0000-7000-8000-0000000f0d01", "token", fzWorker, "me")
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	var rep SyncReport
	if err := r.pull(ctx, clients{sync: &fakePull{res: fzBase()}}, &rep, nil); err != nil {
		tb.Fatalf("base pull: %v", err)
	}
	if err := r.EditHousehold(ctx, fzHH2, map[string]string{"notes": "not pushed yet"}); err != nil {
		tb.Fatal(err)
	}
	if n, err := r.Pending(ctx); err != nil || n != 1 {
		tb.Fatalf("pending after the local edit: %d, %v", n, err)
	}
}

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	in, err := os.Open(from)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}

// fuzzReplica is the replica under test, reset to the base file after any
// input that changed it.
type fuzzReplica struct {
	base, path string
	r          *Replica
}

func (f *fuzzReplica) reset(tb testing.TB) {
	tb.Helper()
	if f.r != nil {
		f.r.Close()
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(f.path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			tb.Fatal(err)
		}
	}
	copyFile(tb, f.base, f.path)
	var err error
	if f.r, err = Open(context.Background(), f.path); err != nil {
		tb.Fatal(err)
	}
}

// replicaDump is every row of every table of the replica, rendered.
func replicaDump(tb testing.TB, r *Replica) map[string][]string {
	tb.Helper()
	ctx := context.Background()
	names, err := r.db.R.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		tb.Fatal(err)
	}
	var tables []string
	for names.Next() {
		var n string
		if err := names.Scan(&n); err != nil {
			tb.Fatal(err)
		}
		tables = append(tables, n)
	}
	if err := names.Close(); err != nil {
		tb.Fatal(err)
	}
	out := map[string][]string{}
	for _, table := range tables {
		rows, err := r.db.R.QueryContext(ctx, `SELECT * FROM "`+table+`"`)
		if err != nil {
			tb.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			tb.Fatal(err)
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				tb.Fatal(err)
			}
			out[table] = append(out[table], fmt.Sprintf("%q", vals))
		}
		if err := rows.Close(); err != nil {
			tb.Fatal(err)
		}
		sort.Strings(out[table])
	}
	return out
}

func diffReplicaDumps(before, after map[string][]string) string {
	var b strings.Builder
	for table, rows := range after {
		if slices.Equal(before[table], rows) {
			continue
		}
		fmt.Fprintf(&b, "table %s: %d rows before, %d after\n", table, len(before[table]), len(rows))
		for _, r := range rows {
			if !slices.Contains(before[table], r) {
				fmt.Fprintf(&b, "  + %s\n", r)
			}
		}
		for _, r := range before[table] {
			if !slices.Contains(rows, r) {
				fmt.Fprintf(&b, "  - %s\n", r)
			}
		}
	}
	return b.String()
}

func integrityOK(tb testing.TB, r *Replica) {
	tb.Helper()
	var res string
	if err := r.db.R.QueryRowContext(context.Background(), `PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
		tb.Fatalf("PRAGMA integrity_check = %q, %v", res, err)
	}
	if err := statedb.CheckSums(context.Background(), r.db.R); err != nil {
		tb.Fatal(err)
	}
}

// checkApplied checks that the replica holds every row of an applied batch
// (merging it into the stored row changes nothing), that evicted households
// not sent again are gone, and that the cursor is the batch's.
func checkApplied(tb testing.TB, r *Replica, res *pb.PullResponse, b *syncengine.Bundle) {
	tb.Helper()
	ctx, q := context.Background(), r.db.R
	st, err := readState(ctx, q)
	if err != nil {
		tb.Fatal(err)
	}
	if st.Cursor != res.GetCursor() {
		tb.Fatalf("cursor %d after applying a batch with cursor %d", st.Cursor, res.GetCursor())
	}
	for _, h := range b.Households {
		got, ok, err := statedb.GetHousehold(ctx, q, h.ID)
		if err != nil || !ok {
			tb.Fatalf("household %s of the batch: found %v, %v", h.ID, ok, err)
		}
		if merged := got; merged.Merge(h) {
			tb.Fatalf("household %s does not hold the batch's row:\nstored %+v\nbatch  %+v", h.ID, got, h)
		}
	}
	for _, p := range b.Persons {
		got, ok, err := statedb.GetPerson(ctx, q, p.ID)
		if err != nil || !ok {
			tb.Fatalf("person %s of the batch: found %v, %v", p.ID, ok, err)
		}
		if merged := got; merged.Merge(p) {
			tb.Fatalf("person %s does not hold the batch's row:\nstored %+v\nbatch  %+v", p.ID, got, p)
		}
	}
	for _, t := range b.Tags {
		got, err := statedb.Tags(ctx, q, []string{t.AddID})
		if err != nil || len(got) != 1 {
			tb.Fatalf("tag %s of the batch: %+v, %v", t.AddID, got, err)
		}
		if merged := got[0]; merged.Merge(t) {
			tb.Fatalf("tag %s does not hold the batch's row:\nstored %+v\nbatch  %+v", t.AddID, got[0], t)
		}
	}
	for _, v := range b.Visits {
		got, err := statedb.Visits(ctx, q, []string{v.ID})
		if err != nil || len(got) != 1 || !got[0].Equal(&v) {
			tb.Fatalf("visit %s of the batch: stored %+v, %v; want %+v", v.ID, got, err, v)
		}
	}
	for _, a := range b.Amendments {
		got, err := statedb.Amendments(ctx, q, []string{a.ID})
		if err != nil || len(got) != 1 || !got[0].Equal(&a) {
			tb.Fatalf("amendment %s of the batch: stored %+v, %v; want %+v", a.ID, got, err, a)
		}
	}
	for _, id := range res.GetEvictedHouseholdIds() {
		if slices.ContainsFunc(b.Households, func(h syncengine.Household) bool { return h.ID == id }) {
			continue // evicted, then sent again in the same batch
		}
		if _, ok, err := statedb.GetHousehold(ctx, q, id); err != nil || ok {
			tb.Fatalf("household %s evicted by the batch: still there %v, %v", id, ok, err)
		}
	}
}

// pullSeeds are batches, encoded: ordinary ones (new rows, edits, tags,
// amendments, reference data, evictions, added grids) and bad ones (a row
// that does not validate, a visit rewritten, the eviction of a household
// with an unsent change).
func pullSeeds() [][]byte {
	var out [][]byte
	add := func(res *pb.PullResponse) { out = append(out, must(proto.Marshal(res))) }
	rows := func(b syncengine.Bundle, cursor uint64) *pb.PullResponse {
		r := wire.BundleToProto(&b)
		return &pb.PullResponse{Households: r.Households, Persons: r.Persons, Tags: r.Tags, Visits: r.Visits, VisitAmendments: r.Amendments, Cursor: cursor}
	}
	newHH := syncengine.Household{ID: fzHH4, GridID: syncengine.NewRegister(fzGridA, fzClock(20)), HeadName: syncengine.NewRegister("four", fzClock(20)), MemberCount: syncengine.NewRegister[int64](3, fzClock(20))}
	edit := syncengine.Household{ID: fzHH1, Address: syncengine.NewRegister("1 Elm St", fzClock(21)), Deleted: syncengine.NewRegister(true, fzClock(21))}
	visit := syncengine.Visit{ID: "01950000-0000-7000-8000-0000000f0403", HouseholdIDs: []string{fzHH4}, VisitorID: fzWorker, VisitedAt: fzTime, Form: syncengine.FormPhone, Clock: fzClock(22),
		Materials: []syncengine.Material{syncengine.MaterialOpenLetter}, RevisitReasons: []syncengine.RevisitReason{syncengine.RevisitImportantRequest}, RevisitDue: fzTime.AddDate(0, 0, 7),
		CampaignID: fzCampaign, Answers: []syncengine.SurveyAnswer{{Question: "q1", Value: 3}}}
	assign := syncengine.Amendment{ID: "01950000-0000-7000-8000-0000000f0502", VisitID: fzVisit, AuthorID: fzWorker, Kind: syncengine.AmendItemAssign, Reason: "to the unit", Unit: "housing", Deadline: fzTime.AddDate(0, 0, 14), Clock: fzClock(23)}

	// Ordinary batches.
	add(rows(syncengine.Bundle{
		Households: []syncengine.Household{newHH, edit},
		Persons:    []syncengine.Person{{ID: "01950000-0000-7000-8000-0000000f0202", HouseholdID: fzHH4, Name: syncengine.NewRegister("p", fzClock(20))}},
		Tags: []syncengine.TagElement{
			{AddID: "01950000-0000-7000-8000-0000000f0302", HouseholdID: fzHH4, Category: "disabled", Clock: fzClock(20)},
			{AddID: fzTag, HouseholdID: fzHH1, Category: "elderly", Removed: true, Clock: fzClock(5)},
		},
		Visits:     []syncengine.Visit{visit},
		Amendments: []syncengine.Amendment{assign},
	}, 11))
	evict := rows(syncengine.Bundle{}, 12)
	evict.EvictedHouseholdIds = []string{fzHH3}
	add(evict)
	evictGrid := rows(syncengine.Bundle{}, 13)
	evictGrid.EvictedGridIds, evictGrid.AddedGridIds = []string{fzGridB}, []string{fzGridC}
	evictGrid.Scope = &pb.Scope{Worker: &pb.Worker{Id: fzWorker, Name: "me", GridIds: []string{fzGridA, fzGridC}},
		Grids: []*pb.OrgNode{{Id: fzGridA, Level: pb.OrgLevel_ORG_LEVEL_GRID, Name: "A"}, {Id: fzGridC, Level: pb.OrgLevel_ORG_LEVEL_GRID, Name: "C"}}}
	add(evictGrid)
	// Evicted and sent again in the same batch (moved out and back).
	back := rows(syncengine.Bundle{Households: []syncengine.Household{{ID: fzHH3, HeadName: syncengine.NewRegister("back", fzClock(30))}}}, 14)
	back.EvictedHouseholdIds = []string{fzHH3}
	add(back)
	ref := rows(syncengine.Bundle{}, 15)
	ref.ServerHlc = fzClock(40).HLC
	ref.Categories, ref.Campaigns = wire.ReferenceToProto(&syncengine.Reference{
		Categories: []syncengine.Category{{Code: "disabled", NameEN: syncengine.NewRegister("Disabled", fzClock(40)), RevisitDays: syncengine.NewRegister[int64](30, fzClock(40))}},
		Campaigns: []syncengine.Campaign{{ID: fzCampaign, NodeID: syncengine.NewRegister(fzGridA, fzClock(40)), Name: syncengine.NewRegister("Summer", fzClock(40)),
			StartsAt: syncengine.NewRegister(fzTime.UnixMilli(), fzClock(40)), EndsAt: syncengine.NewRegister(fzTime.AddDate(0, 3, 0).UnixMilli(), fzClock(40))}},
	})
	add(ref)
	// The same batch again (a response applied twice), and an empty one.
	add(rows(syncengine.Bundle{Households: []syncengine.Household{edit}}, 10))
	add(&pb.PullResponse{})

	// Bad batches: nothing may change.
	add(rows(syncengine.Bundle{Households: []syncengine.Household{newHH, {ID: "not-a-uuid"}}}, 16))
	rewritten := rows(syncengine.Bundle{Households: []syncengine.Household{newHH}, Visits: []syncengine.Visit{{ID: fzVisit, HouseholdIDs: []string{fzHH1}, VisitorID: fzWorker, VisitedAt: fzTime, Form: syncengine.FormPhone, Clock: fzClock(6)}}}, 17)
	add(rewritten)
	pending := rows(syncengine.Bundle{Households: []syncengine.Household{newHH}}, 18)
	pending.EvictedHouseholdIds = []string{fzHH2}
	add(pending)
	pendingGrid := rows(syncengine.Bundle{Households: []syncengine.Household{newHH}}, 19)
	pendingGrid.EvictedGridIds = []string{fzGridA}
	add(pendingGrid)
	badRef := rows(syncengine.Bundle{Households: []syncengine.Household{newHH}}, 20)
	badRef.Categories = refProto(syncengine.Reference{Categories: []syncengine.Category{{Code: "bad code!", NameEN: syncengine.NewRegister("x", fzClock(41))}}})
	add(badRef)
	return out
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// FuzzApplyPull applies the input, decoded as a PullResponse (its More
// cleared), to a real replica file through pull, the function Sync uses,
// with a fake server that answers it. The replica is enrolled, holds three
// households of two grids with a person, a tag, visits and an amendment,
// and an unsent edit of household 2; every input starts from that file.
// Whatever the input: no panic, PRAGMA integrity_check stays ok; a batch
// refused (an error) leaves every table as it was, cursor included; a batch
// applied is all there (each row absorbed, evicted households gone) and the
// cursor is its own.
//
// Run: go test -run XXX -fuzz '^FuzzApplyPull$' -fuzztime 10s -parallel 1 ./client-sdk
func FuzzApplyPull(f *testing.F) {
	for _, s := range pullSeeds() {
		f.Add(s)
	}
	dir := f.TempDir()
	fr := &fuzzReplica{base: filepath.Join(dir, "base.db"), path: filepath.Join(dir, "replica.db")}
	newFuzzReplicaFile(f, fr.base)
	fr.reset(f)
	f.Cleanup(func() { fr.r.Close() })
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		var res pb.PullResponse
		if err := proto.Unmarshal(data, &res); err != nil {
			return // the client refuses it before pull sees it
		}
		res.More = false
		before := replicaDump(t, fr.r)
		var rep SyncReport
		fake := &fakePull{res: &res}
		err := fr.r.pull(ctx, clients{sync: fake}, &rep, nil)
		integrityOK(t, fr.r)
		if err != nil {
			t.Logf("batch refused: %v", err)
			if after := replicaDump(t, fr.r); !reflect.DeepEqual(before, after) {
				t.Fatalf("a refused batch (%v) changed the replica:\n%s", err, diffReplicaDumps(before, after))
			}
			return
		}
		b := wire.BundleFromProto(wire.Rows{Households: res.GetHouseholds(), Persons: res.GetPersons(), Tags: res.GetTags(), Visits: res.GetVisits(), Amendments: res.GetVisitAmendments()})
		if verr := b.Validate(); verr != nil {
			t.Fatalf("a batch with an invalid row was applied: %v", verr)
		}
		t.Logf("batch applied: %d rows, cursor %d", b.Rows(), res.GetCursor())
		checkApplied(t, fr.r, &res, &b)
		if after := replicaDump(t, fr.r); !reflect.DeepEqual(before, after) {
			fr.reset(t)
		}
	})
}
