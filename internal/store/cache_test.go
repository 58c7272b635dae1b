package store_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/refvalue"
)

// queryCounter counts the statements a Store sends.
type queryCounter struct{ n atomic.Int64 }

func (c *queryCounter) option() store.Option {
	return store.WithQueryObserver(func(string) { c.n.Add(1) })
}

func newCache(t *testing.T, s *store.Store, opts store.CacheOptions) *store.Cache {
	t.Helper()
	c, err := s.NewCache(t.Context(), opts)
	if err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestCacheZeroSQL fills a store with 60 reference values (some expired,
// some not yet valid), a policy and a key broker policy, then checks that
// the Cache answers exactly what the SQL lookups answer while sending no
// statement at all.
func TestCacheZeroSQL(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		var qc queryCounter
		s := open(t, b.newDSN(t), qc.option())
		ctx := t.Context()
		now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		var names []string
		for i := range 60 {
			name := fmt.Sprintf("user.value_%d", i%20)
			r := store.ReferenceValue{Name: name, Values: []string{fmt.Sprintf("%096x", i), fmt.Sprintf("%096x", i+1000)}, Source: "test"}
			switch i % 3 {
			case 1:
				exp := now.Add(-time.Minute)
				r.Expires = &exp
			case 2:
				nb := now.Add(time.Hour)
				r.NotBefore = &nb
			}
			if _, err := s.AddReferenceValue(ctx, r); err != nil {
				t.Fatal(err)
			}
			if i < 20 {
				names = append(names, name)
			}
		}
		if _, err := s.CreatePolicy(ctx, store.Policy{ID: "default", Kind: store.PolicyYAML, Body: "rules: {}", Active: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutKBSPolicy(ctx, store.KBSResourcePolicyName, "package policy\ndefault allow := false\n"); err != nil {
			t.Fatal(err)
		}
		c := newCache(t, s, store.CacheOptions{Poll: time.Hour})
		rv := c.RefValues()
		type answer struct {
			vals []refvalue.Value
			err  error
		}
		want := map[string][3]answer{}
		for _, n := range names {
			var a [3]answer
			for j, at := range []time.Time{now, now.Add(-2 * time.Minute), now.Add(2 * time.Hour)} {
				a[j].vals, a[j].err = s.RefValues().Lookup(ctx, n, at)
			}
			want[n] = a
		}
		wantPolicy, err := s.ActivePolicy(ctx, "default")
		if err != nil {
			t.Fatal(err)
		}
		wantKBS, err := s.KBSPolicySHA256(ctx, store.KBSResourcePolicyName)
		if err != nil {
			t.Fatal(err)
		}

		before := qc.n.Load()
		for range 50 {
			for _, n := range names {
				for j, at := range []time.Time{now, now.Add(-2 * time.Minute), now.Add(2 * time.Hour)} {
					got, err := rv.Lookup(ctx, n, at)
					if err != nil || !reflect.DeepEqual(got, want[n][j].vals) {
						t.Fatalf("Lookup(%s, #%d) = %+v, %v; SQL gives %+v", n, j, got, err, want[n][j].vals)
					}
				}
			}
			if p, err := c.ActivePolicy(ctx, "default"); err != nil || !reflect.DeepEqual(p, wantPolicy) {
				t.Fatalf("ActivePolicy = %+v, %v; want %+v", p, err, wantPolicy)
			}
			if _, err := c.ActivePolicy(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("ActivePolicy(missing): %v", err)
			}
			if d, err := c.KBSPolicySHA256(ctx, store.KBSResourcePolicyName); err != nil || d != wantKBS {
				t.Fatalf("KBSPolicySHA256 = %s, %v", d, err)
			}
		}
		if n := qc.n.Load() - before; n != 0 {
			t.Errorf("%d statements for %d cached reads, want 0", n, 50*(len(names)*3+3))
		}
		if got, err := rv.Lookup(ctx, "user.value_0", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("lookup at an unstorable time: %+v, %v", got, err)
		}

		// A write through the same Store is seen by the next read, which
		// reloads once; the reads after it send nothing again.
		id, err := rv.Add(ctx, refvalue.Value{Name: "user.fresh", Values: []string{"01"}})
		if err != nil {
			t.Fatal(err)
		}
		before = qc.n.Load()
		if got, err := rv.Lookup(ctx, "user.fresh", now); err != nil || len(got) != 1 || got[0].ID != id {
			t.Fatalf("lookup after add: %+v, %v", got, err)
		}
		if qc.n.Load() == before {
			t.Fatal("the reload after a write sent no statement: the observer sees nothing")
		}
		before = qc.n.Load()
		if got, err := rv.Lookup(ctx, "user.fresh", now); err != nil || len(got) != 1 {
			t.Fatalf("second lookup after add: %+v, %v", got, err)
		}
		if n := qc.n.Load() - before; n != 0 {
			t.Errorf("%d statements for a read after the reload, want 0", n)
		}
		if err := s.DeactivatePolicy(ctx, "default"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ActivePolicy(ctx, "default"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ActivePolicy after deactivation: %v", err)
		}
	})
}

// TestCacheConverges writes through one Store and watches a Cache of
// another Store on the same database (as two serve processes share one)
// see each write within one second.
func TestCacheConverges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		a := open(t, dsn)
		other := open(t, dsn)
		c := newCache(t, other, store.CacheOptions{})
		ctx := t.Context()
		now := time.Now()
		waitFor := func(what string, ok func() bool) {
			t.Helper()
			start := time.Now()
			for !ok() {
				if time.Since(start) > time.Second {
					t.Fatalf("%s: not seen after 1 s", what)
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("%s: seen after %v", what, time.Since(start).Round(time.Millisecond))
		}
		gen := c.Generation()
		rec, err := a.AddReferenceValue(ctx, store.ReferenceValue{Name: "tdx.mr_td", Values: []string{strings.Repeat("ab", 48)}})
		if err != nil {
			t.Fatal(err)
		}
		waitFor("added reference value", func() bool {
			got, err := c.LookupReferenceValues(ctx, "tdx.mr_td", now)
			return err == nil && len(got) == 1
		})
		if c.Generation() <= gen {
			t.Errorf("generation %d after a write, was %d", c.Generation(), gen)
		}
		if _, err := a.CreatePolicy(ctx, store.Policy{ID: "default", Kind: store.PolicyYAML, Body: "rules: {}", Active: true}); err != nil {
			t.Fatal(err)
		}
		waitFor("activated policy", func() bool {
			p, err := c.ActivePolicy(ctx, "default")
			return err == nil && p.Version == 1
		})
		if _, err := a.PutKBSPolicy(ctx, store.KBSResourcePolicyName, "package policy\n"); err != nil {
			t.Fatal(err)
		}
		waitFor("key broker policy", func() bool {
			_, err := c.KBSPolicySHA256(ctx, store.KBSResourcePolicyName)
			return err == nil
		})
		if err := a.RemoveReferenceValue(ctx, rec.ID); err != nil {
			t.Fatal(err)
		}
		waitFor("removed reference value", func() bool {
			got, err := c.LookupReferenceValues(ctx, "tdx.mr_td", now)
			return err == nil && len(got) == 0
		})
	})
}

// TestCacheStaleFailsClosed checks that reads fail once the cache could
// not confirm its data for longer than its bound.
func TestCacheStaleFailsClosed(t *testing.T) {
	s := open(t, newSQLiteDSN(t))
	c := newCache(t, s, store.CacheOptions{Poll: time.Hour, MaxStale: 20 * time.Millisecond})
	time.Sleep(40 * time.Millisecond)
	if _, err := c.LookupReferenceValues(t.Context(), "tdx.mr_td", time.Now()); !errors.Is(err, store.ErrStale) {
		t.Errorf("stale lookup: %v, want ErrStale", err)
	}
	if _, err := c.ActivePolicy(t.Context(), "default"); !errors.Is(err, store.ErrStale) {
		t.Errorf("stale ActivePolicy: %v, want ErrStale", err)
	}
}

// TestCacheKBSResource checks the read-through resources of a Cache: the
// first read of a path sends SQL, the next ones none; a put or delete
// through the Cache's own Store is seen by the next read; another
// process's put, update and delete within the poll interval; a missing
// resource is not remembered.
func TestCacheKBSResource(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		// Statements that read kbs_resources (the poller's generation
		// reads are not counted).
		var reads atomic.Int64
		own := open(t, dsn, store.WithQueryObserver(func(q string) {
			if strings.Contains(q, "FROM kbs_resources") {
				reads.Add(1)
			}
		}))
		other := open(t, dsn)
		c := newCache(t, own, store.CacheOptions{})
		ctx := t.Context()
		put := func(s *store.Store, ct string) {
			t.Helper()
			if err := s.PutKBSResource(ctx, store.KBSResource{Path: "default/key/1", Nonce: []byte("nonce-12byte"), Ciphertext: []byte(ct)}); err != nil {
				t.Fatal(err)
			}
		}
		read := func() (string, error) {
			r, err := c.KBSResource(ctx, "default/key/1")
			return string(r.Ciphertext), err
		}
		if _, err := read(); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing resource: %v, want ErrNotFound", err)
		}
		put(own, "v1") // a missing resource was not remembered
		before := reads.Load()
		if got, err := read(); err != nil || got != "v1" {
			t.Fatalf("after own put: %q %v", got, err)
		}
		if n := reads.Load() - before; n != 1 {
			t.Fatalf("%d resource reads for the first read, want 1", n)
		}
		before = reads.Load()
		for range 3 {
			if got, err := read(); err != nil || got != "v1" {
				t.Fatalf("cached read: %q %v", got, err)
			}
		}
		if n := reads.Load() - before; n != 0 {
			t.Fatalf("%d resource reads for three cached reads, want 0", n)
		}
		put(own, "v2")
		if got, err := read(); err != nil || got != "v2" {
			t.Fatalf("after own update: %q %v", got, err)
		}
		if err := own.DeleteKBSResource(ctx, "default/key/1"); err != nil {
			t.Fatal(err)
		}
		if _, err := read(); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after own delete: %v, want ErrNotFound", err)
		}
		waitFor := func(what string, ok func() bool) {
			t.Helper()
			start := time.Now()
			for !ok() {
				if time.Since(start) > 2*time.Second {
					t.Fatalf("%s: not seen after 2 s", what)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		put(other, "v3")
		waitFor("other's put", func() bool { got, err := read(); return err == nil && got == "v3" })
		put(other, "v4")
		waitFor("other's update", func() bool { got, err := read(); return err == nil && got == "v4" })
		if err := other.DeleteKBSResource(ctx, "default/key/1"); err != nil {
			t.Fatal(err)
		}
		waitFor("other's delete", func() bool { _, err := read(); return errors.Is(err, store.ErrNotFound) })
	})
}

// TestCacheKBSResourceBytes: a snapshot keeps resources up to a total
// size; a resource beyond it is read from the database every time, and
// the ones kept are still served from memory.
func TestCacheKBSResourceBytes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		store.SetMaxCachedResourceBytes(t, 1000)
		var reads atomic.Int64
		own := open(t, b.newDSN(t), store.WithQueryObserver(func(q string) {
			if strings.Contains(q, "FROM kbs_resources") {
				reads.Add(1)
			}
		}))
		ctx := t.Context()
		for _, p := range []string{"default/key/a", "default/key/b"} {
			// 12 + 600 bytes each: one fits, not two.
			if err := own.PutKBSResource(ctx, store.KBSResource{Path: p, Nonce: []byte("nonce-12byte"), Ciphertext: make([]byte, 600)}); err != nil {
				t.Fatal(err)
			}
		}
		c := newCache(t, own, store.CacheOptions{})
		readsOf := func(path string) int64 {
			t.Helper()
			before := reads.Load()
			for range 3 {
				if r, err := c.KBSResource(ctx, path); err != nil || len(r.Ciphertext) != 600 {
					t.Fatalf("%s: %d bytes, %v", path, len(r.Ciphertext), err)
				}
			}
			return reads.Load() - before
		}
		if n := readsOf("default/key/a"); n != 1 {
			t.Fatalf("default/key/a: %d reads of three, want 1 (then memory)", n)
		}
		if n := readsOf("default/key/b"); n != 3 {
			t.Fatalf("default/key/b, beyond the size bound: %d reads of three, want 3", n)
		}
		if n := readsOf("default/key/a"); n != 0 {
			t.Fatalf("default/key/a: %d reads, want 0", n)
		}
	})
}
