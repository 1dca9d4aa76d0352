package e2e

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	sdk "github.com/doorbook/doorbook/client-sdk"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/internal/demo"
	"github.com/doorbook/doorbook/internal/pgtest"
	"github.com/doorbook/doorbook/internal/wire"
	"github.com/doorbook/doorbook/syncengine"
)

var (
	flagSeed  = flag.Uint64("e2e.seed", 0, "run only the randomised schedule with this seed")
	flagSeeds = flag.Int("e2e.seeds", 8, "how many randomised schedules to run")
	flagSteps = flag.Int("e2e.steps", 60, "operations per randomised schedule")
)

func seeds() []uint64 {
	if *flagSeed != 0 {
		return []uint64{*flagSeed}
	}
	var out []uint64
	for i := range *flagSeeds {
		out = append(out, uint64(1000+i))
	}
	return out
}

// TestConvergence runs randomised schedules: four workers' replicas (two
// sharing grid 0, one spanning both grids) edit the same households offline
// — fields, persons, tags, visits, amendments, deletes — while they sync in
// random order and the admin moves households between grids and changes a
// worker's grids. At the end every replica holds exactly the server's
// state for its scope, and the server holds exactly what the merge rules
// make of every change any replica made: nothing lost, nothing doubled.
//
// Reproduce a failure with: go test ./e2e -run TestConvergence -e2e.seed=N
// Run more with: go test ./e2e -run TestConvergence -e2e.seeds=200 -e2e.steps=300
func TestConvergence(t *testing.T) {
	t.Parallel()
	for _, seed := range seeds() {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			runSchedule(t, seed, *flagSteps, "")
		})
	}
}

// TestConvergencePostgres runs the same schedules on PostgreSQL: the
// server's behaviour is the same on either backend.
func TestConvergencePostgres(t *testing.T) {
	t.Parallel()
	for _, seed := range seeds()[:min(4, len(seeds()))] {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			runSchedule(t, seed, *flagSteps, pgtest.Start(t))
		})
	}
}

type actor struct {
	name   string
	worker string
	grids  []string
	r      *sdk.Replica
}

type schedule struct {
	t      *testing.T
	ctx    context.Context
	e      *env
	rng    *rand.Rand
	m      *model
	actors []*actor
	log    []string
}

func (s *schedule) logf(format string, args ...any) {
	s.log = append(s.log, fmt.Sprintf(format, args...))
}

func (s *schedule) fatalf(format string, args ...any) {
	s.t.Helper()
	tail := s.log[max(0, len(s.log)-25):]
	s.t.Fatalf("%s\nlast steps:\n  %s", fmt.Sprintf(format, args...), joinLines(tail))
}

func joinLines(lines []string) string {
	out := ""
	for i, l := range lines {
		if i > 0 {
			out += "\n  "
		}
		out += l
	}
	return out
}

// runSchedule runs one schedule on a SQLite file, or on the PostgreSQL
// database of pgDSN.
func runSchedule(t *testing.T, seed uint64, steps int, pgDSN string) {
	t.Logf("seed %d (reproduce: go test ./e2e -run 'TestConvergence/%d' -e2e.seed=%d)", seed, seed, seed)
	ctx := context.Background()
	e := newEnvOn(t, 2, pgDSN)
	s := &schedule{t: t, ctx: ctx, e: e, rng: rand.New(rand.NewPCG(seed, seed)), m: newModel()}
	g0, g1 := e.Grids[0], e.Grids[1]
	for _, a := range []struct {
		name  string
		grids []string
	}{{"a", []string{g0}}, {"b", []string{g0, g1}}, {"c", []string{g1}}, {"d", []string{g0}}} {
		id, _ := e.worker(a.name, a.grids...)
		s.actors = append(s.actors, &actor{name: a.name, worker: id, grids: a.grids, r: e.device(a.name, id)})
	}
	// A few households to start from, loaded by the admin.
	admin, err := e.Store.Authenticate(ctx, e.adminToken)
	if err != nil {
		t.Fatal(err)
	}
	gen := demo.NewGenerator(seed, time.Now().Add(-time.Hour))
	for _, g := range e.Grids {
		b := gen.Grid(g, demo.Shape{HouseholdsPerGrid: 3, PersonsPerHousehold: 1}, "", "")
		if err := e.Store.Import(ctx, admin, b); err != nil {
			t.Fatal(err)
		}
		s.m.bundle(b)
	}
	for _, a := range s.actors {
		s.sync(a)
	}
	for step := range steps {
		a := s.actors[s.rng.IntN(len(s.actors))]
		switch x := s.rng.IntN(100); {
		case x < 55:
			s.write(a, step)
		case x < 90:
			s.sync(a)
		case x < 95:
			s.move()
		default:
			s.regrid()
		}
	}
	// Quiesce: everyone syncs, in random order, until nothing moves.
	for round := 0; round < 3; round++ {
		for _, i := range s.rng.Perm(len(s.actors)) {
			s.sync(s.actors[i])
		}
	}
	s.check()
}

