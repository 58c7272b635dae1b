package tpm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/tdproof/tdproof/eventlog"
)

// startupLocality is the signature of the EV_NO_ACTION event that gives
// PCR0's initial locality (TCG PC Client PFP §10.4.5.3).
const startupLocality = "StartupLocality\x00"

// LogEvents returns the (PCR, SHA-256 digest) pairs of a parsed binary
// TCG crypto-agile log, in log order, skipping EV_NO_ACTION records: the
// list dstack's TpmQuote carries. An extended event without a SHA-256
// digest is an error.
func LogEvents(l *eventlog.CCEL) ([]Event, error) {
	var out []Event
	for _, e := range l.Events {
		if e.Type == eventlog.EvNoAction {
			continue
		}
		d, ok := e.Digest(eventlog.AlgSHA256)
		if !ok {
			return nil, fmt.Errorf("%w: event at offset %d has no SHA-256 digest", ErrMalformed, e.Offset)
		}
		if e.MRIndex >= 32 {
			return nil, fmt.Errorf("%w: event at offset %d extends PCR%d", ErrMalformed, e.Offset, e.MRIndex)
		}
		out = append(out, Event{PCR: int(e.MRIndex), Digest: bytes.Clone(d)})
	}
	return out, nil
}

// ReplayLog replays a parsed binary TCG log into SHA-256 PCR values: each
// PCR starts at zero (PCR0 at the StartupLocality value when the log
// has that event) and is extended with each event's SHA-256 digest.
func ReplayLog(l *eventlog.CCEL) (map[int][32]byte, error) {
	evs, err := LogEvents(l)
	if err != nil {
		return nil, err
	}
	out := map[int][32]byte{}
	for _, e := range l.Events {
		if e.Type == eventlog.EvNoAction && e.MRIndex == 0 && len(e.Data) == len(startupLocality)+1 &&
			string(e.Data[:len(startupLocality)]) == startupLocality {
			var init [32]byte
			init[31] = e.Data[len(startupLocality)]
			out[0] = init
		}
	}
	for _, e := range evs {
		out[e.PCR] = Extend(out[e.PCR], e.Digest)
	}
	return out, nil
}

// UKIEvent is the event that measured the unified kernel image.
type UKIEvent struct {
	// Event is the log record; its SHA-256 digest is the UKI's PE
	// Authenticode hash.
	Event eventlog.TCGEvent
	// Digest is its SHA-256 digest.
	Digest []byte
	// Candidates counts the events of the PCR that matched the rule; the
	// first one is returned.
	Candidates int
}

// FindUKI returns the UKI's event among the events of pcr (2 on GCP, 4 on
// standard UEFI): the first EV_EFI_BOOT_SERVICES_APPLICATION whose
// device path names a file (media file-path node) on a disk partition
// (media hard-drive node), as firmware records an image it loads from the
// ESP. The kernel that systemd-stub later loads from memory carries a
// vendor media node instead and never matches. It fails with [ErrUKI]
// when no event matches, whatever its position in the log.
func FindUKI(l *eventlog.CCEL, pcr int) (*UKIEvent, error) {
	var found *UKIEvent
	n := 0
	for _, e := range l.Events {
		if e.Type != eventlog.EvEFIBootServicesApplication || int(e.MRIndex) != pcr {
			continue
		}
		img, err := eventlog.ParseImageLoadEvent(e.Data)
		if err != nil || !diskFilePath(img.DevicePath) {
			continue
		}
		n++
		if found == nil {
			d, ok := e.Digest(eventlog.AlgSHA256)
			if !ok {
				return nil, fmt.Errorf("%w: UKI event at offset %d has no SHA-256 digest", ErrUKI, e.Offset)
			}
			found = &UKIEvent{Event: e, Digest: bytes.Clone(d)}
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: no EV_EFI_BOOT_SERVICES_APPLICATION loaded from a disk file in PCR%d", ErrUKI, pcr)
	}
	found.Candidates = n
	return found, nil
}

// diskFilePath walks an EFI device path and reports whether it has both a
// hard-drive media node (type 4, subtype 1) and a file-path media node
// (type 4, subtype 4). A malformed path reports false.
func diskFilePath(dp []byte) bool {
	var hd, file bool
	for len(dp) >= 4 {
		typ, sub, n := dp[0], dp[1], int(binary.LittleEndian.Uint16(dp[2:4]))
		if n < 4 || n > len(dp) {
			return false
		}
		if typ == 0x7f && sub == 0xff {
			return hd && file
		}
		if typ == 4 && sub == 1 {
			hd = true
		}
		if typ == 4 && sub == 4 {
			file = true
		}
		dp = dp[n:]
	}
	return false
}

// RuntimeReplay replays dstack runtime events into a SHA-256 PCR (PCR14
// on GCP): each digest is SHA-256 of the event preimage
// ([eventlog.RuntimePreimage]), extended from zero.
func RuntimeReplay(events []eventlog.Event) ([32]byte, error) {
	var pcr [32]byte
	for i := range events {
		e := &events[i]
		pre, err := eventlog.RuntimePreimage(e.Name, e.Payload, e.Version)
		if err != nil {
			return [32]byte{}, fmt.Errorf("%w: runtime event %d: %v", ErrMalformed, i, err)
		}
		d := sha256.Sum256(pre)
		pcr = Extend(pcr, d[:])
	}
	return pcr, nil
}
