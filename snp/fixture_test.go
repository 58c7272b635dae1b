package snp

import (
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/testvectors"
)

// fixtureEvidence is the report and certificate chain of the real dstack
// SEV-SNP fixture (testdata/multitee/README.md §1).
type fixtureEvidence struct {
	report    []byte
	certChain [][]byte
}

// fixtureNow is inside the fixture VCEK's validity window.
var fixtureNow = time.Date(2026, 6, 18, 0, 0, 0, 0, time.UTC)

func fixturePath() string {
	return filepath.Join(testvectors.Location(), "multitee", "dstack", "verifier__fixtures__sev-snp-attestation.json")
}

func loadFixture(tb testing.TB) fixtureEvidence {
	tb.Helper()
	testvectors.Path(tb, "multitee", "dstack", "verifier__fixtures__sev-snp-attestation.json")
	f, err := readFixture()
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// readFixture decodes the V0 SCALE attestation of the JSON fixture far
// enough to get the report and cert_chain (quote index 3: report
// Vec<u8>, cert_chain Vec<Vec<u8>>, then mr_config and the rest).
func readFixture() (fixtureEvidence, error) {
	var f fixtureEvidence
	raw, err := os.ReadFile(fixturePath())
	if err != nil {
		return f, err
	}
	var req struct {
		Attestation string `json:"attestation"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		return f, err
	}
	b, err := hex.DecodeString(req.Attestation)
	if err != nil {
		return f, err
	}
	if len(b) < 2 || b[0] != 0 || b[1] != 3 {
		return f, fmt.Errorf("fixture is not a V0 SEV-SNP attestation")
	}
	off := 2
	compact := func() (int, error) {
		if off >= len(b) {
			return 0, fmt.Errorf("truncated")
		}
		switch b[off] & 3 {
		case 0:
			off++
			return int(b[off-1] >> 2), nil
		case 1:
			off += 2
			return int(binary.LittleEndian.Uint16(b[off-2:])) >> 2, nil
		case 2:
			off += 4
			return int(binary.LittleEndian.Uint32(b[off-4:]) >> 2), nil
		}
		return 0, fmt.Errorf("big compact integer")
	}
	vec := func() ([]byte, error) {
		n, err := compact()
		if err != nil || off+n > len(b) {
			return nil, fmt.Errorf("truncated vector")
		}
		off += n
		return b[off-n : off], nil
	}
	if f.report, err = vec(); err != nil {
		return f, err
	}
	n, err := compact()
	if err != nil {
		return f, err
	}
	for range n {
		c, err := vec()
		if err != nil {
			return f, err
		}
		f.certChain = append(f.certChain, c)
	}
	return f, nil
}

func fixtureCerts(tb testing.TB, f fixtureEvidence) Certificates {
	tb.Helper()
	if len(f.certChain) != 2 {
		tb.Fatalf("cert_chain has %d entries", len(f.certChain))
	}
	ask, err := ParseCertificates(f.certChain[0])
	if err != nil {
		tb.Fatal(err)
	}
	vcek, err := ParseCertificates(f.certChain[1])
	if err != nil {
		tb.Fatal(err)
	}
	return Certificates{ASK: ask[0], VCEK: vcek[0]}
}

func TestFixtureVerify(t *testing.T) {
	f := loadFixture(t)
	r, err := ParseReport(f.report)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Verify(r, fixtureCerts(t, f), Options{Now: fixtureNow})
	if err != nil {
		t.Fatal(err)
	}
	hx := hex.EncodeToString
	checks := []struct{ name, got, want string }{
		{"version", itoa(r.Version), "3"},
		{"product", res.Product.String(), "Milan"},
		{"policy", hex.EncodeToString(u64be(r.Policy)), "0000000000030000"},
		{"vmpl", itoa(r.VMPL), "0"},
		{"platform_info", hex.EncodeToString(u64be(r.PlatformInfo)), "0000000000000025"},
		{"key_info", itoa(r.KeyInfo), "0"},
		{"report_data", hx(r.ReportData[:]), hx([]byte("attest-test-fixture-2026")) + hx(make([]byte, 40))},
		{"measurement", hx(r.Measurement[:]), "7f51e17f72a04d5422cb2c00998166536019a217376f3aa45a630e59c805a599847ff250dbffcd07e1ba639771d6f05d"},
		{"host_data", hx(r.HostData[:]), "783f0057820acb99249af56cc3b07b4e8d80f65183167cba9cf437bb680f742f"},
		{"chip_id", hx(r.ChipID[:]), "38d174589d2dff97a6d40cb9f9d90b9507c027491219083cef3ce73ed18f7289142d941ad61eabecd27d25f268c1095d665f6001358e98a4769c82734a6bb877"},
		{"current_tcb", tcbHex(r.CurrentTCB), "04000000000018d5"},
		{"reported_tcb", tcbHex(r.ReportedTCB), "04000000000017d5"},
		{"committed_tcb", tcbHex(r.CommittedTCB), "04000000000018d5"},
		{"launch_tcb", tcbHex(r.LaunchTCB), "04000000000018d5"},
		{"tcb_status", string(res.TCBStatus), "OutOfDate"},
		{"reported snp", itoa(uint32(res.TCB.Reported.SNP)), "23"},
		{"current snp", itoa(uint32(res.TCB.Current.SNP)), "24"},
		{"ucode", itoa(uint32(res.TCB.Reported.Microcode)), "213"},
		{"bl", itoa(uint32(res.TCB.Reported.BootLoader)), "4"},
		{"vcek product", res.Extensions.ProductName, "Milan-B0"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
	if !res.AMDRoot || res.CRLChecked || res.SigningKey != SigningKeyVCEK || len(res.AdvisoryIDs) != 0 || res.AdvisoryIDs == nil {
		t.Errorf("result flags: %+v", res)
	}
	if got := res.TCB.ReportedBelowCurrent; len(got) != 1 || got[0] != "snp" {
		t.Errorf("reported below current = %v", got)
	}
	// The same report verifies with the embedded Milan ASK (only the VCEK
	// supplied) and with a v2-style product search.
	c := fixtureCerts(t, f)
	if _, err := Verify(r, Certificates{VCEK: c.VCEK}, Options{Now: fixtureNow}); err != nil {
		t.Errorf("embedded ASK: %v", err)
	}
	if _, err := Verify(r, Certificates{ARK: ARK(ProductMilan), ASK: c.ASK, VCEK: c.VCEK}, Options{Now: fixtureNow}); err != nil {
		t.Errorf("supplied pinned ARK: %v", err)
	}
}

// TestFixturePEMFiles verifies the report with the separate .pem files of
// the fixture (README §1).
func TestFixturePEMFiles(t *testing.T) {
	f := loadFixture(t)
	r, err := ParseReport(f.report)
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) *x509.Certificate {
		b, err := os.ReadFile(testvectors.Path(t, "multitee", "dstack", name))
		if err != nil {
			t.Fatal(err)
		}
		cs, err := ParseCertificates(b)
		if err != nil || len(cs) != 1 {
			t.Fatalf("%s: %v", name, err)
		}
		return cs[0]
	}
	certs := Certificates{ASK: read("dstack-attest__tests__sev_snp_ask.pem"), VCEK: read("dstack-attest__tests__sev_snp_vcek.pem")}
	if _, err := Verify(r, certs, Options{Now: fixtureNow}); err != nil {
		t.Fatal(err)
	}
	if fingerprint(certs.ASK) != askFingerprint[ProductMilan] {
		t.Error("fixture ASK is not the embedded Milan ASK")
	}
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func tcbHex(t TCBVersion) string { b := t.Bytes(); return hex.EncodeToString(b[:]) }

func u64be(v uint64) []byte {
	b := make([]byte, 8)
	for i := range 8 {
		b[7-i] = byte(v >> (8 * i))
	}
	return b
}

// FixtureReport exposes the fixture to the external test package.
func FixtureReport(tb testing.TB) ([]byte, Certificates) {
	f := loadFixture(tb)
	return f.report, fixtureCerts(tb, f)
}

// tryFixture returns the fixture report, or nil when the shared test data
// is absent (fuzz seeds).
func tryFixture() []byte {
	f, err := readFixture()
	if err != nil {
		return nil
	}
	return f.report
}

func tryFixtureCerts() [][]byte {
	f, err := readFixture()
	if err != nil {
		return nil
	}
	return f.certChain
}
