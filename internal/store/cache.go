package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tdproof/tdproof/refvalue"
)

// DefaultCachePoll is how often a [Cache] reads the generation counter
// when [CacheOptions.Poll] is zero.
const DefaultCachePoll = 250 * time.Millisecond

// GenerationQuery is the statement a Cache's poller sends every poll
// interval (tests that count statements tell it apart).
const GenerationQuery = "SELECT generation FROM store_generation WHERE id = 1"

// ErrStale is returned by a [Cache] read when the cache could not confirm
// for longer than its staleness bound that it holds the current data
// (the database does not answer): reads fail closed rather than appraise
// with values that may have been removed.
var ErrStale = errors.New("store: cache is stale")

// CacheOptions configures [Store.NewCache].
type CacheOptions struct {
	// Poll is how often the cache reads the generation counter to see
	// writes of other processes. If zero, DefaultCachePoll. Writes made
	// through the same Store are seen at once.
	Poll time.Duration
	// MaxStale is how long reads keep succeeding after the last
	// successful generation check; after it they fail with ErrStale. If
	// zero, max(5 s, 10 × Poll).
	MaxStale time.Duration
}

// Cache serves the reference values, the active appraisal policies and the
// key broker policies from an in-memory snapshot, so that a verification
// sends no SQL, and the key broker's sealed resources from memory once
// read (KBSResource). Writes still go to the database first (through the Store).
//
// The snapshot is reloaded, in one read transaction, when the generation
// counter (table store_generation, incremented by triggers on every write
// to those tables, from any process) differs from the snapshot's: a
// background goroutine reads it every Poll, so the Caches of every process
// sharing a database converge within Poll plus one reload after a write.
// A write made through the Cache's own Store is visible to the next read
// (the read reloads first).
//
// A Cache is safe for concurrent use. Close stops the poller.
type Cache struct {
	s        *Store
	poll     time.Duration
	maxStale time.Duration

	cur     atomic.Pointer[snapshot]
	checked atomic.Int64 // Unix nanoseconds of the last successful generation check
	loadMu  sync.Mutex   // serializes reloads

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// snapshot is one consistent copy of the cached tables.
type snapshot struct {
	gen    int64 // store_generation.generation it was read at
	writes int64 // Store.writes before it was read
	// refs holds every reference value by name, valid or not, by ID.
	refs     map[string][]refvalue.Value
	policies map[string]Policy    // active version by policy id
	kbs      map[string]KBSPolicy // key broker policies by name
	// resources holds the sealed key broker resources read since the
	// snapshot was taken (read through, at most maxCachedResources and
	// maxCachedResourceBytes): any write to kbs_resources makes a new
	// snapshot, which starts empty.
	resources sync.Map // path → KBSResource
	nres      atomic.Int64
	resBytes  atomic.Int64 // nonce and ciphertext bytes in resources
}

// maxCachedResources and maxCachedResourceBytes bound the resources one
// snapshot keeps, in number and in size (a resource may be up to the
// key broker's 16 MiB request limit); others are read from the database
// on every request.
const maxCachedResources = 4096

var maxCachedResourceBytes int64 = 64 << 20 // a variable for tests

// NewCache loads the first snapshot and starts the poller. The Cache
// must be closed before the Store.
func (s *Store) NewCache(ctx context.Context, opts CacheOptions) (*Cache, error) {
	if opts.Poll < 0 || opts.MaxStale < 0 {
		return nil, fmt.Errorf("%w: negative cache poll interval or staleness bound", ErrInvalid)
	}
	if opts.Poll == 0 {
		opts.Poll = DefaultCachePoll
	}
	if opts.MaxStale == 0 {
		opts.MaxStale = max(5*time.Second, 10*opts.Poll)
	}
	c := &Cache{s: s, poll: opts.Poll, maxStale: opts.MaxStale, stop: make(chan struct{}), done: make(chan struct{})}
	if _, err := c.reload(ctx, nil); err != nil {
		return nil, err
	}
	go c.run()
	return c, nil
}

// Close stops the poller and waits for it. Reads after Close still serve
// the last snapshot until it is stale.
func (c *Cache) Close() {
	c.closeOnce.Do(func() { close(c.stop) })
	<-c.done
}

// Generation returns the generation of the current snapshot.
func (c *Cache) Generation() int64 { return c.cur.Load().gen }

func (c *Cache) run() {
	defer close(c.done)
	t := time.NewTicker(c.poll)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(c.maxStale, time.Second))
		_ = c.check(ctx)
		cancel()
	}
}

