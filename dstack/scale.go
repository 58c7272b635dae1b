package dstack

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/tdproof/tdproof/eventlog"
)

// SCALE (parity-scale-codec) encoding of VersionedAttestation::V0
// (dstack.md §1.7): little-endian fixed-width integers, Vec and String
// prefixed by a compact length, enums by a one-byte discriminant, [u8; 64]
// as is, () as nothing.

// AttestationQuote discriminants of version 0.
const (
	scaleDstackTdx = 0
	scaleMaxKind   = 4 // DstackGcpTdx, DstackNitroEnclave, DstackAmdSevSnp, DstackAwsNitroTpm
)

type scaleReader struct {
	b   []byte
	off int
}

func (r *scaleReader) u8(field string) (byte, error) {
	if r.off >= len(r.b) {
		return 0, malformed(field, r.off, "truncated")
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *scaleReader) u32(field string) (uint32, error) {
	if len(r.b)-r.off < 4 {
		return 0, malformed(field, r.off, "truncated")
	}
	v := binary.LittleEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v, nil
}

// length reads a compact-encoded u32 length and checks that many bytes (or
// elements of at least minSize bytes) remain. Non-canonical encodings are
// rejected, as parity-scale-codec does, so that re-encoding is exact.
func (r *scaleReader) length(field string, minSize int) (int, error) {
	start := r.off
	if r.off >= len(r.b) {
		return 0, malformed(field, start, "truncated length")
	}
	var v uint64
	switch mode := r.b[r.off] & 3; mode {
	case 0:
		v = uint64(r.b[r.off] >> 2)
		r.off++
	case 1:
		if len(r.b)-r.off < 2 {
			return 0, malformed(field, start, "truncated length")
		}
		v = uint64(binary.LittleEndian.Uint16(r.b[r.off:]) >> 2)
		r.off += 2
		if v < 1<<6 {
			return 0, malformed(field, start, "non-canonical compact length")
		}
	case 2:
		if len(r.b)-r.off < 4 {
			return 0, malformed(field, start, "truncated length")
		}
		v = uint64(binary.LittleEndian.Uint32(r.b[r.off:]) >> 2)
		r.off += 4
		if v < 1<<14 {
			return 0, malformed(field, start, "non-canonical compact length")
		}
	default:
		// Big-integer mode: a Compact<u32> allows exactly four bytes.
		if r.b[r.off]>>2 != 0 {
			return 0, malformed(field, start, "compact length wider than 32 bits")
		}
		if len(r.b)-r.off < 5 {
			return 0, malformed(field, start, "truncated length")
		}
		v = uint64(binary.LittleEndian.Uint32(r.b[r.off+1:]))
		r.off += 5
		if v < 1<<30 {
			return 0, malformed(field, start, "non-canonical compact length")
		}
	}
	if minSize < 1 {
		minSize = 1
	}
	if v > uint64(len(r.b)-r.off)/uint64(minSize) {
		return 0, malformed(field, start, "length %d exceeds the input", v)
	}
	return int(v), nil
}

// bytes reads a Vec<u8>; the result aliases the input and is nil when
// empty.
func (r *scaleReader) bytes(field string) ([]byte, error) {
	n, err := r.length(field, 1)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	b := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return b, nil
}

// str reads a String, which must be valid UTF-8.
func (r *scaleReader) str(field string) (string, error) {
	start := r.off
	b, err := r.bytes(field)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", malformed(field, start, "string is not valid UTF-8")
	}
	return string(b), nil
}

