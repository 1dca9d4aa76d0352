package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // reading the databases the processes leave behind
)

// TestCrashSIGKILL runs the real binary as separate processes, "doorbook
// serve" and several "doorbook worker" replicas, and kills them with SIGKILL
// at random points of their work: worker syncs (push, bootstrap, pull),
// worker writes (visit, edit) and the server in the middle of workers' syncs.
// Every killed process is started again and the work goes on. At the end,
// with the server up and every replica synced until nothing moves, it checks:
//
//   - every acknowledged write (the "worker visit"/"worker edit" command
//     exited 0) is on the server, and in every replica whose grids hold it;
//   - a killed write either happened (in its replica and on the server) or
//     did not (in neither); no write is on the server twice;
//   - every database file (server and replicas) passes PRAGMA
//     integrity_check;
//   - no cursor is stuck: a final sync succeeds, nothing is left unsent, and
//     every replica holds exactly the server's households, visits and tags of
//     its grids, so replicas sharing a grid show the same household.
//
// The schedule (which process is killed, in which operation, and the kill's
// delay as a fraction of how long that kind of operation takes) comes from
// -crash.seed; where exactly a kill lands also depends on the machine's speed.
// Longer runs: go test ./cmd/doorbook -run Crash -v -crash.rounds=30.
var (
	crashSeedFlag   = flag.Uint64("crash.seed", 1, "seed of TestCrashSIGKILL's kill schedule (0: from the time; the seed is logged)")
	crashRoundsFlag = flag.Int("crash.rounds", 3, "kill rounds of TestCrashSIGKILL")
	crashBurstFlag  = flag.Int("crash.burst", 0, "TestCrashSIGKILL: in round 2, one phone first makes this many visits offline (over 500, its push takes several batches)")
)

// crashFields is the household field each replica edits, by replica index:
// one writer per field, so that the field's final value is known (per-field
// last-writer-wins keeps both edits of two replicas editing one household).
var crashFields = []string{"notes", "phone_landline", "responsible_unit", "housing_type", "responsible_leader", "responsible_worker", "phone_mobile", "address"}

const (
	crashProcTimeout = 3 * time.Minute // one worker command, on a loaded machine
	crashUpTimeout   = 3 * time.Minute // serve --demo seeding, or a restart
)

