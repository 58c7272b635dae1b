package protocol

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	r, err := ParseRequest([]byte(`{"version": "0.4.0", "tee": "tdx", "extra-params": {"supported-hash-algorithms": ["sha256","sha384","sha512"]}}`))
	if err != nil || r.Tee != TeeTdx || r.Version != Version {
		t.Fatalf("%+v, %v", r, err)
	}
	r, err = ParseRequest([]byte(`{"version":"0.4.0","tee":"tdx"}`))
	if err != nil || string(r.ExtraParams) != `""` {
		t.Fatalf("missing extra-params: %+v, %v", r, err)
	}
	b, _ := json.Marshal(NewRequest(TeeTdx))
	if string(b) != `{"version":"0.4.0","tee":"tdx","extra-params":""}` {
		t.Fatalf("marshal %s", b)
	}
	b, _ = json.Marshal(Request{Version: Version, Tee: TeeTdx})
	if string(b) != `{"version":"0.4.0","tee":"tdx","extra-params":""}` {
		t.Fatalf("marshal nil extra %s", b)
	}
	bad := map[string]error{
		`{"version":"0.3.0","tee":"tdx"}`:         ErrVersion,
		`{"version":"0.4.0-rc1","tee":"tdx"}`:     ErrVersion,
		`{"tee":"tdx"}`:                           ErrVersion,
		`{"version":"0.4.0","tee":"TDX"}`:         ErrTee,
		`{"version":"0.4.0","tee":""}`:            ErrTee,
		`{"version":"0.4.0","tee":1}`:             ErrMalformed,
		`{"version":"0.4.0","tee":"tdx"} {}`:      ErrMalformed,
		`{"version":"0.4.0","tee":"tdx","extra-p`: ErrMalformed,
		`[]`: ErrMalformed,
		``:   ErrMalformed,
	}
	for in, want := range bad {
		if _, err := ParseRequest([]byte(in)); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", in, err, want)
		}
	}
	var pe *Error
	_, err = ParseRequest([]byte(`{"version":`))
	if !errors.As(err, &pe) || pe.Kind != ErrMalformed {
		t.Fatalf("%T %v", err, err)
	}
	if _, err := ParseRequest(make([]byte, MaxMessageSize+1)); !errors.Is(err, ErrMalformed) {
		t.Fatal("oversized request accepted")
	}
}

func TestChallenge(t *testing.T) {
	c, err := NewChallenge()
	if err != nil {
		t.Fatal(err)
	}
	n, err := base64.StdEncoding.DecodeString(c.Nonce)
	if err != nil || len(n) != NonceSize {
		t.Fatalf("nonce %q", c.Nonce)
	}
	b, _ := json.Marshal(c)
	if string(b) != `{"nonce":"`+c.Nonce+`","extra-params":""}` {
		t.Fatalf("marshal %s", b)
	}
	got, err := ParseChallenge(b)
	if err != nil || got.Nonce != c.Nonce {
		t.Fatalf("%+v %v", got, err)
	}
	se, err := ParseChallenge([]byte(`{"nonce":"abc","extra-params":{"selected-hash-algorithm":"sha512"}}`))
	if err != nil || !strings.Contains(string(se.ExtraParams), "sha512") {
		t.Fatalf("%+v %v", se, err)
	}
	if _, err := ParseChallenge([]byte(`{"extra-params":""}`)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty nonce: %v", err)
	}
}

