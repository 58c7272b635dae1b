package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/store"
)

func TestMigrationsIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		s1, err := store.Open(t.Context(), dsn)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if _, err := s1.CreatePolicy(t.Context(), store.Policy{ID: "p", Kind: store.PolicyYAML, Body: "a: 1", Active: true}); err != nil {
			t.Fatalf("CreatePolicy: %v", err)
		}
		if err := s1.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		for i := range 2 {
			s := open(t, dsn)
			v, err := s.SchemaVersion(t.Context())
			if err != nil {
				t.Fatalf("SchemaVersion: %v", err)
			}
			if want := store.LatestSchemaVersion(); v != want || want < 1 {
				t.Errorf("reopen %d: SchemaVersion = %d, want %d", i, v, want)
			}
			p, err := s.ActivePolicy(t.Context(), "p")
			if err != nil || p.Version != 1 || p.Body != "a: 1" {
				t.Errorf("reopen %d: ActivePolicy = %+v, %v; want version 1", i, p, err)
			}
		}
	})
}

func TestConcurrentOpen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		const n = 4
		stores := make([]*store.Store, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { stores[i], errs[i] = store.Open(t.Context(), dsn) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Errorf("Open #%d: %v", i, errs[i])
				continue
			}
			v, err := stores[i].SchemaVersion(t.Context())
			if err != nil || v != store.LatestSchemaVersion() {
				t.Errorf("Open #%d: SchemaVersion = %d, %v; want %d", i, v, err, store.LatestSchemaVersion())
			}
			if err := stores[i].Close(); err != nil {
				t.Errorf("Close #%d: %v", i, err)
			}
		}
	})
}

func TestPolicyVersions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s := open(t, b.newDSN(t))

		if _, err := s.ActivePolicy(ctx, "default"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("ActivePolicy(missing) error = %v, want ErrNotFound", err)
		}
		p1, err := s.CreatePolicy(ctx, store.Policy{ID: "default", Kind: store.PolicyYAML, Body: "v1", Author: "alice"})
		if err != nil {
			t.Fatalf("CreatePolicy v1: %v", err)
		}
		if p1.Version != 1 || p1.Active || p1.CreatedAt.IsZero() {
			t.Errorf("CreatePolicy v1 = %+v, want version 1, inactive, created", p1)
		}
		if _, err := s.ActivePolicy(ctx, "default"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ActivePolicy before activation error = %v, want ErrNotFound", err)
		}
		p2, err := s.CreatePolicy(ctx, store.Policy{ID: "default", Kind: store.PolicyRego, Body: "package tdproof", Active: true})
		if err != nil {
			t.Fatalf("CreatePolicy v2: %v", err)
		}
		if p2.Version != 2 || !p2.Active || p2.ActivatedAt == nil {
			t.Errorf("CreatePolicy v2 = %+v, want version 2, active", p2)
		}
		if _, err := s.CreatePolicy(ctx, store.Policy{ID: "default", Version: 2, Kind: store.PolicyYAML}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("CreatePolicy(duplicate version) error = %v, want ErrConflict", err)
		}
		if p, err := s.CreatePolicy(ctx, store.Policy{ID: "default", Version: 7, Kind: store.PolicyYAML, Body: "v7"}); err != nil || p.Version != 7 {
			t.Errorf("CreatePolicy(version 7) = %+v, %v", p, err)
		}
		for _, bad := range []store.Policy{{Kind: store.PolicyYAML}, {ID: "x", Kind: "json"}, {ID: "x", Kind: store.PolicyYAML, Version: -1}} {
			if _, err := s.CreatePolicy(ctx, bad); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("CreatePolicy(%+v) error = %v, want ErrInvalid", bad, err)
			}
		}

		checkActive := func(want int) {
			t.Helper()
			p, err := s.ActivePolicy(ctx, "default")
			if err != nil || p.Version != want {
				t.Fatalf("ActivePolicy = version %d, %v; want %d", p.Version, err, want)
			}
			all, err := s.ListPolicies(ctx, "default")
			if err != nil {
				t.Fatalf("ListPolicies: %v", err)
			}
			var active []int
			for _, p := range all {
				if p.Active {
					active = append(active, p.Version)
				}
			}
			if !slices.Equal(active, []int{want}) {
				t.Fatalf("active versions = %v, want [%d]", active, want)
			}
		}
		checkActive(2)
		if err := s.ActivatePolicy(ctx, "default", 1); err != nil {
			t.Fatalf("ActivatePolicy(1): %v", err)
		}
		checkActive(1)
		if err := s.ActivatePolicy(ctx, "default", 1); err != nil {
			t.Fatalf("ActivatePolicy(1) again: %v", err)
		}
		checkActive(1)
		if err := s.ActivatePolicy(ctx, "default", 3); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ActivatePolicy(missing version) error = %v, want ErrNotFound", err)
		}
		checkActive(1)

		if _, err := s.CreatePolicy(ctx, store.Policy{ID: "other", Kind: store.PolicyYAML, Body: "o", Active: true}); err != nil {
			t.Fatalf("CreatePolicy other: %v", err)
		}
		all, err := s.ListPolicies(ctx, "")
		if err != nil {
			t.Fatalf("ListPolicies: %v", err)
		}
		var got []string
		for _, p := range all {
			got = append(got, fmt.Sprintf("%s/%d/%s/%t", p.ID, p.Version, p.Kind, p.Active))
		}
		want := []string{"default/1/yaml/true", "default/2/rego/false", "default/7/yaml/false", "other/1/yaml/true"}
		if !slices.Equal(got, want) {
			t.Errorf("ListPolicies = %v, want %v", got, want)
		}
		p, err := s.Policy(ctx, "default", 2)
		if err != nil || p.Body != "package tdproof" || p.Kind != store.PolicyRego {
			t.Errorf("Policy(default, 2) = %+v, %v", p, err)
		}
		if _, err := s.Policy(ctx, "default", 9); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Policy(missing) error = %v, want ErrNotFound", err)
		}
		if err := s.DeactivatePolicy(ctx, "default"); err != nil {
			t.Fatalf("DeactivatePolicy: %v", err)
		}
		if _, err := s.ActivePolicy(ctx, "default"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ActivePolicy after deactivation error = %v, want ErrNotFound", err)
		}
	})
}

