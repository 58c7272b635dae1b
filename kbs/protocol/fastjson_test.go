package protocol

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// fastSeeds are attestations and evidence in the usual form and in forms
// the fast path must leave to encoding/json (or refuse as it does).
func fastSeeds(tb testing.TB) []string {
	tb.Helper()
	quote := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("tdx quote bytes ", 300)))
	ev, err := json.Marshal(TDXEvidence{Quote: quote})
	if err != nil {
		tb.Fatal(err)
	}
	ccel := "AAAA"
	ev2, _ := json.Marshal(TDXEvidence{Quote: quote, CCEventLog: &ccel, EventLog: `[{"imr":0}]`, VMConfig: `{"a":1}`})
	jwk := `{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"` + strings.Repeat("A", 43) + `","y":"` + strings.Repeat("B", 43) + `"}`
	att := func(primary string) string {
		return `{"runtime-data":{"nonce":"bm9uY2U=","tee-pubkey":` + jwk + `},"tee-evidence":{"primary_evidence":` + primary + `,"additional_evidence":""}}`
	}
	return []string{
		att(string(ev)), att(string(ev2)), att(`null`), att(`"x"`), att(`[1, {"a": [true, false, null, -1.5e+3]}]`),
		att(` { "quote" : "AA==" , "cc_eventlog" : null } `),
		` {"tee-evidence":{},"runtime-data":{"nonce":"n"}} `,
		`{"runtime-data":{"nonce":"n"},"tee-evidence":{"primary_evidence":{"quote":"A"},"additional_evidence":null}}`,
		`{"runtime-data":{"nonce":"n"},"tee-evidence":{"primary_evidence":{"quote":"A"},"additional_evidence":"{\"a\":1}"}}`,
		`{"runtime-data":{"nonce":"n"},"tee-evidence":{"primary_evidence":{"quote":"A"}},"init-data":{"format":"toml","body":"x"}}`,
		`{"Runtime-Data":{"nonce":"n"},"tee-evidence":{"primary_evidence":{}}}`,
		`{"runtime-data":{"nonce":"n"},"runtime-data":{"nonce":"m"}}`,
		`{"runtime-data":{"nonce":"n"},"tee-evidence":{"primary_evidence":{},"primary_evidence":[]}}`,
		`{"runtime-data":null,"tee-evidence":null}`, `{"runtime-data":{"nonce":1}}`, `{"runtime-data":{"nonce":"n"}}x`,
		`{"tee-evidence":{"primary_evidence":{"a":"\u0041\ud800"}}}`, "{\"tee-evidence\":{\"primary_evidence\":\"\xff\"}}",
		`{"tee-evidence":{"primary_evidence":01}}`, `{"tee-evidence":{"primary_evidence":[1,]}}`, `{"tee-evidence":{"primary_evidence":"\x"}}`,
		`{}`, ``, `[]`, `{`, `{"tee-evidence":{"primary_evidence":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}}`,
		string(ev), string(ev2), `{"quote":"A","cc_eventlog":"B"}`, `{"Quote":"A"}`, `{"quote":"A","quote":"B"}`, `{"quote":null}`,
		`{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"RSA","alg":"RSA-OAEP-256","n":"AQ","e":"AQAB","x":"ignored"}}}`,
		`{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"AKP","alg":"ML-KEM-768","pub":"AA"}}}`,
		`{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"EC","crv":"P-256","alg":"a","x":"A"}}}`,
		`{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"OKP","crv":"X25519"}}}`,
		`{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":null}}}`, `{"runtime-data":{"nonce":"n","tee-pubkey":null}}`,
		`{"runtime-data":{"nonce":"n","tee-pubkey":{"KTY":"EC","crv":"P-256","alg":"a","x":"A","y":"B"}}}`,
		`{"runtime-data":{"nonce":null,"tee-pubkey":{"kty":"EC","crv":"P-256","alg":"a","x":"A","y":"B","kty":"RSA"}}}`,
		`{"quote":"A\u00e9"}`, `{"quote":1}`, `{"quote":"A","other":2}`, `{"cc_eventlog":"` + "\x7f" + `"}`,
	}
}

// FuzzAttestationFast: where attestationFast answers, decodeStrict
// accepts the message and decodes the same Attestation.
func FuzzAttestationFast(f *testing.F) {
	for _, s := range fastSeeds(f) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := attestationFast(data)
		if !ok {
			return
		}
		var want Attestation
		if err := decodeStrict(data, &want, "attestation"); err != nil {
			t.Fatalf("%q: fast path decoded what decodeStrict refuses: %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast %+v, decodeStrict %+v", data, got, want)
		}
	})
}

// FuzzTDXEvidenceFast: where tdxEvidenceFast answers, json.Unmarshal
// accepts the evidence and decodes the same TDXEvidence.
func FuzzTDXEvidenceFast(f *testing.F) {
	for _, s := range fastSeeds(f) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := tdxEvidenceFast(data)
		if !ok {
			return
		}
		var want TDXEvidence
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("%q: fast path decoded what json.Unmarshal refuses: %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast %+v, json.Unmarshal %+v", data, got, want)
		}
	})
}

// TestFastPathsAnswer: the usual forms take the fast paths (which the
// fuzz targets hold equal to encoding/json).
func TestFastPathsAnswer(t *testing.T) {
	seeds := fastSeeds(t)
	for _, s := range seeds[:3] {
		if _, ok := attestationFast([]byte(s)); !ok {
			t.Errorf("attestationFast(%.80s…) left to encoding/json", s)
		}
	}
	var a Attestation
	if err := json.Unmarshal([]byte(seeds[0]), &a); err != nil {
		t.Fatal(err)
	}
	ev, err := ParseTDXEvidence(a.TeeEvidence.PrimaryEvidence)
	if err != nil || ev.Quote == "" {
		t.Fatalf("ParseTDXEvidence: %v", err)
	}
	if _, ok := tdxEvidenceFast(a.TeeEvidence.PrimaryEvidence); !ok {
		t.Error("tdxEvidenceFast left the usual evidence to encoding/json")
	}
	if _, err := ParseTDXEvidence([]byte(`{"quote":1}`)); err == nil {
		t.Error("ParseTDXEvidence accepted a number as the quote")
	}
}
