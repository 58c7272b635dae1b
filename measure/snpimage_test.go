package measure_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/measure/measuretest"
)

var fixtureSNPSections = measuretest.SNPFixtureSections

const (
	fixtureSNPResetEIP  = measuretest.SNPFixtureResetEIP
	fixtureSNPHashTable = measuretest.SNPFixtureHashTableGPA
)

type snpFirmwareSpec = measuretest.SNPFirmwareSpec

var (
	synthSNPFirmware = measuretest.SNPFirmware
	fixtureLikeSpec  = measuretest.SNPFixtureSpec
	pseudoFile       = measuretest.PseudoFile
)

// Golden values for the synthetic image below (fixtureLikeSpec, a
// 1 MiB + 3 kernel and a 3 MiB + 5 initrd of pseudoFile, the cmdline
// below, 2 vCPUs EPYC-v4, guest_features 1), computed when recorded by
// an independent Python implementation of multi-tee.md §7 and of
// sev-snp-measure's firmware page loop, which also reproduces the real
// fixture's MEASUREMENT.
const (
	synthSNPOVMFHash = "c7146d807d09b147fa0c7b3b6bd53910ebad61ab88206c8bc75757f7fb37d176e6b904f4151216197f185bbd56154935"
	synthSNPDigest   = "2b265abafac8a2cd1d8e91fdc0cb8aad289f20e5ad5265f6dbecdb9d43470fc07b630f3ea7f6674525381ba96565f71d"
	synthSNPCmdline  = "console=ttyS0 init=/init panic=1 dstack.rootfs_hash=00"
)

func synthSNPImage(t *testing.T) (fw, kernel, initrd []byte) {
	t.Helper()
	return synthSNPFirmware(fixtureLikeSpec()), pseudoFile(1<<20+3, 2), pseudoFile(3<<20+5, 3)
}

func TestSNPImageLaunch(t *testing.T) {
	fw, kernel, initrd := synthSNPImage(t)
	img, err := measure.NewSNPImage(fw, bytes.NewReader(kernel), bytes.NewReader(initrd), synthSNPCmdline)
	if err != nil {
		t.Fatal(err)
	}
	f := img.Firmware
	if f.Size != 0x10000 || f.ResetEIP != fixtureSNPResetEIP || f.HashesTableGPA != fixtureSNPHashTable || f.HashesTableSize != 0x400 ||
		!reflect.DeepEqual(f.Sections, fixtureSNPSections) || !f.KernelHashes() {
		t.Fatalf("firmware %+v", f)
	}
	if img.KernelHash != sha256.Sum256(kernel) || img.InitrdHash != sha256.Sum256(initrd) {
		t.Fatal("kernel or initrd hash")
	}
	l, err := img.Launch(2, "EPYC-v4", 1)
	if err != nil {
		t.Fatal(err)
	}
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ovmf_hash %x digest %x", f.OVMFHash, d)
	if hex.EncodeToString(f.OVMFHash[:]) != synthSNPOVMFHash {
		t.Errorf("ovmf_hash %x, golden %s", f.OVMFHash, synthSNPOVMFHash)
	}
	if hex.EncodeToString(d[:]) != synthSNPDigest {
		t.Errorf("digest %x, golden %s", d, synthSNPDigest)
	}
	// The document round-trips to the same launch.
	doc, err := l.Document()
	if err != nil {
		t.Fatal(err)
	}
	back, err := measure.ParseSNPMeasurement(doc)
	if err != nil {
		t.Fatal(err)
	}
	back.VCPUs, back.VCPUType, back.GuestFeatures = l.VCPUs, l.VCPUType, l.GuestFeatures
	if !reflect.DeepEqual(back, l) {
		t.Fatalf("document round trip:\n%+v\n%+v", back, l)
	}
	// JSON round trip, digests in hex.
	js, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON measure.SNPLaunch
	if err := json.Unmarshal(js, &fromJSON); err != nil || !reflect.DeepEqual(&fromJSON, l) {
		t.Fatalf("JSON round trip %s: %v", js, err)
	}
	if !bytes.Contains(js, []byte(`"ovmf_hash":"`+synthSNPOVMFHash+`"`)) {
		t.Errorf("JSON %s", js)
	}
	// No initrd is the empty one.
	img2, err := measure.NewSNPImage(fw, bytes.NewReader(kernel), nil, synthSNPCmdline)
	if err != nil || img2.InitrdHash != sha256.Sum256(nil) {
		t.Fatalf("nil initrd: %v", err)
	}
}

