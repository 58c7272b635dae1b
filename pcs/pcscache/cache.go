package pcscache

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/pcs"
)

// Sentinels. Both wrap pcs.ErrUnavailable.
var (
	// ErrOffline: the cache has no upstream and no usable copy of an
	// item.
	ErrOffline = fmt.Errorf("%w: offline", pcs.ErrUnavailable)
	// ErrTooOld: the only copy of an item was issued longer ago than the
	// maximum age.
	ErrTooOld = fmt.Errorf("%w: older than the maximum age", pcs.ErrUnavailable)
)

// Defaults of a Cache.
const (
	DefaultRefreshAhead    = 24 * time.Hour
	DefaultRefreshInterval = 24 * time.Hour
	DefaultFetchTimeout    = 3 * time.Minute
	// minRefreshGap spaces refreshes of an item the upstream keeps
	// serving close to its expiry.
	minRefreshGap = 10 * time.Minute
	// maxWake bounds how long Run sleeps between looks at the items.
	maxWake = time.Hour
)

// Cache is a caching pcs.Source, pcs.Fetcher and pcs.PCKCertSource. A
// Cache is safe for concurrent use. The zero value is not usable; call
// [New].
type Cache struct {
	up  pcs.Fetcher // nil: offline
	dir string
	cfg config

	mu    sync.RWMutex
	items map[pcs.ItemKey]*entry
	sets  map[pcs.Key]*assembled
	pck   map[string]*pckEntry
	pcks  map[string]*pckCertsEntry

	flight  singleflight.Group
	wake    chan struct{}
	running atomic.Bool
	stats   counters
}

type config struct {
	now                                  func() time.Time
	root                                 *x509.Certificate
	maxAge, grace, ahead, interval, ftmo time.Duration
	log                                  *slog.Logger
}

// entry is one cached item. Entries are replaced, never modified, except
// for the refresh bookkeeping under Cache.mu.
type entry struct {
	item      *pcs.Item
	fetchedAt time.Time
	retryAt   time.Time // after a failed refresh
	failures  int
}

// assembled is the collateral handed out for a key, with the items it
// was built from.
type assembled struct {
	items [4]*pcs.Item
	c     *collateral.Collateral
}

// Option configures a Cache.
type Option func(*config) error

// WithClock sets the clock validity windows and ages are checked
// against. If not set, time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("pcscache: nil clock")
		}
		c.now = now
		return nil
	}
}

// WithTrustedRoot sets the trust anchor responses read from the
// directory are verified against; use the upstream's. If not set, the
// Intel SGX Root CA.
func WithTrustedRoot(root *x509.Certificate) Option {
	return func(c *config) error {
		if root == nil {
			return errors.New("pcscache: nil trusted root")
		}
		c.root = root
		return nil
	}
}

// WithMaxAge rejects items issued (issueDate, thisUpdate) longer than d
// ago, even inside Intel's validity window; the stale grace never
// extends it. If zero (the default), only the validity window applies.
func WithMaxAge(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("pcscache: negative max age %v", d)
		}
		c.maxAge = d
		return nil
	}
}

// WithStaleGrace serves an item for up to d after it expired when the
// upstream fails or the cache is offline (stale-if-error). If zero (the
// default), expired items are never served.
func WithStaleGrace(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("pcscache: negative stale grace %v", d)
		}
		c.grace = d
		return nil
	}
}

// WithRefreshAhead makes Run refresh an item when less than d remains
// before it expires (or reaches the maximum age). If not set,
// DefaultRefreshAhead.
func WithRefreshAhead(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("pcscache: negative refresh ahead %v", d)
		}
		c.ahead = d
		return nil
	}
}

// WithRefreshInterval makes Run also refresh every item fetched longer
// than d ago, to pick up new CRLs and TCB recoveries (Intel re-signs the
// PCK CRL about daily). Zero disables it. If not set,
// DefaultRefreshInterval.
func WithRefreshInterval(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("pcscache: negative refresh interval %v", d)
		}
		c.interval = d
		return nil
	}
}

