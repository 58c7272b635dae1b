package eventlog

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// specIDSignature is the signature of the TCG_EfiSpecIDEvent that opens a
// crypto-agile log ("Spec ID Event03" and a NUL).
const specIDSignature = "Spec ID Event03\x00"

// AlgorithmSize is one entry of the Spec ID event's algorithm table: the
// digest size used for an algorithm throughout the log.
type AlgorithmSize struct {
	// Alg is the TPM_ALG_ID.
	Alg Alg
	// DigestSize is the digest length in bytes; never zero, and equal to
	// Alg.Size() for known algorithms.
	DigestSize uint16
}

// SpecIDEvent is the TCG_EfiSpecIDEvent carried by the first event of a
// crypto-agile log (TCG PC Client PFP §10.4.5.1). Its signature is always
// "Spec ID Event03".
type SpecIDEvent struct {
	// PlatformClass is 0 for client and 1 for server platforms.
	PlatformClass uint32
	// SpecVersionMinor, SpecVersionMajor and SpecErrata give the version
	// of the TCG specification the log follows (2.0 for TDX firmware).
	SpecVersionMinor uint8
	SpecVersionMajor uint8
	SpecErrata       uint8
	// UintnSize is 1 for 32-bit and 2 for 64-bit UINTN.
	UintnSize uint8
	// Algorithms lists the digest algorithms of the log and their sizes,
	// in table order. It is never empty.
	Algorithms []AlgorithmSize
	// VendorInfo aliases the input.
	VendorInfo []byte
}

// Digest is one digest of a TCG_PCR_EVENT2 event.
type Digest struct {
	// Alg is the digest algorithm.
	Alg Alg
	// Value aliases the input; its length is the size the Spec ID event
	// gives for Alg.
	Value []byte
}

// TCGEvent is one event record of a binary CCEL event log: the legacy
// TCG_PCR_EVENT header record or a crypto-agile TCG_PCR_EVENT2.
//
// Digests, Data and Raw alias the input passed to [ParseCCEL]; do not
// modify them.
type TCGEvent struct {
	// Offset is the byte offset of the record in the input.
	Offset int
	// MRIndex is the register index as recorded. In a TDX CCEL, 0 is
	// MRTD and 1–4 are RTMR0–RTMR3; see [TCGEvent.RTMR].
	MRIndex uint32
	// Type is the event type.
	Type EventType
	// Digests are the recorded digests in log order. The legacy header
	// record has a single 20-byte AlgSHA1 digest.
	Digests []Digest
	// Data is the event data (TCG "Event" field).
	Data []byte
	// Raw is the whole record, header fields included.
	Raw []byte
}

// RTMR returns the RTMR index (0–3) that the event extends, mapping the
// TDX CCEL MR index 1→RTMR0, 2→RTMR1, 3→RTMR2, 4→RTMR3. It returns false
// for MR index 0 (MRTD) and for indexes above 4.
func (e *TCGEvent) RTMR() (int, bool) {
	if e.MRIndex >= 1 && e.MRIndex <= 4 {
		return int(e.MRIndex - 1), true
	}
	return 0, false
}

// Digest returns the recorded digest for alg, aliasing the input.
func (e *TCGEvent) Digest(alg Alg) ([]byte, bool) {
	for _, d := range e.Digests {
		if d.Alg == alg {
			return d.Value, true
		}
	}
	return nil, false
}

// Describe returns a short human-readable summary of the event data, for
// display. It never fails: data that does not decode is summarized as
// such.
func (e *TCGEvent) Describe() string { return describe(e.Type, e.Data, "") }

// CCEL is a parsed TDX Confidential Computing Event Log: a TCG PC Client
// crypto-agile event log (TCG PC Client PFP §10) read from the ACPI CCEL
// table region.
type CCEL struct {
	// Header is the first record (legacy TCG_PCR_EVENT format, type
	// EV_NO_ACTION) whose data is the Spec ID event.
	Header TCGEvent
	// SpecID is the decoded Spec ID event.
	SpecID SpecIDEvent
	// Events are the TCG_PCR_EVENT2 records that follow the header, in
	// log order, including any EV_NO_ACTION records.
	Events []TCGEvent
	// Raw is the log itself: the input up to, not including, the end
	// marker or the end of the input. Bytes after the end marker are not
	// examined.
	Raw []byte
}

