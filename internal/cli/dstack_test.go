package cli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/measure/measuretest"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pcstest"
)

// expectedDstack reads a shared *.expected.json file.
func expectedDstack(t *testing.T, name string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(testvectors.ReadFile(t, "dstack", name), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

type dstackJSON struct {
	MediaType      string         `json:"media_type"`
	Verdict        string         `json:"verdict"`
	Verified       bool           `json:"verified"`
	Accepted       bool           `json:"accepted"`
	IntelRoot      bool           `json:"intel_root"`
	TrustedRootSHA string         `json:"trusted_root_sha256"`
	Result         map[string]any `json:"result"`
	Error          *errorJSON     `json:"error"`
}

// dstack returns the dstack facts of the service's result.
func (d *dstackJSON) dstack() map[string]any {
	m, _ := d.Result["dstack"].(map[string]any)
	return m
}

func TestDstackVerifyVectors(t *testing.T) {
	coll := testvectors.Path(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json")
	for _, c := range []struct {
		file, expected string
		exit           int
		verdict        string
	}{
		// The service's default policy rejects an RTMR3 event after
		// system-ready (LIUM_MINER_HOTKEY), and so does the CLI.
		{"quote-report.json", "quote-report.expected.json", exitRejected, "REJECTED: events_after_system_ready (dstack.events_after_system_ready): expected none, got LIUM_MINER_HOTKEY"},
		// Nothing pins the lite TD's code: allowed, not affirming.
		{"tdx-lite-getquote.json", "tdx-lite-getquote.expected.json", exitOK, "WARNING: allowed, not affirming (EAR status warning, TCB UpToDate, policy default@1): unpinned"},
		{"tdx-lite-attestation.json", "tdx-lite-getquote.expected.json", exitOK, "WARNING: allowed, not affirming (EAR status warning, TCB UpToDate, policy default@1): unpinned"},
	} {
		t.Run(c.file, func(t *testing.T) {
			want := expectedDstack(t, c.expected)
			ev := testvectors.Path(t, "dstack", c.file)
			args := []string{"dstack", "verify", ev, "--collateral", coll, "--at", "1774003274", "--format", "json"}
			o := invoke(t, nil, args...)
			o.wantCode(t, c.exit, args...)
			var out dstackJSON
			decodeJSON(t, o, &out)
			if !out.Verified || out.Accepted != (c.exit == exitOK) || !out.IntelRoot || out.MediaType != dstackMediaType || !strings.HasPrefix(c.verdict, out.Verdict+": ") {
				t.Fatalf("verified=%v accepted=%v verdict=%s intel=%v media=%q", out.Verified, out.Accepted, out.Verdict, out.IntelRoot, out.MediaType)
			}
			app := out.dstack()["app_info"].(map[string]any)
			for _, k := range []string{"app_id", "compose_hash", "instance_id", "mr_system", "mr_aggregated", "mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"} {
				if app[k] != want[k] {
					t.Errorf("app_info.%s = %v, want %v", k, app[k], want[k])
				}
			}
			if out.dstack()["tcb_status"] != "UpToDate" {
				t.Errorf("tcb_status %v", out.dstack()["tcb_status"])
			}
			args = args[:len(args)-2]
			h := invoke(t, nil, args...)
			h.wantCode(t, c.exit, args...)
			if !strings.HasPrefix(h.stdout, c.verdict) || !strings.Contains(h.stdout, want["compose_hash"].(string)) {
				t.Errorf("human output:\n%s", h.stdout)
			}
		})
	}
}

func TestDstackVerifyRejects(t *testing.T) {
	coll := testvectors.Path(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json")
	raw := testvectors.ReadFile(t, "dstack", "quote-report.json")
	var gq map[string]any
	if err := json.Unmarshal(raw, &gq); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A changed runtime-event payload: RTMR3 no longer replays to the quote.
	var events []map[string]any
	if err := json.Unmarshal([]byte(gq["event_log"].(string)), &events); err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e["event"] == "compose-hash" {
			p := []byte(e["event_payload"].(string))
			p[0] ^= 1
			e["event_payload"] = string(p)
		}
	}
	el, _ := json.Marshal(events)
	tampered := map[string]any{}
	for k, v := range gq {
		tampered[k] = v
	}
	tampered["event_log"] = string(el)
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"changed payload", []string{"dstack", "verify", write("tampered.json", tampered), "--collateral", coll, "--at", "1774003274"}, exitNotAuthentic},
		{"report data differs", []string{"dstack", "verify", testvectors.Path(t, "dstack", "quote-report.json"), "--collateral", coll, "--at", "1774003274", "--report-data", "00ff"}, exitRejected},
		{"not dstack evidence", []string{"dstack", "verify", write("junk.json", map[string]any{"x": 1}), "--collateral", coll}, exitMalformed},
		{"offline without a bundle", []string{"dstack", "verify", testvectors.Path(t, "dstack", "quote-report.json"), "--offline", "--collateral-dir", filepath.Join(dir, "empty")}, exitCollateralUnavailable},
		{"collateral absent", []string{"dstack", "verify", testvectors.Path(t, "dstack", "quote-report.json"), "--collateral", filepath.Join(dir, "nope")}, exitCollateralUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := invoke(t, nil, c.args...)
			o.wantCode(t, c.code, c.args...)
		})
	}
}