// WithFetchTimeout bounds one upstream fetch (all its retries). The fetch
// is shared by every caller waiting for the item and is not cancelled
// when one of them gives up. If not set, DefaultFetchTimeout.
func WithFetchTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("pcscache: fetch timeout %v must be positive", d)
		}
		c.ftmo = d
		return nil
	}
}

// WithLogger logs refreshes (Info), stale items served and upstream or
// disk failures (Warn). If not set, nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("pcscache: nil logger")
		}
		c.log = l
		return nil
	}
}

// New returns a cache in front of upstream, storing responses in dir.
// A nil upstream makes the cache offline: it serves only what dir holds
// and never touches the network. An empty dir keeps everything in
// memory. New neither reads dir nor starts goroutines: items are read
// from dir when first asked for, and [Cache.Run] loads the rest and
// refreshes.
func New(upstream pcs.Fetcher, dir string, opts ...Option) (*Cache, error) {
	cfg := config{
		now: time.Now, root: dcap.IntelRoot(), ahead: DefaultRefreshAhead, interval: DefaultRefreshInterval,
		ftmo: DefaultFetchTimeout, log: slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if upstream == nil && dir == "" {
		cfg.log.Warn("pcscache: offline without a directory: every lookup fails")
	}
	return &Cache{
		up: upstream, dir: dir, cfg: cfg,
		items: map[pcs.ItemKey]*entry{}, sets: map[pcs.Key]*assembled{}, pck: map[string]*pckEntry{}, pcks: map[string]*pckCertsEntry{},
		wake: make(chan struct{}, 1),
	}, nil
}

// Offline reports whether the cache has no upstream.
func (c *Cache) Offline() bool { return c.up == nil }

// Dir returns the cache directory ("" when memory only).
func (c *Cache) Dir() string { return c.dir }

// limit is when an item stops being fresh: its validity end, or the
// maximum age, whichever comes first.
func (c *Cache) limit(it *pcs.Item) time.Time {
	l := it.ValidUntil
	if c.cfg.maxAge > 0 {
		if m := it.IssueDate.Add(c.cfg.maxAge); m.Before(l) {
			l = m
		}
	}
	return l
}

func (c *Cache) fresh(it *pcs.Item, now time.Time) bool {
	return !now.Before(it.ValidFrom.Add(-pcs.ClockSkew)) && now.Before(c.limit(it))
}

// staleOK reports whether an expired item may still be served on error.
func (c *Cache) staleOK(it *pcs.Item, now time.Time) bool {
	if c.cfg.grace == 0 || now.Before(it.ValidFrom.Add(-pcs.ClockSkew)) {
		return false
	}
	if c.cfg.maxAge > 0 && !now.Before(it.IssueDate.Add(c.cfg.maxAge)) {
		return false
	}
	return now.Before(it.ValidUntil.Add(c.cfg.grace))
}

// Collateral returns the collateral of k, fetching what is missing. For
// a key whose four items are fresh in memory it returns the same
// pointer every time, without I/O.
func (c *Cache) Collateral(ctx context.Context, k pcs.Key) (*collateral.Collateral, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	keys := k.Items()
	for i := range keys {
		keys[i] = keys[i].Normalize()
	}
	now := c.cfg.now()
	var items [4]*pcs.Item
	missing := 0
	c.mu.RLock()
	set := c.sets[k]
	for i, ik := range keys {
		if e := c.items[ik]; e != nil && c.fresh(e.item, now) {
			items[i] = e.item
		} else {
			missing++
		}
	}
	c.mu.RUnlock()
	c.stats.hits.Add(uint64(4 - missing))
	if missing == 0 && set != nil && set.items == items {
		return set.c, nil
	}
	if missing > 0 {
		c.stats.misses.Add(uint64(missing))
		var err error
		if items, err = c.fetchMissing(ctx, keys, items); err != nil {
			return nil, err
		}
	}
	col, err := pcs.NewCollateral(items[0], items[1], items[2], items[3])
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if cur := c.sets[k]; cur != nil && cur.items == items {
		col = cur.c
	} else {
		c.sets[k] = &assembled{items: items, c: col}
	}
	c.mu.Unlock()
	return col, nil
}

// fetchMissing fetches the items that are nil, concurrently. It is apart
// from Collateral so that the warm path allocates nothing.
func (c *Cache) fetchMissing(ctx context.Context, keys [4]pcs.ItemKey, items [4]*pcs.Item) ([4]*pcs.Item, error) {
	var errs [4]error
	var wg sync.WaitGroup
	for i := range keys {
		if items[i] == nil {
			wg.Go(func() { items[i], errs[i] = c.do(ctx, keys[i], false) })
		}
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return items, err
		}
	}
	return items, nil
}

