package eventlog

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
)

// GUID is an EFI_GUID in its in-memory byte order: the first three fields
// little-endian, the last eight bytes as is.
type GUID [16]byte

// String returns the registry form, e.g.
// "8BE4DF61-93CA-11D2-AA0D-00E098032B8C".
func (g GUID) String() string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X",
		binary.LittleEndian.Uint32(g[0:4]), binary.LittleEndian.Uint16(g[4:6]),
		binary.LittleEndian.Uint16(g[6:8]), g[8:10], g[10:16])
}

// VariableData is a UEFI_VARIABLE_DATA structure, the event data of
// EV_EFI_VARIABLE_DRIVER_CONFIG, EV_EFI_VARIABLE_BOOT(2) and
// EV_EFI_VARIABLE_AUTHORITY events.
type VariableData struct {
	// VendorGUID is the variable's vendor namespace (VariableName).
	VendorGUID GUID
	// Name is the variable name decoded from UTF-16LE (invalid UTF-16 is
	// replaced with U+FFFD).
	Name string
	// Data is the variable data; it aliases the input.
	Data []byte
}

// ParseVariableData decodes a UEFI_VARIABLE_DATA structure. The whole of
// data must be consumed. Errors wrap [ErrMalformed].
func ParseVariableData(data []byte) (*VariableData, error) {
	r := uefiReader{b: data, what: "UEFI_VARIABLE_DATA"}
	v := &VariableData{}
	copy(v.VendorGUID[:], r.take(16))
	nameLen := r.u64()
	dataLen := r.u64()
	if r.err == nil && nameLen > uint64(len(r.b))/2 {
		r.fail("name length %d exceeds the data", nameLen)
	}
	v.Name = decodeUTF16(r.take(nameLen * 2))
	v.Data = r.take(dataLen)
	if err := r.done(); err != nil {
		return nil, err
	}
	return v, nil
}

// ImageLoadEvent is a UEFI_IMAGE_LOAD_EVENT structure, the event data of
// EV_EFI_BOOT_SERVICES_APPLICATION, EV_EFI_BOOT_SERVICES_DRIVER and
// EV_EFI_RUNTIME_SERVICES_DRIVER events.
type ImageLoadEvent struct {
	// ImageLocation is the image's load address in guest memory.
	ImageLocation uint64
	// ImageLength is the image's size in memory, in bytes.
	ImageLength uint64
	// LinkTimeAddress is the image's link-time base address (usually 0).
	LinkTimeAddress uint64
	// DevicePath is the EFI device path of the image; it aliases the
	// input.
	DevicePath []byte
}

// ParseImageLoadEvent decodes a UEFI_IMAGE_LOAD_EVENT structure. The
// whole of data must be consumed. Errors wrap [ErrMalformed].
func ParseImageLoadEvent(data []byte) (*ImageLoadEvent, error) {
	r := uefiReader{b: data, what: "UEFI_IMAGE_LOAD_EVENT"}
	e := &ImageLoadEvent{ImageLocation: r.u64(), ImageLength: r.u64(), LinkTimeAddress: r.u64()}
	e.DevicePath = r.take(r.u64())
	if err := r.done(); err != nil {
		return nil, err
	}
	return e, nil
}

// FirmwareBlob2 is a UEFI_PLATFORM_FIRMWARE_BLOB2 structure, the event
// data of EV_EFI_PLATFORM_FIRMWARE_BLOB2 events.
type FirmwareBlob2 struct {
	// Description is the blob description as recorded (typically ASCII,
	// e.g. "Fv(XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX)").
	Description string
	// Base is the blob's address in guest memory.
	Base uint64
	// Length is the blob's size in bytes.
	Length uint64
}

