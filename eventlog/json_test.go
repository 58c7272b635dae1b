package eventlog_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/eventlog"
)

// TestJSONVectors parses the event logs of the dstack fixtures, checks
// that encoding reproduces them byte for byte, and replays them to the
// RTMRs of their expected files (which equal the quotes' RTMRs).
func TestJSONVectors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fixture, expected string
		events, runtime   int
		stripped          bool
	}{
		{"quote-report.json", "quote-report.expected.json", 28, 8, false},
		{"tdx-lite-getquote.json", "tdx-lite-getquote.expected.json", 29, 9, true},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			t.Parallel()
			raw := fixtureEventLog(t, tc.fixture)
			want := expectedRTMRs(t, tc.expected)
			events, err := eventlog.ParseJSON(raw)
			if err != nil {
				t.Fatalf("ParseJSON: %v", err)
			}
			if len(events) != tc.events {
				t.Fatalf("%d events, want %d", len(events), tc.events)
			}
			if got := eventlog.MarshalEvents(events); !bytes.Equal(got, raw) {
				t.Errorf("MarshalEvents differs from the fixture:\n%s\n%s", got, raw)
			}
			if n := len(eventlog.RuntimeEvents(events)); n != tc.runtime {
				t.Errorf("%d runtime events, want %d", n, tc.runtime)
			}
			got, err := eventlog.Replay(events)
			if err != nil {
				t.Fatalf("Replay: %v", err)
			}
			for i := range 4 {
				if got[i] != want[i] {
					t.Errorf("RTMR%d = %x, want %x", i, got[i], want[i])
				}
				one, err := eventlog.ReplayRTMR(events, i)
				if err != nil || one != want[i] {
					t.Errorf("ReplayRTMR(%d) = %x, %v; want %x", i, one, err, want[i])
				}
			}
			// Supplied digests (full log) or their absence (stripped log)
			// agree with recomputation.
			if err := eventlog.CheckDigests(events); err != nil {
				t.Errorf("CheckDigests: %v", err)
			}
			// Stripping keeps the replay and, for an already stripped
			// log, the bytes.
			stripped := eventlog.Strip(events)
			if r, err := eventlog.Replay(stripped); err != nil || r != want {
				t.Errorf("Replay(Strip(events)) = %x, %v", r, err)
			}
			if tc.stripped && !bytes.Equal(eventlog.MarshalEvents(stripped), raw) {
				t.Errorf("Strip changed an already stripped log")
			}
			for i, e := range stripped {
				switch {
				case e.IsRuntime() && len(e.Digest) != 0:
					t.Errorf("stripped runtime event %d keeps its digest", i)
				case !e.IsRuntime() && e.Type != eventlog.EvPlatformConfigFlags && len(e.Payload) != 0:
					t.Errorf("stripped boot event %d keeps its payload", i)
				case e.Type == eventlog.EvPlatformConfigFlags && string(e.Payload) != "ACPI DATA":
					t.Errorf("stripped ACPI event %d lost its marker", i)
				}
			}
			// Round trip through encoding/json too.
			var viaStd []eventlog.Event
			if err := json.Unmarshal(raw, &viaStd); err != nil {
				t.Fatalf("json.Unmarshal: %v", err)
			}
			if got := eventlog.MarshalEvents(viaStd); !bytes.Equal(got, raw) {
				t.Error("json.Unmarshal then MarshalEvents differs from the fixture")
			}
		})
	}
}

// TestJSONMatchesCCEL checks that the boot events of quote-report.json,
// which came from a CCEL, have the shape TDXEvents produces.
func TestJSONMatchesCCEL(t *testing.T) {
	t.Parallel()
	events, err := eventlog.ParseJSON(fixtureEventLog(t, "quote-report.json"))
	if err != nil {
		t.Fatalf("ParseJSON: %v", err)
	}
	first := events[0]
	if first.IMR != 0 || first.Type != eventlog.EvEFIHandoffTables2 || !strings.Contains(first.Describe(), `"TdxTable"`) {
		t.Errorf("first event = %+v (%s)", first, first.Describe())
	}
	if got := events[16].Describe(); !strings.Contains(got, "Linux load options") || !strings.Contains(got, "LOADED_IMAGE::LoadOptions") {
		t.Errorf("events[16].Describe() = %s", got)
	}
	if got, want := events[22].Describe(), `runtime event "compose-hash", 32-byte payload: 3763bc34552cf3a27ff71ad5f7a90471562a1a2df552dfc1998cba2d60da27e7`; got != want {
		t.Errorf("events[22].Describe() = %s, want %s", got, want)
	}
	lite, err := eventlog.ParseJSON(fixtureEventLog(t, "tdx-lite-getquote.json"))
	if err != nil {
		t.Fatalf("ParseJSON: %v", err)
	}
	if got, want := lite[0].Describe(), "no event data"; got != want {
		t.Errorf("stripped event Describe() = %s, want %s", got, want)
	}
	if got, want := lite[27].Describe(), `runtime event "storage-fs", 3-byte payload: "zfs"`; got != want {
		t.Errorf("Describe() = %s, want %s", got, want)
	}
}

