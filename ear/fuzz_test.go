package ear_test

import (
	"encoding/json"
	"errors"
	"reflect"
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

// FuzzSign: Sign either refuses claims (ErrClaims) or returns a token that
// Verify accepts, whose claims are the signed ones (strings as JSON
// carries them, the annotated evidence as the same JSON value). It covers
// Sign's own payload encoder with arbitrary strings and evidence.
func FuzzSign(f *testing.F) {
	ks := newSet(f)
	s := newSigner(f, ks)
	f.Add("n", "default@1", `{"tdx.quote.body.mr_td":"00ff"}`, "tdx")
	f.Add("<&>\u2028", "p\"q", ` { "a" : [1, 2.5e3, null, true], "b": {"c": "\u00e9"} } `, "dstack")
	f.Add("\xff", "", `{"a":1} x`, "")
	f.Fuzz(func(t *testing.T, nonce, policy, evidence, submod string) {
		c := sampleClaims(nonce)
		a := c.Submods[ear.SubmodTDX]
		a.PolicyID, a.Claims = policy, json.RawMessage(evidence)
		c.Submods = map[string]ear.Appraisal{submod: a}
		tok, signed, err := s.Sign(c)
		if err != nil {
			if !errors.Is(err, ear.ErrClaims) {
				t.Fatalf("Sign = %v, want ErrClaims", err)
			}
			return
		}
		got, err := ear.Verify(tok, ks, ear.VerifyOptions{Now: at(t0)})
		if err != nil {
			t.Fatalf("Verify of a signed token: %v", err)
		}
		gs, ss := got.Submods[viaJSON(submod)], signed.Submods[submod]
		if got.Nonce != viaJSON(nonce) || gs.PolicyID != viaJSON(policy) || gs.Status != ss.Status {
			t.Fatalf("claims differ: %+v vs %+v", got, signed)
		}
		if len(ss.Claims) == 0 {
			if len(gs.Claims) != 0 {
				t.Fatalf("evidence %s in the token, none signed", gs.Claims)
			}
			return
		}
		var x, y any
		if err := json.Unmarshal(gs.Claims, &x); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(ss.Claims, &y); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(x, y) {
			t.Fatalf("evidence %s, signed %s", gs.Claims, ss.Claims)
		}
	})
}

// viaJSON is s as encoding/json carries it (invalid UTF-8 replaced).
func viaJSON(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}
