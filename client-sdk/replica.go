// Package sdk is Doorbook's embeddable client: a local SQLite replica of a
// worker's scope that takes every write offline and syncs when the network
// allows.
//
// Every write (register a household, edit it, link a person, tag it, record,
// amend or void a visit) applies to the local file and queues a change in
// the same transaction, so it is visible at once and never lost. Sync pushes
// the queue and pulls what changed, each step committed on its own, so that
// a killed app resumes where it stopped. Merges use syncengine, the same
// code the server runs.
//
//	r, err := sdk.Open(ctx, "replica.db")
//	err = r.Enroll(ctx, "https://doorbook.example", "ABCD-EFGH-JKLM", "Li's phone")
//	id, err := r.RegisterHousehold(ctx, gridID, map[string]string{"head_name": "王芳"})
//	_, err = r.RecordVisit(ctx, sdk.VisitInput{HouseholdIDs: []string{id}, Form: syncengine.FormInPerson})
//	report, err := r.Sync(ctx)
package sdk

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/internal/compress"
	"github.com/doorbook/doorbook/internal/deadline"
	"github.com/doorbook/doorbook/internal/sqlitex"
	"github.com/doorbook/doorbook/internal/statedb"
	"github.com/doorbook/doorbook/internal/wire"
	"github.com/doorbook/doorbook/syncengine"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one step of the replica's schema: SQL takes a file from the
// version before to Version.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations is the replica schema, in order. Version 1 holds the
// replicated tables, 2 the sync state, 3 the schema's second release.
// Open applies those a file lacks; a tool or test may apply a prefix of
// them to make a file of an older schema.
func Migrations() ([]Migration, error) {
	ms, err := migrations()
	if err != nil {
		return nil, err
	}
	out := make([]Migration, len(ms))
	for i, m := range ms {
		out[i] = Migration{Version: m.Version, Name: m.Name, SQL: m.SQL}
	}
	return out, nil
}

func migrations() ([]sqlitex.Migration, error) {
	return statedb.Migrations(migrationFiles, "migrations")
}

// Replica is one local replica file. Its methods are safe for concurrent
// use; Sync calls run one at a time.
type Replica struct {
	db       *sqlitex.DB
	clock    *syncengine.HybridClock
	id       string
	log      zerolog.Logger
	now      func() time.Time
	http     *http.Client
	timeouts Timeouts
	// mustExist: Open fails on a missing file rather than create it.
	mustExist bool
	// keepPushed is how long acknowledged changes are kept (see
	// WithPushedRetention).
	keepPushed time.Duration
	progress   func(Progress)
	// noCompression: ask for, and send, uncompressed messages.
	noCompression bool
	// coders compress the messages of every client the replica makes.
	coders *compress.Coders
	// snapshotMin: a first bootstrap asks for the scope as a file if it
	// has at least this many households (0: whatever its size; -1: never).
	snapshotMin int
	// partial is a snapshot download that was cut, kept beside the
	// replica (snapshotPath) for the next bootstrap to resume; guarded by
	// syncMu, and gone with the process (Open removes the file).
	partial partialSnapshot

	// appVersion is the app's version, told to the server at each sync.
	appVersion string
	// told is what the sync in flight tells the server of the phone,
	// read when it began; guarded by syncMu.
	told *pb.DeviceState

	// analyses keeps the last analysis of the field rules (see
	// sharedAnalysis).
	analyses analysisCache

	syncMu sync.Mutex
	closed sync.Once
}

// Option configures a Replica.
type Option func(*Replica)

// WithAppVersion names the app's version, which each sync tells the
// server: admins see which phones run which version.
func WithAppVersion(v string) Option { return func(r *Replica) { r.appVersion = v } }

// WithLogger sets the replica's log (default: none).
func WithLogger(l zerolog.Logger) Option { return func(r *Replica) { r.log = l } }

// WithNow sets the wall clock (default time.Now): tests use it to play a
// phone whose clock is wrong.
func WithNow(now func() time.Time) Option { return func(r *Replica) { r.now = now } }

// WithHTTPClient sets the HTTP client used to reach the server. The
// replica's timeouts (WithTimeouts) are enforced on top of its transport,
// except the connect timeout, which is the transport's own dialer's.
func WithHTTPClient(c *http.Client) Option { return func(r *Replica) { r.http = c } }

// Timeouts bound the stages of every call to the server, so that a dead
// link or a server that accepts connections and never answers cannot hang
// Enroll or Sync: each gives up with an error that wraps ErrTimeout, and
// the background loop (RunSync) tries again later. A whole call has no
// deadline: a bootstrap over 2G may take many minutes, as long as bytes
// keep moving. Zero fields take DefaultTimeouts' values.
type Timeouts struct {
	// Connect bounds making a connection (TCP and TLS).
	Connect time.Duration
	// FirstByte bounds the wait for an answer to begin once the request is
	// sent whole.
	FirstByte time.Duration
	// Idle bounds a pause in the bytes of a request or an answer (between
	// the messages of a bootstrap stream, say).
	Idle time.Duration
}

