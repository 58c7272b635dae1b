package dstack_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/eventlog"
)

// syntheticAttestation returns an attestation whose lengths exercise every
// SCALE compact width (1, 2 and 4 bytes) and both msgpack str/bin widths.
func syntheticAttestation(version int) *dstack.Attestation {
	a := &dstack.Attestation{
		Version: version,
		Quote:   bytes.Repeat([]byte{0x51}, 20000),
		EventLog: []eventlog.Event{
			{IMR: 0, Type: eventlog.EvPlatformConfigFlags, Digest: bytes.Repeat([]byte{1}, 48), Name: "acpi-loader", Payload: []byte("ACPI DATA")},
			{IMR: 1, Type: eventlog.EvEFIAction, Digest: bytes.Repeat([]byte{2}, 48)},
			{IMR: 3, Type: eventlog.EvDstackRuntime, Name: "compose-hash", Payload: bytes.Repeat([]byte{3}, 32)},
			{IMR: 3, Type: eventlog.EvDstackRuntime, Name: "big", Payload: bytes.Repeat([]byte{4}, 300)},
		},
		RuntimeEvents: []dstack.RuntimeEvent{
			{Name: "compose-hash", Payload: bytes.Repeat([]byte{3}, 32)},
			{Name: "big", Payload: bytes.Repeat([]byte{4}, 300)},
		},
		Config: `{"os_image_hash":"` + strings.Repeat("ab", 32) + `","cpu_count":2,"note":"ünïcode"}`,
	}
	for i := range a.ReportData {
		a.ReportData[i] = byte(i)
	}
	if version == 1 {
		a.Stack = dstack.StackDstack
	}
	return a
}

func roundTrip(t *testing.T, a *dstack.Attestation) []byte {
	t.Helper()
	b, err := a.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	got, err := dstack.ParseAttestation(b)
	if err != nil {
		t.Fatalf("ParseAttestation(Marshal()): %v", err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("decode(encode(a)) differs:\n got %+v\nwant %+v", got, a)
	}
	b2, err := got.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("encode → decode → encode is not byte-exact")
	}
	return b
}

func TestAttestationRoundTripV0(t *testing.T) {
	t.Parallel()
	a := syntheticAttestation(0)
	b := roundTrip(t, a)
	if b[0] != 0 || b[1] != 0 {
		t.Errorf("V0 starts %x, want 00 00 (V0, DstackTdx)", b[:2])
	}
	// Empty everything still round-trips.
	roundTrip(t, &dstack.Attestation{Quote: []byte{1}, EventLog: []eventlog.Event{}, RuntimeEvents: []dstack.RuntimeEvent{}})
}

func TestAttestationRoundTripV1(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mutate func(*dstack.Attestation)
	}{
		{"dstack", func(*dstack.Attestation) {}},
		{"byte arrays", func(a *dstack.Attestation) { a.ByteArrays = true }},
		{"pod", func(a *dstack.Attestation) { a.Stack, a.ReportDataPayload = dstack.StackDstackPod, `{"hello":"world"}` }},
		{"versions and preimages", func(a *dstack.Attestation) {
			e := runtimeEvent("compose-hash", bytes.Repeat([]byte{3}, 32), 2)
			a.EventLog[2] = e
			a.RuntimeEvents[0].Version = 2
			a.EventLog[3].Version, a.RuntimeEvents[1].Version = 1, 1
			a.EventLog[1].Preimage = []byte{}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := syntheticAttestation(1)
			tc.mutate(a)
			b := roundTrip(t, a)
			if b[0] != 0x83 {
				t.Errorf("V1 starts with 0x%02x, want fixmap of 3", b[0])
			}
		})
	}
}

// TestMsgpackSerdeForms decodes msgpack written in forms rmp_serde also
// accepts but the encoder does not produce: fields out of order, data
// before kind, unknown fields, integers in wider encodings.
func TestMsgpackSerdeForms(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	str := func(s string) { must(e.EncodeString(s)) }
	must(e.EncodeMapLen(4))
	str("stack")
	must(e.EncodeMapLen(2))
	str("data")
	must(e.EncodeMapLen(4))
	str("config")
	str("{}")
	str("unknown")
	must(e.Encode(map[string]any{"x": []any{1, "y", nil, true, 1.5}}))
	str("runtime_events")
	must(e.EncodeArrayLen(1))
	must(e.EncodeMapLen(2))
	str("payload")
	must(e.EncodeBytes([]byte{7}))
	str("event")
	str("app-id")
	str("report_data")
	must(e.EncodeBytes(make([]byte, 64)))
	str("kind")
	str("dstack")
	str("platform")
	must(e.EncodeMapLen(2))
	str("kind")
	str("tdx")
	str("data")
	must(e.EncodeMapLen(2))
	str("event_log")
	must(e.EncodeArrayLen(1))
	must(e.EncodeMapLen(4))
	str("event_payload")
	must(e.EncodeBytes([]byte{7}))
	str("event")
	str("app-id")
	str("event_type")
	must(e.EncodeUint32(uint32(eventlog.EvDstackRuntime)))
	str("imr")
	must(e.EncodeUint64(3))
	str("quote")
	must(e.EncodeArrayLen(2))
	must(e.EncodeUint8(200))
	must(e.EncodeInt8(5))
	str("version")
	must(e.EncodeUint16(1))
	str("extra")
	must(e.EncodeNil())

	a, err := dstack.ParseAttestation(buf.Bytes())
	if err != nil {
		t.Fatalf("ParseAttestation: %v", err)
	}
	want := &dstack.Attestation{
		Version:       1,
		Stack:         dstack.StackDstack,
		Quote:         []byte{200, 5},
		EventLog:      []eventlog.Event{{IMR: 3, Type: eventlog.EvDstackRuntime, Name: "app-id", Payload: []byte{7}}},
		RuntimeEvents: []dstack.RuntimeEvent{{Name: "app-id", Payload: []byte{7}}},
		Config:        "{}",
		ByteArrays:    true,
	}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("decoded %+v\nwant %+v", a, want)
	}
}

