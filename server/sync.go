package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/internal/wire"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

type syncService struct{ *Server }

func (s *syncService) Push(ctx context.Context, req *pb.PushRequest) (*pb.PushResponse, error) {
	p := principal(ctx)
	if n := len(req.GetChanges()); n > syncengine.MaxChangesPerPush {
		return nil, connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("a push holds at most %d changes, got %d", syncengine.MaxChangesPerPush, n))
	}
	changes := make([]syncengine.Change, 0, len(req.GetChanges()))
	now := s.now()
	for _, pc := range req.GetChanges() {
		c, err := wire.ChangeFromProto(pc)
		if err == nil {
			err = c.Validate()
		}
		if err == nil && c.Visit == nil {
			// A visit's content is compared with the stored visit instead
			// (service.Push): it keeps no change id.
			c.Digest, err = digest(pc)
		}
		if err != nil {
			return nil, s.pushError(&store.ChangeError{ChangeID: pc.GetId(), Err: err})
		}
		if err := syncengine.CheckSkew(c.MaxClock(), now, s.maxSkew); err != nil {
			return nil, s.skewError(err, c.ID)
		}
		changes = append(changes, c)
	}
	res, err := s.store.Push(ctx, p, req.GetCursor(), changes)
	if err != nil {
		return nil, s.pushError(err)
	}
	// The server's clock does not observe pushed clocks: devices set their
	// wall-clock offset from it, and a clock dragged ahead by devices (up to
	// the skew bound) would drag them all ahead with it.
	addStat(ctx, "applied", res.Applied)
	addStat(ctx, "duplicates", res.Duplicates)
	return &pb.PushResponse{ServerHlc: s.clock.Now().HLC, Applied: uint32(res.Applied), Duplicates: uint32(res.Duplicates)}, nil
}

// pushError maps a push's error, naming the refused change in a
// RejectedChange detail when one change is to blame: when the change can
// never be applied as it is (the phone sets it aside). A failure of the
// server's own (its storage, a bug) blames no change: the phone keeps it
// and pushes it again later.
func (s *syncService) pushError(err error) error {
	ce := toConnect(s.log, err)
	var change *store.ChangeError
	var connectErr *connect.Error
	if errors.As(err, &change) && errors.As(ce, &connectErr) && blamesChange(err) {
		if detail, derr := connect.NewErrorDetail(&pb.RejectedChange{ChangeId: change.ChangeID}); derr == nil {
			connectErr.AddDetail(detail)
		}
	}
	return ce
}

// skewError refuses a push whose clock runs ahead, telling the device the
// server's clock so that it can re-stamp its unsent changes.
func (s *syncService) skewError(err error, changeID string) error {
	ce := connect.NewError(connect.CodeFailedPrecondition, err)
	detail, derr := connect.NewErrorDetail(&pb.ClockSkew{
		ServerHlc:     s.clock.Now().HLC,
		ChangeId:      changeID,
		MaxSkewMillis: uint64(s.maxSkew.Milliseconds()),
	})
	if derr == nil {
		ce.AddDetail(detail)
	}
	return ce
}

