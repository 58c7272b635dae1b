package kbs

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"testing"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/kbs/protocol"
)

// FuzzParseSample: the RVPS sample payload parser never panics, and what
// it accepts re-encodes to a payload it accepts with the same values.
func FuzzParseSample(f *testing.F) {
	for _, s := range []string{
		`{"tdx.mr_td":["00112233"]}`,
		`{"dstack.compose_hash":["0xABCD"],"tdx.rtmr_1":["aa","bb"]}`,
		`{}`, `{"a":[]}`, `{"a":[""]}`, `[]`, `{"a":["x"]} {}`, `{"a b":["1"]}`,
	} {
		f.Add(base64.StdEncoding.EncodeToString([]byte(s)))
		f.Add(base64.RawURLEncoding.EncodeToString([]byte(s)))
	}
	f.Add("not base64!")
	f.Fuzz(func(t *testing.T, payload string) {
		vals, err := parseSample(payload)
		if err != nil {
			return
		}
		m := map[string][]string{}
		for _, v := range vals {
			if v.Name == "" || len(v.Values) == 0 {
				t.Fatalf("accepted an empty entry %+v", v)
			}
			m[v.Name] = v.Values
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseSample(base64.RawURLEncoding.EncodeToString(b))
		if err != nil || len(again) != len(vals) {
			t.Fatalf("re-encoded payload: %d values, %v", len(again), err)
		}
		for _, v := range again {
			if !slices.Equal(v.Values, m[v.Name]) {
				t.Fatalf("%s: %v, then %v", v.Name, m[v.Name], v.Values)
			}
		}
	})
}

// FuzzDstackEvidence: any event_log string either is refused or becomes
// dstack evidence the dstack parser handles without panicking.
func FuzzDstackEvidence(f *testing.F) {
	f.Add(`[]`, ``)
	f.Add(`[{"imr":3,"event_type":134217729,"digest":"00","event":"app-id","event_payload":"00"}]`, `{"os_image_hash":"00"}`)
	f.Add(`{"a":1}`, `x`)
	f.Add(`"[]"`, ``)
	f.Fuzz(func(t *testing.T, log, vm string) {
		doc, err := dstackEvidence([]byte{4, 0, 2, 0}, &protocol.TDXEvidence{EventLog: log, VMConfig: vm})
		if err != nil {
			return
		}
		if !json.Valid(doc) {
			t.Fatalf("invalid JSON %q", doc)
		}
		_, _ = dstack.ParseEvidence(doc)
	})
}
