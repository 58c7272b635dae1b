package measure

import (
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tdproof/tdproof/eventlog"
)

// FirmwareDigests are the RTMR0 digests that depend on the OVMF build
// and its variable store rather than on the TD: the configuration
// firmware volume and the Boot0000 (UiApp) boot option.
type FirmwareDigests struct {
	CFV, Boot0000 [48]byte
	// Source is SourceConstant or SourceEventLog.
	Source string
}

// DstackOVMF holds the digests of the dstack OVMF (§4.3).
var DstackOVMF = FirmwareDigests{
	CFV:      mustDigest("344BC51C980BA621AAA00DA3ED7436F7D6E549197DFE699515DFA2C6583D95E6412AF21C097D473155875FFD561D6790"),
	Boot0000: mustDigest("23ADA07F5261F12F34A0BD8E46760962D6B4D576A416F1FEA1C64BC656B1D28EACF7047AE6E967C58FD2A98BFA74C298"),
	Source:   SourceConstant,
}

func mustDigest(s string) [48]byte {
	var d [48]byte
	if n, err := hex.Decode(d[:], []byte(s)); err != nil || n != 48 {
		panic("measure: bad digest literal " + s)
	}
	return d
}

// ACPIDigests are the SHA-384 digests of the three fw_cfg ACPI blobs
// OVMF measures into RTMR0: etc/table-loader, etc/acpi/rsdp and
// etc/acpi/tables.
type ACPIDigests struct {
	Loader, RSDP, Tables [48]byte
	// Source is SourceComputed (from the blobs) or SourceEventLog.
	Source string
	// MADTCPUs is the number of enabled processors the MADT of the tables
	// blob lists; 0 when unknown (digests from an event log).
	MADTCPUs int
}

// UEFI variable namespaces.
var (
	efiGlobalVariable  = mustGUID("8BE4DF61-93CA-11D2-AA0D-00E098032B8C")
	efiImageSecurityDB = mustGUID("D719B2CB-3D3A-4596-A3BC-DAD00E67656F")
)

// EFIVariableDigest is the digest OVMF measures for an empty (absent)
// UEFI variable: SHA-384 of UEFI_VARIABLE_DATA with VariableName g,
// UnicodeNameLength = len(name) in UTF-16 units, VariableDataLength 0 and
// the UTF-16LE name.
func EFIVariableDigest(g eventlog.GUID, name string) [48]byte {
	u := utf16.Encode([]rune(name))
	b := make([]byte, 0, 32+2*len(u))
	b = append(b, g[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(u)))
	b = binary.LittleEndian.AppendUint64(b, 0)
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return sha512.Sum384(b)
}

var (
	separatorDigest = sha512.Sum384([]byte{0, 0, 0, 0})
	bootOrderDigest = sha512.Sum384([]byte{0, 0}) // BootOrder = [0x0000]
)

// rtmr0Events lists the 13 pre202505 RTMR0 events (§4.3). fw nil means
// DstackOVMF; acpi nil leaves the three ACPI events unknown.
func rtmr0Events(tdHOB [48]byte, hobSource string, fw *FirmwareDigests, acpi *ACPIDigests) []Event {
	if fw == nil {
		fw = &DstackOVMF
	}
	fwIn := []Input{InputFirmware}
	ev := []Event{
		{Type: eventlog.EvEFIHandoffTables2, Digest: tdHOB, Description: "TD HOB", DependsOn: []Input{InputMemory, InputFirmware}, Source: hobSource},
		{Type: eventlog.EvEFIPlatformFirmwareBlob2, Digest: fw.CFV, Description: "configuration firmware volume (CFV)", DependsOn: fwIn, Source: fw.Source},
	}
	for _, v := range []struct {
		g    eventlog.GUID
		name string
	}{{efiGlobalVariable, "SecureBoot"}, {efiGlobalVariable, "PK"}, {efiGlobalVariable, "KEK"}, {efiImageSecurityDB, "db"}, {efiImageSecurityDB, "dbx"}} {
		ev = append(ev, Event{Type: eventlog.EvEFIVariableDriverConfig, Digest: EFIVariableDigest(v.g, v.name),
			Description: "EFI variable " + v.name, DependsOn: fwIn, Source: SourceConstant})
	}
	ev = append(ev, Event{Type: eventlog.EvSeparator, Digest: separatorDigest, Description: "separator", Source: SourceConstant})
	acpiIn := []Input{InputACPI, InputCPUs, InputMemory, InputQEMUVersion}
	for i, name := range []string{"ACPI table-loader", "ACPI RSDP", "ACPI tables"} {
		e := Event{Type: eventlog.EvPlatformConfigFlags, Description: name, DependsOn: acpiIn, Source: SourceUnknown}
		if acpi != nil {
			e.Digest = [3][48]byte{acpi.Loader, acpi.RSDP, acpi.Tables}[i]
			e.Source = acpi.Source
		}
		ev = append(ev, e)
	}
	return append(ev,
		Event{Type: eventlog.EvEFIVariableBoot, Digest: bootOrderDigest, Description: "EFI variable BootOrder", DependsOn: fwIn, Source: SourceConstant},
		Event{Type: eventlog.EvEFIVariableBoot, Digest: fw.Boot0000, Description: "EFI variable Boot0000", DependsOn: fwIn, Source: fw.Source},
	)
}

