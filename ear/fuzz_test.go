package ear_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/ear"
)

// FuzzVerify: Verify never panics, fails closed (error ⇔ nil claims), and a
// token it accepts re-verifies to the same claims. Seeds are valid tokens
// and a few broken ones.
func FuzzVerify(f *testing.F) {
	ks := newSet(f)
	s := newSigner(f, ks)
	good := sign(f, s, sampleClaims("abcdefgh"))
	seeds := []string{good, sign(f, s, sampleClaims("")), "", "a.b.c", "..",
		good[:strings.LastIndexByte(good, '.')] + ".", "eyJhbGciOiJub25lIn0.e30."}
	for _, seed := range seeds {
		f.Add(seed)
	}
	opts := ear.VerifyOptions{Now: at(t0)}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := ear.Verify(tok, ks, opts)
		if (err == nil) == (c == nil) {
			t.Fatalf("Verify = %v, %v: not fail-closed", c, err)
		}
		if err != nil {
			return
		}
		c2, err := ear.Verify(tok, ks, opts)
		if err != nil {
			t.Fatalf("re-Verify = %v", err)
		}
		a, _ := json.Marshal(c)
		b, _ := json.Marshal(c2)
		if string(a) != string(b) {
			t.Fatalf("re-Verify claims differ: %s vs %s", a, b)
		}
	})
}

// FuzzParseJWKS: ParseJWKS never panics, fails closed, and what it accepts
// re-publishes to a document that parses to the same key ids.
func FuzzParseJWKS(f *testing.F) {
	doc, err := newSet(f).JWKS()
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{string(doc), `{"keys":[]}`, `{}`, `[]`, ``} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ks, err := ear.ParseJWKS(in)
		if (err == nil) == (ks == nil) {
			t.Fatalf("ParseJWKS = %v, %v: not fail-closed", ks, err)
		}
		if err != nil {
			return
		}
		out, err := ks.JWKS()
		if err != nil {
			t.Fatal(err)
		}
		ks2, err := ear.ParseJWKS(out)
		if err != nil || len(ks2.Keys()) != len(ks.Keys()) {
			t.Fatalf("re-parse = %v", err)
		}
		for i, k := range ks.Keys() {
			if ks2.Keys()[i].ID() != k.ID() {
				t.Fatalf("key %d id changed", i)
			}
		}
	})
}
