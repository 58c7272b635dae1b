package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/refvalue"
)

func TestRefValues(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		rs := open(t, b.newDSN(t)).RefValues()
		ctx := t.Context()
		now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		mrtd := strings.Repeat("AB", 48)
		id, err := rs.Add(ctx, refvalue.Value{
			Name: "tdx.mr_td", Values: []string{"0x" + mrtd},
			Provenance: refvalue.Provenance{Source: "test", Author: "alice"},
			Expires:    now.Add(time.Hour),
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rs.Add(ctx, refvalue.Value{Name: "tdx.mr_td", Values: []string{strings.Repeat("cd", 48)},
			Provenance: refvalue.Provenance{Source: "test"}, NotBefore: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if _, err := rs.Add(ctx, refvalue.Value{Name: " ", Values: []string{"x"}}); err == nil {
			t.Error("invalid value accepted")
		}
		got, err := rs.Lookup(ctx, "tdx.mr_td", now)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != id || got[0].Values[0] != strings.ToLower(mrtd) || got[0].Provenance.Author != "alice" || !got[0].Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("lookup now: %+v", got)
		}
		// Expiry and not_before are enforced at query time.
		got, err = rs.Lookup(ctx, "tdx.mr_td", now.Add(2*time.Hour))
		if err != nil || len(got) != 1 || got[0].ID == id {
			t.Fatalf("lookup later: %+v %v", got, err)
		}
		all, err := rs.List(ctx)
		if err != nil || len(all) != 2 {
			t.Fatalf("list: %+v %v", all, err)
		}
		if err := rs.Remove(ctx, id); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{id, "rv-1", "999999"} {
			if err := rs.Remove(ctx, bad); !errors.Is(err, refvalue.ErrNotFound) {
				t.Errorf("remove %q: %v", bad, err)
			}
		}
		if got, err := rs.Lookup(ctx, "tdx.mr_td", now); err != nil || len(got) != 0 {
			t.Errorf("lookup after remove: %+v %v", got, err)
		}
	})
}