// The RTMR1 EV_EFI_ACTION strings.
var (
	actionCallingEFIApp = sha512.Sum384([]byte("Calling EFI Application from Boot Option"))
	actionExitBS        = sha512.Sum384([]byte("Exit Boot Services Invocation"))
	actionExitBSOK      = sha512.Sum384([]byte("Exit Boot Services Returned with Success"))
)

// rtmr1Events lists the five RTMR1 events (§4.5).
func rtmr1Events(kernel [48]byte, kernelSource string) []Event {
	return []Event{
		{Type: eventlog.EvEFIBootServicesApplication, Digest: kernel, Description: "kernel (Authenticode of the QEMU-patched bzImage)",
			DependsOn: []Input{InputKernel, InputMemory, InputInitrd}, Source: kernelSource},
		{Type: eventlog.EvEFIAction, Digest: actionCallingEFIApp, Description: `"Calling EFI Application from Boot Option"`, DependsOn: []Input{InputFirmware}, Source: SourceConstant},
		{Type: eventlog.EvSeparator, Digest: separatorDigest, Description: "separator", Source: SourceConstant},
		{Type: eventlog.EvEFIAction, Digest: actionExitBS, Description: `"Exit Boot Services Invocation"`, DependsOn: []Input{InputFirmware}, Source: SourceConstant},
		{Type: eventlog.EvEFIAction, Digest: actionExitBSOK, Description: `"Exit Boot Services Returned with Success"`, DependsOn: []Input{InputFirmware}, Source: SourceConstant},
	}
}

// rtmr2Events lists the two RTMR2 events (§4.6).
func rtmr2Events(cmdline, initrd [48]byte, source string) []Event {
	return []Event{
		{Type: eventlog.EvEventTag, Digest: cmdline, Description: "kernel command line (LoadOptions)", DependsOn: []Input{InputCmdline}, Source: source},
		{Type: eventlog.EvEventTag, Digest: initrd, Description: "initrd", DependsOn: []Input{InputInitrd}, Source: source},
	}
}

// InitrdArg is what OVMF appends to the kernel command line when it
// loads an initrd, and what dstack appends to metadata.json's cmdline.
const InitrdArg = " initrd=initrd"

// KernelCmdline returns the command line OVMF measures for metadata.json's
// cmdline: cmdline + [InitrdArg].
func KernelCmdline(cmdline string) string { return cmdline + InitrdArg }

// CmdlineDigest returns the RTMR2 digest of a measured kernel command
// line: SHA-384 of its UTF-16LE encoding with a NUL terminator. The
// command line must be valid UTF-8 ([ErrMalformed]).
func CmdlineDigest(kernelCmdline string) ([48]byte, error) {
	if !utf8.ValidString(kernelCmdline) {
		return [48]byte{}, fmt.Errorf("measure: %w: kernel command line is not valid UTF-8", ErrMalformed)
	}
	u := utf16.Encode([]rune(kernelCmdline))
	b := make([]byte, 0, 2*len(u)+2)
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return sha512.Sum384(append(b, 0, 0)), nil
}