func TestParseAttestationErrors(t *testing.T) {
	t.Parallel()
	v0, err := syntheticAttestation(0).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	v1, err := syntheticAttestation(1).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	mp := func(build func(e *msgpack.Encoder) error) []byte {
		var buf bytes.Buffer
		if err := build(msgpack.NewEncoder(&buf)); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	replace := func(b []byte, old, new string) []byte {
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("%q not in encoding", old)
		}
		return bytes.Replace(b, []byte(old), []byte(new), 1)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, dstack.ErrMalformed},
		{"unknown version byte", []byte{0x01, 0}, dstack.ErrUnsupported},
		{"scale trailing byte", append(bytes.Clone(v0), 0), dstack.ErrMalformed},
		{"scale sev-snp kind with a TDX body", append([]byte{0, 3}, v0[2:]...), dstack.ErrMalformed},
		{"scale unknown platform", append([]byte{0, 9}, v0[2:]...), dstack.ErrMalformed},
		{"scale non-canonical length", []byte{0, 0, 0x01, 0x00}, dstack.ErrMalformed},
		{"scale length beyond input", []byte{0, 0, 0xfe, 0xff, 0xff, 0xff}, dstack.ErrMalformed},
		{"scale invalid utf-8", replace(bytes.Clone(v0), "compose-hash", "compose-has\xff"), dstack.ErrMalformed},
		{"msgpack trailing byte", append(bytes.Clone(v1), 0xc0), dstack.ErrMalformed},
		{"msgpack version 2", replace(bytes.Clone(v1), "\xa7version\x01", "\xa7version\x02"), dstack.ErrUnsupported},
		{"msgpack gcp-tdx kind without a TPM quote", replace(bytes.Clone(v1), "\xa4kind\xa3tdx", "\xa4kind\xa7gcp-tdx"), dstack.ErrMalformed},
		{"msgpack unknown platform", replace(bytes.Clone(v1), "\xa4kind\xa3tdx", "\xa4kind\xa3xyz"), dstack.ErrMalformed},
		{"msgpack unknown stack", replace(bytes.Clone(v1), "\xa4kind\xa6dstack", "\xa4kind\xa6xstack"), dstack.ErrUnsupported},
		{"msgpack duplicate key", mp(func(e *msgpack.Encoder) error {
			_ = e.EncodeMapLen(2)
			_ = e.EncodeString("version")
			_ = e.EncodeUint(1)
			_ = e.EncodeString("version")
			return e.EncodeUint(1)
		}), dstack.ErrMalformed},
		{"msgpack missing fields", mp(func(e *msgpack.Encoder) error {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("version")
			return e.EncodeUint(1)
		}), dstack.ErrMalformed},
		{"msgpack non-string key", mp(func(e *msgpack.Encoder) error {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeUint(0)
			return e.EncodeUint(1)
		}), dstack.ErrMalformed},
		{"msgpack extension", mp(func(e *msgpack.Encoder) error {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("x")
			_, err := e.Writer().Write([]byte{0xd4, 1, 2})
			return err
		}), dstack.ErrMalformed},
		{"msgpack deep nesting", mp(func(e *msgpack.Encoder) error {
			_ = e.EncodeMapLen(1)
			_ = e.EncodeString("x")
			for range 100 {
				_ = e.EncodeArrayLen(1)
			}
			return e.EncodeNil()
		}), dstack.ErrMalformed},
		{"msgpack short report data", replace(bytes.Clone(v1), "\xabreport_data\xc4\x40", "\xabreport_data\xc4\x3f")[:len(v1)], dstack.ErrMalformed},
		{"msgpack bad event version", replace(bytes.Clone(v1), "\xa3imr\x00", "\xa7version\x07"), dstack.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := dstack.ParseAttestation(tc.in)
			if !errors.Is(err, tc.want) || a != nil {
				t.Fatalf("ParseAttestation = %v, %v; want nil, %v", a, err, tc.want)
			}
			if _, ok := errors.AsType[*dstack.ParseError](err); !ok {
				t.Errorf("error %v is not a *ParseError", err)
			}
		})
	}
}