// DefaultTimeouts suit a 2G link: 30 s to connect, a minute for an answer
// to begin, a minute of silence in the middle of one.
var DefaultTimeouts = Timeouts(deadline.Defaults)

// ErrTimeout: the server or the link went silent for longer than the
// replica's Timeouts allow. Nothing is lost; sync again later.
var ErrTimeout = errors.New("timed out")

// WithTimeouts sets the replica's timeouts (default DefaultTimeouts).
func WithTimeouts(t Timeouts) Option { return func(r *Replica) { r.timeouts = t } }

// DefaultPushedRetention is how long a phone keeps changes the server
// acknowledged: the server's collection horizon, past which a phone starts
// over anyway.
const DefaultPushedRetention = 90 * 24 * time.Hour

// WithPushedRetention sets how long the replica keeps changes after the
// server acknowledged them (default DefaultPushedRetention). If the server
// is restored from a backup, the phone pushes the ones it keeps again
// when it starts over: nothing recorded within the retention is lost.
func WithPushedRetention(d time.Duration) Option { return func(r *Replica) { r.keepPushed = d } }

// existingOnly makes Open fail with ErrNoReplica on a missing file.
func existingOnly() Option { return func(r *Replica) { r.mustExist = true } }

// ErrNoReplica: OpenExisting found no replica file at the path.
var ErrNoReplica = errors.New("no replica file")

// WithoutCompression asks the server for uncompressed answers and sends
// requests uncompressed: for a fast link, where compressing costs more
// time than the bytes it saves. By default both ways use zstd.
func WithoutCompression() Option { return func(r *Replica) { r.noCompression = true } }

// DefaultSnapshotHouseholds is the size of scope, in households, from which
// a new replica's first bootstrap takes its scope as a SQLite file by
// default: a community's. Below it pages of rows cost less than a file.
const DefaultSnapshotHouseholds = 2000

// WithSnapshotBootstrap makes a new replica's first bootstrap ask for its
// whole scope as a SQLite file, whose tables it copies into its own, rather
// than for pages of rows that it inserts one by one, whatever the scope's
// size (by default only from DefaultSnapshotHouseholds). A download cut
// short goes on from where it stopped while the program runs; pages also
// resume after a restart. A server that cannot make snapshots answers with
// pages.
func WithSnapshotBootstrap() Option { return WithSnapshotBootstrapFrom(0) }

// WithSnapshotBootstrapFrom makes a new replica's first bootstrap take its
// scope as a SQLite file if it has at least n households, as pages of rows
// if fewer (see WithSnapshotBootstrap).
func WithSnapshotBootstrapFrom(n int) Option { return func(r *Replica) { r.snapshotMin = max(n, 0) } }

// WithRowBootstrap makes a new replica's first bootstrap take pages of rows
// whatever the scope's size.
func WithRowBootstrap() Option { return func(r *Replica) { r.snapshotMin = -1 } }

// WithProgress sets a callback for sync progress. It runs on the syncing
// goroutine and should return quickly.
func WithProgress(fn func(Progress)) Option { return func(r *Replica) { r.progress = fn } }

// Progress reports how far a sync has got.
type Progress struct {
	// Phase is "push", "bootstrap" or "pull".
	Phase string
	// Done and Total count changes (push), households (bootstrap) or rows
	// (pull); Total is 0 when unknown.
	Done, Total int
}

