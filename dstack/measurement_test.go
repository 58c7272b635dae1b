package dstack_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/measure/measuretest"
	"github.com/tdproof/tdproof/quote"
)

// liteVector returns the lite GetQuote vector decoded as a JSON object
// and its vm_config decoded as another, for re-serialisation.
func liteVector(t *testing.T) (top, vm map[string]any) {
	t.Helper()
	if err := json.Unmarshal(testvectors.ReadFile(t, "dstack", "tdx-lite-getquote.json"), &top); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(top["vm_config"].(string)), &vm); err != nil {
		t.Fatal(err)
	}
	return top, vm
}

// withVMConfig re-serialises a GetQuote object with vm as its vm_config
// (a JSON string, as dstack's guest agent emits it) and parses it.
func withVMConfig(t *testing.T, top, vm map[string]any) *dstack.Evidence {
	t.Helper()
	vmJSON, err := json.Marshal(vm)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for k, v := range top {
		out[k] = v
	}
	out["vm_config"] = string(vmJSON)
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := dstack.ParseEvidence(b)
	if err != nil {
		t.Fatalf("ParseEvidence: %v", err)
	}
	return ev
}

// flipMaterial flips one bit of byte i of vm_config.tdx_measurement[key]
// (standard base64 in JSON).
func flipMaterial(t *testing.T, vm map[string]any, key string, i int) {
	t.Helper()
	tm := vm["tdx_measurement"].(map[string]any)
	var b []byte
	if err := json.Unmarshal([]byte(`"`+tm[key].(string)+`"`), &b); err != nil {
		t.Fatal(err)
	}
	b[i] ^= 1
	tm[key] = b
}