// TestSNPImageInputChanges: a changed firmware byte, kernel, initrd,
// cmdline, vCPU count, vCPU type or guest features changes the launch
// digest, and DiagnoseSNPLaunch names the input, with the original
// inputs as the reference and, for the VM configuration, without.
func TestSNPImageInputChanges(t *testing.T) {
	fw, kernel, initrd := synthSNPImage(t)
	launch := func(t *testing.T, fw, kernel, initrd []byte, cmdline string, vcpus uint32, vcpuType string, features uint64) *measure.SNPLaunch {
		t.Helper()
		img, err := measure.NewSNPImage(fw, bytes.NewReader(kernel), bytes.NewReader(initrd), cmdline)
		if err != nil {
			t.Fatal(err)
		}
		l, err := img.Launch(vcpus, vcpuType, features)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	ref := launch(t, fw, kernel, initrd, synthSNPCmdline, 2, "EPYC-v4", 1)
	want, err := ref.Digest()
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 1
		return c
	}
	cases := []struct {
		name string
		got  *measure.SNPLaunch
		// input is what DiagnoseSNPLaunch names with the reference;
		// alone is what it names without (InputSNPImage for image
		// inputs, which only a reference can tell apart).
		input, alone measure.Input
	}{
		{"firmware first byte", launch(t, flip(fw, 0), kernel, initrd, synthSNPCmdline, 2, "EPYC-v4", 1), measure.InputSNPOVMFHash, measure.InputSNPImage},
		{"firmware code byte", launch(t, flip(fw, 0x8123), kernel, initrd, synthSNPCmdline, 2, "EPYC-v4", 1), measure.InputSNPOVMFHash, measure.InputSNPImage},
		{"kernel first byte", launch(t, fw, flip(kernel, 0), initrd, synthSNPCmdline, 2, "EPYC-v4", 1), measure.InputSNPKernelHash, measure.InputSNPImage},
		{"kernel last byte", launch(t, fw, flip(kernel, len(kernel)-1), initrd, synthSNPCmdline, 2, "EPYC-v4", 1), measure.InputSNPKernelHash, measure.InputSNPImage},
		{"kernel truncated", launch(t, fw, kernel[:len(kernel)-1], initrd, synthSNPCmdline, 2, "EPYC-v4", 1), measure.InputSNPKernelHash, measure.InputSNPImage},
		{"initrd byte", launch(t, fw, kernel, flip(initrd, 1<<21), synthSNPCmdline, 2, "EPYC-v4", 1), measure.InputSNPInitrdHash, measure.InputSNPImage},
		{"initrd empty", launch(t, fw, kernel, nil, synthSNPCmdline, 2, "EPYC-v4", 1), measure.InputSNPInitrdHash, measure.InputSNPImage},
		{"cmdline appended", launch(t, fw, kernel, initrd, synthSNPCmdline+" debug", 2, "EPYC-v4", 1), measure.InputSNPCmdline, measure.InputSNPImage},
		{"cmdline changed", launch(t, fw, kernel, initrd, "console=ttyS1"+synthSNPCmdline[13:], 2, "EPYC-v4", 1), measure.InputSNPCmdline, measure.InputSNPImage},
		{"vcpus 1", launch(t, fw, kernel, initrd, synthSNPCmdline, 1, "EPYC-v4", 1), measure.InputSNPVCPUs, measure.InputSNPVCPUs},
		{"vcpus 3", launch(t, fw, kernel, initrd, synthSNPCmdline, 3, "EPYC-v4", 1), measure.InputSNPVCPUs, measure.InputSNPVCPUs},
		{"vcpus 512", launch(t, fw, kernel, initrd, synthSNPCmdline, 512, "EPYC-v4", 1), measure.InputSNPVCPUs, measure.InputSNPVCPUs},
		{"vcpu_type Milan", launch(t, fw, kernel, initrd, synthSNPCmdline, 2, "EPYC-Milan", 1), measure.InputSNPVCPUType, measure.InputSNPVCPUType},
		{"vcpu_type Genoa", launch(t, fw, kernel, initrd, synthSNPCmdline, 2, "EPYC-Genoa-v1", 1), measure.InputSNPVCPUType, measure.InputSNPVCPUType},
		{"vcpu_type Rome", launch(t, fw, kernel, initrd, synthSNPCmdline, 2, "epyc-rome", 1), measure.InputSNPVCPUType, measure.InputSNPVCPUType},
		{"guest_features debug-swap", launch(t, fw, kernel, initrd, synthSNPCmdline, 2, "EPYC-v4", 0x21), measure.InputSNPGuestFeatures, measure.InputSNPGuestFeatures},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := c.got.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if d == want {
				t.Fatal("digest unchanged")
			}
			diag, err := measure.DiagnoseSNPLaunch(want, c.got, ref)
			if err != nil {
				t.Fatal(err)
			}
			if diag.Match || len(diag.Causes) != 1 || diag.Causes[0].Input != c.input || diag.Computed != d || diag.Expected != want {
				t.Fatalf("with reference: %+v", diag)
			}
			diag, err = measure.DiagnoseSNPLaunch(want, c.got, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diag.Match || len(diag.Causes) != 1 || diag.Causes[0].Input != c.alone {
				t.Fatalf("without reference: %+v", diag)
			}
			t.Logf("%s", diag)
		})
	}
	// Two changed inputs: both named; neither alone reproduces.
	two := launch(t, fw, flip(kernel, 5), initrd, synthSNPCmdline+" x", 2, "EPYC-v4", 1)
	diag, err := measure.DiagnoseSNPLaunch(want, two, ref)
	if err != nil || len(diag.Causes) != 2 || diag.Causes[0].Input != measure.InputSNPCmdline || diag.Causes[1].Input != measure.InputSNPKernelHash {
		t.Fatalf("two inputs: %+v %v", diag, err)
	}
	// An image change plus a vCPU count the inputs misstate: the
	// reference names the image input, the search the vCPU count.
	mixed := launch(t, fw, kernel, initrd, synthSNPCmdline, 2, "EPYC-v4", 1)
	mixedWant, _ := func() ([48]byte, error) { l := *mixed; l.VCPUs = 4; return l.Digest() }()
	if diag, err = measure.DiagnoseSNPLaunch(mixedWant, mixed, nil); err != nil || len(diag.Causes) != 1 || diag.Causes[0].Input != measure.InputSNPVCPUs {
		t.Fatalf("vcpus search: %+v %v", diag, err)
	}
	// A match has no causes.
	if diag, err = measure.DiagnoseSNPLaunch(want, ref, ref); err != nil || !diag.Match || len(diag.Causes) != 0 {
		t.Fatalf("match: %+v %v", diag, err)
	}
	// An invalid input set is an error.
	bad := *ref
	bad.VCPUs = 0
	if _, err := measure.DiagnoseSNPLaunch(want, &bad, ref); !errors.Is(err, measure.ErrMalformed) {
		t.Fatalf("invalid inputs: %v", err)
	}
}

