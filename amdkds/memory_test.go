package amdkds_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/amdkds"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
)

// crlSource serves one CRL per product (nil: unavailable) and counts
// the requests.
type crlSource struct {
	amdkds.Source
	crls map[snp.Product][]byte
	hits map[snp.Product]int
}

func (s *crlSource) CRL(_ context.Context, p snp.Product) ([]byte, error) {
	s.hits[p]++
	if b := s.crls[p]; b != nil {
		return b, nil
	}
	return nil, amdkds.ErrNotFound
}

// roots are the simulated ARK of g's product, for Memory.Roots.
func roots(g *snpsim.Guest) map[snp.Product]*x509.Certificate {
	return map[snp.Product]*x509.Certificate{g.PKI.Product: g.PKI.ARK}
}

// TestCRLRefresh: Memory and Cache keep a CRL until its NextUpdate and
// refetch it after; Memory remembers a failure for RetryAfter; CRLs asks
// for the report's product, or every product for a version 2 report.
func TestCRLRefresh(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductMilan)
	if err != nil {
		t.Fatal(err)
	}
	now := snpsim.Now
	day := 24 * time.Hour
	first, _ := g.PKI.CRL(now.Add(-day), now.Add(day))
	second, _ := g.PKI.CRL(now.Add(day), now.Add(3*day))
	src := &crlSource{crls: map[snp.Product][]byte{snp.ProductMilan: first}, hits: map[snp.Product]int{}}
	clock := now
	mem := &amdkds.Memory{Upstream: src, Now: func() time.Time { return clock }, Roots: roots(g)}
	cache := &amdkds.Cache{Dir: t.TempDir(), Upstream: src, Now: func() time.Time { return clock }}
	ctx := context.Background()
	for name, s := range map[string]amdkds.Source{"memory": mem, "cache": cache} {
		clock = now
		src.crls[snp.ProductMilan], src.hits[snp.ProductMilan] = first, 0
		for range 3 {
			if b, err := s.CRL(ctx, snp.ProductMilan); err != nil || string(b) != string(first) {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if src.hits[snp.ProductMilan] != 1 {
			t.Errorf("%s: %d fetches of a current CRL, want 1", name, src.hits[snp.ProductMilan])
		}
		clock = now.Add(2 * day) // past NextUpdate
		src.crls[snp.ProductMilan] = second
		if b, err := s.CRL(ctx, snp.ProductMilan); err != nil || string(b) != string(second) || src.hits[snp.ProductMilan] != 2 {
			t.Errorf("%s: stale CRL not refetched: %v, %d fetches", name, err, src.hits[snp.ProductMilan])
		}
	}
	// A failure is remembered for RetryAfter, then retried.
	if _, err := mem.CRL(ctx, snp.ProductGenoa); !errors.Is(err, amdkds.ErrNotFound) {
		t.Fatal(err)
	}
	mem.CRL(ctx, snp.ProductGenoa)
	if src.hits[snp.ProductGenoa] != 1 {
		t.Errorf("%d fetches within RetryAfter, want 1", src.hits[snp.ProductGenoa])
	}
	clock = clock.Add(amdkds.DefaultRetryAfter + time.Second)
	mem.CRL(ctx, snp.ProductGenoa)
	if src.hits[snp.ProductGenoa] != 2 {
		t.Errorf("%d fetches after RetryAfter, want 2", src.hits[snp.ProductGenoa])
	}

	raw, _ := g.Attest([64]byte{})
	r, _ := snp.ParseReport(raw)
	crls, err := amdkds.CRLs(ctx, src, r, snp.ProductUnknown)
	if err != nil || len(crls) != 1 {
		t.Fatalf("v3 report: %d CRLs, %v", len(crls), err)
	}
	v2 := *r
	v2.Version = 2
	if crls, err = amdkds.CRLs(ctx, src, &v2, snp.ProductUnknown); err != nil || len(crls) != 1 || src.hits[snp.ProductTurin] != 1 {
		t.Fatalf("v2 report: %d CRLs, %v, %v", len(crls), err, src.hits)
	}
	delete(src.crls, snp.ProductMilan)
	if _, err := amdkds.CRLs(ctx, src, r, snp.ProductUnknown); !errors.Is(err, amdkds.ErrNotFound) {
		t.Errorf("no CRL: %v", err)
	}
}

// TestCRLOutagePastNextUpdate: when Upstream fails after the kept CRL's
// NextUpdate, or returns a CRL already past its NextUpdate (a disk Cache
// does when KDS fails), Memory serves the stale CRL (package snp refuses
// it) and asks Upstream again only after RetryAfter, not on every
// verification.
func TestCRLOutagePastNextUpdate(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductMilan)
	if err != nil {
		t.Fatal(err)
	}
	now := snpsim.Now
	day := 24 * time.Hour
	crl, _ := g.PKI.CRL(now.Add(-day), now.Add(day))
	ctx := context.Background()

	src := &crlSource{crls: map[snp.Product][]byte{snp.ProductMilan: crl}, hits: map[snp.Product]int{}}
	clock := now
	mem := &amdkds.Memory{Upstream: src, Now: func() time.Time { return clock }, Roots: roots(g)}
	if b, err := mem.CRL(ctx, snp.ProductMilan); err != nil || string(b) != string(crl) {
		t.Fatal(err)
	}
	src.crls[snp.ProductMilan] = nil // KDS down
	clock = now.Add(2 * day)
	for range 5 {
		if b, err := mem.CRL(ctx, snp.ProductMilan); err != nil || string(b) != string(crl) {
			t.Fatalf("stale CRL not served: %v", err)
		}
	}
	if src.hits[snp.ProductMilan] != 2 {
		t.Errorf("outage past NextUpdate: %d upstream requests, want 2", src.hits[snp.ProductMilan])
	}
	clock = clock.Add(amdkds.DefaultRetryAfter + time.Second)
	mem.CRL(ctx, snp.ProductMilan)
	if src.hits[snp.ProductMilan] != 3 {
		t.Errorf("%d upstream requests after RetryAfter, want 3", src.hits[snp.ProductMilan])
	}

	// Upstream itself answers with a stale CRL.
	src = &crlSource{crls: map[snp.Product][]byte{snp.ProductMilan: crl}, hits: map[snp.Product]int{}}
	clock = now.Add(2 * day)
	mem = &amdkds.Memory{Upstream: src, Now: func() time.Time { return clock }, Roots: roots(g)}
	for range 5 {
		if b, err := mem.CRL(ctx, snp.ProductMilan); err != nil || string(b) != string(crl) {
			t.Fatal(err)
		}
	}
	if src.hits[snp.ProductMilan] != 1 {
		t.Errorf("stale upstream CRL: %d upstream requests, want 1", src.hits[snp.ProductMilan])
	}
}

