package amdkds

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tdproof/tdproof/snp"
)

// DefaultMemoryEntries bounds the VCEKs a Memory keeps.
const DefaultMemoryEntries = 1024

// DefaultRetryAfter is how long a Memory answers a failed CRL fetch
// with the same error before asking Upstream again.
const DefaultRetryAfter = time.Minute

// Memory is an in-process cache in front of Upstream (a Client, or a
// Cache on disk), for a long-running service: cert_chains and VCEKs are
// kept (a VCEK is fixed by chip and TCB), a CRL until its NextUpdate. A
// failed CRL fetch is remembered for RetryAfter so that a KDS outage or
// rate limit does not turn into one request per verification. Nothing
// is trusted here: package snp verifies what it returns. Concurrent
// misses for one item share one Upstream request, which runs for at most
// memoryFetchTimeout whatever the callers' contexts.
//
// A Memory is safe for concurrent use.
type Memory struct {
	Upstream Source
	// Now is the clock for CRL freshness; time.Now if nil.
	Now func() time.Time
	// MaxEntries bounds the VCEKs kept (DefaultMemoryEntries if zero).
	MaxEntries int
	// RetryAfter: see the type's documentation (DefaultRetryAfter if
	// zero).
	RetryAfter time.Duration
	// Roots are the ARKs a fetched CRL must verify under (snp.ARK when
	// nil or missing) for its ThisUpdate to bound the lists taken after
	// it: a list that does not verify (a forgery) is still served, for
	// package snp to refuse, but cannot make Memory refuse genuine ones.
	Roots map[snp.Product]*x509.Certificate

	flight singleflight.Group
	mu     sync.Mutex
	chains map[snp.Product][]byte
	vceks  map[vcekKey][]byte
	crls   map[snp.Product]memoCRL
}

type vcekKey struct {
	p    snp.Product
	chip [64]byte
	tcb  snp.TCBVersion
}

type memoCRL struct {
	der        []byte
	nextUpdate time.Time
	// thisUpdate is the newest ThisUpdate of a CRL that verified under
	// the product's ARK: a fetched CRL issued before it does not replace
	// the kept one (rollback to a list predating a revocation).
	thisUpdate time.Time
	err        error
	retry      time.Time
}

func (m *Memory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// memoryFetchTimeout bounds an Upstream request a Memory shares.
const memoryFetchTimeout = 2 * time.Minute

// shared runs fetch once for all concurrent callers with key, detached
// from their contexts; each caller waits until its own context is done.
func (m *Memory) shared(ctx context.Context, key string, fetch func(context.Context) ([]byte, error)) ([]byte, error) {
	ch := m.flight.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), memoryFetchTimeout)
		defer cancel()
		return fetch(fctx)
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]byte), nil
	}
}

func (m *Memory) init() {
	if m.chains == nil {
		m.chains, m.vceks, m.crls = map[snp.Product][]byte{}, map[vcekKey][]byte{}, map[snp.Product]memoCRL{}
	}
}

// CertChain implements Source.
func (m *Memory) CertChain(ctx context.Context, p snp.Product) ([]byte, error) {
	m.mu.Lock()
	m.init()
	b, ok := m.chains[p]
	m.mu.Unlock()
	if ok {
		return b, nil
	}
	return m.shared(ctx, "cert_chain/"+p.String(), func(ctx context.Context) ([]byte, error) {
		b, err := m.Upstream.CertChain(ctx, p)
		if err != nil {
			return nil, err
		}
		m.mu.Lock()
		m.chains[p] = b
		m.mu.Unlock()
		return b, nil
	})
}

// VCEK implements Source.
func (m *Memory) VCEK(ctx context.Context, p snp.Product, chipID [64]byte, tcb snp.TCBVersion) ([]byte, error) {
	k := vcekKey{p, chipID, tcb}
	m.mu.Lock()
	m.init()
	b, ok := m.vceks[k]
	m.mu.Unlock()
	if ok {
		return b, nil
	}
	return m.shared(ctx, fmt.Sprintf("vcek/%s/%x/%x", p, chipID, uint64(tcb)), func(ctx context.Context) ([]byte, error) {
		b, err := m.Upstream.VCEK(ctx, p, chipID, tcb)
		if err != nil {
			return nil, err
		}
		max := m.MaxEntries
		if max <= 0 {
			max = DefaultMemoryEntries
		}
		m.mu.Lock()
		if len(m.vceks) >= max {
			clear(m.vceks)
		}
		m.vceks[k] = b
		m.mu.Unlock()
		return b, nil
	})
}

