package ear_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newKey(t testing.TB) *ear.Key {
	t.Helper()
	k, err := ear.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newSigner(t testing.TB, keys *ear.KeySet) *ear.Signer {
	t.Helper()
	s, err := ear.NewSigner(keys, ear.WithIssuer("https://verifier.example"),
		ear.WithClock(func() time.Time { return t0 }), ear.WithLifetime(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newSet(t testing.TB) *ear.KeySet {
	t.Helper()
	ks, err := ear.NewKeySet(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func sampleClaims(nonce string) ear.Claims {
	tv, st := ear.Derive(ear.Summary{Authentic: true, TCBStatus: collateral.UpToDate, Measurements: ear.Passed})
	return ear.Claims{
		Nonce: nonce,
		Submods: map[string]ear.Appraisal{ear.SubmodTDX: {
			Status: st, TrustVector: &tv, PolicyID: ear.PolicyID("default", "1"),
			Claims: json.RawMessage(`{"tdx.quote.body.mr_td":"00ff","tdx.tcb_status":"UpToDate"}`),
		}},
	}
}

func sign(t testing.TB, s *ear.Signer, c ear.Claims) string {
	t.Helper()
	tok, _, err := s.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func at(tm time.Time) func() time.Time { return func() time.Time { return tm } }

// publishedSet is what a relying party has: the JWKS document parsed.
func publishedSet(t testing.TB, ks *ear.KeySet) *ear.KeySet {
	t.Helper()
	doc, err := ks.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	rp, err := ear.ParseJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ks := newSet(t)
	s := newSigner(t, ks)
	in := sampleClaims("n0nce-abcdefgh")
	tok, filled, err := s.Sign(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ear.Verify(tok, publishedSet(t, ks), ear.VerifyOptions{
		Now: at(t0.Add(time.Minute)), ExpectedNonce: "n0nce-abcdefgh", ExpectedIssuer: "https://verifier.example",
	})
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if got.Nonce != "n0nce-abcdefgh" || got.Issuer != "https://verifier.example" || got.Profile != ear.Profile {
		t.Errorf("Verify claims = %+v", got)
	}
	if got.IssuedAt != t0.Unix() || got.ExpiresAt != t0.Add(5*time.Minute).Unix() || len(got.ID) != 32 {
		t.Errorf("iat/exp/jti = %d/%d/%q", got.IssuedAt, got.ExpiresAt, got.ID)
	}
	a := got.Submods[ear.SubmodTDX]
	if a.Status != ear.StatusAffirming || a.TrustVector == nil || a.TrustVector.Hardware != ear.HardwareGenuine ||
		a.PolicyID != "default@1" {
		t.Errorf("submod = %+v", a)
	}
	var cl map[string]string
	if err := json.Unmarshal(a.Claims, &cl); err != nil || cl["tdx.tcb_status"] != "UpToDate" {
		t.Errorf("annotated evidence = %s (%v)", a.Claims, err)
	}
	gj, _ := json.Marshal(got)
	fj, _ := json.Marshal(filled)
	if string(gj) != string(fj) {
		t.Errorf("verified claims %s != signed claims %s", gj, fj)
	}
	if in.Profile != "" || in.ID != "" {
		t.Errorf("Sign modified its argument")
	}
}

// TestWireNames pins the claim names of the payload (EAR / Trustee spelling).
func TestWireNames(t *testing.T) {
	t.Parallel()
	tok := sign(t, newSigner(t, newSet(t)), sampleClaims("abcdefgh"))
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"eat_profile", "iat", "exp", "iss", "jti", "eat_nonce", "ear.verifier-id", "submods"} {
		if _, ok := m[k]; !ok {
			t.Errorf("payload lacks %q: %s", k, payload)
		}
	}
	sub := m["submods"].(map[string]any)["tdx"].(map[string]any)
	if sub["ear.status"] != "affirming" {
		t.Errorf("ear.status = %v", sub["ear.status"])
	}
	tv := sub["ear.trustworthiness-vector"].(map[string]any)
	want := map[string]float64{"instance-identity": 0, "configuration": 0, "executables": 2, "file-system": 0,
		"hardware": 2, "runtime-opaque": 2, "storage-opaque": 0, "sourced-data": 0}
	if len(tv) != len(want) {
		t.Errorf("trust vector = %v", tv)
	}
	for k, v := range want {
		if tv[k] != v {
			t.Errorf("trust vector %s = %v, want %v", k, tv[k], v)
		}
	}
	for _, k := range []string{"ear.appraisal-policy-id", "ear.veraison.annotated-evidence"} {
		if _, ok := sub[k]; !ok {
			t.Errorf("submod lacks %q", k)
		}
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var h map[string]any
	if err := json.Unmarshal(hdr, &h); err != nil {
		t.Fatal(err)
	}
	if h["alg"] != "ES256" || h["typ"] != "JWT" || h["kid"] == "" || len(h) != 3 {
		t.Errorf("header = %s", hdr)
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	ks := newSet(t)
	s := newSigner(t, ks)
	old := ks.Active()
	oldTok := sign(t, s, sampleClaims("abcdefgh"))
	opts := ear.VerifyOptions{Now: at(t0)}

	next := newKey(t)
	if err := ks.Rotate(next); err != nil {
		t.Fatal(err)
	}
	newTok := sign(t, s, sampleClaims("abcdefgh"))
	rp := publishedSet(t, ks)
	if n := len(rp.Keys()); n != 2 {
		t.Fatalf("JWKS after rotation has %d keys, want 2", n)
	}
	for name, tok := range map[string]string{"old": oldTok, "new": newTok} {
		if _, err := ear.Verify(tok, rp, opts); err != nil {
			t.Errorf("Verify(%s token) after rotation = %v", name, err)
		}
	}
	if err := ks.Remove(next.ID()); !errors.Is(err, ear.ErrKey) {
		t.Errorf("Remove(active) = %v, want ErrKey", err)
	}
	if err := ks.Remove(old.ID()); err != nil {
		t.Fatal(err)
	}
	rp = publishedSet(t, ks)
	if _, err := ear.Verify(oldTok, rp, opts); !errors.Is(err, ear.ErrUnknownKey) {
		t.Errorf("Verify(old token) after removal = %v, want ErrUnknownKey", err)
	}
	if _, err := ear.Verify(oldTok, ks, opts); !errors.Is(err, ear.ErrUnknownKey) {
		t.Errorf("Verify(old token, signer set) after removal = %v, want ErrUnknownKey", err)
	}
	if _, err := ear.Verify(newTok, rp, opts); err != nil {
		t.Errorf("Verify(new token) after removal = %v", err)
	}
	if err := ks.Remove(old.ID()); !errors.Is(err, ear.ErrKey) {
		t.Errorf("Remove(absent) = %v, want ErrKey", err)
	}
}

// forge builds a compact JWS by hand: header and payload JSON, signature
// bytes from sig(signingInput).
func forge(hdr, payload string, sig func([]byte) []byte) string {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(hdr)) + "." + enc.EncodeToString([]byte(payload))
	return in + "." + enc.EncodeToString(sig([]byte(in)))
}

func es256(t testing.TB, priv *ecdsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		h := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(nil, priv, h[:])
		if err != nil {
			t.Fatal(err)
		}
		// EAR tokens carry low-s signatures only (TestLowS).
		if n := priv.Curve.Params().N; s.Cmp(new(big.Int).Rsh(n, 1)) > 0 {
			s.Sub(n, s)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	}
}

func TestRejects(t *testing.T) {
	t.Parallel()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ear.NewSigningKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ear.NewKeySet(key)
	if err != nil {
		t.Fatal(err)
	}
	s := newSigner(t, ks)
	good := sign(t, s, sampleClaims("abcdefgh"))
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	kid := key.ID()
	hdr := `{"alg":"ES256","kid":"` + kid + `","typ":"JWT"}`
	other := sign(t, newSigner(t, newSet(t)), sampleClaims("abcdefgh"))
	enc := base64.RawURLEncoding

	sigBytes, _ := enc.DecodeString(parts[2])
	sigBytes[10] ^= 0x01
	badSig := parts[0] + "." + parts[1] + "." + enc.EncodeToString(sigBytes)
	tamperedPayload := strings.Replace(string(payload), `"affirming"`, `"warning"`, 1)

	tests := []struct {
		name    string
		token   string
		opts    ear.VerifyOptions
		wantErr error
	}{
		{"good", good, ear.VerifyOptions{Now: at(t0)}, nil},
		{"hand-forged valid", forge(hdr, string(payload), es256(t, priv)), ear.VerifyOptions{Now: at(t0)}, nil},
		{"alg none", forge(`{"alg":"none","kid":"`+kid+`"}`, string(payload), func([]byte) []byte { return nil }), ear.VerifyOptions{Now: at(t0)}, ear.ErrAlgorithm},
		{"alg HS256 with public key", forge(`{"alg":"HS256","kid":"`+kid+`"}`, string(payload), func(in []byte) []byte {
			raw, _ := priv.PublicKey.Bytes()
			m := hmac.New(sha256.New, raw)
			m.Write(in)
			return m.Sum(nil)
		}), ear.VerifyOptions{Now: at(t0)}, ear.ErrAlgorithm},
		{"alg ES384", forge(`{"alg":"ES384","kid":"`+kid+`"}`, string(payload), es256(t, priv)), ear.VerifyOptions{Now: at(t0)}, ear.ErrAlgorithm},
		{"tampered payload", parts[0] + "." + enc.EncodeToString([]byte(tamperedPayload)) + "." + parts[2], ear.VerifyOptions{Now: at(t0)}, ear.ErrSignature},
		{"tampered header", enc.EncodeToString([]byte(`{"alg":"ES256","kid":"`+kid+`","typ":"JOSE"}`)) + "." + parts[1] + "." + parts[2], ear.VerifyOptions{Now: at(t0)}, ear.ErrSignature},
		{"tampered signature", badSig, ear.VerifyOptions{Now: at(t0)}, ear.ErrSignature},
		{"other key set", other, ear.VerifyOptions{Now: at(t0)}, ear.ErrUnknownKey},
		{"other key, our kid", forge(hdr, string(payload), es256(t, mustKey(t))), ear.VerifyOptions{Now: at(t0)}, ear.ErrSignature},
		{"no kid", forge(`{"alg":"ES256"}`, string(payload), es256(t, priv)), ear.VerifyOptions{Now: at(t0)}, ear.ErrUnknownKey},
		{"crit", forge(`{"alg":"ES256","kid":"`+kid+`","crit":["exp"],"exp":1}`, string(payload), es256(t, priv)), ear.VerifyOptions{Now: at(t0)}, ear.ErrMalformed},
		{"embedded jwk ignored", forge(`{"alg":"ES256","kid":"attacker","jwk":{}}`, string(payload), es256(t, priv)), ear.VerifyOptions{Now: at(t0)}, ear.ErrUnknownKey},
		{"expired", good, ear.VerifyOptions{Now: at(t0.Add(5*time.Minute + time.Second))}, ear.ErrExpired},
		{"expired within leeway", good, ear.VerifyOptions{Now: at(t0.Add(5*time.Minute + time.Second)), Leeway: time.Minute}, nil},
		{"not yet valid", good, ear.VerifyOptions{Now: at(t0.Add(-time.Second))}, ear.ErrNotYetValid},
		{"iat within leeway", good, ear.VerifyOptions{Now: at(t0.Add(-time.Second)), Leeway: 2 * time.Second}, nil},
		{"nonce", good, ear.VerifyOptions{Now: at(t0), ExpectedNonce: "abcdefgi"}, ear.ErrNonce},
		{"issuer", good, ear.VerifyOptions{Now: at(t0), ExpectedIssuer: "evil"}, ear.ErrIssuer},
		{"profile", good, ear.VerifyOptions{Now: at(t0), ExpectedProfile: "tag:other"}, ear.ErrProfile},
		{"two parts", parts[0] + "." + parts[1], ear.VerifyOptions{Now: at(t0)}, ear.ErrMalformed},
		{"four parts", good + ".x", ear.VerifyOptions{Now: at(t0)}, ear.ErrMalformed},
		{"json serialization", `{"payload":"x"}`, ear.VerifyOptions{Now: at(t0)}, ear.ErrMalformed},
		{"empty", "", ear.VerifyOptions{Now: at(t0)}, ear.ErrMalformed},
		{"signed garbage payload", forge(hdr, `[1,2]`, es256(t, priv)), ear.VerifyOptions{Now: at(t0)}, ear.ErrMalformed},
		{"signed no submods", forge(hdr, `{"eat_profile":"`+ear.Profile+`","iat":1,"exp":2e10,"ear.verifier-id":{"developer":"","build":""},"submods":{}}`, es256(t, priv)), ear.VerifyOptions{Now: at(t0)}, ear.ErrMalformed},
		{"signed bad status", forge(hdr, `{"eat_profile":"`+ear.Profile+`","iat":1,"exp":20000000000,"submods":{"tdx":{"ear.status":"great"}}}`, es256(t, priv)), ear.VerifyOptions{Now: at(t0)}, ear.ErrMalformed},
		{"signed no exp", forge(hdr, `{"eat_profile":"`+ear.Profile+`","iat":1,"submods":{"tdx":{"ear.status":"affirming"}}}`, es256(t, priv)), ear.VerifyOptions{Now: at(t0)}, ear.ErrMalformed},
		{"oversized", strings.Repeat("a", ear.MaxTokenSize+1), ear.VerifyOptions{Now: at(t0)}, ear.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := ear.Verify(tc.token, ks, tc.opts)
			if tc.wantErr == nil {
				if err != nil || c == nil {
					t.Fatalf("Verify(%s) = %v, %v; want success", tc.name, c, err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || c != nil {
				t.Fatalf("Verify(%s) = %v, %v; want nil, %v", tc.name, c, err, tc.wantErr)
			}
		})
	}
}

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSignatureIndependent checks a token with crypto/ecdsa alone, using the
// key from the JWKS JSON decoded by hand.
func TestSignatureIndependent(t *testing.T) {
	t.Parallel()
	ks := newSet(t)
	tok := sign(t, newSigner(t, ks), sampleClaims("abcdefgh"))
	doc, err := ks.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct{ Kid, X, Y string } `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS = %s (%v)", doc, err)
	}
	enc := base64.RawURLEncoding
	x, _ := enc.DecodeString(set.Keys[0].X)
	y, _ := enc.DecodeString(set.Keys[0].Y)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndexByte(tok, '.')
	sig, err := enc.DecodeString(tok[i+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature is %d bytes (%v), want 64 (r||s)", len(sig), err)
	}
	h := sha256.Sum256([]byte(tok[:i]))
	if !ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("crypto/ecdsa rejects the token signature")
	}
	h[0] ^= 1
	if ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("crypto/ecdsa accepts a wrong digest")
	}
}

func TestJWKSShape(t *testing.T) {
	t.Parallel()
	ks := newSet(t)
	prev := newKey(t)
	if err := ks.Add(prev); err != nil {
		t.Fatal(err)
	}
	if err := ks.Add(prev); !errors.Is(err, ear.ErrKey) {
		t.Errorf("Add(duplicate) = %v, want ErrKey", err)
	}
	doc, err := ks.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var set map[string][]map[string]string
	if err := json.Unmarshal(doc, &set); err != nil || len(set) != 1 || len(set["keys"]) != 2 {
		t.Fatalf("JWKS = %s (%v)", doc, err)
	}
	for i, k := range set["keys"] {
		want := ks.Keys()[i].ID()
		if k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || k["use"] != "sig" || k["kid"] != want ||
			len(k) != 7 {
			t.Errorf("JWKS key %d = %v", i, k)
		}
		if _, ok := k["d"]; ok {
			t.Errorf("JWKS key %d has a private part", i)
		}
	}
	// kid is the RFC 7638 thumbprint as go-jose computes it.
	var js jose.JSONWebKeySet
	if err := json.Unmarshal(doc, &js); err != nil {
		t.Fatal(err)
	}
	for i, k := range js.Keys {
		tp, err := k.Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if got := base64.RawURLEncoding.EncodeToString(tp); got != k.KeyID {
			t.Errorf("key %d kid %s, go-jose thumbprint %s", i, k.KeyID, got)
		}
		// And as RFC 7638 §3 builds it, independently of go-jose: SHA-256
		// of the required members in lexicographic order, no whitespace.
		raw, err := k.Key.(*ecdsa.PublicKey).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		enc := base64.RawURLEncoding
		member := `{"crv":"P-256","kty":"EC","x":"` + enc.EncodeToString(raw[1:33]) + `","y":"` + enc.EncodeToString(raw[33:65]) + `"}`
		sum := sha256.Sum256([]byte(member))
		if got := enc.EncodeToString(sum[:]); got != k.KeyID {
			t.Errorf("key %d kid %s, RFC 7638 thumbprint %s", i, k.KeyID, got)
		}
	}
}

// TestPEMRoundTrip: a key survives MarshalPEM / ParseKeyPEM with its kid.
func TestPEMRoundTrip(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	pemBytes, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ear.ParseKeyPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	if k2.ID() != k.ID() || !k2.CanSign() {
		t.Errorf("ParseKeyPEM(MarshalPEM) = %v, want %v with private key", k2, k)
	}
}

func TestJWKSRejects(t *testing.T) {
	t.Parallel()
	ks := newSet(t)
	doc, _ := ks.JWKS()
	var m map[string][]map[string]string
	_ = json.Unmarshal(doc, &m)
	mut := func(f func(k map[string]string)) []byte {
		k := map[string]string{}
		for a, b := range m["keys"][0] {
			k[a] = b
		}
		f(k)
		b, _ := json.Marshal(map[string]any{"keys": []any{k}})
		return b
	}
	tests := []struct {
		name string
		doc  []byte
	}{
		{"private d", mut(func(k map[string]string) { k["d"] = "AAAA" })},
		{"wrong kid", mut(func(k map[string]string) { k["kid"] = "x" })},
		{"wrong alg", mut(func(k map[string]string) { k["alg"] = "HS256" })},
		{"wrong use", mut(func(k map[string]string) { k["use"] = "enc" })},
		{"wrong crv", mut(func(k map[string]string) { k["crv"] = "P-384" })},
		{"off curve", mut(func(k map[string]string) { k["y"] = k["x"] })},
		{"not json", []byte("{")},
		{"trailing", append(doc, []byte(" {}")...)},
		{"duplicate", []byte(`{"keys":[` + string(doc[9:len(doc)-2]) + `,` + string(doc[9:len(doc)-2]) + `]}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if s, err := ear.ParseJWKS(tc.doc); !errors.Is(err, ear.ErrMalformed) || s != nil {
				t.Errorf("ParseJWKS(%s) = %v, %v; want ErrMalformed", tc.doc, s, err)
			}
		})
	}
	rp, err := ear.ParseJWKS(doc)
	if err != nil || rp.Active() != nil || len(rp.Keys()) != 1 {
		t.Fatalf("ParseJWKS(good) = %v, %v", rp, err)
	}
	if _, err := ear.NewSigner(rp); !errors.Is(err, ear.ErrKey) {
		t.Errorf("NewSigner(verification-only set) = %v, want ErrKey", err)
	}
}

func TestSignRejects(t *testing.T) {
	t.Parallel()
	s := newSigner(t, newSet(t))
	good := sampleClaims("")
	tests := []struct {
		name string
		mut  func(*ear.Claims)
	}{
		{"no submods", func(c *ear.Claims) { c.Submods = nil }},
		{"bad status", func(c *ear.Claims) { c.Submods = map[string]ear.Appraisal{"tdx": {Status: 7}} }},
		{"claims not object", func(c *ear.Claims) {
			c.Submods = map[string]ear.Appraisal{"tdx": {Claims: json.RawMessage(`[1]`)}}
		}},
		{"exp before iat", func(c *ear.Claims) { c.IssuedAt, c.ExpiresAt = 10, 5 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := good
			tc.mut(&c)
			if tok, out, err := s.Sign(c); !errors.Is(err, ear.ErrClaims) || tok != "" || out != nil {
				t.Errorf("Sign(%s) = %q, %v, %v; want ErrClaims", tc.name, tok, out, err)
			}
		})
	}
}

// TestLowS: tokens are signed in low-s form, and a token whose s was
// replaced by n − s (an equally valid ECDSA signature) is rejected.
func TestLowS(t *testing.T) {
	t.Parallel()
	k, err := ear.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ear.NewKeySet(k)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ear.NewSigner(keys)
	if err != nil {
		t.Fatal(err)
	}
	n := elliptic.P256().Params().N
	half := new(big.Int).Rsh(n, 1)
	for i := range 32 { // about half of raw ECDSA signatures are high-s
		tok, _, err := s.Sign(ear.Claims{Submods: map[string]ear.Appraisal{ear.SubmodTDX: {Status: ear.StatusAffirming}}})
		if err != nil {
			t.Fatal(err)
		}
		dot := strings.LastIndexByte(tok, '.')
		sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
		if err != nil || len(sig) != 64 {
			t.Fatalf("signature %q", tok[dot+1:])
		}
		sv := new(big.Int).SetBytes(sig[32:])
		if sv.Cmp(half) > 0 {
			t.Fatalf("token %d signed with a high s", i)
		}
		if _, err := ear.Verify(tok, keys, ear.VerifyOptions{}); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		sv.Sub(n, sv)
		sv.FillBytes(sig[32:])
		high := tok[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
		if _, err := ear.Verify(high, keys, ear.VerifyOptions{}); !errors.Is(err, ear.ErrSignature) {
			t.Fatalf("token %d with s replaced by n-s: %v, want ErrSignature", i, err)
		}
	}
}

// TestCheckSignedClaims covers KeyID and Claims.Check, the checks a
// signer applies to a token it signed itself: the kid is the signing
// key's, and Check rejects what Verify rejects in the claims (expiry,
// issue time, nonce, issuer) and accepts what Verify accepts.
func TestCheckSignedClaims(t *testing.T) {
	ks := newSet(t)
	s := newSigner(t, ks)
	tok, c, err := s.Sign(sampleClaims("n-1"))
	if err != nil {
		t.Fatal(err)
	}
	kid, err := ear.KeyID(tok)
	if err != nil || kid != ks.Active().ID() {
		t.Fatalf("KeyID = %q, %v; want %q", kid, err, ks.Active().ID())
	}
	if _, err := ear.KeyID("no-dots"); !errors.Is(err, ear.ErrMalformed) {
		t.Fatalf("KeyID of a non-JWS: %v", err)
	}
	at := func(d time.Duration) func() time.Time { return func() time.Time { return t0.Add(d) } }
	for _, tc := range []struct {
		opts ear.VerifyOptions
		want error
	}{
		{ear.VerifyOptions{Now: at(time.Minute), ExpectedNonce: "n-1", ExpectedIssuer: "https://verifier.example"}, nil},
		{ear.VerifyOptions{Now: at(6 * time.Minute)}, ear.ErrExpired},
		{ear.VerifyOptions{Now: at(-time.Minute)}, ear.ErrNotYetValid},
		{ear.VerifyOptions{Now: at(0), ExpectedNonce: "n-2"}, ear.ErrNonce},
		{ear.VerifyOptions{Now: at(0), ExpectedIssuer: "other"}, ear.ErrIssuer},
	} {
		err := c.Check(tc.opts)
		_, verr := ear.Verify(tok, ks, tc.opts)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) || !errors.Is(verr, tc.want) || (verr == nil) != (err == nil) {
			t.Errorf("Check = %v, Verify = %v; want %v", err, verr, tc.want)
		}
	}
}
