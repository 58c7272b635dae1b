package dstack

import (
	"encoding/hex"
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tdproof/tdproof/eventlog"
)

// msgpack encoding of VersionedAttestation version 1, as rmp_serde's
// to_vec_named writes it (dstack.md §1.7): structs are maps keyed by field
// name in declaration order, adjacently tagged enums are {"kind", "data"}
// maps, integers take their shortest form. The decoder accepts what serde
// accepts for these types (fields in any order, unknown fields, bin or
// integer arrays for byte strings) and rejects duplicate fields, non-string
// keys, extension types, nesting deeper than mpMaxDepth and trailing bytes.

// Platform kinds of version 1 that are recognised but not verified here.
var unsupportedPlatforms = map[string]bool{"gcp-tdx": true, "nitro-enclave": true, "sev-snp": true, "aws-nitro-tpm": true}

func decodeMsgpack(data []byte) (*Attestation, error) {
	m := newMPReader(data, 0, len(data))
	a := &Attestation{Version: 1}
	var version uint64
	seen, err := m.fields("attestation", func(k string) (bool, error) {
		var err error
		switch k {
		case "version":
			version, err = m.uint("version", math.MaxUint64)
		case "platform":
			err = m.platform(a)
		case "stack":
			err = m.stack(a)
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return nil, err
	}
	if err := m.require("attestation", 0, seen, "version", "platform", "stack"); err != nil {
		return nil, err
	}
	if version != 1 {
		return nil, unsupported("version", 0, "msgpack attestation version %d", version)
	}
	if m.r.Len() != 0 {
		return nil, malformed("attestation", m.off(), "%d trailing bytes", m.r.Len())
	}
	return a, nil
}

func (m *mpReader) platform(a *Attestation) error {
	off := m.off()
	kind, d, err := m.tagged("platform")
	if err != nil {
		return err
	}
	if kind != PlatformTDX {
		if d != nil {
			if known, err := d.otherPlatform(kind, a, off); known {
				return err
			}
		}
		if unsupportedPlatforms[kind] {
			return unsupported("platform.kind", off, "platform %q", kind)
		}
		return malformed("platform.kind", off, "unknown platform %q", kind)
	}
	if d == nil {
		return malformed("platform", off, "missing field \"data\"")
	}
	seen, err := d.fields("platform.data", func(k string) (bool, error) {
		var err error
		switch k {
		case "quote":
			a.Quote, a.ByteArrays, err = d.binary("platform.data.quote")
		case "event_log":
			err = d.eventLog(a)
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return err
	}
	return d.require("platform.data", off, seen, "quote", "event_log")
}

func (m *mpReader) eventLog(a *Attestation) error {
	n, err := m.arrayLen("platform.data.event_log")
	if err != nil {
		return err
	}
	if n > MaxEvents {
		return malformed("platform.data.event_log", m.off(), "%d events exceed the limit of %d", n, MaxEvents)
	}
	a.EventLog = make([]eventlog.Event, n)
	for i := range a.EventLog {
		if err := m.tdxEvent(fmt.Sprintf("platform.data.event_log[%d]", i), &a.EventLog[i]); err != nil {
			return err
		}
	}
	return nil
}

func (m *mpReader) eventVersion(field string) (uint32, error) {
	off := m.off()
	v, err := m.uint(field, math.MaxUint32)
	if err != nil {
		return 0, err
	}
	if v != 1 && v != 2 {
		return 0, malformed(field, off, "unknown event log version %d", v)
	}
	return uint32(v), nil
}

func (m *mpReader) tdxEvent(f string, e *eventlog.Event) error {
	off := m.off()
	seen, err := m.fields(f, func(k string) (bool, error) {
		var err error
		var v uint64
		switch k {
		case "imr":
			v, err = m.uint(f+".imr", math.MaxUint32)
			e.IMR = uint32(v)
		case "event_type":
			v, err = m.uint(f+".event_type", math.MaxUint32)
			e.Type = eventlog.EventType(v)
		case "digest":
			e.Digest, _, err = m.binary(f + ".digest")
		case "event":
			e.Name, err = m.str(f + ".event")
		case "event_payload":
			e.Payload, _, err = m.binary(f + ".event_payload")
		case "version":
			e.Version, err = m.eventVersion(f + ".version")
		case "preimage":
			poff := m.off()
			var s string
			if s, err = m.str(f + ".preimage"); err == nil {
				if e.Preimage, err = hex.DecodeString(s); err != nil {
					err = malformed(f+".preimage", poff, "invalid hex")
				}
			}
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return err
	}
	return m.require(f, off, seen, "imr", "event_type", "event", "event_payload")
}

func (m *mpReader) stack(a *Attestation) error {
	off := m.off()
	kind, d, err := m.tagged("stack")
	if err != nil {
		return err
	}
	if kind != StackDstack && kind != StackDstackPod {
		return unsupported("stack.kind", off, "stack %q", kind)
	}
	if d == nil {
		return malformed("stack", off, "missing field \"data\"")
	}
	a.Stack = kind
	seen, err := d.fields("stack.data", func(k string) (bool, error) {
		var err error
		switch k {
		case "report_data":
			roff := d.off()
			var rd []byte
			if rd, _, err = d.binary("stack.data.report_data"); err == nil && len(rd) != 64 {
				err = malformed("stack.data.report_data", roff, "%d bytes, want 64", len(rd))
			}
			copy(a.ReportData[:], rd)
		case "runtime_events":
			err = d.runtimeEvents(a)
		case "config":
			a.Config, err = d.str("stack.data.config")
		case "report_data_payload":
			if kind != StackDstackPod {
				return false, nil
			}
			a.ReportDataPayload, err = d.str("stack.data.report_data_payload")
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return err
	}
	req := []string{"report_data", "runtime_events", "config"}
	if kind == StackDstackPod {
		req = append(req, "report_data_payload")
	}
	return d.require("stack.data", off, seen, req...)
}

func (m *mpReader) runtimeEvents(a *Attestation) error {
	n, err := m.arrayLen("stack.data.runtime_events")
	if err != nil {
		return err
	}
	if n > MaxEvents {
		return malformed("stack.data.runtime_events", m.off(), "%d events exceed the limit of %d", n, MaxEvents)
	}
	a.RuntimeEvents = make([]RuntimeEvent, n)
	for i := range a.RuntimeEvents {
		f := fmt.Sprintf("stack.data.runtime_events[%d]", i)
		e := &a.RuntimeEvents[i]
		off := m.off()
		seen, err := m.fields(f, func(k string) (bool, error) {
			var err error
			switch k {
			case "event":
				e.Name, err = m.str(f + ".event")
			case "payload":
				e.Payload, _, err = m.binary(f + ".payload")
			case "version":
				e.Version, err = m.eventVersion(f + ".version")
			default:
				return false, nil
			}
			return true, err
		})
		if err != nil {
			return err
		}
		if err := m.require(f, off, seen, "event", "payload"); err != nil {
			return err
		}
	}
	return nil
}

func (a *Attestation) marshalMsgpack() ([]byte, error) {
	if err := a.checkStrings(); err != nil {
		return nil, err
	}
	if a.Stack != StackDstack && a.Stack != StackDstackPod {
		return nil, fmt.Errorf("%w: stack kind %q", ErrUnsupported, a.Stack)
	}
	if a.Stack != StackDstackPod && a.ReportDataPayload != "" {
		return nil, fmt.Errorf("%w: report_data_payload needs stack %q", ErrMalformed, StackDstackPod)
	}
	for i, e := range a.EventLog {
		if e.Version > 2 {
			return nil, fmt.Errorf("%w: event %d has version %d", ErrMalformed, i, e.Version)
		}
	}
	for i, e := range a.RuntimeEvents {
		if e.Version > 2 {
			return nil, fmt.Errorf("%w: runtime event %d has version %d", ErrMalformed, i, e.Version)
		}
	}
	w := &mpWriter{}
	w.e = msgpack.NewEncoder(&w.buf)
	w.mapLen(3)
	w.str("version")
	w.uint(1)

	if err := a.writePlatform(w); err != nil {
		return nil, err
	}

	w.str("stack")
	w.mapLen(2)
	w.str("kind")
	w.str(a.Stack)
	w.str("data")
	if a.Stack == StackDstackPod {
		w.mapLen(4)
	} else {
		w.mapLen(3)
	}
	w.str("report_data")
	w.bytes(a.ReportData[:], a.ByteArrays)
	w.str("runtime_events")
	w.arrayLen(len(a.RuntimeEvents))
	for _, e := range a.RuntimeEvents {
		if e.Version != 0 {
			w.mapLen(3)
		} else {
			w.mapLen(2)
		}
		w.str("event")
		w.str(e.Name)
		w.str("payload")
		w.bytes(e.Payload, false)
		if e.Version != 0 {
			w.str("version")
			w.uint(uint64(e.Version))
		}
	}
	w.str("config")
	w.str(a.Config)
	if a.Stack == StackDstackPod {
		w.str("report_data_payload")
		w.str(a.ReportDataPayload)
	}
	if w.err != nil {
		return nil, fmt.Errorf("dstack: encoding msgpack: %w", w.err)
	}
	return w.buf.Bytes(), nil
}

// writeTDXData writes the quote and event_log members of a TDX (or
// gcp-tdx) platform.data map.
func (a *Attestation) writeTDXData(w *mpWriter) {
	w.str("quote")
	w.bytes(a.Quote, a.ByteArrays)
	w.str("event_log")
	w.arrayLen(len(a.EventLog))
	for _, e := range a.EventLog {
		n := 5
		if e.Version != 0 {
			n++
		}
		if e.Preimage != nil {
			n++
		}
		w.mapLen(n)
		w.str("imr")
		w.uint(uint64(e.IMR))
		w.str("event_type")
		w.uint(uint64(e.Type))
		w.str("digest")
		w.bytes(e.Digest, false)
		w.str("event")
		w.str(e.Name)
		w.str("event_payload")
		w.bytes(e.Payload, false)
		if e.Version != 0 {
			w.str("version")
			w.uint(uint64(e.Version))
		}
		if e.Preimage != nil {
			w.str("preimage")
			w.str(hex.EncodeToString(e.Preimage))
		}
	}
}