// TestConcurrentCreatePolicy creates versions of one policy from two
// stores at once: every call succeeds with its own version.
func TestConcurrentCreatePolicy(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		stores := []*store.Store{open(t, dsn), open(t, dsn)}
		const perStore = 5
		var (
			mu       sync.Mutex
			versions []int
			wg       sync.WaitGroup
		)
		for _, s := range stores {
			wg.Go(func() {
				for range perStore {
					p, err := s.CreatePolicy(t.Context(), store.Policy{ID: "p", Kind: store.PolicyYAML, Body: "x", Active: true})
					if err != nil {
						t.Errorf("CreatePolicy: %v", err)
						return
					}
					mu.Lock()
					versions = append(versions, p.Version)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(versions)
		want := make([]int, 2*perStore)
		for i := range want {
			want[i] = i + 1
		}
		if !slices.Equal(versions, want) {
			t.Errorf("versions = %v, want %v", versions, want)
		}
		if _, err := stores[0].ActivePolicy(t.Context(), "p"); err != nil {
			t.Errorf("ActivePolicy: %v", err)
		}
	})
}

// TestStoresShareState: two stores (two tdproof serve replicas) on one
// database see each other's policy changes.
func TestStoresShareState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		dsn := b.newDSN(t)
		a, c := open(t, dsn), open(t, dsn)
		if _, err := a.CreatePolicy(ctx, store.Policy{ID: "default", Kind: store.PolicyYAML, Body: "from a", Active: true}); err != nil {
			t.Fatalf("a.CreatePolicy: %v", err)
		}
		if p, err := c.ActivePolicy(ctx, "default"); err != nil || p.Body != "from a" {
			t.Fatalf("c.ActivePolicy = %+v, %v; want a's policy", p, err)
		}
		if _, err := c.CreatePolicy(ctx, store.Policy{ID: "default", Kind: store.PolicyRego, Body: "from c", Active: true}); err != nil {
			t.Fatalf("c.CreatePolicy: %v", err)
		}
		if p, err := a.ActivePolicy(ctx, "default"); err != nil || p.Version != 2 || p.Body != "from c" {
			t.Fatalf("a.ActivePolicy = %+v, %v; want c's version 2", p, err)
		}
		if err := a.ActivatePolicy(ctx, "default", 1); err != nil {
			t.Fatalf("a.ActivatePolicy: %v", err)
		}
		if p, err := c.ActivePolicy(ctx, "default"); err != nil || p.Version != 1 {
			t.Fatalf("c.ActivePolicy = %+v, %v; want version 1", p, err)
		}
		if _, err := a.AddReferenceValue(ctx, store.ReferenceValue{Name: "tdx.mr_td", Values: []string{"aa"}}); err != nil {
			t.Fatalf("a.AddReferenceValue: %v", err)
		}
		if got, err := c.LookupReferenceValues(ctx, "tdx.mr_td", time.Now()); err != nil || len(got) != 1 {
			t.Fatalf("c.LookupReferenceValues = %+v, %v; want a's value", got, err)
		}
	})
}