// Open opens (creating if needed) a replica file, migrating an older schema.
func Open(ctx context.Context, path string, opts ...Option) (*Replica, error) {
	r := &Replica{log: zerolog.Nop(), now: time.Now, keepPushed: DefaultPushedRetention, snapshotMin: DefaultSnapshotHouseholds, coders: compress.NewCoders()}
	for _, o := range opts {
		o(r)
	}
	if r.mustExist {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s", ErrNoReplica, path)
		}
	}
	if r.http == nil {
		r.http = &http.Client{Transport: deadline.NewTransport(deadline.Timeouts(r.timeouts), nil)}
	} else {
		c := *r.http
		base := c.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		c.Transport = deadline.Wrap(base, deadline.Timeouts(r.timeouts))
		r.http = &c
	}
	ms, err := migrations()
	if err != nil {
		return nil, err
	}
	r.db, err = sqlitex.Open(ctx, path, ms)
	if err != nil {
		return nil, err
	}
	var hlc, offset int64
	err = r.db.Write(ctx, func(tx *sqlitex.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT replica_id, hlc, offset_millis FROM sync_state WHERE id = 1`).Scan(&r.id, &hlc, &offset)
		if errors.Is(err, sql.ErrNoRows) {
			r.id = uuid.Must(uuid.NewV7()).String()
			_, err = tx.ExecContext(ctx, `INSERT INTO sync_state (id, replica_id) VALUES (1, ?)`, r.id)
		}
		return err
	})
	if err != nil {
		r.db.Close()
		return nil, fmt.Errorf("open replica %s: %w", path, err)
	}
	r.clock = syncengine.NewHybridClock(syncengine.NodeID(r.id), uint64(hlc), r.now)
	r.clock.SetOffset(time.Duration(offset) * time.Millisecond)
	// A snapshot download the app did not live to finish holds the scope's
	// data outside the replica: it goes.
	r.removeSnapshotFile()
	return r, nil
}

// OpenExisting opens a replica file as Open does, but fails with
// ErrNoReplica rather than create a file that is not there: what a read or
// a write on a replica expects (a mistyped path must not become an empty
// replica).
func OpenExisting(ctx context.Context, path string, opts ...Option) (*Replica, error) {
	return Open(ctx, path, append(opts, existingOnly())...)
}

// Close closes the replica file. It is safe to call more than once.
func (r *Replica) Close() error {
	var err error
	r.closed.Do(func() { err = r.db.Close() })
	return err
}

// ID is the replica's id, the node of its clock.
func (r *Replica) ID() string { return r.id }

// Path is the replica file.
func (r *Replica) Path() string { return r.db.Path }

// state is the sync_state row.
type state struct {
	ServerURL, DeviceID, Token, WorkerID, WorkerName string
	Cursor                                           uint64
	LastSyncAt                                       int64
	LastError                                        string
	RevokedAt                                        int64
	RevokedReason                                    string
}

func readState(ctx context.Context, q statedb.Querier) (state, error) {
	var s state
	err := q.QueryRowContext(ctx, `SELECT server_url, device_id, token, worker_id, worker_name, cursor, last_sync_at, last_error,
		revoked_at, revoked_reason
		FROM sync_state WHERE id = 1`).Scan(&s.ServerURL, &s.DeviceID, &s.Token, &s.WorkerID, &s.WorkerName, &s.Cursor, &s.LastSyncAt, &s.LastError,
		&s.RevokedAt, &s.RevokedReason)
	if err != nil {
		return s, fmt.Errorf("read sync state: %w", err)
	}
	return s, nil
}

// enrolledState reads the state and fails if the replica is not enrolled.
func (r *Replica) enrolledState(ctx context.Context, q statedb.Querier) (state, error) {
	s, err := readState(ctx, q)
	switch {
	case err != nil:
	case s.RevokedAt != 0:
		err = s.revoked()
	case s.Token == "":
		err = ErrNotEnrolled
	}
	return s, err
}

func (s state) revoked() *RevokedError {
	return &RevokedError{At: time.UnixMilli(s.RevokedAt).UTC(), Reason: s.RevokedReason}
}

// writer is what a local write transaction offers: the transaction, a clock
// and the outbox.
type writer struct {
	tx     *sqlitex.Tx
	r      *Replica
	worker string
}

func (w *writer) stamp() syncengine.Clock { return w.r.clock.Now() }

func (w *writer) newID() string { return uuid.Must(uuid.NewV7()).String() }

// emit queues a change for the server.
func (w *writer) emit(ctx context.Context, c syncengine.Change) error {
	c.ID = w.newID()
	if err := c.Validate(); err != nil {
		return err
	}
	payload, err := proto.Marshal(wire.ChangeToProto(&c))
	if err != nil {
		return fmt.Errorf("encode change: %w", err)
	}
	_, err = w.tx.ExecContext(ctx, `INSERT INTO outbox (change_id, payload, created_at) VALUES (?, ?, ?)`, c.ID, payload, w.r.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("queue change: %w", err)
	}
	return nil
}

// write runs fn in one local transaction with the clock persisted, so a
// write and its queued change land together or not at all.
func (r *Replica) write(ctx context.Context, fn func(w *writer) error) error {
	return r.db.Write(ctx, func(tx *sqlitex.Tx) error {
		s, err := r.enrolledState(ctx, tx)
		if err != nil {
			return err
		}
		if err := fn(&writer{tx: tx, r: r, worker: s.WorkerID}); err != nil {
			return err
		}
		return r.saveClock(ctx, tx)
	})
}

func (r *Replica) saveClock(ctx context.Context, tx *sqlitex.Tx) error {
	_, err := tx.ExecContext(ctx, `UPDATE sync_state SET hlc = max(hlc, ?), offset_millis = ? WHERE id = 1`,
		int64(r.clock.Peek()), r.clock.Offset().Milliseconds())
	return err
}

// decodeChange reads an outbox payload.
func decodeChange(payload []byte) (syncengine.Change, *pb.Change, error) {
	var pc pb.Change
	if err := proto.Unmarshal(payload, &pc); err != nil {
		return syncengine.Change{}, nil, fmt.Errorf("decode outbox change: %w", err)
	}
	c, err := wire.ChangeFromProto(&pc)
	return c, &pc, err
}