// ParseCCEL parses a binary TDX CCEL event log.
//
// The log starts with a TCG_PCR_EVENT record of type EV_NO_ACTION
// carrying a "Spec ID Event03" event, followed by TCG_PCR_EVENT2 records
// whose digests are sized by the Spec ID algorithm table. The log ends at
// the end of the input, at a record whose MR index is 0xFFFFFFFF (the
// 0xFF fill of the ACPI region), or at a record header of twelve zero
// bytes (zero fill). Every length is checked against the input.
//
// The result aliases data. On error the result is nil and the error is a
// [*ParseError] wrapping [ErrMalformed] or [ErrUnsupported].
func ParseCCEL(data []byte) (*CCEL, error) {
	r := reader{data: data}
	c := &CCEL{}

	// Legacy TCG_PCR_EVENT header.
	mr, err := r.u32("header mr index")
	if err != nil {
		return nil, err
	}
	typPos := r.pos
	typ, err := r.u32("header event type")
	if err != nil {
		return nil, err
	}
	if EventType(typ) != EvNoAction {
		return nil, &ParseError{Offset: typPos, Field: "header event type",
			Err: fmt.Errorf("%w: first event is %s, want EV_NO_ACTION", ErrMalformed, EventType(typ))}
	}
	sha1, err := r.bytes(20, "header digest")
	if err != nil {
		return nil, err
	}
	size, err := r.u32("header event size")
	if err != nil {
		return nil, err
	}
	dataPos := r.pos
	evData, err := r.bytes(uint64(size), "header event data")
	if err != nil {
		return nil, err
	}
	spec, perr := parseSpecID(evData)
	if perr != nil {
		perr.Offset += dataPos
		return nil, perr
	}
	c.SpecID = *spec
	c.Header = TCGEvent{
		Offset:  0,
		MRIndex: mr,
		Type:    EvNoAction,
		Digests: []Digest{{Alg: AlgSHA1, Value: sha1}},
		Data:    evData,
		Raw:     data[:r.pos],
	}

	for r.pos < len(data) && !isEndMarker(data[r.pos:]) {
		ev, err := r.event2(c.SpecID.Algorithms)
		if err != nil {
			return nil, err
		}
		c.Events = append(c.Events, ev)
	}
	c.Raw = data[:r.pos]
	return c, nil
}

// isEndMarker reports whether rem starts with the 0xFF or zero fill that
// follows the last event.
func isEndMarker(rem []byte) bool {
	allByte := func(b []byte, v byte) bool {
		for _, c := range b {
			if c != v {
				return false
			}
		}
		return true
	}
	return allByte(rem[:min(len(rem), 4)], 0xFF) || allByte(rem[:min(len(rem), 12)], 0)
}

// ParseCCELEvents parses a CCEL event log and returns its events in the
// common [Event] form: [ParseCCEL] then [CCEL.TDXEvents].
func ParseCCELEvents(data []byte) ([]Event, error) {
	c, err := ParseCCEL(data)
	if err != nil {
		return nil, err
	}
	return c.TDXEvents()
}

