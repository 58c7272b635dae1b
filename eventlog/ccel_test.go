package eventlog_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
)

func TestParseCCELSynthetic(t *testing.T) {
	t.Parallel()
	events := sampleEvents()
	for _, tc := range []struct {
		name    string
		fill    byte
		fillLen int
	}{
		{"0xFF fill", 0xFF, 4096},
		{"zero fill", 0x00, 4096},
		{"no fill", 0, 0},
		{"short 0xFF fill", 0xFF, 2},
		{"short zero fill", 0x00, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log, records := buildCCEL(sha384Only, events, tc.fill, tc.fillLen)
			c, err := eventlog.ParseCCEL(log)
			if err != nil {
				t.Fatalf("ParseCCEL: %v", err)
			}
			if len(c.Events) != len(events) {
				t.Fatalf("len(Events) = %d, want %d", len(c.Events), len(events))
			}
			if want := len(log) - tc.fillLen; len(c.Raw) != want || !within(c.Raw, log) {
				t.Errorf("len(Raw) = %d, want %d (aliasing input)", len(c.Raw), want)
			}
			if got := c.SpecID.Algorithms; len(got) != 1 || got[0] != sha384Only[0] {
				t.Errorf("SpecID.Algorithms = %v, want %v", got, sha384Only)
			}
			if c.SpecID.SpecVersionMajor != 2 || c.SpecID.UintnSize != 2 {
				t.Errorf("SpecID = %+v", c.SpecID)
			}
			if c.Header.Type != eventlog.EvNoAction || c.Header.Offset != 0 || !within(c.Header.Raw, log) {
				t.Errorf("Header = %+v", c.Header)
			}
			off := len(c.Header.Raw)
			for i, ev := range c.Events {
				want := events[i]
				if ev.MRIndex != want.mr || ev.Type != want.typ || !bytes.Equal(ev.Data, want.data) {
					t.Errorf("event %d = {mr %d, %s, %x}, want {mr %d, %s, %x}", i, ev.MRIndex, ev.Type, ev.Data, want.mr, want.typ, want.data)
				}
				if ev.Offset != off || !bytes.Equal(ev.Raw, records[i]) || !within(ev.Raw, log[off:off+len(records[i])]) {
					t.Errorf("event %d: Offset %d, Raw %x; want offset %d, raw %x aliasing the input", i, ev.Offset, ev.Raw, off, records[i])
				}
				if !within(ev.Data, ev.Raw) {
					t.Errorf("event %d: Data does not alias Raw", i)
				}
				d, ok := ev.Digest(eventlog.AlgSHA384)
				sum := sha512.Sum384(want.data)
				if !ok || !bytes.Equal(d, sum[:]) || !within(d, ev.Raw) {
					t.Errorf("event %d: SHA-384 digest %x, %v; want %x", i, d, ok, sum)
				}
				if _, ok := ev.Digest(eventlog.AlgSHA256); ok {
					t.Errorf("event %d: unexpected SHA-256 digest", i)
				}
				off += len(records[i])
			}
		})
	}
}

func TestTCGEventRTMR(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mr   uint32
		want int
		ok   bool
	}{{0, 0, false}, {1, 0, true}, {2, 1, true}, {3, 2, true}, {4, 3, true}, {5, 0, false}, {0xFFFFFFFE, 0, false}} {
		e := eventlog.TCGEvent{MRIndex: tc.mr}
		got, ok := e.RTMR()
		if got != tc.want || ok != tc.ok {
			t.Errorf("TCGEvent{MRIndex: %d}.RTMR() = %d, %v; want %d, %v", tc.mr, got, ok, tc.want, tc.ok)
		}
	}
}

func TestTDXEventsSynthetic(t *testing.T) {
	t.Parallel()
	events := sampleEvents()
	log, _ := buildCCEL(sha384Only, events, 0xFF, 100)
	c, err := eventlog.ParseCCEL(log)
	if err != nil {
		t.Fatalf("ParseCCEL: %v", err)
	}
	tdx, err := c.TDXEvents()
	if err != nil {
		t.Fatalf("TDXEvents: %v", err)
	}
	// The MRTD event (mr 0) is dropped.
	if len(tdx) != len(events)-1 {
		t.Fatalf("len(TDXEvents) = %d, want %d", len(tdx), len(events)-1)
	}
	var want eventlog.RTMRs
	names := []string{}
	j := 0
	for _, e := range events {
		if e.mr == 0 {
			continue
		}
		got := tdx[j]
		j++
		if got.IMR != e.mr-1 || got.Type != e.typ || !bytes.Equal(got.Payload, e.data) {
			t.Errorf("TDXEvents[%d] = {imr %d, %s, %x}, want {imr %d, %s, %x}", j-1, got.IMR, got.Type, got.Payload, e.mr-1, e.typ, e.data)
		}
		if got.Name != "" {
			names = append(names, got.Name)
		}
		d := sha512.Sum384(e.data)
		want[e.mr-1] = eventlog.Extend(want[e.mr-1], d)
	}
	// Only the first three RTMR0 ACPI DATA events are labelled.
	if got := strings.Join(names, ","); got != "acpi-loader,acpi-rsdp,acpi-tables" {
		t.Errorf("labels = %s", got)
	}
	r, err := eventlog.Replay(tdx)
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if r != want {
		t.Errorf("Replay = %x, want %x", r, want)
	}
	if r[3] != [48]byte{} || r[2] == [48]byte{} {
		t.Errorf("RTMR2/3 = %x / %x", r[2], r[3])
	}
}

