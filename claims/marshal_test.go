package claims_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/dcaptest"
)

// treeJSON is the reference encoding of a Set: its nested maps through
// encoding/json.
func treeJSON(t testing.TB, s claims.Set) []byte {
	t.Helper()
	b, err := json.Marshal(s.Tree())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkSameAsTree(t *testing.T, s claims.Set) {
	t.Helper()
	got, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := treeJSON(t, s); !bytes.Equal(got, want) {
		t.Errorf("MarshalJSON differs from json.Marshal(Tree()):\n got %s\nwant %s", got, want)
	}
	direct, err := s.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(direct, got) {
		t.Errorf("MarshalJSON is not compact:\n got %s\nwant %s", direct, got)
	}
}

func TestMarshalMatchesTree(t *testing.T) {
	t.Parallel()
	for _, kind := range dcaptest.QuoteKinds() {
		s, _, _ := fixtureSet(t, kind, nil)
		checkSameAsTree(t, s)
	}
	for _, s := range []claims.Set{
		{},
		{"a": "x"},
		// '-' sorts before '.', but the nested key "x" before "x-1".
		{"x-1": "a", "x.y": "b", "x.z.w": int64(-3), "x+": true, "x.a": []string{"<&>", "é", "\u2028"}},
		{"a..b": "1", "a.": "2", ".a": "3", "": "4"},
		{"n": 7, "l": []string{}, "nl": []string(nil), "f": 1.5, "m": map[string]any{"k": "v"}},
		{"s": "quote\"back\\slash\x01\x7f<tag>"},
		// A name that is a prefix of another: Tree's behaviour.
		{"a": "1", "a.b": "2"},
		{"a.b": "1", "a.b.c": "2", "a.d": "3"},
	} {
		checkSameAsTree(t, s)
	}
	var nilSet claims.Set
	if b, err := json.Marshal(nilSet); err != nil || string(b) != "null" {
		t.Errorf("nil set: %s %v", b, err)
	}
}

func FuzzMarshalMatchesTree(f *testing.F) {
	f.Add("a.b", "a.c", "a-b", "v")
	f.Add("x.y.z", "x.y", "x", "<")
	f.Fuzz(func(t *testing.T, n1, n2, n3, v string) {
		checkSameAsTree(t, claims.Set{n1: v, n2: int64(len(v)), n3: []string{v, n1}})
	})
}

func BenchmarkMarshal(b *testing.B) {
	s, _, _ := fixtureSet(b, dcaptest.TDXQuoteV4, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	s, _, _ := fixtureSet(b, dcaptest.TDXQuoteV4, nil)
	b.ReportAllocs()
	buf := make([]byte, 0, 8192)
	for b.Loop() {
		if _, err := s.AppendJSON(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