func TestCrashSIGKILL(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL semantics are POSIX")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	seed := *crashSeedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rounds := *crashRoundsFlag
	if testing.Short() {
		rounds = min(rounds, 1)
	}
	t.Logf("seed %d: reproduce the schedule with -crash.seed=%d -crash.rounds=%d -crash.burst=%d", seed, seed, rounds, *crashBurstFlag)
	began := time.Now()

	c := &crashRun{
		t: t, seed: seed, dir: t.TempDir(),
		rng:    rand.New(rand.NewPCG(seed, seed^0x5eed)),
		est:    map[string][]time.Duration{"write": {30 * time.Millisecond}, "bootstrap": {200 * time.Millisecond}, "push": {80 * time.Millisecond}, "pull": {50 * time.Millisecond}},
		phases: map[string]int{},
	}
	c.bin = filepath.Join(c.dir, "doorbook")
	build := exec.CommandContext(t.Context(), goBin, "build", "-o", c.bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("binary built in %v", time.Since(began).Round(time.Millisecond))

	c.srv = &crashServer{c: c, db: filepath.Join(c.dir, "server.db"), log: filepath.Join(c.dir, "serve.log")}
	t.Cleanup(c.srv.cleanup)
	c.srv.start(true)
	c.creds = c.srv.creds

	// Li Na and Wang Qiang share a grid; Li Na has a second phone, so two
	// replicas share both her grids; Zhang Min shares nothing.
	for i, w := range []int{0, 1, 2} {
		c.addReplica(w, c.creds.Workers[w].EnrollmentCode, []string{"li", "wang", "zhang"}[i])
	}
	c.addReplica(0, "", "li2")

	for round := 1; round <= rounds && !t.Failed(); round++ {
		c.round(round)
	}
	// Even after a failure, settle and check what the files hold.
	c.settle()
	c.compareHouseholdViews()
	c.srv.stop()
	c.verify()

	t.Logf("rounds=%d kills(worker)=%d kills(server)=%d writes=%d lost=%d duplicates=%d corrupt=%d",
		rounds, c.killsWorker, c.killsServer, c.acked(), c.lost, c.duplicates, c.corrupt)
	var phases []string
	for p, n := range c.phases {
		phases = append(phases, fmt.Sprintf("%s=%d", p, n))
	}
	sort.Strings(phases)
	t.Logf("kills landed in: %s; kills too late (process already done): %d; resent changes the server recognised: %d; killed visits: %d stored, %d not; replicas: %d; took %v",
		strings.Join(phases, " "), c.missed, c.resent, c.killedDone, c.killedNot, len(c.replicas), time.Since(began).Round(time.Second))
	if c.lost+c.duplicates+c.corrupt+c.diverged > 0 {
		t.Errorf("lost=%d duplicates=%d corrupt=%d diverged=%d (seed %d)", c.lost, c.duplicates, c.corrupt, c.diverged, seed)
	}
}

// crashRun is one seeded run. Only the test goroutine draws from rng.
type crashRun struct {
	t    *testing.T
	seed uint64
	dir  string
	bin  string
	rng  *rand.Rand
	srv  *crashServer

	creds    credsFile
	replicas []*crashReplica

	mu          sync.Mutex                 // guards the fields below, written by writer goroutines
	est         map[string][]time.Duration // recent durations of each kind of operation
	writes      []*crashWrite
	phases      map[string]int
	killsWorker int
	killsServer int
	missed      int
	resent      int
	killedDone  int
	killedNot   int
	lost        int
	duplicates  int
	corrupt     int
	diverged    int
}

type crashReplica struct {
	name   string
	path   string
	index  int // into crashFields
	worker int // into creds.Workers
	grids  []string
	hot    []string // households of grids shared with another replica
	all    []string
}

func (r *crashReplica) args(verb ...string) []string {
	return append([]string{"worker", "--replica", r.path, "--json"}, verb...)
}

// crashWrite is one write command: acknowledged when it exited 0, killed
// when SIGKILL ended it (then it may or may not have happened).
type crashWrite struct {
	rep       *crashReplica
	kind      string // visit or edit
	household string
	value     string // the visit's notes or the edited field's value: unique
	id        string // printed by an acknowledged visit
	acked     bool
	killed    bool
	seq       int // order of the replica's writes
}

// crashProc is one child process.
type crashProc struct {
	args   []string
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
	began  time.Time
	took   time.Duration
}

func (c *crashRun) start(args ...string) *crashProc {
	p := &crashProc{args: args, cmd: exec.Command(c.bin, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		c.t.Fatalf("start doorbook %s: %v", strings.Join(args, " "), err)
	}
	p.began = time.Now()
	go func() {
		p.err = p.cmd.Wait()
		p.took = time.Since(p.began)
		close(p.done)
	}()
	return p
}

// wait waits for the process to exit by itself, killing it (and reporting
// a hang) past the deadline.
func (p *crashProc) wait() error {
	timer := time.NewTimer(crashProcTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.err
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("hung for %v and was killed: %w", crashProcTimeout, p.err)
	}
}

// killAfter sends SIGKILL after delay, unless the process is done by then,
// and reports whether SIGKILL is what ended it.
func (p *crashProc) killAfter(delay time.Duration) bool {
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-p.done:
		return false
	case <-timer.C: // the fault's random delay, not a wait for a condition
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

func (p *crashProc) String() string {
	return fmt.Sprintf("doorbook %s: %v\nstdout: %s\nstderr: %s", strings.Join(p.args, " "), p.err, p.stdout.String(), p.stderr.String())
}

// runJSON runs a command that must succeed and decodes its stdout.
func (c *crashRun) runJSON(v any, args ...string) error {
	p := c.start(args...)
	if err := p.wait(); err != nil {
		return errors.New(p.String())
	}
	if err := json.Unmarshal(p.stdout.Bytes(), v); err != nil {
		return fmt.Errorf("%s\nstdout is not the expected JSON: %v", p, err)
	}
	return nil
}

// estimate is the median of the last durations of a kind of operation that
// ran to its end.
func (c *crashRun) estimate(kind string) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := slices.Clone(c.est[kind])
	slices.Sort(d)
	return d[len(d)/2]
}

func (c *crashRun) observe(kind string, took time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := append(c.est[kind], took)
	c.est[kind] = d[max(0, len(d)-7):]
}

// delay is a kill delay: a fraction u of what the operation usually takes.
func (c *crashRun) delay(kind string, u float64) time.Duration {
	return time.Duration(u * float64(c.estimate(kind)))
}

func (c *crashRun) count(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
}

// addReplica enrols a new replica of a worker, with the code given or a new
// one from the admin API.
func (c *crashRun) addReplica(worker int, code, name string) *crashReplica {
	t := c.t
	w := c.creds.Workers[worker]
	if code == "" {
		var res struct {
			Code string `json:"code"`
		}
		if err := c.runJSON(&res, "admin", "--credentials", c.srv.credsPath, "--json", "code", "--worker", w.ID); err != nil {
			t.Fatalf("admin code: %v", err)
		}
		code = res.Code
	}
	r := &crashReplica{name: name, path: filepath.Join(c.dir, name+".db"), index: len(c.replicas), worker: worker, grids: w.GridIDs}
	var st statusOut
	if err := c.runJSON(&st, r.args("enroll", "--server", c.srv.url, "--code", code, "--name", name)...); err != nil {
		t.Fatalf("enroll %s: %v", name, err)
	}
	c.replicas = append(c.replicas, r)
	t.Logf("enrolled %s: a device of %s (%d grids)", name, w.Name, len(w.GridIDs))
	return r
}

// crashStatus is "worker status --json" with the changes the server
// refused for good, which a crash must never cause.
type crashStatus struct {
	statusOut
	Rejected int `json:"rejected_changes"`
}

func (c *crashRun) status(r *crashReplica) (crashStatus, error) {
	var st crashStatus
	err := c.runJSON(&st, r.args("status")...)
	return st, err
}

// loadHouseholds learns a replica's households once its bootstrap is done.
func (c *crashRun) loadHouseholds(r *crashReplica) {
	if len(r.all) > 0 {
		return
	}
	st, err := c.status(r)
	if err != nil {
		c.t.Errorf("status of %s: %v", r.name, err)
		return
	}
	if st.Bootstrapping || st.Households == 0 {
		return
	}
	var hs []summaryOut
	if err := c.runJSON(&hs, r.args("households")...); err != nil {
		c.t.Errorf("households of %s: %v", r.name, err)
		return
	}
	shared := map[string]bool{}
	for _, o := range c.replicas {
		if o != r {
			for _, g := range o.grids {
				shared[g] = true
			}
		}
	}
	for _, h := range hs {
		r.all = append(r.all, h.ID)
		if shared[h.GridID] && len(r.hot) < 20 {
			r.hot = append(r.hot, h.ID)
		}
	}
	if len(r.hot) == 0 {
		r.hot = r.all[:min(20, len(r.all))]
	}
}

// round makes writes on every replica (killing a few), then goes through a
// pass of worker kills and a pass with a server kill, in random order.
func (c *crashRun) round(round int) {
	if c.rng.Float64() < 0.6 {
		c.freshDevice(round)
	}
	passes := []func(int){c.workerKillPass, c.serverKillPass}
	if c.rng.IntN(2) == 0 {
		passes[0], passes[1] = passes[1], passes[0]
	}
	if round == 2 && *crashBurstFlag > 0 {
		c.burst(round, *crashBurstFlag)
	}
	c.writePass(round, 8, 24)
	passes[0](round)
	c.writePass(round, 4, 10)
	passes[1](round)
}

// freshDevice enrols a new phone of a random worker, whose first sync is a
// bootstrap; once there are as many replicas as fields to edit, it
// reinstalls one of the later phones instead: synced to the end, its file
// checked and deleted, enrolled again from scratch.
func (c *crashRun) freshDevice(round int) {
	if len(c.replicas) < len(crashFields) {
		c.addReplica(c.rng.IntN(len(c.creds.Workers)), "", fmt.Sprintf("dev%d", len(c.replicas)))
		return
	}
	r := c.replicas[4+c.rng.IntN(len(c.replicas)-4)]
	if _, ok := c.syncToEnd(round, r); !ok {
		return
	}
	if st, err := c.status(r); err != nil || st.Pending != 0 || st.Bootstrapping {
		c.t.Errorf("round %d: %s is not fully synced before its reinstall: %+v %v", round, r.name, st, err)
		return
	}
	db, err := openRO(r.path)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := integrity(db); err != nil {
		c.t.Errorf("replica %s before its reinstall: %v", r.name, err)
		c.count(func() { c.corrupt++ })
	}
	db.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(r.path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.t.Fatal(err)
		}
	}
	var res struct {
		Code string `json:"code"`
	}
	if err := c.runJSON(&res, "admin", "--credentials", c.srv.credsPath, "--json", "code", "--worker", c.creds.Workers[r.worker].ID); err != nil {
		c.t.Fatalf("admin code: %v", err)
	}
	var st statusOut
	if err := c.runJSON(&st, r.args("enroll", "--server", c.srv.url, "--code", res.Code, "--name", r.name)...); err != nil {
		c.t.Fatalf("enroll %s again: %v", r.name, err)
	}
	r.all, r.hot = nil, nil
	c.t.Logf("round %d: reinstalled %s (a device of %s)", round, r.name, c.creds.Workers[r.worker].Name)
}

type writePlan struct {
	w    *crashWrite
	kill bool
	u    float64
}

// planWrites draws n writes on r; the plan is drawn here, on the test
// goroutine, and carried out elsewhere.
func (c *crashRun) planWrites(r *crashReplica, round, n int, killP float64) []writePlan {
	var plan []writePlan
	for range n {
		pool := r.all
		if c.rng.IntN(2) == 0 {
			pool = r.hot
		}
		w := &crashWrite{rep: r, kind: "visit", household: pool[c.rng.IntN(len(pool))]}
		if c.rng.IntN(4) == 0 {
			w.kind = "edit"
		}
		c.mu.Lock()
		w.seq = len(c.writes)
		w.value = fmt.Sprintf("crash-%d-r%d-%s-%d", c.seed%100000, round, r.name, w.seq)
		c.writes = append(c.writes, w)
		c.mu.Unlock()
		plan = append(plan, writePlan{w: w, kill: c.rng.Float64() < killP, u: c.rng.Float64()})
	}
	return plan
}

// doWrites carries out a replica's planned writes one after another.
func (c *crashRun) doWrites(round int, plan []writePlan) {
	forms := []string{"in_person", "phone", "talk"}
	for i, wp := range plan {
		w := wp.w
		var args []string
		if w.kind == "visit" {
			args = w.rep.args("visit", "--household", w.household, "--form", forms[i%len(forms)], "--notes", w.value)
		} else {
			args = w.rep.args("edit", "--household", w.household, "--set", crashFields[w.rep.index]+"="+w.value)
		}
		p := c.start(args...)
		if wp.kill && p.killAfter(c.delay("write", wp.u)) {
			c.count(func() {
				w.killed = true
				c.killsWorker++
				c.phases["write"]++
			})
			continue
		}
		if err := p.wait(); err != nil {
			if wp.kill {
				c.count(func() { c.missed++ })
			}
			c.t.Errorf("round %d: a write failed on its own (it must succeed offline): %s", round, p)
			continue
		}
		var out idOut
		if err := json.Unmarshal(p.stdout.Bytes(), &out); err != nil || out.ID == "" {
			c.t.Errorf("round %d: write printed no id: %s", round, p)
			continue
		}
		c.observe("write", p.took)
		c.count(func() {
			w.id, w.acked = out.ID, true
			if wp.kill {
				c.missed++
			}
		})
	}
}

// burst makes n visits on one phone, three processes writing its replica
// at once, then kills its sync again and again while it pushes them.
func (c *crashRun) burst(round, n int) {
	var r *crashReplica
	for _, i := range c.rng.Perm(len(c.replicas)) {
		if c.loadHouseholds(c.replicas[i]); len(c.replicas[i].all) > 0 {
			r = c.replicas[i]
			break
		}
	}
	if r == nil {
		c.t.Logf("round %d: no phone has its households yet: no burst", round)
		return
	}
	plans := make([][]writePlan, 3)
	for i := range n {
		w := &crashWrite{rep: r, kind: "visit", household: r.all[c.rng.IntN(len(r.all))]}
		c.mu.Lock()
		w.seq = len(c.writes)
		w.value = fmt.Sprintf("crash-%d-r%d-%s-%d", c.seed%100000, round, r.name, w.seq)
		c.writes = append(c.writes, w)
		c.mu.Unlock()
		plans[i%3] = append(plans[i%3], writePlan{w: w})
	}
	began := time.Now()
	var wg sync.WaitGroup
	for _, plan := range plans {
		wg.Go(func() { c.doWrites(round, plan) })
	}
	wg.Wait()
	c.t.Logf("round %d: %s made %d visits offline in %v", round, r.name, n, time.Since(began).Round(time.Millisecond))
	for range 8 {
		before, err := c.status(r)
		if err != nil || before.Pending == 0 {
			break
		}
		// Several batches: the kill may land anywhere in three pushes' time.
		d := time.Duration(c.rng.Float64() * 3 * float64(c.estimate("push")))
		p := c.start(r.args("sync")...)
		if !p.killAfter(d) {
			c.count(func() { c.missed++ })
			continue
		}
		after, err := c.status(r)
		if err != nil {
			c.t.Errorf("round %d: %s cannot be opened after SIGKILL: %v", round, r.name, err)
			return
		}
		phase := killPhase(before, after)
		c.count(func() {
			c.killsWorker++
			c.phases["sync:"+phase]++
		})
		c.t.Logf("round %d: SIGKILL %s sync of a burst after %v: %s; pending %d→%d, cursor %d→%d", round, r.name, d.Round(time.Millisecond), phase, before.Pending, after.Pending, before.Cursor, after.Cursor)
	}
}

// writePass makes lo to hi writes on each replica that has its households,
// replicas two at a time, killing about one write in sixteen.
func (c *crashRun) writePass(round, lo, hi int) {
	var plans [][]writePlan
	for _, r := range c.replicas {
		c.loadHouseholds(r)
		if len(r.all) > 0 {
			plans = append(plans, c.planWrites(r, round, lo+c.rng.IntN(hi-lo+1), 0.06))
		}
	}
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for _, plan := range plans {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c.doWrites(round, plan)
		})
	}
	wg.Wait()
}

