package crlcache_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tdproof/tdproof/revocation"
	"github.com/tdproof/tdproof/revocation/crlcache"
)

var at = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// TestCache: a chain's CRL is fetched once, served from the directory
// while current, fetched again when stale, used offline from the
// directory, and the revocation check runs on what the cache returns.
func TestCache(t *testing.T) {
	root, key := newCA(t)
	var hits atomic.Int32
	var revoked atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/root.crl" {
			http.NotFound(w, r)
			return
		}
		tmpl := &x509.RevocationList{Number: big.NewInt(int64(hits.Load())), ThisUpdate: at.Add(-time.Hour), NextUpdate: at.Add(time.Hour)}
		if revoked.Load() {
			tmpl.RevokedCertificateEntries = []x509.RevocationListEntry{{SerialNumber: big.NewInt(2), RevocationTime: at}}
		}
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, root, key)
		if err != nil {
			t.Error(err)
		}
		_, _ = w.Write(der)
	}))
	defer srv.Close()
	inter := newIntermediate(t, root, key, srv.URL+"/root.crl")
	chain := []*x509.Certificate{inter, root}

	now := at
	dir := t.TempDir()
	c := &crlcache.Cache{Dir: dir, Client: srv.Client(), Now: func() time.Time { return now }}
	check := func() error {
		t.Helper()
		crls, err := c.CRLs(t.Context(), chain)
		if err != nil {
			return err
		}
		return revocation.Check(chain, crls, now)
	}
	if err := check(); err != nil || hits.Load() != 1 {
		t.Fatalf("first: %v, %d fetches", err, hits.Load())
	}
	if _, err := os.Stat(c.Path(srv.URL + "/root.crl")); err != nil {
		t.Fatal(err)
	}
	// Current: from the directory, even for a new Cache.
	c = &crlcache.Cache{Dir: dir, Client: srv.Client(), Now: func() time.Time { return now }}
	if err := check(); err != nil || hits.Load() != 1 {
		t.Fatalf("cached: %v, %d fetches", err, hits.Load())
	}
	// The intermediate is revoked; the cached list is current, so the
	// cache does not know until the list is due.
	revoked.Store(true)
	if err := check(); err != nil {
		t.Fatal(err)
	}
	now = at.Add(2 * time.Hour) // past NextUpdate: fetched again
	if err := check(); !errors.Is(err, revocation.ErrCRL) || hits.Load() != 2 {
		// The new list is valid until at+1h too: not current at now.
		t.Fatalf("stale: %v, %d fetches", err, hits.Load())
	}
	now = at.Add(30 * time.Minute)
	c.Now = func() time.Time { return now.Add(2 * time.Hour) } // the cache refetches; the check runs at now
	if err := check(); !errors.Is(err, revocation.ErrRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	// Offline: the directory only.
	off := &crlcache.Cache{Dir: dir, Offline: true}
	if _, err := off.CRLs(t.Context(), chain); err != nil {
		t.Fatalf("offline: %v", err)
	}
	if _, err := (&crlcache.Cache{Dir: t.TempDir(), Offline: true}).CRLs(t.Context(), chain); !errors.Is(err, crlcache.ErrUnavailable) {
		t.Fatalf("offline, empty: %v", err)
	}
	// A distribution point that does not answer with a CRL.
	inter = newIntermediate(t, root, key, srv.URL+"/missing.crl")
	if _, err := c.CRLs(t.Context(), []*x509.Certificate{inter, root}); !errors.Is(err, crlcache.ErrUnavailable) {
		t.Fatalf("404: %v", err)
	}
}