func TestParseSNPFirmwareRefusals(t *testing.T) {
	ok := fixtureLikeSpec()
	if _, err := measure.ParseSNPFirmware(synthSNPFirmware(ok)); err != nil {
		t.Fatal(err)
	}
	with := func(f func(*snpFirmwareSpec)) []byte {
		s := ok
		s.Sections = append([]measure.SNPSection(nil), ok.Sections...)
		f(&s)
		return synthSNPFirmware(s)
	}
	cases := []struct {
		name string
		fw   []byte
		want error
	}{
		{"empty", nil, measure.ErrMalformed},
		{"not 4 KiB", synthSNPFirmware(ok)[:0xFFF0], measure.ErrMalformed},
		{"no footer", make([]byte, 0x2000), measure.ErrNoOVMFTable},
		{"no sections", with(func(s *snpFirmwareSpec) { s.Sections = nil }), measure.ErrMalformed},
		{"65 sections", with(func(s *snpFirmwareSpec) {
			for len(s.Sections) < 65 {
				s.Sections = append(s.Sections, fixtureSNPSections[0])
			}
		}), measure.ErrMalformed},
		{"length short", with(func(s *snpFirmwareSpec) { s.MetadataLength = 16 + 12*6 }), measure.ErrMalformed},
		{"length long", with(func(s *snpFirmwareSpec) { s.MetadataLength = 16 + 12*8 }), measure.ErrMalformed},
		{"version 2", with(func(s *snpFirmwareSpec) { s.Version = 2 }), measure.ErrUnsupported},
		{"section type 9", with(func(s *snpFirmwareSpec) { s.Sections[2].Type = 9 }), measure.ErrUnsupported},
		{"section size 0", with(func(s *snpFirmwareSpec) { s.Sections[2].Size = 0 }), measure.ErrMalformed},
		{"section unaligned", with(func(s *snpFirmwareSpec) { s.Sections[2].GPA += 0x800 }), measure.ErrMalformed},
		{"reset EIP 0", with(func(s *snpFirmwareSpec) { s.ResetEIP = 0 }), measure.ErrMalformed},
	}
	for _, c := range cases {
		if f, err := measure.ParseSNPFirmware(c.fw); !errors.Is(err, c.want) || f != nil {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// Without a hash table the firmware parses but cannot boot a kernel
	// with measured hashes.
	f, err := measure.ParseSNPFirmware(with(func(s *snpFirmwareSpec) { s.NoHashTable = true }))
	if err != nil || f.KernelHashes() {
		t.Fatalf("no hash table: %+v %v", f, err)
	}
	img := &measure.SNPImage{Firmware: f}
	if _, err := img.Launch(1, "EPYC-v4", 1); !errors.Is(err, measure.ErrUnsupported) {
		t.Fatalf("launch without kernel hashes: %v", err)
	}
	// A firmware whose metadata lacks the kernel hashes section likewise.
	f, err = measure.ParseSNPFirmware(with(func(s *snpFirmwareSpec) { s.Sections = s.Sections[:6] }))
	if err != nil || f.KernelHashes() {
		t.Fatalf("no kernel hashes section: %+v %v", f, err)
	}
}

// Debian bookworm's OVMF.fd (OvmfPkgX64, sha256 in debian_test.go) carries
// SEV-SNP metadata but no kernel hashes table. Its ovmf_hash was
// cross-checked with the independent Python implementation.
const debianOVMFSNPHash = "ba2c811512ef868474f239a21f7d7057d65a20de87a003c4f116e4fb1573183bfbcd75c3e99b2f558575a5d0094f73c6"

func TestDebianOVMFSNP(t *testing.T) {
	p := debianFile(t, "TDPROOF_DEBIAN_OVMF", "ovmf/usr/share/ovmf/OVMF.fd")
	fw := readFile(t, p)
	if sum := sha256Sum(fw); hex.EncodeToString(sum[:]) != debianOVMFSHA256 {
		t.Skipf("%s is not the recorded Debian build", p)
	}
	f, err := measure.ParseSNPFirmware(fw)
	if err != nil {
		t.Fatal(err)
	}
	want := []measure.SNPSection{{GPA: 0x800000, Size: 0x9000, Type: 1}, {GPA: 0x80A000, Size: 0x3000, Type: 1},
		{GPA: 0x80D000, Size: 0x1000, Type: 2}, {GPA: 0x80E000, Size: 0x1000, Type: 3}, {GPA: 0x80F000, Size: 0x11000, Type: 1}}
	if !reflect.DeepEqual(f.Sections, want) || f.ResetEIP != fixtureSNPResetEIP || f.HashesTableGPA != 0 || f.KernelHashes() {
		t.Fatalf("firmware %+v", f)
	}
	if hex.EncodeToString(f.OVMFHash[:]) != debianOVMFSNPHash {
		t.Errorf("ovmf_hash %x, golden %s", f.OVMFHash, debianOVMFSNPHash)
	}
	if _, err := (&measure.SNPImage{Firmware: f}).Launch(1, "EPYC-v4", 1); !errors.Is(err, measure.ErrUnsupported) {
		t.Errorf("OvmfPkgX64 launch: %v", err)
	}
}

// writeSNPImageDir writes a dstack-style image directory for SEV-SNP:
// the TDX firmware as bios, the SEV one as bios-sev, the published
// measurement.snp.cbor and a sha256sum.txt listing it.
func writeSNPImageDir(t *testing.T, fw, kernel, initrd []byte, doc []byte) string {
	t.Helper()
	dir := t.TempDir()
	meta := map[string]any{"bios": "ovmf.fd", "bios-sev": "ovmf-sev.fd", "kernel": "bzImage", "initrd": "initramfs.cpio.gz",
		"cmdline": synthSNPCmdline, "version": "0.6.0", "is_dev": false}
	mj, _ := json.Marshal(meta)
	files := map[string][]byte{"metadata.json": mj, "ovmf.fd": []byte("not the SEV firmware"), "ovmf-sev.fd": fw, "bzImage": kernel, "initramfs.cpio.gz": initrd}
	var entries []measure.ChecksumEntry
	for _, n := range []string{"ovmf.fd", "bzImage", "initramfs.cpio.gz", "metadata.json"} {
		entries = append(entries, measure.ChecksumEntry{SHA256: sha256.Sum256(files[n]), Name: n})
	}
	if doc != nil {
		files[measure.SNPFile] = doc
		entries = append(entries, measure.ChecksumEntry{SHA256: sha256.Sum256(doc), Name: measure.SNPFile})
	}
	files[measure.ChecksumFile] = measure.FormatChecksumFile(entries)
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadSNPImage(t *testing.T) {
	fw, kernel, initrd := synthSNPImage(t)
	img, err := measure.NewSNPImage(fw, bytes.NewReader(kernel), bytes.NewReader(initrd), synthSNPCmdline)
	if err != nil {
		t.Fatal(err)
	}
	l, err := img.Launch(2, "EPYC-v4", 1)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := l.Document()
	if err != nil {
		t.Fatal(err)
	}
	dir := writeSNPImageDir(t, fw, kernel, initrd, doc)
	d, err := measure.LoadSNPImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d.FirmwareFile != "ovmf-sev.fd" || !reflect.DeepEqual(d.Image, *img) || !bytes.Equal(d.Document, doc) {
		t.Fatalf("loaded %+v", d)
	}
	fromDir, err := d.Image.Launch(2, "EPYC-v4", 1)
	if err != nil || !reflect.DeepEqual(fromDir, l) {
		t.Fatalf("launch from directory: %v", err)
	}
	pub, err := d.PublishedLaunch(2, "EPYC-v4", 1)
	if err != nil || !reflect.DeepEqual(pub, l) {
		t.Fatalf("published launch: %+v %v", pub, err)
	}
	// A document the checksum file does not list with its hash.
	d.Document = append(bytes.Clone(doc), 0)
	if _, err := d.PublishedLaunch(2, "EPYC-v4", 1); !errors.Is(err, measure.ErrMeasurementBinding) {
		t.Fatalf("unbound document: %v", err)
	}
	// Without bios-sev the bios is the firmware.
	mj := []byte(`{"bios":"ovmf-sev.fd","kernel":"bzImage","initrd":"initramfs.cpio.gz","cmdline":"` + synthSNPCmdline + `","version":"0.6.0"}`)
	if err := os.WriteFile(filepath.Join(dir, "metadata.json"), mj, 0o600); err != nil {
		t.Fatal(err)
	}
	if d, err = measure.LoadSNPImage(dir); err != nil || d.FirmwareFile != "ovmf-sev.fd" {
		t.Fatalf("bios fallback: %v", err)
	}
	// bios-sev must name a file inside the directory.
	mj = []byte(`{"bios":"ovmf.fd","bios-sev":"../ovmf-sev.fd","kernel":"bzImage","initrd":"initramfs.cpio.gz","version":"0.6.0"}`)
	if err := os.WriteFile(filepath.Join(dir, "metadata.json"), mj, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := measure.LoadSNPImage(dir); !errors.Is(err, measure.ErrMalformed) {
		t.Fatalf("bios-sev outside: %v", err)
	}
}

// TestLoadSNPImageMemoryIndependentOfInitrd: loading an image directory
// for SEV-SNP and computing its launch digest allocates the same whatever
// the initrd's size (4 MiB or 64 MiB, sparse zeros): the kernel and
// initrd are hashed while read, never held.
func TestLoadSNPImageMemoryIndependentOfInitrd(t *testing.T) {
	fw, kernel, initrd := synthSNPImage(t)
	dir := writeSNPImageDir(t, fw, kernel, initrd, nil)
	alloc := func() (uint64, *measure.SNPImageDir) {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		d, err := measure.LoadSNPImage(dir)
		if err != nil {
			t.Fatal(err)
		}
		l, err := d.Image.Launch(4, "EPYC-Genoa", 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Digest(); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc, d
	}
	const small, large = 4 << 20, 64 << 20
	withInitrdFile(t, dir, small)
	allocSmall, _ := alloc()
	withInitrdFile(t, dir, large)
	allocLarge, d := alloc()
	t.Logf("allocated: %d bytes with a 4 MiB initrd, %d bytes with a 64 MiB one (kernel %d bytes)", allocSmall, allocLarge, len(kernel))
	if allocLarge > allocSmall+1<<20 {
		t.Errorf("a 60 MiB larger initrd allocates %d more bytes", allocLarge-allocSmall)
	}
	if allocLarge >= uint64(len(kernel)) {
		t.Errorf("%d bytes allocated: more than the %d-byte kernel, which is not held either", allocLarge, len(kernel))
	}
	if d.Image.InitrdHash != sha256.Sum256(make([]byte, large)) {
		t.Error("streamed initrd hash")
	}
}

// FuzzParseSNPFirmware: a firmware either fails with a nil result and a
// sentinel error, or yields SEV metadata that satisfies the documented
// checks. Seeds: synthetic AmdSev-like images and, when the Debian
// artifacts are present, the last 4 KiB of Debian's OVMF.fd (its OVMF
// table and "ASEV" metadata lie there).
func FuzzParseSNPFirmware(f *testing.F) {
	small := fixtureLikeSpec()
	small.Size = 0x2000
	f.Add(synthSNPFirmware(small))
	small.NoHashTable = true
	small.Sections = small.Sections[:3]
	f.Add(synthSNPFirmware(small))
	if dir := os.Getenv(debianEnv); dir != "" {
		if fw, err := os.ReadFile(filepath.Join(dir, "ovmf/usr/share/ovmf/OVMF.fd")); err == nil && len(fw) >= 4096 {
			f.Add(fw[len(fw)-4096:])
		}
	}
	f.Fuzz(func(t *testing.T, fw []byte) {
		got, err := measure.ParseSNPFirmware(fw)
		if err != nil {
			if got != nil || !errors.Is(err, measure.ErrMalformed) && !errors.Is(err, measure.ErrUnsupported) && !errors.Is(err, measure.ErrNoOVMFTable) {
				t.Fatalf("%v (result %v)", err, got)
			}
			return
		}
		if got.Size != uint64(len(fw)) || len(fw)%4096 != 0 || got.ResetEIP == 0 || len(got.Sections) == 0 || len(got.Sections) > 64 {
			t.Fatalf("accepted %+v", got)
		}
		for _, s := range got.Sections {
			if s.Size == 0 || s.GPA%4096 != 0 || s.Type == 0 || s.Type > 4 && s.Type != 0x10 {
				t.Fatalf("invalid section accepted: %+v", s)
			}
		}
		if again, _ := measure.ParseSNPFirmware(fw); again.OVMFHash != got.OVMFHash {
			t.Fatal("ovmf_hash not deterministic")
		}
		var pages uint64
		for _, s := range got.Sections {
			pages += s.Size / 4096
		}
		if got.KernelHashes() && pages <= 4096 { // (each page is one SHA-384; keep fuzzing fast)
			img := &measure.SNPImage{Firmware: got}
			if l, err := img.Launch(2, "EPYC-v4", 1); err == nil {
				_, _ = l.Digest()
			}
		}
	})
}

func benchSNPLaunch(b *testing.B) *measure.SNPLaunch {
	img, err := measure.NewSNPImage(synthSNPFirmware(fixtureLikeSpec()), bytes.NewReader(pseudoFile(1<<20, 2)), nil, synthSNPCmdline)
	if err != nil {
		b.Fatal(err)
	}
	l, err := img.Launch(2, "EPYC-v4", 1)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkSNPLaunchDigest recomputes the launch digest of fixture-like
// inputs (7 sections, 2 vCPUs), as dstack.VerifySNP does per report.
func BenchmarkSNPLaunchDigest(b *testing.B) {
	l := benchSNPLaunch(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Digest(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiagnoseSNPLaunchImage is the worst case of a diagnosis
// without a reference: nothing reproduces MEASUREMENT, so every vCPU
// count, vCPU type and guest features value is tried.
func BenchmarkDiagnoseSNPLaunchImage(b *testing.B) {
	l := benchSNPLaunch(b)
	var want [48]byte
	b.ReportAllocs()
	for b.Loop() {
		d, err := measure.DiagnoseSNPLaunch(want, l, nil)
		if err != nil || d.Causes[0].Input != measure.InputSNPImage {
			b.Fatal(err)
		}
	}
}
