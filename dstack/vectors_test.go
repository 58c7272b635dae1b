package dstack_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
)

// checkExpected compares a result with an *.expected.json file: the quote
// registers, the replay of all four RTMRs, the event order, the identity,
// mr_system and mr_aggregated.
func checkExpected(t *testing.T, res *dstack.Result, want *expected, bootReplayed bool) {
	t.Helper()
	wantHex(t, "mrtd", res.AppInfo.MRTD, want.MRTD)
	for i, w := range []string{want.RTMR0, want.RTMR1, want.RTMR2, want.RTMR3} {
		r := res.RTMRs[i]
		wantHex(t, "quoted rtmr", r.Quoted, w)
		if i == 3 || bootReplayed {
			wantHex(t, "replayed rtmr", r.Replayed, w)
			if !r.Verified || !want.ReplayMatchesQuote["rtmr"+string(rune('0'+i))] {
				t.Errorf("RTMR%d verified = %v, expected file says %v", i, r.Verified, want.ReplayMatchesQuote)
			}
		} else if r.Verified || r.Replayed != nil {
			t.Errorf("RTMR%d replayed from a stripped log: %+v", i, r)
		}
	}
	wantHex(t, "rtmr3 app info", res.AppInfo.RTMR3, want.RTMR3)
	if !slices.Equal(res.Identity.Events, want.EventsUntilSystemReady) {
		t.Errorf("events until system-ready = %q, want %q", res.Identity.Events, want.EventsUntilSystemReady)
	}
	if want.EventsAfterSystemReady == nil {
		want.EventsAfterSystemReady = []string{}
	}
	if !slices.Equal(res.Identity.Ignored, want.EventsAfterSystemReady) {
		t.Errorf("ignored events = %q, want %q", res.Identity.Ignored, want.EventsAfterSystemReady)
	}
	wantHex(t, "app_id", res.AppInfo.AppID, want.AppID)
	wantHex(t, "compose_hash", res.AppInfo.ComposeHash, want.ComposeHash)
	wantHex(t, "instance_id", res.AppInfo.InstanceID, want.InstanceID)
	wantHex(t, "mr_system", res.AppInfo.MRSystem, want.MRSystem)
	wantHex(t, "mr_aggregated", res.AppInfo.MRAggregated, want.MRAggregated)
	if want.KeyProviderInfo != "" && string(res.AppInfo.KeyProviderInfo) != want.KeyProviderInfo {
		t.Errorf("key_provider_info = %q, want %q", res.AppInfo.KeyProviderInfo, want.KeyProviderInfo)
	}
	if want.KeyProviderName != "" && (res.KeyProvider == nil || res.KeyProvider.Name != want.KeyProviderName) {
		t.Errorf("key provider = %+v, want name %q", res.KeyProvider, want.KeyProviderName)
	}
	osHash := want.OSImageHash + want.OSImageHashFromVMConfig
	wantHex(t, "os_image_hash", res.AppInfo.OSImageHash, osHash)
	// Lite evidence carries its measurement material: the registers are
	// recomputed from it and os_image_hash binds.
	lite := res.VMConfig != nil && res.VMConfig.TDXMeasurement != nil
	// No shared vector comes with its ACPI tables: their contents are
	// never verified (dstack reports false for the lite fixtures too).
	if res.ACPITablesVerified {
		t.Errorf("acpi_tables_verified true without ACPI tables")
	}
	if res.OSImageHashVerified != lite || (res.Measurement != nil) != lite {
		t.Errorf("os_image_hash_verified = %v, measurement %+v; want lite = %v", res.OSImageHashVerified, res.Measurement, lite)
	}
	if m := res.Measurement; lite && m != nil {
		if m.Mode != dstack.MeasurementLite || m.ACPISource != dstack.ACPIFromEventLog || !m.Match || len(m.Registers) != 4 {
			t.Errorf("measurement %+v", m)
		}
		wantHex(t, "measurement os_image_hash", m.OSImageHash, osHash)
		for i, w := range []string{want.MRTD, want.RTMR0, want.RTMR1, want.RTMR2} {
			wantHex(t, m.Registers[i].Name+" expected", m.Registers[i].Expected, w)
		}
	}
	if !res.EventLogVerified {
		t.Error("event_log_verified is false")
	}
	// BootInfo mirrors AppInfo.
	if !bytes.Equal(res.BootInfo.MRAggregated, res.AppInfo.MRAggregated) || !bytes.Equal(res.BootInfo.AppID, res.AppInfo.AppID) {
		t.Errorf("boot_info %+v differs from app_info", res.BootInfo)
	}
}