// syncKind is the kind of work a sync from this state mostly does.
func syncKind(st crashStatus) string {
	switch {
	case st.Bootstrapping || st.Households == 0:
		return "bootstrap"
	case st.Pending > 0:
		return "push"
	}
	return "pull"
}

// killPhase guesses where in a sync a kill landed from the replica's
// status before and after.
func killPhase(before, after crashStatus) string {
	sameSync := func() bool {
		return (before.LastSync == nil) == (after.LastSync == nil) && (before.LastSync == nil || *before.LastSync == *after.LastSync)
	}
	switch {
	case before.Pending > 0 && after.Pending == before.Pending:
		return "push(unacknowledged)"
	case after.Pending > 0 && after.Pending < before.Pending:
		return "push(some batches acknowledged)"
	case after.Bootstrapping && after.Households == before.Households:
		return "bootstrap(no page stored)"
	case after.Bootstrapping:
		return "bootstrap(pages stored)"
	case before.Bootstrapping:
		return "pull(after bootstrap)"
	case after.Cursor == before.Cursor && sameSync():
		return "pull(no batch stored)"
	case sameSync():
		return "pull(batches stored)"
	}
	return "finishing"
}

// syncToEnd runs a sync that must succeed (the server is up).
func (c *crashRun) syncToEnd(round int, r *crashReplica) (syncOut, bool) {
	var out syncOut
	p := c.start(r.args("sync")...)
	if err := p.wait(); err != nil {
		c.t.Errorf("round %d: sync of %s failed with the server up: %s", round, r.name, p)
		return out, false
	}
	if err := json.Unmarshal(p.stdout.Bytes(), &out); err != nil {
		c.t.Errorf("round %d: sync of %s printed %q: %v", round, r.name, p.stdout.String(), err)
		return out, false
	}
	kind := "pull"
	if out.Bootstrapped > 0 {
		kind = "bootstrap"
	} else if out.Pushed+out.Duplicates > 0 {
		kind = "push"
	}
	c.observe(kind, p.took)
	c.count(func() { c.resent += out.Duplicates })
	if out.Duplicates > 0 {
		c.t.Logf("round %d: %s resent %d changes the server already had (a kill landed after the server's commit)", round, r.name, out.Duplicates)
	}
	return out, true
}