// Fetch returns the item for k (fresh, or stale within the grace when
// the upstream fails), fetching it if needed.
func (c *Cache) Fetch(ctx context.Context, k pcs.ItemKey) (*pcs.Item, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	k = k.Normalize()
	now := c.cfg.now()
	c.mu.RLock()
	e := c.items[k]
	c.mu.RUnlock()
	if e != nil && c.fresh(e.item, now) {
		c.stats.hits.Add(1)
		return e.item, nil
	}
	c.stats.misses.Add(1)
	return c.do(ctx, k, false)
}

// do runs load for k once however many callers wait for it. The shared
// load is detached from the callers' contexts (bounded by the fetch
// timeout) unless it is a refresh, which Run's context cancels.
func (c *Cache) do(ctx context.Context, k pcs.ItemKey, refresh bool) (*pcs.Item, error) {
	ch := c.flight.DoChan(k.Path(), func() (any, error) {
		base := context.WithoutCancel(ctx)
		if refresh {
			base = ctx
		}
		fctx, cancel := context.WithTimeout(base, c.cfg.ftmo)
		defer cancel()
		return c.load(fctx, k, refresh)
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("pcscache: %s: %w: %w", k, pcs.ErrUnavailable, context.Cause(ctx))
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*pcs.Item), nil
	}
}

// load finds k in memory, then on disk, then upstream. With force it
// fetches upstream even when a fresh copy exists.
func (c *Cache) load(ctx context.Context, k pcs.ItemKey, force bool) (*pcs.Item, error) {
	now := c.cfg.now()
	c.mu.RLock()
	e := c.items[k]
	c.mu.RUnlock()
	if !force && e != nil && c.fresh(e.item, now) {
		return e.item, nil
	}
	var diskErr error
	if e == nil && c.dir != "" {
		it, fetchedAt, err := c.readItem(k)
		switch {
		case err == nil:
			e = c.store(k, it, fetchedAt, false)
			if !force && c.fresh(it, now) {
				c.stats.diskHits.Add(1)
				return it, nil
			}
		case !errors.Is(err, fs.ErrNotExist):
			diskErr = err
			c.cfg.log.Warn("pcscache: ignoring unusable cached item", "item", k.String(), "err", err)
		}
	}
	if c.up == nil {
		if e != nil && c.staleOK(e.item, now) {
			return c.serveStale(ctx, k, e, now, nil), nil
		}
		return nil, c.missError(k, e, now, ErrOffline, diskErr)
	}
	c.stats.fetches.Add(1)
	it, err := c.up.Fetch(ctx, k)
	if err == nil && c.cfg.maxAge > 0 && !now.Before(it.IssueDate.Add(c.cfg.maxAge)) {
		err = fmt.Errorf("%w: %s was issued at %s, more than %v ago", ErrTooOld, k, it.IssueDate.UTC().Format(time.RFC3339), c.cfg.maxAge)
	}
	if err != nil {
		c.stats.upstreamErrors.Add(1)
		c.failed(k, now)
		c.cfg.log.WarnContext(ctx, "pcscache: upstream fetch failed", "item", k.String(), "err", err)
		if e != nil && (c.fresh(e.item, now) || c.staleOK(e.item, now)) {
			return c.serveStale(ctx, k, e, now, err), nil
		}
		return nil, c.missError(k, e, now, err, nil)
	}
	if e != nil && sameResponse(it, e.item) {
		c.touch(k, now)
		return e.item, nil
	}
	if e != nil && it.IssueDate.Before(e.item.IssueDate) {
		c.cfg.log.Warn("pcscache: upstream served an older item than cached; keeping the cached one",
			"item", k.String(), "cached_issue_date", e.item.IssueDate, "served_issue_date", it.IssueDate)
		c.touch(k, now)
		return e.item, nil
	}
	c.store(k, it, now, true)
	return it, nil
}

