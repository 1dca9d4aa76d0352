package e2e

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"connectrpc.com/connect"

	sdk "github.com/doorbook/doorbook/client-sdk"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
)

var (
	flagDrillSeed   = flag.Uint64("drill.seed", 0, "TestRestoreUnderRunningFleet's seed (0: from the test's default)")
	flagDrillRounds = flag.Int("drill.rounds", 4, "TestRestoreUnderRunningFleet: rounds of work before and after the backup")
)

// TestRestoreUnderRunningFleet is the restore drill: phones work and sync;
// the server is backed up while they do (sqlite.Backup, no stop); they go
// on working and syncing, and one more phone is enrolled; then the server
// is restored from that backup under them (the late phone enrols again,
// keeping its work) and they go on again. In the end every visit any phone
// recorded is on the server exactly once, nothing is set aside, and every
// phone equals the server's state of its scope.
func TestRestoreUnderRunningFleet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	seed := *flagDrillSeed
	if seed == 0 {
		seed = 20261202
	}
	t.Logf("seed %d: reproduce with -drill.seed=%d -drill.rounds=%d", seed, seed, *flagDrillRounds)
	rng := rand.New(rand.NewPCG(seed, seed^0xd1))
	e := newEnv(t, 2)
	type phone struct {
		name  string
		r     *sdk.Replica
		grid  string
		homes []string
	}
	var phones []*phone
	// li and wang share grid A, li with two phones; zhang has grid B.
	li, _ := e.worker("li", e.Grids[0])
	wang, _ := e.worker("wang", e.Grids[0])
	zhang, _ := e.worker("zhang", e.Grids[1])
	for _, p := range []struct{ name, worker, grid string }{
		{"li", li, e.Grids[0]}, {"li2", li, e.Grids[0]}, {"wang", wang, e.Grids[0]}, {"zhang", zhang, e.Grids[1]},
	} {
		ph := &phone{name: p.name, r: e.device(p.name, p.worker), grid: p.grid}
		mustSync(t, ph.r)
		phones = append(phones, ph)
	}
	visits := map[string]string{} // every visit recorded: id -> phone
	var mu sync.Mutex
	work := func(label string, n int) {
		t.Helper()
		for _, ph := range phones {
			if len(ph.homes) == 0 || rng.IntN(4) == 0 {
				h, err := ph.r.RegisterHousehold(ctx, ph.grid, map[string]string{"head_name": fmt.Sprintf("%s %s", ph.name, label)})
				if err != nil {
					t.Fatal(err)
				}
				ph.homes = append(ph.homes, h)
			}
			for range 1 + rng.IntN(n) {
				h := ph.homes[rng.IntN(len(ph.homes))]
				id, err := ph.r.RecordVisit(ctx, sdkVisit(h))
				if err != nil {
					t.Fatalf("%s, %s: %v", ph.name, label, err)
				}
				mu.Lock()
				visits[id] = ph.name
				mu.Unlock()
			}
		}
	}
	syncAll := func() {
		t.Helper()
		for _, ph := range phones {
			mustSync(t, ph.r)
		}
	}

	for round := range *flagDrillRounds {
		work(fmt.Sprintf("before %d", round), 5)
		syncAll()
	}
	// The backup runs while the phones sync.
	work("during the backup", 5)
	var wg sync.WaitGroup
	for _, ph := range phones {
		wg.Go(func() {
			if _, err := ph.r.Sync(ctx); err != nil {
				t.Errorf("sync %s during the backup: %v", ph.name, err)
			}
		})
	}
	backup := e.backup(t, "drill-backup")
	wg.Wait()
	// A phone enrolled after the backup: the restored server will not
	// know it, and it enrols again, keeping its work.
	late := &phone{name: "zhang2", r: e.device("zhang2", zhang), grid: e.Grids[1]}
	mustSync(t, late.r)
	phones = append(phones, late)
	for round := range *flagDrillRounds {
		work(fmt.Sprintf("after %d", round), 5)
		if rng.IntN(2) == 0 {
			syncAll()
		}
	}
	syncAll()

	// Restore under the fleet: some phones have unsent work, all have
	// pushed work the backup does not hold.
	work("unsent at the restore", 3)
	restoreFrom(t, e, backup)
	if _, err := late.r.Sync(ctx); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("a phone enrolled after the backup syncs with the restored server: %v, want Unauthenticated", err)
	}
	code, err := e.Admin.CreateEnrollmentCode(ctx, &pb.CreateEnrollmentCodeRequest{WorkerId: zhang})
	if err != nil {
		t.Fatal(err)
	}
	if err := late.r.Enroll(ctx, e.URL, code.GetCode(), "zhang2 again"); err != nil {
		t.Fatalf("the late phone enrols again: %v", err)
	}
	for round := range 2 {
		work(fmt.Sprintf("after the restore %d", round), 3)
		syncAll()
	}
	syncAll() // everyone has seen everyone's re-pushed work

	server := e.serverState(e.Grids...)
	count := map[string]int{}
	for _, v := range server.Visits {
		count[v.ID]++
	}
	var lost []string
	for id, who := range visits {
		if count[id] != 1 {
			lost = append(lost, fmt.Sprintf("%s's %s (%d times)", who, id, count[id]))
		}
	}
	slices.Sort(lost)
	if len(lost) > 0 {
		t.Errorf("%d of %d visits are not on the server exactly once: %v", len(lost), len(visits), lost)
	}
	if len(server.Visits) != len(visits) {
		t.Errorf("the server holds %d visits, the phones recorded %d", len(server.Visits), len(visits))
	}
	for _, ph := range phones {
		if rej, err := ph.r.Rejected(ctx); err != nil || len(rej) > 0 {
			t.Errorf("%s set aside %d changes (%v)", ph.name, len(rej), err)
		}
		assertSameState(t, ph.name+" vs the server", e.serverState(ph.grid), dump(t, ph.r))
	}
	t.Logf("visits recorded %d, on the server %d, lost or doubled %d", len(visits), len(server.Visits), len(lost))
}
