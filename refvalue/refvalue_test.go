package refvalue_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/refvalue"
)

var t0 = time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)

func TestNormalize(t *testing.T) {
	t.Parallel()
	v, err := refvalue.Normalize(refvalue.Value{Name: " tdx.mr_td ", Values: []string{"0xABCD", "abcd", "kms"},
		Provenance: refvalue.Provenance{ArtifactDigest: "sha256:ABCD"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "tdx.mr_td" || strings.Join(v.Values, ",") != "abcd,kms" || v.Provenance.ArtifactDigest != "sha256:abcd" {
		t.Errorf("Normalize = %+v", v)
	}
	for name, bad := range map[string]refvalue.Value{
		"empty name":     {Values: []string{"aa"}},
		"space in name":  {Name: "a b", Values: []string{"aa"}},
		"no values":      {Name: "x"},
		"empty value":    {Name: "x", Values: []string{" "}},
		"window":         {Name: "x", Values: []string{"aa"}, NotBefore: t0, Expires: t0},
		"digest no alg":  {Name: "x", Values: []string{"aa"}, Provenance: refvalue.Provenance{ArtifactDigest: "abcd"}},
		"digest not hex": {Name: "x", Values: []string{"aa"}, Provenance: refvalue.Provenance{ArtifactDigest: "sha256:xyz"}},
	} {
		if _, err := refvalue.Normalize(bad); !errors.Is(err, refvalue.ErrInvalid) {
			t.Errorf("Normalize(%s) error = %v, want ErrInvalid", name, err)
		}
	}
}

func TestValidAt(t *testing.T) {
	t.Parallel()
	v := refvalue.Value{NotBefore: t0, Expires: t0.Add(time.Hour)}
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{t0.Add(-time.Nanosecond), false},
		{t0, true},
		{t0.Add(time.Hour - time.Nanosecond), true},
		{t0.Add(time.Hour), false}, // expires is exclusive
	} {
		if got := v.ValidAt(tc.at); got != tc.want {
			t.Errorf("ValidAt(%v) = %v, want %v", tc.at, got, tc.want)
		}
	}
	if !(&refvalue.Value{}).ValidAt(t0) {
		t.Error("a value without a window is not valid")
	}
}

func TestMemoryStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := refvalue.NewMemoryStore()
	add := func(v refvalue.Value) string {
		t.Helper()
		id, err := s.Add(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	current := add(refvalue.Value{Name: "tdx.mr_td", Values: []string{"AA"}, Expires: t0.Add(time.Hour)})
	future := add(refvalue.Value{Name: "tdx.mr_td", Values: []string{"bb"}, NotBefore: t0.Add(time.Hour)})
	other := add(refvalue.Value{Name: "dstack.compose_hash", Values: []string{"cc"}})
	if _, err := s.Add(ctx, refvalue.Value{Name: "x"}); !errors.Is(err, refvalue.ErrInvalid) {
		t.Errorf("Add(no values) = %v", err)
	}

	lookup := func(name string, at time.Time) string {
		t.Helper()
		vals, err := s.Lookup(ctx, name, at)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(refvalue.Accepted(vals), ",")
	}
	if got := lookup("tdx.mr_td", t0); got != "aa" {
		t.Errorf("Lookup at t0 = %q, want aa", got)
	}
	// At expiry the old value no longer matches and the new one does.
	if got := lookup("tdx.mr_td", t0.Add(time.Hour)); got != "bb" {
		t.Errorf("Lookup at expiry = %q, want bb", got)
	}
	if got := lookup("nothing", t0); got != "" {
		t.Errorf("Lookup(nothing) = %q", got)
	}

	all, err := s.List(ctx)
	if err != nil || len(all) != 3 || all[0].ID != other || all[1].ID != current || all[2].ID != future {
		t.Fatalf("List = %+v, %v", all, err)
	}
	all[1].Values[0] = "mutated"
	if got := lookup("tdx.mr_td", t0); got != "aa" {
		t.Errorf("List returned shared storage: %q", got)
	}
	if err := s.Remove(ctx, current); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, current); !errors.Is(err, refvalue.ErrNotFound) {
		t.Errorf("second Remove = %v, want ErrNotFound", err)
	}
	if got := lookup("tdx.mr_td", t0); got != "" {
		t.Errorf("Lookup after Remove = %q", got)
	}
}

func TestMemoryStoreCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s := refvalue.NewMemoryStore()
	if _, err := s.Lookup(ctx, "x", t0); err == nil {
		t.Error("Lookup with a canceled context succeeded")
	}
}

func TestMemoryStoreConcurrent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := refvalue.NewMemoryStore()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				id, err := s.Add(ctx, refvalue.Value{Name: fmt.Sprint("n", i%2), Values: []string{fmt.Sprintf("%02x", j)}})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Lookup(ctx, "n0", t0); err != nil {
					t.Error(err)
				}
				if j%2 == 0 {
					if err := s.Remove(ctx, id); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	all, err := s.List(ctx)
	if err != nil || len(all) != 8*25 {
		t.Errorf("List: %d values, %v; want 200", len(all), err)
	}
}
