package store_test

import (
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/store"
)

// Times are stored as int64 Unix nanoseconds: the edges of that range.
var (
	maxStorable = time.Unix(0, math.MaxInt64).UTC() // 2262-04-11T23:47:16.854775807Z
	minStorable = time.Unix(0, math.MinInt64).UTC() // 1677-09-21T00:12:43.145224192Z
)

// TestTimeRange: every write path rejects a time that int64 Unix
// nanoseconds cannot hold with ErrInvalid, instead of silently wrapping
// it (an expiry in 2999 would otherwise be stored as one in 1830), and
// stores the edges of the range exactly.
func TestTimeRange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		sane := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var clock atomic.Pointer[time.Time]
		setClock := func(t time.Time) { clock.Store(&t) }
		setClock(sane)
		s := open(t, b.newDSN(t), store.WithNow(func() time.Time { return *clock.Load() }))

		y2999 := time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)
		y1600 := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)
		tooLate, tooEarly := maxStorable.Add(time.Nanosecond), minStorable.Add(-time.Nanosecond)
		for _, bad := range []time.Time{y2999, y1600, tooLate, tooEarly, {}} {
			if _, err := s.AddReferenceValue(ctx, store.ReferenceValue{Name: "tdx.mr_td", Values: []string{"aa"}, Expires: &bad}); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("AddReferenceValue(expires %v) = %v, want ErrInvalid", bad, err)
			}
			if _, err := s.AddReferenceValue(ctx, store.ReferenceValue{Name: "tdx.mr_td", Values: []string{"aa"}, NotBefore: &bad}); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("AddReferenceValue(not_before %v) = %v, want ErrInvalid", bad, err)
			}
			if _, err := s.LookupReferenceValues(ctx, "tdx.mr_td", bad); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("LookupReferenceValues(%v) = %v, want ErrInvalid", bad, err)
			}
			if bad.IsZero() {
				continue // a zero FetchedAt means now
			}
			if err := s.PutCollateral(ctx, store.CollateralItem{Key: "k", Body: []byte("x"), FetchedAt: bad}); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("PutCollateral(fetched_at %v) = %v, want ErrInvalid", bad, err)
			}
		}
		if rvs, err := s.ListReferenceValues(ctx, ""); err != nil || len(rvs) != 0 {
			t.Fatalf("rejected reference values were stored: %+v, %v", rvs, err)
		}
		if _, err := s.Collateral(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("rejected collateral was stored: %v", err)
		}

		// The edges are stored and read back exactly, and compare right.
		rv, err := s.AddReferenceValue(ctx, store.ReferenceValue{Name: "tdx.mr_td", Values: []string{"aa"}, NotBefore: &minStorable, Expires: &maxStorable})
		if err != nil {
			t.Fatalf("AddReferenceValue(range edges): %v", err)
		}
		got, err := s.LookupReferenceValues(ctx, "tdx.mr_td", maxStorable.Add(-time.Nanosecond))
		if err != nil || len(got) != 1 || !got[0].NotBefore.Equal(minStorable) || !got[0].Expires.Equal(maxStorable) || got[0].ID != rv.ID {
			t.Fatalf("LookupReferenceValues(just before max) = %+v, %v", got, err)
		}
		if got, err := s.LookupReferenceValues(ctx, "tdx.mr_td", maxStorable); err != nil || len(got) != 0 {
			t.Fatalf("LookupReferenceValues(at expires = max) = %+v, %v; want none", got, err)
		}
		if got, err := s.LookupReferenceValues(ctx, "tdx.mr_td", minStorable); err != nil || len(got) != 1 {
			t.Fatalf("LookupReferenceValues(at not_before = min) = %+v, %v; want the record", got, err)
		}
		if err := s.PutCollateral(ctx, store.CollateralItem{Key: "edge", FetchedAt: maxStorable}); err != nil {
			t.Fatalf("PutCollateral(max): %v", err)
		}
		if it, err := s.Collateral(ctx, "edge"); err != nil || !it.FetchedAt.Equal(maxStorable) {
			t.Fatalf("Collateral(edge) = %+v, %v", it, err)
		}

		// Policy and key times come from the clock: a clock past 2262
		// fails every write that records a time, and writes nothing.
		if _, err := s.CreatePolicy(ctx, store.Policy{ID: "p", Kind: store.PolicyYAML, Body: "{}"}); err != nil {
			t.Fatalf("CreatePolicy: %v", err)
		}
		if _, err := s.AddKey(ctx, store.Key{KID: "k1", Algorithm: "ES256", PrivateKey: []byte("pem1")}); err != nil {
			t.Fatalf("AddKey: %v", err)
		}
		setClock(y2999)
		if _, err := s.CreatePolicy(ctx, store.Policy{ID: "p", Kind: store.PolicyYAML, Body: "{}"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreatePolicy at 2999 = %v, want ErrInvalid", err)
		}
		if err := s.ActivatePolicy(ctx, "p", 1); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("ActivatePolicy at 2999 = %v, want ErrInvalid", err)
		}
		if _, err := s.AddKey(ctx, store.Key{KID: "k2", Algorithm: "ES256", PrivateKey: []byte("pem2"), State: store.KeyRetired}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("AddKey at 2999 = %v, want ErrInvalid", err)
		}
		if _, err := s.RotateKey(ctx, store.Key{KID: "k3", Algorithm: "ES256", PrivateKey: []byte("pem3")}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("RotateKey at 2999 = %v, want ErrInvalid", err)
		}
		if err := s.RetireKey(ctx, "k1"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("RetireKey at 2999 = %v, want ErrInvalid", err)
		}
		if err := s.RemoveKey(ctx, "k1"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("RemoveKey at 2999 = %v, want ErrInvalid", err)
		}
		if err := s.PutCollateral(ctx, store.CollateralItem{Key: "now"}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("PutCollateral(zero fetched_at) at 2999 = %v, want ErrInvalid", err)
		}
		setClock(sane)
		if ps, err := s.ListPolicies(ctx, "p"); err != nil || len(ps) != 1 || ps[0].Active {
			t.Errorf("policies after rejected writes = %+v, %v; want one inactive version", ps, err)
		}
		if ks, err := s.ListKeys(ctx); err != nil || len(ks) != 1 || ks[0].KID != "k1" || ks[0].State != store.KeyActive {
			t.Errorf("keys after rejected writes = %+v, %v; want k1 active only", ks, err)
		}
	})
}

// TestValidAtRange: ValidAt compares times, so it is right for times
// whose Unix nanoseconds wrap as well.
func TestValidAtRange(t *testing.T) {
	exp := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := store.ReferenceValue{Expires: &exp}
	if r.ValidAt(time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("ValidAt(2999) = true for a value expired in 2026")
	}
	if !r.ValidAt(exp.Add(-time.Nanosecond)) || r.ValidAt(exp) {
		t.Error("ValidAt is wrong at the expiry edge")
	}
}