func (s *syncService) Pull(ctx context.Context, req *pb.PullRequest) (*pb.PullResponse, error) {
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = store.DefaultPullLimit
	}
	b, err := s.store.Pull(ctx, principal(ctx), req.GetCursor(), limit)
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	if d := req.GetDevice(); d != nil && !b.More {
		// Bookkeeping for the admins, after the batch is read: a failure
		// to record it must not cost the phone its sync.
		ds := store.DeviceSync{AppVersion: d.GetAppVersion(), Outbox: int(d.GetOutbox())}
		if d.GetOldestUnsyncedVisitAt() != nil {
			ds.OldestUnsynced = d.GetOldestUnsyncedVisitAt().AsTime()
		}
		if err := s.store.RecordDeviceSync(ctx, principal(ctx), ds); err != nil {
			s.log.Warn().Err(err).Msg("could not record a device's sync")
		}
	}
	rows := wire.BundleToProto(&b.Rows)
	addStat(ctx, "rows", b.Rows.Rows())
	addStat(ctx, "cursor", b.Cursor)
	cats, camps := wire.ReferenceToProto(&b.Reference)
	return &pb.PullResponse{
		DevicePolicy:         policyToProto(b.Policy),
		Categories:           cats,
		Campaigns:            camps,
		EvictedHouseholdIds:  b.EvictedHouseholds,
		EvictedGridIds:       b.EvictedGrids,
		PurgedPersonIds:      b.PurgedPersons,
		PurgedTagIds:         b.PurgedTags,
		ErasedHouseholdIds:   b.ErasedHouseholds,
		ErasedPersonIds:      b.ErasedPersons,
		ReplacedVisitIds:     b.ReplacedVisits,
		ReplacedAmendmentIds: b.ReplacedAmendments,
		Households:           rows.Households,
		Persons:              rows.Persons,
		Tags:                 rows.Tags,
		Visits:               rows.Visits,
		VisitAmendments:      rows.Amendments,
		AddedGridIds:         b.AddedGrids,
		Cursor:               b.Cursor,
		More:                 b.More,
		ServerHlc:            s.clock.Now().HLC,
		Scope:                scopeToProto(b.Scope),
	}, nil
}

func (s *syncService) Bootstrap(ctx context.Context, req *pb.BootstrapRequest, stream *connect.ServerStream[pb.BootstrapResponse]) error {
	for _, g := range req.GetGridIds() {
		if !syncengine.IsID(g) {
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("grid id %q is not a UUID", g))
		}
	}
	if a := req.GetAfterHouseholdId(); a != "" && !syncengine.IsID(a) {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("after_household_id %q is not a UUID", a))
	}
	if req.GetSnapshot() && len(req.GetGridIds()) == 0 && req.GetAfterHouseholdId() == "" {
		// A backend without snapshots answers with pages, which every
		// device takes too.
		if err := s.sendSnapshot(ctx, req, stream); !errors.Is(err, store.ErrNoSnapshot) {
			return err
		}
	}
	households, rowsSent := 0, 0
	errSend := errors.New("send")
	err := s.store.Bootstrap(ctx, principal(ctx), store.BootstrapRequest{
		GridIDs:          req.GetGridIds(),
		AfterHouseholdID: req.GetAfterHouseholdId(),
		PageSize:         int(req.GetPageSize()),
	}, func(page *store.BootstrapPage) error {
		rows := wire.BundleToProto(&page.Rows)
		cats, camps := wire.ReferenceToProto(&page.Reference)
		households += len(page.Rows.Households)
		rowsSent += page.Rows.Rows()
		if err := stream.Send(&pb.BootstrapResponse{
			Cursor:          page.Cursor,
			Households:      rows.Households,
			Persons:         rows.Persons,
			Tags:            rows.Tags,
			Visits:          rows.Visits,
			VisitAmendments: rows.Amendments,
			LastHouseholdId: page.LastHouseholdID,
			ServerHlc:       s.clock.Now().HLC,
			Scope:           scopeToProto(page.Scope),
			TotalHouseholds: uint32(page.TotalHouseholds),
			Categories:      cats,
			Campaigns:       camps,
		}); err != nil {
			return fmt.Errorf("%w: %w", errSend, err)
		}
		return nil
	})
	addStat(ctx, "households", households)
	addStat(ctx, "rows", rowsSent)
	if errors.Is(err, errSend) {
		return err // the client went away; nothing to map
	}
	return toConnect(s.log, err)
}

// snapshotChunk is how much of a snapshot file one message carries: what a
// download cut mid-message loses, and resumes from the start of.
const snapshotChunk = 64 << 10

