package measure_test

import (
	"crypto/sha512"
	"errors"
	"testing"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/measure"
)

// dstackWitness is the TD HOB witness of the current dstack OVMF (§4.3).
const dstackWitness = "80100904000609020b021010"

// TestLegacyFixtureRTMR0 rebuilds RTMR0 of the 0.5.x fixture (64 GiB,
// full event log) from the dstack OVMF HOB layout, the constants and the
// log's ACPI digests: this covers the TD HOB's split above 2.75 GiB.
func TestLegacyFixtureRTMR0(t *testing.T) {
	g := loadGetQuote(t, "quote-report.json")
	if g.vm.MemorySize != 64<<30 {
		t.Fatalf("memory_size %d", g.vm.MemorySize)
	}
	layout, err := measure.ParseTDHOBWitness(mustHex(t, dstackWitness))
	if err != nil {
		t.Fatal(err)
	}
	acpi, err := measure.ACPIFromEventLog(g.events)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := measure.FirmwareFromEventLog(g.events)
	if err != nil {
		t.Fatal(err)
	}
	if fw.CFV != measure.DstackOVMF.CFV || fw.Boot0000 != measure.DstackOVMF.Boot0000 {
		t.Errorf("firmware digests from the log differ from the dstack OVMF constants")
	}
	hob, err := layout.Digest(g.vm.MemorySize)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.events[0].Digest; string(got) != string(hob[:]) {
		t.Errorf("TD HOB for 64 GiB = %x, log %x", hob, got)
	}
	var digests [][48]byte
	digests = append(digests, hob, fw.CFV)
	for _, v := range []struct{ guid, name string }{
		{"61dfe48bca93d211aa0d00e098032b8c", "SecureBoot"}, {"61dfe48bca93d211aa0d00e098032b8c", "PK"}, {"61dfe48bca93d211aa0d00e098032b8c", "KEK"},
		{"cbb219d73a3d9645a3bcdad00e67656f", "db"}, {"cbb219d73a3d9645a3bcdad00e67656f", "dbx"},
	} {
		digests = append(digests, measure.EFIVariableDigest(eventlog.GUID(mustHex(t, v.guid)), v.name))
	}
	digests = append(digests, sha512.Sum384([]byte{0, 0, 0, 0}), acpi.Loader, acpi.RSDP, acpi.Tables, sha512.Sum384([]byte{0, 0}), fw.Boot0000)
	if got := eventlog.ReplayDigests(digests...); got != g.quote.TD.RTMRs[0] {
		t.Errorf("RTMR0 = %x, quote %x", got, g.quote.TD.RTMRs[0])
	}
	// The full log carries the EFI variable payloads: their digests are
	// the ones EFIVariableDigest computes.
	for i := 2; i <= 6; i++ {
		v, err := eventlog.ParseVariableData(g.events[i].Payload)
		if err != nil {
			t.Fatal(err)
		}
		if d := measure.EFIVariableDigest(v.VendorGUID, v.Name); string(d[:]) != string(g.events[i].Digest) {
			t.Errorf("EFIVariableDigest(%s) = %x, log %x", v.Name, d, g.events[i].Digest)
		}
	}
}

// TestCmdlineDigest checks the UTF-16LE encoding with a NUL terminator
// against hand-encoded bytes (a BMP character and a surrogate pair).
func TestCmdlineDigest(t *testing.T) {
	got, err := measure.CmdlineDigest("a\u00e9\U0001F600" + measure.InitrdArg)
	want := []byte{'a', 0, 0xe9, 0, 0x3d, 0xd8, 0x00, 0xde}
	for _, c := range []byte(measure.InitrdArg) {
		want = append(want, c, 0)
	}
	if w := sha512.Sum384(append(want, 0, 0)); err != nil || got != w {
		t.Errorf("CmdlineDigest = %x, %v; want %x", got, err, w)
	}
	if measure.KernelCmdline("console=ttyS0") != "console=ttyS0 initrd=initrd" {
		t.Errorf("KernelCmdline = %q", measure.KernelCmdline("console=ttyS0"))
	}
	if _, err := measure.CmdlineDigest("bad \xff"); !errors.Is(err, measure.ErrMalformed) {
		t.Errorf("invalid UTF-8: %v", err)
	}
}