// TestSubstitutedList: a list that does not verify under the issuer of
// the certificate naming it (substituted in transit) is not stored, and a
// stored one that does not verify is not used.
func TestSubstitutedList(t *testing.T) {
	root, key := newCA(t)
	evilRoot, evil := newCA(t) // same name, another key
	crl, _ := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: at.Add(-time.Hour),
		NextUpdate: at.AddDate(10, 0, 0)}, evilRoot, evil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(crl) }))
	defer srv.Close()
	inter := newIntermediate(t, root, key, srv.URL+"/root.crl")
	c := &crlcache.Cache{Dir: t.TempDir(), Client: srv.Client(), Now: func() time.Time { return at }}
	if _, err := c.CRLs(t.Context(), []*x509.Certificate{inter, root}); !errors.Is(err, crlcache.ErrUnavailable) {
		t.Fatalf("%v, want ErrUnavailable", err)
	}
	if _, err := os.Stat(c.Path(srv.URL + "/root.crl")); !os.IsNotExist(err) {
		t.Fatalf("the substituted list was stored (%v)", err)
	}
	// Planted in the directory: not used offline either.
	if err := os.WriteFile(c.Path(srv.URL+"/root.crl"), crl, 0o644); err != nil {
		t.Fatal(err)
	}
	c.Offline = true
	if _, err := c.CRLs(t.Context(), []*x509.Certificate{inter, root}); !errors.Is(err, crlcache.ErrUnavailable) {
		t.Fatalf("planted: %v, want ErrUnavailable", err)
	}
}

// TestOlderListRefused: once the cache holds a list, an older list of the
// same issuer (a lower CRL number, issued earlier, still within its
// NextUpdate: replayed in transit over plain http) is neither used nor
// stored, so that a revocation the cached list records is not undone.
func TestOlderListRefused(t *testing.T) {
	root, key := newCA(t)
	list := func(n int64, from, to time.Time, revoked ...int64) []byte {
		tmpl := &x509.RevocationList{Number: big.NewInt(n), ThisUpdate: from, NextUpdate: to}
		for _, s := range revoked {
			tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: from})
		}
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, root, key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	// The old list (number 3, issued a day earlier, valid for a week)
	// does not list the intermediate; the newer one (number 5) revokes it.
	old := list(3, at.Add(-24*time.Hour), at.Add(7*24*time.Hour))
	newer := list(5, at.Add(-time.Hour), at.Add(time.Hour), 2)
	var serve atomic.Pointer[[]byte]
	serve.Store(&newer)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(*serve.Load()) }))
	defer srv.Close()
	inter := newIntermediate(t, root, key, srv.URL+"/root.crl")
	chain := []*x509.Certificate{inter, root}
	now := at
	c := &crlcache.Cache{Dir: t.TempDir(), Client: srv.Client(), Now: func() time.Time { return now }}
	crls, err := c.CRLs(t.Context(), chain)
	if err != nil {
		t.Fatal(err)
	}
	if err := revocation.Check(chain, crls, now); !errors.Is(err, revocation.ErrRevoked) {
		t.Fatalf("newer list: %v, want ErrRevoked", err)
	}
	// Past the newer list's NextUpdate the cache fetches again and gets
	// the old list, which would pass the intermediate.
	now = at.Add(2 * time.Hour)
	serve.Store(&old)
	if _, err := c.CRLs(t.Context(), chain); !errors.Is(err, crlcache.ErrUnavailable) {
		t.Fatalf("older list: %v, want ErrUnavailable", err)
	}
	stored, err := os.ReadFile(c.Path(srv.URL + "/root.crl"))
	if err != nil || string(stored) != string(newer) {
		t.Fatalf("the cache no longer holds the newer list (%v)", err)
	}
}