// check reads the generation and reloads when it changed.
func (c *Cache) check(ctx context.Context) error {
	// The answer confirms the snapshot as of when the query was sent,
	// not when a slow answer arrived.
	now := time.Now().UnixNano()
	var gen int64
	if err := c.s.queryRowPrepared(ctx, GenerationQuery).Scan(&gen); err != nil {
		return fmt.Errorf("store: cache: generation: %w", err)
	}
	if gen == c.cur.Load().gen {
		c.checked.Store(now)
		return nil
	}
	_, err := c.reload(ctx, func(cur *snapshot) bool { return cur.gen >= gen })
	return err
}

// snap returns a snapshot that includes every write made through the
// Store so far and is not older than the staleness bound.
func (c *Cache) snap(ctx context.Context) (*snapshot, error) {
	sn := c.cur.Load()
	if w := c.s.writes.Load(); sn.writes != w {
		return c.reload(ctx, func(cur *snapshot) bool { return cur.writes >= w })
	}
	if time.Since(time.Unix(0, c.checked.Load())) > c.maxStale {
		return nil, fmt.Errorf("%w: no generation check for %v", ErrStale, c.maxStale)
	}
	return sn, nil
}

// reload reads a new snapshot in one read-only transaction (repeatable
// read on PostgreSQL), unless current reports that the snapshot another
// goroutine loaded meanwhile already serves the caller.
func (c *Cache) reload(ctx context.Context, current func(*snapshot) bool) (*snapshot, error) {
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	if sn := c.cur.Load(); sn != nil && current != nil && current(sn) {
		return sn, nil
	}
	// Read the write count before the transaction starts: a write that
	// ends after this may be missing from the snapshot, and the next read
	// then sees a newer count and reloads.
	checked := time.Now().UnixNano()
	writes := c.s.writes.Load()
	opts := &sql.TxOptions{ReadOnly: true}
	if c.s.dialect == Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := c.s.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("store: cache: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	sn := &snapshot{writes: writes, refs: map[string][]refvalue.Value{}, policies: map[string]Policy{}, kbs: map[string]KBSPolicy{}}
	if err := tx.QueryRowContext(ctx, GenerationQuery).Scan(&sn.gen); err != nil {
		return nil, fmt.Errorf("store: cache: generation: %w", err)
	}
	recs, err := c.s.queryReferenceValues(ctx, tx, "", nil)
	if err != nil {
		return nil, fmt.Errorf("store: cache: reference values: %w", err)
	}
	for _, v := range toRefValues(recs) {
		sn.refs[v.Name] = append(sn.refs[v.Name], v)
	}
	rows, err := tx.QueryContext(ctx, "SELECT "+policyColumns+" FROM policies WHERE active = 1")
	if err != nil {
		return nil, fmt.Errorf("store: cache: policies: %w", err)
	}
	for rows.Next() {
		p, err := scanPolicy(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: cache: policies: %w", err)
		}
		sn.policies[p.ID] = p
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("store: cache: policies: %w", err)
	}
	rows, err = tx.QueryContext(ctx, "SELECT name, body, sha256, updated_at FROM kbs_policies")
	if err != nil {
		return nil, fmt.Errorf("store: cache: kbs policies: %w", err)
	}
	for rows.Next() {
		var (
			p  KBSPolicy
			at int64
		)
		if err := rows.Scan(&p.Name, &p.Body, &p.SHA256, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: cache: kbs policies: %w", err)
		}
		p.UpdatedAt = fromDB(at)
		sn.kbs[p.Name] = p
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("store: cache: kbs policies: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store: cache: commit: %w", err)
	}
	c.cur.Store(sn)
	c.checked.Store(checked)
	return sn, nil
}

// LookupReferenceValues is [Store.LookupReferenceValues] from memory, as
// refvalue values: the values named name valid at at, by ID. The returned
// values share their Values slices with the snapshot: callers must not
// modify them.
func (c *Cache) LookupReferenceValues(ctx context.Context, name string, at time.Time) ([]refvalue.Value, error) {
	if err := checkTime("lookup time", at); err != nil {
		return nil, fmt.Errorf("store: lookup reference values %s: %w", name, err)
	}
	sn, err := c.snap(ctx)
	if err != nil {
		return nil, err
	}
	all := sn.refs[name]
	out := make([]refvalue.Value, 0, len(all))
	for i := range all {
		if all[i].ValidAt(at) {
			out = append(out, all[i])
		}
	}
	return out, nil
}

// ActivePolicy is [Store.ActivePolicy] from memory.
func (c *Cache) ActivePolicy(ctx context.Context, id string) (Policy, error) {
	sn, err := c.snap(ctx)
	if err != nil {
		return Policy{}, err
	}
	p, ok := sn.policies[id]
	if !ok {
		return Policy{}, notFound{"active policy", id}
	}
	return p, nil
}

// KBSResource is [Store.KBSResource] through the snapshot: the first read
// of a path goes to the database, later ones are answered from memory
// until a write to any resource (through this Store at once; from another
// process within the poll interval, as for policies) makes a new
// snapshot. A missing resource is not remembered, nor one beyond the
// snapshot's bounds (maxCachedResources, maxCachedResourceBytes). The returned byte
// slices are shared: callers must not modify them.
func (c *Cache) KBSResource(ctx context.Context, path string) (KBSResource, error) {
	sn, err := c.snap(ctx)
	if err != nil {
		return KBSResource{}, err
	}
	if v, ok := sn.resources.Load(path); ok {
		return v.(KBSResource), nil
	}
	r, err := c.s.KBSResource(ctx, path)
	if err != nil {
		return KBSResource{}, err
	}
	// A write that committed after the read made a newer snapshot (the
	// write count or the generation moved): this one is no longer served.
	if n := int64(len(r.Nonce) + len(r.Ciphertext)); sn.resBytes.Add(n) > maxCachedResourceBytes {
		sn.resBytes.Add(-n) // too large for what is left: read every time
	} else if sn.nres.Add(1) <= maxCachedResources {
		sn.resources.Store(path, r)
	}
	return r, nil
}

// KBSPolicy is [Store.KBSPolicy] from memory.
func (c *Cache) KBSPolicy(ctx context.Context, name string) (KBSPolicy, error) {
	sn, err := c.snap(ctx)
	if err != nil {
		return KBSPolicy{}, err
	}
	p, ok := sn.kbs[name]
	if !ok {
		return KBSPolicy{}, notFound{"kbs policy", name}
	}
	return p, nil
}

// KBSPolicySHA256 is [Store.KBSPolicySHA256] from memory.
func (c *Cache) KBSPolicySHA256(ctx context.Context, name string) (string, error) {
	p, err := c.KBSPolicy(ctx, name)
	if err != nil {
		return "", err
	}
	return p.SHA256, nil
}

// RefValues returns the refvalue.Store view of c: Lookup from memory;
// Add, List and Remove through the Store (Add and Remove are seen by the
// next Lookup).
func (c *Cache) RefValues() CachedRefValues { return CachedRefValues{c: c} }

// CachedRefValues is a refvalue.Store whose lookups are served by a Cache.
type CachedRefValues struct {
	c *Cache
}

var _ refvalue.Store = CachedRefValues{}

// Add implements refvalue.Store (see RefValues.Add).
func (r CachedRefValues) Add(ctx context.Context, v refvalue.Value) (string, error) {
	return r.c.s.RefValues().Add(ctx, v)
}

// List implements refvalue.Store from the database.
func (r CachedRefValues) List(ctx context.Context) ([]refvalue.Value, error) {
	return r.c.s.RefValues().List(ctx)
}

// Remove implements refvalue.Store (see RefValues.Remove).
func (r CachedRefValues) Remove(ctx context.Context, id string) error {
	return r.c.s.RefValues().Remove(ctx, id)
}

// Lookup implements refvalue.Store from memory.
func (r CachedRefValues) Lookup(ctx context.Context, name string, at time.Time) ([]refvalue.Value, error) {
	return r.c.LookupReferenceValues(ctx, name, at)
}

// notFound is ErrNotFound for one named row, formatted only when read:
// a verification under the built-in default policy asks for an active
// policy that is usually not there.
type notFound struct{ what, name string }

func (e notFound) Error() string {
	return "store: " + e.what + " " + e.name + ": " + ErrNotFound.Error()
}
func (e notFound) Unwrap() error { return ErrNotFound }
