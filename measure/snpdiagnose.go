package measure

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Inputs of the SEV-SNP launch digest, as [DiagnoseSNP] and
// [DiagnoseSNPLaunch] name them (measurement.snp.cbor's member names
// and sev_snp_measurement's vcpus, vcpu_type, guest_features).
const (
	InputSNPOVMFHash       Input = "ovmf_hash"
	InputSNPSections       Input = "ovmf_sections"
	InputSNPResetEIP       Input = "reset_eip"
	InputSNPHashesTableGPA Input = "hashes_table_gpa"
	InputSNPKernelHash     Input = "kernel_hash"
	InputSNPInitrdHash     Input = "initrd_hash"
	InputSNPCmdline        Input = InputCmdline
	InputSNPVCPUs          Input = "vcpus"
	InputSNPVCPUType       Input = "vcpu_type"
	InputSNPGuestFeatures  Input = "guest_features"
	// InputSNPImage: the firmware, kernel, initrd or command line differ
	// and no reference was given to tell which.
	InputSNPImage Input = "image"
)

// SNPDiagnosis is the result of [DiagnoseSNPLaunch].
type SNPDiagnosis struct {
	// Match is true when the inputs reproduce Expected.
	Match    bool     `json:"match"`
	Computed [48]byte `json:"-"`
	Expected [48]byte `json:"-"`
	// Causes name the inputs that explain a mismatch, those that alone
	// reproduce Expected first; empty on a match.
	Causes []Cause `json:"causes"`
	// Notes add context, such as a reference that does not reproduce
	// Expected either.
	Notes []string `json:"notes,omitempty"`
}

// MarshalJSON writes the digests as lowercase hex.
func (d SNPDiagnosis) MarshalJSON() ([]byte, error) {
	type plain SNPDiagnosis
	if d.Causes == nil {
		d.Causes = []Cause{}
	}
	return json.Marshal(struct {
		Computed string `json:"computed"`
		Expected string `json:"expected"`
		plain
	}{hex.EncodeToString(d.Computed[:]), hex.EncodeToString(d.Expected[:]), plain(d)})
}

// String is the causes on one line ("vcpus: …; kernel_hash: …"), or
// "match".
func (d *SNPDiagnosis) String() string {
	if d.Match {
		return "match"
	}
	parts := make([]string, len(d.Causes))
	for i, c := range d.Causes {
		parts[i] = string(c.Input) + ": " + c.Detail
	}
	return strings.Join(parts, "; ")
}

// snpFeatureCandidates are the SEV_FEATURES values the diagnosis tries:
// SNPActive alone (QEMU's default) and the given value with one of bits
// 1–9 toggled (DebugSwap is bit 5). The search stays small (at most 10
// pairs of VMSA hashes) because a verifier runs it on unsigned input.
func snpFeatureCandidates(have uint64) []uint64 {
	out := []uint64{1}
	for b := range 9 {
		if f := have ^ 1<<(b+1); f != 1 && f&1 == 1 {
			out = append(out, f)
		}
	}
	return slices.DeleteFunc(out, func(f uint64) bool { return f == have })
}

// snpVCPUTypes are representative names of the distinct CPUID
// signatures snpVCPUSignature knows.
var snpVCPUTypes = []string{"EPYC-v4", "EPYC-Rome", "EPYC-Milan", "EPYC-Genoa"}

