package dstack_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/measure"
)

const snpFixtureMeasurement = "7f51e17f72a04d5422cb2c00998166536019a217376f3aa45a630e59c805a599847ff250dbffcd07e1ba639771d6f05d"

// snpFixtureDocument returns the fixture's measurement.snp.cbor and its
// launch inputs.
func snpFixtureDocument(t *testing.T, ev *dstack.Evidence) ([]byte, *measure.SNPLaunch) {
	t.Helper()
	var outer struct {
		M string `json:"sev_snp_measurement"`
	}
	if err := json.Unmarshal(ev.VMConfig.Raw, &outer); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Measurement []byte `json:"measurement"`
	}
	if err := json.Unmarshal([]byte(outer.M), &doc); err != nil {
		t.Fatal(err)
	}
	l, err := dstack.SNPLaunchInputs(ev.VMConfig)
	if err != nil || l == nil {
		t.Fatal(err)
	}
	return doc.Measurement, l
}

// snpFixtureImage is an SNPImage with the fixture's firmware inputs,
// kernel and initrd hashes and command line: what measure.LoadSNPImage
// gives for the image the fixture booted (whose files are not in the
// shared test data).
func snpFixtureImage(l *measure.SNPLaunch) *measure.SNPImage {
	return &measure.SNPImage{
		Firmware: &measure.SNPFirmware{OVMFHash: l.OVMFHash, Sections: append([]measure.SNPSection(nil), l.Sections...),
			ResetEIP: l.ResetEIP, HashesTableGPA: l.HashesTableGPA, HashesTableSize: 0x400},
		KernelHash: l.KernelHash, InitrdHash: l.InitrdHash, Cmdline: l.Cmdline,
	}
}

