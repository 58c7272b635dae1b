package measure_test

import (
	"crypto/sha512"
	"syscall"
	"testing"
	"time"

	"github.com/tdproof/tdproof/measure"
)

// benchImage is a synthetic 2 MiB firmware, 8 MiB kernel and 3 MiB
// initrd.
func benchImage() (*measure.Image, int64) {
	img := synthImage(2<<20, 8<<20, 3<<20)
	return img, int64(len(img.Firmware) + len(img.Kernel) + len(img.Initrd))
}

// BenchmarkMeasureImage measures MRTD (one page order) and RTMR0–2 of the
// benchmark image. Compare its MB/s with BenchmarkSHA384, the cost of
// hashing the same bytes once.
func BenchmarkMeasureImage(b *testing.B) {
	img, n := benchImage()
	m := measure.Machine{CPUs: 2, MemorySize: 4 << 30}
	b.SetBytes(n)
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := measure.MeasureImage(img, m, measure.Options{ACPI: testACPI}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSHA384 hashes the firmware, kernel and initrd of the
// benchmark image once each: the floor for MeasureImage.
func BenchmarkSHA384(b *testing.B) {
	img, n := benchImage()
	b.SetBytes(n)
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		sha512.Sum384(img.Firmware)
		sha512.Sum384(img.Kernel)
		sha512.Sum384(img.Initrd)
	}
}

// BenchmarkNewLiteMeasurement computes the lite document (both MRTD page
// orders).
func BenchmarkNewLiteMeasurement(b *testing.B) {
	img, n := benchImage()
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := measure.NewLiteMeasurement(img); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLiteMeasure recomputes the registers from a lite document, as
// a verifier does per quote.
func BenchmarkLiteMeasure(b *testing.B) {
	img, _ := benchImage()
	lite, err := measure.NewLiteMeasurement(img)
	if err != nil {
		b.Fatal(err)
	}
	m := measure.Machine{CPUs: 2, MemorySize: 2 << 30, QEMUVersion: "8.2.2"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := lite.Measure(m, testACPI, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// reportCPU reports the process CPU time per iteration (cpu-ns/op), which
// a shared, loaded machine disturbs less than wall time. Call the
// returned function after the loop.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecoverACPILayout recovers the lite fixture's layout without
// the cache: the RSDP search (8931 candidates) and, from the vCPU hint,
// the loader match. "nohint" makes the loader search start at 1 vCPU;
// "unrecognised" is the worst case, digests that match nothing.
func BenchmarkRecoverACPILayout(b *testing.B) {
	g := loadGetQuote(b, liteFixture)
	acpi, err := measure.ACPIFromEventLog(g.events)
	if err != nil {
		b.Fatal(err)
	}
	for _, hint := range []int{2, 0} {
		name := "hint"
		if hint == 0 {
			name = "nohint"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := measure.RecoverACPILayoutUncached(acpi.Loader, acpi.RSDP, hint); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("unrecognised", func(b *testing.B) {
		loader, rsdp := sha512.Sum384([]byte("loader")), sha512.Sum384([]byte("rsdp"))
		for b.Loop() {
			if _, err := measure.RecoverACPILayoutUncached(loader, rsdp, 0); err == nil {
				b.Fatal("random digests recognised")
			}
		}
	})
}
