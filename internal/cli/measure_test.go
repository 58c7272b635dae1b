package cli

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/measure/measuretest"
)

const liteGetQuote = "tdx-lite-getquote.json"

const testCmdline = "console=ttyS0 random.trust_cpu=y random.trust_bootloader=n tsc=reliable no-kvmclock dstack.rootfs_hash=ab oops=panic"

func writeTestImage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	meta := `{"bios":"ovmf.fd","kernel":"bzImage","initrd":"initramfs.cpio.gz","cmdline":"` + testCmdline + `","version":"0.6.0","is_dev":false}`
	for name, b := range map[string][]byte{"ovmf.fd": measuretest.Firmware(), "bzImage": measuretest.Kernel(), "initramfs.cpio.gz": []byte("initrd bytes"), "metadata.json": []byte(meta)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func decodeOut[T any](t *testing.T, o outcome) *T {
	t.Helper()
	v := new(T)
	if err := json.Unmarshal([]byte(o.stdout), v); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, o.stdout)
	}
	return v
}

// TestMeasureDiagnoseLiteFixture: dstack's lite fixture matches, and a
// changed vm_config field or tdx_measurement byte is named.
func TestMeasureDiagnoseLiteFixture(t *testing.T) {
	path := testvectors.Path(t, "dstack", liteGetQuote)
	o := invoke(t, nil, "measure", "diagnose", "--evidence", path, "lite")
	o.wantCode(t, exitOK)
	if !strings.Contains(o.stdout, "Diagnosis (lite mode): match") {
		t.Errorf("stdout:\n%s", o.stdout)
	}
	raw := testvectors.ReadFile(t, "dstack", liteGetQuote)
	var top map[string]any
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(vm map[string]any)
		code  int
		cause string
	}{
		{"unchanged", func(map[string]any) {}, exitOK, ""},
		{"memory_size", func(vm map[string]any) { vm["memory_size"] = 4 << 30 }, exitRejected, "memory_size"},
		{"qemu_version", func(vm map[string]any) { vm["qemu_version"] = "9.2.1" }, exitRejected, "qemu_version"},
		{"checksum file", func(vm map[string]any) { flipB64(t, vm, "checksum_file", 5) }, exitRejected, "checksum_file"},
		{"cbor", func(vm map[string]any) { flipB64(t, vm, "measurement", 40) }, exitRejected, "measurement_document"},
		{"cpu_count", func(vm map[string]any) { vm["cpu_count"] = 8 }, exitRejected, "cpu_count"},
		{"cpu_count 1", func(vm map[string]any) { vm["cpu_count"] = 1 }, exitRejected, "cpu_count"},
		{"cpu_count beyond the recognised layouts", func(vm map[string]any) { vm["cpu_count"] = 300 }, exitRejected, "cpu_count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var vm map[string]any
			if err := json.Unmarshal([]byte(top["vm_config"].(string)), &vm); err != nil {
				t.Fatal(err)
			}
			tc.edit(vm)
			ev := writeEvidence(t, top, vm)
			o := invoke(t, nil, "measure", "diagnose", "--evidence", ev, "--format", "json")
			o.wantCode(t, tc.code)
			out := decodeOut[measureDiagnoseOutput](t, o)
			if out.MediaType != DiagnoseMediaType || out.Mode != "lite" || out.QuoteVerified || out.Match != (tc.code == exitOK) {
				t.Errorf("output %+v", out)
			}
			if tc.cause != "" {
				if len(out.Causes) == 0 || string(out.Causes[0].Input) != tc.cause || !strings.Contains(o.stderr, "tdproof: error: the evidence does not match the reference values: "+tc.cause) {
					t.Errorf("causes %+v, stderr %q", out.Causes, o.stderr)
				}
			}
			if tc.cause == "cpu_count" && !strings.Contains(out.Causes[0].Detail, "describes a MADT for 2 vCPUs") {
				t.Errorf("cpu_count cause %q does not name the vCPUs the tables are for", out.Causes[0].Detail)
			}
		})
	}
}

