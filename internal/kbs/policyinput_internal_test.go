package kbs

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/tdsim"
	"github.com/tdproof/tdproof/verifier"
)

// tdsimClaims returns the EAR token the verifier signs for a tdsim TD
// with its reference values, and its claims: what the resource step's
// policy reads.
func tdsimClaims(tb testing.TB) (string, *ear.Claims) {
	tb.Helper()
	sim, err := tdsim.New(tdsim.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	k, err := ear.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := ear.NewKeySet(k)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := ear.NewSigner(keys)
	if err != nil {
		tb.Fatal(err)
	}
	refs := refvalue.NewMemoryStore()
	for _, rv := range sim.ReferenceValues() {
		if _, err := refs.Add(context.Background(), rv); err != nil {
			tb.Fatal(err)
		}
	}
	col, err := sim.Collateral(time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return col, nil })
	v, err := verifier.New(src, refs, signer, verifier.WithTrustedRoot(sim.TrustRoot()))
	if err != nil {
		tb.Fatal(err)
	}
	q, err := sim.Quote(context.Background(), [64]byte{1})
	if err != nil {
		tb.Fatal(err)
	}
	out, err := v.Verify(context.Background(), verifier.Evidence{Quote: q})
	if err != nil || out.TokenClaims == nil {
		tb.Fatalf("Verify: %v", err)
	}
	return out.Token, out.TokenClaims
}

// TestPolicyInputAsOPA checks that the resource policy's input built by
// policyInput from a token is the value OPA builds from the token's
// claims' JSON as a Go map (rego.EvalInput of the decoded claims, as the
// broker did before).
func TestPolicyInputAsOPA(t *testing.T) {
	tok, c := tdsimClaims(t)
	got, err := policyInput(tok)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	// What rego does with EvalInput: a JSON round trip, then InterfaceToValue.
	rt, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ast.ValueFromReader(bytesReader(rt))
	if err != nil {
		t.Fatal(err)
	}
	if got.Compare(want) != 0 {
		t.Fatalf("policy input differs:\n got %v\nwant %v", got, want)
	}
}

// BenchmarkPolicyInput compares building the resource policy's input from
// a verified token: policyInput (the payload decoded into an OPA value by
// jsonValue), the broker's former way (the claims encoded, decoded by
// ast.ValueFromReader) and the way before it (the claims' JSON into a
// map, then OPA's conversion of the map).
func BenchmarkPolicyInput(b *testing.B) {
	tok, c := tdsimClaims(b)
	b.Run("policyInput", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := policyInput(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ValueFromReader", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			raw, err := json.Marshal(c)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ast.ValueFromReader(bytes.NewReader(raw)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			raw, err := json.Marshal(c)
			if err != nil {
				b.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				b.Fatal(err)
			}
			var x any = m
			if _, err := ast.InterfaceToValue(x); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

// TestWriteTokenAsJSON: writeToken answers exactly what writeJSON does
// for a protocol.TokenResponse, compact JWS or not.
func TestWriteTokenAsJSON(t *testing.T) {
	for _, tok := range []string{"", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.eyJ4IjoxfQ.AbC-_09", `x"<&>` + "\u2028\xff", "a b"} {
		got, want := httptest.NewRecorder(), httptest.NewRecorder()
		writeToken(got, tok)
		writeJSON(want, protocol.TokenResponse{Token: tok})
		if got.Body.String() != want.Body.String() || !reflect.DeepEqual(got.Header(), want.Header()) || got.Code != want.Code {
			t.Errorf("token %q: writeToken %d %v %q, writeJSON %d %v %q", tok, got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
		}
	}
}