// workerKillPass kills most replicas' syncs at random points, once or twice
// in a row, then (mostly) lets one sync run to its end.
func (c *crashRun) workerKillPass(round int) {
	if !c.srv.running() {
		return
	}
	for _, i := range c.rng.Perm(len(c.replicas)) {
		r := c.replicas[i]
		// Up to two kills in a row, a missed one (the sync was done by
		// then) tried again.
		want := []int{0, 1, 1, 2}[c.rng.IntN(4)]
		for kills, tries := 0, 0; kills < want && tries < want+2; tries++ {
			before, err := c.status(r)
			if err != nil {
				c.t.Errorf("round %d: %v", round, err)
				return
			}
			kind, u := syncKind(before), c.rng.Float64()
			d := c.delay(kind, u)
			p := c.start(r.args("sync")...)
			if !p.killAfter(d) {
				c.count(func() { c.missed++ })
				if p.err != nil {
					c.t.Errorf("round %d: sync of %s failed with the server up: %s", round, r.name, p)
				}
				continue
			}
			after, err := c.status(r)
			if err != nil {
				c.t.Errorf("round %d: %s cannot be opened after SIGKILL: %v", round, r.name, err)
				return
			}
			phase := killPhase(before, after)
			kills++
			c.count(func() {
				c.killsWorker++
				c.phases["sync:"+phase]++
			})
			c.t.Logf("round %d: SIGKILL %s sync after %v (%s, est %v): %s; pending %d→%d, households %d→%d, cursor %d→%d",
				round, r.name, d.Round(time.Millisecond), kind, c.estimate(kind).Round(time.Millisecond), phase,
				before.Pending, after.Pending, before.Households, after.Households, before.Cursor, after.Cursor)
		}
		if c.rng.Float64() < 0.6 {
			c.syncToEnd(round, r)
		}
	}
}

