package server

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/doorbook/doorbook/server/store"
)

// Collector options.
const (
	// DefaultCollectEvery is how often the collector runs.
	DefaultCollectEvery = time.Hour
)

// RunCollector collects st's history older than horizon every interval,
// until ctx ends (see store.Store.Collect). It runs once at start, so that
// a server restarted after a long stop catches up at once.
func RunCollector(ctx context.Context, st store.Store, horizon, every time.Duration, log zerolog.Logger) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		c, err := st.Collect(ctx, horizon)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Error().Err(err).Msg("collect")
		case c.Total() > 0:
			log.Info().Int("tombstones", c.Tombstones).Int("applied_changes", c.AppliedChanges).Int("feed", c.Feed).
				Int("scope_events", c.ScopeEvents).Int("moves", c.Moves).Int("commits", c.Commits).Int("codes", c.Codes).
				Dur("duration", time.Since(start)).Msg("collected history older than the horizon")
		}
		timer.Reset(every)
	}
}
