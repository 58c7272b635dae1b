package claims

import (
	"encoding/json"
	"strconv"
	"sync"
	"testing"
)

// TestLayoutHashCollision plants the layout of one set of names under the
// hash of another set of the same size: AppendJSON must notice the
// missing names and still write the set's own encoding.
func TestLayoutHashCollision(t *testing.T) {
	a := Set{"tee": "tdx", "tdx.x": "1", "tdx.y.z": true}
	b := Set{"tee": "tdx", "tdx.x": "1", "tdx.w": int64(2)}
	hb := namesHash(b)
	layouts.Lock()
	if layouts.m == nil {
		layouts.m = map[uint64]*layout{}
	}
	saved, had := layouts.m[hb]
	layouts.m[hb] = buildLayout(a)
	layouts.Unlock()
	t.Cleanup(func() {
		layouts.Lock()
		delete(layouts.m, hb)
		if had {
			layouts.m[hb] = saved
		}
		layouts.Unlock()
	})
	got, err := b.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(b.Tree())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("collision:\n got %s\nwant %s", got, want)
	}
	if _, ok, _ := b.appendLayout(nil, buildLayout(a)); ok {
		t.Error("appendLayout accepted a layout of other names")
	}
	if _, ok, _ := a.appendLayout(nil, buildLayout(Set{"tee": "tdx"})); ok {
		t.Error("appendLayout accepted a layout of fewer names")
	}
}

// TestLayoutConcurrent encodes sets of several shapes from many
// goroutines (run with -race) and checks every encoding.
func TestLayoutConcurrent(t *testing.T) {
	sets := []Set{
		{},
		{"tee": "sgx", "sgx.a": "1"},
		{"tee": "tdx", "tdx.quote.body.mr_td": "00", "tdx.quote.header.version": "0400", "tdx.tcb_status": "UpToDate"},
		{"a": "1", "a.b": "2"}, // encoded through Tree
	}
	want := make([]string, len(sets))
	for i, s := range sets {
		b, err := json.Marshal(s.Tree())
		if err != nil {
			t.Fatal(err)
		}
		want[i] = string(b)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for n := 0; n < 200; n++ {
				i := (g + n) % len(sets)
				got, err := sets[i].AppendJSON(nil)
				if err != nil {
					t.Error(err)
					return
				}
				if string(got) != want[i] {
					t.Errorf("set %d:\n got %s\nwant %s", i, got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestLayoutBound encodes more sets of distinct names than the cache
// remembers: the cache stops at maxLayouts and the sets past it are
// still encoded right.
func TestLayoutBound(t *testing.T) {
	for i := range maxLayouts + 20 {
		s := Set{"tee": "tdx", "bound.n" + strconv.Itoa(i): int64(i)}
		got, err := s.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(s.Tree())
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("set %d:\n got %s\nwant %s", i, got, want)
		}
	}
	layouts.RLock()
	n := len(layouts.m)
	layouts.RUnlock()
	if n > maxLayouts {
		t.Errorf("%d layouts remembered, bound %d", n, maxLayouts)
	}
}
