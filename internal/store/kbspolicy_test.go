package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/store"
)

func TestKBSPolicy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		s := open(t, dsn, store.WithNow(func() time.Time { return now }))
		ctx := t.Context()
		name := store.KBSResourcePolicyName

		if _, err := s.KBSPolicy(ctx, name); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("KBSPolicy on empty store: %v, want ErrNotFound", err)
		}
		if _, err := s.KBSPolicySHA256(ctx, name); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("KBSPolicySHA256 on empty store: %v, want ErrNotFound", err)
		}
		if _, err := s.PutKBSPolicy(ctx, "", "x"); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("PutKBSPolicy without name: %v, want ErrInvalid", err)
		}

		// Init installs once and never overwrites.
		ok, err := s.InitKBSPolicy(ctx, name, "first")
		if err != nil || !ok {
			t.Fatalf("InitKBSPolicy = %v, %v; want true", ok, err)
		}
		ok, err = s.InitKBSPolicy(ctx, name, "second")
		if err != nil || ok {
			t.Fatalf("second InitKBSPolicy = %v, %v; want false", ok, err)
		}
		p, err := s.KBSPolicy(ctx, name)
		if err != nil || p.Body != "first" || p.SHA256 != store.KBSPolicyDigest("first") || !p.UpdatedAt.Equal(now) {
			t.Fatalf("KBSPolicy = %+v, %v", p, err)
		}

		// Put replaces.
		now = now.Add(time.Hour)
		put, err := s.PutKBSPolicy(ctx, name, "third")
		if err != nil || put.SHA256 != store.KBSPolicyDigest("third") {
			t.Fatalf("PutKBSPolicy = %+v, %v", put, err)
		}
		d, err := s.KBSPolicySHA256(ctx, name)
		if err != nil || d != put.SHA256 {
			t.Fatalf("KBSPolicySHA256 = %q, %v; want %q", d, err, put.SHA256)
		}

		// Another store on the same database sees it.
		s2 := open(t, dsn)
		p, err = s2.KBSPolicy(ctx, name)
		if err != nil || p.Body != "third" || !p.UpdatedAt.Equal(now) {
			t.Fatalf("KBSPolicy from a second store = %+v, %v", p, err)
		}
		if _, err := s2.KBSPolicy(ctx, "other"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("KBSPolicy(other): %v, want ErrNotFound", err)
		}
	})
}
