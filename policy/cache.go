package policy

import (
	"crypto/sha256"
	"sync"
)

// DefaultCacheEntries bounds a Cache made with NewCache(0).
const DefaultCacheEntries = 256

// Cache keeps compiled policies (for Rego, their prepared queries) keyed
// by format, id, version and the SHA-256 of the source, so a policy
// stored as text is compiled once per version, and a source changed under
// the same version is never served stale. A Cache is safe for concurrent
// use.
type Cache struct {
	mu    sync.Mutex
	max   int
	parse ParseFunc
	m     map[cacheKey]*Policy
}

// ParseFunc compiles a policy document; Parse and policy/rego's Parse
// are ParseFuncs.
type ParseFunc func(format Format, id, version string, src []byte) (*Policy, error)

type cacheKey struct {
	format      Format
	id, version string
	sum         [32]byte
}

// NewCache returns a Cache holding at most max policies (if zero,
// DefaultCacheEntries) compiled with parse (if nil, Parse: declarative
// only). When full, an arbitrary entry is evicted.
func NewCache(max int, parse ParseFunc) *Cache {
	if max <= 0 {
		max = DefaultCacheEntries
	}
	if parse == nil {
		parse = Parse
	}
	return &Cache{max: max, parse: parse, m: map[cacheKey]*Policy{}}
}

// Get returns the compiled policy for the given source, compiling it
// on a miss. Errors are not cached.
func (c *Cache) Get(format Format, id, version string, src []byte) (*Policy, error) {
	k := cacheKey{format: format, id: id, version: version, sum: sha256.Sum256(src)}
	c.mu.Lock()
	p, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := c.parse(format, id, version, src)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if q, ok := c.m[k]; ok {
		return q, nil
	}
	if len(c.m) >= c.max {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = p
	return p, nil
}

// Len returns the number of cached policies.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
