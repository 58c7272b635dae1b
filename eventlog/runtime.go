package eventlog

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/tdproof/tdproof/jcs"
)

// RuntimePreimage returns the bytes whose SHA-384 is the digest of a
// dstack runtime event with the given name and payload:
//
//   - version 0 or 1: LE32(0x08000001) ‖ ":" ‖ name ‖ ":" ‖ payload;
//   - version 2: the RFC 8785 canonical JSON of
//     {"name": name, "payload": lowercase hex(payload), "type": 134217729}.
//
// It fails with [ErrUnsupported] for other versions and with
// [ErrMalformed] for a version 2 name that is not valid UTF-8.
func RuntimePreimage(name string, payload []byte, version uint32) ([]byte, error) {
	pre, err := runtimePreimage(name, payload, version)
	if err != nil {
		return nil, fmt.Errorf("eventlog: runtime event: %w", err)
	}
	return pre, nil
}

// runtimePreimage is RuntimePreimage with errors that carry no package
// prefix.
func runtimePreimage(name string, payload []byte, version uint32) ([]byte, error) {
	switch version {
	case 0, 1:
		pre := make([]byte, 0, 4+1+len(name)+1+len(payload))
		pre = binary.LittleEndian.AppendUint32(pre, uint32(EvDstackRuntime))
		pre = append(pre, ':')
		pre = append(pre, name...)
		pre = append(pre, ':')
		return append(pre, payload...), nil
	case 2:
		if !utf8.ValidString(name) {
			return nil, fmt.Errorf("%w: name is not valid UTF-8", ErrMalformed)
		}
		pre, err := jcs.Marshal(struct {
			Name    string `json:"name"`
			Payload string `json:"payload"`
			Type    uint32 `json:"type"`
		}{name, hex.EncodeToString(payload), uint32(EvDstackRuntime)})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		return pre, nil
	default:
		return nil, fmt.Errorf("%w: runtime event digest version %d", ErrUnsupported, version)
	}
}

// RuntimeDigest returns SHA-384 of [RuntimePreimage]: the value dstack
// extends into RTMR3 for a runtime event.
func RuntimeDigest(name string, payload []byte, version uint32) ([48]byte, error) {
	pre, err := RuntimePreimage(name, payload, version)
	if err != nil {
		return [48]byte{}, err
	}
	return sha512.Sum384(pre), nil
}

// ReplayDigest returns the digest that replay extends for e: for a
// runtime event, the digest recomputed from Name, Payload and Version
// (the supplied Digest and Preimage are ignored); for any other event, the
// supplied Digest, which must be 48 bytes.
func (e *Event) ReplayDigest() ([48]byte, error) {
	d, err := e.replayDigest()
	if err != nil {
		return d, fmt.Errorf("eventlog: %w", err)
	}
	return d, nil
}

func (e *Event) replayDigest() ([48]byte, error) {
	if e.IsRuntime() {
		pre, err := runtimePreimage(e.Name, e.Payload, e.Version)
		if err != nil {
			return [48]byte{}, err
		}
		return sha512.Sum384(pre), nil
	}
	if len(e.Digest) != 48 {
		return [48]byte{}, fmt.Errorf("%w: %s digest is %d bytes, want 48", ErrMalformed, e.Type, len(e.Digest))
	}
	return [48]byte(e.Digest), nil
}

// CheckDigest reports whether the digest material supplied with a runtime
// event agrees with its name and payload. Replay never depends on it; use
// it to surface forged or stale fields. It returns an error wrapping
// [ErrDigestMismatch] when
//
//   - Digest is non-empty and differs from the recomputed digest,
//   - Preimage is present and differs from the recomputed preimage (so it
//     does not hash to the digest), or
//   - Version is 2 and Preimage is absent (dstack requires it).
//
// For other events it only checks that Digest is 48 bytes.
func (e *Event) CheckDigest() error {
	if err := e.checkDigest(); err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	return nil
}

func (e *Event) checkDigest() error {
	if !e.IsRuntime() {
		_, err := e.replayDigest()
		return err
	}
	pre, err := runtimePreimage(e.Name, e.Payload, e.Version)
	if err != nil {
		return err
	}
	d := sha512.Sum384(pre)
	if len(e.Digest) != 0 && !bytes.Equal(e.Digest, d[:]) {
		return fmt.Errorf("runtime event %q: %w: supplied digest %x, recomputed %x", e.Name, ErrDigestMismatch, e.Digest, d)
	}
	if e.Preimage != nil && !bytes.Equal(e.Preimage, pre) {
		got := sha512.Sum384(e.Preimage)
		return fmt.Errorf("runtime event %q: %w: supplied preimage hashes to %x, recomputed digest %x", e.Name, ErrDigestMismatch, got, d)
	}
	if e.Version == 2 && e.Preimage == nil {
		return fmt.Errorf("runtime event %q: %w: version 2 event without preimage", e.Name, ErrDigestMismatch)
	}
	return nil
}

// CheckDigests runs [Event.CheckDigest] on every event and returns nil or
// the join of an [*EventError] per failing event.
func CheckDigests(events []Event) error {
	var errs []error
	for i := range events {
		if err := events[i].checkDigest(); err != nil {
			errs = append(errs, &EventError{Index: i, Err: err})
		}
	}
	return errors.Join(errs...)
}

// RuntimeEvents returns the dstack runtime events of events, in order.
// Like dstack, it selects by event type only. The result shares the
// events' slices.
func RuntimeEvents(events []Event) []Event {
	var out []Event
	for _, e := range events {
		if e.IsRuntime() {
			out = append(out, e)
		}
	}
	return out
}