// serveStale returns a cached item after a failed fetch (or offline).
func (c *Cache) serveStale(ctx context.Context, k pcs.ItemKey, e *entry, now time.Time, cause error) *pcs.Item {
	if !c.fresh(e.item, now) {
		c.stats.staleServed.Add(1)
		c.cfg.log.WarnContext(ctx, "pcscache: serving expired item within the stale grace", "item", k.String(),
			"expired_at", e.item.ValidUntil, "grace", c.cfg.grace, "err", cause)
	}
	return e.item
}

// missError explains why no copy of k can be served. An upstream error
// about an item never cached is returned as it is: it names the item.
func (c *Cache) missError(k pcs.ItemKey, e *entry, now time.Time, cause, diskErr error) error {
	if e == nil && diskErr == nil && c.up != nil && !errors.Is(cause, ErrTooOld) {
		return cause
	}
	where := ""
	if c.dir != "" {
		where = fmt.Sprintf(" (file %s%s in %s)", k.Path(), pcs.BodySuffix, c.dir)
	}
	var state string
	switch {
	case e == nil && diskErr != nil:
		state = fmt.Sprintf("cached copy unusable: %v", diskErr)
	case e == nil:
		state = "not cached"
	case now.Before(e.item.ValidFrom.Add(-pcs.ClockSkew)):
		state = "cached copy not valid before " + e.item.ValidFrom.UTC().Format(time.RFC3339)
	case c.cfg.maxAge > 0 && !now.Before(e.item.IssueDate.Add(c.cfg.maxAge)):
		state = fmt.Sprintf("cached copy issued %s, more than the maximum age %v ago", e.item.IssueDate.UTC().Format(time.RFC3339), c.cfg.maxAge)
	default:
		state = "cached copy expired at " + e.item.ValidUntil.UTC().Format(time.RFC3339)
		if c.cfg.grace > 0 {
			state += fmt.Sprintf(", beyond the stale grace of %v", c.cfg.grace)
		}
	}
	if e != nil && c.cfg.maxAge > 0 && !now.Before(e.item.IssueDate.Add(c.cfg.maxAge)) && !errors.Is(cause, ErrTooOld) {
		cause = fmt.Errorf("%w: %w", ErrTooOld, cause)
	}
	return fmt.Errorf("pcscache: %s%s: %s: %w", k, where, state, cause)
}

// store puts it in memory (and on disk when persist is set) and wakes
// Run.
func (c *Cache) store(k pcs.ItemKey, it *pcs.Item, fetchedAt time.Time, persist bool) *entry {
	e := &entry{item: it, fetchedAt: fetchedAt}
	c.mu.Lock()
	c.items[k] = e
	c.mu.Unlock()
	if persist && c.dir != "" {
		if err := c.writeItem(k, it); err != nil {
			c.stats.diskErrors.Add(1)
			c.cfg.log.Warn("pcscache: writing cached item", "item", k.String(), "err", err)
		}
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return e
}

// failed records a failed fetch for k's refresh schedule.
func (c *Cache) failed(k pcs.ItemKey, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.items[k]; e != nil {
		e.failures++
		wait := time.Minute << min(e.failures-1, 6) // 1 min … 64 min
		e.retryAt = now.Add(min(wait, maxWake))
	}
}

// touch records a successful fetch that did not replace k's item.
func (c *Cache) touch(k pcs.ItemKey, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.items[k]; e != nil {
		e.fetchedAt, e.failures, e.retryAt = now, 0, time.Time{}
	}
}

// sameResponse reports whether a and b were decoded from the same bytes.
func sameResponse(a, b *pcs.Item) bool {
	if !bytes.Equal(a.Body, b.Body) || len(a.Header) != len(b.Header) {
		return false
	}
	for k, v := range a.Header {
		if b.Header[k] != v {
			return false
		}
	}
	return true
}