// ParseFirmwareBlob2 decodes a UEFI_PLATFORM_FIRMWARE_BLOB2 structure.
// The whole of data must be consumed. Errors wrap [ErrMalformed].
func ParseFirmwareBlob2(data []byte) (*FirmwareBlob2, error) {
	r := uefiReader{b: data, what: "UEFI_PLATFORM_FIRMWARE_BLOB2"}
	n := r.take(1)
	var b FirmwareBlob2
	if n != nil {
		b.Description = string(r.take(uint64(n[0])))
	}
	b.Base, b.Length = r.u64(), r.u64()
	if err := r.done(); err != nil {
		return nil, err
	}
	return &b, nil
}

// ConfigurationTable is one EFI_CONFIGURATION_TABLE entry of a handoff
// tables event.
type ConfigurationTable struct {
	// VendorGUID identifies the table.
	VendorGUID GUID
	// Pointer is the table's address in guest memory.
	Pointer uint64
}

// HandoffTables2 is a UEFI_HANDOFF_TABLE_POINTERS2 structure, the event
// data of EV_EFI_HANDOFF_TABLES2 events.
type HandoffTables2 struct {
	// Description is the table description as recorded (e.g. "TdxTable"
	// and a NUL).
	Description string
	// Tables are the configuration table entries, in order.
	Tables []ConfigurationTable
}

// ParseHandoffTables2 decodes a UEFI_HANDOFF_TABLE_POINTERS2 structure.
// The whole of data must be consumed. Errors wrap [ErrMalformed].
func ParseHandoffTables2(data []byte) (*HandoffTables2, error) {
	r := uefiReader{b: data, what: "UEFI_HANDOFF_TABLE_POINTERS2"}
	n := r.take(1)
	var h HandoffTables2
	if n != nil {
		h.Description = string(r.take(uint64(n[0])))
	}
	h.Tables = r.tables()
	if err := r.done(); err != nil {
		return nil, err
	}
	return &h, nil
}

// TaggedEvent is a TCG_PCClientTaggedEvent structure, the event data of
// EV_EVENT_TAG events.
type TaggedEvent struct {
	// ID is the tagged event ID, e.g. 0x8F3B22ED for the Linux EFI stub's
	// load options and 0x8F3B22EC for its initrd.
	ID uint32
	// Data is the tagged event data; it aliases the input.
	Data []byte
}

// ParseTaggedEvent decodes a TCG_PCClientTaggedEvent structure. The whole
// of data must be consumed. Errors wrap [ErrMalformed].
func ParseTaggedEvent(data []byte) (*TaggedEvent, error) {
	r := uefiReader{b: data, what: "TCG_PCClientTaggedEvent"}
	t := &TaggedEvent{ID: r.u32()}
	t.Data = r.take(uint64(r.u32()))
	if err := r.done(); err != nil {
		return nil, err
	}
	return t, nil
}

// Tagged event IDs measured by the Linux EFI stub.
const (
	TagLinuxInitrd      uint32 = 0x8F3B22EC
	TagLinuxLoadOptions uint32 = 0x8F3B22ED
)

// uefiReader reads little-endian fields; the first failure sticks and
// later reads return zero values.
type uefiReader struct {
	b    []byte
	off  int
	what string
	err  error
}

func (r *uefiReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("eventlog: %s: %w: offset %d: "+format, append([]any{r.what, ErrMalformed, r.off}, args...)...)
	}
}

func (r *uefiReader) take(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("need %d bytes, %d left", n, len(r.b))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	r.off += int(n)
	return v
}

func (r *uefiReader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *uefiReader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// tables reads a UINT64 count and that many EFI_CONFIGURATION_TABLEs.
func (r *uefiReader) tables() []ConfigurationTable {
	n := r.u64()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b))/24 {
		r.fail("%d tables exceed the data", n)
		return nil
	}
	t := make([]ConfigurationTable, n)
	for i := range t {
		copy(t[i].VendorGUID[:], r.take(16))
		t[i].Pointer = r.u64()
	}
	return t
}

func (r *uefiReader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}

// decodeUTF16 decodes UTF-16LE bytes (an even count) and drops one
// trailing NUL.
func decodeUTF16(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	s := string(utf16.Decode(u))
	return strings.TrimSuffix(s, "\x00")
}