func TestEventlogReplay(t *testing.T) {
	want := expectedDstack(t, "quote-report.expected.json")
	report := testvectors.Path(t, "dstack", "quote-report.json")
	q := testvectors.Path(t, "dcap", "tdx-v4-90c06f-dstack", "quote.bin")
	// Without collateral the quote is not verified: the registers match,
	// but the verdict is SKIPPED (exit 4), never OK.
	args := []string{"eventlog", "replay", report, "--quote", q, "--format", "json"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitNotAuthentic, args...)
	var out replayOutput
	decodeJSON(t, o, &out)
	if out.Matches == nil || !*out.Matches || out.Source != "getquote-json" || out.Verdict != verdictSkipped || out.Error == nil || out.Error.Code != codeNotAppraised {
		t.Fatalf("matches=%v source=%q verdict=%q error=%+v", out.Matches, out.Source, out.Verdict, out.Error)
	}
	o = invoke(t, nil, args[:len(args)-2]...)
	if !strings.HasPrefix(o.stdout, "SKIPPED: quote signature, collateral and policy not checked") {
		t.Errorf("human output starts %q", firstLine(o.stdout))
	}
	// With collateral: the service's verdict, which rejects the event
	// after system-ready.
	coll := testvectors.Path(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json")
	cargs := []string{"eventlog", "replay", report, "--quote", q, "--collateral", coll, "--at", "1774003274"}
	o = invoke(t, nil, cargs...)
	o.wantCode(t, exitRejected, cargs...)
	if firstLine(o.stdout) != "REJECTED: events_after_system_ready (dstack.events_after_system_ready): expected none, got LIUM_MINER_HOTKEY" {
		t.Errorf("human output starts %q", firstLine(o.stdout))
	}
	// Policy flags need --quote.
	invoke(t, nil, "eventlog", "replay", report, "--refvalues", coll).wantCode(t, exitUsage)
	for i, r := range out.RTMRs {
		if k := "rtmr" + string(rune('0'+i)); r.Replayed != want[k] {
			t.Errorf("RTMR%d replayed %s, want %s", i, r.Replayed, want[k])
		}
	}
	// Another machine's quote does not match.
	other := testvectors.Path(t, "dcap", "tdx-v4-b0c06f", "quote.bin")
	args = []string{"eventlog", "replay", report, "--quote", other}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitNotAuthentic, args...)
	if !strings.Contains(o.stdout, "MISMATCH") {
		t.Errorf("human output lacks MISMATCH:\n%s", o.stdout)
	}
	// The binary CCEL replays RTMR0/1 as the snapshot's digests fold.
	ccel := testvectors.Path(t, "dstack", "ccel.bin")
	args = []string{"eventlog", "replay", ccel, "--format", "json"}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	decodeJSON(t, o, &out)
	if out.Source != "ccel" || len(out.Events) == 0 || out.RTMRs[0].Replayed == strings.Repeat("0", 96) {
		t.Errorf("ccel replay: source %q, %d events, RTMR0 %s", out.Source, len(out.Events), out.RTMRs[0].Replayed)
	}
	// Garbage is malformed.
	junk := writeFile(t, t.TempDir(), "junk.bin", bytes.Repeat([]byte{0x42}, 100))
	args = []string{"eventlog", "replay", junk}
	invoke(t, nil, args...).wantCode(t, exitMalformed, args...)
}