// CRL implements Source: the kept CRL while now is before its
// NextUpdate, else a fresh one from Upstream; when that fails, the kept
// (stale) CRL if any (package snp refuses it as expired), else the
// error. A failure, a CRL Upstream returns already past its NextUpdate
// (a disk Cache serves a stale one when KDS fails), and one that does
// not verify under the ARK (Roots), is kept for RetryAfter before
// Upstream is asked again.
func (m *Memory) CRL(ctx context.Context, p snp.Product) ([]byte, error) {
	if b, ok, err := m.keptCRL(p); ok {
		return b, err
	}
	return m.shared(ctx, "crl/"+p.String(), func(ctx context.Context) ([]byte, error) { return m.fetchCRL(ctx, p) })
}

// keptCRL answers from what is kept, ok false when Upstream is to be
// asked.
func (m *Memory) keptCRL(p snp.Product) (b []byte, ok bool, err error) {
	now := m.now()
	m.mu.Lock()
	m.init()
	c, ok := m.crls[p]
	m.mu.Unlock()
	switch {
	case ok && c.der != nil && now.Before(c.nextUpdate):
		return c.der, true, nil
	case ok && c.err != nil && now.Before(c.retry):
		if c.der != nil {
			return c.der, true, nil
		}
		return nil, true, c.err
	}
	return nil, false, nil
}

func (m *Memory) fetchCRL(ctx context.Context, p snp.Product) ([]byte, error) {
	// A shared fetch that ended just before this one began kept its
	// answer.
	if b, ok, err := m.keptCRL(p); ok {
		return b, err
	}
	now := m.now()
	m.mu.Lock()
	c := m.crls[p]
	m.mu.Unlock()
	b, err := m.Upstream.CRL(ctx, p)
	var next time.Time
	this := c.thisUpdate
	if err == nil {
		crl, perr := x509.ParseRevocationList(b)
		switch {
		case perr != nil:
			err = fmt.Errorf("%w: %s CRL: %v", ErrInvalidResponse, p, perr)
		case c.der != nil && crl.ThisUpdate.Before(c.thisUpdate):
			// An older list than the one kept (a replay, or a
			// lagging mirror): it may predate a revocation.
			err = fmt.Errorf("%w: %s CRL issued %s, before the one kept (%s)", ErrInvalidResponse, p,
				crl.ThisUpdate.UTC().Format(time.RFC3339), c.thisUpdate.UTC().Format(time.RFC3339))
		case crl.NextUpdate.IsZero() || !now.Before(crl.NextUpdate):
			// No NextUpdate, or already past it: keep it for
			// RetryAfter only.
			next = now.Add(m.retryAfter())
		default:
			next = crl.NextUpdate
		}
		if err == nil {
			if !m.verifies(p, crl) {
				// Not the ARK's (package snp refuses it): asked
				// again after RetryAfter, not kept until a
				// NextUpdate a forger chose.
				next = now.Add(m.retryAfter())
			} else if crl.ThisUpdate.After(this) {
				this = crl.ThisUpdate
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			m.crls[p] = memoCRL{der: c.der, nextUpdate: c.nextUpdate, thisUpdate: c.thisUpdate, err: err, retry: now.Add(m.retryAfter())}
		}
		if c.der != nil {
			return c.der, nil
		}
		return nil, err
	}
	m.crls[p] = memoCRL{der: b, nextUpdate: next, thisUpdate: this}
	return b, nil
}

// verifies reports whether crl is signed by the ARK of p.
func (m *Memory) verifies(p snp.Product, crl *x509.RevocationList) bool {
	ark := m.Roots[p]
	if ark == nil {
		ark = snp.ARK(p)
	}
	return ark != nil && bytes.Equal(crl.RawIssuer, ark.RawSubject) && crl.CheckSignatureFrom(ark) == nil
}

func (m *Memory) retryAfter() time.Duration {
	if m.RetryAfter > 0 {
		return m.RetryAfter
	}
	return DefaultRetryAfter
}

// CRLs obtains from src the ARK-signed CRLs that apply to r's chain: the
// CRL of the report's product (version 3 and later: from CPUID; product
// when set), or for a version 2 report without product, whose product
// line only verification finds, the CRL of each product line src has
// (at least one). Package snp applies the one its chain's ARK issued and
// skips the others.
func CRLs(ctx context.Context, src Source, r *snp.Report, product snp.Product) ([][]byte, error) {
	products := snp.Products
	if r.Version >= 3 || product != snp.ProductUnknown {
		p, err := ReportProduct(r, product)
		if err != nil {
			return nil, err
		}
		products = []snp.Product{p}
	}
	var out [][]byte
	var errs []error
	for _, p := range products {
		b, err := src.CRL(ctx, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
