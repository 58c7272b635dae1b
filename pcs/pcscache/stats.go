package pcscache

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/tdproof/tdproof/pcs"
)

type counters struct {
	hits, misses, diskHits, staleServed, fetches, upstreamErrors, refreshes, diskErrors atomic.Uint64
}

// Stats is a snapshot of a cache's counters and items.
type Stats struct {
	// Hits counts item lookups answered from memory; Misses the others
	// (answered from disk, upstream, a stale copy, or failed).
	Hits, Misses uint64
	// DiskHits counts misses answered from the directory.
	DiskHits uint64
	// StaleServed counts expired items served within the stale grace.
	StaleServed uint64
	// UpstreamFetches counts item fetches from the upstream (each may
	// make several HTTP requests); UpstreamErrors the failed ones.
	UpstreamFetches, UpstreamErrors uint64
	// Refreshes counts successful background refreshes.
	Refreshes uint64
	// DiskErrors counts failed writes to the directory.
	DiskErrors uint64
	// Items describes every cached item, sorted by path.
	Items []ItemStats
}

// ItemStats describes one cached item.
type ItemStats struct {
	// Key identifies the item.
	Key pcs.ItemKey
	// IssueDate, NextUpdate and ValidUntil are the item's (see pcs.Item).
	IssueDate, NextUpdate time.Time
	ValidUntil            time.Time
	// FetchedAt is when it was fetched (for items read from the
	// directory: the file's modification time).
	FetchedAt time.Time
	// Failures counts consecutive failed refreshes.
	Failures int
}

// Stats returns a snapshot of the counters and items.
func (c *Cache) Stats() Stats {
	s := Stats{
		Hits: c.stats.hits.Load(), Misses: c.stats.misses.Load(), DiskHits: c.stats.diskHits.Load(),
		StaleServed: c.stats.staleServed.Load(), UpstreamFetches: c.stats.fetches.Load(),
		UpstreamErrors: c.stats.upstreamErrors.Load(), Refreshes: c.stats.refreshes.Load(),
		DiskErrors: c.stats.diskErrors.Load(),
	}
	c.mu.RLock()
	for k, e := range c.items {
		s.Items = append(s.Items, ItemStats{Key: k, IssueDate: e.item.IssueDate, NextUpdate: e.item.NextUpdate,
			ValidUntil: e.item.ValidUntil, FetchedAt: e.fetchedAt, Failures: e.failures})
	}
	c.mu.RUnlock()
	slices.SortFunc(s.Items, func(a, b ItemStats) int {
		switch pa, pb := a.Key.Path(), b.Key.Path(); {
		case pa < pb:
			return -1
		case pa > pb:
			return 1
		}
		return 0
	})
	return s
}

// Now returns the cache's clock reading (for item ages in reports).
func (c *Cache) Now() time.Time { return c.cfg.now() }
