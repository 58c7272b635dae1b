package cli

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
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

// e2eAppCompose is the app of the end-to-end tests.
const e2eAppCompose = `{"manifest_version":2,"name":"e2e","runner":"docker-compose","docker_compose_file":"services: {app: {image: nginx}}"}`

// kbsE2E is one tdproof serve --role all over a database, with the
// reference values of a synthetic image measured by tdproof measure, and
// what a simulated TD of that image needs.
type kbsE2E struct {
	srv        *serving
	adminToken string
	// boot is the simulated TD configuration built from tdproof measure's
	// output; sims made from it share the PKI the server trusts.
	boot     tdsim.Config
	vmConfig string
}

// newKBSE2E measures a synthetic image with tdproof measure, ingests the
// output as reference values (tdproof refvalue add --from-measure) into
// the database at dsn, and starts tdproof serve --role all on it, trusting
// the simulator root (and nothing else: --trusted-root).
func newKBSE2E(t *testing.T, dsn string) *kbsE2E {
	t.Helper()
	dir := t.TempDir()

	// 1. Reference values: tdproof measure on the image, ingested as is.
	img := writeTestImage(t)
	acpi := t.TempDir()
	for name, b := range map[string][]byte{"tables": acpiTablesBlob(), "rsdp": []byte("RSD PTR blob"), "table-loader": []byte("loader")} {
		if err := os.WriteFile(filepath.Join(acpi, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := invoke(t, nil, "measure", "--image", img, "--memory", "2G", "--cpus", "2", "--acpi-dir", acpi, "--format", "json")
	o.wantCode(t, exitOK)
	measured := filepath.Join(dir, "measure.json")
	if err := os.WriteFile(measured, []byte(o.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	invoke(t, nil, "refvalue", "add", "--db", dsn, "--from-measure", measured).wantCode(t, exitOK)
	m := decodeOut[measureOutput](t, o)

	// 2. The simulated TD boots exactly what tdproof measure computed.
	var cfg tdsim.Config
	copy(cfg.MRTD[:], mustHexT(t, m.MRTD))
	for _, r := range m.RTMRs {
		if r.Incomplete != "" {
			t.Fatalf("RTMR%d incomplete: %s", r.Index, r.Incomplete)
		}
		for _, e := range r.Events {
			cfg.BootEvents = append(cfg.BootEvents, eventlog.Event{
				IMR: uint32(r.Index), Type: eventlog.EventType(e.Type), Digest: mustHexT(t, e.Digest), Payload: []byte(e.Description),
			})
		}
	}
	sim, err := tdsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.PKI = sim.PKI()
	for i, r := range m.RTMRs {
		if got := sim.RTMRs()[i]; hex.EncodeToString(got[:]) != r.Value {
			t.Fatalf("simulated RTMR%d %x, tdproof measure %s", i, got, r.Value)
		}
	}

	// 3. Collateral for the simulator's platform, and its root.
	pccsURL, root := simPCCS(t, sim)
	kek := filepath.Join(dir, "kek")
	appRoot := filepath.Join(dir, "app-key-root")
	for name, b := range map[string][]byte{kek: []byte(strings.Repeat("5a", 32)), appRoot: []byte(strings.Repeat("c3", 32))} {
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	e := &kbsE2E{adminToken: "e2e-admin-token", boot: cfg}
	// No per-address rate limit: every handshake of the subtests comes from
	// 127.0.0.1 (TestKBSMemoryBoundedUnderAttack tests the limit).
	e.srv = startServe(t, "--role", "all", "--db", dsn, "--pccs-url", pccsURL, "--pcs-retries", "0",
		"--trusted-root", root, "--kek-file", kek, "--admin-token", e.adminToken, "--app-key-root-file", appRoot,
		"--kbs-rate-limit", "0")
	vm, err := json.Marshal(map[string]any{"os_image_hash": m.OSImageHash, "cpu_count": 2, "memory_size": 2 << 30})
	if err != nil {
		t.Fatal(err)
	}
	e.vmConfig = string(vm)

	// 4. The app's compose hash as a reference value, through the KBS
	// admin route (an RVPS "sample" message).
	ch := sha256.Sum256([]byte(e2eAppCompose))
	payload, err := json.Marshal(map[string][]string{"dstack.compose_hash": {hex.EncodeToString(ch[:])}})
	if err != nil {
		t.Fatal(err)
	}
	e.admin(t, http.MethodPost, "/kbs/v0/reference-value", mustJSONBytes(t, map[string]string{
		"version": "0.1.0", "type": "sample", "payload": base64.StdEncoding.EncodeToString(payload),
	}), http.StatusOK)
	return e
}

func mustJSONBytes(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// admin sends an admin request and checks its status.
func (e *kbsE2E) admin(t *testing.T, method, path string, body []byte, want int) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, out)
	}
	return out
}

// td is a simulated TD running the agent's runtime event log.
type td struct {
	sim *tdsim.Sim
	log *agent.Log
}

// newTD boots a TD of cfg (debug when asked) and records the app's
// identity events (system-preparing … system-ready) through the agent.
func (e *kbsE2E) newTD(t *testing.T, cfg tdsim.Config, appCompose string) *td {
	t.Helper()
	sim, err := tdsim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := &agent.Log{Path: filepath.Join(t.TempDir(), "runtime_events.log"), Extender: sim}
	if _, err := agent.EmitBootEvents(l, agent.Boot{AppCompose: []byte(appCompose)}); err != nil {
		t.Fatal(err)
	}
	return &td{sim: sim, log: l}
}

// get runs the agent's KBS client for resource.
func (e *kbsE2E) get(t *testing.T, d *td, resource string) ([]byte, error) {
	t.Helper()
	c := &agent.Client{Quoter: d.sim, CCEL: d.sim, Runtime: d.log, VMConfig: e.vmConfig, HTTP: &http.Client{Timeout: 30 * time.Second}}
	return c.GetResource(t.Context(), e.srv.url, resource)
}

// wantRefused checks that err is the KBS's refusal of problem type typ.
func wantRefused(t *testing.T, what string, got []byte, err error, typ protocol.ProblemType) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: released %q", what, got)
	}
	if !errors.Is(err, agent.ErrKBS) || !strings.Contains(err.Error(), "("+string(typ)+")") && !strings.Contains(err.Error(), "/"+string(typ)+")") {
		t.Fatalf("%s: %v, want a %s refusal", what, err, typ)
	}
}

// forEachE2EStore runs f on SQLite and on PostgreSQL (skipped without
// TDPROOF_TEST_POSTGRES_DSN unless required).
func forEachE2EStore(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		f(t, filepath.Join(t.TempDir(), "tdproof.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		f(t, processPostgresSchemaDSN(t))
	})
}

// TestKBSEndToEnd: a simulated TD whose measurements come from tdproof
// measure on a synthetic image, with its app identity recorded by the
// agent, attests over HTTP to tdproof serve (reference values ingested
// from the same measure output) and receives the secret; every tampered
// variant is refused with the documented problem type, and nothing is
// released.
func TestKBSEndToEnd(t *testing.T) {
	forEachE2EStore(t, func(t *testing.T, dsn string) {
		e := newKBSE2E(t, dsn)
		secret := []byte("e2e: the model decryption key")
		e.admin(t, http.MethodPost, "/kbs/v0/resource/default/key/1", secret, http.StatusOK)
		e.admin(t, http.MethodPost, "/kbs/v0/resource/default/key/2", []byte("second"), http.StatusOK)

		good := e.newTD(t, e.boot, e2eAppCompose)
		got, err := e.get(t, good, "default/key/1")
		if err != nil {
			t.Fatalf("get resource: %v\n%s", err, e.srv.stderr.String())
		}
		if !bytes.Equal(got, secret) {
			t.Fatalf("released %q, want %q", got, secret)
		}

		t.Run("app keys", func(t *testing.T) {
			// Two instances of the app: the same app key, different
			// instance keys; both stable across handshakes.
			a, b := e.newTD(t, e.boot, e2eAppCompose), e.newTD(t, e.boot, e2eAppCompose)
			key := func(d *td, path string) []byte {
				t.Helper()
				k, err := e.get(t, d, path)
				if err != nil || len(k) != 32 {
					t.Fatalf("%s: %x, %v", path, k, err)
				}
				return k
			}
			appA, appB := key(a, "default/app-key/disk"), key(b, "default/app-key/disk")
			instA, instB := key(a, "default/instance-key/disk"), key(b, "default/instance-key/disk")
			if !bytes.Equal(appA, appB) || bytes.Equal(instA, instB) || bytes.Equal(appA, instA) {
				t.Errorf("app keys %x %x, instance keys %x %x", appA, appB, instA, instB)
			}
			if !bytes.Equal(key(a, "default/instance-key/disk"), instA) || bytes.Equal(key(a, "default/app-key/other"), appA) {
				t.Error("derived keys are not stable per path")
			}
		})
		t.Run("changed compose hash", func(t *testing.T) {
			d := e.newTD(t, e.boot, strings.Replace(e2eAppCompose, "nginx", "evil", 1))
			got, err := e.get(t, d, "default/key/1")
			wantRefused(t, "changed compose hash", got, err, protocol.ProblemPolicyDeny)
		})
		t.Run("event after system-ready", func(t *testing.T) {
			d := e.newTD(t, e.boot, e2eAppCompose)
			if _, err := d.log.Emit("injected", []byte("after system-ready")); err != nil {
				t.Fatal(err)
			}
			got, err := e.get(t, d, "default/key/1")
			wantRefused(t, "RTMR3 event after system-ready", got, err, protocol.ProblemPolicyDeny)
		})
		t.Run("RTMR3 extended without a log entry", func(t *testing.T) {
			d := e.newTD(t, e.boot, e2eAppCompose)
			if err := d.sim.ExtendRTMR(3, digest384("unlogged")); err != nil {
				t.Fatal(err)
			}
			got, err := e.get(t, d, "default/key/1")
			wantRefused(t, "unlogged RTMR3 extension", got, err, protocol.ProblemAttestationError)
		})
		t.Run("debug TD", func(t *testing.T) {
			cfg := e.boot
			cfg.Debug = true
			got, err := e.get(t, e.newTD(t, cfg, e2eAppCompose), "default/key/1")
			wantRefused(t, "debug TD", got, err, protocol.ProblemPolicyDeny)
		})
		t.Run("tampered kernel", func(t *testing.T) {
			cfg := e.boot
			cfg.BootEvents = append([]eventlog.Event(nil), cfg.BootEvents...)
			for i, ev := range cfg.BootEvents {
				if ev.IMR == 1 {
					d := digest384("another kernel")
					cfg.BootEvents[i].Digest = d[:]
					break
				}
			}
			got, err := e.get(t, e.newTD(t, cfg, e2eAppCompose), "default/key/1")
			wantRefused(t, "tampered kernel", got, err, protocol.ProblemPolicyDeny)
		})
		t.Run("simulator root not trusted", func(t *testing.T) {
			cfg := e.boot
			cfg.PKI = nil // a fresh simulator PKI the server was not given
			got, err := e.get(t, e.newTD(t, cfg, e2eAppCompose), "default/key/1")
			wantRefused(t, "untrusted simulator root", got, err, protocol.ProblemAttestationError)
		})
		t.Run("path not allowed by policy", func(t *testing.T) {
			pol := "package policy\n\ndefault allow := false\n\nallow if {\n\tdata[\"resource-path\"] == \"default/key/1\"\n\tevery _, s in input.submods { s[\"ear.status\"] == \"affirming\" }\n}\n"
			e.admin(t, http.MethodPost, "/kbs/v0/resource-policy", mustJSONBytes(t, map[string]string{
				"policy": base64.RawURLEncoding.EncodeToString([]byte(pol)),
			}), http.StatusOK)
			d := e.newTD(t, e.boot, e2eAppCompose)
			got, err := e.get(t, d, "default/key/2")
			wantRefused(t, "default/key/2", got, err, protocol.ProblemPolicyDeny)
			if got, err := e.get(t, d, "default/key/1"); err != nil || !bytes.Equal(got, secret) {
				t.Fatalf("default/key/1 under the new policy: %q, %v", got, err)
			}
		})
		t.Run("protocol", func(t *testing.T) { e.protocolRefusals(t) })
	})
}

func digest384(s string) [48]byte { return sha512.Sum384([]byte(s)) }

// rawSession is a handshake driven step by step.
type rawSession struct {
	e      *kbsE2E
	d      *td
	cookie *http.Cookie
	nonce  string
}

func (e *kbsE2E) send(t *testing.T, method, path string, body []byte, cookie *http.Cookie, bearer string) (int, []byte, *http.Response) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if cookie != nil {
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out, resp
}

func (e *kbsE2E) auth(t *testing.T, d *td) *rawSession {
	t.Helper()
	code, body, resp := e.send(t, http.MethodPost, protocol.PathAuth, mustJSONBytes(t, protocol.NewRequest(protocol.TeeTdx)), nil, "")
	if code != http.StatusOK {
		t.Fatalf("auth: %d %s", code, body)
	}
	ch, err := protocol.ParseChallenge(body)
	if err != nil {
		t.Fatal(err)
	}
	s := &rawSession{e: e, d: d, nonce: ch.Nonce}
	for _, c := range resp.Cookies() {
		if c.Name == protocol.SessionCookie {
			s.cookie = c
		}
	}
	if s.cookie == nil {
		t.Fatal("auth: no session cookie")
	}
	return s
}

// attestation is the RCAR attestation of the TD binding nonce and bound
// (the key whose hash goes into REPORTDATA) but announcing announced.
func (s *rawSession) attestation(t *testing.T, announced, bound protocol.JWK) []byte {
	t.Helper()
	rd, err := protocol.ReportData(s.nonce, bound, "")
	if err != nil {
		t.Fatal(err)
	}
	q, err := s.d.sim.Quote(t.Context(), rd)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.d.log.Events()
	if err != nil {
		t.Fatal(err)
	}
	ev := protocol.TDXEvidence{
		Quote:    base64.StdEncoding.EncodeToString(q),
		EventLog: string(eventlog.MarshalEvents(eventlog.Strip(append(s.d.sim.BootEvents(), evs...)))),
		VMConfig: s.e.vmConfig,
	}
	return mustJSONBytes(t, protocol.Attestation{
		RuntimeData: protocol.RuntimeData{Nonce: s.nonce, TeePubKey: announced},
		TeeEvidence: protocol.CompositeEvidence{PrimaryEvidence: mustJSONBytes(t, ev)},
	})
}

func (s *rawSession) attest(t *testing.T, body []byte) (int, []byte) {
	t.Helper()
	code, out, _ := s.e.send(t, http.MethodPost, protocol.PathAttest, body, s.cookie, "")
	return code, out
}

func (s *rawSession) resource(t *testing.T, path, bearer string) (int, []byte) {
	t.Helper()
	cookie := s.cookie
	if bearer != "" {
		cookie = nil
	}
	code, out, _ := s.e.send(t, http.MethodGet, protocol.PathResource+"/"+path, nil, cookie, bearer)
	return code, out
}

func wantProblemType(t *testing.T, what string, code int, body []byte, typ protocol.ProblemType) {
	t.Helper()
	var info protocol.ErrorInfo
	if err := json.Unmarshal(body, &info); err != nil || code == http.StatusOK || !strings.HasSuffix(info.Type, "/"+string(typ)) {
		t.Fatalf("%s: %d %s, want problem %s", what, code, body, typ)
	}
}

// protocolRefusals drives the handshake by hand: a replayed nonce, a
// REPORTDATA bound to another key, and a token of another verifier key.
func (e *kbsE2E) protocolRefusals(t *testing.T) {
	d := e.newTD(t, e.boot, e2eAppCompose)
	_, jwk, err := protocol.GenerateKey(0)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := protocol.GenerateKey(0)
	if err != nil {
		t.Fatal(err)
	}

	s := e.auth(t, d)
	att := s.attestation(t, jwk, jwk)
	code, body := s.attest(t, att)
	if code != http.StatusOK {
		t.Fatalf("attest: %d %s", code, body)
	}
	var tok protocol.TokenResponse
	if err := json.Unmarshal(body, &tok); err != nil || tok.Token == "" {
		t.Fatalf("token: %s", body)
	}
	code, body = s.attest(t, att)
	wantProblemType(t, "replayed nonce", code, body, protocol.ProblemAttestationError)
	// The first attestation's token still works (bearer), the replay
	// released nothing new.
	if code, body := s.resource(t, "default/key/1", tok.Token); code != http.StatusOK {
		t.Fatalf("bearer token: %d %s", code, body)
	}

	s = e.auth(t, d)
	code, body = s.attest(t, s.attestation(t, jwk, other))
	wantProblemType(t, "report data bound to another key", code, body, protocol.ProblemAttestationError)
	code, body = s.resource(t, "default/key/1", "")
	wantProblemType(t, "resource after refused attest", code, body, protocol.ProblemTokenNotFound)

	// Another server (its own database, so its own EAR key) does not
	// accept this server's token.
	other2 := newKBSE2E(t, filepath.Join(t.TempDir(), "other.db"))
	code, body, _ = other2.send(t, http.MethodGet, protocol.PathResource+"/default/key/1", nil, nil, tok.Token)
	wantProblemType(t, "token of another verifier key", code, body, protocol.ProblemTokenVerifierError)
}
