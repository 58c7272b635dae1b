// Package crlcache fetches the certificate revocation lists a certificate
// chain names (its CRL distribution points) over HTTP and keeps them in a
// directory, so that revocation checks (package revocation) run offline
// from the cache like other collateral.
//
// A cached list is used while it is current (its NextUpdate is after the
// cache's clock); otherwise, unless Offline, it is fetched again. A list
// that cannot be had is ErrUnavailable: the caller's revocation check then
// fails closed. Lists are parsed but not verified here: revocation.Check
// verifies each against the issuer of the certificate it covers.
package crlcache

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tdproof/tdproof/revocation"
)

// MaxCRLSize bounds a fetched CRL. AWS's and Google's lists are a few
// kilobytes.
const MaxCRLSize = 8 << 20

// DefaultTimeout bounds one fetch when Cache.Client is nil.
const DefaultTimeout = 30 * time.Second

// ErrUnavailable: a CRL could not be fetched (network, HTTP status, size,
// not a CRL) and no cached copy may be used, or, offline, the cache does
// not hold it.
var ErrUnavailable = errors.New("crlcache: CRL unavailable")

// Cache fetches CRLs by URL and stores them in Dir.
type Cache struct {
	// Dir holds one file per URL: <SHA-256(URL) hex>.crl (DER). It is
	// created on the first store.
	Dir string
	// Client fetches; nil is a client with DefaultTimeout.
	Client *http.Client
	// Offline answers from Dir only.
	Offline bool
	// Now is the cache's clock (nil: time.Now): a cached list is current
	// while Now is before its NextUpdate.
	Now func() time.Time

	// mem keeps the current lists Get returned, parsed and verified, by
	// URL and issuer key: a server verifying every request does not
	// read, parse and verify the same file each time. A Cache must not
	// be copied after first use.
	mu  sync.Mutex
	mem map[memKey]*x509.RevocationList
	// wmu orders Get's comparison with, and replacement of, the stored
	// list, so that an older list fetched concurrently does not
	// overwrite a newer one.
	wmu sync.Mutex
}

// memKey is a list's URL and the SubjectPublicKeyInfo it verified under.
type memKey struct{ url, issuerKey string }

// maxMem bounds Cache.mem; it is emptied when full.
const maxMem = 256