// TestCreatePolicyInterrupted cancels the context inside the CreatePolicy
// transaction, after the version row is written and before it is
// activated: nothing of it may remain.
func TestCreatePolicyInterrupted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		s, other := open(t, dsn), open(t, dsn)
		if _, err := s.CreatePolicy(t.Context(), store.Policy{ID: "p", Kind: store.PolicyYAML, Body: "v1", Active: true}); err != nil {
			t.Fatalf("CreatePolicy v1: %v", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		s.SetPolicyInsertedHook(func(context.Context) { cancel() })
		if p, err := s.CreatePolicy(ctx, store.Policy{ID: "p", Kind: store.PolicyYAML, Body: "v2", Active: true}); err == nil {
			t.Fatalf("CreatePolicy with cancelled context = %+v, want error", p)
		}
		s.SetPolicyInsertedHook(nil)

		for name, st := range map[string]*store.Store{"same store": s, "other store": other} {
			all, err := st.ListPolicies(t.Context(), "p")
			if err != nil {
				t.Fatalf("%s: ListPolicies: %v", name, err)
			}
			if len(all) != 1 || all[0].Version != 1 || !all[0].Active {
				t.Errorf("%s: ListPolicies = %+v, want only active version 1", name, all)
			}
		}
		p, err := s.CreatePolicy(t.Context(), store.Policy{ID: "p", Kind: store.PolicyYAML, Body: "v2"})
		if err != nil || p.Version != 2 {
			t.Errorf("CreatePolicy after interruption = %+v, %v; want version 2", p, err)
		}
	})
}

func TestReferenceValueExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s := open(t, b.newDSN(t))
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		nb, exp := t0, t0.Add(24*time.Hour)
		rv, err := s.AddReferenceValue(ctx, store.ReferenceValue{
			Name: "tdx.mr_td", Values: []string{"aa", "bb"}, Source: "tdproof measure", Author: "ci",
			ArtifactDigest: "sha256:00", NotBefore: &nb, Expires: &exp,
		})
		if err != nil {
			t.Fatalf("AddReferenceValue: %v", err)
		}
		if rv.ID == 0 || rv.CreatedAt.IsZero() {
			t.Errorf("AddReferenceValue = %+v, want ID and CreatedAt", rv)
		}
		open2, err := s.AddReferenceValue(ctx, store.ReferenceValue{Name: "tdx.mr_td", Values: []string{"cc"}})
		if err != nil {
			t.Fatalf("AddReferenceValue (open-ended): %v", err)
		}
		if _, err := s.AddReferenceValue(ctx, store.ReferenceValue{Name: "dstack.compose_hash", Values: []string{"dd"}, Expires: &nb}); err != nil {
			t.Fatalf("AddReferenceValue (other name): %v", err)
		}

		for _, tc := range []struct {
			name string
			at   time.Time
			want []int64
		}{
			{"before not_before", t0.Add(-time.Nanosecond), []int64{open2.ID}},
			{"at not_before", t0, []int64{rv.ID, open2.ID}},
			{"inside", t0.Add(12 * time.Hour), []int64{rv.ID, open2.ID}},
			{"last instant", exp.Add(-time.Nanosecond), []int64{rv.ID, open2.ID}},
			{"at expires", exp, []int64{open2.ID}},
			{"after expires", exp.Add(time.Hour), []int64{open2.ID}},
		} {
			got, err := s.LookupReferenceValues(ctx, "tdx.mr_td", tc.at)
			if err != nil {
				t.Fatalf("LookupReferenceValues(%s): %v", tc.name, err)
			}
			var ids []int64
			for _, r := range got {
				ids = append(ids, r.ID)
				if !r.ValidAt(tc.at) {
					t.Errorf("LookupReferenceValues(%s) returned %d, which ValidAt rejects", tc.name, r.ID)
				}
			}
			if !slices.Equal(ids, tc.want) {
				t.Errorf("LookupReferenceValues(%s) IDs = %v, want %v", tc.name, ids, tc.want)
			}
		}

		got, err := s.LookupReferenceValues(ctx, "tdx.mr_td", t0)
		if err != nil || len(got) != 2 {
			t.Fatalf("LookupReferenceValues = %+v, %v", got, err)
		}
		g := got[0]
		if !slices.Equal(g.Values, []string{"aa", "bb"}) || g.Source != "tdproof measure" || g.Author != "ci" ||
			g.ArtifactDigest != "sha256:00" || !g.NotBefore.Equal(nb) || !g.Expires.Equal(exp) || !g.CreatedAt.Equal(rv.CreatedAt) {
			t.Errorf("LookupReferenceValues[0] = %+v, want %+v", g, rv)
		}
		if got, err := s.LookupReferenceValues(ctx, "dstack.compose_hash", t0); err != nil || len(got) != 0 {
			t.Errorf("LookupReferenceValues(expired only) = %+v, %v; want none", got, err)
		}

		all, err := s.ListReferenceValues(ctx, "")
		if err != nil || len(all) != 3 {
			t.Fatalf("ListReferenceValues(all) = %d records, %v; want 3 (expired included)", len(all), err)
		}
		if err := s.RemoveReferenceValue(ctx, rv.ID); err != nil {
			t.Fatalf("RemoveReferenceValue: %v", err)
		}
		if err := s.RemoveReferenceValue(ctx, rv.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RemoveReferenceValue(again) error = %v, want ErrNotFound", err)
		}
		if n, err := s.RemoveReferenceValues(ctx, "tdx.mr_td"); err != nil || n != 1 {
			t.Errorf("RemoveReferenceValues = %d, %v; want 1", n, err)
		}
		if all, err := s.ListReferenceValues(ctx, "tdx.mr_td"); err != nil || len(all) != 0 {
			t.Errorf("ListReferenceValues after removal = %+v, %v", all, err)
		}

		for _, bad := range []store.ReferenceValue{
			{Values: []string{"a"}},
			{Name: "n"},
			{Name: "n", Values: []string{"a", "a"}},
			{Name: "n", Values: []string{"a"}, NotBefore: &exp, Expires: &nb},
		} {
			if _, err := s.AddReferenceValue(ctx, bad); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("AddReferenceValue(%+v) error = %v, want ErrInvalid", bad, err)
			}
		}
	})
}

func TestKeysSurviveRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		dsn := b.newDSN(t)
		pem1 := []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
		pem2 := []byte("-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n")

		s, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if _, err := s.ActiveKey(ctx); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ActiveKey(empty) error = %v, want ErrNotFound", err)
		}
		k1, err := s.AddKey(ctx, store.Key{KID: "k1", Algorithm: "ES256", PrivateKey: pem1})
		if err != nil || k1.State != store.KeyActive {
			t.Fatalf("AddKey(k1) = %+v, %v", k1, err)
		}
		if _, err := s.AddKey(ctx, store.Key{KID: "k2", Algorithm: "ES256", PrivateKey: pem2}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("AddKey(second active) error = %v, want ErrConflict", err)
		}
		if _, err := s.AddKey(ctx, store.Key{KID: "k1", Algorithm: "ES256", PrivateKey: pem2, State: store.KeyRetired}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("AddKey(duplicate kid) error = %v, want ErrConflict", err)
		}
		if _, err := s.RotateKey(ctx, store.Key{KID: "k2", Algorithm: "ES256", PrivateKey: pem2}); err != nil {
			t.Fatalf("RotateKey(k2): %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		s = open(t, dsn) // restart
		active, err := s.ActiveKey(ctx)
		if err != nil || active.KID != "k2" || !bytes.Equal(active.PrivateKey, pem2) || active.Algorithm != "ES256" {
			t.Fatalf("ActiveKey after restart = %v, %v; want k2", active, err)
		}
		old, err := s.Key(ctx, "k1")
		if err != nil || old.State != store.KeyRetired || old.RetiredAt == nil || !bytes.Equal(old.PrivateKey, pem1) ||
			!old.CreatedAt.Equal(k1.CreatedAt) {
			t.Fatalf("Key(k1) after restart = %v (retired %v), %v; want retired k1 with its key", old, old.RetiredAt, err)
		}
		if err := s.RemoveKey(ctx, "k1"); err != nil {
			t.Fatalf("RemoveKey(k1): %v", err)
		}
		if err := s.RemoveKey(ctx, "k1"); err != nil {
			t.Errorf("RemoveKey(k1) again: %v", err)
		}
		if err := s.RemoveKey(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RemoveKey(missing) error = %v, want ErrNotFound", err)
		}
		if err := s.RetireKey(ctx, "k1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RetireKey(removed) error = %v, want ErrNotFound", err)
		}
		removed, err := s.Key(ctx, "k1")
		if err != nil || removed.State != store.KeyRemoved || removed.PrivateKey != nil || removed.RemovedAt == nil {
			t.Errorf("Key(k1) after removal = %v, %v; want removed without key bytes", removed, err)
		}
		if _, err := s.AddKey(ctx, store.Key{KID: "k1", Algorithm: "ES256", PrivateKey: pem1, State: store.KeyRetired}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("AddKey(reuse removed kid) error = %v, want ErrConflict", err)
		}
		if err := s.RetireKey(ctx, "k2"); err != nil {
			t.Fatalf("RetireKey(k2): %v", err)
		}
		if _, err := s.ActiveKey(ctx); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ActiveKey after retiring = %v, want ErrNotFound", err)
		}
		keys, err := s.ListKeys(ctx)
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		var got []string
		for _, k := range keys {
			got = append(got, k.KID+"/"+string(k.State))
		}
		if want := []string{"k1/removed", "k2/retired"}; !slices.Equal(got, want) {
			t.Errorf("ListKeys = %v, want %v", got, want)
		}
		if s := fmt.Sprint(active); bytes.Contains([]byte(s), []byte("BBBB")) {
			t.Errorf("fmt.Sprint(Key) = %q, leaks the private key", s)
		}
	})
}