// DiagnoseSNPLaunch compares the launch digest of l with expected (a
// verified report's MEASUREMENT) and, on a mismatch, names the inputs
// that explain it:
//
//   - with ref, a known-good input set (such as the image's published
//     measurement.snp.cbor, or inputs computed from the image with
//     [LoadSNPImage]), every input in which l differs from ref
//     ([DiagnoseSNP]), and whether restoring ref's value of that input
//     alone reproduces expected;
//   - otherwise, or when no single input restored from ref reproduces
//     expected: the vCPU count (1–512), the vCPU type (with any count)
//     or the guest features (SNPActive alone, or l's value with one of
//     bits 1–9 toggled) that reproduce expected with l's other inputs.
//     These three are not in measurement.snp.cbor, so os_image_hash
//     does not bind them.
//
// When nothing is found the cause is [InputSNPImage]: the firmware,
// kernel, initrd or command line differ, and only a reference names
// which. The error is non-nil only when l (or ref) is not a valid input
// set ([SNPLaunch.Validate]).
func DiagnoseSNPLaunch(expected [48]byte, l, ref *SNPLaunch) (*SNPDiagnosis, error) {
	base, err := l.sectionsDigest()
	if err != nil {
		return nil, err
	}
	sig, _ := snpVCPUSignature(l.VCPUType)
	d := &SNPDiagnosis{Expected: expected, Computed: snpVMSAs(base, l.VCPUs, sig, l.ResetEIP, l.GuestFeatures)}
	if d.Computed == expected {
		d.Match = true
		return d, nil
	}
	explained := false
	if ref != nil {
		refDigest, err := ref.Digest()
		if err != nil {
			return nil, fmt.Errorf("reference: %w", err)
		}
		if refDigest != expected {
			d.Notes = append(d.Notes, fmt.Sprintf("the reference's launch digest %x does not reproduce MEASUREMENT either", refDigest))
		}
		var alone, other []Cause
		for _, name := range DiagnoseSNP(ref, l) {
			c := Cause{Input(name), snpInputDiff(Input(name), ref, l)}
			fixed := *l
			restoreSNPInput(&fixed, ref, Input(name))
			if fd, err := fixed.Digest(); err == nil && fd == expected {
				c.Detail += "; the reference's value alone reproduces MEASUREMENT"
				alone = append(alone, c)
				continue
			}
			other = append(other, c)
		}
		d.Causes = append(alone, other...)
		explained = len(alone) > 0 || len(other) > 0 && refDigest == expected
	}
	if !explained {
		if c, ok := searchSNPConfig(expected, base, l, sig); ok && !slices.Contains(d.Causes, c) {
			d.Causes = append([]Cause{c}, d.Causes...)
			explained = true
		}
	}
	if len(d.Causes) == 0 {
		d.Causes = []Cause{{InputSNPImage, "no vCPU count, vCPU type or guest features reproduce MEASUREMENT with these firmware, kernel, initrd and command line hashes: one of ovmf_hash, ovmf_sections, reset_eip, hashes_table_gpa, kernel_hash, initrd_hash or cmdline differs (compare with a known-good measurement.snp.cbor or image to name it)"}}
	}
	return d, nil
}

// searchSNPConfig looks for the vCPU count, vCPU type or guest features
// that, with l's image inputs (base: the digest after the sections),
// give expected.
func searchSNPConfig(expected, base [48]byte, l *SNPLaunch, sig uint32) (Cause, bool) {
	count := func(sig uint32, features uint64) (uint32, bool) {
		bsp := snpPageVMSAHash(0xFFFFFFF0, sig, features)
		ap := snpPageVMSAHash(l.ResetEIP, sig, features)
		ld := base
		for n := uint32(1); n <= 512; n++ {
			v := ap
			if n == 1 {
				v = bsp
			}
			ld = snpPageUpdate(ld, v, snpPageVMSA, snpVMSAGPA)
			if ld == expected {
				return n, true
			}
		}
		return 0, false
	}
	if n, ok := count(sig, l.GuestFeatures); ok {
		return Cause{InputSNPVCPUs, fmt.Sprintf("MEASUREMENT is the launch digest of %d vCPUs; the inputs say %d", n, l.VCPUs)}, true
	}
	for _, t := range snpVCPUTypes {
		s, _ := snpVCPUSignature(t)
		if s == sig {
			continue
		}
		if n, ok := count(s, l.GuestFeatures); ok {
			return Cause{InputSNPVCPUType, fmt.Sprintf("MEASUREMENT is the launch digest of vcpu_type %s (CPUID signature %#x) with %d vCPUs; the inputs say %s (%#x) with %d", t, s, n, l.VCPUType, sig, l.VCPUs)}, true
		}
	}
	for _, f := range snpFeatureCandidates(l.GuestFeatures) {
		if snpVMSAs(base, l.VCPUs, sig, l.ResetEIP, f) == expected {
			return Cause{InputSNPGuestFeatures, fmt.Sprintf("MEASUREMENT is the launch digest of guest_features %#x; the inputs say %#x", f, l.GuestFeatures)}, true
		}
	}
	return Cause{}, false
}

