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
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/tdsim"
	"github.com/tdproof/tdproof/verifier"
)

// newTestSigner returns an EAR signer over a fresh key.
func newTestSigner(tb testing.TB) *ear.Signer {
	tb.Helper()
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
	return signer
}

// tdsimClaims returns the EAR token the verifier signs for a tdsim TD
// with its reference values, and its claims: what the resource step's
// policy reads.
func tdsimClaims(tb testing.TB) (string, *ear.Claims) {
	tb.Helper()
	sim, err := tdsim.New(tdsim.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	signer := newTestSigner(tb)
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
	want, err := ast.ValueFromReader(bytes.NewReader(rt))
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

// TestDefaultPolicyInGo: for claims the broker signed, allAffirming
// answers what DefaultResourcePolicy answers on their token's payload.
func TestDefaultPolicyInGo(t *testing.T) {
	pp, err := compilePolicy(DefaultResourcePolicy)
	if err != nil {
		t.Fatal(err)
	}
	if !pp.affirmingOnly {
		t.Fatal("DefaultResourcePolicy not recognised")
	}
	if other, err := compilePolicy(DefaultResourcePolicy + "\n"); err != nil || other.affirmingOnly {
		t.Fatalf("a policy other than DefaultResourcePolicy taken for it: %v", err)
	}
	signer := newTestSigner(t)
	evalDefault := func(in ast.Value) bool {
		t.Helper()
		rs, err := pp.pq.Eval(context.Background(), rego.EvalParsedInput(in), rego.EvalResolver(resourcePathRef, constant{ast.String("a/b/c")}))
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 || len(rs[0].Expressions) != 1 {
			return false
		}
		v, ok := rs[0].Expressions[0].Value.(bool)
		return ok && v
	}
	statuses := ear.Statuses()
	evidence := json.RawMessage(`{"tdx":{"ear.status":"affirming","x":1}}`)
	var cases []map[string]ear.Appraisal
	for _, s1 := range statuses {
		cases = append(cases, map[string]ear.Appraisal{ear.SubmodTDX: {Status: s1}})
		cases = append(cases, map[string]ear.Appraisal{ear.SubmodTDX: {Status: s1, Claims: evidence}})
		for _, s2 := range statuses {
			cases = append(cases, map[string]ear.Appraisal{ear.SubmodTDX: {Status: s1}, "other": {Status: s2, Claims: evidence}})
		}
	}
	allowed := 0
	for _, sub := range cases {
		tok, c, err := signer.Sign(ear.Claims{Nonce: "n", Submods: sub})
		if err != nil {
			t.Fatal(err)
		}
		in, err := policyInput(tok)
		if err != nil {
			t.Fatal(err)
		}
		got, want := allAffirming(c), evalDefault(in)
		if got != want {
			t.Fatalf("submods %v: allAffirming %v, DefaultResourcePolicy %v", sub, got, want)
		}
		if got {
			allowed++
		}
	}
	if allowed == 0 || allowed == len(cases) {
		t.Fatalf("%d of %d cases allowed: the cases do not tell the policies apart", allowed, len(cases))
	}
	// No submodule (the signer refuses to sign it): both deny.
	empty, err := jsonValue([]byte(`{"submods":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if allAffirming(&ear.Claims{}) || evalDefault(empty) {
		t.Fatal("no submodule allowed")
	}
}