// TestSNPFixtureLaunchDocument: measure re-encodes the fixture's
// measurement.snp.cbor byte for byte, and DiagnoseSNPLaunch names every
// changed input against the fixture's MEASUREMENT, with the fixture's
// inputs as the reference and, for the VM configuration, without one.
func TestSNPFixtureLaunchDocument(t *testing.T) {
	ev, err := dstack.ParseEvidence(snpFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	raw, ref := snpFixtureDocument(t, ev)
	doc, err := ref.Document()
	if err != nil || !bytes.Equal(doc, raw) {
		t.Fatalf("measurement.snp.cbor re-encoding differs (%v):\n%x\n%x", err, doc, raw)
	}
	var want [48]byte
	hex.Decode(want[:], []byte(snpFixtureMeasurement))
	if diag, err := measure.DiagnoseSNPLaunch(want, ref, nil); err != nil || !diag.Match {
		t.Fatalf("fixture inputs: %+v %v", diag, err)
	}
	cases := []struct {
		mod          func(*measure.SNPLaunch)
		input, alone measure.Input
	}{
		{func(l *measure.SNPLaunch) { l.KernelHash[0] ^= 1 }, measure.InputSNPKernelHash, measure.InputSNPImage},
		{func(l *measure.SNPLaunch) { l.InitrdHash[31] ^= 1 }, measure.InputSNPInitrdHash, measure.InputSNPImage},
		{func(l *measure.SNPLaunch) { l.Cmdline = strings.Replace(l.Cmdline, "panic=1", "panic=0", 1) }, measure.InputSNPCmdline, measure.InputSNPImage},
		{func(l *measure.SNPLaunch) { l.OVMFHash[0] ^= 0x80 }, measure.InputSNPOVMFHash, measure.InputSNPImage},
		{func(l *measure.SNPLaunch) { l.ResetEIP += 4 }, measure.InputSNPResetEIP, measure.InputSNPImage},
		{func(l *measure.SNPLaunch) { l.VCPUs = 1 }, measure.InputSNPVCPUs, measure.InputSNPVCPUs},
		{func(l *measure.SNPLaunch) { l.VCPUs = 16 }, measure.InputSNPVCPUs, measure.InputSNPVCPUs},
		{func(l *measure.SNPLaunch) { l.VCPUType = "EPYC-Milan-v2" }, measure.InputSNPVCPUType, measure.InputSNPVCPUType},
		{func(l *measure.SNPLaunch) { l.GuestFeatures = 0x21 }, measure.InputSNPGuestFeatures, measure.InputSNPGuestFeatures},
	}
	for _, c := range cases {
		l := *ref
		l.Sections = append([]measure.SNPSection(nil), ref.Sections...)
		c.mod(&l)
		for _, r := range []struct {
			ref  *measure.SNPLaunch
			want measure.Input
		}{{ref, c.input}, {nil, c.alone}} {
			diag, err := measure.DiagnoseSNPLaunch(want, &l, r.ref)
			if err != nil || diag.Match || len(diag.Causes) != 1 || diag.Causes[0].Input != r.want {
				t.Errorf("%s (reference %v): %+v %v", c.input, r.ref != nil, diag, err)
			}
		}
	}
}

// TestSNPVerifyLaunchDiagnosis: VerifySNP names the input behind a launch
// digest mismatch: a misstated vCPU count in the vm_config, or (with
// SNPOptions.Image) the image input that differs from the vm_config's
// measurement.snp.cbor.
func TestSNPVerifyLaunchDiagnosis(t *testing.T) {
	base, err := dstack.ParseEvidence(snpFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	_, ref := snpFixtureDocument(t, base)
	withConfig := func(old, repl string) *dstack.Evidence {
		a := *base.Attestation
		a.Config = strings.Replace(a.Config, old, repl, 1)
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
	cases := []struct {
		name   string
		ev     *dstack.Evidence
		image  func(*measure.SNPImage)
		input  measure.Input
		image2 bool
	}{
		{"vm_config vcpus 3", withConfig(`\"vcpus\":2`, `\"vcpus\":3`), nil, measure.InputSNPVCPUs, false},
		{"vm_config vcpus 1", withConfig(`\"vcpus\":2`, `\"vcpus\":1`), nil, measure.InputSNPVCPUs, false},
		{"vm_config vcpu_type", withConfig(`EPYC-v4`, `EPYC-Genoa`), nil, measure.InputSNPVCPUType, false},
		{"vm_config guest_features", withConfig(`\"guest_features\":1`, `\"guest_features\":33`), nil, measure.InputSNPGuestFeatures, false},
		{"image kernel", base, func(i *measure.SNPImage) { i.KernelHash[3] ^= 1 }, measure.InputSNPKernelHash, true},
		{"image initrd", base, func(i *measure.SNPImage) { i.InitrdHash[3] ^= 1 }, measure.InputSNPInitrdHash, true},
		{"image cmdline", base, func(i *measure.SNPImage) { i.Cmdline += " console=tty0" }, measure.InputSNPCmdline, true},
		{"image firmware", base, func(i *measure.SNPImage) { i.Firmware.OVMFHash[9] ^= 1 }, measure.InputSNPOVMFHash, true},
		{"image sections", base, func(i *measure.SNPImage) { i.Firmware.Sections[5].Size += 0x1000 }, measure.InputSNPSections, true},
		{"vm_config vcpus and image", withConfig(`\"vcpus\":2`, `\"vcpus\":4`), func(i *measure.SNPImage) {}, measure.InputSNPVCPUs, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := dstack.SNPOptions{Now: snpFixtureNow}
			if c.image != nil {
				opts.Image = snpFixtureImage(ref)
				c.image(opts.Image)
			}
			res, err := dstack.VerifySNP(c.ev, opts)
			le, ok := errors.AsType[*dstack.SNPLaunchError](err)
			if res != nil || !ok || !errors.Is(err, dstack.ErrOSImageHash) || le.Image != c.image2 {
				t.Fatalf("got %v", err)
			}
			if d := le.Diagnosis; d == nil || len(d.Causes) == 0 || d.Causes[0].Input != c.input {
				t.Fatalf("diagnosis %+v", le.Diagnosis)
			}
			if !strings.Contains(err.Error(), "likely cause: "+string(c.input)+": ") {
				t.Fatalf("error text %q", err)
			}
			t.Log(err)
		})
	}
	// The image the fixture booted verifies, and is reported.
	res, err := dstack.VerifySNP(base, dstack.SNPOptions{Now: snpFixtureNow, Image: snpFixtureImage(ref)})
	if err != nil || res.SNPLaunch == nil || res.SNPLaunch.Image == nil || !res.SNPLaunch.Match {
		t.Fatalf("fixture image: %v", err)
	}
	// An image without the vm_config's vCPU configuration is refused.
	a := *base.Attestation
	a.Config = `{"os_image_hash":"f69c8e5031ec2b269bbc08839ce02cb98ee255d695626f941f4b37b95946d352"}`
	b, _ := a.Marshal()
	ev, err := dstack.ParseEvidence(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dstack.VerifySNP(ev, dstack.SNPOptions{Now: snpFixtureNow, Image: snpFixtureImage(ref)}); !errors.Is(err, dstack.ErrOSImageHash) {
		t.Fatalf("image without sev_snp_measurement: %v", err)
	}
}