func TestParseCCELMultipleAlgorithms(t *testing.T) {
	t.Parallel()
	algs := []eventlog.AlgorithmSize{{Alg: eventlog.AlgSHA256, DigestSize: 32}, {Alg: eventlog.AlgSHA384, DigestSize: 48}, {Alg: 0x0099, DigestSize: 7}}
	d256 := bytes.Repeat([]byte{0x25}, 32)
	d384 := bytes.Repeat([]byte{0x38}, 48)
	d99 := bytes.Repeat([]byte{0x99}, 7)
	events := []synthEvent{
		{mr: 1, typ: eventlog.EvSeparator, data: []byte{0, 0, 0, 0}, digests: []eventlog.Digest{
			{Alg: eventlog.AlgSHA256, Value: d256}, {Alg: 0x0099, Value: d99}, {Alg: eventlog.AlgSHA384, Value: d384}}},
		{mr: 4, typ: eventlog.EvNoAction, data: []byte("StartupLocality\x00\x03"), digests: []eventlog.Digest{
			{Alg: eventlog.AlgSHA256, Value: make([]byte, 32)}}},
	}
	log, _ := buildCCEL(algs, events, 0xFF, 16)
	c, err := eventlog.ParseCCEL(log)
	if err != nil {
		t.Fatalf("ParseCCEL: %v", err)
	}
	if len(c.SpecID.Algorithms) != 3 || len(c.Events) != 2 || len(c.Events[0].Digests) != 3 {
		t.Fatalf("parsed %+v", c)
	}
	if d, _ := c.Events[0].Digest(0x0099); !bytes.Equal(d, d99) {
		t.Errorf("digest 0x0099 = %x", d)
	}
	tdx, err := c.TDXEvents()
	if !errors.Is(err, eventlog.ErrUnsupported) || tdx != nil {
		t.Fatalf("TDXEvents without SHA-384 on event 1: %v, %v; want ErrUnsupported", tdx, err)
	}
	c.Events = c.Events[:1]
	tdx, err = c.TDXEvents()
	if err != nil || len(tdx) != 1 || !bytes.Equal(tdx[0].Digest, d384) {
		t.Fatalf("TDXEvents = %v, %v", tdx, err)
	}
}