func TestQuoteReportVector(t *testing.T) {
	t.Parallel()
	ev := parseVector(t, "quote-report.json")
	want := readExpected(t, "quote-report.expected.json")
	if ev.Format != dstack.FormatGetQuote || len(ev.Events) != 28 || len(ev.RuntimeEvents) != 8 {
		t.Fatalf("parsed %s with %d events, %d runtime; want getquote, 28, 8", ev.Format, len(ev.Events), len(ev.RuntimeEvents))
	}
	res, err := dstack.VerifyEventLog(ev, dstack.Options{})
	if err != nil {
		t.Fatalf("VerifyEventLog: %v", err)
	}
	checkExpected(t, res, want, true)
	if res.QuoteVerified || res.DCAP != nil || len(res.AppInfo.DeviceID) != 0 {
		t.Errorf("VerifyEventLog claims quote verification: %v %v %x", res.QuoteVerified, res.DCAP, res.AppInfo.DeviceID)
	}
	if res.MRConfigID.Version != 0 || res.MRConfigID.Checked {
		t.Errorf("MR_CONFIG_ID = %+v, want unset", res.MRConfigID)
	}
	if !slices.Equal(res.ReportDataChecks, []string{dstack.SourceEvidence}) {
		t.Errorf("report data checks = %q", res.ReportDataChecks)
	}
	last := res.RuntimeEvents[len(res.RuntimeEvents)-1]
	if last.Name != "LIUM_MINER_HOTKEY" || !last.IgnoredForIdentity {
		t.Errorf("last runtime event = %+v, want LIUM_MINER_HOTKEY ignored for identity", last)
	}
	for _, e := range res.RuntimeEvents[:len(res.RuntimeEvents)-1] {
		if e.IgnoredForIdentity || e.SuppliedDigestMismatch {
			t.Errorf("runtime event %+v flagged", e)
		}
	}
}

// TestQuoteReportVerify verifies the quote-report vector end to end: DCAP
// with the shared collateral, then the event log.
func TestQuoteReportVerify(t *testing.T) {
	t.Parallel()
	ev := parseVector(t, "quote-report.json")
	want := readExpected(t, "quote-report.expected.json")
	c := quoteReportCollateral(t)
	for _, tc := range []struct {
		name string
		opts dstack.Options
	}{
		{"dcap.Verify", dstack.Options{Now: quoteReportTime}},
		{"dcap.Verifier", dstack.Options{Now: quoteReportTime, Verifier: dcap.NewVerifier(dcap.VerifierOptions{})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := dstack.Verify(ev, c, tc.opts)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			checkExpected(t, res, want, true)
			if !res.QuoteVerified || res.TCBStatus != "UpToDate" || len(res.AdvisoryIDs) != 0 {
				t.Errorf("quote_verified %v, tcb_status %q, advisory_ids %q; want true, UpToDate, none", res.QuoteVerified, res.TCBStatus, res.AdvisoryIDs)
			}
			if res.DCAP == nil || res.DCAP.Status != collateral.UpToDate {
				t.Fatalf("dcap result %+v", res.DCAP)
			}
			ppid := unhex(t, res.DCAP.PPID)
			dev := sha256.Sum256(ppid)
			if !bytes.Equal(res.AppInfo.DeviceID, dev[:]) || !bytes.Equal(res.BootInfo.DeviceID, dev[:]) {
				t.Errorf("device_id = %x, want SHA-256(PPID) %x", res.AppInfo.DeviceID, dev)
			}
			if res.BootInfo.TCBStatus != "UpToDate" || res.BootInfo.TEEVariant != "dstack-tdx" {
				t.Errorf("boot_info = %+v", res.BootInfo)
			}
			if _, err := json.Marshal(res); err != nil {
				t.Errorf("json.Marshal(result): %v", err)
			}
		})
	}
}

