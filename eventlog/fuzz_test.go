package eventlog_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/tdproof/tdproof/eventlog"
)

// ccelSeeds returns synthetic CCEL inputs, plus the real ccel.bin (and
// its used part) when the shared data is present.
func ccelSeeds() [][]byte {
	sample, _ := buildCCEL(sha384Only, sampleEvents(), 0xFF, 64)
	zero, _ := buildCCEL(sha384Only, sampleEvents()[:3], 0, 16)
	multi, _ := buildCCEL([]eventlog.AlgorithmSize{{Alg: eventlog.AlgSHA256, DigestSize: 32}, {Alg: eventlog.AlgSHA384, DigestSize: 48}},
		[]synthEvent{{mr: 2, typ: eventlog.EvEFIAction, data: []byte("x"), digests: []eventlog.Digest{
			{Alg: eventlog.AlgSHA384, Value: make([]byte, 48)}, {Alg: eventlog.AlgSHA256, Value: make([]byte, 32)}}}}, 0xFF, 4)
	empty, _ := buildCCEL(sha384Only, nil, 0xFF, 8)
	seeds := [][]byte{sample, zero, multi, empty, sample[:len(sample)-70], {}}
	if real := optionalVector("ccel.bin"); real != nil {
		seeds = append(seeds, real, real[:2048])
	}
	return seeds
}

func FuzzParseEventLog(f *testing.F) {
	seeds := ccelSeeds()
	if len(seeds) == 0 {
		f.Fatal("no seeds")
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := eventlog.ParseCCEL(data)
		if err != nil {
			if c != nil {
				t.Fatal("ParseCCEL returned a result with an error")
			}
			if _, ok := errors.AsType[*eventlog.ParseError](err); !ok {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			if !errors.Is(err, eventlog.ErrMalformed) && !errors.Is(err, eventlog.ErrUnsupported) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrUnsupported", err)
			}
			return
		}
		if !within(c.Raw, data) || !bytes.Equal(c.Raw, data[:len(c.Raw)]) {
			t.Fatal("Raw is not a prefix of the input")
		}
		checkAliases := func(e *eventlog.TCGEvent) {
			if !within(e.Raw, data) || !bytes.Equal(e.Raw, data[e.Offset:e.Offset+len(e.Raw)]) {
				t.Fatalf("event at %d: Raw does not alias the input", e.Offset)
			}
			if !within(e.Data, e.Raw) {
				t.Fatalf("event at %d: Data does not alias Raw", e.Offset)
			}
			for _, d := range e.Digests {
				if !within(d.Value, e.Raw) {
					t.Fatalf("event at %d: digest does not alias Raw", e.Offset)
				}
			}
			_ = e.Describe()
		}
		checkAliases(&c.Header)
		for i := range c.Events {
			checkAliases(&c.Events[i])
		}
		// Re-parsing the log alone, or a copy of the input, is stable.
		for _, in := range [][]byte{c.Raw, bytes.Clone(data)} {
			c2, err := eventlog.ParseCCEL(in)
			if err != nil {
				t.Fatalf("re-parse: %v", err)
			}
			if len(c2.Events) != len(c.Events) || len(c2.Raw) != len(c.Raw) || !reflect.DeepEqual(c2.SpecID, c.SpecID) {
				t.Fatal("re-parse differs")
			}
			for i := range c.Events {
				a, b := c.Events[i], c2.Events[i]
				if a.Offset != b.Offset || !bytes.Equal(a.Raw, b.Raw) || a.Type != b.Type || a.MRIndex != b.MRIndex {
					t.Fatalf("re-parse differs at event %d", i)
				}
			}
		}
		events, err := c.TDXEvents()
		if err != nil {
			if events != nil {
				t.Fatal("TDXEvents returned events with an error")
			}
			return
		}
		r, err := eventlog.Replay(events)
		if err != nil {
			if r != (eventlog.RTMRs{}) {
				t.Fatal("Replay returned registers with an error")
			}
			return
		}
		// JSON encoding of converted events round-trips.
		enc := eventlog.MarshalEvents(events)
		back, err := eventlog.ParseJSON(enc)
		if err != nil {
			t.Fatalf("ParseJSON(MarshalEvents): %v", err)
		}
		if r2, err := eventlog.Replay(back); err != nil || r2 != r {
			t.Fatalf("replay after JSON round trip = %v", err)
		}
	})
}

