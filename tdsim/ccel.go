package tdsim

import (
	"encoding/binary"
	"fmt"

	"github.com/tdproof/tdproof/eventlog"
)

// CCELRegionSize is the size of the CCEL region TDVF reserves (its LAML,
// 64 KiB); [MarshalCCEL] pads the log to it with 0xFF as firmware does.
const CCELRegionSize = 64 << 10

// MarshalCCEL encodes boot events (IMR 0–2, or 3) as a TDX CCEL: a TCG PC
// Client crypto-agile event log whose first record is the legacy
// TCG_PCR_EVENT carrying the "Spec ID Event03" event (platform class 0,
// spec version 2.0 errata 0, UINTN size 2, one algorithm: SHA-384 with 48
// bytes, no vendor info), followed by one TCG_PCR_EVENT2 per event with
// MR index IMR+1, a single SHA-384 digest (the event's Digest) and the
// event's Payload as data. The log is padded with 0xFF to padTo bytes
// (nothing is added if it is already longer); [eventlog.ParseCCEL] parses
// it back.
//
// Every event needs a 48-byte Digest: runtime events have theirs
// computed by [Sim.Extend] and never belong in a CCEL.
func MarshalCCEL(events []eventlog.Event, padTo int) ([]byte, error) {
	le32 := binary.LittleEndian.AppendUint32
	le16 := binary.LittleEndian.AppendUint16

	var spec []byte
	spec = append(spec, "Spec ID Event03\x00"...)
	spec = le32(spec, 0)            // platform class: client
	spec = append(spec, 0, 2, 0, 2) // spec version 2.0, errata 0, UINTN 64-bit
	spec = le32(spec, 1)            // number of algorithms
	spec = le16(spec, uint16(eventlog.AlgSHA384))
	spec = le16(spec, uint16(eventlog.AlgSHA384.Size()))
	spec = append(spec, 0) // vendor info size

	var out []byte
	out = le32(out, 0) // MR index
	out = le32(out, uint32(eventlog.EvNoAction))
	out = append(out, make([]byte, 20)...) // SHA-1 digest, zero
	out = le32(out, uint32(len(spec)))
	out = append(out, spec...)

	for i, e := range events {
		if e.IMR > 3 {
			return nil, fmt.Errorf("tdsim: CCEL event %d: imr %d is not an RTMR index", i, e.IMR)
		}
		if len(e.Digest) != eventlog.AlgSHA384.Size() {
			return nil, fmt.Errorf("tdsim: CCEL event %d: digest is %d bytes, want 48", i, len(e.Digest))
		}
		out = le32(out, e.IMR+1)
		out = le32(out, uint32(e.Type))
		out = le32(out, 1) // digest count
		out = le16(out, uint16(eventlog.AlgSHA384))
		out = append(out, e.Digest...)
		out = le32(out, uint32(len(e.Payload)))
		out = append(out, e.Payload...)
	}
	for len(out) < padTo {
		out = append(out, 0xFF)
	}
	return out, nil
}