// TestQuoteReportResultJSON checks the JSON shape of a result: snake_case
// members, hex bytes, camelCase boot_info.
func TestQuoteReportResultJSON(t *testing.T) {
	t.Parallel()
	ev := parseVector(t, "quote-report.json")
	res, err := dstack.Verify(ev, quoteReportCollateral(t), dstack.Options{Now: quoteReportTime})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"quote_verified", "event_log_verified", "os_image_hash_verified", "tcb_status", "advisory_ids", "app_info", "boot_info", "key_provider", "dcap"} {
		if _, ok := m[k]; !ok {
			t.Errorf("result JSON lacks %q", k)
		}
	}
	app := m["app_info"].(map[string]any)
	if app["app_id"] != "3763bc34552cf3a27ff71ad5f7a90471562a1a2d" {
		t.Errorf("app_info.app_id = %v", app["app_id"])
	}
	boot := m["boot_info"].(map[string]any)
	if boot["tcbStatus"] != "UpToDate" || boot["composeHash"] != app["compose_hash"] {
		t.Errorf("boot_info = %v", boot)
	}
	kp := m["key_provider"].(map[string]any)
	if kp["name"] != "local-sgx" {
		t.Errorf("key_provider = %v", kp)
	}
}

func TestLiteGetQuoteVector(t *testing.T) {
	t.Parallel()
	ev := parseVector(t, "tdx-lite-getquote.json")
	want := readExpected(t, "tdx-lite-getquote.expected.json")
	res, err := dstack.VerifyEventLog(ev, dstack.Options{})
	if err != nil {
		t.Fatalf("VerifyEventLog: %v", err)
	}
	checkExpected(t, res, want, true)
	wantHex(t, "mr_config_id", ev.Quote.TD.MRConfigID[:], want.MRConfigID)
	if res.MRConfigID.Version != want.MRConfigIDVersion || !res.MRConfigID.Checked || !bytes.Equal(res.MRConfigID.Value, res.AppInfo.ComposeHash) {
		t.Errorf("MR_CONFIG_ID = %+v, want version %d checked against the compose hash", res.MRConfigID, want.MRConfigIDVersion)
	}
	if rd := bytes.TrimRight(res.ReportData, "\x00"); string(rd) != want.ReportDataASCII {
		t.Errorf("report data = %q, want %q", rd, want.ReportDataASCII)
	}
	if ev.VMConfig == nil || ev.VMConfig.Variant() != dstack.VariantLite || ev.VMConfig.TDXMeasurement == nil || ev.VMConfig.MemorySize != 2<<30 {
		t.Errorf("vm_config = %+v", ev.VMConfig)
	}
	sum := sha256.Sum256(ev.VMConfig.TDXMeasurement.ChecksumFile)
	wantHex(t, "sha256(checksum_file)", sum[:], want.OSImageHash)
	// The stripped log's runtime events carry no digest: nothing is
	// flagged, everything is recomputed.
	for _, e := range res.RuntimeEvents {
		if e.SuppliedDigestMismatch || len(e.Digest) != 48 {
			t.Errorf("runtime event %+v", e)
		}
	}
}