func runtimeEventSeeds() [][]byte {
	seeds := [][]byte{
		[]byte(`{"imr":3,"event_type":134217729,"digest":"","event":"system-preparing","event_payload":""}`),
		[]byte(`{"imr":3,"event_type":134217729,"digest":"f9974020ef507068183313d0ca808e0d1ca9b2d1ad0c61f5784e7157c362c06536f5ddacdad4451693f48fcc72fff624","event":"system-preparing","event_payload":""}`),
		[]byte(`{"imr":3,"event_type":134217729,"digest":"","event":"compose-hash","event_payload":"abcd","version":2,"preimage":"7b226e616d65223a22636f6d706f73652d68617368222c227061796c6f6164223a2261626364222c2274797065223a3133343231373732397d"}`),
		[]byte(`{"imr":0,"event_type":10,"digest":"095d04cf26fe03aef6e3561fa24c1aa1cea93f4aeaf563b1f9f7616184c53454875925d2d6fbb4b21a3d4c4ed35a44bd","event":"acpi-loader","event_payload":"414350492044415441"}`),
		[]byte(`{"imr":3,"event_type":134217729,"event":"a\"\\\u0000\u00e9","event_payload":"00","version":1,"preimage":null,"x":[1]}`),
		[]byte(`{"imr":1,"event_type":134217729,"event":"","event_payload":""}`),
		[]byte(`{"imr":3}`),
	}
	for _, name := range []string{"quote-report.json", "tdx-lite-getquote.json"} {
		raw := optionalVector(name)
		if raw == nil {
			continue
		}
		log, err := eventLogString(raw)
		if err != nil {
			continue
		}
		events, err := eventlog.ParseJSON(log)
		if err != nil {
			continue
		}
		for _, e := range events {
			b, _ := e.MarshalJSON()
			seeds = append(seeds, b)
		}
	}
	return seeds
}

func FuzzParseRuntimeEvent(f *testing.F) {
	seeds := runtimeEventSeeds()
	if len(seeds) == 0 {
		f.Fatal("no seeds")
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := eventlog.ParseEvent(data)
		if err != nil {
			if e != nil {
				t.Fatal("ParseEvent returned an event with an error")
			}
			if !errors.Is(err, eventlog.ErrMalformed) && !errors.Is(err, eventlog.ErrUnsupported) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrUnsupported", err)
			}
			return
		}
		enc, err := e.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		e2, err := eventlog.ParseEvent(enc)
		if err != nil {
			t.Fatalf("ParseEvent(%s): %v", enc, err)
		}
		if e2.IMR != e.IMR || e2.Type != e.Type || e2.Name != e.Name || e2.Version != e.Version ||
			!bytes.Equal(e2.Digest, e.Digest) || !bytes.Equal(e2.Payload, e.Payload) ||
			!bytes.Equal(e2.Preimage, e.Preimage) || (e2.Preimage == nil) != (e.Preimage == nil) {
			t.Fatalf("round trip differs:\n%+v\n%+v", e, e2)
		}
		if enc2, _ := e2.MarshalJSON(); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
		}
		_ = e.Describe()
		if !e.IsRuntime() {
			return
		}
		d, err := e.ReplayDigest()
		if err != nil {
			t.Fatalf("ReplayDigest of a parsed runtime event: %v", err)
		}
		if err := e.CheckDigest(); err == nil && len(e.Digest) != 0 && !bytes.Equal(e.Digest, d[:]) {
			t.Fatal("CheckDigest accepted a digest that differs from the replay digest")
		} else if err != nil && !errors.Is(err, eventlog.ErrDigestMismatch) {
			t.Fatalf("CheckDigest error %v is not ErrDigestMismatch", err)
		}
		r, err := eventlog.Replay([]eventlog.Event{*e})
		switch {
		case e.IMR != 3 && err == nil:
			t.Fatal("Replay accepted a runtime event outside RTMR3")
		case e.IMR == 3 && (err != nil || r[3] != eventlog.ReplayDigests(d)):
			t.Fatalf("Replay = %x, %v", r[3], err)
		}
	})
}
