package measure_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tdproof/tdproof/measure"
)

// writeImageDir writes img as a dstack image directory of the given
// version and returns its path.
func writeImageDir(t *testing.T, img *measure.Image, version string) string {
	t.Helper()
	dir := t.TempDir()
	meta, err := json.Marshal(map[string]any{
		"bios": "ovmf.fd", "kernel": "bzImage", "initrd": "initramfs.cpio.gz", "cmdline": img.Cmdline,
		"rootfs": "rootfs.img.verity", "version": version, "git_revision": "abc", "shared_ro": true, "is_dev": false,
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"ovmf.fd": img.Firmware, "bzImage": img.Kernel, "initramfs.cpio.gz": img.Initrd, "metadata.json": meta} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestPublishLite is the build-pipeline flow: load an image directory,
// publish measurement.tdx.cbor and sha256sum.txt, then verify the result
// as a vm_config.tdx_measurement would be.
func TestPublishLite(t *testing.T) {
	img := synthImage(0x100000, 0x40000, 0x3000)
	dir := writeImageDir(t, img, "0.6.0")
	// Without sha256sum.txt the initrd gets only SHA-384, which is not
	// enough to publish.
	d0, err := measure.LoadImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d0.Image.Initrd != nil || d0.Image.InitrdDigests == nil || d0.Image.InitrdDigests.SHA256 != nil ||
		d0.Image.InitrdDigests.Size != uint64(len(img.Initrd)) || d0.Image.InitrdDigests.SHA384 != sha512.Sum384(img.Initrd) {
		t.Fatalf("initrd loaded as %+v", d0.Image.InitrdDigests)
	}
	if _, _, _, err := d0.PublishLite(); err == nil {
		t.Error("PublishLite without the initrd's SHA-256 succeeded")
	}
	d, err := measure.LoadImage(dir, measure.WithInitrdSHA256())
	if err != nil {
		t.Fatal(err)
	}
	if d.ChecksumFile != nil || d.LiteDocument != nil || d.Image.Cmdline != dstackCmdline {
		t.Fatalf("loaded %+v", d.Metadata)
	}
	if _, err := d.CheckFiles(); !errors.Is(err, measure.ErrImageFile) {
		t.Errorf("CheckFiles without sha256sum.txt: %v", err)
	}
	doc, sums, hash, err := d.PublishLite()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := measure.ParseChecksumFile(sums)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	if want := []string{"ovmf.fd", "bzImage", "initramfs.cpio.gz", "metadata.json", "measurement.tdx.cbor"}; !slices.Equal(names, want) {
		t.Errorf("sha256sum.txt lists %v, want %v", names, want)
	}
	if !bytes.Equal(measure.FormatChecksumFile(entries), sums) {
		t.Error("FormatChecksumFile does not reproduce the file")
	}
	os.WriteFile(filepath.Join(dir, "measurement.tdx.cbor"), doc, 0o644)
	os.WriteFile(filepath.Join(dir, "sha256sum.txt"), sums, 0o644)
	d2, err := measure.LoadImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := d2.CheckFiles(); err != nil || h != hash {
		t.Errorf("CheckFiles = %x, %v; want %x", h, err, hash)
	}
	lite, err := measure.VerifyLiteMaterial(hash[:], sums, doc)
	if err != nil {
		t.Fatal(err)
	}
	m := measure.Machine{MemorySize: 2 << 30}
	a, _ := lite.Measure(m, testACPI, nil)
	b, _ := measure.MeasureImage(img, m, measure.Options{ACPI: testACPI})
	if a.MRTD != b.MRTD || a.RTMRs[0].Value != b.RTMRs[0].Value || a.RTMRs[1].Value != b.RTMRs[1].Value || a.RTMRs[2].Value != b.RTMRs[2].Value {
		t.Error("published lite document disagrees with the image")
	}
	// A changed image file fails sha256sum -c.
	os.WriteFile(filepath.Join(dir, "bzImage"), append(slices.Clone(img.Kernel), 0), 0o644)
	d3, err := measure.LoadImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d3.CheckFiles(); !errors.Is(err, measure.ErrImageFile) {
		t.Errorf("changed kernel: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "bzImage"), img.Kernel, 0o644)
	os.WriteFile(filepath.Join(dir, "initramfs.cpio.gz"), append(slices.Clone(img.Initrd), 0), 0o644)
	d4, err := measure.LoadImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d4.CheckFiles(); !errors.Is(err, measure.ErrImageFile) {
		t.Errorf("changed initrd: %v", err)
	}
	// Before 0.6.0 there is no lite document to publish.
	d3.Metadata.Version = "0.5.8"
	if _, _, _, err := d3.PublishLite(); !errors.Is(err, measure.ErrUnsupported) {
		t.Errorf("0.5.8: %v", err)
	}
}

func TestImageFileList(t *testing.T) {
	for _, tc := range []struct {
		version string
		n       int
		err     error
	}{{"0.5.1", 4, nil}, {"0.5.11", 4, nil}, {"v0.5.10", 4, nil}, {"0.6.0", 5, nil}, {"0.6.2", 5, nil}, {"0.5.0", 0, measure.ErrUnsupported}, {"0.4.2", 0, measure.ErrUnsupported}, {"latest", 0, measure.ErrMalformed}} {
		l, err := measure.ImageFileList(&measure.Metadata{Version: tc.version})
		if !errors.Is(err, tc.err) || len(l) != tc.n {
			t.Errorf("ImageFileList(%s) = %v, %v", tc.version, l, err)
		}
	}
}

func TestParseMetadata(t *testing.T) {
	old := `{"bios":"ovmf.fd","kernel":"bzImage","cmdline":"console=ttyS0","initrd":"initramfs.cpio.gz","rootfs":"rootfs.iso","rootfs_hash":"ab","version":"0.4.2","is_dev":true,"extra":1}`
	m, err := measure.ParseMetadata([]byte(old))
	if err != nil || m.RootfsHash != "ab" || !m.IsDev || m.OVMFVariant != "" {
		t.Errorf("old metadata: %+v, %v", m, err)
	}
	for _, bad := range []string{`{"bios":"../ovmf.fd","kernel":"k","initrd":"i"}`, `{"bios":"a","kernel":"","initrd":"i"}`, `[1]`, `{"bios":"a","kernel":"k/x","initrd":"i"}`} {
		if _, err := measure.ParseMetadata([]byte(bad)); !errors.Is(err, measure.ErrMalformed) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestParseChecksumFile(t *testing.T) {
	h := "8c9e955f0b577cc8945a891a34ccfa5b8e08bb5e5d249992603e64dd14870e3c"
	if e, err := measure.ParseChecksumFile([]byte(h + " *measurement.tdx.cbor\n")); err != nil || e[0].Name != "measurement.tdx.cbor" {
		t.Errorf("binary mode: %v, %v", e, err)
	}
	for name, bad := range map[string]string{
		"no newline": h + "  a", "empty": "", "blank line": h + "  a\n\n", "short hash": h[:60] + "  a\n",
		"one space": h + " a\n", "duplicate": h + "  a\n" + h + "  a\n", "escaped": "\\" + h + "  a\\nb\n", "bad hex": "x" + h[1:] + "  a\n",
	} {
		if _, err := measure.ParseChecksumFile([]byte(bad)); !errors.Is(err, measure.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	doc := []byte("doc")
	sums := []byte(h + "  other\n")
	hash := measure.OSImageHash(sums)
	if _, err := measure.VerifyLiteMaterial(hash[:], sums, doc); !errors.Is(err, measure.ErrMeasurementBinding) {
		t.Errorf("no cbor line: %v", err)
	}
}

func TestLoadImageErrors(t *testing.T) {
	if _, err := measure.LoadImage(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing directory")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "metadata.json"), []byte(`{"bios":"ovmf.fd","kernel":"bzImage","initrd":"initrd","ovmf_variant":"202505"}`), 0o644)
	if _, err := measure.LoadImage(dir); !errors.Is(err, measure.ErrUnsupported) {
		t.Errorf("unsupported variant: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "metadata.json"), []byte(`{"bios":"ovmf.fd","kernel":"bzImage","initrd":"initrd"}`), 0o644)
	if _, err := measure.LoadImage(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing firmware: %v", err)
	}
}