// CRLs returns the lists the certificates of chain (leaf first, each
// issued by the next) name as distribution points: cached, or fetched and
// cached. A list is kept only when it verifies under the key of the
// issuer of the certificate naming it, so that a list substituted in
// transit (the distribution points are plain http) is refetched, not
// cached until its own NextUpdate.
func (c *Cache) CRLs(ctx context.Context, chain []*x509.Certificate) ([]*x509.RevocationList, error) {
	var out []*x509.RevocationList
	seen := map[string]bool{}
	for i := 0; i+1 < len(chain); i++ {
		for _, u := range revocation.DistributionPoints([]*x509.Certificate{chain[i], chain[i+1]}) {
			if seen[u] {
				continue
			}
			seen[u] = true
			l, err := c.Get(ctx, u, chain[i+1])
			if err != nil {
				return nil, err
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// Path is the cache file of url.
func (c *Cache) Path(url string) string {
	h := sha256.Sum256([]byte(url))
	return filepath.Join(c.Dir, hex.EncodeToString(h[:])+".crl")
}

// Get returns the CRL at url: the cached copy while current, else
// (online) a fresh copy, which replaces it. With an issuer, a list that
// does not verify under its key is neither used from the cache nor
// stored (ErrUnavailable), nor is a list older (by CRL number or this
// update) than a cached one that verifies, even one a concurrent Get
// stored meanwhile (that one is returned while current). Offline, a
// cached copy is returned even when no longer current (revocation.Check
// then refuses it, saying so).
func (c *Cache) Get(ctx context.Context, url string, issuer *x509.Certificate) (*x509.RevocationList, error) {
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	var key memKey
	if issuer != nil {
		key = memKey{url, string(issuer.RawSubjectPublicKeyInfo)}
		if l := c.recall(key, now); l != nil {
			return l, nil
		}
	}
	cached, cerr := c.readVerified(url, issuer)
	if cached != nil && (c.Offline || now.Before(cached.NextUpdate)) {
		if issuer != nil {
			c.remember(key, cached, now)
		}
		return cached, nil
	}
	if c.Offline {
		return nil, fmt.Errorf("%w: %s is not in the cache %s (offline): %v", ErrUnavailable, url, c.Dir, cerr)
	}
	der, err := c.fetch(ctx, url)
	if err != nil {
		return nil, err
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: not a CRL: %v", ErrUnavailable, url, err)
	}
	if issuer != nil {
		if err := l.CheckSignatureFrom(issuer); err != nil {
			return nil, fmt.Errorf("%w: %s: the list does not verify under %q: %v", ErrUnavailable, url, issuer.Subject, err)
		}
	}
	// Compare with what the cache holds and replace it under one lock: a
	// concurrent Get may have stored a newer list since cached was read.
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if cur, _ := c.readVerified(url, issuer); cur != nil {
		cached = cur
	}
	if issuer != nil {
		if m := c.kept(key); m != nil && (cached == nil || older(cached, m)) {
			cached = m
		}
	}
	if cached != nil && older(l, cached) {
		if now.Before(cached.NextUpdate) {
			return cached, nil // stored by a concurrent Get
		}
		// A list issued before the one the cache holds (an old list,
		// still within its NextUpdate, replayed in transit) may lack
		// revocations the cached one has: neither use nor store it.
		return nil, fmt.Errorf("%w: %s: the list (CRL number %v, this update %s) is older than the cached one (CRL number %v, this update %s)",
			ErrUnavailable, url, l.Number, l.ThisUpdate.UTC().Format(time.RFC3339), cached.Number, cached.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if err := c.write(url, der); err != nil {
		return nil, err
	}
	if issuer != nil {
		c.remember(key, l, now)
	}
	return l, nil
}

// recall returns the list kept for key while it is current at now.
func (c *Cache) recall(key memKey, now time.Time) *x509.RevocationList {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.mem[key]; l != nil && now.Before(l.NextUpdate) {
		return l
	}
	return nil
}

// remember keeps l, verified under key's issuer, while it is current at
// now (a stale list, returned offline, is read again next time).
func (c *Cache) remember(key memKey, l *x509.RevocationList, now time.Time) {
	if !now.Before(l.NextUpdate) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mem == nil || len(c.mem) >= maxMem {
		c.mem = make(map[memKey]*x509.RevocationList)
	}
	c.mem[key] = l
}

// kept returns the list kept for key, current or not.
func (c *Cache) kept(key memKey) *x509.RevocationList {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mem[key]
}

// older reports whether l was issued before cached: a lower CRL number,
// or an earlier this update.
func older(l, cached *x509.RevocationList) bool {
	return l.Number != nil && cached.Number != nil && l.Number.Cmp(cached.Number) < 0 || l.ThisUpdate.Before(cached.ThisUpdate)
}

// readVerified reads the cached list at url; with an issuer, one that
// does not verify under its key is an error.
func (c *Cache) readVerified(url string, issuer *x509.Certificate) (*x509.RevocationList, error) {
	l, err := c.read(url)
	if l != nil && issuer != nil {
		if err := l.CheckSignatureFrom(issuer); err != nil {
			return nil, fmt.Errorf("cached list does not verify under %q: %w", issuer.Subject, err)
		}
	}
	return l, err
}

func (c *Cache) read(url string) (*x509.RevocationList, error) {
	if c.Dir == "" {
		return nil, errors.New("no cache directory")
	}
	der, err := os.ReadFile(c.Path(url))
	if err != nil {
		return nil, err
	}
	return x509.ParseRevocationList(der)
}

func (c *Cache) fetch(ctx context.Context, url string) ([]byte, error) {
	cl := c.Client
	if cl == nil {
		cl = &http.Client{Timeout: DefaultTimeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, url, err)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s: HTTP %d", ErrUnavailable, url, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxCRLSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, url, err)
	}
	if len(b) > MaxCRLSize {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrUnavailable, url, MaxCRLSize)
	}
	return b, nil
}

// write stores der atomically (a temporary file renamed over the old
// one). Without a Dir nothing is stored.
func (c *Cache) write(url string, der []byte) error {
	if c.Dir == "" {
		return nil
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return fmt.Errorf("crlcache: %w", err)
	}
	f, err := os.CreateTemp(c.Dir, ".crl-*")
	if err != nil {
		return fmt.Errorf("crlcache: %w", err)
	}
	_, werr := f.Write(der)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("crlcache: %w", err)
	}
	if err := os.Rename(f.Name(), c.Path(url)); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("crlcache: %w", err)
	}
	return nil
}