// blockingSource answers CRL and VCEK requests once release is closed,
// counting them.
type blockingSource struct {
	amdkds.Source
	release chan struct{}
	crl     []byte
	mu      sync.Mutex
	hits    int
}

func (s *blockingSource) wait() {
	s.mu.Lock()
	s.hits++
	s.mu.Unlock()
	<-s.release
}

func (s *blockingSource) CRL(context.Context, snp.Product) ([]byte, error) {
	s.wait()
	return s.crl, nil
}

func (s *blockingSource) VCEK(context.Context, snp.Product, [64]byte, snp.TCBVersion) ([]byte, error) {
	s.wait()
	return []byte("vcek"), nil
}

// TestMemoryShared: concurrent misses for one CRL or VCEK (a burst of
// verifications at start-up or when the CRL passes its NextUpdate) make
// one Upstream request each, and a caller whose context ends stops
// waiting without failing the others.
func TestMemoryShared(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductMilan)
	if err != nil {
		t.Fatal(err)
	}
	crl, _ := g.PKI.CRL(snpsim.Now.Add(-time.Hour), snpsim.Now.Add(time.Hour))
	src := &blockingSource{release: make(chan struct{}), crl: crl}
	mem := &amdkds.Memory{Upstream: src, Now: func() time.Time { return snpsim.Now }, Roots: roots(g)}
	ctx := context.Background()
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := mem.CRL(gone, snp.ProductMilan); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 20 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if b, err := mem.CRL(ctx, snp.ProductMilan); err != nil || string(b) != string(crl) {
				errs <- fmt.Errorf("CRL: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			if b, err := mem.VCEK(ctx, snp.ProductMilan, [64]byte{1}, 0); err != nil || string(b) != "vcek" {
				errs <- fmt.Errorf("VCEK: %v", err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(src.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if src.hits != 2 {
		t.Errorf("%d upstream requests for 20 concurrent CRL and 20 VCEK misses, want 2", src.hits)
	}
}

// TestCRLRollbackRefused: once Memory keeps a CRL, a fetched CRL issued
// before it (a replayed or lagging list that may predate a revocation)
// does not replace it, even while that older list is within its own
// NextUpdate; the kept, now stale, CRL is served (package snp refuses
// it as expired) and the failure is remembered for RetryAfter.
func TestCRLRollbackRefused(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductMilan)
	if err != nil {
		t.Fatal(err)
	}
	now := snpsim.Now
	day := 24 * time.Hour
	newer, _ := g.PKI.CRL(now.Add(-day), now.Add(day))
	older, _ := g.PKI.CRL(now.Add(-5*day), now.Add(10*day))
	src := &crlSource{crls: map[snp.Product][]byte{snp.ProductMilan: newer}, hits: map[snp.Product]int{}}
	clock := now
	mem := &amdkds.Memory{Upstream: src, Now: func() time.Time { return clock }, Roots: roots(g)}
	ctx := context.Background()
	if b, err := mem.CRL(ctx, snp.ProductMilan); err != nil || string(b) != string(newer) {
		t.Fatalf("first fetch: %v", err)
	}
	clock = now.Add(2 * day) // the kept CRL is past its NextUpdate
	src.crls[snp.ProductMilan] = older
	b, err := mem.CRL(ctx, snp.ProductMilan)
	if err != nil || string(b) != string(newer) {
		t.Fatalf("after an older CRL was fetched: got the older list %v, err %v; want the kept one", string(b) == string(older), err)
	}
	mem.CRL(ctx, snp.ProductMilan)
	if src.hits[snp.ProductMilan] != 2 {
		t.Errorf("%d fetches, want 2 (the refusal is remembered for RetryAfter)", src.hits[snp.ProductMilan])
	}
	// A newer list replaces it.
	newest, _ := g.PKI.CRL(now.Add(day), now.Add(5*day))
	src.crls[snp.ProductMilan] = newest
	clock = clock.Add(amdkds.DefaultRetryAfter + time.Second)
	if b, err := mem.CRL(ctx, snp.ProductMilan); err != nil || string(b) != string(newest) {
		t.Errorf("a newer CRL was not taken: %v", err)
	}
}

// TestCRLForgedDoesNotBlockRefresh: a CRL that does not verify under the
// ARK (a forgery from a compromised mirror or in transit) with a
// ThisUpdate and NextUpdate far in the future is served (package snp
// refuses it), but only for RetryAfter, and does not make Memory refuse
// the genuine lists fetched after it as older.
func TestCRLForgedDoesNotBlockRefresh(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductMilan)
	if err != nil {
		t.Fatal(err)
	}
	forger, err := snpsim.GeneratePKI(snp.ProductMilan, g.PKI.NotBefore, g.PKI.NotAfter)
	if err != nil {
		t.Fatal(err)
	}
	now := snpsim.Now
	day := 24 * time.Hour
	forged, _ := forger.CRL(now.Add(300*day), now.Add(301*day))
	genuine, _ := g.PKI.CRL(now.Add(-day), now.Add(day))
	src := &crlSource{crls: map[snp.Product][]byte{snp.ProductMilan: forged}, hits: map[snp.Product]int{}}
	clock := now
	mem := &amdkds.Memory{Upstream: src, Now: func() time.Time { return clock }, RetryAfter: time.Minute, Roots: roots(g)}
	ctx := context.Background()
	if b, err := mem.CRL(ctx, snp.ProductMilan); err != nil || string(b) != string(forged) {
		t.Fatalf("first fetch: %v", err)
	}
	clock = now.Add(time.Minute + time.Second) // past RetryAfter
	src.crls[snp.ProductMilan] = genuine
	if b, err := mem.CRL(ctx, snp.ProductMilan); err != nil || string(b) != string(genuine) {
		t.Fatalf("the genuine CRL was refused after a forged one: got the forged list %v, err %v", string(b) == string(forged), err)
	}
}
