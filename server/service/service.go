// Package service owns the server's rules, written once above storage for
// every backend: which changes a device's push is admitted with (scope,
// grace, caps, authority, erasures, collected tombstones), what a pull or
// a bootstrap sends, and what admins may do. It reads and writes through
// the repositories of a store.Backend, which hold SQL and transactions
// only.
//
// Rules that need no storage live in smaller packages it calls:
// syncengine (merges, clocks, caps, authority of amendments), fieldwork
// (the field rules) and server/authz (who may do what).
package service

import (
	"context"
	"time"

	"github.com/doorbook/doorbook/server/store"
)

// Service is the server's rules over one backend. It is safe for
// concurrent use.
type Service struct {
	db store.Backend
	// now is the server's clock: commits are stamped with it, and scope
	// grace and horizons are measured by it.
	now func() time.Time
	// grace is how long after a household or grid leaves a worker's scope,
	// on the server's clock, the worker's devices may still write there.
	grace time.Duration
	// snapshots are the recent snapshot files, given to new devices of the
	// same scope.
	snapshots snapshotCache
	// fields are the rows of recent reports, kept to read again only the
	// households changed since.
	fields fieldCache
	// imports holds the one ledger import this process runs at a time.
	imports chan struct{}
	// background runs the reads no request waits for: those a report
	// starts for the reports after it (warm), and WarmCampaigns.
	background background
}

var _ store.Store = (*Service)(nil)

// Option tunes New.
type Option func(*Service)

// WithClock sets the server's clock (default time.Now), for tests.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithReportCache bounds the households whose rows the process keeps
// between reports, over all scopes (default DefaultReportCache; 0 keeps
// none, and every report reads its rows whole).
func WithReportCache(households int) Option {
	return func(s *Service) { s.fields.households = households }
}

// WithScopeGrace sets how long, on the server's clock, a worker's devices
// may still write a household after it or its grid left the worker's scope
// (default store.DefaultScopeGrace). See store.Sync.Push.
func WithScopeGrace(d time.Duration) Option { return func(s *Service) { s.grace = d } }

// New returns the rules over backend b.
func New(b store.Backend, opts ...Option) *Service {
	s := &Service{db: b, now: time.Now, grace: store.DefaultScopeGrace, imports: make(chan struct{}, 1), fields: fieldCache{households: DefaultReportCache}}
	s.background.ctx, s.background.stop = context.WithCancel(context.Background())
	for _, o := range opts {
		o(s)
	}
	return s
}

// Close ends the warming of scopes under way, removes the snapshots kept for
// reuse (once sent) and closes the backend.
func (s *Service) Close() error {
	s.background.close()
	s.snapshots.close()
	return s.db.Close()
}

// FeedHead is the newest committed position of the change feed (a gauge
// of /metrics).
func (s *Service) FeedHead(ctx context.Context) (uint64, error) {
	var head uint64
	err := s.db.View(ctx, func(tx store.Tx) error {
		var err error
		head, err = tx.Head(ctx)
		return err
	})
	return head, err
}

// Ping fails while the database does not answer (readiness).
func (s *Service) Ping(ctx context.Context) error {
	_, err := s.FeedHead(ctx)
	return err
}
