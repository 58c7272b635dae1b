package snp

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"time"
)

// DefaultCacheEntries bounds each of a Verifier's caches.
const DefaultCacheEntries = 4096

// VerifierOptions configure a Verifier.
type VerifierOptions struct {
	// Roots, CRLs and RequireCRL: see Options.
	Roots      map[Product]*x509.Certificate
	CRLs       [][]byte
	RequireCRL bool
	// CacheEntries bounds each cache. If zero, DefaultCacheEntries.
	CacheEntries int
}

// Verifier verifies reports like Verify but remembers endorsement chains
// and CRLs it has already verified, keyed by the SHA-256 of their exact
// DER. A repeat report from a known chip costs one P-384 verification
// plus hashing and lookups: validity windows, revocation and the
// report-to-certificate comparisons run on every call.
//
// A Verifier is safe for concurrent use.
type Verifier struct {
	opts  VerifierOptions
	cache *cache
}

// NewVerifier returns a Verifier.
func NewVerifier(opts VerifierOptions) *Verifier {
	n := opts.CacheEntries
	if n <= 0 {
		n = DefaultCacheEntries
	}
	return &Verifier{opts: opts, cache: &cache{max: n, chains: map[chainKey]*chain{}, crls: map[[32]byte]*verifiedCRL{}}}
}

// Verify verifies r at time now (time.Now() if zero). product may be
// ProductUnknown (see Options.Product).
func (v *Verifier) Verify(r *Report, certs Certificates, product Product, now time.Time) (*Result, error) {
	return verify(r, certs, Options{Now: now, Product: product, Roots: v.opts.Roots, CRLs: v.opts.CRLs, RequireCRL: v.opts.RequireCRL}, v.cache)
}

type chainKey struct {
	product   Product
	key       SigningKey
	ark, ask  [32]byte
	vcek      [32]byte
	hasARK    bool
	customARK [32]byte
}

// cache holds verified chains and CRLs. A nil *cache verifies every time.
type cache struct {
	mu     sync.Mutex
	max    int
	chains map[chainKey]*chain
	crls   map[[32]byte]*verifiedCRL
}

func (c *cache) chain(p Product, key SigningKey, certs Certificates, roots map[Product]*x509.Certificate) (*chain, error) {
	if c == nil {
		return buildChain(p, key, certs, roots)
	}
	k := chainKey{product: p, key: key, vcek: sha256.Sum256(certs.VCEK.Raw)}
	if certs.ARK != nil {
		k.ark = sha256.Sum256(certs.ARK.Raw)
	}
	if certs.ASK != nil {
		k.ask = sha256.Sum256(certs.ASK.Raw)
	}
	if r := roots[p]; r != nil {
		k.hasARK, k.customARK = true, sha256.Sum256(r.Raw)
	}
	c.mu.Lock()
	ch, ok := c.chains[k]
	c.mu.Unlock()
	if ok {
		return ch, nil
	}
	ch, err := buildChain(p, key, certs, roots)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.chains) >= c.max {
		clear(c.chains)
	}
	c.chains[k] = ch
	c.mu.Unlock()
	return ch, nil
}

// checkCRLs applies every CRL issued by ch's ARK. It returns the one
// issued last of those applied, nil when none was.
func (c *cache) checkCRLs(ch *chain, crls [][]byte, now time.Time) (*CRLInfo, error) {
	var applied *CRLInfo
	for _, raw := range crls {
		v, err := c.crl(raw, ch.ark)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		if err := v.check(ch, now); err != nil {
			return nil, err
		}
		if applied == nil || v.info.ThisUpdate.After(applied.ThisUpdate) {
			info := v.info
			applied = &info
		}
	}
	return applied, nil
}

func (c *cache) crl(raw []byte, ark *x509.Certificate) (*verifiedCRL, error) {
	if c == nil {
		return verifyCRL(raw, ark)
	}
	h := sha256.New()
	h.Write(raw)
	h.Write(ark.Raw)
	var k [32]byte
	h.Sum(k[:0])
	c.mu.Lock()
	v, ok := c.crls[k]
	c.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := verifyCRL(raw, ark)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.crls) >= c.max {
		clear(c.crls)
	}
	c.crls[k] = v
	c.mu.Unlock()
	return v, nil
}

func pemOrDER(b []byte, typ string) []byte {
	if blk, _ := pem.Decode(b); blk != nil && blk.Type == typ {
		return blk.Bytes
	}
	return b
}