// TDXEvents converts the log to the common [Event] form the way dstack
// does (its TdxEvent conversion): records with MR index 0 (MRTD) are
// dropped, IMR is MR index − 1, Digest is the record's SHA-384 digest,
// Payload is the event data, and Name is empty except that the first
// three RTMR0 EV_PLATFORM_CONFIG_FLAGS events with data "ACPI DATA" are
// named "acpi-loader", "acpi-rsdp" and "acpi-tables".
//
// Digest and Payload alias the CCEL input. It fails with a [*ParseError]
// wrapping [ErrUnsupported] if a record has an MR index above 4 or no
// SHA-384 digest.
func (c *CCEL) TDXEvents() ([]Event, error) {
	out := make([]Event, 0, len(c.Events))
	acpi := 0
	for i := range c.Events {
		te := &c.Events[i]
		if te.MRIndex == 0 {
			continue
		}
		imr, ok := te.RTMR()
		if !ok {
			return nil, &ParseError{Offset: te.Offset, Field: "mr index",
				Err: fmt.Errorf("%w: mr index %d has no RTMR", ErrUnsupported, te.MRIndex)}
		}
		d, ok := te.Digest(AlgSHA384)
		if !ok {
			return nil, &ParseError{Offset: te.Offset, Field: "digests",
				Err: fmt.Errorf("%w: event has no SHA-384 digest", ErrUnsupported)}
		}
		ev := Event{IMR: uint32(imr), Type: te.Type, Digest: d, Payload: te.Data}
		if imr == 0 && te.Type == EvPlatformConfigFlags && string(te.Data) == acpiDataMarker && acpi < len(acpiEventNames) {
			ev.Name = acpiEventNames[acpi]
			acpi++
		}
		out = append(out, ev)
	}
	return out, nil
}

// acpiDataMarker is the event data of the three RTMR0 events that measure
// the ACPI table blobs QEMU passes to OVMF.
const acpiDataMarker = "ACPI DATA"

var acpiEventNames = [...]string{"acpi-loader", "acpi-rsdp", "acpi-tables"}