// TestACPIFromEventLog covers the selection rules.
func TestACPIFromEventLog(t *testing.T) {
	acpiEvent := func(name string, b byte) eventlog.Event {
		d := make([]byte, 48)
		d[0] = b
		return eventlog.Event{IMR: 0, Type: eventlog.EvPlatformConfigFlags, Digest: d, Name: name, Payload: []byte("ACPI DATA")}
	}
	named := []eventlog.Event{acpiEvent("acpi-loader", 1), acpiEvent("acpi-rsdp", 2), acpiEvent("acpi-tables", 3)}
	a, err := measure.ACPIFromEventLog(named)
	if err != nil || a.Loader[0] != 1 || a.RSDP[0] != 2 || a.Tables[0] != 3 || a.Source != measure.SourceEventLog {
		t.Errorf("named: %+v, %v", a, err)
	}
	unnamed := []eventlog.Event{acpiEvent("", 1), acpiEvent("", 2), acpiEvent("", 3)}
	if a, err := measure.ACPIFromEventLog(unnamed); err != nil || a.Tables[0] != 3 {
		t.Errorf("unnamed: %+v, %v", a, err)
	}
	for name, evs := range map[string][]eventlog.Event{
		"duplicate":   append(named[:3:3], acpiEvent("acpi-rsdp", 9)),
		"missing":     named[:2],
		"short":       {named[0], named[1], {IMR: 0, Type: eventlog.EvPlatformConfigFlags, Name: "acpi-tables", Digest: []byte{1}}},
		"two unnamed": unnamed[:2],
		"wrong imr":   {named[0], named[1], {IMR: 1, Type: eventlog.EvPlatformConfigFlags, Name: "acpi-tables", Digest: make([]byte, 48)}},
	} {
		if _, err := measure.ACPIFromEventLog(evs); !errors.Is(err, measure.ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

// TestFirmwareFromEventLogLayout rejects logs of another RTMR0 layout.
func TestFirmwareFromEventLogLayout(t *testing.T) {
	g := loadGetQuote(t, liteFixture)
	if _, err := measure.FirmwareFromEventLog(g.events); err != nil {
		t.Fatalf("pre202505 log: %v", err)
	}
	// A 17-event (edk2-stable202505) RTMR0: insert extra events.
	extra := append([]eventlog.Event{}, g.events[:2]...)
	extra = append(extra, eventlog.Event{IMR: 0, Type: eventlog.EvPlatformConfigFlags, Digest: make([]byte, 48)})
	extra = append(extra, g.events[2:]...)
	if _, err := measure.FirmwareFromEventLog(extra); !errors.Is(err, measure.ErrUnsupported) {
		t.Errorf("14-event RTMR0: %v, want ErrUnsupported", err)
	}
}

// TestPageOrder covers the QEMU version rule and the inverted flag.
func TestPageOrder(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		version string
		flag    *bool
		want    measure.PageOrder
		err     error
	}{
		{"", nil, measure.SinglePass, nil}, // default 9.1.0
		{"8.0.0", nil, measure.TwoPass, nil},
		{"8.2.2", nil, measure.TwoPass, nil},
		{"9.0.0-rc1", nil, measure.TwoPass, nil},
		{"9.0.0", nil, measure.SinglePass, nil},
		{"10.1.0", nil, measure.SinglePass, nil},
		{"9.2.1", &yes, measure.TwoPass, nil}, // sic: "single pass" true selects two-pass
		{"8.2.2", &no, measure.SinglePass, nil},
		{"7.2.0", nil, 0, measure.ErrUnsupported},
		{"8.0.0-rc4", nil, 0, measure.ErrUnsupported},
		{"8.2", nil, 0, measure.ErrMalformed},
		{"08.2.0", nil, 0, measure.ErrMalformed},
		{"x", nil, 0, measure.ErrMalformed},
	} {
		got, err := measure.Machine{QEMUVersion: tc.version, QEMUSinglePassAddPages: tc.flag}.PageOrder()
		if !errors.Is(err, tc.err) || (err == nil && got != tc.want) {
			t.Errorf("PageOrder(%q, %v) = %v, %v; want %v, %v", tc.version, tc.flag, got, err, tc.want, tc.err)
		}
	}
}

// TestCCELFixtureACPI takes the ACPI digests from the binary CCEL sample.
func TestCCELFixtureACPI(t *testing.T) {
	c, err := eventlog.ParseCCEL(testvectors.ReadFile(t, "dstack", "ccel.bin"))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := c.TDXEvents()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := measure.ACPIFromEventLog(evs); err != nil {
		t.Errorf("ACPIFromEventLog(ccel): %v", err)
	}
	if _, err := measure.FirmwareFromEventLog(evs); err != nil {
		t.Errorf("FirmwareFromEventLog(ccel): %v", err)
	}
}