func (s *schedule) sync(a *actor) {
	s.t.Helper()
	out, err := a.r.Outbox(s.ctx)
	if err != nil {
		s.fatalf("outbox %s: %v", a.name, err)
	}
	for _, c := range out {
		s.m.change(c)
	}
	rep, err := a.r.Sync(s.ctx)
	if err != nil {
		s.fatalf("sync %s: %v", a.name, err)
	}
	s.logf("sync %s: %+v", a.name, rep)
}

var (
	editableFields = []string{"head_name", "address", "phone_mobile", "notes", "member_count", "responsible_unit"}
	fieldValues    = []string{"1", "2", "甲", "乙", "丙", "x"}
	categories     = []string{"petitioner", "key_person", "vulnerable"}
)

func (s *schedule) pick(ids []string) string { return ids[s.rng.IntN(len(ids))] }

// write makes one random offline change on a's replica.
func (s *schedule) write(a *actor, step int) {
	s.t.Helper()
	ctx := s.ctx
	hs, err := a.r.Households(ctx)
	if err != nil {
		s.fatalf("households: %v", err)
	}
	var ids []string
	for _, h := range hs {
		ids = append(ids, h.ID)
	}
	if len(ids) == 0 || s.rng.IntN(12) == 0 {
		grids, err := a.r.Grids(ctx)
		if err != nil || len(grids) == 0 {
			return
		}
		id, err := a.r.RegisterHousehold(ctx, grids[s.rng.IntN(len(grids))].ID, map[string]string{"head_name": fmt.Sprintf("new-%d", step)})
		if err != nil {
			s.fatalf("register: %v", err)
		}
		s.logf("%s registers %s", a.name, id)
		return
	}
	h := s.pick(ids)
	var what string
	switch x := s.rng.IntN(100); {
	case x < 30:
		f := editableFields[s.rng.IntN(len(editableFields))]
		v := fieldValues[s.rng.IntN(len(fieldValues))]
		if f == "member_count" {
			v = fmt.Sprint(s.rng.IntN(6))
		}
		what, err = "edit "+f+"="+v, a.r.EditHousehold(ctx, h, map[string]string{f: v})
	case x < 33:
		what, err = "delete", a.r.DeleteHousehold(ctx, h)
	case x < 43:
		c := categories[s.rng.IntN(len(categories))]
		what, err = "tag add "+c, a.r.AddTag(ctx, h, c)
	case x < 53:
		d, derr := a.r.Household(ctx, h)
		if derr != nil || len(d.Categories) == 0 {
			return
		}
		c := d.Categories[s.rng.IntN(len(d.Categories))]
		what, err = "tag remove "+c, a.r.RemoveTag(ctx, h, c)
	case x < 63:
		_, err = a.r.AddPerson(ctx, h, map[string]string{"name": fmt.Sprintf("p%d", step), "relation": "child"})
		what = "person add"
	case x < 68:
		d, derr := a.r.Household(ctx, h)
		if derr != nil || len(d.Persons) == 0 {
			return
		}
		p := d.Persons[s.rng.IntN(len(d.Persons))]
		what, err = "person edit", a.r.EditPerson(ctx, p.ID, map[string]string{"phone": fieldValues[s.rng.IntN(len(fieldValues))]})
	case x < 85:
		in := sdk.VisitInput{HouseholdIDs: []string{h}, Form: syncengine.FormInPerson, Notes: fmt.Sprintf("visit %d", step)}
		if other := s.pick(ids); other != h && s.rng.IntN(3) == 0 {
			in.HouseholdIDs, in.Form = append(in.HouseholdIDs, other), syncengine.FormOpinionMeeting
		}
		_, err = a.r.RecordVisit(ctx, in)
		what = fmt.Sprintf("visit %v", in.HouseholdIDs)
	default:
		d, derr := a.r.Household(ctx, h)
		if derr != nil {
			return
		}
		// Only a visit's visitor corrects or voids it.
		own := slices.DeleteFunc(slices.Clone(d.Visits), func(v syncengine.VisitView) bool { return v.VisitorID != a.worker })
		if len(own) == 0 {
			return
		}
		v := own[s.rng.IntN(len(own))]
		if s.rng.IntN(2) == 0 {
			notes := fmt.Sprintf("corrected %d", step)
			_, err = a.r.AmendVisit(ctx, v.ID, "typo", sdk.Correction{Notes: &notes})
			what = "amend " + v.ID
		} else {
			_, err = a.r.VoidVisit(ctx, v.ID, "wrong household")
			what = "void " + v.ID
		}
	}
	if err != nil {
		s.fatalf("%s %s on %s: %v", a.name, what, h, err)
	}
	s.logf("%s %s on %s", a.name, what, h)
}