func TestParseCCELErrors(t *testing.T) {
	t.Parallel()
	valid, records := buildCCEL(sha384Only, sampleEvents()[:2], 0xFF, 64)
	specOff := 32
	firstEvent := len(valid) - 64 - len(records[0]) - len(records[1])

	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(valid)) }
	header := func(spec []byte) []byte {
		var b bytes.Buffer
		b.Write(le32(0))
		b.Write(le32(3))
		b.Write(make([]byte, 20))
		b.Write(le32(uint32(len(spec))))
		b.Write(spec)
		return b.Bytes()
	}
	withEvent := func(ev []byte) []byte {
		return append(header(specIDEvent(sha384Only, nil)), ev...)
	}
	digest := bytes.Repeat([]byte{1}, 48)
	tests := []struct {
		name       string
		in         []byte
		wantErr    error
		wantOffset int
	}{
		{"empty", nil, eventlog.ErrMalformed, 0},
		{"short header", valid[:10], eventlog.ErrMalformed, 8},
		{"header not EV_NO_ACTION", mutate(func(b []byte) []byte { b[4] = 4; return b }), eventlog.ErrMalformed, 4},
		{"header size too large", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[28:], 1<<31); return b }), eventlog.ErrMalformed, 32},
		{"legacy signature", mutate(func(b []byte) []byte { copy(b[specOff:], "Spec ID Event00"); return b }), eventlog.ErrUnsupported, specOff},
		{"zero algorithms", header(specIDEvent(nil, nil)), eventlog.ErrMalformed, specOff + 24},
		{"algorithm count too large", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[specOff+24:], 1000); return b }), eventlog.ErrMalformed, specOff + 24},
		{"wrong SHA-384 size", header(specIDEvent([]eventlog.AlgorithmSize{{Alg: eventlog.AlgSHA384, DigestSize: 32}}, nil)), eventlog.ErrMalformed, specOff + 28},
		{"zero digest size", header(specIDEvent([]eventlog.AlgorithmSize{{Alg: 0x77, DigestSize: 0}}, nil)), eventlog.ErrMalformed, specOff + 28},
		{"duplicate algorithm", header(specIDEvent([]eventlog.AlgorithmSize{sha384Only[0], sha384Only[0]}, nil)), eventlog.ErrMalformed, specOff + 32},
		{"spec id trailing bytes", header(append(specIDEvent(sha384Only, nil), 0)), eventlog.ErrMalformed, specOff + 33},
		{"vendor info truncated", mutate(func(b []byte) []byte { b[specOff+32] = 5; return b }), eventlog.ErrMalformed, specOff + 33},
		{"truncated event header", withEvent([]byte{1, 0, 0, 0, 4, 0}), eventlog.ErrMalformed, 65 + 4},
		{"zero digest count", withEvent(append(le32(1), append(le32(4), le32(0)...)...)), eventlog.ErrMalformed, 65 + 8},
		{"digest count above table", withEvent(append(le32(1), append(le32(4), le32(2)...)...)), eventlog.ErrMalformed, 65 + 8},
		{"unknown digest algorithm", withEvent(bytes.Join([][]byte{le32(1), le32(4), le32(1), le16(0x0b), digest, le32(0)}, nil)), eventlog.ErrMalformed, 65 + 12},
		{"truncated digest", withEvent(bytes.Join([][]byte{le32(1), le32(4), le32(1), le16(0x0c), digest[:20]}, nil)), eventlog.ErrMalformed, 65 + 14},
		{"event size too large", withEvent(bytes.Join([][]byte{le32(1), le32(4), le32(1), le16(0x0c), digest, le32(0xFFFFFFFF), {0}}, nil)), eventlog.ErrMalformed, 65 + 66},
		{"garbage after events", append(bytes.Clone(valid[:len(valid)-64]), 1, 2, 3), eventlog.ErrMalformed, firstEvent + len(records[0]) + len(records[1])},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := eventlog.ParseCCEL(tc.in)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ParseCCEL error = %v, want %v", err, tc.wantErr)
			}
			if c != nil {
				t.Error("ParseCCEL returned a result with an error")
			}
			pe, ok := errors.AsType[*eventlog.ParseError](err)
			if !ok {
				t.Fatalf("error %T is not a *eventlog.ParseError", err)
			}
			if pe.Offset != tc.wantOffset {
				t.Errorf("Offset = %d, want %d (%v)", pe.Offset, tc.wantOffset, err)
			}
			if !strings.HasPrefix(err.Error(), "eventlog: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

// TestParseCCELTruncations parses every prefix of a valid log: a prefix
// that ends on a record boundary parses (its end is the end of the log);
// any other prefix is an error. The log has no MR index 0 records, whose
// leading zero bytes would, once truncated, read as zero fill.
func TestParseCCELTruncations(t *testing.T) {
	t.Parallel()
	var events []synthEvent
	for _, e := range sampleEvents() {
		if e.mr != 0 {
			events = append(events, e)
		}
	}
	log, records := buildCCEL(sha384Only, events, 0xFF, 0)
	boundaries := map[int]int{}
	end := len(log)
	for i := len(records) - 1; i >= 0; i-- {
		boundaries[end] = i + 1
		end -= len(records[i])
	}
	boundaries[end] = 0
	for n := range len(log) {
		c, err := eventlog.ParseCCEL(log[:n])
		want, ok := boundaries[n]
		switch {
		case ok && (err != nil || len(c.Events) != want):
			t.Errorf("ParseCCEL(log[:%d]) = %v; want %d events", n, err, want)
		case !ok && (err == nil || c != nil):
			t.Errorf("ParseCCEL(log[:%d]) succeeded, want error", n)
		case !ok && !errors.Is(err, eventlog.ErrMalformed):
			t.Errorf("ParseCCEL(log[:%d]) error %v does not wrap ErrMalformed", n, err)
		}
	}
}

func TestTDXEventsMRIndexTooLarge(t *testing.T) {
	t.Parallel()
	log, _ := buildCCEL(sha384Only, []synthEvent{{mr: 5, typ: eventlog.EvSeparator, data: []byte{0, 0, 0, 0}}}, 0xFF, 4)
	c, err := eventlog.ParseCCEL(log)
	if err != nil {
		t.Fatalf("ParseCCEL: %v", err)
	}
	if _, err := c.TDXEvents(); !errors.Is(err, eventlog.ErrUnsupported) {
		t.Errorf("TDXEvents with mr index 5: %v, want ErrUnsupported", err)
	}
}

// snapEvent is one entry of ccel.parse.snap.
type snapEvent struct {
	imr     uint32
	typ     uint32
	digests []string
	data    string
}

var (
	snapBlockRE  = regexp.MustCompile(`(?s)TcgEventLog \{(.*?)\n    \},`)
	snapIMRRE    = regexp.MustCompile(`imr_index: (\d+),`)
	snapTypeRE   = regexp.MustCompile(`event_type: (\d+),`)
	snapDigestRE = regexp.MustCompile(`(?s)digests: \[(.*?)\]`)
	snapHexRE    = regexp.MustCompile(`"([0-9a-f]*)"`)
	snapEventRE  = regexp.MustCompile(`event: "([0-9a-f]*)",`)
)

// parseSnap reads the insta snapshot of dstack's CCEL parser: a Rust
// Debug dump of TcgEventLog{imr_index, event_type, digests, event}.
func parseSnap(tb testing.TB, snap []byte) []snapEvent {
	tb.Helper()
	var out []snapEvent
	for _, m := range snapBlockRE.FindAllSubmatch(snap, -1) {
		block := m[1]
		var ev snapEvent
		im, ty, dg, ed := snapIMRRE.FindSubmatch(block), snapTypeRE.FindSubmatch(block), snapDigestRE.FindSubmatch(block), snapEventRE.FindSubmatch(block)
		if im == nil || ty == nil || dg == nil || ed == nil {
			tb.Fatalf("unparsable snapshot block: %s", block)
		}
		imr, _ := strconv.ParseUint(string(im[1]), 10, 32)
		typ, _ := strconv.ParseUint(string(ty[1]), 10, 32)
		ev.imr, ev.typ, ev.data = uint32(imr), uint32(typ), string(ed[1])
		for _, h := range snapHexRE.FindAllSubmatch(dg[1], -1) {
			ev.digests = append(ev.digests, string(h[1]))
		}
		out = append(out, ev)
	}
	if len(out) == 0 {
		tb.Fatal("no events in snapshot")
	}
	return out
}

// Expected replay of ccel.bin, computed independently from the digests in
// ccel.parse.snap (the log has no RTMR2 or RTMR3 events).
const (
	ccelRTMR0 = "274c2344116db7c663470693b5ba62b8621eac28cb41d2f816ddf188f9f423f900a1c44d32386fd3c993dc814e62af9d"
	ccelRTMR1 = "bdcf4ee0f7fdfe7c73fbb19ded73193aee23a6726b86d3b282ea097cf4c9ed7a0db21b5c1ccd513e410d90e310836b26"
)

func TestCCELVector(t *testing.T) {
	t.Parallel()
	data := testvectors.ReadFile(t, "dstack", "ccel.bin")
	snap := parseSnap(t, testvectors.ReadFile(t, "dstack", "ccel.parse.snap"))

	c, err := eventlog.ParseCCEL(data)
	if err != nil {
		t.Fatalf("ParseCCEL(ccel.bin): %v", err)
	}
	if len(data) != 65536 {
		t.Errorf("len(ccel.bin) = %d", len(data))
	}
	if len(c.Raw) != 1933 || !bytes.Equal(bytes.Trim(data[len(c.Raw):], "\xff"), nil) {
		t.Errorf("log length %d; rest is not 0xFF fill", len(c.Raw))
	}
	if got := c.SpecID.Algorithms; len(got) != 1 || got[0] != (eventlog.AlgorithmSize{Alg: eventlog.AlgSHA384, DigestSize: 48}) {
		t.Errorf("Spec ID algorithms = %v, want [SHA384/48]", got)
	}
	if len(c.Events) != len(snap) {
		t.Fatalf("%d events, snapshot has %d", len(c.Events), len(snap))
	}
	for i, want := range snap {
		ev := c.Events[i]
		if ev.MRIndex != want.imr {
			t.Errorf("event %d: MRIndex = %d, want %d", i, ev.MRIndex, want.imr)
		}
		if uint32(ev.Type) != want.typ {
			t.Errorf("event %d: Type = %s (%d), want %d", i, ev.Type, uint32(ev.Type), want.typ)
		}
		if len(ev.Digests) != len(want.digests) {
			t.Errorf("event %d: %d digests, want %d", i, len(ev.Digests), len(want.digests))
		}
		for j := range min(len(ev.Digests), len(want.digests)) {
			if got := hex.EncodeToString(ev.Digests[j].Value); got != want.digests[j] || ev.Digests[j].Alg != eventlog.AlgSHA384 {
				t.Errorf("event %d digest %d = %s %s, want SHA384 %s", i, j, ev.Digests[j].Alg, got, want.digests[j])
			}
		}
		if got := hex.EncodeToString(ev.Data); got != want.data {
			t.Errorf("event %d: data = %s, want %s", i, got, want.data)
		}
		if !within(ev.Raw, data) || !bytes.Equal(ev.Raw, data[ev.Offset:ev.Offset+len(ev.Raw)]) {
			t.Errorf("event %d: Raw does not alias the input at its offset", i)
		}
	}

	tdx, err := c.TDXEvents()
	if err != nil {
		t.Fatalf("TDXEvents: %v", err)
	}
	if len(tdx) != 18 {
		t.Fatalf("len(TDXEvents) = %d, want 18", len(tdx))
	}
	count := [4]int{}
	for _, e := range tdx {
		count[e.IMR]++
	}
	if count != [4]int{13, 5, 0, 0} {
		t.Errorf("events per RTMR = %v, want [13 5 0 0]", count)
	}
	if tdx[8].Name != "acpi-loader" || tdx[9].Name != "acpi-rsdp" || tdx[10].Name != "acpi-tables" {
		t.Errorf("ACPI labels = %q %q %q", tdx[8].Name, tdx[9].Name, tdx[10].Name)
	}

	// Replay, checked against a fold over the snapshot digests and against
	// fixed values.
	var fromSnap eventlog.RTMRs
	for _, ev := range snap {
		fromSnap[ev.imr-1] = eventlog.Extend(fromSnap[ev.imr-1], mustHex48(t, ev.digests[0]))
	}
	got, err := eventlog.Replay(tdx)
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if got != fromSnap {
		t.Errorf("Replay = %x, snapshot fold = %x", got, fromSnap)
	}
	want := eventlog.RTMRs{mustHex48(t, ccelRTMR0), mustHex48(t, ccelRTMR1)}
	if got != want {
		t.Errorf("Replay(ccel.bin) =\n%x\nwant\n%x", got, want)
	}
	for i := range 4 {
		mr, err := eventlog.ReplayRTMR(tdx, i)
		if err != nil || mr != want[i] {
			t.Errorf("ReplayRTMR(%d) = %x, %v; want %x", i, mr, err, want[i])
		}
	}
}

func TestCCELVectorDescribe(t *testing.T) {
	t.Parallel()
	c, err := eventlog.ParseCCEL(testvectors.ReadFile(t, "dstack", "ccel.bin"))
	if err != nil {
		t.Fatalf("ParseCCEL: %v", err)
	}
	wants := map[int]string{
		0:  `handoff tables "TdxTable": 1 table(s) [93BB96AF-B9F2-4EB8-9462-E0BA74564236 at 0x809000]`,
		1:  `firmware blob "Fv(XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX)" at 0xffc00000, 0x84000 bytes`,
		2:  `variable 8BE4DF61-93CA-11D2-AA0D-00E098032B8C "SecureBoot", 0 bytes of data`,
		5:  `variable D719B2CB-3D3A-4596-A3BC-DAD00E67656F "db", 0 bytes of data`,
		7:  `separator`,
		8:  `"ACPI DATA"`,
		11: `image at 0x3cd94018, 0x502400 bytes, device path (42 bytes) VenMedia(1428F772-B64A-441E-B8C3-9EBDD7F893C7)/kernel`,
		12: `variable 8BE4DF61-93CA-11D2-AA0D-00E098032B8C "BootOrder", 2 bytes of data`,
		13: `variable 8BE4DF61-93CA-11D2-AA0D-00E098032B8C "Boot0000", 62 bytes of data`,
		14: `"Calling EFI Application from Boot Option"`,
	}
	for i, want := range wants {
		if got := c.Events[i].Describe(); got != want {
			t.Errorf("Events[%d].Describe() = %s\nwant %s", i, got, want)
		}
	}
	if got, want := c.Header.Describe(), "Spec ID Event03 2.0 errata 0, digests SHA384/48"; got != want {
		t.Errorf("Header.Describe() = %s, want %s", got, want)
	}
	tdx, _ := c.TDXEvents()
	if got, want := tdx[10].Describe(), `acpi-tables: "ACPI DATA"`; got != want {
		t.Errorf("Describe() = %s, want %s", got, want)
	}
}
