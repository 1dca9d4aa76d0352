package metrics

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The storage gauges' sources. Each is optional: WithSources takes any
// values, and a gauge whose interface none of them implements is left out
// of every scrape. They are read at scrape time, within the scrape timeout.
type (
	// FeedHeader tells the newest committed position of the change feed.
	FeedHeader interface {
		FeedHead(ctx context.Context) (uint64, error)
	}
	// DeviceCounter counts the devices that called the server since t.
	DeviceCounter interface {
		DevicesSeenSince(ctx context.Context, t time.Time) (int, error)
	}
	// SilentCounter counts the devices, not revoked, that have not
	// finished a sync since t.
	SilentCounter interface {
		DevicesSilentSince(ctx context.Context, t time.Time) (int, error)
	}
	// PoolStatser tells the statistics of the database's connection pools,
	// by pool name ("write", "read").
	PoolStatser interface {
		DBStats() map[string]sql.DBStats
	}
)

// storageCollector reads the storage gauges at scrape time.
type storageCollector struct {
	feed    FeedHeader
	devices DeviceCounter
	silent  SilentCounter
	pools   PoolStatser
	timeout time.Duration
	now     func() time.Time

	feedHead, devicesSeen, devicesSilent    *prometheus.Desc
	open, inUse, idle, maxOpen              *prometheus.Desc
	waitCount, waitDuration                 *prometheus.Desc
	closedMaxIdle, closedIdle, closedMaxAge *prometheus.Desc
}

func newStorageCollector(sources []any, timeout time.Duration, now func() time.Time) *storageCollector {
	c := &storageCollector{timeout: timeout, now: now}
	for _, s := range sources {
		if f, ok := s.(FeedHeader); ok && c.feed == nil {
			c.feed = f
		}
		if d, ok := s.(DeviceCounter); ok && c.devices == nil {
			c.devices = d
		}
		if d, ok := s.(SilentCounter); ok && c.silent == nil {
			c.silent = d
		}
		if p, ok := s.(PoolStatser); ok && c.pools == nil {
			c.pools = p
		}
	}
	pool := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("doorbook_db_"+name, help, []string{"pool"}, nil)
	}
	c.feedHead = prometheus.NewDesc("doorbook_feed_head", "The newest committed position of the change feed.", nil, nil)
	c.devicesSeen = prometheus.NewDesc("doorbook_devices_seen", "Devices that called the server in the last 24 hours.", nil, nil)
	c.devicesSilent = prometheus.NewDesc("doorbook_devices_silent",
		"Devices, not revoked, that have not finished a sync in the last 7 days (one that never has: since it enrolled).", nil, nil)
	c.open = pool("open_connections", "Connections open, in use or idle.")
	c.inUse = pool("in_use_connections", "Connections in use.")
	c.idle = pool("idle_connections", "Connections idle.")
	c.maxOpen = pool("max_open_connections", "The most connections the pool may open.")
	c.waitCount = pool("wait_count_total", "Times a query waited for a connection.")
	c.waitDuration = pool("wait_duration_seconds_total", "Time queries waited for a connection.")
	c.closedMaxIdle = pool("max_idle_closed_total", "Connections closed for the idle limit.")
	c.closedIdle = pool("max_idle_time_closed_total", "Connections closed for their idle time.")
	c.closedMaxAge = pool("max_lifetime_closed_total", "Connections closed for their age.")
	return c
}

func (c *storageCollector) Describe(ch chan<- *prometheus.Desc) {
	if c.feed != nil {
		ch <- c.feedHead
	}
	if c.devices != nil {
		ch <- c.devicesSeen
	}
	if c.silent != nil {
		ch <- c.devicesSilent
	}
	if c.pools != nil {
		for _, d := range []*prometheus.Desc{c.open, c.inUse, c.idle, c.maxOpen, c.waitCount, c.waitDuration, c.closedMaxIdle, c.closedIdle, c.closedMaxAge} {
			ch <- d
		}
	}
}

// Collect reads the sources. A read that fails or runs past the timeout
// leaves its gauge out of this scrape, with the error (served as the
// handler's error log and promhttp_metric_handler_errors_total).
func (c *storageCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if c.feed != nil {
		if head, err := c.feed.FeedHead(ctx); err != nil {
			ch <- prometheus.NewInvalidMetric(c.feedHead, fmt.Errorf("feed head: %w", err))
		} else {
			ch <- prometheus.MustNewConstMetric(c.feedHead, prometheus.GaugeValue, float64(head))
		}
	}
	if c.devices != nil {
		if n, err := c.devices.DevicesSeenSince(ctx, c.now().Add(-DevicesSeenWindow)); err != nil {
			ch <- prometheus.NewInvalidMetric(c.devicesSeen, fmt.Errorf("devices seen: %w", err))
		} else {
			ch <- prometheus.MustNewConstMetric(c.devicesSeen, prometheus.GaugeValue, float64(n))
		}
	}
	if c.silent != nil {
		if n, err := c.silent.DevicesSilentSince(ctx, c.now().Add(-DevicesSilentAfter)); err != nil {
			ch <- prometheus.NewInvalidMetric(c.devicesSilent, fmt.Errorf("devices silent: %w", err))
		} else {
			ch <- prometheus.MustNewConstMetric(c.devicesSilent, prometheus.GaugeValue, float64(n))
		}
	}
	if c.pools != nil {
		for name, s := range c.pools.DBStats() {
			gauge := func(d *prometheus.Desc, v float64) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
			}
			counter := func(d *prometheus.Desc, v float64) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, name)
			}
			gauge(c.open, float64(s.OpenConnections))
			gauge(c.inUse, float64(s.InUse))
			gauge(c.idle, float64(s.Idle))
			gauge(c.maxOpen, float64(s.MaxOpenConnections))
			counter(c.waitCount, float64(s.WaitCount))
			counter(c.waitDuration, s.WaitDuration.Seconds())
			counter(c.closedMaxIdle, float64(s.MaxIdleClosed))
			counter(c.closedIdle, float64(s.MaxIdleTimeClosed))
			counter(c.closedMaxAge, float64(s.MaxLifetimeClosed))
		}
	}
}
