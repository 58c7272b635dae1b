package jcs_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tdproof/tdproof/jcs"
)

func FuzzJCS(f *testing.F) {
	seeds := []string{
		`{"b":1,"a":"test","c":{"d":"e"}}`,
		`{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"literals":[null,true,false]}`,
		`{"\u20ac":"Euro","\r":"CR","\ufb33":"Dalet","1":"One","\ud83d\ude00":"Emoji","\u0080":"Ctl","\u00f6":"o"}`,
		`"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"`,
		`[1e21,1e-7,5e-324,-0,1.7976931348623157e308,9007199254740993]`,
		`{"name":"compose-hash","payload":"abcd","type":134217729}`,
		` [ {} , [ ] , "" , 0 ] `,
		`{"a":1,"a":2}`,
		`"\ud800"`,
		"1e400",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := jcs.Canonicalize(in)
		if err != nil {
			if out != nil {
				t.Fatalf("Canonicalize returned output %q with error %v", out, err)
			}
			return
		}
		again, err := jcs.Canonicalize(out)
		if err != nil {
			t.Fatalf("Canonicalize(canonical %q): %v", out, err)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("not idempotent:\n%q\n%q", out, again)
		}
		if !json.Valid(out) {
			t.Fatalf("output is not valid JSON: %q", out)
		}
		var vin, vout any
		if err := json.Unmarshal(in, &vin); err != nil {
			t.Fatalf("json.Unmarshal(input) failed after Canonicalize succeeded: %v", err)
		}
		if err := json.Unmarshal(out, &vout); err != nil {
			t.Fatalf("json.Unmarshal(output): %v", err)
		}
		if !reflect.DeepEqual(vin, vout) {
			t.Fatalf("decoded values differ:\nin  %#v\nout %#v", vin, vout)
		}
	})
}
