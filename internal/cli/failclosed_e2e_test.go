package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/agent"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/tdsim"
)

// postJSON posts body to the server and returns the status and response.
func (s *serving) postJSON(t *testing.T, path string, body any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Post(s.url+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// nativeVerdict is the part of a /v1/verify response these tests read.
type nativeVerdict struct {
	Result struct {
		Authentic bool           `json:"authentic"`
		Allow     bool           `json:"allow"`
		Status    string         `json:"ear_status"`
		Claims    map[string]any `json:"claims"`
		Appraisal struct {
			Failed []struct {
				Rule, Claim, Actual string
			} `json:"failed"`
		} `json:"appraisal"`
	} `json:"result"`
}

func (e *kbsE2E) verifyNative(t *testing.T, req map[string]any) nativeVerdict {
	t.Helper()
	code, body := e.srv.postJSON(t, "/v1/verify", req)
	if code != http.StatusOK {
		t.Fatalf("/v1/verify: %d %s", code, body)
	}
	var v nativeVerdict
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// wantMissing checks a contraindicated verdict whose failed rules include
// a reference value on claim, absent from the evidence.
func wantMissing(t *testing.T, what string, v nativeVerdict, claim string) {
	t.Helper()
	r := v.Result
	if r.Allow || r.Status != "contraindicated" {
		t.Fatalf("%s: allow %v status %s, want contraindicated", what, r.Allow, r.Status)
	}
	for _, f := range r.Appraisal.Failed {
		if f.Rule == "reference_value" && f.Claim == claim && strings.Contains(f.Actual, "claim missing") {
			return
		}
	}
	t.Fatalf("%s: failed %+v, want reference_value on %s (claim missing)", what, r.Appraisal.Failed, claim)
}

// getQuoteJSON is dstack GetQuote-style evidence of d: its quote, its
// event log (boot events, digests only, then runtime events) and vmConfig.
func getQuoteJSON(t *testing.T, d *td, vmConfig string) map[string]any {
	t.Helper()
	q, err := d.sim.Quote(t.Context(), [64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := d.log.Events()
	if err != nil {
		t.Fatal(err)
	}
	log := eventlog.MarshalEvents(eventlog.Strip(append(d.sim.BootEvents(), rt...)))
	return map[string]any{"quote": hex.EncodeToString(q), "event_log": string(log), "vm_config": vmConfig}
}

// TestFailClosedThroughServe: the attacks of issue 12 against tdproof serve
// (SQLite and PostgreSQL), over HTTP, with a store pinning one image and
// one app: a second app on the same image that omits its event log, and
// a forged vm_config os_image_hash, are refused on /v1/verify, the
// dstack-compatible /verify and through the key broker.
func TestFailClosedThroughServe(t *testing.T) {
	forEachE2EStore(t, func(t *testing.T, dsn string) {
		e := newKBSE2E(t, dsn)
		secret := []byte("fail-closed: the model key")
		e.admin(t, http.MethodPost, "/kbs/v0/resource/default/key/1", secret, http.StatusOK)
		good := e.newTD(t, e.boot, e2eAppCompose)
		if got, err := e.get(t, good, "default/key/1"); err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("pinned TD with its log: %q, %v\n%s", got, err, e.srv.stderr.String())
		}
		other := e.newTD(t, e.boot, strings.Replace(e2eAppCompose, "nginx", "app-b", 1))
		withoutLog := func(d *td) *agent.Client {
			return &agent.Client{Quoter: d.sim, CCEL: d.sim, HTTP: &http.Client{Timeout: 30 * time.Second}}
		}

		t.Run("second app omits its event log", func(t *testing.T) {
			got, err := withoutLog(other).GetResource(t.Context(), e.srv.url, "default/key/1")
			wantRefused(t, "kbs without the runtime log", got, err, protocol.ProblemPolicyDeny)
			// The pinned app's own quote without its log is refused too:
			// nothing proves which app RTMR3 measured.
			got, err = withoutLog(good).GetResource(t.Context(), e.srv.url, "default/key/1")
			wantRefused(t, "pinned app without the runtime log", got, err, protocol.ProblemPolicyDeny)

			q, err := other.sim.Quote(t.Context(), [64]byte{})
			if err != nil {
				t.Fatal(err)
			}
			wantMissing(t, "/v1/verify quote only", e.verifyNative(t, map[string]any{"quote": hex.EncodeToString(q)}), "dstack.compose_hash")
			ccel, err := other.sim.ReadCCEL()
			if err != nil {
				t.Fatal(err)
			}
			wantMissing(t, "/v1/verify quote and CCEL", e.verifyNative(t, map[string]any{
				"quote": hex.EncodeToString(q), "cc_eventlog": base64.StdEncoding.EncodeToString(ccel)}), "dstack.compose_hash")

			code, body := e.srv.postJSON(t, "/verify", map[string]any{"quote": hex.EncodeToString(q)})
			var dv struct {
				IsValid bool    `json:"is_valid"`
				Reason  *string `json:"reason"`
			}
			if err := json.Unmarshal(body, &dv); err != nil || dv.IsValid || dv.Reason == nil {
				t.Fatalf("/verify quote only: %d %s", code, body)
			}
			// With its log, the second app is refused for its compose hash.
			v := e.verifyNative(t, map[string]any{"dstack": getQuoteJSON(t, other, e.vmConfig)})
			if v.Result.Allow || v.Result.Status != "contraindicated" {
				t.Fatalf("/v1/verify second app with its log: %+v", v.Result)
			}
		})

		t.Run("forged vm_config os_image_hash", func(t *testing.T) {
			// Pin an OS image; the TD's vm_config claims it, but nothing
			// binds it to the quote (no lite measurement, no image).
			pinnedImage := strings.Repeat("aa", 32)
			payload, err := json.Marshal(map[string][]string{"dstack.os_image_hash": {pinnedImage}})
			if err != nil {
				t.Fatal(err)
			}
			e.admin(t, http.MethodPost, "/kbs/v0/reference-value", mustJSONBytes(t, map[string]string{
				"version": "0.1.0", "type": "sample", "payload": base64.StdEncoding.EncodeToString(payload),
			}), http.StatusOK)
			for _, img := range []string{pinnedImage, strings.Repeat("bb", 32)} {
				forged := `{"os_image_hash":"` + img + `","cpu_count":2,"memory_size":2147483648}`
				c := &agent.Client{Quoter: good.sim, CCEL: good.sim, Runtime: good.log, VMConfig: forged, HTTP: &http.Client{Timeout: 30 * time.Second}}
				got, err := c.GetResource(t.Context(), e.srv.url, "default/key/1")
				wantRefused(t, "forged vm_config "+img[:4], got, err, protocol.ProblemPolicyDeny)

				v := e.verifyNative(t, map[string]any{"dstack": getQuoteJSON(t, good, forged)})
				wantMissing(t, "/v1/verify forged vm_config "+img[:4], v, "dstack.os_image_hash")
				if v.Result.Claims["unverified"] == nil {
					t.Errorf("forged vm_config %s: no unverified claims in %v", img[:4], v.Result.Claims)
				}
			}
		})
	})
}

// TestServeEmptyStore: tdproof serve --role all on an empty store warns at
// start, gives an authentic simulated TD at most "warning", and releases
// nothing under the default resource policy.
func TestServeEmptyStore(t *testing.T) {
	forEachE2EStore(t, func(t *testing.T, dsn string) {
		d := (&kbsE2E{}).newTD(t, tdsim.Config{}, e2eAppCompose)
		pccsURL, root := simPCCS(t, d.sim)
		kek := filepath.Join(t.TempDir(), "kek")
		if err := os.WriteFile(kek, []byte(strings.Repeat("5a", 32)), 0o600); err != nil {
			t.Fatal(err)
		}
		e := &kbsE2E{adminToken: "empty-store-admin"}
		e.srv = startServe(t, "--role", "all", "--db", dsn, "--pccs-url", pccsURL, "--pcs-retries", "0",
			"--trusted-root", root, "--kek-file", kek, "--admin-token", e.adminToken)
		// The warning is logged before serve listens.
		if !strings.Contains(e.srv.stderr.String(), "no reference value pins tdx.mr_td, tdx.rtmr_0, tdx.rtmr_1, tdx.rtmr_2") {
			t.Fatalf("no start-up warning: %s", e.srv.stderr.String())
		}
		e.admin(t, http.MethodPost, "/kbs/v0/resource/default/key/1", []byte("not for unpinned TDs"), http.StatusOK)
		got, err := e.get(t, d, "default/key/1")
		wantRefused(t, "empty store", got, err, protocol.ProblemPolicyDeny)
		q, err := d.sim.Quote(t.Context(), [64]byte{})
		if err != nil {
			t.Fatal(err)
		}
		if v := e.verifyNative(t, map[string]any{"quote": hex.EncodeToString(q)}); !v.Result.Authentic || !v.Result.Allow || v.Result.Status != "warning" {
			t.Fatalf("/v1/verify with an empty store: %+v", v.Result)
		}
	})
}