// serverKillPass starts syncs of a few replicas at once, with writes going
// on in one of them, and kills the server under them; then restarts it.
func (c *crashRun) serverKillPass(round int) {
	if c.rng.Float64() < 0.2 {
		return
	}
	n := 1 + c.rng.IntN(min(3, len(c.replicas)))
	var targets []*crashReplica
	for _, i := range c.rng.Perm(len(c.replicas))[:n] {
		targets = append(targets, c.replicas[i])
	}
	// A phone still bootstrapping does the longest work: put it first.
	for _, r := range c.replicas {
		if len(r.all) == 0 && !slices.Contains(targets, r) && c.rng.Float64() < 0.7 {
			targets = append([]*crashReplica{r}, targets...)
			break
		}
	}
	befores := make([]crashStatus, len(targets))
	est := time.Duration(0)
	for i, r := range targets {
		st, err := c.status(r)
		if err != nil {
			c.t.Errorf("round %d: %v", round, err)
			return
		}
		befores[i] = st
		est = max(est, c.estimate(syncKind(st)))
	}
	var plan []writePlan
	if w := targets[len(targets)-1]; len(w.all) > 0 {
		plan = c.planWrites(w, round, 3+c.rng.IntN(4), 0.2)
	}
	d := time.Duration(c.rng.Float64() * float64(est))
	if !c.srv.running() {
		c.srv.start(false)
	}
	procs := make([]*crashProc, len(targets))
	for i, r := range targets {
		procs[i] = c.start(r.args("sync")...)
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.doWrites(round, plan) })
	time.Sleep(d) // the fault's random delay
	c.srv.kill()
	c.count(func() { c.killsServer++ })
	var report []string
	for i, p := range procs {
		err := p.wait()
		r := targets[i]
		if err == nil {
			report = append(report, r.name+": finished before the kill")
			continue
		}
		if strings.Contains(err.Error(), "hung") {
			c.t.Errorf("round %d: sync of %s hung after the server was killed: %v", round, r.name, err)
			continue
		}
		after, serr := c.status(r)
		if serr != nil {
			c.t.Errorf("round %d: %s cannot be opened after its sync failed: %v", round, r.name, serr)
			continue
		}
		phase := killPhase(befores[i], after)
		if i == len(targets)-1 && len(plan) > 0 {
			phase += "(writes meanwhile)" // pending counts are not the sync's alone
		}
		c.count(func() { c.phases["server:"+phase]++ })
		report = append(report, fmt.Sprintf("%s: %s (pending %d→%d, households %d→%d)", r.name, phase, befores[i].Pending, after.Pending, befores[i].Households, after.Households))
	}
	wg.Wait()
	c.t.Logf("round %d: SIGKILL server after %v (est %v) under %d syncs: %s", round, d.Round(time.Millisecond), est.Round(time.Millisecond), len(procs), strings.Join(report, "; "))
	c.srv.start(false)
}

