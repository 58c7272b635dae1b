package dstack

import (
	"fmt"

	"github.com/tdproof/tdproof/eventlog"
)

// MaxAttestationSize bounds an encoded VersionedAttestation, as dstack
// does (10 MiB).
const MaxAttestationSize = 10 << 20

// MaxEvents bounds the number of events in an attestation's event log and
// in its runtime event list (real logs have well under a hundred).
const MaxEvents = 1 << 16

// Attestation kinds of VersionedAttestation version 1 that this package
// decodes (dstack.md §1.7).
const (
	// PlatformTDX is the only supported platform kind ("tdx"); version 0
	// calls it DstackTdx.
	PlatformTDX = "tdx"
	// StackDstack and StackDstackPod are the stack kinds.
	StackDstack    = "dstack"
	StackDstackPod = "dstack-pod"
)

// RuntimeEvent is a dstack runtime event as the attestation's stack
// carries it: name and payload, whose digest is recomputed on replay.
type RuntimeEvent struct {
	// Name is the event name ("compose-hash", …).
	Name string
	// Payload is the event data.
	Payload []byte
	// Version is the digest version: 0 when absent (meaning 1), 1 or 2.
	// Version 0 attestations cannot carry it.
	Version uint32
}

// Attestation is a decoded dstack VersionedAttestation (dstack.md §1.7)
// for the TDX platform.
//
// Version 0 is SCALE: the enum byte 0x00, AttestationQuote::DstackTdx
// (0x00) with the quote and the TdxEvent log, the runtime events, the
// 64-byte report data, the config string and an empty report. Version 1 is
// msgpack with named fields:
//
//	{"version":1,
//	 "platform":{"kind":"tdx","data":{"quote":…,"event_log":[TdxEvent…]}},
//	 "stack":{"kind":"dstack"|"dstack-pod","data":{"report_data":…,
//	          "runtime_events":[…],"config":…[,"report_data_payload":…]}}}
//
// Byte slices may alias the decoded input.
type Attestation struct {
	// Version is 0 (SCALE) or 1 (msgpack).
	Version int
	// Stack is the version 1 stack kind, StackDstack or StackDstackPod.
	// It is empty for version 0.
	Stack string
	// Quote is the raw TDX quote.
	Quote []byte
	// EventLog is the platform event log (TdxEvent list). Attestations
	// embedded in RA-TLS certificates carry it stripped (dstack.md §2.2).
	// Version 0 cannot carry event versions or preimages.
	EventLog []eventlog.Event
	// RuntimeEvents are the events replayed into RTMR3.
	RuntimeEvents []RuntimeEvent
	// ReportData is the report data the attestation claims; it must equal
	// the quote's REPORTDATA.
	ReportData [64]byte
	// Config is the VM configuration JSON text (vm_config, or a whole
	// sys-config with a nested "vm_config" in older guests).
	Config string
	// ReportDataPayload is the dstack-pod payload bound by ReportData.
	ReportDataPayload string
	// SNP is the AMD SEV-SNP platform evidence (version 0
	// DstackAmdSevSnp, version 1 platform kind "sev-snp"); nil for TDX,
	// whose Quote and EventLog are then empty.
	SNP *SNPQuote
	// ByteArrays records, for version 1, that quote and report_data are
	// msgpack arrays of integers (how rmp_serde writes a Vec<u8>) rather
	// than bin values. The decoder sets it from the quote; the encoder
	// follows it.
	ByteArrays bool

	// Platform is the platform kind when it is not TDX: PlatformGCPTDX,
	// PlatformNitroEnclave or PlatformAWSNitroTPM (multi-tee.md §1.1).
	Platform string
	// NSMQuote is the Nitro Enclave's NSM attestation document
	// (COSE_Sign1), NitroTPMDocument the NitroTPM one.
	NSMQuote         []byte
	NitroTPMDocument []byte
	// TPMQuote is the GCP vTPM quote of PlatformGCPTDX, next to the TDX
	// Quote and EventLog.
	TPMQuote *TPMQuote
}