func snpPageVMSAHash(eip, sig uint32, features uint64) [48]byte {
	return sha512.Sum384(snpVMSA(eip, sig, features))
}

// snpInputs are, for each input DiagnoseSNP names, its value as a
// diagnosis shows it (prefix before got's, note after ref's) and how to
// set it to ref's.
var snpInputs = map[Input]struct {
	prefix, note string
	show         func(l *SNPLaunch) string
	restore      func(l, ref *SNPLaunch)
}{
	InputSNPOVMFHash: {"", " (a different firmware build)",
		func(l *SNPLaunch) string { return hex.EncodeToString(l.OVMFHash[:]) }, func(l, ref *SNPLaunch) { l.OVMFHash = ref.OVMFHash }},
	InputSNPKernelHash: {"SHA-256 ", " (a different kernel)",
		func(l *SNPLaunch) string { return hex.EncodeToString(l.KernelHash[:]) }, func(l, ref *SNPLaunch) { l.KernelHash = ref.KernelHash }},
	InputSNPInitrdHash: {"SHA-256 ", " (a different initrd)",
		func(l *SNPLaunch) string { return hex.EncodeToString(l.InitrdHash[:]) }, func(l, ref *SNPLaunch) { l.InitrdHash = ref.InitrdHash }},
	InputSNPCmdline: {"", "",
		func(l *SNPLaunch) string { return fmt.Sprintf("%q", l.Cmdline) }, func(l, ref *SNPLaunch) { l.Cmdline = ref.Cmdline }},
	InputSNPVCPUs: {"", "",
		func(l *SNPLaunch) string { return fmt.Sprint(l.VCPUs) }, func(l, ref *SNPLaunch) { l.VCPUs = ref.VCPUs }},
	InputSNPVCPUType: {"", "",
		func(l *SNPLaunch) string { return l.VCPUType }, func(l, ref *SNPLaunch) { l.VCPUType = ref.VCPUType }},
	InputSNPGuestFeatures: {"", "",
		func(l *SNPLaunch) string { return fmt.Sprintf("%#x", l.GuestFeatures) }, func(l, ref *SNPLaunch) { l.GuestFeatures = ref.GuestFeatures }},
	InputSNPResetEIP: {"", " (a different firmware build)",
		func(l *SNPLaunch) string { return fmt.Sprintf("%#x", l.ResetEIP) }, func(l, ref *SNPLaunch) { l.ResetEIP = ref.ResetEIP }},
	InputSNPHashesTableGPA: {"", " (a different firmware build)",
		func(l *SNPLaunch) string { return fmt.Sprintf("%#x", l.HashesTableGPA) }, func(l, ref *SNPLaunch) { l.HashesTableGPA = ref.HashesTableGPA }},
	InputSNPSections: {"", " (a different firmware build)",
		func(l *SNPLaunch) string { return fmt.Sprint(l.Sections) }, func(l, ref *SNPLaunch) { l.Sections = ref.Sections }},
}

// snpInputDiff describes how one input differs between ref and got.
func snpInputDiff(in Input, ref, got *SNPLaunch) string {
	f, ok := snpInputs[in]
	if !ok {
		return "differs from the reference"
	}
	return f.prefix + f.show(got) + ", the reference has " + f.show(ref) + f.note
}

// restoreSNPInput sets one input of l to ref's value.
func restoreSNPInput(l, ref *SNPLaunch, in Input) {
	if f, ok := snpInputs[in]; ok {
		f.restore(l, ref)
	}
}
