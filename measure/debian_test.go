package measure_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tdproof/tdproof/measure"
)

// Golden MRTDs of Debian bookworm's ovmf 2022.11-6+deb12u2
// /usr/share/ovmf/OVMF.fd (sha256 below), which carries TDX metadata
// with the same TD HOB layout as the dstack OVMF. Cross-checked with an
// independent Python implementation when recorded.
const (
	debianOVMFSHA256     = "7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773"
	debianOVMFSinglePass = "4c7206f0f483c524f12c366c711e9049030a8d47c471ee5aa9c4999a08de4057fb887fed0744d5631a212967fb231c47"
	debianOVMFTwoPass    = "acccbcc870a381adab0d3919d90a7f268ac3b0364771f202ed4bb4e892d045b33db3b32e6924cba830a724eed443f7e1"
)

func TestDebianOVMF(t *testing.T) {
	p := debianFile(t, "TDPROOF_DEBIAN_OVMF", "ovmf/usr/share/ovmf/OVMF.fd")
	fw := readFile(t, p)
	tdvf, err := measure.ParseTDVF(fw)
	if err != nil {
		t.Fatalf("ParseTDVF(%s): %v", p, err)
	}
	var types []string
	for _, s := range tdvf.Sections {
		types = append(types, s.Type.String())
	}
	t.Logf("%s: %d bytes, sha256 %x, sections %v", p, len(fw), sha256Sum(fw), types)
	if sum := sha256Sum(fw); hex.EncodeToString(sum[:]) != debianOVMFSHA256 {
		t.Skipf("%s is not the recorded Debian build (sha256 %x); MRTDs %x / %x", p, sum, tdvf.MRTD(measure.SinglePass), tdvf.MRTD(measure.TwoPass))
	}
	if got := tdvf.MRTD(measure.SinglePass); hex.EncodeToString(got[:]) != debianOVMFSinglePass {
		t.Errorf("single-pass MRTD %x, golden %s", got, debianOVMFSinglePass)
	}
	if got := tdvf.MRTD(measure.TwoPass); hex.EncodeToString(got[:]) != debianOVMFTwoPass {
		t.Errorf("two-pass MRTD %x, golden %s", got, debianOVMFTwoPass)
	}
	l, err := tdvf.TDHOBLayout()
	if err != nil {
		t.Fatal(err)
	}
	if w, err := l.Witness(); err != nil || hex.EncodeToString(w) != dstackWitness {
		t.Errorf("witness %x, %v; want the dstack OVMF's %s", w, err, dstackWitness)
	}
	want := loadExpected(t, "tdx-lite-getquote.expected.json")
	if d, err := l.Digest(2 << 30); err != nil || hex.EncodeToString(d[:]) != want.Lite.TDHOBDigest2GiB {
		t.Errorf("TD HOB for 2 GiB %x, %v", d, err)
	}
}

// TestDebianOVMFVariants: the CODE-only images. OVMF_CODE.fd has TDX
// metadata whose sections point into the variable store it lacks;
// OVMF_CODE_4M.fd has an OVMF table without TDX metadata; OVMF_VARS.fd
// has no table at all.
func TestDebianOVMFVariants(t *testing.T) {
	dir := filepath.Dir(debianFile(t, "", "ovmf/usr/share/OVMF/OVMF_CODE_4M.fd"))
	for _, tc := range []struct {
		file    string
		entries int
		want    error
	}{
		{"OVMF_CODE_4M.fd", 3, measure.ErrNoTDXMetadata},
		{"OVMF_CODE.fd", 5, measure.ErrMalformed},
		{"OVMF_VARS.fd", -1, measure.ErrNoOVMFTable},
	} {
		fw := readFile(t, filepath.Join(dir, tc.file))
		entries, err := measure.ParseOVMFTable(fw)
		if tc.entries < 0 {
			if !errors.Is(err, measure.ErrNoOVMFTable) {
				t.Errorf("%s: ParseOVMFTable: %v", tc.file, err)
			}
		} else if err != nil || len(entries) != tc.entries {
			t.Errorf("%s: ParseOVMFTable: %d entries, %v; want %d", tc.file, len(entries), err, tc.entries)
		}
		if _, err := measure.ParseTDVF(fw); !errors.Is(err, tc.want) {
			t.Errorf("%s: ParseTDVF: %v, want %v", tc.file, err, tc.want)
		}
	}
}

