package verifiersvc

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
)

// decodeStrict is what decodeJSON does with encoding/json.
func decodeStrict(b []byte) (NativeRequest, bool) {
	var r NativeRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return r, false
	}
	return r, true
}

var nativeDecodeSeeds = []string{
	`{"quote":"00ff"}`,
	` {"quote" : "AAEC+/==", "nonce":"0x01", "policy_id":"default", "details":true}` + "\n",
	`{"quote":"00","cc_eventlog":"0a0b","details":false}`,
	`{"dstack":{"quote":"00"}}`,
	`{"quote":"a\"b"}`,
	`{"quote":"00","quote":"01"}`,
	`{"Quote":"00"}`,
	`{"quote":null}`,
	`{"quote":"00"} {}`,
	`{"quote":"00",}`,
	`{"details":tru}`,
	`{}`,
	`{"quote":"é"}`,
	`{"unknown":"x"}`,
}

// TestNativeDecodeFast checks that the fast path takes the usual bodies
// and leaves the others to encoding/json.
func TestNativeDecodeFast(t *testing.T) {
	q := strings.Repeat("0a", 5000)
	for _, tc := range []struct {
		body string
		fast bool
	}{
		{`{"quote":"` + q + `"}`, true},
		{nativeDecodeSeeds[1], true},
		{nativeDecodeSeeds[2], true},
		{`{"dstack":{"quote":"00"}}`, false},
		{`{"quote":"a\"b"}`, false},
		{`{"quote":"00","quote":"01"}`, false},
		{`{"Quote":"00"}`, false},
		{`{"quote":"00"} {}`, false},
		{`{"quote":"00",}`, false},
		{`{}`, false},
	} {
		var r NativeRequest
		if got := r.decodeFast([]byte(tc.body)); got != tc.fast {
			t.Errorf("decodeFast(%.60q) = %v, want %v", tc.body, got, tc.fast)
		}
		if !tc.fast && !reflect.DeepEqual(r, NativeRequest{}) {
			t.Errorf("decodeFast(%.60q) refused but changed the request: %+v", tc.body, r)
		}
	}
}

// FuzzNativeDecodeFast: wherever decodeFast takes a body, encoding/json
// (as decodeJSON runs it) takes it too and decodes the same request.
func FuzzNativeDecodeFast(f *testing.F) {
	for _, s := range nativeDecodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast NativeRequest
		if !fast.decodeFast(b) {
			if !reflect.DeepEqual(fast, NativeRequest{}) {
				t.Fatalf("refused but changed the request: %+v", fast)
			}
			return
		}
		ref, ok := decodeStrict(b)
		if !ok {
			t.Fatalf("decodeFast took %q, encoding/json refuses it", b)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Fatalf("%q: decodeFast %+v, encoding/json %+v", b, fast, ref)
		}
	})
}
