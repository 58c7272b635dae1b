package kbs

import "testing"

// TestIsDstackEvidence: the shortcut for documents without an
// "attestation" member agrees with decoding them, escaped names included.
func TestIsDstackEvidence(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want bool
	}{
		{`{"attestation":"00"}`, true},
		{` { "attestation" : "00" } `, true},
		{`{"\u0061ttestation":"00"}`, true},
		{`{"attestatio\u006e":"00","x":1}`, true},
		{`{"attestation":"00","quote":"AA=="}`, false},
		{`{"attestation":"00","\u0071uote":"AA=="}`, false},
		{`{"quote":"AA==","cc_eventlog":null}`, false},
		{`{"quote":"attestation"}`, false},
		{`{"Attestation":"00"}`, false},
		{`{"attestation":`, false},
		{`[]`, false},
		{``, false},
	} {
		if got := isDstackEvidence([]byte(c.doc)); got != c.want {
			t.Errorf("isDstackEvidence(%s) = %v, want %v", c.doc, got, c.want)
		}
	}
}