// RTMR0 event positions of the pre202505 layout.
const (
	rtmr0Events13 = 13
	rtmr0CFV      = 1
	rtmr0Boot0000 = 12
)

// FirmwareFromEventLog takes the CFV and Boot0000 digests from the RTMR0
// events of a reference event log, for firmware other than the dstack
// OVMF. The log's RTMR0 must have the pre202505 layout: 13 events of the
// expected types ([ErrUnsupported] otherwise).
func FirmwareFromEventLog(events []eventlog.Event) (*FirmwareDigests, error) {
	r0 := logRegister(events, 0)
	want := rtmr0Events([48]byte{}, SourceComputed, nil, nil)
	if len(r0) != rtmr0Events13 {
		return nil, fmt.Errorf("measure: event log: %w: RTMR0 has %d events, the pre202505 layout has %d", ErrUnsupported, len(r0), rtmr0Events13)
	}
	for i, e := range r0 {
		if e.Type != want[i].Type {
			return nil, fmt.Errorf("measure: event log: %w: RTMR0 event %d is %v, the pre202505 layout has %v", ErrUnsupported, i, e.Type, want[i].Type)
		}
	}
	fw := &FirmwareDigests{Source: SourceEventLog}
	var ok1, ok2 bool
	fw.CFV, ok1 = digest48(r0[rtmr0CFV].Digest)
	fw.Boot0000, ok2 = digest48(r0[rtmr0Boot0000].Digest)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("measure: event log: %w: CFV or Boot0000 event has no SHA-384 digest", ErrMalformed)
	}
	return fw, nil
}

// ACPIFromEventLog takes the three ACPI digests from the RTMR0 events of
// an event log: exactly one event each named acpi-loader, acpi-rsdp and
// acpi-tables (type EV_PLATFORM_CONFIG_FLAGS, payload "ACPI DATA" when
// the log keeps payloads), with a 48-byte digest. A log without names
// (unlabelled CCEL conversions) may instead have exactly three such
// events, taken in that order.
//
// Digests taken from a log prove only that the log is consistent with
// itself: the ACPI tables are not verified (§1.3, lite mode).
func ACPIFromEventLog(events []eventlog.Event) (*ACPIDigests, error) {
	names := map[string]int{"acpi-loader": 0, "acpi-rsdp": 1, "acpi-tables": 2}
	var found [3]*eventlog.Event
	var unnamed []*eventlog.Event
	for i := range events {
		e := &events[i]
		if e.IMR != 0 || e.Type != eventlog.EvPlatformConfigFlags {
			continue
		}
		if len(e.Payload) > 0 && string(e.Payload) != "ACPI DATA" {
			continue
		}
		k, named := names[e.Name]
		switch {
		case named && found[k] != nil:
			return nil, fmt.Errorf("measure: event log: %w: more than one %s event", ErrMalformed, e.Name)
		case named:
			found[k] = e
		case e.Name == "":
			unnamed = append(unnamed, e)
		}
	}
	if found == [3]*eventlog.Event{} && len(unnamed) == 3 {
		copy(found[:], unnamed)
	}
	a := &ACPIDigests{Source: SourceEventLog}
	dst := [3]*[48]byte{&a.Loader, &a.RSDP, &a.Tables}
	for k, name := range []string{"acpi-loader", "acpi-rsdp", "acpi-tables"} {
		if found[k] == nil {
			return nil, fmt.Errorf("measure: event log: %w: no %s event", ErrMalformed, name)
		}
		d, ok := digest48(found[k].Digest)
		if !ok {
			return nil, fmt.Errorf("measure: event log: %w: %s digest has %d bytes, want 48", ErrMalformed, name, len(found[k].Digest))
		}
		*dst[k] = d
	}
	return a, nil
}

func digest48(b []byte) ([48]byte, bool) {
	if len(b) != 48 {
		return [48]byte{}, false
	}
	return [48]byte(b), true
}

// logRegister returns the events of register imr in log order, without
// EV_NO_ACTION events.
func logRegister(events []eventlog.Event, imr uint32) []eventlog.Event {
	var out []eventlog.Event
	for _, e := range events {
		if e.IMR == imr && e.Type != eventlog.EvNoAction {
			out = append(out, e)
		}
	}
	return out
}