// move has the admin put a random household in the other grid.
func (s *schedule) move() {
	s.t.Helper()
	all := s.e.serverState()
	if len(all.Households) == 0 {
		return
	}
	h := all.Households[s.rng.IntN(len(all.Households))]
	to := s.e.Grids[0]
	if h.GridID.Value == to {
		to = s.e.Grids[1]
	}
	res, err := s.e.Admin.MoveHousehold(s.ctx, &pb.MoveHouseholdRequest{HouseholdId: h.ID, GridId: to})
	if err != nil {
		s.fatalf("move: %v", err)
	}
	s.m.household(wire.HouseholdFromProto(res.GetHousehold()))
	s.logf("admin moves %s to %s", h.ID, to)
}

// regrid has the admin give worker b grid 1 or take it away.
func (s *schedule) regrid() {
	s.t.Helper()
	b := s.actors[1]
	grids := []string{s.e.Grids[0]}
	if !slices.Contains(b.grids, s.e.Grids[1]) {
		grids = s.e.Grids
	}
	if _, err := s.e.Admin.SetWorkerGrids(s.ctx, &pb.SetWorkerGridsRequest{WorkerId: b.worker, GridIds: grids}); err != nil {
		s.fatalf("set grids: %v", err)
	}
	b.grids = grids
	s.logf("admin sets b's grids to %d grids", len(grids))
}

func (s *schedule) check() {
	s.t.Helper()
	server := s.e.serverState()
	assertSameState(s.t, "server state vs the merge of every change", s.m.state(), server)
	for _, a := range s.actors {
		n, err := a.r.Pending(s.ctx)
		if err != nil || n != 0 {
			s.fatalf("%s still has %d pending changes (%v)", a.name, n, err)
		}
		got, err := a.r.Dump(s.ctx)
		if err != nil {
			s.fatal(err)
		}
		assertSameState(s.t, "replica "+a.name+" vs server scope", s.e.serverState(a.grids...), canonical(got))
	}
	applied := s.e.appliedChanges()
	for id := range s.m.changeIDs {
		if !applied[id] {
			s.fatalf("change %s was never applied by the server", id)
		}
	}
	if len(applied) != len(s.m.changeIDs) {
		s.fatalf("server applied %d changes, replicas made %d", len(applied), len(s.m.changeIDs))
	}
	stored := s.e.storedVisits()
	for id, visit := range s.m.visitChanges {
		if !stored[visit] {
			s.fatalf("visit %s of change %s was never applied by the server", visit, id)
		}
	}
}

func (s *schedule) fatal(err error) { s.t.Helper(); s.fatalf("%v", err) }
