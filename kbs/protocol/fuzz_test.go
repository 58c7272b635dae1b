package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"testing"
)

func FuzzKBSRequest(f *testing.F) {
	for _, s := range []string{
		`{"version": "0.4.0", "tee": "tdx", "extra-params": {"supported-hash-algorithms": ["sha256","sha384"]}}`,
		`{"version":"0.4.0","tee":"tdx","extra-params":""}`,
		`{"version":"0.4.0","tee":"se"}`,
		`{"version":"0.3.0","tee":"tdx"}`,
		`{"version":"0.4.0","tee":"nope"}`,
		`{"version":"0.4.0","tee":"tdx","extra-params":null}`,
		`{"Version":"0.4.0","TEE":"tdx"}`,
		`{"version":"0.4.0","tee":"tdx"}x`,
		`[1,2`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRequest(data)
		if err != nil {
			if r != nil {
				t.Fatal("request and error")
			}
			n := 0
			for _, k := range []error{ErrMalformed, ErrVersion, ErrTee} {
				if errors.Is(err, k) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %v wraps %d categories", err, n)
			}
			return
		}
		if r.Version != Version || !r.Tee.Valid() || len(r.ExtraParams) == 0 {
			t.Fatalf("accepted %+v", r)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		r2, err := ParseRequest(b)
		if err != nil || r2.Version != r.Version || r2.Tee != r.Tee {
			t.Fatalf("re-parse of %s: %+v, %v", b, r2, err)
		}
	})
}

// FuzzDecodeStrict: decodeStrict's json.Unmarshal accepts exactly what
// json.Decoder with the trailing-data check accepts (and decodes the same
// attestation), so the Decoder only words refusals.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		`{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"AA","y":"AA"}},"tee-evidence":{"primary_evidence":{"quote":"AA=="},"additional_evidence":""}}`,
		`{"runtime-data":{"nonce":"n"}} `, ` {} `, `{}x`, `{} {}`, `{}` + "\x00", `[]`, `1`, `"a"`, `null`, ``, ` `, `{"tee-evidence":{"primary_evidence":}}`,
		`{"RUNTIME-DATA":{"Nonce":"n"}}`, `{"runtime-data":{"nonce":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got, want Attestation
		err := decodeStrict(data, &got, "attestation")
		dec := json.NewDecoder(bytes.NewReader(data))
		derr := dec.Decode(&want)
		if derr == nil {
			if _, terr := dec.Token(); terr != io.EOF {
				derr = errors.New("trailing data")
			}
		}
		if (err == nil) != (derr == nil) {
			t.Fatalf("%q: decodeStrict error %v, Decoder error %v", data, err, derr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: decodeStrict %+v, Decoder %+v", data, got, want)
		}
	})
}