// TestParseAttestationTruncated: every proper prefix of a valid encoding
// is rejected as malformed.
func TestParseAttestationTruncated(t *testing.T) {
	t.Parallel()
	for v := range 2 {
		a := syntheticAttestation(v)
		a.Quote = a.Quote[:100]
		b, err := a.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		for n := 1; n < len(b); n++ {
			if got, err := dstack.ParseAttestation(b[:n]); !errors.Is(err, dstack.ErrMalformed) || got != nil {
				t.Fatalf("version %d, %d of %d bytes: %v, %v; want ErrMalformed", v, n, len(b), got, err)
			}
		}
	}
}

func TestMarshalRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mutate func(*dstack.Attestation)
		want   error
	}{
		{"v0 event version", func(a *dstack.Attestation) { a.EventLog[2].Version = 2 }, dstack.ErrUnsupported},
		{"v0 preimage", func(a *dstack.Attestation) { a.EventLog[2].Preimage = []byte{1} }, dstack.ErrUnsupported},
		{"v0 runtime version", func(a *dstack.Attestation) { a.RuntimeEvents[0].Version = 1 }, dstack.ErrUnsupported},
		{"v0 pod", func(a *dstack.Attestation) { a.Stack = dstack.StackDstackPod }, dstack.ErrUnsupported},
		{"invalid utf-8", func(a *dstack.Attestation) { a.Config = "\xff" }, dstack.ErrMalformed},
		{"v1 no stack", func(a *dstack.Attestation) { a.Version, a.Stack = 1, "" }, dstack.ErrUnsupported},
		{"v1 payload without pod", func(a *dstack.Attestation) { a.Version, a.Stack, a.ReportDataPayload = 1, dstack.StackDstack, "x" }, dstack.ErrMalformed},
		{"v1 version 3", func(a *dstack.Attestation) { a.Version, a.Stack, a.RuntimeEvents[0].Version = 1, dstack.StackDstack, 3 }, dstack.ErrMalformed},
		{"version 2", func(a *dstack.Attestation) { a.Version = 2 }, dstack.ErrUnsupported},
		{"too many events", func(a *dstack.Attestation) {
			a.RuntimeEvents = make([]dstack.RuntimeEvent, dstack.MaxEvents+1)
		}, dstack.ErrMalformed},
		{"too large", func(a *dstack.Attestation) { a.Quote = make([]byte, dstack.MaxAttestationSize) }, dstack.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := syntheticAttestation(0)
			tc.mutate(a)
			if b, err := a.Marshal(); !errors.Is(err, tc.want) || b != nil {
				t.Fatalf("Marshal = %d bytes, %v; want %v", len(b), err, tc.want)
			}
		})
	}
}

// TestAttestationEvidenceConsistency: the stack's runtime events must
// agree with the runtime events of the platform event log.
func TestAttestationEvidenceConsistency(t *testing.T) {
	t.Parallel()
	raw := attestationBytes(t)
	for i, mutate := range []func(*dstack.Attestation){
		func(a *dstack.Attestation) { a.RuntimeEvents[1].Payload = []byte{1} },
		func(a *dstack.Attestation) { a.RuntimeEvents = a.RuntimeEvents[1:] },
		func(a *dstack.Attestation) {
			a.RuntimeEvents[0], a.RuntimeEvents[1] = a.RuntimeEvents[1], a.RuntimeEvents[0]
		},
	} {
		a, err := dstack.ParseAttestation(raw)
		if err != nil {
			t.Fatal(err)
		}
		mutate(a)
		if ev, err := a.Evidence(); !errors.Is(err, dstack.ErrMalformed) || ev != nil {
			t.Errorf("case %d: Evidence() = %v, %v; want ErrMalformed", i, ev, err)
		}
	}
	// Without runtime events in the log, the stack's list is used alone.
	a, err := dstack.ParseAttestation(raw)
	if err != nil {
		t.Fatal(err)
	}
	var boot []eventlog.Event
	for _, e := range a.EventLog {
		if !e.IsRuntime() {
			boot = append(boot, e)
		}
	}
	a.EventLog = boot
	ev, err := a.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dstack.VerifyEventLog(ev, dstack.Options{}); err != nil {
		t.Errorf("VerifyEventLog without logged runtime events: %v", err)
	}
}

func ExampleParseAttestation() {
	a := &dstack.Attestation{
		Version:       1,
		Stack:         dstack.StackDstack,
		Quote:         []byte{1, 2, 3},
		RuntimeEvents: []dstack.RuntimeEvent{{Name: "app-id", Payload: []byte{0xaa}}},
		Config:        "{}",
	}
	b, err := a.Marshal()
	if err != nil {
		panic(err)
	}
	got, err := dstack.ParseAttestation(b)
	if err != nil {
		panic(err)
	}
	fmt.Println(got.Version, got.Stack, got.RuntimeEvents[0].Name)
	// Output: 1 dstack app-id
}