func TestParseJSONFields(t *testing.T) {
	t.Parallel()
	in := `[
	  {"event_payload":"00","imr":3,"unknown":[1,{"x":null}],"event_type":134217729,"event":"a","version":2,"preimage":"ABCD"},
	  {"imr":0,"event_type":4,"event":"","event_payload":"","version":null,"preimage":null},
	  {"imr":1,"event_type":4,"digest":"","event":"","event_payload":"","preimage":""},
	  {"imr":2,"event_type":5,"digest":"0a","event":"\u0041\n","event_payload":"0b","version":1}
	]`
	events, err := eventlog.ParseJSON([]byte(in))
	if err != nil {
		t.Fatalf("ParseJSON: %v", err)
	}
	e := events[0]
	if e.IMR != 3 || e.Type != eventlog.EvDstackRuntime || e.Name != "a" || e.Version != 2 ||
		!bytes.Equal(e.Payload, []byte{0}) || !bytes.Equal(e.Preimage, []byte{0xab, 0xcd}) || len(e.Digest) != 0 {
		t.Errorf("event 0 = %+v", e)
	}
	if events[1].Version != 0 || events[1].Preimage != nil || events[1].Digest == nil {
		t.Errorf("event 1 = %+v (null optional fields must read as absent, digest as empty)", events[1])
	}
	if events[2].Preimage == nil || len(events[2].Preimage) != 0 {
		t.Errorf("event 2 Preimage = %#v, want empty non-nil", events[2].Preimage)
	}
	want := `[{"imr":3,"event_type":134217729,"digest":"","event":"a","event_payload":"00","version":2,"preimage":"abcd"},` +
		`{"imr":0,"event_type":4,"digest":"","event":"","event_payload":""},` +
		`{"imr":1,"event_type":4,"digest":"","event":"","event_payload":"","preimage":""},` +
		`{"imr":2,"event_type":5,"digest":"0a","event":"A\n","event_payload":"0b","version":1}]`
	if got := eventlog.MarshalEvents(events); string(got) != want {
		t.Errorf("MarshalEvents =\n%s\nwant\n%s", got, want)
	}
	again, err := eventlog.ParseJSON([]byte(want))
	if err != nil || string(eventlog.MarshalEvents(again)) != want {
		t.Errorf("re-encoding is not stable: %v", err)
	}
	if got := eventlog.MarshalEvents(nil); string(got) != "[]" {
		t.Errorf("MarshalEvents(nil) = %s", got)
	}
	if events, err := eventlog.ParseJSON([]byte(" [ ] ")); err != nil || events == nil || len(events) != 0 {
		t.Errorf("ParseJSON([]) = %v, %v", events, err)
	}
}

func TestMarshalEscaping(t *testing.T) {
	t.Parallel()
	name := "q\"b\\s/<>&\b\f\n\r\t\x00\x1f\x7f é \u2028 🦀"
	e := eventlog.Event{IMR: 3, Type: eventlog.EvDstackRuntime, Name: name}
	got := eventlog.MarshalEvents([]eventlog.Event{e})
	want := `[{"imr":3,"event_type":134217729,"digest":"","event":"q\"b\\s/<>&\b\f\n\r\t\u0000\u001f` + "\x7f é \u2028 🦀" + `","event_payload":""}]`
	if string(got) != want {
		t.Errorf("MarshalEvents =\n%s\nwant\n%s", got, want)
	}
	back, err := eventlog.ParseJSON(got)
	if err != nil || back[0].Name != name {
		t.Errorf("ParseJSON(MarshalEvents) = %q, %v", back[0].Name, err)
	}
	// Invalid UTF-8 cannot be represented; it becomes U+FFFD.
	e.Name = "a\xffb"
	if got := eventlog.MarshalEvents([]eventlog.Event{e}); !bytes.Contains(got, []byte(`"a`+"\uFFFD"+`b"`)) {
		t.Errorf("invalid UTF-8 encoded as %s", got)
	}
	if got, err := e.MarshalJSON(); err != nil || !json.Valid(got) {
		t.Errorf("MarshalJSON = %s, %v", got, err)
	}
}

