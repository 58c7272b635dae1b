package protocol

import (
	"encoding/json"
	"errors"
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
