package pccs

import (
	"strings"
	"testing"
)

// FuzzParseRegistration: an accepted registration has Intel's shapes
// (upper-case hex of the schema's lengths), and either a platform manifest
// or the three fields a PCK certificate request needs.
func FuzzParseRegistration(f *testing.F) {
	ppid := strings.Repeat("a5", 384)
	for _, s := range []string{
		`{"qe_id":"ABCD","pce_id":"0000","cpu_svn":"0102030405060708090a0b0c0d0e0f10","pce_svn":"0d00","enc_ppid":"` + ppid + `"}`,
		`{"qe_id":"AB","pce_id":"0000","platform_manifest":"00ff"}`,
		`{"qe_id":"","pce_id":"0000"}`, `[1]`, `{"qe_id":5}`,
	} {
		f.Add([]byte(s))
	}
	isHex := func(s string, n int) bool {
		if len(s) != n {
			return false
		}
		for _, c := range s {
			if !strings.ContainsRune("0123456789ABCDEF", c) {
				return false
			}
		}
		return true
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseRegistration(body)
		if err != nil {
			return
		}
		if r.QEID == "" || len(r.QEID) > 260 || !isHex(r.PCEID, 4) {
			t.Fatalf("accepted %+v", r)
		}
		if r.PlatformManifest == "" {
			if !isHex(r.CPUSVN, 32) || !isHex(r.PCESVN, 4) || !isHex(r.EncPPID, 768) {
				t.Fatalf("accepted without a usable certificate request: %+v", r)
			}
			_ = r.pckCertRequest() // must not panic
		}
	})
}
