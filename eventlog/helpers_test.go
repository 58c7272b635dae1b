package eventlog_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
)

// synthEvent is one TCG_PCR_EVENT2 record for buildCCEL.
type synthEvent struct {
	mr      uint32
	typ     eventlog.EventType
	digests []eventlog.Digest // nil: one SHA-384 digest of data
	data    []byte
}

// specIDEvent encodes a TCG_EfiSpecIDEvent for algs.
func specIDEvent(algs []eventlog.AlgorithmSize, vendor []byte) []byte {
	var b bytes.Buffer
	b.WriteString("Spec ID Event03\x00")
	b.Write(le32(0))                 // platform class
	b.Write([]byte{0, 2, 0, 2})      // minor, major, errata, uintn size
	b.Write(le32(uint32(len(algs)))) // number of algorithms
	for _, a := range algs {
		b.Write(le16(uint16(a.Alg)))
		b.Write(le16(a.DigestSize))
	}
	b.WriteByte(byte(len(vendor)))
	b.Write(vendor)
	return b.Bytes()
}

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

var sha384Only = []eventlog.AlgorithmSize{{Alg: eventlog.AlgSHA384, DigestSize: 48}}

// encodeEvent2 encodes one TCG_PCR_EVENT2 record.
func encodeEvent2(e synthEvent) []byte {
	digests := e.digests
	if digests == nil {
		d := sha512.Sum384(e.data)
		digests = []eventlog.Digest{{Alg: eventlog.AlgSHA384, Value: d[:]}}
	}
	var b bytes.Buffer
	b.Write(le32(e.mr))
	b.Write(le32(uint32(e.typ)))
	b.Write(le32(uint32(len(digests))))
	for _, d := range digests {
		b.Write(le16(uint16(d.Alg)))
		b.Write(d.Value)
	}
	b.Write(le32(uint32(len(e.data))))
	b.Write(e.data)
	return b.Bytes()
}

// buildCCEL returns a CCEL with a Spec ID header for algs, the events,
// and fillLen bytes of fill. It also returns the encoded records.
func buildCCEL(algs []eventlog.AlgorithmSize, events []synthEvent, fill byte, fillLen int) (log []byte, records [][]byte) {
	var b bytes.Buffer
	spec := specIDEvent(algs, nil)
	b.Write(le32(0))
	b.Write(le32(uint32(eventlog.EvNoAction)))
	b.Write(make([]byte, 20))
	b.Write(le32(uint32(len(spec))))
	b.Write(spec)
	for _, e := range events {
		r := encodeEvent2(e)
		records = append(records, r)
		b.Write(r)
	}
	b.Write(bytes.Repeat([]byte{fill}, fillLen))
	return b.Bytes(), records
}

// variableData encodes a UEFI_VARIABLE_DATA structure.
func variableData(guid eventlog.GUID, name string, data []byte) []byte {
	var b bytes.Buffer
	b.Write(guid[:])
	b.Write(le64(uint64(len(name))))
	b.Write(le64(uint64(len(data))))
	for _, c := range name { // ASCII names only
		b.Write(le16(uint16(c)))
	}
	b.Write(data)
	return b.Bytes()
}

var efiGlobalVariable = eventlog.GUID{0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c}

// sampleEvents is a small TDX-like boot log: RTMR0, RTMR1 and RTMR2
// events interleaved, the three ACPI DATA events, and an MRTD event.
func sampleEvents() []synthEvent {
	return []synthEvent{
		{mr: 1, typ: eventlog.EvEFIHandoffTables2, data: append(append([]byte{9}, "TdxTable\x00"...), append(le64(1), append(efiGlobalVariable[:], le64(0x809000)...)...)...)},
		{mr: 1, typ: eventlog.EvEFIVariableDriverConfig, data: variableData(efiGlobalVariable, "SecureBoot", nil)},
		{mr: 0, typ: eventlog.EvEFIAction, data: []byte("measured into MRTD")},
		{mr: 1, typ: eventlog.EvSeparator, data: []byte{0, 0, 0, 0}},
		{mr: 1, typ: eventlog.EvPlatformConfigFlags, data: []byte("ACPI DATA")},
		{mr: 1, typ: eventlog.EvPlatformConfigFlags, data: []byte("ACPI DATA")},
		{mr: 2, typ: eventlog.EvEFIAction, data: []byte("Calling EFI Application from Boot Option")},
		{mr: 1, typ: eventlog.EvPlatformConfigFlags, data: []byte("ACPI DATA")},
		{mr: 1, typ: eventlog.EvPlatformConfigFlags, data: []byte("ACPI DATA")},
		{mr: 3, typ: eventlog.EvEventTag, data: append(append(le32(0x8F3B22EC), le32(13)...), "Linux initrd\x00"...)},
		{mr: 2, typ: eventlog.EvSeparator, data: []byte{0, 0, 0, 0}},
	}
}

// optionalVector returns a shared dstack test vector, or nil when the
// shared data is absent. Fuzz targets use it for seeds: they must not
// skip when the data is missing.
func optionalVector(name string) []byte {
	b, err := os.ReadFile(filepath.Join(testvectors.Location(), "dstack", name))
	if err != nil {
		return nil
	}
	return b
}

// fixtureEventLog returns the event_log string of a dstack GetQuote-style
// fixture, as bytes.
func fixtureEventLog(tb testing.TB, name string) []byte {
	tb.Helper()
	raw := testvectors.ReadFile(tb, "dstack", name)
	return eventLogField(tb, raw)
}

func eventLogField(tb testing.TB, raw []byte) []byte {
	tb.Helper()
	b, err := eventLogString(raw)
	if err != nil {
		tb.Fatalf("decoding fixture: %v", err)
	}
	return b
}

// eventLogString extracts the event_log string of a GetQuote-style JSON
// document.
func eventLogString(raw []byte) ([]byte, error) {
	var outer struct {
		EventLog string `json:"event_log"`
	}
	if err := json.Unmarshal(raw, &outer); err != nil {
		return nil, err
	}
	if outer.EventLog == "" {
		return nil, errors.New("no event_log")
	}
	return []byte(outer.EventLog), nil
}

// expectedRTMRs reads rtmr0..rtmr3 from a *.expected.json file.
func expectedRTMRs(tb testing.TB, name string) eventlog.RTMRs {
	tb.Helper()
	var exp map[string]any
	if err := json.Unmarshal(testvectors.ReadFile(tb, "dstack", name), &exp); err != nil {
		tb.Fatalf("decoding %s: %v", name, err)
	}
	var r eventlog.RTMRs
	for i := range r {
		key := "rtmr" + string(rune('0'+i))
		s, ok := exp[key].(string)
		if !ok {
			tb.Fatalf("%s: missing %s", name, key)
		}
		r[i] = mustHex48(tb, s)
	}
	return r
}

func mustHex48(tb testing.TB, s string) [48]byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 48 {
		tb.Fatalf("bad 48-byte hex %q: %v", s, err)
	}
	return [48]byte(b)
}

// within reports whether sub lies inside the memory of whole.
func within(sub, whole []byte) bool {
	if len(sub) == 0 {
		return true
	}
	if len(whole) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(whole)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return p >= lo && p+uintptr(len(sub)) <= lo+uintptr(len(whole))
}