func flipB64(t *testing.T, vm map[string]any, key string, i int) {
	t.Helper()
	tm := vm["tdx_measurement"].(map[string]any)
	var b []byte
	if err := json.Unmarshal([]byte(`"`+tm[key].(string)+`"`), &b); err != nil {
		t.Fatal(err)
	}
	b[i] ^= 1
	tm[key] = b
}

// writeEvidence writes a GetQuote response with vm replacing vm_config.
func writeEvidence(t *testing.T, top map[string]any, vm map[string]any) string {
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
	p := filepath.Join(t.TempDir(), "evidence.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMeasureImageFlow publishes a lite document for a synthetic image,
// measures it, builds evidence of a TD that booted it (the fixture's
// quote with the expected registers patched in) and diagnoses that
// evidence in both modes.
func TestMeasureImageFlow(t *testing.T) {
	fixture := testvectors.Path(t, "dstack", liteGetQuote)
	dir := writeTestImage(t)
	o := invoke(t, nil, "measure", "lite", "--image", dir, "--format", "json")
	o.wantCode(t, exitOK)
	lite := decodeOut[measureLiteOutput](t, o)
	if lite.MediaType != LiteMediaType || lite.Document.TDHOB != "8010090200060902" {
		t.Errorf("lite output %+v", lite)
	}
	sums, err := os.ReadFile(filepath.Join(dir, "sha256sum.txt"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(dir, "measurement.tdx.cbor"))
	if err != nil {
		t.Fatal(err)
	}

	args := []string{"measure", "--image", dir, "--memory", "2G", "--cpus", "2", "--qemu-version", "8.2.2", "--acpi-from-eventlog", fixture, "--lint", "--format", "json"}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	m := decodeOut[measureOutput](t, o)
	if m.MediaType != MeasureMediaType || m.OSImageHash != lite.OSImageHash || m.PageOrder != "two_pass" || m.ACPISource != measure.SourceEventLog || len(m.RTMRs) != 3 {
		t.Fatalf("measure output %+v", m)
	}
	if m.Lint == nil || len(*m.Lint) != 0 {
		t.Errorf("lint %+v", m.Lint)
	}
	if !m.CPUCountBound || m.ACPILayout == nil || m.ACPILayout.CPUs != 2 {
		t.Errorf("cpu_count bound %v, ACPI layout %+v", m.CPUCountBound, m.ACPILayout)
	}
	// The same with --cpus 4: RTMR0 cannot be predicted, and the text
	// output says which vCPU count the event log's tables are for.
	o4 := invoke(t, nil, "measure", "--image", dir, "--memory", "2G", "--cpus", "4", "--qemu-version", "8.2.2", "--acpi-from-eventlog", fixture)
	o4.wantCode(t, exitOK)
	if !strings.Contains(o4.stdout, "incomplete: the ACPI table loader in the event log describes a MADT for 2 vCPUs (238 bytes), not for cpu_count 4") {
		t.Errorf("--cpus 4 output:\n%s", o4.stdout)
	}

	// Evidence: the fixture's quote with these registers, a log of the
	// expected events, and a lite vm_config for this image.
	raw := testvectors.ReadFile(t, "dstack", liteGetQuote)
	var top map[string]any
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	q, err := hex.DecodeString(top["quote"].(string))
	if err != nil {
		t.Fatal(err)
	}
	copy(q[48+136:], mustHexT(t, m.MRTD))
	var events []eventlog.Event
	for i, r := range m.RTMRs {
		copy(q[48+328+48*i:], mustHexT(t, r.Value))
		for _, e := range r.Events {
			ev := eventlog.Event{IMR: uint32(i), Type: eventlog.EventType(e.Type), Digest: mustHexT(t, e.Digest), Payload: []byte{}}
			if e.Type == uint32(eventlog.EvPlatformConfigFlags) {
				ev.Name = map[string]string{"ACPI table-loader": "acpi-loader", "ACPI RSDP": "acpi-rsdp", "ACPI tables": "acpi-tables"}[e.Description]
				ev.Payload = []byte("ACPI DATA")
			}
			events = append(events, ev)
		}
	}
	top["quote"] = hex.EncodeToString(q)
	top["event_log"] = string(eventlog.MarshalEvents(events))
	vm := map[string]any{"os_image_hash": lite.OSImageHash, "cpu_count": 2, "memory_size": 2 << 30, "qemu_version": "8.2.2",
		"tdx_attestation_variant": "lite", "tdx_measurement": map[string]any{"checksum_file": sums, "measurement": doc}}
	ev := writeEvidence(t, top, vm)
	for _, mode := range [][]string{{"lite"}, {"--image", dir}} {
		o = invoke(t, nil, append([]string{"measure", "diagnose", "--evidence", ev}, mode...)...)
		o.wantCode(t, exitOK, mode...)
	}
	// What-if: the same evidence against 4 GiB names the RAM size.
	for _, mode := range [][]string{{"lite"}, {"--image", dir}} {
		o = invoke(t, nil, append([]string{"measure", "diagnose", "--evidence", ev, "--memory", "4G", "--format", "json"}, mode...)...)
		o.wantCode(t, exitRejected, mode...)
		d := decodeOut[measureDiagnoseOutput](t, o)
		if len(d.Causes) == 0 || d.Causes[0].Input != measure.InputMemory || !strings.Contains(d.Causes[0].Detail, "2 GiB") {
			t.Errorf("%v: causes %+v", mode, d.Causes)
		}
	}
	// The text output of measure lists every register and event.
	o = invoke(t, nil, "measure", "--image", dir, "--memory", "2G")
	o.wantCode(t, exitOK)
	for _, s := range []string{"Reference values", "RTMR0                incomplete", "RTMR1 events", "EV_EFI_BOOT_SERVICES_APPLICATION", "RTMR0 is incomplete"} {
		if !strings.Contains(o.stdout, s) {
			t.Errorf("text output lacks %q:\n%s", s, o.stdout)
		}
	}
}

// TestMeasureExplicitFiles: explicit files and an ACPI directory give the
// same values as the library.
func TestMeasureExplicitFiles(t *testing.T) {
	dir := writeTestImage(t)
	acpi := t.TempDir()
	for name, b := range map[string][]byte{"tables": []byte("FACS tables blob"), "rsdp": []byte("RSD PTR blob"), "table-loader": []byte("loader")} {
		os.WriteFile(filepath.Join(acpi, name), b, 0o644)
	}
	args := []string{"measure", "--firmware", filepath.Join(dir, "ovmf.fd"), "--kernel", filepath.Join(dir, "bzImage"),
		"--initrd", filepath.Join(dir, "initramfs.cpio.gz"), "--cmdline", testCmdline, "--memory", "3G", "--acpi-dir", acpi, "--format", "json"}
	// A tables blob that does not parse as ACPI tables is malformed.
	o := invoke(t, nil, args...)
	o.wantCode(t, exitMalformed, args...)
	os.WriteFile(filepath.Join(acpi, "tables"), acpiTablesBlob(), 0o644)
	o = invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	out := decodeOut[measureOutput](t, o)
	a, err := measure.ACPITables(acpiTablesBlob(), []byte("RSD PTR blob"), []byte("loader"))
	if err != nil {
		t.Fatal(err)
	}
	img := &measure.Image{Firmware: measuretest.Firmware(), Kernel: measuretest.Kernel(), Initrd: []byte("initrd bytes"), Cmdline: testCmdline}
	want, err := measure.MeasureImage(img, measure.Machine{MemorySize: 3 << 30}, measure.Options{ACPI: a})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if out.RTMRs[i].Value != hex.EncodeToString(want.RTMRs[i].Value[:]) {
			t.Errorf("RTMR%d = %s, library %x", i, out.RTMRs[i].Value, want.RTMRs[i].Value)
		}
	}
	if out.MRTD != hex.EncodeToString(want.MRTD[:]) || out.ACPISource != measure.SourceComputed || out.Machine.MemorySize != 3<<30 {
		t.Errorf("output %+v", out)
	}
}

// acpiTablesBlob is a tables blob with one parseable table.
func acpiTablesBlob() []byte {
	b := make([]byte, 256)
	copy(b, "FACS")
	binary.LittleEndian.PutUint32(b[4:], 64)
	return b
}

func TestMeasureErrors(t *testing.T) {
	dir := writeTestImage(t)
	fixture := testvectors.Path(t, "dstack", liteGetQuote)
	noTDX := filepath.Join(t.TempDir(), "plain.fd")
	os.WriteFile(noTDX, make([]byte, 0x10000), 0o644)
	lint := filepath.Join(t.TempDir(), "x")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"measure", "--image", dir}, exitUsage, "missing --memory"},
		{[]string{"measure", "--memory", "2G"}, exitUsage, "missing image"},
		{[]string{"measure", "--image", dir, "--kernel", "k", "--memory", "2G"}, exitUsage, "exclude each other"},
		{[]string{"measure", "--firmware", noTDX, "--memory", "2G"}, exitUsage, "are all required"},
		{[]string{"measure", "--image", dir, "--memory", "lots"}, exitUsage, "invalid memory size"},
		{[]string{"measure", "--image", dir, "--memory", "2G", "--acpi-dir", dir, "--acpi-from-eventlog", fixture}, exitUsage, "exclude each other"},
		{[]string{"measure", "--image", dir, "--memory", "2G", "--acpi-dir", lint}, exitUsage, "has no etc/acpi/tables"},
		{[]string{"measure", "--image", filepath.Join(dir, "missing"), "--memory", "2G"}, exitUsage, "image directory"},
		{[]string{"measure", "--image", dir, "--memory", "2G", "--qemu-version", "7.2.0"}, exitMalformed, "qemu version 7.2.0"},
		{[]string{"measure", "--firmware", noTDX, "--kernel", filepath.Join(dir, "bzImage"), "--initrd", noTDX, "--memory", "2G"}, exitMalformed, "OVMF table footer"},
		{[]string{"measure", "lite"}, exitUsage, "missing --image"},
		{[]string{"measure", "diagnose", "lite"}, exitUsage, "missing --evidence"},
		{[]string{"measure", "diagnose", "--evidence", fixture, "other"}, exitUsage, "only \"lite\""},
		{[]string{"measure", "diagnose", "--evidence", fixture, "--image", dir, "--lite"}, exitUsage, "exclude each other"},
		{[]string{"measure", "diagnose", "--evidence", noTDX, "lite"}, exitMalformed, "evidence"},
		{[]string{"measure", "bogus"}, exitUsage, "unknown command"},
	} {
		o := invoke(t, nil, tc.args...)
		o.wantCode(t, tc.code, tc.args...)
		if !strings.Contains(o.stderr, tc.msg) {
			t.Errorf("%v: stderr %q lacks %q", tc.args, o.stderr, tc.msg)
		}
	}
}

func TestParseMemorySize(t *testing.T) {
	for in, want := range map[string]uint64{"2147483648": 2 << 30, "2G": 2 << 30, "2GiB": 2 << 30, "2048M": 2 << 30, "2.75G": 0xB000_0000, "4g": 4 << 30, "1T": 1 << 40, "512MB": 512 << 20} {
		if got, err := parseMemorySize(in); err != nil || got != want {
			t.Errorf("parseMemorySize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1G", "1.5", "G", "2X", "0.1K"} {
		if _, err := parseMemorySize(in); err == nil {
			t.Errorf("parseMemorySize(%q) accepted", in)
		}
	}
}

func mustHexT(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