// TestMemory: a Cache keeps the current lists it returned in memory (no
// read of the directory, no fetch), per issuer key: a list verified under
// one issuer is not handed out for another, and a list past its
// NextUpdate is fetched again.
func TestMemory(t *testing.T) {
	root, key := newCA(t)
	otherRoot, _ := newCA(t)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(int64(hits.Load())),
			ThisUpdate: at.Add(-time.Hour), NextUpdate: at.Add(time.Hour)}, root, key)
		if err != nil {
			t.Error(err)
		}
		_, _ = w.Write(der)
	}))
	defer srv.Close()
	url := srv.URL + "/root.crl"
	now := at
	c := &crlcache.Cache{Dir: t.TempDir(), Client: srv.Client(), Now: func() time.Time { return now }}
	first, err := c.Get(t.Context(), url, root)
	if err != nil || hits.Load() != 1 {
		t.Fatalf("first: %v, %d fetches", err, hits.Load())
	}
	if err := os.Remove(c.Path(url)); err != nil {
		t.Fatal(err)
	}
	if l, err := c.Get(t.Context(), url, root); err != nil || l != first || hits.Load() != 1 {
		t.Fatalf("from memory: %v, same list %v, %d fetches", err, l == first, hits.Load())
	}
	// Another issuer's key: not the list kept for root (fetched, and it
	// does not verify under that key).
	if _, err := c.Get(t.Context(), url, otherRoot); !errors.Is(err, crlcache.ErrUnavailable) || hits.Load() != 2 {
		t.Fatalf("other issuer: %v, %d fetches; want ErrUnavailable after a fetch", err, hits.Load())
	}
	// Past NextUpdate: fetched again, not served from memory.
	now = at.Add(2 * time.Hour)
	if l, err := c.Get(t.Context(), url, root); err != nil || l == first || hits.Load() != 3 {
		t.Fatalf("stale: %v, same list %v, %d fetches", err, l == first, hits.Load())
	}
}

// newCA returns a self-signed CA certificate that signs CRLs, and its
// key.
func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root"}, NotBefore: at.Add(-time.Hour),
		NotAfter: at.Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

// newIntermediate returns a CA certificate (serial 2) ca issued with key,
// naming the distribution point dp.
func newIntermediate(t *testing.T, ca *x509.Certificate, key *ecdsa.PrivateKey, dp string) *x509.Certificate {
	t.Helper()
	ik, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "intermediate"}, NotBefore: at.Add(-time.Hour),
		NotAfter: at.Add(48 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		CRLDistributionPoints: []string{dp}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &ik.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConcurrentRefresh: two Gets that both find the cached list stale
// fetch concurrently; the first stores a newer list, the second then
// receives an older one (still newer than the stale list they read, and
// within its NextUpdate). The older list neither replaces the newer one
// on disk nor is returned.
func TestConcurrentRefresh(t *testing.T) {
	root, key := newCA(t)
	list := func(n int64, from, to time.Time) []byte {
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(n), ThisUpdate: from, NextUpdate: to}, root, key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	stale := list(1, at.Add(-3*time.Hour), at.Add(-time.Hour))
	older := list(3, at.Add(-2*time.Hour), at.Add(7*24*time.Hour))
	newer := list(5, at.Add(-time.Hour), at.Add(time.Hour))
	var arrivals atomic.Int32
	both, firstDone := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if arrivals.Add(1) == 1 {
			<-both
			_, _ = w.Write(newer)
			return
		}
		close(both)
		<-firstDone
		_, _ = w.Write(older)
	}))
	defer srv.Close()
	url := srv.URL + "/root.crl"
	c := &crlcache.Cache{Dir: t.TempDir(), Client: srv.Client(), Now: func() time.Time { return at }}
	if err := os.WriteFile(c.Path(url), stale, 0o644); err != nil {
		t.Fatal(err)
	}
	type result struct {
		l   *x509.RevocationList
		err error
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			l, err := c.Get(t.Context(), url, root)
			results <- result{l, err}
		}()
	}
	first := <-results
	if first.err != nil || string(first.l.Raw) != string(newer) {
		t.Fatalf("first: %v", first.err)
	}
	close(firstDone)
	second := <-results
	if second.err == nil && string(second.l.Raw) == string(older) {
		t.Error("the second Get returned the older list")
	}
	if stored, err := os.ReadFile(c.Path(url)); err != nil || string(stored) != string(newer) {
		t.Errorf("the older list replaced the newer one on disk (%v)", err)
	}
}
