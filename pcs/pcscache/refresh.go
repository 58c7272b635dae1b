package pcscache

import (
	"context"
	"errors"
	"time"

	"github.com/tdproof/tdproof/pcs"
)

// Run loads every item of the directory into memory, then refreshes
// items ahead of their expiry (WithRefreshAhead) and periodically
// (WithRefreshInterval) until ctx is done, when it returns nil. A failed
// refresh keeps the cached item and is retried with backoff (1 minute
// doubling to 1 hour). An offline cache only loads the directory. Run
// must not be called twice at the same time.
func (c *Cache) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("pcscache: Run is already running")
	}
	defer c.running.Store(false)
	if n := c.loadDir(); n > 0 {
		c.cfg.log.InfoContext(ctx, "pcscache: loaded cached items", "dir", c.dir, "items", n)
	}
	for {
		if c.up != nil {
			c.refreshDue(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := maxWake
		if c.up != nil {
			wait = c.nextWake(c.cfg.now())
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-c.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// due returns when e should next be refreshed.
func (c *Cache) due(e *entry) time.Time {
	if !e.retryAt.IsZero() {
		return e.retryAt
	}
	d := c.limit(e.item).Add(-c.cfg.ahead)
	if floor := e.fetchedAt.Add(minRefreshGap); d.Before(floor) {
		d = floor
	}
	if c.cfg.interval > 0 {
		if p := e.fetchedAt.Add(c.cfg.interval); p.Before(d) {
			d = p
		}
	}
	return d
}

// nextWake returns how long Run may sleep before an item is due.
func (c *Cache) nextWake(now time.Time) time.Duration {
	wait := maxWake
	c.mu.RLock()
	for _, e := range c.items {
		if d := c.due(e).Sub(now); d < wait {
			wait = d
		}
	}
	c.mu.RUnlock()
	return max(wait, time.Second)
}

// refreshDue refreshes every item that is due, one after the other.
func (c *Cache) refreshDue(ctx context.Context) {
	now := c.cfg.now()
	var due []pcs.ItemKey
	c.mu.RLock()
	for k, e := range c.items {
		if !now.Before(c.due(e)) {
			due = append(due, k)
		}
	}
	c.mu.RUnlock()
	for _, k := range due {
		if ctx.Err() != nil {
			return
		}
		c.mu.RLock()
		old := c.items[k]
		c.mu.RUnlock()
		it, err := c.do(ctx, k, true)
		switch {
		case err != nil:
			c.cfg.log.WarnContext(ctx, "pcscache: refresh failed", "item", k.String(), "err", err)
		case old == nil || it != old.item:
			c.stats.refreshes.Add(1)
			c.cfg.log.InfoContext(ctx, "pcscache: refreshed", "item", k.String(), "issue_date", it.IssueDate, "next_update", it.NextUpdate)
		}
	}
}
