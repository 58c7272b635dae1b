package pcscache_test

import (
	"testing"

	"github.com/tdproof/tdproof/dcap"
)

// BenchmarkCacheHit measures a warm lookup: the four items of a key are
// fresh in memory and the assembled collateral is handed out again.
func BenchmarkCacheHit(b *testing.B) {
	e := newEnv(b)
	c := e.cache(b, e.client(b), "")
	ctx := b.Context()
	first, err := c.Collateral(ctx, e.key)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := c.Collateral(ctx, e.key)
		if err != nil || got != first {
			b.Fatalf("Collateral = %p, %v; want the warm pointer", got, err)
		}
	}
}

// BenchmarkCacheHitParallel is BenchmarkCacheHit from every P at once.
func BenchmarkCacheHitParallel(b *testing.B) {
	e := newEnv(b)
	c := e.cache(b, e.client(b), "")
	ctx := b.Context()
	if _, err := c.Collateral(ctx, e.key); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Collateral(ctx, e.key); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyWarm is a warm dcap.Verifier verification with the
// collateral looked up in the cache each time: what a verifier service
// pays per quote.
func BenchmarkVerifyWarm(b *testing.B) {
	e := newEnv(b)
	c := e.cache(b, e.client(b), "")
	ctx := b.Context()
	q, err := e.f.BuildQuote()
	if err != nil {
		b.Fatal(err)
	}
	v := dcap.NewVerifier(dcap.VerifierOptions{TrustedRoot: e.f.PKI.Root.Certificate})
	now := e.clock()
	b.ReportAllocs()
	for b.Loop() {
		col, err := c.Collateral(ctx, e.key)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(q.Parsed, col, now); err != nil {
			b.Fatal(err)
		}
	}
}
