package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/internal/demo"
	"github.com/doorbook/doorbook/internal/wire"
	"github.com/doorbook/doorbook/syncengine"

	"connectrpc.com/connect"
)

// The replay load (Options.Replay) measures the server alone. Its devices
// are API clients with no replica and no SQLite: each enrols, learns its
// grid's households from a pull, and then, until the load ends, pushes a
// batch of 1..Visits visits built in memory (what a phone's outbox sends)
// and pulls from its cursor (what a phone's sync does next). A push that
// fails is sent again after the load, as a phone would send it, so that
// every visit is on the server exactly once.

// replayer is a device of the replay load.
type replayer struct {
	sync   doorbookv1connect.SyncServiceClient
	clock  *syncengine.HybridClock
	worker string
	cursor uint64
	// unsent are the pushes that failed, sent again after the load.
	unsent []*pb.PushRequest
}

// setupReplay enrols d through the API and pulls its scope, keeping its
// households' ids and its cursor.
func (d *device) setupReplay(ctx context.Context, url string, hc *http.Client) error {
	enroll := doorbookv1connect.NewEnrollmentServiceClient(hc, url)
	res, err := enroll.Enroll(ctx, &pb.EnrollRequest{Code: d.code, DeviceName: fmt.Sprintf("loadtest replay device %d", d.i)})
	if err != nil {
		return fmt.Errorf("device %d: enrol: %w", d.i, err)
	}
	p := &replayer{
		sync:   doorbookv1connect.NewSyncServiceClient(hc, url, connect.WithInterceptors(bearer.Token(res.GetToken()))),
		clock:  syncengine.NewHybridClock(syncengine.NodeID(res.GetDeviceId()), res.GetServerHlc(), time.Now),
		worker: res.GetScope().GetWorker().GetId(),
	}
	if p.worker == "" {
		return fmt.Errorf("device %d: enrolled with no worker in its scope", d.i)
	}
	d.rp = p
	if _, err := p.pull(ctx, func(h *pb.Household) { d.households = append(d.households, h.GetId()) }); err != nil {
		return fmt.Errorf("device %d: first pull: %w", d.i, err)
	}
	if len(d.households) == 0 {
		return fmt.Errorf("device %d: no households in its first pull", d.i)
	}
	return nil
}

// pull pulls from the cursor until the server has no more, calling
// household for each household it sends, and returns the rows sent.
func (p *replayer) pull(ctx context.Context, household func(*pb.Household)) (int, error) {
	rows := 0
	for {
		res, err := p.sync.Pull(ctx, &pb.PullRequest{Cursor: p.cursor})
		if err != nil {
			return rows, err
		}
		if household != nil {
			for _, h := range res.GetHouseholds() {
				household(h)
			}
		}
		p.clock.Observe(res.GetServerHlc())
		rows += len(res.GetHouseholds()) + len(res.GetPersons()) + len(res.GetTags()) + len(res.GetVisits()) + len(res.GetVisitAmendments())
		p.cursor = res.GetCursor()
		if !res.GetMore() {
			return rows, nil
		}
	}
}

// batch builds a push of n visits to d's households.
func (d *device) batch(n int, notes *demo.Generator, size int) (*pb.PushRequest, error) {
	req := &pb.PushRequest{Cursor: d.rp.cursor, Changes: make([]*pb.Change, 0, n)}
	for range n {
		form := syncengine.FormInPerson
		if d.rng.IntN(4) == 0 {
			form = syncengine.FormPhone
		}
		c := d.rp.clock.Now()
		v := syncengine.Visit{ID: newID(), HouseholdIDs: []string{d.households[d.rng.IntN(len(d.households))]},
			VisitorID: d.rp.worker, VisitedAt: c.Time().UTC(), Form: form, Notes: notes.Notes(size), Clock: c}
		ch := syncengine.Change{ID: newID(), Visit: &v}
		// The checks the phone makes before it queues a change.
		if err := ch.Validate(); err != nil {
			return nil, fmt.Errorf("device %d: %w", d.i, err)
		}
		req.Changes = append(req.Changes, wire.ChangeToProto(&ch))
	}
	return req, nil
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// replay is d's replay load: think, push a batch, pull; until end.
func (d *device) replay(ctx context.Context, o Options, end time.Time, errs *loadErrors) {
	notes := demo.NewGenerator(o.Seed^uint64(d.i+1)<<20, time.Now())
	for ctx.Err() == nil {
		if !d.think(ctx, o, end) {
			return
		}
		req, err := d.batch(1+d.rng.IntN(o.Visits), notes, o.Notes)
		if err != nil {
			errs.add(err)
			return
		}
		d.recorded += len(req.Changes)
		sctx, cancel := context.WithTimeout(ctx, o.SyncTimeout)
		t0 := time.Now()
		res, err := d.push(sctx, req)
		if err != nil {
			cancel()
			d.rp.unsent = append(d.rp.unsent, req)
			if ctx.Err() == nil {
				errs.add(fmt.Errorf("device %d: push: %w", d.i, err))
			}
			continue
		}
		d.rp.clock.Observe(res.GetServerHlc())
		pulled, err := d.rp.pull(sctx, nil)
		took := time.Since(t0)
		cancel()
		d.accepted += int(res.GetApplied())
		d.duplicates += int(res.GetDuplicates())
		if err != nil {
			if ctx.Err() == nil {
				errs.add(fmt.Errorf("device %d: pull: %w", d.i, err))
			}
			continue
		}
		d.syncs++
		d.latencies = append(d.latencies, took)
		d.pulled += pulled
	}
}

// push sends req as a phone would: a change the server refuses for good
// (a rule's refusal naming it, such as a household's visits a day past
// the cap) is counted as refused and left out, and the rest sent again.
func (d *device) push(ctx context.Context, req *pb.PushRequest) (*pb.PushResponse, error) {
	for {
		res, err := d.rp.sync.Push(ctx, req)
		if err == nil {
			return res, nil
		}
		id := wire.RejectedChangeID(err)
		i := slices.IndexFunc(req.Changes, func(c *pb.Change) bool { return c.GetId() == id })
		if id == "" || i < 0 {
			return nil, err
		}
		req.Changes = slices.Delete(req.Changes, i, i+1)
		d.refused++
		if len(req.Changes) == 0 {
			return &pb.PushResponse{}, nil
		}
	}
}

// resend sends again the pushes that failed during the load.
func (d *device) resend(ctx context.Context, errs *loadErrors) {
	for _, req := range d.rp.unsent {
		res, err := d.push(ctx, req)
		if err != nil {
			errs.add(fmt.Errorf("device %d: final push: %w", d.i, err))
			continue
		}
		d.drained += int(res.GetApplied())
		d.duplicates += int(res.GetDuplicates())
	}
	d.rp.unsent = nil
}

// deviceURL is the server device i enrols with: ServerURL's, or one of
// AlsoURLs, in turn.
func deviceURL(o Options, base string, i int) string {
	if n := len(o.AlsoURLs); n > 0 && i%(n+1) > 0 {
		return strings.TrimRight(o.AlsoURLs[i%(n+1)-1], "/")
	}
	return base
}
