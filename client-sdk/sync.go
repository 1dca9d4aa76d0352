package sdk

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/internal/bearer"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/internal/wire"
	"github.com/doorbook/doorbook/syncengine"
)

// Sizes of what one round trip carries.
const (
	pushBatch = 500
	// pushBytes bounds a push's changes in bytes as well: the server takes
	// messages of up to 4 MiB, and a batch of visits with long notes and
	// findings could pass that.
	pushBytes     = 1 << 20
	pullLimit     = 1000
	bootstrapPage = 200
	// maxEvictionRetries bounds how often a sync re-pushes because a
	// household with unsent changes is leaving the scope.
	maxEvictionRetries = 5
)

// SyncReport says what a Sync did.
type SyncReport struct {
	Pushed     int
	Duplicates int
	Pulled     int
	// Bootstrapped counts households received whole.
	Bootstrapped int
	// Snapshot: they came as one file of the scope.
	Snapshot bool
	// Adopted: that file became the replica's database whole. It is not
	// when the replica held rows already or the file is of another
	// release's schema; its rows are copied in then.
	Adopted bool
	Evicted int
	// Restamped counts unsent changes given new clocks because the phone's
	// clock ran ahead of the server's.
	Restamped int
	// Rejected counts changes the server refused for good, set aside (see
	// Replica.Rejected) so that the rest could go.
	Rejected int
	// Reset: the replica started over from the server's state, keeping its
	// unsent changes: the server no longer had its feed position (restored
	// from a backup), or it refused a change whose effect had to be undone.
	Reset  bool
	Cursor uint64
	// Attachments is what the upload lane did after the rows.
	Attachments AttachmentReport
}

type clients struct {
	sync doorbookv1connect.SyncServiceClient
}

func (r *Replica) clients(s state) clients {
	return clients{sync: doorbookv1connect.NewSyncServiceClient(r.http, s.ServerURL,
		connect.WithInterceptors(bearer.Token(s.Token)), r.coders.ClientOptions(r.noCompression))}
}

// deviceState is what the phone tells the server of itself as a sync
// begins: its app's version, and what waits in its outbox (how many
// changes, and the oldest visit among them). Telling is best effort: a
// replica that cannot read its outbox now says only its version.
func (r *Replica) deviceState(ctx context.Context) *pb.DeviceState {
	out := &pb.DeviceState{AppVersion: r.appVersion}
	rows, err := r.db.R.QueryContext(ctx, `SELECT payload FROM outbox ORDER BY seq`)
	if err != nil {
		return out
	}
	defer rows.Close()
	var oldest time.Time
	for rows.Next() {
		var payload []byte
		if rows.Scan(&payload) != nil {
			return out
		}
		out.Outbox++
		if c, _, err := decodeChange(payload); err == nil && c.Visit != nil && (oldest.IsZero() || c.Visit.VisitedAt.Before(oldest)) {
			oldest = c.Visit.VisitedAt
		}
	}
	if !oldest.IsZero() {
		out.OldestUnsyncedVisitAt = timestamppb.New(oldest)
	}
	return out
}

// observe moves the clock past the server's and learns the wall-clock
// offset, so that a phone whose clock is wrong stamps its next writes with
// the server's time.
func (r *Replica) observe(serverHLC uint64) {
	if serverHLC == 0 {
		return
	}
	r.clock.SetOffset(syncengine.HLCTime(serverHLC).Sub(r.now()).Round(time.Millisecond))
	r.clock.Observe(serverHLC)
}

