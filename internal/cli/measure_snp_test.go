package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/measure/measuretest"
)

const snpTestCmdline = "console=ttyS0 init=/init panic=1"

// snpImageDir writes a dstack-style image directory with a synthetic
// AmdSev firmware as bios-sev, and returns it with the expected launch
// digest for 2 EPYC-v4 vCPUs (computed by package measure, whose golden
// values are checked in its own tests). With publish, the directory
// also has its measurement.snp.cbor and a sha256sum.txt listing it.
func snpImageDir(t *testing.T, publish bool) (dir string, want [48]byte) {
	t.Helper()
	dir = t.TempDir()
	fw := measuretest.SNPFirmware(measuretest.SNPFixtureSpec())
	kernel, initrd := measuretest.PseudoFile(1<<20, 2), measuretest.PseudoFile(2<<20, 3)
	mj, _ := json.Marshal(map[string]any{"bios": "ovmf.fd", "bios-sev": "ovmf-sev.fd", "kernel": "bzImage", "initrd": "initramfs.cpio.gz",
		"cmdline": snpTestCmdline, "version": "0.6.0"})
	for name, b := range map[string][]byte{"metadata.json": mj, "ovmf.fd": []byte("tdx firmware"), "ovmf-sev.fd": fw, "bzImage": kernel, "initramfs.cpio.gz": initrd} {
		writeFile(t, dir, name, b)
	}
	img, err := measure.NewSNPImage(fw, bytes.NewReader(kernel), bytes.NewReader(initrd), snpTestCmdline)
	if err != nil {
		t.Fatal(err)
	}
	l, err := img.Launch(2, "EPYC-v4", 1)
	if err != nil {
		t.Fatal(err)
	}
	if want, err = l.Digest(); err != nil {
		t.Fatal(err)
	}
	if publish {
		doc, err := l.Document()
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, measure.SNPFile, doc)
		writeFile(t, dir, measure.ChecksumFile, measure.FormatChecksumFile([]measure.ChecksumEntry{{SHA256: sha256.Sum256(doc), Name: measure.SNPFile}}))
	}
	return dir, want
}

type measureSNPJSON struct {
	Measurement string   `json:"measurement"`
	Source      string   `json:"source"`
	Match       *bool    `json:"match"`
	Reference   string   `json:"reference"`
	Differ      []string `json:"differing_inputs"`
	Inputs      struct {
		OVMFHash string `json:"ovmf_hash"`
		VCPUs    uint32 `json:"vcpus"`
	} `json:"inputs"`
	Firmware *struct {
		ResetEIP uint32 `json:"reset_eip"`
	} `json:"firmware"`
	Diagnosis *struct {
		Causes []measure.Cause `json:"causes"`
	} `json:"diagnosis"`
}

func runMeasureSNPJSON(t *testing.T, code int, args ...string) measureSNPJSON {
	t.Helper()
	args = append(append([]string{"measure", "snp"}, args...), "--format", "json")
	o := invoke(t, nil, args...)
	o.wantCode(t, code, args...)
	var out measureSNPJSON
	if err := json.Unmarshal([]byte(o.stdout), &out); err != nil {
		t.Fatalf("%v: %s", err, o.stdout)
	}
	return out
}