// ParseSpecIDEvent decodes a TCG_EfiSpecIDEvent (the data of the first
// event of a crypto-agile log). The result aliases data. Errors are
// [*ParseError]s with offsets relative to data.
func ParseSpecIDEvent(data []byte) (*SpecIDEvent, error) {
	s, err := parseSpecID(data)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func parseSpecID(data []byte) (*SpecIDEvent, *ParseError) {
	r := reader{data: data}
	sig, err := r.bytes(16, "spec id signature")
	if err != nil {
		return nil, err
	}
	if string(sig) != specIDSignature {
		return nil, &ParseError{Offset: 0, Field: "spec id signature",
			Err: fmt.Errorf("%w: signature %q, want %q (not a crypto-agile log)", ErrUnsupported, bytes.TrimRight(sig, "\x00"), "Spec ID Event03")}
	}
	s := &SpecIDEvent{}
	if s.PlatformClass, err = r.u32("platform class"); err != nil {
		return nil, err
	}
	var b []byte
	if b, err = r.bytes(4, "spec version"); err != nil {
		return nil, err
	}
	s.SpecVersionMinor, s.SpecVersionMajor, s.SpecErrata, s.UintnSize = b[0], b[1], b[2], b[3]
	nPos := r.pos
	n, err := r.u32("number of algorithms")
	if err != nil {
		return nil, err
	}
	if n == 0 || uint64(n)*4 > uint64(r.remaining()) {
		return nil, &ParseError{Offset: nPos, Field: "number of algorithms",
			Err: fmt.Errorf("%w: %d algorithms in %d bytes", ErrMalformed, n, r.remaining())}
	}
	s.Algorithms = make([]AlgorithmSize, 0, n)
	for range n {
		pos := r.pos
		alg, err := r.u16("algorithm id")
		if err != nil {
			return nil, err
		}
		size, err := r.u16("digest size")
		if err != nil {
			return nil, err
		}
		a := Alg(alg)
		switch {
		case size == 0:
			return nil, &ParseError{Offset: pos, Field: "digest size",
				Err: fmt.Errorf("%w: zero digest size for %s", ErrMalformed, a)}
		case a.Size() != 0 && int(size) != a.Size():
			return nil, &ParseError{Offset: pos, Field: "digest size",
				Err: fmt.Errorf("%w: %s digest size %d, want %d", ErrMalformed, a, size, a.Size())}
		}
		for _, prev := range s.Algorithms {
			if prev.Alg == a {
				return nil, &ParseError{Offset: pos, Field: "algorithm id",
					Err: fmt.Errorf("%w: algorithm %s listed twice", ErrMalformed, a)}
			}
		}
		s.Algorithms = append(s.Algorithms, AlgorithmSize{Alg: a, DigestSize: size})
	}
	vlen, err := r.bytes(1, "vendor info size")
	if err != nil {
		return nil, err
	}
	if s.VendorInfo, err = r.bytes(uint64(vlen[0]), "vendor info"); err != nil {
		return nil, err
	}
	if r.remaining() != 0 {
		return nil, &ParseError{Offset: r.pos, Field: "spec id event",
			Err: fmt.Errorf("%w: %d trailing bytes", ErrMalformed, r.remaining())}
	}
	return s, nil
}

// reader reads little-endian fields with bounds checks.
type reader struct {
	data []byte
	pos  int
}

func (r *reader) remaining() int { return len(r.data) - r.pos }

func (r *reader) bytes(n uint64, field string) ([]byte, *ParseError) {
	if n > uint64(r.remaining()) {
		return nil, &ParseError{Offset: r.pos, Field: field,
			Err: fmt.Errorf("%w: need %d bytes, %d left", ErrMalformed, n, r.remaining())}
	}
	b := r.data[r.pos : r.pos+int(n) : r.pos+int(n)]
	r.pos += int(n)
	return b, nil
}

func (r *reader) u16(field string) (uint16, *ParseError) {
	b, err := r.bytes(2, field)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (r *reader) u32(field string) (uint32, *ParseError) {
	b, err := r.bytes(4, field)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

// event2 reads one TCG_PCR_EVENT2 record.
func (r *reader) event2(algs []AlgorithmSize) (TCGEvent, error) {
	start := r.pos
	mr, err := r.u32("mr index")
	if err != nil {
		return TCGEvent{}, err
	}
	typ, err := r.u32("event type")
	if err != nil {
		return TCGEvent{}, err
	}
	countPos := r.pos
	count, err := r.u32("digest count")
	if err != nil {
		return TCGEvent{}, err
	}
	// Each digest takes at least 3 bytes (algorithm id and a non-empty
	// value), which bounds the allocation below by the input size.
	if count == 0 || uint64(count) > uint64(len(algs)) || uint64(count)*3 > uint64(r.remaining()) {
		return TCGEvent{}, &ParseError{Offset: countPos, Field: "digest count",
			Err: fmt.Errorf("%w: digest count %d (log has %d algorithms)", ErrMalformed, count, len(algs))}
	}
	digests := make([]Digest, 0, count)
	for range count {
		pos := r.pos
		id, err := r.u16("digest algorithm")
		if err != nil {
			return TCGEvent{}, err
		}
		alg := Alg(id)
		size := 0
		for _, a := range algs {
			if a.Alg == alg {
				size = int(a.DigestSize)
			}
		}
		if size == 0 {
			return TCGEvent{}, &ParseError{Offset: pos, Field: "digest algorithm",
				Err: fmt.Errorf("%w: algorithm %s is not in the spec id event", ErrMalformed, alg)}
		}
		for _, d := range digests {
			if d.Alg == alg {
				return TCGEvent{}, &ParseError{Offset: pos, Field: "digest algorithm",
					Err: fmt.Errorf("%w: two %s digests", ErrMalformed, alg)}
			}
		}
		v, err := r.bytes(uint64(size), "digest")
		if err != nil {
			return TCGEvent{}, err
		}
		digests = append(digests, Digest{Alg: alg, Value: v})
	}
	size, err := r.u32("event size")
	if err != nil {
		return TCGEvent{}, err
	}
	data, err := r.bytes(uint64(size), "event data")
	if err != nil {
		return TCGEvent{}, err
	}
	return TCGEvent{
		Offset:  start,
		MRIndex: mr,
		Type:    EventType(typ),
		Digests: digests,
		Data:    data,
		Raw:     r.data[start:r.pos:r.pos],
	}, nil
}
