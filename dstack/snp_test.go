package dstack_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/snp"
)

// snpFixtureNow lies in the fixture VCEK's validity window (README §1).
var snpFixtureNow = time.Date(2026, 6, 18, 0, 0, 0, 0, time.UTC)

func snpFixture(t testing.TB) []byte {
	t.Helper()
	return testvectors.ReadFile(t, "multitee", "dstack", "verifier__fixtures__sev-snp-attestation.json")
}

// TestSNPFixture checks every expected value of testdata/multitee
// README §1 through the library.
func TestSNPFixture(t *testing.T) {
	ev, err := dstack.ParseEvidence(snpFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	a := ev.Attestation
	if a == nil || a.SNP == nil || a.Version != 0 || len(a.SNP.Report) != 1184 || len(a.SNP.CertChain) != 2 || len(a.RuntimeEvents) != 9 {
		t.Fatalf("decoded attestation: %+v", a)
	}
	for _, policy := range []snp.Policy{{}, {DstackCompat: true}} {
		res, err := dstack.VerifySNP(ev, dstack.SNPOptions{Now: snpFixtureNow, Policy: policy})
		if err != nil {
			t.Fatal(err)
		}
		checkSNPFixture(t, res)
	}
	// Marshal round trip: the attestation re-encodes byte for byte.
	raw, _ := hex.DecodeString(fixtureAttestationHex(t))
	out, err := a.Marshal()
	if err != nil || !bytes.Equal(out, raw) {
		t.Fatalf("re-encoding differs: %v", err)
	}
	// Version 1 (msgpack) carries the same evidence.
	a1 := *a
	a1.Version, a1.Stack = 1, dstack.StackDstack
	for _, arrays := range []bool{false, true} {
		a1.ByteArrays = arrays
		b1, err := a1.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ev1, err := dstack.ParseEvidence(b1)
		if err != nil {
			t.Fatal(err)
		}
		res, err := dstack.VerifySNP(ev1, dstack.SNPOptions{Now: snpFixtureNow})
		if err != nil {
			t.Fatal(err)
		}
		checkSNPFixture(t, res)
		if ev1.Attestation.ByteArrays != arrays {
			t.Errorf("byte arrays %v not kept", arrays)
		}
	}
	// The TDX path refuses SNP evidence.
	if _, err := dstack.VerifyEventLog(ev, dstack.Options{}); err == nil {
		t.Error("TDX verification accepted SEV-SNP evidence")
	}
}

func fixtureAttestationHex(t testing.TB) string {
	var req struct {
		Attestation string `json:"attestation"`
	}
	if err := json.Unmarshal(snpFixture(t), &req); err != nil {
		t.Fatal(err)
	}
	return req.Attestation
}

func checkSNPFixture(t *testing.T, res *dstack.Result) {
	t.Helper()
	want := map[string]string{
		"tee_variant":    "dstack-amd-sev-snp",
		"tcb_status":     "OutOfDate",
		"report_data":    hex.EncodeToString([]byte("attest-test-fixture-2026")) + strings.Repeat("00", 40),
		"os_image_hash":  "f69c8e5031ec2b269bbc08839ce02cb98ee255d695626f941f4b37b95946d352",
		"app_id":         "86e59625be93207bc2351c4d1bba20037cec8e16",
		"compose_hash":   "86e59625be93207bc2351c4d1bba20037cec8e168da6b18f559af5af657b7a23",
		"instance_id":    "d378c00e65112c4235bfeb46c6a0f98fd02145a3",
		"device_id":      "310f86e9970d2b625f8a1024f05ea59d540743de63e9017c8c4c0f50a14a10a6",
		"mr_system":      "ebf2076a74c394bd8c68ac10f341dd24e0d80f0411bbeb43f062e2b658309054",
		"mr_aggregated":  "c7a8e492fcd0167c76f3c64ff20d96648403020f80b38e9384a7432077e4a7a7",
		"key_provider":   `{"name":"kms","id":"3059301306072a8648ce3d020106082a8648ce3d0301070342000419b2457dd9b8aa6446d980f136fff7812ecd6c77740eeb0e28b10d56c0c00028a5b6e59dcea307d583bd1f70769e9c116df2bcfb1758a95d8613e7de1c8482c0"}`,
		"measurement":    "7f51e17f72a04d5422cb2c00998166536019a217376f3aa45a630e59c805a599847ff250dbffcd07e1ba639771d6f05d",
		"boot tee":       "dstack-amd-sev-snp",
		"boot tcbStatus": "OutOfDate",
	}
	got := map[string]string{
		"tee_variant":    res.TEEVariant,
		"tcb_status":     res.TCBStatus,
		"report_data":    res.ReportData.String(),
		"os_image_hash":  res.AppInfo.OSImageHash.String(),
		"app_id":         res.AppInfo.AppID.String(),
		"compose_hash":   res.AppInfo.ComposeHash.String(),
		"instance_id":    res.AppInfo.InstanceID.String(),
		"device_id":      res.AppInfo.DeviceID.String(),
		"mr_system":      res.AppInfo.MRSystem.String(),
		"mr_aggregated":  res.AppInfo.MRAggregated.String(),
		"key_provider":   string(res.AppInfo.KeyProviderInfo),
		"boot tee":       res.BootInfo.TEEVariant,
		"boot tcbStatus": res.BootInfo.TCBStatus,
	}
	if res.SNPLaunch != nil {
		got["measurement"] = res.SNPLaunch.Computed.String()
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	if !res.QuoteVerified || !res.EventLogVerified || !res.OSImageHashVerified || res.ACPITablesVerified {
		t.Errorf("flags quote %v event log %v os %v acpi %v", res.QuoteVerified, res.EventLogVerified, res.OSImageHashVerified, res.ACPITablesVerified)
	}
	if res.KeyProvider == nil || res.KeyProvider.Name != "kms" || len(res.AdvisoryIDs) != 0 || res.AdvisoryIDs == nil || len(res.AppInfo.InitScriptHashes) != 0 {
		t.Errorf("key provider %+v advisories %v init scripts %v", res.KeyProvider, res.AdvisoryIDs, res.AppInfo.InitScriptHashes)
	}
	if res.SNP == nil || res.SNP.Product != snp.ProductMilan {
		t.Errorf("snp result %+v", res.SNP)
	}
}

// TestSNPLaunchDigestChanges: the fixture's launch inputs reproduce
// MEASUREMENT; a changed kernel, cmdline, vCPU count or OVMF byte changes
// the digest, and DiagnoseSNP names the input.
func TestSNPLaunchDigestChanges(t *testing.T) {
	ev, err := dstack.ParseEvidence(snpFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := dstack.SNPLaunchInputs(ev.VMConfig)
	if err != nil || ref == nil {
		t.Fatal(err)
	}
	d, err := ref.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(d[:]) != "7f51e17f72a04d5422cb2c00998166536019a217376f3aa45a630e59c805a599847ff250dbffcd07e1ba639771d6f05d" {
		t.Fatalf("launch digest %x", d)
	}
	if ref.VCPUs != 2 || ref.VCPUType != "EPYC-v4" || ref.GuestFeatures != 1 || len(ref.Sections) != 7 || ref.HashesTableGPA != 8457216 || ref.ResetEIP != 8433668 {
		t.Errorf("inputs %+v", ref)
	}
	cases := []struct {
		input string
		mod   func(*measure.SNPLaunch)
	}{
		{"kernel_hash", func(l *measure.SNPLaunch) { l.KernelHash[0] ^= 1 }},
		{"initrd_hash", func(l *measure.SNPLaunch) { l.InitrdHash[31] ^= 1 }},
		{"cmdline", func(l *measure.SNPLaunch) { l.Cmdline += " debug" }},
		{"vcpus", func(l *measure.SNPLaunch) { l.VCPUs = 4 }},
		{"vcpus", func(l *measure.SNPLaunch) { l.VCPUs = 1 }},
		{"ovmf_hash", func(l *measure.SNPLaunch) { l.OVMFHash[47] ^= 1 }},
		{"vcpu_type", func(l *measure.SNPLaunch) { l.VCPUType = "EPYC-Milan" }},
		{"guest_features", func(l *measure.SNPLaunch) { l.GuestFeatures = 3 }},
		{"reset_eip", func(l *measure.SNPLaunch) { l.ResetEIP += 16 }},
		{"hashes_table_gpa", func(l *measure.SNPLaunch) { l.HashesTableGPA += 16 }},
		{"ovmf_sections", func(l *measure.SNPLaunch) {
			l.Sections = append([]measure.SNPSection(nil), l.Sections...)
			l.Sections[0].Size += 4096
		}},
	}
	for _, c := range cases {
		l := *ref
		c.mod(&l)
		d2, err := l.Digest()
		if err != nil {
			t.Fatalf("%s: %v", c.input, err)
		}
		if d2 == d {
			t.Errorf("%s change kept the digest", c.input)
		}
		if got := measure.DiagnoseSNP(ref, &l); len(got) != 1 || got[0] != c.input {
			t.Errorf("%s: diagnosis %v", c.input, got)
		}
	}
	// A trailing space of the command line is trimmed, as OVMF does.
	l := *ref
	l.Cmdline += " "
	if d2, _ := l.Digest(); d2 != d {
		t.Error("trailing space changed the digest")
	}
}

// TestSNPFixtureRefusals: changes to the fixture evidence that dstack and
// tdproof refuse.
func TestSNPFixtureRefusals(t *testing.T) {
	base, err := dstack.ParseEvidence(snpFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	modify := func(f func(a *dstack.Attestation)) *dstack.Evidence {
		a := *base.Attestation
		q := *a.SNP
		q.Report = bytes.Clone(q.Report)
		a.SNP = &q
		f(&a)
		b, err := a.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ev, err := dstack.ParseEvidence(b)
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	opts := dstack.SNPOptions{Now: snpFixtureNow}
	rd := [64]byte{1}
	cases := []struct {
		name string
		ev   *dstack.Evidence
		opts dstack.SNPOptions
		want error
	}{
		{"report byte", modify(func(a *dstack.Attestation) { a.SNP.Report[0x90] ^= 1 }), opts, snp.ErrSignature},
		{"stack report_data", modify(func(a *dstack.Attestation) { a.ReportData[0] ^= 1 }), opts, dstack.ErrReportData},
		{"caller report_data", base, dstack.SNPOptions{Now: snpFixtureNow, ReportData: &rd}, dstack.ErrReportData},
		{"mr_config byte", modify(func(a *dstack.Attestation) { a.SNP.MRConfig = strings.Replace(a.SNP.MRConfig, `"kms"`, `"tpm"`, 1) }), opts, dstack.ErrMRConfigID},
		{"mr_config empty", modify(func(a *dstack.Attestation) { a.SNP.MRConfig = "" }), opts, dstack.ErrMRConfigID},
		{"certs swapped", modify(func(a *dstack.Attestation) {
			a.SNP.CertChain = [][]byte{a.SNP.CertChain[1], a.SNP.CertChain[0]}
		}), opts, snp.ErrChain},
		{"no certs", modify(func(a *dstack.Attestation) { a.SNP.CertChain = nil }), opts, dstack.ErrQuote},
		{"VCEK expired", base, dstack.SNPOptions{Now: time.Date(2034, 1, 1, 0, 0, 0, 0, time.UTC)}, snp.ErrExpired},
		{"VCEK not yet valid", base, dstack.SNPOptions{Now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}, snp.ErrNotYetValid},
		{"policy UpToDate", base, dstack.SNPOptions{Now: snpFixtureNow, Policy: snp.Policy{RequireUpToDate: true}}, snp.ErrRejected},
		{"os_image_hash", modify(func(a *dstack.Attestation) {
			a.Config = strings.Replace(a.Config, "f69c8e50", "f69c8e51", 1)
		}), opts, dstack.ErrOSImageHash},
		{"vm_config vcpus", modify(func(a *dstack.Attestation) {
			a.Config = strings.Replace(a.Config, `\"vcpus\":2`, `\"vcpus\":3`, 1)
		}), opts, dstack.ErrOSImageHash},
		{"vm_config unknown member", modify(func(a *dstack.Attestation) {
			a.Config = strings.Replace(a.Config, `\"vcpus\":2`, `\"vcpus\":2,\"extra\":1`, 1)
		}), opts, dstack.ErrOSImageHash},
		{"vm_config mr_config", modify(func(a *dstack.Attestation) {
			a.Config = strings.Replace(a.Config, `\"version\":3`, `\"version\":3,\"x\":1`, 1)
		}), opts, dstack.ErrOSImageHash},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := dstack.VerifySNP(c.ev, c.opts)
			if !errors.Is(err, c.want) || res != nil {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// The cert_chain may come as a certificate table, or be supplied.
	ev := modify(func(a *dstack.Attestation) {
		a.SNP.CertChain = [][]byte{dstack.SNPCertTableBytes(&dstack.SNPCertTable{ASK: pemToDER(t, a.SNP.CertChain[0]), VCEK: pemToDER(t, a.SNP.CertChain[1])})}
	})
	if _, err := dstack.VerifySNP(ev, opts); err != nil {
		t.Errorf("certificate table: %v", err)
	}
	certs, _ := snp.ParseCertificates(base.Attestation.SNP.CertChain[1])
	ev = modify(func(a *dstack.Attestation) { a.SNP.CertChain = nil })
	if _, err := dstack.VerifySNP(ev, dstack.SNPOptions{Now: snpFixtureNow, VCEK: certs[0]}); err != nil {
		t.Errorf("supplied VCEK: %v", err)
	}
}

func pemToDER(t *testing.T, b []byte) []byte {
	cs, err := snp.ParseCertificates(b)
	if err != nil {
		t.Fatal(err)
	}
	return cs[0].Raw
}

func TestParseMRConfigV3(t *testing.T) {
	good := `{"compose_hash":"` + strings.Repeat("ab", 32) + `","key_provider":"none"}`
	m, err := dstack.ParseMRConfigV3(good)
	if err != nil || m.Version != 3 || string(m.KeyProviderInfo()) != `{"name":"none","id":""}` {
		t.Fatalf("%+v %v", m, err)
	}
	for _, bad := range []string{
		``, `[]`, `{"compose_hash":"` + strings.Repeat("ab", 31) + `","key_provider":"none"}`,
		`{"compose_hash":"` + strings.Repeat("ab", 32) + `"}`,
		`{"compose_hash":"` + strings.Repeat("ab", 32) + `","key_provider":"sgx"}`,
		`{"compose_hash":"` + strings.Repeat("ab", 32) + `","key_provider":"none","version":2}`,
		`{"compose_hash":"` + strings.Repeat("ab", 32) + `","key_provider":"none","extra":1}`,
		`{"compose_hash":"` + strings.Repeat("ab", 32) + `","key_provider":"none","app_id":"00"}`,
		`{"compose_hash":"` + strings.Repeat("ab", 32) + `","key_provider":"none","key_provider":"kms"}`,
		good + ` {}`,
	} {
		if _, err := dstack.ParseMRConfigV3(bad); !errors.Is(err, dstack.ErrMRConfigID) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	m, err = dstack.ParseMRConfigV3(`{"compose_hash":"` + strings.Repeat("ab", 32) + `","key_provider":"local","key_provider_id":"0102"}`)
	if err != nil || string(m.KeyProviderInfo()) != `{"name":"local-sgx","id":"0102"}` {
		t.Errorf("%v %s", err, m.KeyProviderInfo())
	}
}

// FuzzParseSNPAttestation: SEV-SNP envelopes (V0 and V1) never panic,
// fail with ErrMalformed or ErrUnsupported, and what parses re-encodes
// to an attestation that parses to the same SNP evidence.
func FuzzParseSNPAttestation(f *testing.F) {
	if b, err := hex.DecodeString(fixtureAttestationHexOrEmpty()); err == nil && len(b) > 0 {
		f.Add(b)
		if a, err := dstack.ParseAttestation(b); err == nil {
			a.Version, a.Stack = 1, dstack.StackDstack
			if v1, err := a.Marshal(); err == nil {
				f.Add(v1)
			}
		}
	}
	f.Add([]byte{0, 3, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := dstack.ParseAttestation(b)
		if err != nil {
			if !errors.Is(err, dstack.ErrMalformed) && !errors.Is(err, dstack.ErrUnsupported) {
				t.Fatal(err)
			}
			return
		}
		if a.SNP == nil {
			return
		}
		out, err := a.Marshal()
		if err != nil {
			return
		}
		a2, err := dstack.ParseAttestation(out)
		if err != nil || a2.SNP == nil || !bytes.Equal(a2.SNP.Report, a.SNP.Report) || a2.SNP.MRConfig != a.SNP.MRConfig || len(a2.SNP.CertChain) != len(a.SNP.CertChain) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzParseMRConfigV3: the document parser never panics and accepts
// only documents whose shape rules hold.
func FuzzParseMRConfigV3(f *testing.F) {
	f.Add(`{"app_id":"86e59625be93207bc2351c4d1bba20037cec8e16","compose_hash":"86e59625be93207bc2351c4d1bba20037cec8e168da6b18f559af5af657b7a23","instance_id":"d378c00e65112c4235bfeb46c6a0f98fd02145a3","key_provider":"kms","key_provider_id":"3059","version":3}`)
	f.Add(`{"compose_hash":"` + strings.Repeat("00", 32) + `","key_provider":"none","init_script_hashes":["00"]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		m, err := dstack.ParseMRConfigV3(doc)
		if err != nil {
			if !errors.Is(err, dstack.ErrMRConfigID) {
				t.Fatal(err)
			}
			return
		}
		if m.Version != 3 || len(m.ComposeHash) != 32 || m.AppID != nil && len(m.AppID) != 20 {
			t.Fatalf("accepted %+v", m)
		}
		if _, err := dstack.ParseKeyProvider(m.KeyProviderInfo()); err != nil {
			t.Fatal(err)
		}
	})
}

func fixtureAttestationHexOrEmpty() string {
	b, err := os.ReadFile(filepath.Join(testvectors.Location(), "multitee", "dstack", "verifier__fixtures__sev-snp-attestation.json"))
	if err != nil {
		return ""
	}
	var req struct {
		Attestation string `json:"attestation"`
	}
	_ = json.Unmarshal(b, &req)
	return req.Attestation
}