func TestMeasureSNPImage(t *testing.T) {
	dir, want := snpImageDir(t, true)
	wantHex := hex.EncodeToString(want[:])
	out := runMeasureSNPJSON(t, 0, "--image", dir, "--vcpus", "2", "--vcpu-type", "EPYC-v4", "--expect", wantHex)
	if out.Measurement != wantHex || out.Source != "image" || out.Firmware == nil || out.Firmware.ResetEIP != measuretest.SNPFixtureResetEIP ||
		out.Reference != "image measurement.snp.cbor" || len(out.Differ) != 0 || out.Match == nil || !*out.Match {
		t.Fatalf("%+v", out)
	}
	// Explicit files (aliases --ovmf, --cpu-type) give the same digest,
	// and --write-document the document that reproduces it.
	docFile := filepath.Join(t.TempDir(), "measurement.snp.cbor")
	out = runMeasureSNPJSON(t, 0, "--ovmf", filepath.Join(dir, "ovmf-sev.fd"), "--kernel", filepath.Join(dir, "bzImage"),
		"--initrd", filepath.Join(dir, "initramfs.cpio.gz"), "--cmdline", snpTestCmdline, "--vcpus", "2", "--cpu-type", "EPYC-v4",
		"--write-document", docFile)
	if out.Measurement != wantHex {
		t.Fatalf("explicit files: %+v", out)
	}
	if doc := mustRead(t, docFile); !bytes.Equal(doc, mustRead(t, filepath.Join(dir, measure.SNPFile))) {
		t.Fatal("written document differs from the published one")
	}
	out = runMeasureSNPJSON(t, 0, "--measurement-doc", docFile, "--vcpus", "2", "--vcpu-type", "EPYC-v4")
	if out.Measurement != wantHex || out.Source != "measurement_document" {
		t.Fatalf("document: %+v", out)
	}

	// Changed inputs: the digest differs and the diagnosis names the
	// input (image inputs against the image's published document).
	cases := []struct {
		name  string
		edit  func(t *testing.T, dir string)
		args  []string
		cause measure.Input
	}{
		{"kernel byte", func(t *testing.T, dir string) { flipFileByte(t, filepath.Join(dir, "bzImage"), 100) }, nil, measure.InputSNPKernelHash},
		{"initrd byte", func(t *testing.T, dir string) { flipFileByte(t, filepath.Join(dir, "initramfs.cpio.gz"), 1<<20) }, nil, measure.InputSNPInitrdHash},
		{"firmware byte", func(t *testing.T, dir string) { flipFileByte(t, filepath.Join(dir, "ovmf-sev.fd"), 0x100) }, nil, measure.InputSNPOVMFHash},
		{"cmdline", nil, []string{"--cmdline", snpTestCmdline + " debug"}, measure.InputSNPCmdline},
		{"vcpus", nil, []string{"--vcpus", "3"}, measure.InputSNPVCPUs},
		{"vcpu type", nil, []string{"--vcpu-type", "EPYC-Genoa"}, measure.InputSNPVCPUType},
		{"guest features", nil, []string{"--guest-features", "0x21"}, measure.InputSNPGuestFeatures},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, _ := snpImageDir(t, true)
			if c.edit != nil {
				c.edit(t, dir)
			}
			args := append([]string{"--image", dir, "--vcpus", "2", "--vcpu-type", "EPYC-v4", "--expect", wantHex}, c.args...)
			out := runMeasureSNPJSON(t, exitNotAuthentic, args...)
			// The published document has no VM configuration: it takes
			// the same flags, so only image inputs differ from it.
			imageInput := c.edit != nil || c.cause == measure.InputSNPCmdline
			if out.Match == nil || *out.Match || out.Diagnosis == nil || len(out.Diagnosis.Causes) != 1 || out.Diagnosis.Causes[0].Input != c.cause ||
				imageInput && (len(out.Differ) != 1 || out.Differ[0] != string(c.cause)) || !imageInput && len(out.Differ) != 0 {
				t.Fatalf("%+v", out)
			}
			// The text output names it too.
			args = append([]string{"measure", "snp"}, args...)
			o := invoke(t, nil, args...)
			if !strings.Contains(o.stdout, "likely cause") || !strings.Contains(o.stdout, string(c.cause)+": ") {
				t.Fatalf("%s", o.stdout)
			}
		})
	}
	args := []string{"measure", "snp", "--image", dir}
	invoke(t, nil, args...).wantCode(t, exitUsage, args...)
	args = []string{"measure", "snp", "--image", dir, "--kernel", "x", "--vcpus", "1", "--vcpu-type", "EPYC"}
	invoke(t, nil, args...).wantCode(t, exitUsage, args...)
}

// TestMeasureSNPEvidenceImage: the fixture's evidence measured against
// an image that is not the one it booted: its vm_config reproduces
// MEASUREMENT, so every image input that differs is named.
func TestMeasureSNPEvidenceImage(t *testing.T) {
	_, _, _, evidence := snpFixtureFiles(t)
	dir, _ := snpImageDir(t, false)
	out := runMeasureSNPJSON(t, exitNotAuthentic, "--evidence", evidence, "--image", dir)
	if out.Inputs.VCPUs != 2 || out.Reference != "vm_config" || out.Diagnosis == nil {
		t.Fatalf("%+v", out)
	}
	var names []string
	for _, c := range out.Diagnosis.Causes {
		names = append(names, string(c.Input))
	}
	if strings.Join(names, ",") != "ovmf_hash,cmdline,kernel_hash,initrd_hash" || strings.Join(out.Differ, ",") != strings.Join(names, ",") {
		t.Fatalf("causes %v, differing %v", names, out.Differ)
	}
}

func flipFileByte(t *testing.T, p string, i int) {
	t.Helper()
	b := mustRead(t, p)
	b[i] ^= 1
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDstackVerifySNPImage: dstack verify --image on SEV-SNP evidence
// recomputes the launch digest from the image; an image that is not the
// one the fixture booted is not authentic, its differing inputs named.
func TestDstackVerifySNPImage(t *testing.T) {
	_, _, _, evidence := snpFixtureFiles(t)
	dir, _ := snpImageDir(t, false)
	args := []string{"dstack", "verify", evidence, "--at", "2026-06-18T00:00:00Z", "--dstack-compat", "--offline", "--image", dir}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitNotAuthentic, args...)
	if !strings.Contains(o.stderr, "the OS image gives") || !strings.Contains(o.stderr, "likely cause: ovmf_hash: ") || !strings.Contains(o.stderr, "; kernel_hash: ") {
		t.Errorf("stderr: %s", o.stderr)
	}
	args = []string{"dstack", "verify", evidence, "--at", "2026-06-18T00:00:00Z", "--offline", "--acpi-dir", dir}
	invoke(t, nil, args...).wantCode(t, exitUsage, args...)
}