func TestSessionID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$`)
	a, _ := NewSessionID()
	b, _ := NewSessionID()
	if !re.MatchString(a) || a == b {
		t.Fatalf("session ids %q %q", a, b)
	}
}

func attestationJSON(k JWK, nonce string) string {
	kb, _ := json.Marshal(k)
	return `{
  "init-data":   {"format": "toml", "body": "version = \"0.1.0\""},
  "runtime-data": {"nonce": "` + nonce + `", "tee-pubkey": ` + string(kb) + `},
  "tee-evidence": {"primary_evidence": {"quote":"AAAA","cc_eventlog":null},
                   "additional_evidence": ""}
}`
}

func TestParseAttestation(t *testing.T) {
	_, k := testEC(t)
	a, err := ParseAttestation([]byte(attestationJSON(k, "N")))
	if err != nil {
		t.Fatal(err)
	}
	if a.InitData == nil || a.InitData.Format != "toml" || a.RuntimeData.TeePubKey != k {
		t.Fatalf("%+v", a)
	}
	var ev TDXEvidence
	if err := json.Unmarshal(a.TeeEvidence.PrimaryEvidence, &ev); err != nil || ev.Quote != "AAAA" || ev.CCEventLog != nil {
		t.Fatalf("evidence %+v %v", ev, err)
	}
	rd, err := a.ReportData()
	want, _ := ReportData("N", k, "")
	if err != nil || rd != want {
		t.Fatal("Attestation.ReportData differs")
	}
	b, _ := json.Marshal(Attestation{RuntimeData: a.RuntimeData, TeeEvidence: a.TeeEvidence})
	if strings.Contains(string(b), "init-data") {
		t.Fatalf("absent init-data marshalled: %s", b)
	}
	if _, err := ParseAttestation(b); err != nil {
		t.Fatalf("re-parse: %v", err)
	}

	bad := map[string]error{
		attestationJSON(k, ""): ErrMalformed,
		strings.Replace(attestationJSON(k, "N"), `"kty":"EC"`, `"kty":"oct"`, 1):                   ErrKey,
		strings.Replace(attestationJSON(k, "N"), `"kty":"EC",`, ``, 1):                             ErrKey,
		strings.Replace(attestationJSON(k, "N"), `"alg":"ECDH-ES+A256KW",`, ``, 1):                 ErrKey,
		strings.Replace(attestationJSON(k, "N"), `"crv":"P-256"`, `"crv":1`, 1):                    ErrKey,
		strings.Replace(attestationJSON(k, "N"), `"crv":"P-256"`, `"crv":"P-521"`, 1):              ErrKey,
		strings.Replace(attestationJSON(k, "N"), `{"quote":"AAAA","cc_eventlog":null}`, `null`, 1): ErrMalformed,
		strings.Replace(attestationJSON(k, "N"), `"format": "toml", `, ``, 1):                      ErrMalformed,
		`{"runtime-data": 5}`: ErrMalformed,
	}
	for in, want := range bad {
		if _, err := ParseAttestation([]byte(in)); !errors.Is(err, want) {
			t.Errorf("%s:\n%v, want %v", in, err, want)
		}
	}
}

func TestJWKJSON(t *testing.T) {
	_, r := testRSA(t)
	b, err := json.Marshal(r)
	if err != nil || !strings.HasPrefix(string(b), `{"kty":"RSA","alg":"RSA-OAEP-256","n":"`) || !strings.HasSuffix(string(b), `","e":"AQAB"}`) {
		t.Fatalf("%s %v", b, err)
	}
	var back JWK
	if err := json.Unmarshal(b, &back); err != nil || back != r {
		t.Fatalf("round trip %v", err)
	}
	akp := `{"kty":"AKP","alg":"ML-KEM-768","pub":"AAAA"}`
	if err := json.Unmarshal([]byte(akp), &back); err != nil || back.Pub != "AAAA" {
		t.Fatalf("AKP %v", err)
	}
	if b, _ := json.Marshal(back); string(b) != akp {
		t.Fatalf("AKP marshal %s", b)
	}
	if _, err := json.Marshal(JWK{}); !errors.Is(err, ErrKey) {
		t.Fatalf("empty JWK marshal: %v", err)
	}
	if _, err := PublicJWK("x"); !errors.Is(err, ErrKey) {
		t.Fatal("PublicJWK accepted a string")
	}
	if _, _, err := GenerateKey(1024); !errors.Is(err, ErrKey) {
		t.Fatal("GenerateKey accepted 1024 bits")
	}
	ecPriv, ecJWK := testEC(t)
	dk, _ := ecPriv.ECDH()
	if j, err := PublicJWK(dk.PublicKey()); err != nil || j != ecJWK {
		t.Fatalf("ecdh JWK %v", err)
	}
}

func TestErrorInfo(t *testing.T) {
	e := NewErrorInfo(ProblemPolicyDeny, "denied")
	b, _ := json.Marshal(e)
	if string(b) != `{"type":"https://github.com/confidential-containers/kbs/errors/PolicyDeny","detail":"denied"}` {
		t.Fatalf("%s", b)
	}
	if p, ok := e.Problem(); !ok || p != ProblemPolicyDeny || p.HTTPStatus() != 401 {
		t.Fatal("Problem")
	}
	if ProblemPluginNotFound.HTTPStatus() != 404 {
		t.Fatal("PluginNotFound status")
	}
	if _, ok := (ErrorInfo{Type: "about:blank"}).Problem(); ok {
		t.Fatal("foreign type accepted")
	}
	_, err := ParseRequest([]byte(`{"version":"1.0.0","tee":"tdx"}`))
	for _, c := range []struct {
		err  error
		want ProblemType
	}{
		{err, ProblemSerdeError},
		{newErr(ErrKey, "", nil), ProblemExtractTeePubKeyFailed},
		{newErr(ErrJWE, "", nil), ProblemJweError},
		{newErr(ErrPath, "", nil), ProblemInvalidRequestPath},
	} {
		info, ok := ErrorInfoFor(c.err)
		if p, _ := info.Problem(); !ok || p != c.want || info.Detail == "" {
			t.Errorf("%v → %+v", c.err, info)
		}
	}
	if _, ok := ErrorInfoFor(errors.New("other")); ok {
		t.Fatal("foreign error mapped")
	}
}

func TestResourceID(t *testing.T) {
	r, err := ParseResourceID("/kbs/v0/resource/default/key/image-1.0")
	if err != nil || r != (ResourceID{"default", "key", "image-1.0"}) {
		t.Fatalf("%+v %v", r, err)
	}
	if p, err := r.Path(); err != nil || p != "/kbs/v0/resource/default/key/image-1.0" {
		t.Fatalf("%s %v", p, err)
	}
	for _, bad := range []string{"a/b", "a/b/c/d", "a//c", "../b/c", "a/./c", "a/b/c%2f", "a/b/ c", "/kbs/v0/resource/a/b"} {
		if _, err := ParseResourceID(bad); !errors.Is(err, ErrPath) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := (ResourceID{"a", "b", strings.Repeat("x", 256)}).Path(); !errors.Is(err, ErrPath) {
		t.Fatal("long segment accepted")
	}
}
