package dstack_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/quote"
)

// quoteReportTime is the verification time of the dstack quote-report
// vector and its collateral (testdata README).
var quoteReportTime = time.Unix(1774003274, 0)

// expected is the union of the fields of the *.expected.json files.
type expected struct {
	MRTD, RTMR0, RTMR1, RTMR2, RTMR3 string
	MRConfigID                       string          `json:"mr_config_id"`
	MRConfigIDVersion                int             `json:"mr_config_id_version"`
	ReplayMatchesQuote               map[string]bool `json:"replay_matches_quote"`
	EventsUntilSystemReady           []string        `json:"runtime_events_until_system_ready"`
	EventsAfterSystemReady           []string        `json:"events_after_system_ready_are_ignored_for_identity"`
	AppID                            string          `json:"app_id"`
	ComposeHash                      string          `json:"compose_hash"`
	InstanceID                       string          `json:"instance_id"`
	KeyProviderInfo                  string          `json:"key_provider_info"`
	KeyProviderName                  string          `json:"key_provider_name"`
	MRSystem                         string          `json:"mr_system"`
	MRAggregated                     string          `json:"mr_aggregated"`
	OSImageHashFromVMConfig          string          `json:"os_image_hash_from_vm_config"`
	OSImageHash                      string          `json:"os_image_hash"`
	ReportDataASCII                  string          `json:"report_data_ascii"`
}

func readExpected(t testing.TB, name string) *expected {
	t.Helper()
	var e expected
	if err := json.Unmarshal(testvectors.ReadFile(t, "dstack", name), &e); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &e
}

func parseVector(t testing.TB, name string) *dstack.Evidence {
	t.Helper()
	ev, err := dstack.ParseEvidence(testvectors.ReadFile(t, "dstack", name))
	if err != nil {
		t.Fatalf("ParseEvidence(%s): %v", name, err)
	}
	return ev
}

func quoteReportCollateral(t testing.TB) *collateral.Collateral {
	t.Helper()
	c, err := collateral.ParseQVLJSON(testvectors.ReadFile(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json"))
	if err != nil {
		t.Fatalf("ParseQVLJSON: %v", err)
	}
	return c
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func wantHex(t testing.TB, what string, got []byte, want string) {
	t.Helper()
	if hex.EncodeToString(got) != want {
		t.Errorf("%s = %x, want %s", what, got, want)
	}
}

// cloneEvidence copies the event slices of ev so that a test can mutate
// events without touching other tests' evidence.
func cloneEvidence(ev *dstack.Evidence) *dstack.Evidence {
	c := *ev
	c.Events = cloneEvents(ev.Events)
	c.RuntimeEvents = cloneEvents(ev.RuntimeEvents)
	return &c
}

func cloneEvents(in []eventlog.Event) []eventlog.Event {
	out := make([]eventlog.Event, len(in))
	for i, e := range in {
		e.Digest = bytes.Clone(e.Digest)
		e.Payload = bytes.Clone(e.Payload)
		e.Preimage = bytes.Clone(e.Preimage)
		out[i] = e
	}
	return out
}

func runtimeEvent(name string, payload []byte, version uint32) eventlog.Event {
	e := eventlog.Event{IMR: 3, Type: eventlog.EvDstackRuntime, Name: name, Payload: payload, Version: version}
	if version == 2 {
		pre, err := eventlog.RuntimePreimage(name, payload, 2)
		if err != nil {
			panic(err)
		}
		d := sha512.Sum384(pre)
		e.Preimage = pre
		e.Digest = d[:]
	}
	return e
}

// syntheticEvents is a dstack-like runtime log with a version 2 event and
// an application event after system-ready.
func syntheticEvents() []eventlog.Event {
	compose := bytes.Repeat([]byte{0xc0}, 32)
	return []eventlog.Event{
		runtimeEvent("system-preparing", nil, 0),
		runtimeEvent("app-id", compose[:20], 0),
		runtimeEvent("compose-hash", compose, 0),
		runtimeEvent("init-script-hash", bytes.Repeat([]byte{0x15}, 32), 2),
		runtimeEvent("instance-id", bytes.Repeat([]byte{0x1d}, 20), 0),
		runtimeEvent("boot-mr-done", nil, 0),
		runtimeEvent("key-provider", []byte(`{"name":"kms","id":"3059"}`), 0),
		runtimeEvent("system-ready", nil, 0),
		runtimeEvent("app-id", bytes.Repeat([]byte{0xee}, 20), 0),
	}
}

func replay(t testing.TB, events []eventlog.Event) [48]byte {
	t.Helper()
	var mr [48]byte
	for i := range events {
		d, err := events[i].ReplayDigest()
		if err != nil {
			t.Fatal(err)
		}
		mr = eventlog.Extend(mr, d)
	}
	return mr
}

// signedFixture builds a dcaptest-signed TDX quote whose RTMR3 is the
// replay of events and whose REPORTDATA is reportData; mutate, if set,
// changes the TD report before signing.
type signed struct {
	fixture    *dcaptest.Fixture
	quote      *dcaptest.Quote
	collateral *collateral.Collateral
}

func newSigned(t testing.TB, kind dcaptest.QuoteKind, events []eventlog.Event, reportData [64]byte, mutate func(*quote.TDReport)) *signed {
	t.Helper()
	f, err := dcaptest.NewFixture(kind, dcaptest.FixtureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	td := f.QuoteSpec.TD
	td.RTMRs[3] = replay(t, events)
	td.ReportData = reportData
	if mutate != nil {
		mutate(td)
	}
	q, err := f.BuildQuote()
	if err != nil {
		t.Fatal(err)
	}
	if q.Parsed == nil {
		t.Fatalf("BuildQuote: %v", q.ParseErr)
	}
	c, err := f.BuildCollateral()
	if err != nil {
		t.Fatal(err)
	}
	return &signed{fixture: f, quote: q, collateral: c}
}

func (s *signed) options() dstack.Options {
	return dstack.Options{Now: s.fixture.Now, TrustedRoot: s.fixture.PKI.Root.Certificate}
}

// getQuoteJSON renders GetQuote JSON for a quote and events.
func getQuoteJSON(t testing.TB, rawQuote []byte, events []eventlog.Event, vmConfig string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]string{
		"quote":     hex.EncodeToString(rawQuote),
		"event_log": string(eventlog.MarshalEvents(events)),
		"vm_config": vmConfig,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
