package cli

import (
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/tpm"
	"github.com/tdproof/tdproof/tpmsim"
)

// TestDstackVerifyGCPSimulated: dstack verify on simulated dstack-gcp-tdx
// evidence (dcaptest TDX quote, tpmsim vTPM quote) takes its verdict from
// the service's pipeline: WARNING unpinned, OK with MRTD, PCR0 and PCR2
// pinned, not authentic when the firmware reference value differs from
// the quoted PCR0 or without the vTPM's test CA.
func TestDstackVerifyGCPSimulated(t *testing.T) {
	f := newFixture(t, dcaptest.TDXQuoteV4)
	s, err := tpmsim.New(f.Now, false)
	if err != nil {
		t.Fatal(err)
	}
	att, _, err := s.DstackGCP(f, tpmsim.GCPOptions{Events: []dstack.RuntimeEvent{{Name: "app-id", Payload: []byte("0123456789abcdefghij")}, {Name: "system-ready"}}})
	if err != nil {
		t.Fatal(err)
	}
	fe := writeFixture(t, f)
	dir := t.TempDir()
	file := writeFile(t, dir, "gcp.bin", att)
	root := writeFile(t, dir, "tpm-root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Root.Raw}))
	inter := writeFile(t, dir, "tpm-inter.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Intermediate.Raw}))
	base := []string{"dstack", "verify", file, "--collateral", fe.collateral, "--at", fe.at, "--trusted-root", fe.rootPEM,
		"--tpm-trusted-root", root, "--tpm-intermediate", inter}
	args := append(append([]string{}, base...), "--format", "json")
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	var out dstackOutput
	decodeJSON(t, o, &out)
	if out.Verdict != verdictWarning || out.Result.TEEVariant != dstack.TEEVariantGCPTDX || out.Result.Dstack == nil || out.Result.Dstack.GCP == nil {
		t.Fatalf("%+v", out)
	}
	var pcr2 [32]byte
	for _, d := range tpmsim.DefaultPCR2Events() {
		pcr2 = tpm.Extend(pcr2, d)
	}
	refs := func(pcr0 string) string {
		return writeFile(t, t.TempDir(), "refs.json", []byte(`{"media_type":"`+RefValuesMediaType+`","values":[`+
			`{"name":"tdx.mr_td","values":["`+hex.EncodeToString(f.QuoteSpec.TD.MRTD[:])+`"]},`+
			`{"name":"tpm.pcr0","values":["`+pcr0+`"]},`+
			`{"name":"tpm.pcr2","values":["`+hex.EncodeToString(pcr2[:])+`"]}]}`))
	}
	args = append(append([]string{}, base...), "--refvalues", refs(dstack.DefaultGCPFirmwarePCR0))
	o = invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	if !strings.HasPrefix(o.stdout, "OK: affirming") {
		t.Errorf("pinned: %s", o.stdout)
	}
	args = append(append([]string{}, base...), "--refvalues", refs(strings.Repeat("ab", 32)))
	o = invoke(t, nil, args...)
	o.wantCode(t, exitNotAuthentic, args...)
	if !strings.Contains(o.stdout, "not an accepted GCP firmware") {
		t.Errorf("firmware reference: %s", o.stdout)
	}
	args = base[:len(base)-4]
	invoke(t, nil, args...).wantCode(t, exitNotAuthentic, args...)
}