// settle syncs every replica until a whole pass moves nothing.
func (c *crashRun) settle() {
	t := c.t
	if !c.srv.running() {
		c.srv.start(false)
	}
	quiet := false
	for pass := 1; pass <= 6 && !quiet; pass++ {
		quiet = true
		for _, r := range c.replicas {
			out, ok := c.syncToEnd(0, r)
			if !ok {
				t.FailNow()
			}
			if out.Pushed+out.Duplicates+out.Pulled+out.Bootstrapped+out.Evicted > 0 {
				quiet = false
			}
		}
	}
	if !quiet {
		t.Errorf("the replicas still exchange changes after 6 sync passes: a cursor goes round?")
		c.count(func() { c.diverged++ })
	}
	for _, r := range c.replicas {
		st, err := c.status(r)
		if err != nil {
			t.Errorf("final status: %v", err)
			c.count(func() { c.corrupt++ })
			continue
		}
		if st.Pending != 0 || st.Bootstrapping || st.LastError != "" || st.Rejected != 0 {
			t.Errorf("%s after the final syncs: pending %d, bootstrapping %v, last error %q, rejected %d", r.name, st.Pending, st.Bootstrapping, st.LastError, st.Rejected)
			c.count(func() { c.diverged++ })
		}
	}
}

// compareHouseholdViews compares "worker household --id" output of the
// households written most, across the replicas that hold them.
func (c *crashRun) compareHouseholdViews() {
	hits := map[string]int{}
	for _, w := range c.writes {
		holders := 0
		for _, r := range c.replicas {
			if slices.Contains(r.all, w.household) {
				holders++
			}
		}
		if holders > 1 {
			hits[w.household]++
		}
	}
	ids := slices.Collect(maps.Keys(hits))
	sort.Slice(ids, func(i, j int) bool {
		return hits[ids[i]] > hits[ids[j]] || hits[ids[i]] == hits[ids[j]] && ids[i] < ids[j]
	})
	compared := 0
	for _, id := range ids[:min(5, len(ids))] {
		var first string
		var firstName string
		holders := 0
		for _, r := range c.replicas {
			if !slices.Contains(r.all, id) {
				continue
			}
			p := c.start(r.args("household", "--id", id)...)
			if err := p.wait(); err != nil {
				c.t.Errorf("household %s on %s: %s", id, r.name, p)
				continue
			}
			holders++
			if first == "" {
				first, firstName = p.stdout.String(), r.name
			} else if p.stdout.String() != first {
				c.t.Errorf("household %s differs between %s and %s:\n%s\n%s", id, firstName, r.name, first, p.stdout.String())
				c.count(func() { c.diverged++ })
			}
		}
		if holders > 1 {
			compared++
		}
	}
	c.t.Logf("household views compared across replicas: %d households", compared)
}

func (c *crashRun) acked() int {
	n := 0
	for _, w := range c.writes {
		if w.acked {
			n++
		}
	}
	return n
}

// openRO opens a database file read-only.
func openRO(path string) (*sql.DB, error) {
	return sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro")
}

