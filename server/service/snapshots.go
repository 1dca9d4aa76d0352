package service

import (
	"crypto/rand"
	"slices"
	"strings"
	"sync"
	"time"
)

// Snapshot reuse. Writing a scope's file copies every row of the scope; new
// devices of one scope (a grid's workers enrolled one after another, a
// street's phones handed out on a morning) take the same file while it is
// recent. Each then pulls from the file's cursor what changed since, as a
// phone that bootstrapped then and stayed offline would: the rows are the
// same, only older.

// How recent a snapshot must be for a new device of its scope to take it:
// younger than snapshotReuseAge, and with the feed moved fewer than
// snapshotReuseFeed entries past it (the device would pull more than the
// file saves).
const (
	snapshotReuseAge  = 10 * time.Minute
	snapshotReuseFeed = 50_000
)

// snapshotCache holds the snapshots recent enough to give again, one per
// scope, and removes each once it is neither recent nor being sent.
type snapshotCache struct {
	mu      sync.Mutex
	byScope map[string]*cachedSnapshot
}

type cachedSnapshot struct {
	// id names the file to devices resuming a cut download.
	id           string
	path         string
	cursor, head uint64
	households   int
	built        time.Time
	// sending counts the bootstraps sending the file; evicted, that no new
	// one will, so that the last to finish removes it.
	sending int
	evicted bool
	release func()
}

// newSnapshotID names a new snapshot file.
func newSnapshotID() string { return rand.Text() }

// scopeKey names a scope by its grids.
func scopeKey(grids []string) string {
	return strings.Join(slices.Sorted(slices.Values(grids)), ",")
}

// take returns the snapshot of scope recent at feed position head and time
// now, counted as being sent, or nil.
func (c *snapshotCache) take(scope string, head uint64, now time.Time) *cachedSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	e := c.byScope[scope]
	if e == nil || head < e.head || head-e.head > snapshotReuseFeed {
		return nil
	}
	e.sending++
	return e
}

// put keeps e as scope's snapshot, being sent once, in place of any older.
func (c *snapshotCache) put(scope string, e *cachedSnapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byScope == nil {
		c.byScope = map[string]*cachedSnapshot{}
	}
	if old := c.byScope[scope]; old != nil {
		c.evict(scope, old)
	}
	e.sending = 1
	c.byScope[scope] = e
}

// done ends one sending of e.
func (c *snapshotCache) done(e *cachedSnapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.sending--
	if e.evicted && e.sending == 0 {
		e.release()
	}
}

// close gives up every snapshot (the server stops, or data was erased):
// each is removed once no longer sent.
func (c *snapshotCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for scope, e := range c.byScope {
		c.evict(scope, e)
	}
}

// expire evicts the snapshots too old to give again.
func (c *snapshotCache) expire(now time.Time) {
	for scope, e := range c.byScope {
		if now.Sub(e.built) > snapshotReuseAge || now.Before(e.built) {
			c.evict(scope, e)
		}
	}
}

func (c *snapshotCache) evict(scope string, e *cachedSnapshot) {
	delete(c.byScope, scope)
	e.evicted = true
	if e.sending == 0 {
		e.release()
	}
}