// TestLiteMeasurementVerify: the lite vector's vm_config.tdx_measurement
// is bound to os_image_hash, and MRTD and RTMR0–2 recomputed from it (ACPI
// digests from the event log) equal the DCAP-verified quote.
func TestLiteMeasurementVerify(t *testing.T) {
	t.Parallel()
	ev := parseVector(t, "tdx-lite-getquote.json")
	want := readExpected(t, "tdx-lite-getquote.expected.json")
	res, err := dstack.Verify(ev, quoteReportCollateral(t), dstack.Options{Now: quoteReportTime})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	m := res.Measurement
	if !res.OSImageHashVerified || m == nil {
		t.Fatalf("os_image_hash_verified %v, measurement %+v", res.OSImageHashVerified, m)
	}
	if m.Mode != dstack.MeasurementLite || m.ACPISource != dstack.ACPIFromEventLog || !m.Match || m.PageOrder != "two_pass" ||
		m.MemorySize != 2<<30 || m.QEMUVersion != "8.2.2" || m.CPUCount != ev.VMConfig.CPUCount {
		t.Errorf("measurement %+v", m)
	}
	wantHex(t, "os_image_hash", m.OSImageHash, want.OSImageHash+want.OSImageHashFromVMConfig)
	for i, w := range []string{want.MRTD, want.RTMR0, want.RTMR1, want.RTMR2} {
		r := m.Registers[i]
		if r.Name != []string{"MRTD", "RTMR0", "RTMR1", "RTMR2"}[i] || !r.Match {
			t.Errorf("register %+v", r)
		}
		wantHex(t, r.Name+" expected", r.Expected, w)
		wantHex(t, r.Name+" quoted", r.Quoted, w)
	}
	if !m.CPUCountVerified || m.ACPILayout == nil || m.ACPILayout.CPUs != 2 || m.ACPILayout.MADTLength != 238 {
		t.Errorf("cpu_count verified %v, ACPI layout %+v; want bound by a 2-vCPU MADT", m.CPUCountVerified, m.ACPILayout)
	}
	if !strings.Contains(strings.Join(m.Notes, "\n"), "contents (and with them the device topology) are not verified") {
		t.Errorf("notes %q do not say the ACPI tables' contents are not verified", m.Notes)
	}
	// The JSON shape: snake_case members under "measurement".
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		Verified    bool           `json:"os_image_hash_verified"`
		Measurement map[string]any `json:"measurement"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	if !j.Verified || j.Measurement["mode"] != "lite" || j.Measurement["acpi_source"] != "event_log" || j.Measurement["match"] != true || j.Measurement["cpu_count_verified"] != true {
		t.Errorf("JSON %s", b)
	}
}

// TestLiteMeasurementTampering: vm_config is not signed by the quote, so
// each change to it must be caught by the binding or the recomputation.
// The quote is unchanged and still verifies with DCAP.
func TestLiteMeasurementTampering(t *testing.T) {
	t.Parallel()
	c := quoteReportCollateral(t)
	quoted := parseVector(t, "tdx-lite-getquote.json").Quote.TD
	for _, tc := range []struct {
		name     string
		edit     func(vm map[string]any)
		sentinel error
		register string // for *MeasurementMismatchError
		cause    string
	}{
		{"unchanged", func(map[string]any) {}, nil, "", ""},
		{"cpu_count", func(vm map[string]any) { vm["cpu_count"] = 8 }, dstack.ErrMeasurement, "", "cpu_count: the ACPI table loader in the event log describes a MADT for 2 vCPUs"},
		{"cpu_count 3", func(vm map[string]any) { vm["cpu_count"] = 3 }, dstack.ErrMeasurement, "", "not for cpu_count 3"},
		{"checksum file", func(vm map[string]any) { flipMaterial(t, vm, "checksum_file", 5) }, dstack.ErrOSImageHash, "", ""},
		{"checksum file, last byte", func(vm map[string]any) {
			flipMaterial(t, vm, "checksum_file", -1+len(mustMaterial(t, vm, "checksum_file")))
		}, dstack.ErrOSImageHash, "", ""},
		{"cbor", func(vm map[string]any) { flipMaterial(t, vm, "measurement", 40) }, dstack.ErrOSImageHash, "", ""},
		{"os_image_hash", func(vm map[string]any) { vm["os_image_hash"] = strings.Repeat("00", 32) }, dstack.ErrOSImageHash, "", ""},
		{"memory_size", func(vm map[string]any) { vm["memory_size"] = 4 << 30 }, dstack.ErrMeasurement, "RTMR0", "memory_size"},
		{"memory_size 3 GiB", func(vm map[string]any) { vm["memory_size"] = 3 << 30 }, dstack.ErrMeasurement, "RTMR0", "memory_size"},
		{"memory_size lite cannot express", func(vm map[string]any) { vm["memory_size"] = 1 << 30 }, dstack.ErrUnsupported, "", ""},
		{"qemu_version", func(vm map[string]any) { vm["qemu_version"] = "9.2.1" }, dstack.ErrMeasurement, "MRTD", "qemu_version"},
		{"qemu_single_pass_add_pages", func(vm map[string]any) { vm["qemu_single_pass_add_pages"] = false }, dstack.ErrMeasurement, "MRTD", "qemu_version"},
		{"ovmf_variant", func(vm map[string]any) { vm["ovmf_variant"] = "post202505" }, dstack.ErrUnsupported, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top, vm := liteVector(t)
			tc.edit(vm)
			ev := withVMConfig(t, top, vm)
			res, err := dstack.Verify(ev, c, dstack.Options{Now: quoteReportTime})
			if tc.sentinel == nil {
				if err != nil || !res.OSImageHashVerified {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if res != nil || !errors.Is(err, tc.sentinel) {
				t.Fatalf("Verify = %v, want %v", err, tc.sentinel)
			}
			if errors.Is(err, dstack.ErrQuote) || errors.Is(err, dstack.ErrEventLog) {
				t.Errorf("error %v blames the quote or log", err)
			}
			if tc.register == "" {
				if !strings.Contains(err.Error(), tc.cause) {
					t.Errorf("error %q lacks %q", err, tc.cause)
				}
				return
			}
			me, ok := errors.AsType[*dstack.MeasurementMismatchError](err)
			if !ok || me.Register != tc.register || me.Mode != dstack.MeasurementLite || me.Expected == me.Quoted || !strings.HasPrefix(me.Cause, tc.cause) {
				t.Fatalf("error %#v, want %s mismatch caused by %s", me, tc.register, tc.cause)
			}
			want := map[string][48]byte{"MRTD": quoted.MRTD, "RTMR0": quoted.RTMRs[0]}[tc.register]
			if me.Quoted != want || !strings.Contains(err.Error(), tc.register+" mismatch") {
				t.Errorf("error %v", err)
			}
		})
	}
}

func mustMaterial(t *testing.T, vm map[string]any, key string) []byte {
	t.Helper()
	var b []byte
	if err := json.Unmarshal([]byte(`"`+vm["tdx_measurement"].(map[string]any)[key].(string)+`"`), &b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLiteMeasurementACPITables: ACPI digests given by the caller are
// reported as from tables and must reproduce RTMR0.
func TestLiteMeasurementACPITables(t *testing.T) {
	t.Parallel()
	ev := parseVector(t, "tdx-lite-getquote.json")
	c := quoteReportCollateral(t)
	logged, err := measure.ACPIFromEventLog(ev.Events)
	if err != nil {
		t.Fatal(err)
	}
	tables := *logged
	tables.Source = measure.SourceComputed
	res, err := dstack.Verify(ev, c, dstack.Options{Now: quoteReportTime, ACPI: &tables})
	if err != nil || res.Measurement.ACPISource != dstack.ACPIFromTables {
		t.Fatalf("Verify: %v, %+v", err, res)
	}
	// RTMR0 was recomputed from the tables' contents: only here are the
	// ACPI tables verified.
	if !res.ACPITablesVerified {
		t.Error("acpi_tables_verified false with the tables recomputed")
	}
	if res, err := dstack.Verify(ev, c, dstack.Options{Now: quoteReportTime}); err != nil || res.ACPITablesVerified {
		t.Errorf("lite, digests from the event log: acpi_tables_verified %v (%v)", res != nil && res.ACPITablesVerified, err)
	}
	tables.Tables[0] ^= 1
	_, err = dstack.Verify(ev, c, dstack.Options{Now: quoteReportTime, ACPI: &tables})
	if me, ok := errors.AsType[*dstack.MeasurementMismatchError](err); !ok || me.Register != "RTMR0" || !strings.HasPrefix(me.Cause, "acpi") {
		t.Fatalf("Verify with other ACPI tables: %v", err)
	}
	// The MADT of the tables must agree with cpu_count.
	tables = *logged
	tables.Source, tables.MADTCPUs = measure.SourceComputed, int(ev.VMConfig.CPUCount)+1
	if _, err := dstack.Verify(ev, c, dstack.Options{Now: quoteReportTime, ACPI: &tables}); !errors.Is(err, dstack.ErrMeasurement) || !strings.Contains(err.Error(), "cpu_count") {
		t.Fatalf("Verify with a MADT that disagrees: %v", err)
	}
}

func testImage() *measure.Image {
	return &measure.Image{Firmware: measuretest.Firmware(), Kernel: measuretest.Kernel(), Initrd: []byte("initrd bytes"), Cmdline: "console=ttyS0 dstack.rootfs_hash=ab"}
}

// imageEvidence is evidence of a TD that booted img on a 2 GiB, 2 vCPU
// QEMU 8.2.2 machine: a dcaptest-signed quote with the expected
// registers, the boot events plus synthetic runtime events, and vm_config.
type imageEvidence struct {
	signed *signed
	ev     *dstack.Evidence
	osHash []byte
}

func newImageEvidence(t *testing.T, img *measure.Image, vmConfig map[string]any) *imageEvidence {
	t.Helper()
	acpi := &measure.ACPIDigests{Loader: [48]byte{1}, RSDP: [48]byte{2}, Tables: [48]byte{3}, Source: measure.SourceEventLog}
	m, err := measure.MeasureImage(img, measure.Machine{CPUs: 2, MemorySize: 2 << 30, QEMUVersion: "8.2.2"}, measure.Options{ACPI: acpi})
	if err != nil {
		t.Fatal(err)
	}
	var events []eventlog.Event
	names := map[string]string{"ACPI table-loader": "acpi-loader", "ACPI RSDP": "acpi-rsdp", "ACPI tables": "acpi-tables"}
	for i, r := range m.RTMRs {
		for _, e := range r.Events {
			le := eventlog.Event{IMR: uint32(i), Type: e.Type, Digest: append([]byte(nil), e.Digest[:]...), Payload: []byte{}}
			if n, ok := names[e.Description]; ok {
				le.Name, le.Payload = n, []byte("ACPI DATA")
			}
			events = append(events, le)
		}
	}
	runtime := syntheticEvents()
	s := newSigned(t, dcaptest.TDXQuoteV4, runtime, [64]byte{}, func(td *quote.TDReport) {
		td.MRTD = m.MRTD
		for i := range 3 {
			td.RTMRs[i] = m.RTMRs[i].Value
		}
	})
	sum := sha256.Sum256([]byte("sha256sum.txt of the test image\n"))
	vm := map[string]any{"os_image_hash": hex.EncodeToString(sum[:]), "cpu_count": 2, "memory_size": 2 << 30, "qemu_version": "8.2.2"}
	for k, v := range vmConfig {
		vm[k] = v
	}
	vmJSON, err := json.Marshal(vm)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := dstack.ParseEvidence(getQuoteJSON(t, s.quote.Raw, append(events, runtime...), string(vmJSON)))
	if err != nil {
		t.Fatalf("ParseEvidence: %v", err)
	}
	return &imageEvidence{signed: s, ev: ev, osHash: sum[:]}
}

// TestImageMeasurement: the legacy path recomputes the registers from an
// image for vm_config's machine, binds os_image_hash when the image's is
// known, and names the changed input on a mismatch.
func TestImageMeasurement(t *testing.T) {
	t.Parallel()
	img := testImage()
	ie := newImageEvidence(t, img, nil)
	opts := ie.signed.options()
	opts.Image, opts.ImageOSHash = img, ie.osHash
	res, err := dstack.Verify(ie.ev, ie.signed.collateral, opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if m := res.Measurement; !res.OSImageHashVerified || m == nil || m.Mode != dstack.MeasurementImage || m.ACPISource != dstack.ACPIFromEventLog || !m.Match {
		t.Fatalf("os_image_hash_verified %v, measurement %+v", res.OSImageHashVerified, res.Measurement)
	}
	if res.ACPITablesVerified {
		t.Error("acpi_tables_verified with ACPI digests from the event log")
	}
	// Without an image and without lite material nothing is measured.
	if res, err := dstack.Verify(ie.ev, ie.signed.collateral, ie.signed.options()); err != nil || res.Measurement != nil || res.OSImageHashVerified {
		t.Fatalf("Verify without image: %v, %+v", err, res)
	}
	// Without the image's os_image_hash the registers are checked but
	// os_image_hash is not bound.
	opts.ImageOSHash = nil
	if res, err := dstack.Verify(ie.ev, ie.signed.collateral, opts); err != nil || res.OSImageHashVerified || !res.Measurement.Match || len(res.Measurement.OSImageHash) != 0 {
		t.Fatalf("Verify without os_image_hash: %v, %+v", err, res)
	}

	other := func(edit func(*measure.Image)) *measure.Image {
		c := *testImage()
		edit(&c)
		return &c
	}
	for _, tc := range []struct {
		name     string
		vm       map[string]any
		img      *measure.Image
		osHash   []byte
		sentinel error
		register string
		cause    string
	}{
		{"os_image_hash differs", nil, img, make([]byte, 32), dstack.ErrOSImageHash, "", ""},
		{"memory_size", map[string]any{"memory_size": 4 << 30}, img, nil, dstack.ErrMeasurement, "RTMR0", "memory_size"},
		{"qemu_version", map[string]any{"qemu_version": "9.2.1"}, img, nil, dstack.ErrMeasurement, "MRTD", "qemu_version"},
		{"cmdline", nil, other(func(i *measure.Image) { i.Cmdline += " debug" }), nil, dstack.ErrMeasurement, "RTMR2", "cmdline"},
		{"initrd", nil, other(func(i *measure.Image) { i.Initrd = []byte("initrd bytez") }), nil, dstack.ErrMeasurement, "RTMR2", "initrd"},
		{"kernel", nil, other(func(i *measure.Image) { i.Kernel = append(measuretest.Kernel(), 0) }), nil, dstack.ErrMeasurement, "RTMR1", "kernel"},
		{"not a TDVF", nil, other(func(i *measure.Image) { i.Firmware = make([]byte, 0x10000) }), nil, dstack.ErrMalformed, "", ""},
		{"qemu too old", map[string]any{"qemu_version": "7.2.0"}, img, nil, dstack.ErrUnsupported, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ie := newImageEvidence(t, img, tc.vm)
			opts := ie.signed.options()
			opts.Image, opts.ImageOSHash = tc.img, tc.osHash
			res, err := dstack.Verify(ie.ev, ie.signed.collateral, opts)
			if res != nil || !errors.Is(err, tc.sentinel) {
				t.Fatalf("Verify = %v, want %v", err, tc.sentinel)
			}
			if tc.register == "" {
				if !strings.Contains(err.Error(), tc.cause) {
					t.Errorf("error %q lacks %q", err, tc.cause)
				}
				return
			}
			me, ok := errors.AsType[*dstack.MeasurementMismatchError](err)
			if !ok || me.Register != tc.register || me.Mode != dstack.MeasurementImage || !strings.HasPrefix(me.Cause, tc.cause) {
				t.Fatalf("error %v, want %s mismatch caused by %q", err, tc.register, tc.cause)
			}
		})
	}
	// Evidence without vm_config cannot be measured against an image.
	noVM := newImageEvidence(t, img, nil)
	noVM.ev.VMConfig = nil
	o := noVM.signed.options()
	o.Image = img
	if _, err := dstack.Verify(noVM.ev, noVM.signed.collateral, o); !errors.Is(err, dstack.ErrUnsupported) {
		t.Fatalf("Verify without vm_config: %v", err)
	}
}