func integrity(db *sql.DB) error {
	rows, err := db.Query(`PRAGMA integrity_check`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		msgs = append(msgs, s)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		return fmt.Errorf("integrity_check: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// keyed runs a query whose first column is a key and returns every row as
// text, by key.
func keyed(db *sql.DB, query string, args ...any) (map[string]string, error) {
	rows, err := db.Query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		var key string
		if b, ok := vals[0].([]byte); ok {
			key = string(b)
		} else {
			key = fmt.Sprint(vals[0])
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("key %q twice in %q", key, query)
		}
		out[key] = fmt.Sprintf("%v", vals[1:])
	}
	return out, rows.Err()
}

const (
	crashHouseholdsQ = `SELECT id, grid_id, head_name, address, phone_mobile, phone_landline, responsible_worker,
		responsible_leader, responsible_unit, member_count, housing_type, notes, deleted, hex(clocks) FROM households`
	crashVisitsQ = `SELECT vh.household_id || ' ' || v.id, vh.household_id, v.visitor_id, v.visited_at, v.form, v.notes,
		v.hlc, v.node, v.details, v.revisit_due FROM visit_households vh JOIN visits v ON v.id = vh.visit_id`
	crashTagsQ = `SELECT household_id || ' ' || add_id, household_id, category, removed, hlc, node FROM tag_elements`
)

// verify reads the server's and every replica's database files, with every
// process stopped.
func (c *crashRun) verify() {
	t := c.t
	sdb, err := openRO(c.srv.db)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	if err := integrity(sdb); err != nil {
		t.Errorf("server database: %v", err)
		c.corrupt++
	}
	serverHouseholds, err := keyed(sdb, crashHouseholdsQ)
	if err != nil {
		t.Fatal(err)
	}
	serverGrid, err := keyed(sdb, `SELECT id, grid_id FROM households`)
	if err != nil {
		t.Fatal(err)
	}
	for id, g := range serverGrid {
		serverGrid[id] = strings.Trim(g, "[]")
	}
	serverVisits, err := keyed(sdb, crashVisitsQ)
	if err != nil {
		t.Fatal(err)
	}
	serverTags, err := keyed(sdb, crashTagsQ)
	if err != nil {
		t.Fatal(err)
	}
	byNotes := func(db *sql.DB) map[string][]string {
		rows, err := db.Query(`SELECT notes, id FROM visits WHERE notes LIKE 'crash-%' ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		m := map[string][]string{}
		for rows.Next() {
			var notes, id string
			if err := rows.Scan(&notes, &id); err != nil {
				t.Fatal(err)
			}
			m[notes] = append(m[notes], id)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return m
	}
	onServer := byNotes(sdb)
	for notes, ids := range onServer {
		if len(ids) > 1 {
			t.Errorf("visit %q is on the server %d times: %v", notes, len(ids), ids)
			c.duplicates += len(ids) - 1
		}
	}

	local := map[*crashReplica]map[string][]string{}
	localField := map[*crashReplica]map[string]string{} // household → the replica's field
	for _, r := range c.replicas {
		db, err := openRO(r.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := integrity(db); err != nil {
			t.Errorf("replica %s: %v", r.name, err)
			c.corrupt++
		}
		local[r] = byNotes(db)
		for notes, ids := range local[r] {
			if len(ids) > 1 {
				t.Errorf("visit %q is in replica %s %d times: %v", notes, r.name, len(ids), ids)
				c.duplicates += len(ids) - 1
			}
		}
		localField[r], err = keyed(db, `SELECT id, `+crashFields[r.index]+` FROM households`)
		if err != nil {
			t.Fatal(err)
		}
		c.compareScope(r, db, serverGrid, serverHouseholds, serverVisits, serverTags)
		db.Close()
	}

	// Visits: acknowledged ones on the server once, with their id; killed
	// ones in their replica and on the server, or in neither.
	for _, w := range c.writes {
		if w.kind != "visit" {
			continue
		}
		srv, loc := onServer[w.value], local[w.rep][w.value]
		switch {
		case w.acked && len(srv) == 0:
			t.Errorf("acknowledged visit %s (%q, %s) is not on the server (in its replica: %v)", w.id, w.value, w.rep.name, loc)
			c.lost++
		case w.acked && srv[0] != w.id:
			t.Errorf("acknowledged visit %s (%q) is on the server as %v", w.id, w.value, srv)
			c.lost++
		case w.acked && len(loc) == 0:
			t.Errorf("acknowledged visit %s (%q) is not in its replica %s", w.id, w.value, w.rep.name)
			c.lost++
		case w.killed && len(loc) > 0 && len(srv) == 0:
			t.Errorf("visit %q, killed after it was stored in %s, never reached the server", w.value, w.rep.name)
			c.lost++
		case w.killed && len(loc) == 0 && len(srv) > 0:
			t.Errorf("visit %q, killed before it was stored in %s, is on the server", w.value, w.rep.name)
			c.duplicates++
		case w.killed && len(loc) > 0:
			c.killedDone++
		case w.killed:
			c.killedNot++
		}
	}

	// Edits: each field has one writing replica, so its final value is the
	// last acknowledged edit's, or a later killed edit's that happened.
	type key struct {
		r *crashReplica
		h string
	}
	edits := map[key][]*crashWrite{}
	for _, w := range c.writes {
		if w.kind == "edit" {
			k := key{w.rep, w.household}
			edits[k] = append(edits[k], w)
		}
	}
	for k, ws := range edits {
		field := crashFields[k.r.index]
		if _, ok := serverHouseholds[k.h]; !ok {
			t.Errorf("household %s is not on the server", k.h)
			c.lost++
			continue
		}
		var got string
		if err := sdb.QueryRow(`SELECT `+field+` FROM households WHERE id = ?`, k.h).Scan(&got); err != nil {
			t.Fatal(err)
		}
		last := -1
		for i, w := range ws {
			if w.acked {
				last = i
			}
		}
		var allowed []string
		for _, w := range ws[max(last, 0):] {
			allowed = append(allowed, w.value)
		}
		if loc := localField[k.r][k.h]; loc != "["+got+"]" {
			t.Errorf("household %s: %s is %q on the server, %s in its replica %s", k.h, field, got, loc, k.r.name)
			c.lost++
		}
		if last >= 0 && !slices.Contains(allowed, got) {
			t.Errorf("household %s: %s is %q on the server, want the last acknowledged edit %q or a later one %v", k.h, field, got, ws[last].value, allowed)
			c.lost++
		}
	}
}

// compareScope checks that a replica holds exactly the server's households,
// visits and tags of its grids, and nothing left to send.
func (c *crashRun) compareScope(r *crashReplica, db *sql.DB, serverGrid, serverHouseholds, serverVisits, serverTags map[string]string) {
	t := c.t
	var left int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM rejected_changes) + (SELECT count(*) FROM pending_bootstraps)`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("replica %s: %d rows left in outbox, rejected_changes or pending_bootstraps", r.name, left)
		c.diverged++
	}
	grids := map[string]bool{}
	for _, g := range r.grids {
		grids[g] = true
	}
	inScope := map[string]bool{}
	for id, g := range serverGrid {
		inScope[id] = grids[g]
	}
	diff := func(what string, mine map[string]string, server map[string]string, scoped func(key string) bool) {
		n := 0
		for k, v := range server {
			if scoped(k) && mine[k] != v {
				if n++; n <= 3 {
					t.Errorf("replica %s: %s %s is %q there, %q on the server", r.name, what, k, mine[k], v)
				}
			}
		}
		for k := range mine {
			if _, ok := server[k]; !ok || !scoped(k) {
				if n++; n <= 3 {
					t.Errorf("replica %s: %s %s is not on the server in its grids", r.name, what, k)
				}
			}
		}
		if n > 0 {
			t.Errorf("replica %s: %d %s differ from the server's", r.name, n, what)
			c.diverged++
		}
	}
	households, err := keyed(db, crashHouseholdsQ)
	if err != nil {
		t.Fatal(err)
	}
	visits, err := keyed(db, crashVisitsQ)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := keyed(db, crashTagsQ)
	if err != nil {
		t.Fatal(err)
	}
	if len(households) == 0 {
		t.Errorf("replica %s has no households", r.name)
		c.diverged++
	}
	byHousehold := func(k string) bool { h, _, _ := strings.Cut(k, " "); return inScope[h] }
	diff("household", households, serverHouseholds, func(k string) bool { return inScope[k] })
	diff("visit", visits, serverVisits, byHousehold)
	diff("tag", tags, serverTags, byHousehold)
}

// crashServer is "doorbook serve" as a child process on one loopback port,
// kept across restarts (the replicas store its URL).
type crashServer struct {
	c         *crashRun
	db        string
	log       string
	addr      string
	url       string
	credsPath string
	creds     credsFile
	p         *crashProc
	logf      *os.File
}

func (s *crashServer) running() bool {
	if s.p == nil {
		return false
	}
	select {
	case <-s.p.done:
		return false
	default:
		return true
	}
}

// start starts the server (first: on a free port, seeding the demo) and
// waits until it answers health checks.
func (s *crashServer) start(first bool) {
	t := s.c.t
	t.Helper()
	if first {
		s.addr = freePort()
	}
	addr := s.addr
	args := []string{"serve", "--db", s.db, "--addr", addr, "--log-format", "json"}
	if first {
		args = append(args, "--demo")
	}
	f, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	s.logf = f
	p := &crashProc{args: args, cmd: exec.Command(s.c.bin, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start serve: %v", err)
	}
	p.began = time.Now()
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	s.p = p

	deadline := time.Now().Add(crashUpTimeout)
	exited := func() bool {
		select {
		case <-p.done:
			return true
		default:
			return false
		}
	}
	if first {
		// The credentials file is written once the port is open.
		s.credsPath = s.db + ".credentials.json"
		for {
			if b, err := os.ReadFile(s.credsPath); err == nil && json.Unmarshal(b, &s.creds) == nil && s.creds.Server != "" {
				break
			}
			if exited() || time.Now().After(deadline) {
				t.Fatalf("serve --demo wrote no credentials (exited: %v, %v)\nlog:\n%s", exited(), p.err, s.logTail())
			}
			time.Sleep(20 * time.Millisecond) // polling for the file
		}
		s.url = s.creds.Server
		if s.url != "http://"+s.addr {
			t.Fatalf("credentials name server %s, want http://%s", s.url, s.addr)
		}
		if len(s.creds.Workers) < 3 {
			t.Fatalf("credentials hold %d workers", len(s.creds.Workers))
		}
	}
	for !s.healthy() {
		if exited() {
			t.Fatalf("serve exited before serving (restart after SIGKILL?): %v\nlog:\n%s", p.err, s.logTail())
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve does not answer health checks within %v\nlog:\n%s", crashUpTimeout, s.logTail())
		}
		time.Sleep(20 * time.Millisecond) // polling the health check
	}
}

// freePort finds a free loopback port below the ephemeral range, so that no
// other process's outgoing connection takes it while the server is down; the
// server keeps it across restarts.
func freePort() string {
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (s *crashServer) healthy() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/grpc.health.v1.Health/Check", strings.NewReader("{}"))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode == http.StatusOK && strings.Contains(string(body), "SERVING_STATUS_SERVING")
}

func (s *crashServer) kill() {
	if !s.running() {
		return
	}
	_ = s.p.cmd.Process.Kill()
	<-s.p.done
	s.logf.Close()
}

// stop stops the server with SIGTERM: it must shut down cleanly.
func (s *crashServer) stop() {
	t := s.c.t
	if !s.running() {
		return
	}
	_ = s.p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	select {
	case <-s.p.done:
	case <-timer.C:
		s.kill()
		t.Errorf("serve did not stop within a minute of SIGTERM\nlog:\n%s", s.logTail())
		return
	}
	s.logf.Close()
	if s.p.err != nil {
		t.Errorf("serve after SIGTERM: %v\nlog:\n%s", s.p.err, s.logTail())
	}
}

func (s *crashServer) cleanup() {
	if s.running() {
		s.kill()
	}
	if s.c.t.Failed() {
		s.c.t.Logf("server log (tail):\n%s", s.logTail())
	}
}

func (s *crashServer) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}