// osslsigncodeSHA384 runs `osslsigncode extract-data -h sha384` on a PE
// file and returns the Authenticode digest from the SpcIndirectDataContent
// it writes. It skips the test when osslsigncode is not installed.
func osslsigncodeSHA384(tb testing.TB, path string) [48]byte {
	tb.Helper()
	bin, err := exec.LookPath("osslsigncode")
	if err != nil {
		tb.Skip("osslsigncode is not installed")
	}
	out := filepath.Join(tb.TempDir(), "data.der")
	if b, err := exec.Command(bin, "extract-data", "-h", "sha384", "-in", path, "-out", out).CombinedOutput(); err != nil {
		tb.Fatalf("osslsigncode extract-data %s: %v\n%s", path, err, b)
	}
	der := readFile(tb, out)
	// AlgorithmIdentifier{sha384, NULL} followed by OCTET STRING(48).
	marker := []byte{0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30}
	i := bytes.LastIndex(der, marker)
	if i < 0 || len(der) < i+len(marker)+48 {
		tb.Fatalf("no SHA-384 digest in osslsigncode output % x", der)
	}
	return [48]byte(der[i+len(marker):])
}

func TestDebianKernelAuthenticode(t *testing.T) {
	p := debianFile(t, "TDPROOF_DEBIAN_KERNEL", "kernel/boot/vmlinuz-*")
	k := readFile(t, p)
	want := osslsigncodeSHA384(t, p)
	got, err := measure.AuthenticodeSHA384(k)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d bytes, Authenticode SHA-384 %x", p, len(k), got)
	if got != want {
		t.Errorf("AuthenticodeSHA384 = %x, osslsigncode %x", got, want)
	}
	// Without the signature: same digest, per osslsigncode and us.
	unsigned := filepath.Join(t.TempDir(), "vmlinuz.unsigned")
	if b, err := exec.Command("osslsigncode", "remove-signature", "-in", p, "-out", unsigned).CombinedOutput(); err != nil {
		t.Fatalf("osslsigncode remove-signature: %v\n%s", err, b)
	}
	u := readFile(t, unsigned)
	got2, err := measure.AuthenticodeSHA384(u)
	if err != nil {
		t.Fatal(err)
	}
	if want2 := osslsigncodeSHA384(t, unsigned); got2 != want2 || got2 != got {
		t.Errorf("unsigned (%d bytes): %x, osslsigncode %x, signed %x", len(u), got2, want2, got)
	}
	// The RTMR1 kernel digest of the patched kernel differs from the file's.
	kd, err := measure.KernelAuthenticode(k, 3<<20, 2<<30)
	if err != nil || kd == got {
		t.Errorf("KernelAuthenticode = %x, %v", kd, err)
	}
}

// TestAuthenticodeOsslsigncode compares the synthetic images with
// osslsigncode. osslsigncode hashes the file linearly up to the
// certificate table, so it agrees with the dstack rules except where the
// rules skip bytes (gaps between sections, trailing data without a
// certificate table) and for a certificate table at an offset that is
// not a multiple of 8 (invalid Authenticode): osslsigncode pads only
// unsigned files, the dstack rules pad by the size of the whole file.
func TestAuthenticodeOsslsigncode(t *testing.T) {
	if _, err := exec.LookPath("osslsigncode"); err != nil {
		t.Skip("osslsigncode is not installed")
	}
	differs := map[string]bool{"pe32+ trailing data without cert table": true, "pe32+ section gap": true, "pe32+ cert table and trailing data": true}
	dir := t.TempDir()
	for i, tc := range peCases {
		f, _ := buildPE(tc.spec)
		p := filepath.Join(dir, "pe"+string(rune('a'+i))+".efi")
		if err := os.WriteFile(p, f, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := measure.AuthenticodeSHA384(f)
		if err != nil {
			t.Fatal(err)
		}
		if want := osslsigncodeSHA384(t, p); (got == want) == differs[tc.name] {
			t.Errorf("%s: ours %x, osslsigncode %x (expected to differ: %v)", tc.name, got, want, differs[tc.name])
		}
	}
}