// Enroll registers this replica as a device of the worker the code was
// issued for, with the server at serverURL. A replica enrolled before may
// enrol again with a new code for the same worker, keeping everything it
// holds: what a phone does when a server restored from a backup no longer
// knows it.
func (r *Replica) Enroll(ctx context.Context, serverURL, code, deviceName string) error {
	st, err := readState(ctx, r.db.R)
	if err != nil {
		return err
	}
	client := doorbookv1connect.NewEnrollmentServiceClient(r.http, serverURL, r.coders.ClientOptions(r.noCompression))
	res, err := client.Enroll(ctx, &pb.EnrollRequest{Code: code, DeviceName: deviceName})
	if err != nil {
		return callError("enroll", err)
	}
	// An enrolled replica enrols again, keeping all it holds, for its own
	// worker only: a server restored from a backup older than its first
	// enrolment no longer knows its token, and its unsent work must still
	// reach it.
	if st.Token != "" && res.GetScope().GetWorker().GetId() != st.WorkerID {
		return fmt.Errorf("%w: this replica holds the data of worker %s (%s), and the code was for worker %s: enrol a new replica with it",
			syncengine.ErrInvalid, st.WorkerName, st.WorkerID, res.GetScope().GetWorker().GetName())
	}
	r.observe(res.GetServerHlc())
	err = r.db.Write(ctx, func(tx *sqlitex.Tx) error {
		w := res.GetScope().GetWorker()
		if _, err := tx.ExecContext(ctx, `UPDATE sync_state SET server_url = ?, device_id = ?, token = ?, worker_id = ?, worker_name = ?,
			revoked_at = 0, revoked_reason = '' WHERE id = 1`,
			serverURL, res.GetDeviceId(), res.GetToken(), w.GetId(), w.GetName()); err != nil {
			return err
		}
		if err := saveScope(ctx, tx, res.GetScope()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO pending_bootstraps (key) VALUES ('*')`); err != nil {
			return err
		}
		return r.saveClock(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	return nil
}

func saveScope(ctx context.Context, tx *sqlitex.Tx, sc *pb.Scope) error {
	if sc == nil {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM my_grids`); err != nil {
		return err
	}
	for _, g := range sc.GetGrids() {
		if _, err := tx.ExecContext(ctx, `INSERT INTO my_grids (grid_id, name) VALUES (?, ?)`, g.GetId(), g.GetName()); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `UPDATE sync_state SET worker_name = ?, worker_role = ? WHERE id = 1`, sc.GetWorker().GetName(), int32(sc.GetWorker().GetRole()))
	return err
}

// applyReference merges the categories and campaigns a response carries.
func applyReference(ctx context.Context, tx *sqlitex.Tx, cats []*pb.Category, camps []*pb.Campaign) error {
	if len(cats)+len(camps) == 0 {
		return nil
	}
	ref, err := wire.ReferenceFromProto(cats, camps)
	if err != nil {
		return err
	}
	if err := ref.Validate(); err != nil {
		return err
	}
	return statedb.ApplyReference(ctx, tx, &ref)
}

// Sync pushes the outbox, runs pending bootstraps, and pulls to the newest
// cursor. Each step commits on its own: a sync cut short anywhere (network,
// app killed) loses nothing and resumes at the next call.
func (r *Replica) Sync(ctx context.Context) (SyncReport, error) {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	var rep SyncReport
	r.told = r.deviceState(ctx)
	err := r.sync(ctx, &rep)
	if d := revokedDetail(err); d != nil {
		if werr := r.wipe(ctx, d); werr != nil {
			err = errors.Join(err, werr)
		} else {
			err = &RevokedError{At: d.GetRevokedAt().AsTime().UTC(), Reason: d.GetReason()}
		}
	}
	r.recordSync(ctx, err)
	if err != nil {
		return rep, fmt.Errorf("sync: %w", err)
	}
	// The files go once the rows have: a slow upload must not hold up the
	// ledger, nor count against the sync that succeeded.
	r.uploadAttachments(ctx, &rep.Attachments)
	return rep, nil
}

func (r *Replica) sync(ctx context.Context, rep *SyncReport) error {
	st, err := r.enrolledState(ctx, r.db.R)
	if err != nil {
		return err
	}
	c := r.clients(st)
	// Each reason to go round again has its own budget, so that one cannot
	// use up another's.
	var evictRetries, resets, rounds int
	// A pull sent while the last batch pushed leaves the outbox; its
	// goroutine ends before the sync does.
	var ahead *pullAhead
	defer func() { ahead.discard() }()
	for {
		rejected := rep.Rejected
		last, err := r.push(ctx, c, rep)
		if err == nil && last != nil {
			ahead.discard()
			ahead = nil
			// After a refusal the replica starts over (below) before it
			// pulls: no pull goes ahead then.
			if rep.Rejected == rejected {
				ahead, err = r.pullAhead(ctx, c)
			}
			if err == nil {
				err = r.dropPushedBatch(ctx, last, rep)
			}
		}
		if err != nil {
			if isStaleCursor(err) && resets < 1 {
				// Start over. A server restored from a backup may have lost
				// what it acknowledged: that goes back first (see
				// resetReplica). Past the horizon, it has it all.
				resets++
				if err := r.resetReplica(ctx, !errors.Is(err, syncengine.ErrCursorExpired)); err != nil {
					return err
				}
				rep.Reset = true
				continue
			}
			return err
		}
		if rep.Rejected > rejected {
			// A refused change's effect is in the local tables: start over
			// from the server's state (unsent changes are kept).
			if err := r.resetReplica(ctx, false); err != nil {
				return err
			}
			rep.Reset = true
		}
		if err := r.bootstraps(ctx, c, rep); err != nil {
			return err
		}
		err = r.pull(ctx, c, rep, ahead)
		ahead = nil
		if errors.Is(err, errEvictPending) && evictRetries < maxEvictionRetries {
			evictRetries++
			// A household leaving the scope has unsent changes: push them
			// while the server still accepts them, then pull again.
			continue
		}
		if isStaleCursor(err) && resets < 1 {
			resets++
			if err := r.resetReplica(ctx, !errors.Is(err, syncengine.ErrCursorExpired)); err != nil {
				return err
			}
			rep.Reset = true
			continue
		}
		if err != nil {
			return err
		}
		more, err := r.hasPendingBootstraps(ctx)
		if err != nil {
			return err
		}
		// New grids can arrive while bootstrapping; the next sync goes on.
		if rounds++; !more || rounds > maxEvictionRetries {
			return nil
		}
	}
}

func (r *Replica) recordSync(ctx context.Context, syncErr error) {
	now := r.now().UnixMilli()
	_ = r.db.Write(context.WithoutCancel(ctx), func(tx *sqlitex.Tx) error {
		tx.Changed() // the sync's state alone
		if syncErr == nil {
			_, err := tx.ExecContext(ctx, `UPDATE sync_state SET last_sync_at = ?, last_error = '' WHERE id = 1`, now)
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE sync_state SET last_error = ?, last_error_at = ? WHERE id = 1`, syncErr.Error(), now)
		return err
	})
}

func (r *Replica) report(phase string, done, total int) {
	if r.progress != nil {
		r.progress(Progress{Phase: phase, Done: done, Total: total})
	}
}

// push sends the outbox in batches, oldest first, and drops each batch once
// the server has acknowledged it, but for the last, which it returns for the
// caller to drop (dropPushedBatch) while its pull goes out. A batch whose
// acknowledgement is lost is sent again; the server recognises its change
// ids.
//
// While the server applies one batch, the phone reads the next from the
// outbox and drops the one acknowledged before: the two sides work at the
// same time instead of waiting on each other. Batches still go one at a
// time, in order, since a change may need one before it (a visit to a
// household registered in the previous batch). Dropping a batch after the
// next one is sent is safe: if the phone dies in between, the batch goes
// again and the server counts it as duplicates.
func (r *Replica) push(ctx context.Context, c clients, rep *SyncReport) (*pushedBatch, error) {
	total, err := r.Pending(ctx)
	if err != nil || total == 0 {
		return nil, err
	}
	st, err := readState(ctx, r.db.R)
	if err != nil {
		return nil, err
	}
	cursor := st.Cursor
	restamped := false
	var (
		next  *outboxBatch // read ahead, after the batch in flight
		acked *pushedBatch // acknowledged, still in the outbox
	)
	dropAcked := func() error {
		if acked == nil {
			return nil
		}
		b := acked
		acked = nil
		return r.dropPushedBatch(ctx, b, rep)
	}
	for {
		b := next
		next = nil
		if b == nil {
			var after int64
			if acked != nil {
				after = acked.batch.lastSeq()
			}
			if b, err = r.outboxBatch(ctx, after); err != nil {
				return nil, err
			}
		}
		if len(b.changes) == 0 {
			return acked, nil
		}
		type answer struct {
			res *pb.PushResponse
			err error
		}
		sent := make(chan answer, 1)
		go func() {
			res, err := c.sync.Push(ctx, &pb.PushRequest{Changes: b.changes, Cursor: cursor})
			sent <- answer{res, err}
		}()
		ackErr := dropAcked()
		var readErr error
		if ackErr == nil {
			next, readErr = r.outboxBatch(ctx, b.lastSeq())
		}
		ans := <-sent
		if ackErr != nil {
			return nil, ackErr
		}
		if readErr != nil || ans.err != nil {
			next = nil // read again after a restamp or a rejection
		}
		if err := ans.err; err != nil {
			var ce *connect.Error
			if errors.As(err, &ce) && skewDetail(ce) != nil && !restamped {
				n, rerr := r.restamp(ctx, skewDetail(ce))
				if rerr != nil {
					return nil, rerr
				}
				rep.Restamped += n
				restamped = true
				continue
			}
			if id := wire.RejectedChangeID(err); id != "" {
				if rerr := r.reject(ctx, id, fromConnect(err)); rerr != nil {
					return nil, rerr
				}
				rep.Rejected++
				continue
			}
			return nil, callError("push", err)
		}
		r.observe(ans.res.GetServerHlc())
		acked = &pushedBatch{batch: b, applied: int(ans.res.GetApplied()), duplicates: int(ans.res.GetDuplicates()), of: total}
	}
}

// pushedBatch is a batch the server has acknowledged; of is how many
// changes the push began with, for its progress.
type pushedBatch struct {
	batch               *outboxBatch
	applied, duplicates int
	of                  int
}

// dropPushedBatch drops an acknowledged batch from the outbox and counts it.
func (r *Replica) dropPushedBatch(ctx context.Context, b *pushedBatch, rep *SyncReport) error {
	if err := r.dropPushed(ctx, b.batch); err != nil {
		return err
	}
	rep.Pushed += b.applied
	rep.Duplicates += b.duplicates
	r.report("push", rep.Pushed+rep.Duplicates, b.of)
	return nil
}

// dropPushed moves an acknowledged batch from the outbox to the changes
// kept in case the server is restored (see resetReplica), and lets go of
// those kept longer than the replica's retention.
func (r *Replica) dropPushed(ctx context.Context, b *outboxBatch) error {
	now := r.now()
	err := r.db.Write(ctx, func(tx *sqlitex.Tx) error {
		tx.Changed() // the outbox and the clocks: no replicated row
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO pushed (seq, change_id, payload, created_at, pushed_at)
			SELECT seq, change_id, payload, created_at, ? FROM outbox WHERE seq <= ?`, now.UnixMilli(), b.lastSeq()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pushed WHERE pushed_at < ?`, now.Add(-r.keepPushed).UnixMilli()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE seq <= ?`, b.lastSeq()); err != nil {
			return err
		}
		// The server now holds these clocks: a later re-stamp must
		// stay above them, even if their echo is never pulled.
		if _, err := tx.ExecContext(ctx, `UPDATE sync_state SET remote_hlc = max(remote_hlc, ?) WHERE id = 1`, int64(b.newest)); err != nil {
			return err
		}
		return r.saveClock(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("acknowledge push: %w", err)
	}
	return nil
}

// outboxBatch is the next batch to push, with the newest clock in it.
type outboxBatch struct {
	seqs    []int64
	changes []*pb.Change
	newest  uint64
}

func (b *outboxBatch) lastSeq() int64 { return b.seqs[len(b.seqs)-1] }

// outboxBatch reads the batch to push after outbox position after.
func (r *Replica) outboxBatch(ctx context.Context, after int64) (*outboxBatch, error) {
	entries, err := readOutboxAfter(ctx, r.db.R, after, pushBatch)
	if err != nil {
		return nil, err
	}
	b := &outboxBatch{}
	size := 0
	for _, e := range entries {
		if size += proto.Size(e.wire); size > pushBytes && len(b.changes) > 0 {
			break
		}
		b.seqs, b.changes = append(b.seqs, e.seq), append(b.changes, e.wire)
		b.newest = max(b.newest, e.change.MaxClock().HLC)
	}
	return b, nil
}

// outboxEntry is one queued change, decoded for the engine and for the wire.
type outboxEntry struct {
	seq    int64
	change syncengine.Change
	wire   *pb.Change
}

// readOutbox reads the outbox in order, the first limit entries (0: all).
func readOutbox(ctx context.Context, q statedb.Querier, limit int) ([]outboxEntry, error) {
	return readOutboxAfter(ctx, q, 0, limit)
}

// readOutboxAfter is readOutbox from the entry after position after.
func readOutboxAfter(ctx context.Context, q statedb.Querier, after int64, limit int) ([]outboxEntry, error) {
	return readChanges(ctx, q, "outbox", after, limit)
}

// readChanges reads queued changes of table (the outbox, or those kept
// once pushed) in order, after position after, at most limit (0: all).
func readChanges(ctx context.Context, q statedb.Querier, table string, after int64, limit int) ([]outboxEntry, error) {
	query, args := `SELECT seq, payload FROM `+table+` WHERE seq > ? ORDER BY seq`, []any{after}
	if limit > 0 {
		query, args = query+` LIMIT +?`, append(args, limit)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var out []outboxEntry
	for rows.Next() {
		var e outboxEntry
		var payload []byte
		if err := rows.Scan(&e.seq, &payload); err != nil {
			return nil, err
		}
		if e.change, e.wire, err = decodeChange(payload); err != nil {
			return nil, fmt.Errorf("outbox entry %d: %w", e.seq, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func skewDetail(ce *connect.Error) *pb.ClockSkew {
	for _, d := range ce.Details() {
		if m, err := d.Value(); err == nil {
			if s, ok := m.(*pb.ClockSkew); ok {
				return s
			}
		}
	}
	return nil
}

// bootstraps runs or resumes every pending bootstrap.
func (r *Replica) bootstraps(ctx context.Context, c clients, rep *SyncReport) error {
	type pending struct {
		key, after string
	}
	var todo []pending
	rows, err := r.db.R.QueryContext(ctx, `SELECT key, after_id FROM pending_bootstraps ORDER BY key`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var p pending
		if err := rows.Scan(&p.key, &p.after); err != nil {
			rows.Close()
			return err
		}
		todo = append(todo, p)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, p := range todo {
		if err := r.bootstrap(ctx, c, p.key, p.after, rep); err != nil {
			return err
		}
	}
	return nil
}

// bootstrap streams whole households of one pending bootstrap, committing
// each page with the position to resume from.
func (r *Replica) bootstrap(ctx context.Context, c clients, key, after string, rep *SyncReport) error {
	err := r.bootstrapFrom(ctx, c, key, after, r.snapshotMin >= 0, rep)
	if errors.Is(err, errSnapshotSchema) {
		r.log.Warn().Err(err).Msg("bootstrap: taking rows instead of the server's snapshot")
		err = r.bootstrapFrom(ctx, c, key, after, false, rep)
	}
	return err
}

// bootstrapFrom is bootstrap, asking for a snapshot if snapshot is set and
// the replica is new.
func (r *Replica) bootstrapFrom(ctx context.Context, c clients, key, after string, snapshot bool, rep *SyncReport) error {
	req := &pb.BootstrapRequest{AfterHouseholdId: after, PageSize: bootstrapPage}
	if key != "*" {
		req.GridIds = []string{key}
	}
	if key == "*" && after == "" && snapshot {
		empty, err := r.replicatedTablesEmpty(ctx)
		if err != nil {
			return err
		}
		req.Snapshot, req.SnapshotMinHouseholds = empty, uint32(r.snapshotMin)
		if empty && r.partial.id != "" {
			req.ResumeSnapshotId, req.ResumeSnapshotOffset = r.partial.id, r.partial.got
		}
	}
	stream, err := c.sync.Bootstrap(ctx, req)
	if err != nil {
		return callError("bootstrap", err)
	}
	defer stream.Close()
	done, total := 0, 0
	for stream.Receive() {
		msg := stream.Msg()
		if msg.GetSnapshot() {
			if err := r.receiveSnapshot(ctx, stream, key, rep); err != nil {
				return fmt.Errorf("bootstrap: %w", err)
			}
			return nil
		}
		if r.partial.id != "" {
			// Pages instead: the part of a file kept to resume goes.
			r.removeSnapshotFile()
			r.partial = partialSnapshot{}
		}
		if total == 0 {
			total = int(msg.GetTotalHouseholds())
		}
		b := wire.BundleFromProto(wire.Rows{Households: msg.GetHouseholds(), Persons: msg.GetPersons(), Tags: msg.GetTags(), Visits: msg.GetVisits(), Amendments: msg.GetVisitAmendments()})
		if err := b.Validate(); err != nil {
			return fmt.Errorf("bootstrap: server sent %w", err)
		}
		r.observe(msg.GetServerHlc())
		err := r.db.Write(ctx, func(tx *sqlitex.Tx) error {
			if err := r.applyRows(ctx, tx, &b); err != nil {
				return err
			}
			if err := applyReference(ctx, tx, msg.GetCategories(), msg.GetCampaigns()); err != nil {
				return err
			}
			if err := saveScope(ctx, tx, msg.GetScope()); err != nil {
				return err
			}
			last := msg.GetLastHouseholdId()
			if last == "" {
				last = after
			}
			_, err := tx.ExecContext(ctx, `UPDATE pending_bootstraps SET after_id = ?, cursor = COALESCE(cursor, ?) WHERE key = ?`, last, msg.GetCursor(), key)
			if err != nil {
				return err
			}
			return r.saveClock(ctx, tx)
		})
		if err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		after = msg.GetLastHouseholdId()
		done += len(b.Households)
		rep.Bootstrapped += len(b.Households)
		r.report("bootstrap", done, total)
	}
	if err := stream.Err(); err != nil {
		if key != "*" && connect.CodeOf(err) == connect.CodePermissionDenied {
			// The grid was taken away again before we fetched it; the
			// next pull says so and drops what arrived.
			return r.dropBootstrap(ctx, key, 0)
		}
		return callError("bootstrap", err)
	}
	var cursor sql.NullInt64
	if err := r.db.R.QueryRowContext(ctx, `SELECT cursor FROM pending_bootstraps WHERE key = ?`, key).Scan(&cursor); err != nil {
		return err
	}
	if key == "*" {
		return r.dropBootstrap(ctx, key, uint64(cursor.Int64))
	}
	return r.dropBootstrap(ctx, key, 0)
}

// dropBootstrap marks a bootstrap complete. A new device's first bootstrap
// sets the cursor to where the server stood when it began: what changed
// since reaches the device through the feed.
func (r *Replica) dropBootstrap(ctx context.Context, key string, cursor uint64) error {
	return r.db.Write(ctx, func(tx *sqlitex.Tx) error {
		if cursor > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE sync_state SET cursor = max(cursor, ?) WHERE id = 1`, cursor); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM pending_bootstraps WHERE key = ?`, key)
		return err
	})
}

func (r *Replica) hasPendingBootstraps(ctx context.Context) (bool, error) {
	var n int
	err := r.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM pending_bootstraps`).Scan(&n)
	return n > 0, err
}

// errEvictPending: a pull batch would drop a household that has unsent
// changes; the batch is not applied.
var errEvictPending = errors.New("household leaving scope has unsent changes")

// pullAhead is a pull sent before its turn: while the last batch pushed
// leaves the outbox, the request for what came after the replica's cursor
// is on its way, and a sync that pushed waits one round trip less (on a
// phone's link, most of a sync's time). pull uses the answer only if the
// cursor is still the one it was asked for; otherwise it is dropped, which
// changes nothing here: an answer writes nothing until it is applied.
type pullAhead struct {
	cursor uint64
	cancel context.CancelFunc
	done   chan struct{}
	res    *pb.PullResponse
	err    error
}

// pullAhead sends the sync's first pull, if it is the next thing the sync
// does: the replica has a cursor and no bootstrap to do first.
func (r *Replica) pullAhead(ctx context.Context, c clients) (*pullAhead, error) {
	st, err := readState(ctx, r.db.R)
	if err != nil || st.Cursor == 0 {
		return nil, err
	}
	if pending, err := r.hasPendingBootstraps(ctx); err != nil || pending {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	a := &pullAhead{cursor: st.Cursor, cancel: cancel, done: make(chan struct{})}
	req := &pb.PullRequest{Cursor: st.Cursor, Limit: pullLimit, Device: r.told}
	go func() {
		defer close(a.done)
		a.res, a.err = c.sync.Pull(ctx, req)
	}()
	return a, nil
}

// answer waits for the pull's answer.
func (a *pullAhead) answer() (*pb.PullResponse, error) {
	<-a.done
	a.cancel()
	return a.res, a.err
}

// discard drops a pull sent ahead (nil: none), once its call has ended.
func (a *pullAhead) discard() {
	if a == nil {
		return
	}
	a.cancel()
	<-a.done
}

// pull applies feed batches until the server has no more.
func (r *Replica) pull(ctx context.Context, c clients, rep *SyncReport, ahead *pullAhead) error {
	defer ahead.discard()
	scrub := false
	for {
		st, err := readState(ctx, r.db.R)
		if err != nil {
			return err
		}
		if st.Cursor == 0 {
			// No cursor until the first bootstrap completes.
			if pending, err := r.hasPendingBootstraps(ctx); err != nil || pending {
				return err
			}
		}
		// The answer of a pull sent ahead is this pull's if the cursor is
		// still the one it asked from. (sync discards one sent before
		// anything that starts the replica over.)
		var res *pb.PullResponse
		if ahead != nil && ahead.cursor == st.Cursor {
			res, err = ahead.answer()
		} else {
			ahead.discard()
			res, err = c.sync.Pull(ctx, &pb.PullRequest{Cursor: st.Cursor, Limit: pullLimit, Device: r.told})
		}
		ahead = nil
		if err != nil {
			return callError("pull", err)
		}
		b := wire.BundleFromProto(wire.Rows{Households: res.GetHouseholds(), Persons: res.GetPersons(), Tags: res.GetTags(), Visits: res.GetVisits(), Amendments: res.GetVisitAmendments()})
		if err := b.Validate(); err != nil {
			return fmt.Errorf("pull: server sent %w", err)
		}
		r.observe(res.GetServerHlc())
		evicted := 0
		var erasedFiles []string
		err = r.db.Write(ctx, func(tx *sqlitex.Tx) error {
			// The households whose rows this pull writes, found before
			// their rows go: a due list keeps what it read of the others.
			changed, err := pulledHouseholds(ctx, tx, res, &b)
			if err != nil {
				return err
			}
			gone, err := r.evict(ctx, tx, res)
			if err != nil {
				return err
			}
			evicted = len(gone)
			tx.Changed(append(changed, gone...)...)
			if evicted > 0 {
				// The files of visits that left with their households go
				// too, but for this phone's own still to be uploaded.
				if erasedFiles, err = pruneAttachments(ctx, tx); err != nil {
					return err
				}
			}
			if err := purge(ctx, tx, res); err != nil {
				return err
			}
			// Erased visits and amendments come again, blanked: the copies
			// here go first (they are immutable otherwise).
			if err := statedb.DeleteVisits(ctx, tx, res.GetReplacedVisitIds()); err != nil {
				return err
			}
			// Their files went on the server with the erasure: here too.
			forgotten, err := forgetAttachments(ctx, tx, res.GetReplacedVisitIds())
			if err != nil {
				return err
			}
			erasedFiles = append(erasedFiles, forgotten...)
			if err := statedb.DeleteAmendments(ctx, tx, res.GetReplacedAmendmentIds()); err != nil {
				return err
			}
			if err := r.applyRows(ctx, tx, &b); err != nil {
				return err
			}
			if err := forgetErased(ctx, tx, res); err != nil {
				return err
			}
			if err := applyReference(ctx, tx, res.GetCategories(), res.GetCampaigns()); err != nil {
				return err
			}
			for _, g := range res.GetAddedGridIds() {
				if _, err := tx.ExecContext(ctx, `INSERT INTO pending_bootstraps (key) VALUES (?) ON CONFLICT (key) DO UPDATE SET after_id = ''`, g); err != nil {
					return err
				}
			}
			if err := saveScope(ctx, tx, res.GetScope()); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE sync_state SET cursor = ? WHERE id = 1`, res.GetCursor()); err != nil {
				return err
			}
			if err := r.notePolicy(ctx, tx, res); err != nil {
				return err
			}
			return r.saveClock(ctx, tx)
		})
		if err != nil {
			if errors.Is(err, errEvictPending) {
				return err
			}
			return fmt.Errorf("apply pull: %w", err)
		}
		r.removeFilesOf(erasedFiles)
		rep.Pulled += b.Rows()
		rep.Evicted += evicted
		scrub = scrub || evicted > 0 || len(res.GetErasedHouseholdIds())+len(res.GetErasedPersonIds())+len(res.GetReplacedVisitIds())+len(res.GetReplacedAmendmentIds()) > 0
		rep.Cursor = res.GetCursor()
		r.report("pull", rep.Pulled, 0)
		if !res.GetMore() {
			break
		}
	}
	if scrub {
		// The evicted rows are zeroed in their pages (secure_delete), but
		// copies of those pages may still sit in the write-ahead log.
		if err := r.scrub(ctx); err != nil {
			r.log.Warn().Err(err).Msg("evicted households may stay in the write-ahead log until the next checkpoint")
		}
	}
	return nil
}

// evict drops the households that left the scope, unless one of them has
// unsent changes: then nothing is applied (errEvictPending), the changes are
// pushed, and the batch is pulled again.
func (r *Replica) evict(ctx context.Context, tx *sqlitex.Tx, res *pb.PullResponse) ([]string, error) {
	ids := append([]string(nil), res.GetEvictedHouseholdIds()...)
	for _, g := range res.GetEvictedGridIds() {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM households WHERE grid_id = ?`, g)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pending_bootstraps WHERE key = ?`, g); err != nil {
			return nil, err
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	pending, err := pendingHouseholds(ctx, tx)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if pending[id] {
			return nil, fmt.Errorf("%w: %s", errEvictPending, id)
		}
	}
	if err := forgetPushed(ctx, tx, ids); err != nil {
		return nil, err
	}
	if err := keepOwnVisits(ctx, tx, ids); err != nil {
		return nil, err
	}
	return ids, statedb.DeleteHouseholds(ctx, tx, ids)
}

// pulledHouseholds lists the households whose replicated rows a pull
// writes besides those it evicts: those of its rows (an amendment's through
// its visit, here or in the pull), of the visits and amendments it
// replaces, and of the tombstones it purges. Categories, campaigns, the
// scope and the visits kept of households gone are read again by every
// analysis.
func pulledHouseholds(ctx context.Context, tx *sqlitex.Tx, res *pb.PullResponse, b *syncengine.Bundle) ([]string, error) {
	var out []string
	for i := range b.Households {
		out = append(out, b.Households[i].ID)
	}
	for i := range b.Persons {
		out = append(out, b.Persons[i].HouseholdID)
	}
	for _, t := range b.Tags {
		out = append(out, t.HouseholdID)
	}
	inPull := map[string][]string{}
	for _, v := range b.Visits {
		out = append(out, v.HouseholdIDs...)
		inPull[v.ID] = v.HouseholdIDs
	}
	var visits []string
	for _, a := range b.Amendments {
		if hs, ok := inPull[a.VisitID]; ok {
			out = append(out, hs...)
		} else {
			visits = append(visits, a.VisitID)
		}
	}
	visits = append(visits, res.GetReplacedVisitIds()...)
	// A person or tag merged into a stored one keeps the stored household
	// if the two differ (syncengine's merge: a broken replica's only).
	var persons, tags []string
	for i := range b.Persons {
		persons = append(persons, b.Persons[i].ID)
	}
	for _, t := range b.Tags {
		tags = append(tags, t.AddID)
	}
	persons = append(persons, res.GetPurgedPersonIds()...)
	tags = append(tags, res.GetPurgedTagIds()...)
	// One statement for each kind of id, however many: a pull holds up to
	// a thousand rows.
	for _, q := range []struct {
		query string
		ids   []string
	}{
		{`SELECT household_id FROM persons WHERE id IN (SELECT value FROM json_each(?))`, persons},
		{`SELECT household_id FROM tag_elements WHERE add_id IN (SELECT value FROM json_each(?))`, tags},
		{`SELECT household_id FROM visit_households WHERE visit_id IN (SELECT value FROM json_each(?))`, visits},
		{`SELECT vh.household_id FROM visit_amendments a JOIN visit_households vh ON vh.visit_id = a.visit_id
			WHERE a.id IN (SELECT value FROM json_each(?))`, res.GetReplacedAmendmentIds()},
	} {
		if len(q.ids) == 0 {
			continue
		}
		list, err := json.Marshal(q.ids)
		if err != nil {
			return nil, err
		}
		hs, err := queryStrings(ctx, tx, q.query, string(list))
		if err != nil {
			return nil, fmt.Errorf("apply pull: %w", err)
		}
		out = append(out, hs...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// keepOwnVisits records the worker's own visits to households leaving the
// phone (ids and dates, as amended; voided ones not), for their quota.
func keepOwnVisits(ctx context.Context, tx *sqlitex.Tx, households []string) error {
	var worker string
	if err := tx.QueryRowContext(ctx, `SELECT worker_id FROM sync_state WHERE id = 1`).Scan(&worker); err != nil {
		return err
	}
	b, err := statedb.LoadBundle(ctx, tx, households)
	if err != nil {
		return err
	}
	byVisit := map[string][]syncengine.Amendment{}
	for _, a := range b.Amendments {
		byVisit[a.VisitID] = append(byVisit[a.VisitID], a)
	}
	leaving := map[string]bool{}
	for _, h := range households {
		leaving[h] = true
	}
	for _, v := range b.Visits {
		if v.VisitorID != worker {
			continue
		}
		view := syncengine.Effective(v, byVisit[v.ID])
		if view.Voided {
			continue
		}
		for _, h := range v.HouseholdIDs {
			if !leaving[h] {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO visited_elsewhere (visit_id, household_id, visited_at) VALUES (?, ?, ?)`,
				v.ID, h, view.VisitedAt.UnixMilli()); err != nil {
				return err
			}
		}
	}
	return nil
}

// forgetErased drops this phone's copies of its own changes that hold
// erased personal data, kept after they were pushed or set aside as
// rejected: of any erased household (its fields, its persons, its visits),
// erased person, or visit or amendment replaced by a blank copy.
func forgetErased(ctx context.Context, tx *sqlitex.Tx, res *pb.PullResponse) error {
	erased := map[string]bool{}
	for _, ids := range [][]string{res.GetErasedHouseholdIds(), res.GetErasedPersonIds(), res.GetReplacedVisitIds(), res.GetReplacedAmendmentIds()} {
		for _, id := range ids {
			erased[id] = true
		}
	}
	if len(erased) == 0 {
		return nil
	}
	drop := func(c *syncengine.Change, hs []string) bool {
		return slices.ContainsFunc(hs, func(h string) bool { return erased[h] }) ||
			(c.Person != nil && erased[c.Person.ID]) || (c.Visit != nil && erased[c.Visit.ID]) || (c.Amendment != nil && erased[c.Amendment.ID])
	}
	for _, table := range []string{"pushed", "rejected_changes"} {
		if err := forgetIf(ctx, tx, table, drop); err != nil {
			return err
		}
	}
	return nil
}

// forgetIf drops the changes kept in table (pushed, rejected_changes) that
// drop picks, given each one and the households it writes.
func forgetIf(ctx context.Context, tx *sqlitex.Tx, table string, drop func(c *syncengine.Change, households []string) bool) error {
	rows, err := tx.QueryContext(ctx, `SELECT change_id, payload FROM `+table)
	if err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	var gone []string
	for rows.Next() {
		var id string
		var payload []byte
		if err := rows.Scan(&id, &payload); err != nil {
			rows.Close()
			return err
		}
		c, _, err := decodeChange(payload)
		if err != nil {
			rows.Close()
			return err
		}
		hs, err := changeHouseholds(ctx, tx, &c)
		if err != nil {
			rows.Close()
			return err
		}
		if drop(&c, hs) {
			gone = append(gone, id)
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, id := range gone {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE change_id = ?`, id); err != nil {
			return err
		}
	}
	return nil
}

// purge deletes the tombstones the server collected past its horizon.
func purge(ctx context.Context, tx *sqlitex.Tx, res *pb.PullResponse) error {
	for _, p := range []struct {
		query string
		ids   []string
	}{
		{`DELETE FROM persons WHERE id = ?`, res.GetPurgedPersonIds()},
		{`DELETE FROM tag_elements WHERE add_id = ?`, res.GetPurgedTagIds()},
	} {
		for _, id := range p.ids {
			if _, err := tx.ExecContext(ctx, p.query, id); err != nil {
				return fmt.Errorf("purge: %w", err)
			}
		}
	}
	return nil
}

// pendingHouseholds is the set of households the outbox has changes for.
func pendingHouseholds(ctx context.Context, tx *sqlitex.Tx) (map[string]bool, error) {
	entries, err := readOutbox(ctx, tx, 0)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, e := range entries {
		hs, err := changeHouseholds(ctx, tx, &e.change)
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			out[h] = true
		}
	}
	return out, nil
}

// changeHouseholds lists the households a change writes.
func changeHouseholds(ctx context.Context, tx *sqlitex.Tx, c *syncengine.Change) ([]string, error) {
	switch {
	case c.Household != nil:
		return []string{c.Household.ID}, nil
	case c.Person != nil:
		return []string{c.Person.HouseholdID}, nil
	case c.Tag != nil:
		return []string{c.Tag.HouseholdID}, nil
	case c.Visit != nil:
		return c.Visit.HouseholdIDs, nil
	case c.Amendment != nil:
		vs, err := statedb.Visits(ctx, tx, []string{c.Amendment.VisitID})
		if err != nil {
			return nil, err
		}
		var out []string
		for _, v := range vs {
			out = append(out, v.HouseholdIDs...)
		}
		return out, nil
	}
	return nil, nil
}

// forgetPushed drops the kept acknowledged changes that write only
// households leaving the replica: what left a worker's scope must leave
// the phone, kept copies included (their pushing again after a restore is
// given up for it).
func forgetPushed(ctx context.Context, tx *sqlitex.Tx, evicted []string) error {
	gone := map[string]bool{}
	for _, id := range evicted {
		gone[id] = true
	}
	return forgetIf(ctx, tx, "pushed", func(_ *syncengine.Change, hs []string) bool {
		return len(hs) > 0 && !slices.ContainsFunc(hs, func(h string) bool { return !gone[h] })
	})
}

// applyRows merges rows from the server and moves the clock past them.
func (r *Replica) applyRows(ctx context.Context, tx *sqlitex.Tx, b *syncengine.Bundle) error {
	if err := statedb.ApplyBundle(ctx, tx, b); err != nil {
		return err
	}
	var newest uint64
	for i := range b.Households {
		newest = max(newest, b.Households[i].MaxClock().HLC)
	}
	for i := range b.Persons {
		newest = max(newest, b.Persons[i].MaxClock().HLC)
	}
	for _, t := range b.Tags {
		newest = max(newest, t.Clock.HLC)
	}
	for _, v := range b.Visits {
		newest = max(newest, v.Clock.HLC)
	}
	for _, a := range b.Amendments {
		newest = max(newest, a.Clock.HLC)
	}
	r.clock.Observe(newest)
	_, err := tx.ExecContext(ctx, `UPDATE sync_state SET remote_hlc = max(remote_hlc, ?) WHERE id = 1`, int64(newest))
	return err
}

// restamp handles a push refused for clock skew: the phone's clock ran ahead
// of the server's. No one but this replica has seen its unsent changes, so
// it may give them new clocks: it moves its clock to the server's, then
// re-stamps each unsent change in order, and the local rows whose fields
// still hold that change's clock.
func (r *Replica) restamp(ctx context.Context, skew *pb.ClockSkew) (int, error) {
	r.observe(skew.GetServerHlc())
	limit := syncengine.PackHLC(syncengine.HLCTime(skew.GetServerHlc()).UnixMilli()+int64(skew.GetMaxSkewMillis()), 0)
	n := 0
	err := r.db.Write(ctx, func(tx *sqlitex.Tx) error {
		entries, err := readOutbox(ctx, tx, 0)
		if err != nil {
			return err
		}
		// Re-stamped changes must stay after every change before them that
		// keeps its clock, and after every clock the server holds as far as
		// this replica knows (rows pulled, changes acknowledged): a
		// re-stamped write that replaced such a value here must replace it
		// everywhere.
		var remote int64
		if err := tx.QueryRowContext(ctx, `SELECT remote_hlc FROM sync_state WHERE id = 1`).Scan(&remote); err != nil {
			return err
		}
		floor := max(skew.GetServerHlc(), uint64(remote))
		for _, e := range entries {
			if hlc := e.change.MaxClock().HLC; hlc <= limit {
				floor = max(floor, hlc)
			}
		}
		r.clock.Reset(floor)
		rs := &restamper{clock: r.clock, remap: map[syncengine.Clock]syncengine.Clock{}}
		for _, e := range entries {
			if e.change.MaxClock().HLC <= limit {
				continue
			}
			if err := rs.restampChange(ctx, tx, &e.change); err != nil {
				return err
			}
			payload, err := proto.Marshal(wire.ChangeToProto(&e.change))
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET payload = ? WHERE seq = ?`, payload, e.seq); err != nil {
				return err
			}
			n++
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sync_state SET hlc = ? WHERE id = 1`, int64(r.clock.Peek())); err != nil {
			return err
		}
		return r.saveClock(ctx, tx)
	})
	if err != nil {
		return 0, fmt.Errorf("re-stamp changes after clock skew: %w", err)
	}
	r.log.Warn().Int("changes", n).Dur("offset", r.clock.Offset()).Msg("phone clock ran ahead of the server: unsent changes re-stamped")
	return n, nil
}
