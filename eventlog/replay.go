package eventlog

import (
	"crypto/sha512"
	"fmt"
)

// RTMRs holds the four TDX runtime measurement registers, RTMR0 to RTMR3.
type RTMRs [4][48]byte

// Extend returns SHA-384(mr ‖ digest), the TDX RTMR extend operation.
func Extend(mr [48]byte, digest [48]byte) [48]byte {
	var buf [96]byte
	copy(buf[:48], mr[:])
	copy(buf[48:], digest[:])
	return sha512.Sum384(buf[:])
}

// ReplayDigests folds [Extend] over digests starting from 48 zero bytes.
func ReplayDigests(digests ...[48]byte) [48]byte {
	var mr [48]byte
	for _, d := range digests {
		mr = Extend(mr, d)
	}
	return mr
}

// Replay recomputes the four RTMRs from events in order: each register
// starts at 48 zero bytes and is extended with the [Event.ReplayDigest]
// of each of its events. Runtime-event digests are always recomputed from
// name and payload.
//
// EV_NO_ACTION events are skipped, as the TCG specification requires.
// A runtime event whose IMR is not 3 is an error: dstack extends runtime
// events only into RTMR3. Errors are [*EventError]s wrapping
// [ErrMalformed] or [ErrUnsupported]; on error the result is zero.
func Replay(events []Event) (RTMRs, error) {
	var r RTMRs
	for i := range events {
		e := &events[i]
		if e.Type == EvNoAction {
			continue
		}
		if err := checkIMR(e); err != nil {
			return RTMRs{}, &EventError{Index: i, Err: err}
		}
		d, err := e.replayDigest()
		if err != nil {
			return RTMRs{}, &EventError{Index: i, Err: err}
		}
		r[e.IMR] = Extend(r[e.IMR], d)
	}
	return r, nil
}

// ReplayRTMR recomputes a single register (0–3) from the events whose IMR
// is index, with the rules of [Replay]. Events for other registers are not
// examined, except that a runtime event with an IMR other than 3 is
// always an error.
func ReplayRTMR(events []Event, index int) ([48]byte, error) {
	if index < 0 || index > 3 {
		return [48]byte{}, fmt.Errorf("eventlog: replay: %w: RTMR index %d", ErrMalformed, index)
	}
	var mr [48]byte
	for i := range events {
		e := &events[i]
		if e.IsRuntime() {
			if err := checkIMR(e); err != nil {
				return [48]byte{}, &EventError{Index: i, Err: err}
			}
		}
		if e.Type == EvNoAction || e.IMR != uint32(index) {
			continue
		}
		d, err := e.replayDigest()
		if err != nil {
			return [48]byte{}, &EventError{Index: i, Err: err}
		}
		mr = Extend(mr, d)
	}
	return mr, nil
}

func checkIMR(e *Event) error {
	if e.IMR > 3 {
		return fmt.Errorf("%w: imr %d is not an RTMR index", ErrMalformed, e.IMR)
	}
	if e.IsRuntime() && e.IMR != 3 {
		return fmt.Errorf("%w: runtime event %q in imr %d, want 3", ErrMalformed, e.Name, e.IMR)
	}
	return nil
}
