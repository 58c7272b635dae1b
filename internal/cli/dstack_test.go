package cli

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/internal/testvectors"
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
	Verified       bool           `json:"verified"`
	IntelRoot      bool           `json:"intel_root"`
	TrustedRootSHA string         `json:"trusted_root_sha256"`
	Result         map[string]any `json:"result"`
	Error          *errorJSON     `json:"error"`
}

func TestDstackVerifyVectors(t *testing.T) {
	coll := testvectors.Path(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json")
	for _, c := range []struct{ file, expected string }{
		{"quote-report.json", "quote-report.expected.json"},
		{"tdx-lite-getquote.json", "tdx-lite-getquote.expected.json"},
		{"tdx-lite-attestation.json", "tdx-lite-getquote.expected.json"},
	} {
		t.Run(c.file, func(t *testing.T) {
			want := expectedDstack(t, c.expected)
			ev := testvectors.Path(t, "dstack", c.file)
			args := []string{"dstack", "verify", ev, "--collateral", coll, "--at", "1774003274", "--format", "json"}
			o := invoke(t, nil, args...)
			o.wantCode(t, exitOK, args...)
			var out dstackJSON
			decodeJSON(t, o, &out)
			if !out.Verified || !out.IntelRoot || out.MediaType != dstackMediaType {
				t.Fatalf("verified=%v intel=%v media=%q", out.Verified, out.IntelRoot, out.MediaType)
			}
			app := out.Result["app_info"].(map[string]any)
			for _, k := range []string{"app_id", "compose_hash", "instance_id", "mr_system", "mr_aggregated", "mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"} {
				if app[k] != want[k] {
					t.Errorf("app_info.%s = %v, want %v", k, app[k], want[k])
				}
			}
			if out.Result["tcb_status"] != "UpToDate" {
				t.Errorf("tcb_status %v", out.Result["tcb_status"])
			}
			args = args[:len(args)-2]
			h := invoke(t, nil, args...)
			h.wantCode(t, exitOK, args...)
			if !strings.HasPrefix(h.stdout, "OK: ") || !strings.Contains(h.stdout, want["compose_hash"].(string)) {
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
		{"report data differs", []string{"dstack", "verify", testvectors.Path(t, "dstack", "quote-report.json"), "--collateral", coll, "--at", "1774003274", "--report-data", "00ff"}, exitNotAuthentic},
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
	args := []string{"eventlog", "replay", report, "--quote", q, "--format", "json"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	var out replayOutput
	decodeJSON(t, o, &out)
	if out.Matches == nil || !*out.Matches || out.Source != "getquote-json" {
		t.Fatalf("matches=%v source=%q", out.Matches, out.Source)
	}
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
	args := []string{"dstack", "verify", testvectors.Path(t, "dstack", "quote-report.json"), "--pccs-url", hs.URL, "--at", "1774003274"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	if !strings.HasPrefix(o.stdout, "OK: ") {
		t.Errorf("stdout:\n%s", o.stdout)
	}
	if srv.Requests("") == 0 {
		t.Error("the fake PCCS saw no request")
	}
}
