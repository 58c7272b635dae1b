package verifiersvc

import (
	"encoding/json"
	"strings"
	"testing"
)

var dstackShapeSeeds = []string{
	`{"quote":"00ff","event_log":"[{\"imr\":0,\"digest\":\"00\",\"event\":\"a\\u00e9\\n\"}]","vm_config":"{\"cpu_count\":2}"}`,
	` {"quote" : "00", "debug":true, "report_data":null}` + "\n",
	`{"attestation":"0a","quote":null,"debug":false}`,
	`{"quote":"00","debug":null}`,
	`{"quote":"a\q"}`,
	`{"quote":"\u00zz"}`,
	`{"quote":"00","quote":"01"}`,
	`{"Quote":"00"}`,
	`{"quote":5}`,
	`{"quote":"00"} {}`,
	`{"quote":"00",}`,
	`{"debug":tru}`,
	`{"vm_config":{"cpu_count":2}}`,
	`{}`,
	`null`,
	"{\"quote\":\"\x01\"}",
	`{"quote":"é\xff"}`,
	`{"unknown":"x"}`,
}

// TestDstackShapeFast checks that the usual /verify bodies take the fast
// path and read their shape right.
func TestDstackShapeFast(t *testing.T) {
	log, _ := json.Marshal(strings.Repeat(`{"imr":3,"event":"app-id","digest":"`+strings.Repeat("ab", 48)+`"},`, 40))
	for _, tc := range []struct {
		body string
		want dstackShape
		fast bool
	}{
		{`{"quote":"` + strings.Repeat("0a", 5000) + `","event_log":` + string(log) + `,"vm_config":"{}"}`, dstackShape{quote: true}, true},
		{dstackShapeSeeds[1], dstackShape{quote: true, debug: true}, true},
		{dstackShapeSeeds[2], dstackShape{attestation: true}, true},
		{`{"quote":"a\q"}`, dstackShape{}, false},
		{`{"Quote":"00"}`, dstackShape{}, false},
		{`{"quote":5}`, dstackShape{}, false},
		{`{"vm_config":{"cpu_count":2}}`, dstackShape{}, false},
		{`null`, dstackShape{}, false},
	} {
		got, ok := dstackShapeFast([]byte(tc.body))
		if ok != tc.fast || ok && got != tc.want {
			t.Errorf("dstackShapeFast(%.60q) = %+v %v, want %+v %v", tc.body, got, ok, tc.want, tc.fast)
		}
	}
}

// FuzzDstackShapeFast: wherever the fast path reads a body, encoding/json
// (as /verify runs it) takes the body too, with the same shape.
func FuzzDstackShapeFast(f *testing.F) {
	for _, s := range dstackShapeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := dstackShapeFast(b)
		if !ok {
			return
		}
		var req DstackRequest
		if aerr := decodeBody(b, &req, false); aerr != nil {
			t.Fatalf("fast path took %q, encoding/json refuses it: %s", b, aerr.detail)
		}
		if ref := shapeOf(&req); ref != fast {
			t.Fatalf("%q: fast %+v, encoding/json %+v", b, fast, ref)
		}
	})
}