// sendSnapshot answers a bootstrap with a file of the whole scope: a first
// message with the cursor, scope and reference data, then the file's bytes,
// from where a cut download stopped if the device resumes the file it is
// given.
func (s *syncService) sendSnapshot(ctx context.Context, req *pb.BootstrapRequest, stream *connect.ServerStream[pb.BootstrapResponse]) error {
	snap, err := s.store.Snapshot(ctx, principal(ctx), int(req.GetSnapshotMinHouseholds()))
	if errors.Is(err, store.ErrNoSnapshot) {
		return err
	}
	if err != nil {
		return toConnect(s.log, err)
	}
	defer snap.Release()
	f, err := os.Open(snap.Path)
	if err != nil {
		return toConnect(s.log, fmt.Errorf("snapshot: %w", err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return toConnect(s.log, fmt.Errorf("snapshot: %w", err))
	}
	size := info.Size()
	if snap.Households == 0 {
		size = 0 // nothing to copy: the device needs the cursor and scope only
	}
	var offset int64
	if id := req.GetResumeSnapshotId(); id != "" && id == snap.ID && req.GetResumeSnapshotOffset() <= uint64(size) {
		offset = int64(req.GetResumeSnapshotOffset())
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return toConnect(s.log, fmt.Errorf("snapshot: %w", err))
		}
	}
	cats, camps := wire.ReferenceToProto(&snap.Reference)
	if err := stream.Send(&pb.BootstrapResponse{
		Cursor:          snap.Cursor,
		ServerHlc:       s.clock.Now().HLC,
		Scope:           scopeToProto(snap.Scope),
		TotalHouseholds: uint32(snap.Households),
		Categories:      cats,
		Campaigns:       camps,
		Snapshot:        true,
		SnapshotBytes:   uint64(size),
		SnapshotId:      snap.ID,
		SnapshotOffset:  uint64(offset),
	}); err != nil {
		return err
	}
	buf := make([]byte, snapshotChunk)
	for sent := offset; sent < size; {
		n, err := f.Read(buf)
		if n > 0 {
			if err := stream.Send(&pb.BootstrapResponse{Cursor: snap.Cursor, SnapshotChunk: buf[:n]}); err != nil {
				return err
			}
			sent += int64(n)
		}
		if err != nil {
			return toConnect(s.log, fmt.Errorf("snapshot: read %s: %w", snap.Path, err))
		}
	}
	addStat(ctx, "households", snap.Households)
	addStat(ctx, "snapshot_bytes", int(size))
	addStat(ctx, "snapshot_reused", snap.Reused)
	addStat(ctx, "snapshot_offset", offset)
	return nil
}

func scopeToProto(sc store.Scope) *pb.Scope {
	out := &pb.Scope{Worker: workerToProto(sc.Worker)}
	for _, g := range sc.Grids {
		out.Grids = append(out.Grids, nodeToProto(g))
	}
	return out
}

func workerToProto(w store.Worker) *pb.Worker {
	return &pb.Worker{Id: w.ID, Name: w.Name, Role: pb.WorkerRole(w.Role), GridIds: w.GridIDs}
}

func nodeToProto(n store.OrgNode) *pb.OrgNode {
	return &pb.OrgNode{Id: n.ID, ParentId: n.ParentID, Level: pb.OrgLevel(n.Level), Name: n.Name}
}

// blamesChange reports whether a push's error is its change's fault.
func blamesChange(err error) bool {
	if retryable(err) {
		return false
	}
	for _, kind := range []error{syncengine.ErrInvalid, syncengine.ErrNotFound, syncengine.ErrAlreadyExists, syncengine.ErrOutOfScope, syncengine.ErrLimit} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}

// digest fingerprints a change as received: its deterministic encoding
// (a phone resends the very outbox entry it pushed before).
func digest(pc *pb.Change) (string, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(pc)
	if err != nil {
		return "", fmt.Errorf("%w: change %s: %w", syncengine.ErrInvalid, pc.GetId(), err)
	}
	sum := sha256.Sum256(b)
	return string(sum[:]), nil
}
