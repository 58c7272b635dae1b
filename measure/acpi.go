package measure

import (
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"slices"
)

// fw_cfg file names of the ACPI blobs.
const (
	FwCfgACPITables  = "etc/acpi/tables"
	FwCfgACPIRSDP    = "etc/acpi/rsdp"
	FwCfgTableLoader = "etc/table-loader"
)

// ACPITable is one table found in an etc/acpi/tables blob.
type ACPITable struct {
	Signature string
	Offset    int
	Length    int
}

// ParseACPITables walks the tables of an etc/acpi/tables blob: each table
// starts with a 4-byte signature and a LE32 length; the walk stops at a
// zero signature or the end of the blob. Errors wrap [ErrMalformed].
func ParseACPITables(blob []byte) ([]ACPITable, error) {
	var out []ACPITable
	for off := 0; off+8 <= len(blob); {
		sig := blob[off : off+4]
		if [4]byte(sig) == [4]byte{} {
			break
		}
		n := int(binary.LittleEndian.Uint32(blob[off+4:]))
		if n < 8 || n > len(blob)-off {
			return nil, fmt.Errorf("measure: acpi: %w: table %q at %#x has length %d", ErrMalformed, sig, off, n)
		}
		out = append(out, ACPITable{Signature: string(sig), Offset: off, Length: n})
		off += n
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("measure: acpi: %w: no tables", ErrMalformed)
	}
	return out, nil
}

// loaderTables is the table set QEMU's q35 TDX machine builds in the
// configuration dstack uses, the only one whose loader is synthesised.
var loaderTables = []string{"APIC", "DSDT", "FACP", "FACS", "MCFG", "RSDT", "WAET"}

func tableIndex(tables []ACPITable) (map[string]ACPITable, error) {
	idx := map[string]ACPITable{}
	var sigs []string
	for _, t := range tables {
		if _, dup := idx[t.Signature]; dup {
			return nil, fmt.Errorf("measure: acpi: %w: two %s tables; provide the rsdp and table-loader blobs", ErrUnsupported, t.Signature)
		}
		idx[t.Signature] = t
		sigs = append(sigs, t.Signature)
	}
	slices.Sort(sigs)
	if !slices.Equal(sigs, loaderTables) {
		return nil, fmt.Errorf("measure: acpi: %w: tables %v, the synthesised loader covers exactly %v; provide the rsdp and table-loader blobs", ErrUnsupported, sigs, loaderTables)
	}
	if r := idx["RSDT"]; r.Length != 36+4*4 {
		return nil, fmt.Errorf("measure: acpi: %w: RSDT of %d bytes, want 4 entries", ErrUnsupported, r.Length)
	}
	if f := idx["FACP"]; f.Length < 148 {
		return nil, fmt.Errorf("measure: acpi: %w: FACP of %d bytes has no X_DSDT", ErrUnsupported, f.Length)
	}
	return idx, nil
}

// SynthesizeRSDP returns the 20-byte etc/acpi/rsdp blob QEMU builds for a
// tables blob: "RSD PTR ", a zero checksum (the loader fills it in),
// OEM id "BOCHS ", revision 0, and the RSDT's offset in the tables blob
// (the loader relocates it).
func SynthesizeRSDP(tables []byte) ([]byte, error) {
	t, err := ParseACPITables(tables)
	if err != nil {
		return nil, err
	}
	idx, err := tableIndex(t)
	if err != nil {
		return nil, err
	}
	return rsdp(idx["RSDT"].Offset), nil
}

func rsdp(rsdtOffset int) []byte {
	b := make([]byte, 0, 20)
	b = append(b, "RSD PTR \x00BOCHS \x00"...)
	return binary.LittleEndian.AppendUint32(b, uint32(rsdtOffset))
}

// Table-loader commands (QEMU hw/acpi/bios-linker-loader.c).
const (
	loaderCmdSize      = 128
	loaderFileSize     = 56
	loaderBlobSize     = 4096
	loaderAllocate     = 1
	loaderAddPointer   = 2
	loaderAddChecksum  = 3
	loaderZoneHigh     = 1
	loaderZoneFSeg     = 2
	acpiChecksumOffset = 9
)

type loaderBuilder struct{ b []byte }

func (l *loaderBuilder) cmd(kind uint32) []byte {
	c := make([]byte, loaderCmdSize)
	binary.LittleEndian.PutUint32(c, kind)
	l.b = append(l.b, c...)
	return l.b[len(l.b)-loaderCmdSize+4:]
}

func (l *loaderBuilder) allocate(file string, align uint32, zone byte) {
	c := l.cmd(loaderAllocate)
	copy(c[:loaderFileSize], file)
	binary.LittleEndian.PutUint32(c[loaderFileSize:], align)
	c[loaderFileSize+4] = zone
}

func (l *loaderBuilder) addPointer(ptrFile, pointeeFile string, offset uint32, size byte) {
	c := l.cmd(loaderAddPointer)
	copy(c[:loaderFileSize], ptrFile)
	copy(c[loaderFileSize:2*loaderFileSize], pointeeFile)
	binary.LittleEndian.PutUint32(c[2*loaderFileSize:], offset)
	c[2*loaderFileSize+4] = size
}