// TestLiteAttestationVector decodes the SCALE version 0 attestation of the
// lite VM: same quote, runtime events and identity as its GetQuote
// fixture, and byte-exact re-encoding.
func TestLiteAttestationVector(t *testing.T) {
	t.Parallel()
	ev := parseVector(t, "tdx-lite-attestation.json")
	gq := parseVector(t, "tdx-lite-getquote.json")
	want := readExpected(t, "tdx-lite-getquote.expected.json")
	if ev.Format != dstack.FormatAttestation || ev.Attestation == nil || ev.Attestation.Version != 0 {
		t.Fatalf("format %s, attestation %+v", ev.Format, ev.Attestation)
	}
	if !bytes.Equal(ev.Quote.Raw, gq.Quote.Raw) {
		t.Error("attestation quote differs from the GetQuote quote")
	}
	if len(ev.RuntimeEvents) != len(gq.RuntimeEvents) {
		t.Fatalf("%d runtime events, GetQuote has %d", len(ev.RuntimeEvents), len(gq.RuntimeEvents))
	}
	for i := range ev.RuntimeEvents {
		a, b := ev.RuntimeEvents[i], gq.RuntimeEvents[i]
		if a.Name != b.Name || !bytes.Equal(a.Payload, b.Payload) {
			t.Errorf("runtime event %d = %q %x, GetQuote %q %x", i, a.Name, a.Payload, b.Name, b.Payload)
		}
	}
	// The stripped log keeps the three named ACPI DATA digests.
	acpi := func(events []eventlog.Event) map[string]string {
		m := map[string]string{}
		for _, e := range events {
			if e.IMR == 0 && e.Type == eventlog.EvPlatformConfigFlags {
				m[e.Name] = hex.EncodeToString(e.Digest)
			}
		}
		return m
	}
	if a, g := acpi(ev.Events), acpi(gq.Events); len(a) != 3 || len(g) != 3 || a["acpi-loader"] != g["acpi-loader"] || a["acpi-rsdp"] != g["acpi-rsdp"] || a["acpi-tables"] != g["acpi-tables"] {
		t.Errorf("ACPI digests %v, GetQuote %v", a, g)
	}
	if ev.Config != gq.Config || ev.VMConfig == nil {
		t.Errorf("config differs from the GetQuote vm_config")
	}
	res, err := dstack.VerifyEventLog(ev, dstack.Options{})
	if err != nil {
		t.Fatalf("VerifyEventLog: %v", err)
	}
	checkExpected(t, res, want, false)
	if !slices.Equal(res.ReportDataChecks, []string{dstack.SourceEvidence}) || !res.MRConfigID.Checked {
		t.Errorf("checks %q, MR_CONFIG_ID %+v", res.ReportDataChecks, res.MRConfigID)
	}

	raw := attestationBytes(t)
	out, err := ev.Attestation.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, raw) {
		t.Errorf("Marshal() does not reproduce the vector (%d vs %d bytes)", len(out), len(raw))
	}
}

// TestLiteAttestationAsV1 re-encodes the real attestation as msgpack
// version 1 and verifies it: the version 1 decoder feeds the same checks.
func TestLiteAttestationAsV1(t *testing.T) {
	t.Parallel()
	want := readExpected(t, "tdx-lite-getquote.expected.json")
	for _, arrays := range []bool{false, true} {
		a, err := dstack.ParseAttestation(attestationBytes(t))
		if err != nil {
			t.Fatal(err)
		}
		a.Version, a.Stack, a.ByteArrays = 1, dstack.StackDstack, arrays
		b, err := a.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ev, err := dstack.ParseEvidence(b)
		if err != nil {
			t.Fatalf("ParseEvidence(msgpack, arrays=%v): %v", arrays, err)
		}
		if ev.Attestation.Version != 1 || ev.Attestation.ByteArrays != arrays {
			t.Errorf("decoded version %d arrays %v", ev.Attestation.Version, ev.Attestation.ByteArrays)
		}
		res, err := dstack.VerifyEventLog(ev, dstack.Options{})
		if err != nil {
			t.Fatalf("VerifyEventLog: %v", err)
		}
		checkExpected(t, res, want, false)
	}
}

func attestationBytes(t testing.TB) []byte {
	t.Helper()
	var w struct{ Attestation string }
	if err := json.Unmarshal(testvectors.ReadFile(t, "dstack", "tdx-lite-attestation.json"), &w); err != nil {
		t.Fatal(err)
	}
	return unhex(t, w.Attestation)
}

// TestLiteGetQuoteDCAP verifies the lite vector against the shared 90c06f
// collateral. Its PCK certificate was issued after that collateral's
// window: Intel's semantics do not check notBefore, Strict does.
func TestLiteGetQuoteDCAP(t *testing.T) {
	t.Parallel()
	ev := parseVector(t, "tdx-lite-getquote.json")
	c := quoteReportCollateral(t)
	res, err := dstack.Verify(ev, c, dstack.Options{Now: quoteReportTime})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	checkExpected(t, res, readExpected(t, "tdx-lite-getquote.expected.json"), true)
	t.Logf("tcb_status %s, advisories %q", res.TCBStatus, res.AdvisoryIDs)
	_, err = dstack.Verify(ev, c, dstack.Options{Now: quoteReportTime, Strict: true})
	if !errors.Is(err, dstack.ErrQuote) || !errors.Is(err, dcap.ErrNotYetValid) {
		t.Fatalf("Verify(Strict) = %v, want ErrQuote wrapping dcap.ErrNotYetValid", err)
	}
}