// decodeSCALE decodes VersionedAttestation::V0.
func decodeSCALE(data []byte) (*Attestation, error) {
	r := &scaleReader{b: data}
	if v, err := r.u8("version"); err != nil {
		return nil, err
	} else if v != 0 {
		return nil, unsupported("version", 0, "SCALE attestation version %d", v)
	}
	kind, err := r.u8("quote")
	if err != nil {
		return nil, err
	}
	a := &Attestation{Version: 0}
	if err := r.platformQuote(kind, a); err != nil {
		return nil, err
	}
	n, err := r.length("runtime_events", 2)
	if err != nil {
		return nil, err
	}
	if n > MaxEvents {
		return nil, malformed("runtime_events", r.off, "%d events exceed the limit of %d", n, MaxEvents)
	}
	a.RuntimeEvents = make([]RuntimeEvent, n)
	for i := range a.RuntimeEvents {
		f := fmt.Sprintf("runtime_events[%d]", i)
		if a.RuntimeEvents[i].Name, err = r.str(f + ".event"); err != nil {
			return nil, err
		}
		if a.RuntimeEvents[i].Payload, err = r.bytes(f + ".payload"); err != nil {
			return nil, err
		}
	}
	if len(r.b)-r.off < 64 {
		return nil, malformed("report_data", r.off, "truncated")
	}
	copy(a.ReportData[:], r.b[r.off:])
	r.off += 64
	if a.Config, err = r.str("config"); err != nil {
		return nil, err
	}
	// report: () encodes as nothing.
	if r.off != len(r.b) {
		return nil, malformed("attestation", r.off, "%d trailing bytes", len(r.b)-r.off)
	}
	return a, nil
}

func (r *scaleReader) tdxEvent(f string, e *eventlog.Event) error {
	var err error
	if e.IMR, err = r.u32(f + ".imr"); err != nil {
		return err
	}
	t, err := r.u32(f + ".event_type")
	if err != nil {
		return err
	}
	e.Type = eventlog.EventType(t)
	if e.Digest, err = r.bytes(f + ".digest"); err != nil {
		return err
	}
	if e.Name, err = r.str(f + ".event"); err != nil {
		return err
	}
	e.Payload, err = r.bytes(f + ".event_payload")
	return err
}

// appendCompact appends the canonical compact encoding of v.
func appendCompact(b []byte, v uint64) []byte {
	switch {
	case v < 1<<6:
		return append(b, byte(v<<2))
	case v < 1<<14:
		return binary.LittleEndian.AppendUint16(b, uint16(v<<2|1))
	case v < 1<<30:
		return binary.LittleEndian.AppendUint32(b, uint32(v<<2|2))
	default:
		n := 4
		for n < 8 && v>>(8*n) != 0 {
			n++
		}
		b = append(b, byte((n-4)<<2|3))
		for i := range n {
			b = append(b, byte(v>>(8*i)))
		}
		return b
	}
}

func appendSCALEBytes(b, v []byte) []byte {
	return append(appendCompact(b, uint64(len(v))), v...)
}

func (a *Attestation) marshalSCALE() ([]byte, error) {
	if a.Stack != "" && a.Stack != StackDstack {
		return nil, fmt.Errorf("%w: version 0 attestation cannot carry stack %q", ErrUnsupported, a.Stack)
	}
	if a.ReportDataPayload != "" || a.ByteArrays {
		return nil, fmt.Errorf("%w: version 0 attestation cannot carry a pod payload or byte arrays", ErrUnsupported)
	}
	if err := a.checkStrings(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 2+len(a.Quote)+len(a.Config)+64+256*(len(a.EventLog)+len(a.RuntimeEvents)))
	b, err := a.appendPlatformSCALE(append(b, 0))
	if err != nil {
		return nil, err
	}
	b = appendCompact(b, uint64(len(a.RuntimeEvents)))
	for i, e := range a.RuntimeEvents {
		if e.Version != 0 {
			return nil, fmt.Errorf("%w: version 0 attestation cannot carry the version of runtime event %d", ErrUnsupported, i)
		}
		b = appendSCALEBytes(b, []byte(e.Name))
		b = appendSCALEBytes(b, e.Payload)
	}
	b = append(b, a.ReportData[:]...)
	b = appendSCALEBytes(b, []byte(a.Config))
	return b, nil
}

// checkStrings rejects strings that are not valid UTF-8, which neither
// encoding can carry (both decode them as Rust Strings).
func (a *Attestation) checkStrings() error {
	bad := func(what string) error {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrMalformed, what)
	}
	if !utf8.ValidString(a.Config) {
		return bad("config")
	}
	if !utf8.ValidString(a.ReportDataPayload) {
		return bad("report_data_payload")
	}
	for i := range a.EventLog {
		if !utf8.ValidString(a.EventLog[i].Name) {
			return bad(fmt.Sprintf("event_log[%d].event", i))
		}
	}
	for i := range a.RuntimeEvents {
		if !utf8.ValidString(a.RuntimeEvents[i].Name) {
			return bad(fmt.Sprintf("runtime_events[%d].event", i))
		}
	}
	return nil
}
