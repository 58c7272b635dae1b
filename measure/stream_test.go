package measure_test

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tdproof/tdproof/measure"
)

// withInitrdFile replaces the initrd of dir by a sparse file of size
// bytes (zeros: cheap to create, read like any file).
func withInitrdFile(t testing.TB, dir string, size int64) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "initramfs.cpio.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// allocatedByLoadAndMeasure returns the bytes allocated while loading dir
// and measuring it.
func allocatedByLoadAndMeasure(t *testing.T, dir string) (uint64, *measure.ImageDir) {
	t.Helper()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d, err := measure.LoadImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := measure.MeasureImage(&d.Image, measure.Machine{MemorySize: 2 << 30}, measure.Options{ACPI: testACPI}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, d
}

// TestLoadImageMemoryIndependentOfInitrd checks that loading and
// measuring an image allocates the same whatever the initrd's size (4 MiB
// or 64 MiB): the initrd is hashed while read, never held.
func TestLoadImageMemoryIndependentOfInitrd(t *testing.T) {
	img := synthImage(0x100000, 0x40000, 0x3000)
	dir := writeImageDir(t, img, "0.6.0")
	const small, large = 4 << 20, 64 << 20
	withInitrdFile(t, dir, small)
	allocSmall, _ := allocatedByLoadAndMeasure(t, dir)
	withInitrdFile(t, dir, large)
	allocLarge, d := allocatedByLoadAndMeasure(t, dir)
	t.Logf("allocated: %d bytes with a 4 MiB initrd, %d bytes with a 64 MiB one", allocSmall, allocLarge)
	if allocLarge > allocSmall+1<<20 {
		t.Errorf("a 60 MiB larger initrd allocates %d more bytes", allocLarge-allocSmall)
	}
	if allocLarge >= large/8 {
		t.Errorf("%d bytes allocated for a %d-byte initrd", allocLarge, large)
	}
	// The streamed digests are the file's.
	zeros := make([]byte, large)
	if got := d.Image.InitrdDigests; got.Size != large || got.SHA384 != sha512.Sum384(zeros) || got.SHA256 != nil {
		t.Errorf("initrd digests: size %d, SHA-384 %x, SHA-256 %v", got.Size, got.SHA384, got.SHA256)
	}
	// With sha256sum.txt present both digests come from the one pass.
	if err := os.WriteFile(filepath.Join(dir, "sha256sum.txt"), []byte{}, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := measure.LoadImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Image.InitrdDigests; got.SHA256 == nil || *got.SHA256 != sha256.Sum256(zeros) || got.SHA384 != sha512.Sum384(zeros) {
		t.Errorf("initrd digests with sha256sum.txt: %+v", got)
	}
}

// BenchmarkImageDir loads an image directory (1 MiB firmware, 8 MiB
// kernel, 64 MiB initrd) and measures it, as tdproof measure --image
// does without sha256sum.txt; compare with BenchmarkSHA384File, one
// SHA-384 pass over the same files.
func BenchmarkImageDir(b *testing.B) {
	dir, n := benchImageDir(b)
	b.SetBytes(n)
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		d, err := measure.LoadImage(dir)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := measure.MeasureImage(&d.Image, measure.Machine{MemorySize: 2 << 30}, measure.Options{ACPI: testACPI}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSHA384File hashes the files of BenchmarkImageDir's directory
// once each with SHA-384, reading them as sha384sum does: the floor.
func BenchmarkSHA384File(b *testing.B) {
	dir, n := benchImageDir(b)
	b.SetBytes(n)
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		for _, name := range []string{"ovmf.fd", "bzImage", "initramfs.cpio.gz", "metadata.json"} {
			f, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := measure.HashFile(f, 1<<30, false); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
	}
}

func benchImageDir(b *testing.B) (string, int64) {
	b.Helper()
	img := synthImage(1<<20, 8<<20, 0x3000)
	dir := b.TempDir()
	// writeImageDir takes a *testing.T; write the same layout here.
	meta := []byte(`{"bios":"ovmf.fd","kernel":"bzImage","initrd":"initramfs.cpio.gz","cmdline":` + quoteJSON(img.Cmdline) +
		`,"rootfs":"rootfs.img.verity","version":"0.6.0","git_revision":"abc","shared_ro":true,"is_dev":false}`)
	for name, c := range map[string][]byte{"ovmf.fd": img.Firmware, "bzImage": img.Kernel, "metadata.json": meta} {
		if err := os.WriteFile(filepath.Join(dir, name), c, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	const initrd = 64 << 20
	withInitrdFile(b, dir, initrd)
	return dir, int64(len(img.Firmware)+len(img.Kernel)+len(meta)) + initrd
}

func quoteJSON(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}