func TestParseJSONErrors(t *testing.T) {
	t.Parallel()
	const ok = `"imr":0,"event_type":4,"digest":"","event":"","event_payload":""`
	tests := []struct {
		name    string
		in      string
		wantErr error
		index   int // -1: no *EventError
	}{
		{"empty", ``, eventlog.ErrMalformed, -1},
		{"not JSON", `[{`, eventlog.ErrMalformed, -1},
		{"null", `null`, eventlog.ErrMalformed, -1},
		{"object", `{` + ok + `}`, eventlog.ErrMalformed, -1},
		{"invalid UTF-8", "[{" + ok + `,"x":"` + "\xff" + `"}]`, eventlog.ErrMalformed, -1},
		{"duplicate field", `[{` + ok + `,"imr":1}]`, eventlog.ErrMalformed, -1},
		{"element not object", `[{` + ok + `},1]`, eventlog.ErrMalformed, 1},
		{"element null", `[null]`, eventlog.ErrMalformed, 0},
		{"missing imr", `[{"event_type":4,"event":"","event_payload":""}]`, eventlog.ErrMalformed, 0},
		{"null imr", `[{"imr":null,"event_type":4,"event":"","event_payload":""}]`, eventlog.ErrMalformed, 0},
		{"missing event_type", `[{"imr":0,"event":"","event_payload":""}]`, eventlog.ErrMalformed, 0},
		{"missing event", `[{"imr":0,"event_type":4,"event_payload":""}]`, eventlog.ErrMalformed, 0},
		{"missing payload", `[{"imr":0,"event_type":4,"event":""}]`, eventlog.ErrMalformed, 0},
		{"null payload", `[{"imr":0,"event_type":4,"event":"","event_payload":null}]`, eventlog.ErrMalformed, 0},
		{"case-folded key", `[{"IMR":0,"event_type":4,"event":"","event_payload":""}]`, eventlog.ErrMalformed, 0},
		{"imr 4", `[{"imr":4,"event_type":4,"event":"","event_payload":""}]`, eventlog.ErrMalformed, 0},
		{"imr negative", `[{"imr":-1,"event_type":4,"event":"","event_payload":""}]`, eventlog.ErrMalformed, 0},
		{"imr string", `[{"imr":"0","event_type":4,"event":"","event_payload":""}]`, eventlog.ErrMalformed, 0},
		{"imr float", `[{"imr":0.0,"event_type":4,"event":"","event_payload":""}]`, eventlog.ErrMalformed, 0},
		{"event_type too large", `[{"imr":0,"event_type":4294967296,"event":"","event_payload":""}]`, eventlog.ErrMalformed, 0},
		{"event not string", `[{"imr":0,"event_type":4,"event":1,"event_payload":""}]`, eventlog.ErrMalformed, 0},
		{"odd hex", `[{"imr":0,"event_type":4,"event":"","event_payload":"abc"}]`, eventlog.ErrMalformed, 0},
		{"bad hex", `[{"imr":0,"event_type":4,"event":"","event_payload":"zz"}]`, eventlog.ErrMalformed, 0},
		{"0x hex", `[{"imr":0,"event_type":4,"event":"","event_payload":"0x00"}]`, eventlog.ErrMalformed, 0},
		{"digest not string", `[{` + ok + `,"digest2":1},{"imr":0,"event_type":4,"digest":[],"event":"","event_payload":""}]`, eventlog.ErrMalformed, 1},
		{"bad preimage", `[{` + ok + `,"preimage":"x"}]`, eventlog.ErrMalformed, 0},
		{"version 3", `[{` + ok + `,"version":3}]`, eventlog.ErrUnsupported, 0},
		{"version 0", `[{` + ok + `,"version":0}]`, eventlog.ErrUnsupported, 0},
		{"version string", `[{` + ok + `,"version":"2"}]`, eventlog.ErrMalformed, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			events, err := eventlog.ParseJSON([]byte(tc.in))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ParseJSON error = %v, want %v", err, tc.wantErr)
			}
			if events != nil {
				t.Error("ParseJSON returned events with an error")
			}
			ee, isEventErr := errors.AsType[*eventlog.EventError](err)
			switch {
			case tc.index < 0 && isEventErr:
				t.Errorf("unexpected *EventError %v", err)
			case tc.index >= 0 && (!isEventErr || ee.Index != tc.index):
				t.Errorf("error %v: want *EventError at index %d", err, tc.index)
			}
			if !strings.HasPrefix(err.Error(), "eventlog: ") || strings.Count(err.Error(), "eventlog:") != 1 {
				t.Errorf("error %q: want exactly one package prefix", err)
			}
		})
	}
}

func TestParseEvent(t *testing.T) {
	t.Parallel()
	e, err := eventlog.ParseEvent([]byte(` {"imr":3,"event_type":134217729,"digest":"","event":"system-preparing","event_payload":""} `))
	if err != nil {
		t.Fatalf("ParseEvent: %v", err)
	}
	if e.Name != "system-preparing" || !e.IsRuntime() {
		t.Errorf("ParseEvent = %+v", e)
	}
	for _, in := range []string{`[]`, `{"imr":3}`, `{} {}`, `"x"`} {
		if e, err := eventlog.ParseEvent([]byte(in)); err == nil || e != nil || !errors.Is(err, eventlog.ErrMalformed) {
			t.Errorf("ParseEvent(%s) = %v, %v; want ErrMalformed", in, e, err)
		}
	}
	var ev eventlog.Event
	if err := ev.UnmarshalJSON([]byte(`{"imr":9,"event_type":4,"event":"","event_payload":""}`)); !errors.Is(err, eventlog.ErrMalformed) {
		t.Errorf("UnmarshalJSON(imr 9) = %v", err)
	}
}