func TestCollateral(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := t.Context()
		s := open(t, b.newDSN(t))
		at := time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC)
		body := []byte{0, 1, 2, 0xff, '{'}
		if err := s.PutCollateral(ctx, store.CollateralItem{Key: "tcb/00906ED50000", Body: body,
			Headers: map[string]string{"TCB-Info-Issuer-Chain": "a%20b"}, FetchedAt: at}); err != nil {
			t.Fatalf("PutCollateral: %v", err)
		}
		it, err := s.Collateral(ctx, "tcb/00906ED50000")
		if err != nil || !bytes.Equal(it.Body, body) || it.Headers["TCB-Info-Issuer-Chain"] != "a%20b" || !it.FetchedAt.Equal(at) {
			t.Fatalf("Collateral = %+v, %v", it, err)
		}
		if err := s.PutCollateral(ctx, store.CollateralItem{Key: "tcb/00906ED50000", Body: []byte("new")}); err != nil {
			t.Fatalf("PutCollateral(replace): %v", err)
		}
		if it, err := s.Collateral(ctx, "tcb/00906ED50000"); err != nil || string(it.Body) != "new" || len(it.Headers) != 0 {
			t.Errorf("Collateral after replace = %+v, %v", it, err)
		}
		if err := s.PutCollateral(ctx, store.CollateralItem{Key: "crl/processor"}); err != nil {
			t.Fatalf("PutCollateral(empty body): %v", err)
		}
		items, err := s.ListCollateral(ctx)
		if err != nil || len(items) != 2 || items[0].Key != "crl/processor" || items[0].Body == nil {
			t.Errorf("ListCollateral = %+v, %v", items, err)
		}
		if err := s.DeleteCollateral(ctx, "crl/processor"); err != nil {
			t.Errorf("DeleteCollateral: %v", err)
		}
		if _, err := s.Collateral(ctx, "crl/processor"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Collateral(deleted) error = %v, want ErrNotFound", err)
		}
	})
}

func TestOpenSQLiteDSNs(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		dsn, file string
	}{
		{"sqlite://" + filepath.Join(dir, "a", "x.db"), filepath.Join(dir, "a", "x.db")},
		{"sqlite:" + filepath.Join(dir, "b.db"), filepath.Join(dir, "b.db")},
		{"file:" + filepath.Join(dir, "c.db"), filepath.Join(dir, "c.db")},
		{filepath.Join(dir, "d", "e", "f.db"), filepath.Join(dir, "d", "e", "f.db")},
	} {
		s := open(t, tc.dsn)
		if s.Dialect() != store.SQLite {
			t.Errorf("Open(%q).Dialect() = %s, want sqlite", tc.dsn, s.Dialect())
		}
		fi, err := os.Stat(tc.file)
		if err != nil {
			t.Fatalf("Open(%q): %v", tc.dsn, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("Open(%q): file mode %v, want 0600", tc.dsn, fi.Mode().Perm())
		}
	}
	for _, dsn := range []string{"sqlite://", "x.db?mode=memory", ":memory:", "postgres://%zz"} {
		if _, err := store.Open(t.Context(), dsn); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Open(%q) error = %v, want ErrInvalid", dsn, err)
		}
	}
}

func TestOpenDefaultPath(t *testing.T) {
	t.Chdir(t.TempDir())
	s := open(t, "")
	if _, err := os.Stat(store.DefaultSQLitePath); err != nil {
		t.Errorf("Open(\"\") did not create %s: %v", store.DefaultSQLitePath, err)
	}
	fi, err := os.Stat(filepath.Dir(store.DefaultSQLitePath))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode = %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	_ = s
}