// TestDstackVerifyFromPCCS verifies the shared dstack evidence with its
// collateral served by a fake PCCS (no --collateral).
func TestDstackVerifyFromPCCS(t *testing.T) {
	raw := testvectors.ReadFile(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json")
	c, err := collateral.ParseQVLJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	srv := pcstest.New()
	fmspc := c.TCBInfo.Info.FMSPC
	srv.Set(pcs.ItemKey{Kind: pcs.KindTCBInfo, TEE: pcs.TEETDX, FMSPC: fmspc}.Normalize(), pcstest.Response{
		Header: map[string]string{collateral.HeaderTCBInfoIssuerChain: pcstest.EncodeChain(c.TCBInfoIssuerChain.PEM)},
		Body:   c.TCBInfo.TCBInfoResponse()})
	srv.Set(pcs.ItemKey{Kind: pcs.KindQEIdentity, TEE: pcs.TEETDX}.Normalize(), pcstest.Response{
		Header: map[string]string{collateral.HeaderEnclaveIdentityChain: pcstest.EncodeChain(c.QEIdentityIssuerChain.PEM)},
		Body:   c.QEIdentity.Response()})
	srv.Set(pcs.ItemKey{Kind: pcs.KindPCKCRL, CA: pckcert.CAPlatform}.Normalize(), pcstest.Response{
		Header: map[string]string{collateral.HeaderPCKCRLIssuerChain: pcstest.EncodeChain(c.PCKCRLIssuerChain.PEM)},
		Body:   c.PCKCRL.DER})
	srv.Set(pcs.ItemKey{Kind: pcs.KindRootCACRL}.Normalize(), pcstest.Response{Body: c.RootCACRL.DER})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	args := []string{"dstack", "verify", testvectors.Path(t, "dstack", liteGetQuote), "--pccs-url", hs.URL, "--at", "1774003274"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	if !strings.HasPrefix(o.stdout, "WARNING: ") {
		t.Errorf("stdout:\n%s", o.stdout)
	}
	if srv.Requests("") == 0 {
		t.Error("the fake PCCS saw no request")
	}
}

// TestDstackVerifyLiteMeasurement: the lite fixture's os_image_hash is
// verified from vm_config.tdx_measurement; a changed vm_config (carried
// next to the quote, not signed by it) is not authentic.
func TestDstackVerifyLiteMeasurement(t *testing.T) {
	coll := testvectors.Path(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json")
	path := testvectors.Path(t, "dstack", liteGetQuote)
	args := []string{"dstack", "verify", path, "--collateral", coll, "--at", "1774003274"}
	o := invoke(t, nil, append(args, "--format", "json")...)
	o.wantCode(t, exitOK, args...)
	var out dstackJSON
	decodeJSON(t, o, &out)
	m, _ := out.dstack()["measurement"].(map[string]any)
	if out.dstack()["os_image_hash_verified"] != true || m == nil || m["mode"] != "lite" || m["acpi_source"] != "event_log" || m["match"] != true {
		t.Fatalf("result: verified %v, measurement %v", out.dstack()["os_image_hash_verified"], m)
	}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	if !strings.Contains(o.stdout, "verified; MRTD, RTMR0-2 recomputed (lite mode, ACPI digests taken from the event log, cpu_count verified by the table loader's MADT size) and match") {
		t.Errorf("human output:\n%s", o.stdout)
	}

	var top map[string]any
	if err := json.Unmarshal(testvectors.ReadFile(t, "dstack", liteGetQuote), &top); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(vm map[string]any)
		msg  string
	}{
		{"checksum file", func(vm map[string]any) { flipB64(t, vm, "checksum_file", 5) }, "OS image not bound to os_image_hash"},
		{"cbor", func(vm map[string]any) { flipB64(t, vm, "measurement", 40) }, "OS image not bound to os_image_hash"},
		{"memory_size", func(vm map[string]any) { vm["memory_size"] = 4 << 30 }, "RTMR0 mismatch (lite mode)"},
		{"qemu_version", func(vm map[string]any) { vm["qemu_version"] = "9.2.1" }, "MRTD mismatch (lite mode)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var vm map[string]any
			if err := json.Unmarshal([]byte(top["vm_config"].(string)), &vm); err != nil {
				t.Fatal(err)
			}
			tc.edit(vm)
			args := []string{"dstack", "verify", writeEvidence(t, top, vm), "--collateral", coll, "--at", "1774003274", "--format", "json"}
			o := invoke(t, nil, args...)
			o.wantCode(t, exitNotAuthentic, args...)
			var out dstackJSON
			decodeJSON(t, o, &out)
			if out.Verified || out.Error == nil || out.Error.Code != codeNotAuthentic || !strings.Contains(out.Error.Message, tc.msg) {
				t.Errorf("output %+v", out.Error)
			}
		})
	}
	// An image that is not the one the TD booted.
	args = append(args, "--image", writeTestImage(t))
	o = invoke(t, nil, args...)
	o.wantCode(t, exitNotAuthentic, args...)
	if !strings.Contains(o.stdout, "REJECTED: not authentic: dstack: MRTD mismatch (image mode)") {
		t.Errorf("stdout %q", o.stdout)
	}
}

// TestDstackVerifyImage: a dcaptest-signed quote of a TD that booted the
// synthetic test image verifies against the image directory, and
// os_image_hash binds once the directory has sha256sum.txt.
func TestDstackVerifyImage(t *testing.T) {
	dir := writeTestImage(t)
	img := &measure.Image{Firmware: measuretest.Firmware(), Kernel: measuretest.Kernel(), Initrd: []byte("initrd bytes"), Cmdline: testCmdline}
	acpi := &measure.ACPIDigests{Loader: [48]byte{1}, RSDP: [48]byte{2}, Tables: [48]byte{3}, Source: measure.SourceEventLog}
	exp, err := measure.MeasureImage(img, measure.Machine{MemorySize: 2 << 30, QEMUVersion: "8.2.2"}, measure.Options{ACPI: acpi})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, dcaptest.TDXQuoteV4)
	td := f.QuoteSpec.TD
	td.MRTD, td.RTMRs = exp.MRTD, [4][48]byte{exp.RTMRs[0].Value, exp.RTMRs[1].Value, exp.RTMRs[2].Value}
	fe := writeFixture(t, f)
	q, err := os.ReadFile(fe.quote)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{"ACPI table-loader": "acpi-loader", "ACPI RSDP": "acpi-rsdp", "ACPI tables": "acpi-tables"}
	var events []eventlog.Event
	for i, r := range exp.RTMRs {
		for _, e := range r.Events {
			ev := eventlog.Event{IMR: uint32(i), Type: e.Type, Digest: bytes.Clone(e.Digest[:]), Payload: []byte{}}
			if n, ok := names[e.Description]; ok {
				ev.Name, ev.Payload = n, []byte("ACPI DATA")
			}
			events = append(events, ev)
		}
	}
	// sha256sum.txt as measure lite writes it: os_image_hash of the image.
	o := invoke(t, nil, "measure", "lite", "--image", dir, "--format", "json")
	o.wantCode(t, exitOK)
	lite := decodeOut[measureLiteOutput](t, o)
	evidence := func(memory int) string {
		vm := map[string]any{"os_image_hash": lite.OSImageHash, "cpu_count": 2, "memory_size": memory, "qemu_version": "8.2.2"}
		return writeEvidence(t, map[string]any{"quote": hex.EncodeToString(q), "event_log": string(eventlog.MarshalEvents(events))}, vm)
	}
	args := []string{"dstack", "verify", evidence(2 << 30), "--collateral", fe.collateral, "--trusted-root", fe.rootPEM, "--at", fe.at, "--image", dir}
	o = invoke(t, nil, append(args, "--format", "json")...)
	o.wantCode(t, exitOK, args...)
	var out dstackJSON
	decodeJSON(t, o, &out)
	m, _ := out.dstack()["measurement"].(map[string]any)
	if out.dstack()["os_image_hash_verified"] != true || m == nil || m["mode"] != "image" || m["os_image_hash"] != lite.OSImageHash {
		t.Fatalf("result: verified %v, measurement %v", out.dstack()["os_image_hash_verified"], m)
	}
	// The image binds os_image_hash: the claim is bound, not unverified.
	if cl, _ := out.Result["claims"].(map[string]any); cl == nil || cl["dstack"].(map[string]any)["os_image_hash"] != lite.OSImageHash {
		t.Errorf("claims lack the bound dstack.os_image_hash: %v", out.Result["claims"])
	}
	o = invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	if !strings.Contains(o.stdout, lite.OSImageHash+" verified; MRTD, RTMR0-2 recomputed (image mode") {
		t.Errorf("human output:\n%s", o.stdout)
	}
	// The reference values tdproof measure computes for the image pin the
	// TD: with --image the appraisal is affirming; without it vm_config's
	// os_image_hash is not bound to the quote and cannot satisfy the
	// stored dstack.os_image_hash (as in the service).
	mo := invoke(t, nil, "measure", "--image", dir, "--memory", "2G", "--cpus", "2", "--qemu-version", "8.2.2", "--acpi-from-eventlog", args[2], "--format", "json")
	mo.wantCode(t, exitOK)
	refs := writeFile(t, t.TempDir(), "measure.json", []byte(mo.stdout))
	pinned := append(slices.Clone(args), "--refvalues", refs)
	o = invoke(t, nil, pinned...)
	o.wantCode(t, exitOK, pinned...)
	if first := firstLine(o.stdout); !strings.HasPrefix(first, "OK: affirming (TCB UpToDate, policy default@1)") {
		t.Errorf("pinned by tdproof measure: first line %q", first)
	}
	noImage := slices.DeleteFunc(slices.Clone(pinned), func(a string) bool { return a == "--image" || a == dir })
	o = invoke(t, nil, noImage...)
	o.wantCode(t, exitRejected, noImage...)
	if first := firstLine(o.stdout); !strings.HasPrefix(first, "REJECTED: reference_value (dstack.os_image_hash)") {
		t.Errorf("without --image: first line %q", first)
	}
	// vm_config claims another RAM size: RTMR0 (the TD HOB) differs.
	args[2] = evidence(4 << 30)
	o = invoke(t, nil, args...)
	o.wantCode(t, exitNotAuthentic, args...)
	if !strings.Contains(o.stdout, "RTMR0 mismatch (image mode)") || !strings.Contains(o.stdout, "likely cause: memory_size") {
		t.Errorf("stdout %q", o.stdout)
	}
	// An image file that does not match sha256sum.txt is malformed input.
	if err := os.WriteFile(filepath.Join(dir, "initramfs.cpio.gz"), []byte("other"), 0o644); err != nil {
		t.Fatal(err)
	}
	args[2] = evidence(2 << 30)
	o = invoke(t, nil, args...)
	o.wantCode(t, exitMalformed, args...)
}