func (l *loaderBuilder) addChecksum(file string, result, start, length uint32) {
	c := l.cmd(loaderAddChecksum)
	copy(c[:loaderFileSize], file)
	binary.LittleEndian.PutUint32(c[loaderFileSize:], result)
	binary.LittleEndian.PutUint32(c[loaderFileSize+4:], start)
	binary.LittleEndian.PutUint32(c[loaderFileSize+8:], length)
}

func (l *loaderBuilder) checksumTable(t ACPITable) {
	l.addChecksum(FwCfgACPITables, uint32(t.Offset+acpiChecksumOffset), uint32(t.Offset), uint32(t.Length))
}

// SynthesizeTableLoader returns the 4096-byte etc/table-loader blob QEMU
// builds for a tables blob holding exactly FACS, DSDT, FACP, APIC, MCFG,
// WAET and a four-entry RSDT (§4.4): allocate the RSDP (align 16, FSEG)
// and the tables (align 64, high memory), checksum DSDT, patch FACP's
// FIRMWARE_CTRL, DSDT and X_DSDT pointers, checksum FACP, APIC, MCFG and
// WAET, patch the RSDT entries and checksum it, patch the RSDP's RSDT
// address and checksum the RSDP. Another table set is [ErrUnsupported]:
// its loader cannot be known without QEMU, so give the blob instead.
func SynthesizeTableLoader(tables []byte) ([]byte, error) {
	t, err := ParseACPITables(tables)
	if err != nil {
		return nil, err
	}
	idx, err := tableIndex(t)
	if err != nil {
		return nil, err
	}
	return tableLoader(idx), nil
}

func tableLoader(idx map[string]ACPITable) []byte {
	l := &loaderBuilder{b: make([]byte, 0, loaderBlobSize)}
	l.allocate(FwCfgACPIRSDP, 16, loaderZoneFSeg)
	l.allocate(FwCfgACPITables, 64, loaderZoneHigh)
	l.checksumTable(idx["DSDT"])
	facp := uint32(idx["FACP"].Offset)
	l.addPointer(FwCfgACPITables, FwCfgACPITables, facp+36, 4)  // FIRMWARE_CTRL → FACS
	l.addPointer(FwCfgACPITables, FwCfgACPITables, facp+40, 4)  // DSDT
	l.addPointer(FwCfgACPITables, FwCfgACPITables, facp+140, 8) // X_DSDT
	l.checksumTable(idx["FACP"])
	l.checksumTable(idx["APIC"])
	l.checksumTable(idx["MCFG"])
	l.checksumTable(idx["WAET"])
	rsdt := uint32(idx["RSDT"].Offset)
	for i := range uint32(4) {
		l.addPointer(FwCfgACPITables, FwCfgACPITables, rsdt+36+4*i, 4)
	}
	l.checksumTable(idx["RSDT"])
	l.addPointer(FwCfgACPIRSDP, FwCfgACPITables, 16, 4)
	l.addChecksum(FwCfgACPIRSDP, 8, 0, 20)
	return l.b[:loaderBlobSize] // zero padded: the capacity was allocated zeroed
}

// ACPITables returns the digests of the three ACPI blobs. rsdp and loader
// may be nil, in which case they are synthesised from tables
// ([SynthesizeRSDP], [SynthesizeTableLoader]). MADTCPUs is filled in when
// the MADT parses.
func ACPITables(tables, rsdpBlob, loader []byte) (*ACPIDigests, error) {
	t, err := ParseACPITables(tables)
	if err != nil {
		return nil, err
	}
	if rsdpBlob == nil || loader == nil {
		idx, err := tableIndex(t)
		if err != nil {
			return nil, err
		}
		if rsdpBlob == nil {
			rsdpBlob = rsdp(idx["RSDT"].Offset)
		}
		if loader == nil {
			loader = tableLoader(idx)
		}
	}
	a := &ACPIDigests{
		Loader: sha512.Sum384(loader),
		RSDP:   sha512.Sum384(rsdpBlob),
		Tables: sha512.Sum384(tables),
		Source: SourceComputed,
	}
	a.MADTCPUs, _ = madtCPUs(tables, t)
	return a, nil
}

// MADTCPUCount returns the number of enabled processors (Processor Local
// APIC and Local x2APIC entries with the Enabled flag) in the MADT of a
// tables blob.
func MADTCPUCount(tables []byte) (int, error) {
	t, err := ParseACPITables(tables)
	if err != nil {
		return 0, err
	}
	return madtCPUs(tables, t)
}

func madtCPUs(blob []byte, tables []ACPITable) (int, error) {
	i := slices.IndexFunc(tables, func(t ACPITable) bool { return t.Signature == "APIC" })
	if i < 0 {
		return 0, fmt.Errorf("measure: acpi: %w: no MADT (APIC) table", ErrMalformed)
	}
	madt := blob[tables[i].Offset : tables[i].Offset+tables[i].Length]
	n := 0
	for off := 44; off < len(madt); {
		if off+2 > len(madt) || madt[off+1] < 2 || off+int(madt[off+1]) > len(madt) {
			return 0, fmt.Errorf("measure: acpi: %w: MADT entry at %d", ErrMalformed, off)
		}
		typ, e := madt[off], madt[off:off+int(madt[off+1])]
		switch {
		case typ == 0 && len(e) >= 8 && e[4]&1 != 0: // Processor Local APIC
			n++
		case typ == 9 && len(e) >= 16 && e[8]&1 != 0: // Processor Local x2APIC
			n++
		}
		off += len(e)
	}
	return n, nil
}