// ParseAttestation decodes a VersionedAttestation: SCALE version 0 when the
// first byte is 0x00, msgpack version 1 when it is a msgpack map
// (0x80–0x8f, 0xde, 0xdf). The whole input must be consumed. On error the
// result is nil and the error wraps ErrMalformed or ErrUnsupported.
func ParseAttestation(data []byte) (*Attestation, error) {
	if len(data) == 0 {
		return nil, malformed("attestation", 0, "empty")
	}
	if len(data) > MaxAttestationSize {
		return nil, malformed("attestation", 0, "%d bytes exceed the %d byte limit", len(data), MaxAttestationSize)
	}
	switch c := data[0]; {
	case c == 0x00:
		return decodeSCALE(data)
	case c >= 0x80 && c <= 0x8f, c == 0xde, c == 0xdf:
		return decodeMsgpack(data)
	default:
		return nil, unsupported("attestation", 0, "unknown VersionedAttestation version byte 0x%02x", c)
	}
}

// Marshal encodes a as a VersionedAttestation of its Version: SCALE for 0,
// msgpack (rmp_serde's named form) for 1. Decoding the output with
// ParseAttestation gives a back. Version 0 cannot carry event versions,
// preimages, a pod stack or byte arrays; Marshal fails rather than drop
// them, and it fails for anything ParseAttestation would refuse (invalid
// UTF-8, more than MaxEvents events, more than MaxAttestationSize bytes).
func (a *Attestation) Marshal() ([]byte, error) {
	if len(a.EventLog) > MaxEvents || len(a.RuntimeEvents) > MaxEvents {
		return nil, fmt.Errorf("%w: more than %d events", ErrMalformed, MaxEvents)
	}
	var b []byte
	var err error
	switch a.Version {
	case 0:
		b, err = a.marshalSCALE()
	case 1:
		b, err = a.marshalMsgpack()
	default:
		return nil, fmt.Errorf("%w: attestation version %d", ErrUnsupported, a.Version)
	}
	if err != nil {
		return nil, err
	}
	if len(b) > MaxAttestationSize {
		return nil, fmt.Errorf("%w: %d bytes exceed the %d byte limit", ErrMalformed, len(b), MaxAttestationSize)
	}
	return b, nil
}

// runtimeEvents converts the stack's runtime events to replayable events
// (IMR 3, type EvDstackRuntime). When the platform event log also lists
// runtime events, the two lists must agree in order, name, payload and
// version; the log's supplied digests and preimages are then carried over
// so that they can be checked.
func (a *Attestation) runtimeEvents() ([]eventlog.Event, error) {
	logged := eventlog.RuntimeEvents(a.EventLog)
	if len(logged) != 0 && len(logged) != len(a.RuntimeEvents) {
		return nil, malformed("runtime_events", -1, "event log has %d runtime events, stack has %d", len(logged), len(a.RuntimeEvents))
	}
	out := make([]eventlog.Event, len(a.RuntimeEvents))
	for i, re := range a.RuntimeEvents {
		e := eventlog.Event{
			IMR:     3,
			Type:    eventlog.EvDstackRuntime,
			Name:    re.Name,
			Payload: re.Payload,
			Version: re.Version,
		}
		if len(logged) != 0 {
			l := logged[i]
			if l.Name != re.Name || string(l.Payload) != string(re.Payload) || normVersion(l.Version) != normVersion(re.Version) {
				return nil, malformed(fmt.Sprintf("runtime_events[%d]", i), -1, "differs from the event log's runtime event %q", l.Name)
			}
			e.IMR = l.IMR
			e.Digest = l.Digest
			e.Preimage = l.Preimage
		}
		out[i] = e
	}
	return out, nil
}

// normVersion maps an absent version (0) to 1.
func normVersion(v uint32) uint32 {
	if v == 0 {
		return 1
	}
	return v
}
