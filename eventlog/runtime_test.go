package eventlog_test

import (
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/eventlog"
)

// Vectors from dstack.md §2.4.
func TestRuntimeDigestVectors(t *testing.T) {
	t.Parallel()
	pre, err := eventlog.RuntimePreimage("system-preparing", nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(pre), "010000083a73797374656d2d707265706172696e673a"; got != want {
		t.Errorf("V1 preimage = %s, want %s", got, want)
	}
	for _, v := range []uint32{0, 1} {
		d, err := eventlog.RuntimeDigest("system-preparing", nil, v)
		if got, want := hex.EncodeToString(d[:]), "f9974020ef507068183313d0ca808e0d1ca9b2d1ad0c61f5784e7157c362c06536f5ddacdad4451693f48fcc72fff624"; err != nil || got != want {
			t.Errorf("V1 (version %d) digest = %s, %v; want %s", v, got, err, want)
		}
	}
	pre, err = eventlog.RuntimePreimage("compose-hash", []byte{0xab, 0xcd}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(pre), `{"name":"compose-hash","payload":"abcd","type":134217729}`; got != want {
		t.Errorf("V2 preimage = %s, want %s", got, want)
	}
	d, err := eventlog.RuntimeDigest("compose-hash", []byte{0xab, 0xcd}, 2)
	if got, want := hex.EncodeToString(d[:]), "9dde1673f544faa94b921825209593ddde08d0baf9cd6990175dffaf3081f1bb10311d56de189491feb33842a050ad7b"; err != nil || got != want {
		t.Errorf("V2 digest = %s, %v; want %s", got, err, want)
	}
	// V2 escapes names with JCS rules and keeps non-ASCII as is.
	pre, _ = eventlog.RuntimePreimage("a\"<\n\u00e9\U0001F980", []byte{0xFF}, 2)
	if got, want := string(pre), "{\"name\":\"a\\\"<\\n\u00e9\U0001F980\",\"payload\":\"ff\",\"type\":134217729}"; got != want {
		t.Errorf("V2 preimage = %s, want %s", got, want)
	}
	if _, err := eventlog.RuntimeDigest("x", nil, 3); !errors.Is(err, eventlog.ErrUnsupported) {
		t.Errorf("version 3: %v, want ErrUnsupported", err)
	}
	if _, err := eventlog.RuntimePreimage("\xff", nil, 2); !errors.Is(err, eventlog.ErrMalformed) {
		t.Errorf("V2 with invalid UTF-8 name: %v, want ErrMalformed", err)
	}
}

func runtimeEvent(name string, payload []byte, version uint32) eventlog.Event {
	return eventlog.Event{IMR: 3, Type: eventlog.EvDstackRuntime, Name: name, Payload: payload, Version: version}
}

func TestRuntimeReplay(t *testing.T) {
	t.Parallel()
	events := []eventlog.Event{
		runtimeEvent("system-preparing", nil, 0),
		runtimeEvent("app-id", []byte{1, 2, 3}, 1),
		runtimeEvent("compose-hash", []byte{0xab, 0xcd}, 2),
	}
	var want [48]byte
	for _, e := range events {
		d, err := eventlog.RuntimeDigest(e.Name, e.Payload, e.Version)
		if err != nil {
			t.Fatal(err)
		}
		want = eventlog.Extend(want, d)
	}
	r, err := eventlog.Replay(events)
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if r[3] != want || r[0] != [48]byte{} {
		t.Fatalf("Replay = %x, want RTMR3 %x", r, want)
	}

	// A changed payload changes RTMR3.
	changed := append([]eventlog.Event(nil), events...)
	changed[1].Payload = []byte{1, 2, 4}
	if r2, _ := eventlog.Replay(changed); r2[3] == r[3] {
		t.Error("changing a runtime payload did not change RTMR3")
	}
	// A changed version changes RTMR3.
	changed = append([]eventlog.Event(nil), events...)
	changed[2].Version = 1
	if r2, _ := eventlog.Replay(changed); r2[3] == r[3] {
		t.Error("changing a runtime event version did not change RTMR3")
	}

	// A forged digest is ignored by replay but reported by CheckDigest.
	forged := append([]eventlog.Event(nil), events...)
	fake := sha512.Sum384([]byte("forged"))
	forged[1].Digest = fake[:]
	if r2, err := eventlog.Replay(forged); err != nil || r2 != r {
		t.Errorf("Replay with a forged digest = %x, %v; want %x", r2, err, r)
	}
	if d, _ := forged[1].ReplayDigest(); d == fake {
		t.Error("ReplayDigest returned the supplied digest")
	}
	err = eventlog.CheckDigests(forged)
	if !errors.Is(err, eventlog.ErrDigestMismatch) {
		t.Fatalf("CheckDigests(forged) = %v, want ErrDigestMismatch", err)
	}
	if ee, ok := errors.AsType[*eventlog.EventError](err); !ok || ee.Index != 1 {
		t.Errorf("CheckDigests(forged) = %v, want *EventError at index 1", err)
	}
	// The correct digest passes.
	good, _ := eventlog.RuntimeDigest("app-id", []byte{1, 2, 3}, 1)
	forged[1].Digest = good[:]
	if err := forged[1].CheckDigest(); err != nil {
		t.Errorf("CheckDigest(correct digest) = %v", err)
	}
}

func TestCheckDigestV2Preimage(t *testing.T) {
	t.Parallel()
	pre, _ := eventlog.RuntimePreimage("compose-hash", []byte{0xab, 0xcd}, 2)
	digest := sha512.Sum384(pre)
	base := runtimeEvent("compose-hash", []byte{0xab, 0xcd}, 2)
	base.Digest = digest[:]
	base.Preimage = pre

	if err := base.CheckDigest(); err != nil {
		t.Fatalf("CheckDigest(valid V2) = %v", err)
	}
	stripped := base
	stripped.Digest = []byte{}
	if err := stripped.CheckDigest(); err != nil {
		t.Errorf("CheckDigest(V2, digest cleared) = %v", err)
	}

	// A preimage that does not hash to the digest, with the digest left
	// intact.
	bad := base
	bad.Preimage = []byte(`{"name":"compose-hash","payload":"abce","type":134217729}`)
	if err := bad.CheckDigest(); !errors.Is(err, eventlog.ErrDigestMismatch) || !strings.Contains(err.Error(), "preimage") {
		t.Errorf("CheckDigest(wrong preimage) = %v, want preimage ErrDigestMismatch", err)
	}
	// Payload changed, preimage and digest kept: digest mismatch.
	bad = base
	bad.Payload = []byte{0xab, 0xce}
	if err := bad.CheckDigest(); !errors.Is(err, eventlog.ErrDigestMismatch) {
		t.Errorf("CheckDigest(changed payload) = %v, want ErrDigestMismatch", err)
	}
	// Non-canonical preimage spelling of the same JSON is rejected too.
	bad = base
	bad.Digest = nil
	bad.Preimage = []byte(`{"type":134217729,"payload":"abcd","name":"compose-hash"}`)
	if err := bad.CheckDigest(); !errors.Is(err, eventlog.ErrDigestMismatch) {
		t.Errorf("CheckDigest(non-canonical preimage) = %v, want ErrDigestMismatch", err)
	}
	// V2 without preimage.
	bad = base
	bad.Preimage = nil
	if err := bad.CheckDigest(); !errors.Is(err, eventlog.ErrDigestMismatch) {
		t.Errorf("CheckDigest(V2 without preimage) = %v, want ErrDigestMismatch", err)
	}
	// Replay ignores the preimage.
	r1, _ := eventlog.Replay([]eventlog.Event{base})
	bad = base
	bad.Preimage = []byte("junk")
	r2, err := eventlog.Replay([]eventlog.Event{bad})
	if err != nil || r1 != r2 {
		t.Errorf("Replay depends on the preimage: %v", err)
	}
	// V1 events may carry a matching preimage.
	v1 := runtimeEvent("app-id", []byte{7}, 0)
	v1.Preimage, _ = eventlog.RuntimePreimage("app-id", []byte{7}, 0)
	if err := v1.CheckDigest(); err != nil {
		t.Errorf("CheckDigest(V1 with preimage) = %v", err)
	}
}

func TestReplayErrors(t *testing.T) {
	t.Parallel()
	sep := sha512.Sum384([]byte{0, 0, 0, 0})
	boot := eventlog.Event{IMR: 0, Type: eventlog.EvSeparator, Digest: sep[:]}
	tests := []struct {
		name    string
		event   eventlog.Event
		wantErr error
	}{
		{"runtime event in imr 0", eventlog.Event{IMR: 0, Type: eventlog.EvDstackRuntime, Name: "x"}, eventlog.ErrMalformed},
		{"imr 4", eventlog.Event{IMR: 4, Type: eventlog.EvSeparator, Digest: sep[:]}, eventlog.ErrMalformed},
		{"short boot digest", eventlog.Event{IMR: 1, Type: eventlog.EvSeparator, Digest: sep[:32]}, eventlog.ErrMalformed},
		{"stripped boot digest", eventlog.Event{IMR: 1, Type: eventlog.EvSeparator}, eventlog.ErrMalformed},
		{"unknown runtime version", eventlog.Event{IMR: 3, Type: eventlog.EvDstackRuntime, Version: 7}, eventlog.ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := eventlog.Replay([]eventlog.Event{boot, tc.event})
			if !errors.Is(err, tc.wantErr) || r != (eventlog.RTMRs{}) {
				t.Fatalf("Replay = %x, %v; want zero, %v", r, err, tc.wantErr)
			}
			if ee, ok := errors.AsType[*eventlog.EventError](err); !ok || ee.Index != 1 {
				t.Errorf("Replay error %v: want *EventError at index 1", err)
			}
			if strings.Count(err.Error(), "eventlog:") != 1 {
				t.Errorf("error %q: want exactly one package prefix", err)
			}
		})
	}
	// EV_NO_ACTION events are never extended, whatever their digest.
	r, err := eventlog.Replay([]eventlog.Event{boot, {IMR: 0, Type: eventlog.EvNoAction}})
	if err != nil || r[0] != eventlog.ReplayDigests(sep) {
		t.Errorf("Replay with EV_NO_ACTION = %x, %v", r[0], err)
	}
	// ReplayRTMR ignores malformed events of other registers but not
	// misplaced runtime events.
	other := []eventlog.Event{boot, {IMR: 1, Type: eventlog.EvSeparator}}
	if mr, err := eventlog.ReplayRTMR(other, 0); err != nil || mr != eventlog.ReplayDigests(sep) {
		t.Errorf("ReplayRTMR(0) = %x, %v", mr, err)
	}
	if _, err := eventlog.ReplayRTMR(other, 1); !errors.Is(err, eventlog.ErrMalformed) {
		t.Errorf("ReplayRTMR(1) = %v, want ErrMalformed", err)
	}
	misplaced := []eventlog.Event{{IMR: 1, Type: eventlog.EvDstackRuntime}}
	if _, err := eventlog.ReplayRTMR(misplaced, 0); !errors.Is(err, eventlog.ErrMalformed) {
		t.Errorf("ReplayRTMR with a misplaced runtime event = %v, want ErrMalformed", err)
	}
	for _, idx := range []int{-1, 4} {
		if _, err := eventlog.ReplayRTMR(nil, idx); !errors.Is(err, eventlog.ErrMalformed) {
			t.Errorf("ReplayRTMR(nil, %d) = %v, want ErrMalformed", idx, err)
		}
	}
	if _, err := (&eventlog.Event{Type: eventlog.EvSeparator}).ReplayDigest(); !errors.Is(err, eventlog.ErrMalformed) || !strings.HasPrefix(err.Error(), "eventlog: ") {
		t.Errorf("ReplayDigest without digest = %v", err)
	}
}

func TestRTMR3Fixtures(t *testing.T) {
	t.Parallel()
	// Runtime events carry empty digests in the lite fixture; replay must
	// recompute them. Changing any payload must change RTMR3 only.
	events, err := eventlog.ParseJSON(fixtureEventLog(t, "tdx-lite-getquote.json"))
	if err != nil {
		t.Fatalf("ParseJSON: %v", err)
	}
	want := expectedRTMRs(t, "tdx-lite-getquote.expected.json")
	for i, e := range events {
		if !e.IsRuntime() {
			continue
		}
		mutated := append([]eventlog.Event(nil), events...)
		mutated[i].Payload = append([]byte{0x00}, e.Payload...)
		r, err := eventlog.Replay(mutated)
		if err != nil {
			t.Fatalf("Replay: %v", err)
		}
		if r[3] == want[3] || r[0] != want[0] || r[1] != want[1] || r[2] != want[2] {
			t.Errorf("changing runtime event %d (%s): RTMRs %x", i, e.Name, r)
		}
		// Forging the digest field changes nothing.
		forged := append([]eventlog.Event(nil), events...)
		forged[i].Digest = make([]byte, 48)
		if r, err := eventlog.Replay(forged); err != nil || r != want {
			t.Errorf("forged digest on event %d changed the replay: %v", i, err)
		}
		if err := forged[i].CheckDigest(); !errors.Is(err, eventlog.ErrDigestMismatch) {
			t.Errorf("forged digest on event %d not reported: %v", i, err)
		}
	}
}
