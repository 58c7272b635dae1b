package measure

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// FuzzParseSNPMeasurement: measurement.snp.cbor never panics the parser
// or the digest.
func FuzzParseSNPMeasurement(f *testing.F) {
	f.Add([]byte{0xa1, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseSNPMeasurement(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatal(err)
			}
			return
		}
		l.VCPUs, l.VCPUType, l.GuestFeatures = 2, "EPYC-v4", 1
		_, _ = l.Digest()
	})
}

func TestSNPLaunchValidate(t *testing.T) {
	ok := SNPLaunch{HashesTableGPA: 0x810C00, ResetEIP: 0x80B004, VCPUs: 1, VCPUType: "EPYC-Genoa", GuestFeatures: 1,
		Sections: []SNPSection{{GPA: 0x800000, Size: 0x1000, Type: 1}, {GPA: 0x810000, Size: 0x1000, Type: 0x10}}}
	if _, err := ok.Digest(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*SNPLaunch){
		"guest_features 0": func(l *SNPLaunch) { l.GuestFeatures = 0 },
		"vcpus 0":          func(l *SNPLaunch) { l.VCPUs = 0 },
		"vcpus 513":        func(l *SNPLaunch) { l.VCPUs = 513 },
		"vcpu_type":        func(l *SNPLaunch) { l.VCPUType = "Skylake" },
		"no sections":      func(l *SNPLaunch) { l.Sections = nil },
		"gpa 0":            func(l *SNPLaunch) { l.HashesTableGPA = 0 },
		"eip 0":            func(l *SNPLaunch) { l.ResetEIP = 0 },
		"size 0":           func(l *SNPLaunch) { l.Sections = []SNPSection{{GPA: 0, Size: 0, Type: 0x10}} },
		"no kernel":        func(l *SNPLaunch) { l.Sections = l.Sections[:1] },
		"unknown type":     func(l *SNPLaunch) { l.Sections = append([]SNPSection{{GPA: 0, Size: 0x1000, Type: 9}}, l.Sections...) },
		"table overflow":   func(l *SNPLaunch) { l.HashesTableGPA = 0x810FF0 },
		"too many pages": func(l *SNPLaunch) {
			l.Sections = append([]SNPSection{{GPA: 0x1000000, Size: MaxSNPSectionPages * 4096, Type: 1}}, l.Sections...)
		},
	} {
		l := ok
		mod(&l)
		if _, err := l.Digest(); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	// The cap itself is accepted.
	l := ok
	l.Sections = append([]SNPSection{{GPA: 0x1000000, Size: (MaxSNPSectionPages - 2) * 4096, Type: 1}}, l.Sections...)
	if _, err := l.Digest(); err != nil {
		t.Errorf("sections of exactly MaxSNPSectionPages pages: %v", err)
	}
}

// TestSNPInputsTable: every input DiagnoseSNP names has a row in
// snpInputs, whose restore sets exactly that input to the reference's.
func TestSNPInputsTable(t *testing.T) {
	ref := &SNPLaunch{Cmdline: "a", HashesTableGPA: 1, ResetEIP: 1, Sections: []SNPSection{{GPA: 1, Size: 1, Type: 0x10}},
		VCPUs: 1, VCPUType: "EPYC-v4", GuestFeatures: 1}
	got := &SNPLaunch{Cmdline: "b", HashesTableGPA: 2, ResetEIP: 2, Sections: []SNPSection{{GPA: 2, Size: 1, Type: 0x10}},
		VCPUs: 2, VCPUType: "EPYC-Genoa", GuestFeatures: 3}
	got.OVMFHash[0], got.KernelHash[0], got.InitrdHash[0] = 1, 1, 1
	names := DiagnoseSNP(ref, got)
	if len(names) != 10 {
		t.Fatalf("DiagnoseSNP names %v, want all 10 inputs", names)
	}
	fixed := *got
	for i, name := range names {
		if _, ok := snpInputs[Input(name)]; !ok {
			t.Fatalf("no snpInputs row for %s", name)
		}
		restoreSNPInput(&fixed, ref, Input(name))
		if rest := DiagnoseSNP(ref, &fixed); !slices.Equal(rest, names[i+1:]) {
			t.Fatalf("after restoring %s, DiagnoseSNP names %v, want %v", name, rest, names[i+1:])
		}
	}
	if d, want := snpInputDiff(InputSNPKernelHash, ref, got), "SHA-256 01"; !strings.HasPrefix(d, want) || !strings.HasSuffix(d, "(a different kernel)") {
		t.Errorf("kernel_hash diff %q", d)
	}
}
