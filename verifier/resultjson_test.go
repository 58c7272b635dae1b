package verifier_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/verifier"
)

// TestResultAppendJSON checks that Result.AppendJSON gives the bytes of
// json.Marshal: for an allowed result (claims encoded once, for the token,
// and reused), a denial without authentic evidence (no claims), and a
// result whose claims were replaced afterwards (encoded again, including
// HTML escaping as json.Marshal does); and that the reused claims are the
// token's.
func TestResultAppendJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil, nil, nil)
	good, err := e.v.Verify(t.Context(), verifier.Evidence{Quote: e.quote})
	if err != nil {
		t.Fatal(err)
	}
	raw := slices.Clone(e.quote)
	raw[48+584+4] ^= 1
	bad, err := e.v.Verify(t.Context(), verifier.Evidence{Quote: raw})
	if err != nil {
		t.Fatal(err)
	}
	replaced := *good.Result
	replaced.Claims = claims.Set{"user.note": "<a & b>", "tdx.quote.body.mr_td": "00"}
	for name, r := range map[string]*verifier.Result{"allowed": good.Result, "not authentic": bad.Result, "claims replaced": &replaced} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.AppendJSON([]byte("prefix"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got[len("prefix"):], want) || string(got[:len("prefix")]) != "prefix" {
			t.Errorf("%s: AppendJSON\n%s\njson.Marshal\n%s", name, got, want)
		}
	}
	c := verifyToken(t, e.keys, good, e.f.Now, "")
	body, err := good.Result.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		Claims json.RawMessage `json:"claims"`
	}
	if err := json.Unmarshal(body, &decoded); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(decoded.Claims, c.Submods[ear.SubmodTDX].Claims) {
		t.Error("the body's claims are not the token's")
	}
}

// BenchmarkResultJSON encodes an allowed result: json.Marshal (the
// claims encoded again and compacted) against AppendJSON (the token's
// claims encoding reused).
func BenchmarkResultJSON(b *testing.B) {
	e := newEnv(b, nil, nil, nil)
	o, err := e.v.Verify(b.Context(), verifier.Evidence{Quote: e.quote})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(o.Result); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 32<<10)
		for b.Loop() {
			if _, err := o.Result.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
