package cli

import (
	"bytes"
	"context"
	"crypto"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/tdsim"
)

// kbsProcAdminToken is the admin token of the key broker processes.
const kbsProcAdminToken = "kbs-process-test-admin-token"

// kbsProcEnv is what a tdproof serve process acting as key broker needs: a
// simulated TD, a fake PCS serving its collateral (in this process, so it
// outlives the serve processes) and the trusted-root and KEK files.
type kbsProcEnv struct {
	sim  *tdsim.Sim
	args []string // serve arguments but the database
}

func newKBSProcEnv(t *testing.T) *kbsProcEnv {
	t.Helper()
	sim, err := tdsim.New(tdsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pccsURL, root := simPCCS(t, sim)
	dir := t.TempDir()
	kekFile := filepath.Join(dir, "kek")
	if err := os.WriteFile(kekFile, []byte(hex.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &kbsProcEnv{sim: sim, args: []string{"--role", "all", "--kek-file", kekFile, "--admin-token", kbsProcAdminToken,
		"--pccs-url", pccsURL, "--trusted-root", root, "--pcs-retries", "0"}}
}

// start starts tdproof serve as key broker on the database dsn.
func (e *kbsProcEnv) start(t *testing.T, dsn string) *serveProcess {
	t.Helper()
	return startServeProcess(t, append(slices.Clone(e.args), "--db", dsn)...)
}

// kbsProcBackends are the databases the process tests run on: a SQLite
// file (path returned, for the integrity check) or a fresh PostgreSQL
// schema.
var kbsProcBackends = []struct {
	name string
	dsn  func(t *testing.T) (dsn, sqlitePath string)
}{
	{"sqlite", func(t *testing.T) (string, string) {
		p := filepath.Join(t.TempDir(), "tdproof.db")
		return p, p
	}},
	{"postgres", func(t *testing.T) (string, string) { return processPostgresSchemaDSN(t), "" }},
}

// request sends one request to the process and returns status and body;
// auth, if not empty, is the whole Authorization header value.
func (p *serveProcess) request(t *testing.T, method, path, auth string, body []byte, cookie *http.Cookie) (int, []byte, *http.Response) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, p.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if cookie != nil {
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v\nserver stderr:\n%s", method, path, err, p.stderr.String())
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out, resp
}

// admin sends an admin request that must answer 200 and returns the body.
func (p *serveProcess) admin(t *testing.T, method, path string, body []byte) []byte {
	t.Helper()
	code, out, _ := p.request(t, method, path, "Bearer "+kbsProcAdminToken, body, nil)
	if code != http.StatusOK {
		t.Fatalf("admin %s %s: %d %s\nserver stderr:\n%s", method, path, code, out, p.stderr.String())
	}
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// postSimRefValues stores sim's reference values (MRTD, RTMR0–2) through
// the admin API, plus extra ones, as one RVPS sample message.
func postSimRefValues(t *testing.T, p *serveProcess, sim *tdsim.Sim, extra map[string][]string) {
	t.Helper()
	sample := map[string][]string{}
	for _, v := range simRefValues(sim) {
		sample[v.Name] = v.Values
	}
	for k, v := range extra {
		sample[k] = v
	}
	msg := map[string]string{"version": "0.1.0", "type": "sample",
		"payload": base64.StdEncoding.EncodeToString(mustJSON(t, sample))}
	p.admin(t, http.MethodPost, protocol.PathReferenceValue, mustJSON(t, msg))
}

// kbsProcSession is an attested KBS session: its cookie, its EAR token
// and the TEE private key resources are encrypted to.
type kbsProcSession struct {
	cookie *http.Cookie
	token  string
	priv   crypto.PrivateKey
}

// handshake runs auth and attest for sim against the process.
func (p *serveProcess) handshake(t *testing.T, sim *tdsim.Sim) kbsProcSession {
	t.Helper()
	code, body, resp := p.request(t, http.MethodPost, protocol.PathAuth, "", mustJSON(t, protocol.NewRequest(protocol.TeeTdx)), nil)
	if code != http.StatusOK {
		t.Fatalf("auth: %d %s", code, body)
	}
	var s kbsProcSession
	for _, c := range resp.Cookies() {
		if c.Name == protocol.SessionCookie {
			s.cookie = c
		}
	}
	if s.cookie == nil {
		t.Fatal("auth: no session cookie")
	}
	ch, err := protocol.ParseChallenge(body)
	if err != nil {
		t.Fatal(err)
	}
	priv, jwk, err := protocol.GenerateKey(0)
	if err != nil {
		t.Fatal(err)
	}
	s.priv = priv
	rd, err := protocol.ReportData(ch.Nonce, jwk, "")
	if err != nil {
		t.Fatal(err)
	}
	q, err := sim.Quote(t.Context(), rd)
	if err != nil {
		t.Fatal(err)
	}
	ccel, err := sim.ReadCCEL()
	if err != nil {
		t.Fatal(err)
	}
	cc := base64.StdEncoding.EncodeToString(ccel)
	primary := mustJSON(t, protocol.TDXEvidence{CCEventLog: &cc, Quote: base64.StdEncoding.EncodeToString(q)})
	att := mustJSON(t, protocol.Attestation{
		RuntimeData: protocol.RuntimeData{Nonce: ch.Nonce, TeePubKey: jwk},
		TeeEvidence: protocol.CompositeEvidence{PrimaryEvidence: primary},
	})
	code, body, _ = p.request(t, http.MethodPost, protocol.PathAttest, "", att, s.cookie)
	if code != http.StatusOK {
		t.Fatalf("attest: %d %s\nserver stderr:\n%s", code, body, p.stderr.String())
	}
	var tr protocol.TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.Token == "" {
		t.Fatalf("attest: %v: %s", err, body)
	}
	s.token = tr.Token
	return s
}

// kbsProcResult is the answer to a resource request: the plaintext of a
// 200, else the problem type.
type kbsProcResult struct {
	status  int
	plain   []byte
	problem protocol.ProblemType
	body    []byte
}

// getResource fetches resource path ("repo/type/tag") with the session's
// cookie or, with bearer, its token as Authorization: Bearer. A 200 that
// does not decrypt with the session's key fails the test.
func (p *serveProcess) getResource(t *testing.T, s kbsProcSession, path string, bearer bool) kbsProcResult {
	t.Helper()
	var (
		auth   string
		cookie *http.Cookie
	)
	if bearer {
		auth = "Bearer " + s.token
	} else {
		cookie = s.cookie
	}
	code, body, _ := p.request(t, http.MethodGet, protocol.PathResource+"/"+path, auth, nil, cookie)
	r := kbsProcResult{status: code, body: body}
	if code == http.StatusOK {
		plain, err := protocol.DecryptResource(body, s.priv)
		if err != nil {
			t.Fatalf("resource %s: 200 that does not decrypt: %v", path, err)
		}
		r.plain = plain
		return r
	}
	var info protocol.ErrorInfo
	if err := json.Unmarshal(body, &info); err == nil {
		r.problem, _ = info.Problem()
	}
	return r
}

// wantResource checks that resource path is released with value want.
func (p *serveProcess) wantResource(t *testing.T, s kbsProcSession, path string, bearer bool, want []byte) {
	t.Helper()
	r := p.getResource(t, s, path, bearer)
	if r.status != http.StatusOK {
		t.Fatalf("resource %s (bearer %v): %d %s\nserver stderr:\n%s", path, bearer, r.status, r.body, p.stderr.String())
	}
	if !bytes.Equal(r.plain, want) {
		t.Fatalf("resource %s (bearer %v): %q, want %q", path, bearer, trunc(r.plain), trunc(want))
	}
}

// wantProblem checks that resource path is refused with problem type want.
func (p *serveProcess) wantProblem(t *testing.T, s kbsProcSession, path string, want protocol.ProblemType) {
	t.Helper()
	if r := p.getResource(t, s, path, false); r.status == http.StatusOK || r.problem != want {
		t.Fatalf("resource %s: %d %s (%q), want problem %s", path, r.status, r.body, r.plain, want)
	}
}

func trunc(b []byte) []byte {
	if len(b) > 64 {
		return append(b[:64:64], "…"...)
	}
	return b
}

// term stops the process gracefully (SIGTERM) and returns its exit code.
func (p *serveProcess) term(t *testing.T) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %d: %v", p.cmd.Process.Pid, err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &ee):
			return ee.ExitCode()
		default:
			t.Fatalf("wait %d: %v", p.cmd.Process.Pid, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("process %d did not stop within 30s of SIGTERM:\n%s", p.cmd.Process.Pid, p.stderr.String())
	}
	return -1
}

// jwksKids returns the key ids of the process's JWK Set and its bytes.
func (p *serveProcess) jwksKids(t *testing.T) ([]string, *ear.KeySet) {
	t.Helper()
	code, body, _ := p.request(t, http.MethodGet, "/.well-known/jwks.json", "", nil, nil)
	if code != http.StatusOK {
		t.Fatalf("jwks: %d %s", code, body)
	}
	set, err := ear.ParseJWKS(body)
	if err != nil {
		t.Fatalf("jwks: %v: %s", err, body)
	}
	var kids []string
	for _, k := range set.Keys() {
		kids = append(kids, k.ID())
	}
	slices.Sort(kids)
	if len(kids) == 0 {
		t.Fatal("jwks: no keys")
	}
	return kids, set
}

// sqliteIntegrity runs PRAGMA integrity_check on the SQLite file at path,
// opened read-only, and fails the test unless it says ok.
func sqliteIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), "PRAGMA integrity_check")
	if err != nil {
		t.Fatalf("integrity_check: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0] != "ok" {
		t.Fatalf("SQLite integrity_check of %s: %q", path, out)
	}
}

// restartTestRegoPolicy is the resource policy of the restart test: the
// default one, but resource default/secret/denied is never released.
const restartTestRegoPolicy = `package policy

default allow := false

allow if {
	data["resource-path"] != "default/secret/denied"
	count(input.submods) > 0
	every _, s in input.submods {
		s["ear.status"] == "affirming"
	}
}
`

// restartTestAttestationPolicy requires the reference value that only
// the admin API stores: without it no evidence is affirming.
const restartTestAttestationPolicy = `reference_values:
  - name: kbs.restart.mr_td
    claim: tdx.quote.body.mr_td
`

// TestServeKBSRestartKeepsState: a tdproof serve key broker process
// stopped with SIGTERM and restarted on the same database (SQLite file or
// PostgreSQL schema) still has everything set through the KBS admin API
// and its keys: the resources (an overwritten one with its last value, a
// deleted one still gone), the resource policy (same text and digest; it
// still denies the resource it names), the attestation policy (tokens say
// default@1 and are affirming only thanks to its reference value) and the
// reference values, the EAR signing key (same key ids in the JWKS) and the
// sessions: a token and a session cookie from before the restart still
// release resources afterwards.
func TestServeKBSRestartKeepsState(t *testing.T) {
	t.Parallel()
	for _, be := range kbsProcBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			dsn, sqlitePath := be.dsn(t)
			env := newKBSProcEnv(t)
			testKBSRestart(t, env, dsn)
			if sqlitePath != "" {
				sqliteIntegrity(t, sqlitePath)
			}
		})
	}
}

func testKBSRestart(t *testing.T, env *kbsProcEnv, dsn string) {
	p := env.start(t, dsn)
	sim := env.sim
	mrtd := hexOf(sim.MRTD())

	// The attestation policy needs a reference value not stored yet: the
	// evidence is not affirming and the default resource policy denies.
	p.admin(t, http.MethodPost, protocol.PathAttestationPolicy, mustJSON(t, map[string]string{"type": "yaml", "policy_id": "default",
		"policy": base64.RawURLEncoding.EncodeToString([]byte(restartTestAttestationPolicy))}))
	secrets := map[string][]byte{
		"default/secret/a":      []byte("alpha, first version"),
		"default/secret/b":      make([]byte, 4096),
		"default/secret/denied": []byte("never released"),
		"default/secret/gone":   []byte("deleted before the restart"),
	}
	for i := range secrets["default/secret/b"] {
		secrets["default/secret/b"][i] = byte(i * 7)
	}
	for _, path := range slices.Sorted(maps.Keys(secrets)) {
		p.admin(t, http.MethodPost, protocol.PathResource+"/"+path, secrets[path])
	}
	s0 := p.handshake(t, sim)
	p.wantProblem(t, s0, "default/secret/a", protocol.ProblemPolicyDeny)

	postSimRefValues(t, p, sim, map[string][]string{"kbs.restart.mr_td": {mrtd}})
	// Overwrite a, delete gone, and set the resource policy.
	secrets["default/secret/a"] = []byte("alpha, second version")
	p.admin(t, http.MethodPost, protocol.PathResource+"/default/secret/a", secrets["default/secret/a"])
	p.admin(t, http.MethodDelete, protocol.PathResource+"/default/secret/gone", nil)
	rp := p.admin(t, http.MethodPost, protocol.PathResourcePolicy, mustJSON(t, map[string]string{
		"policy": base64.RawURLEncoding.EncodeToString([]byte(restartTestRegoPolicy))}))
	var setPolicy struct {
		Policy string `json:"policy"`
		SHA256 string `json:"sha256"`
	}
	if err := json.Unmarshal(rp, &setPolicy); err != nil || setPolicy.SHA256 == "" {
		t.Fatalf("set resource policy: %v: %s", err, rp)
	}

	s1 := p.handshake(t, sim)
	check := func(p *serveProcess, s kbsProcSession, bearer bool) {
		t.Helper()
		p.wantResource(t, s, "default/secret/a", bearer, secrets["default/secret/a"])
		p.wantResource(t, s, "default/secret/b", bearer, secrets["default/secret/b"])
		p.wantProblem(t, s, "default/secret/denied", protocol.ProblemPolicyDeny)
		p.wantProblem(t, s, "default/secret/gone", protocol.ProblemPluginNotFound)
	}
	check(p, s1, false)
	kids, _ := p.jwksKids(t)
	policyBefore := p.admin(t, http.MethodGet, protocol.PathResourcePolicy, nil)
	refBefore := p.admin(t, http.MethodGet, protocol.PathReferenceValue+"/kbs.restart.mr_td", nil)

	if code := p.term(t); code != exitOK {
		t.Fatalf("serve exited %d after SIGTERM:\n%s", code, p.stderr.String())
	}
	p = env.start(t, dsn)

	// The EAR key: same key ids, and the pre-restart token verifies.
	kids2, set2 := p.jwksKids(t)
	if !slices.Equal(kids, kids2) {
		t.Errorf("EAR key ids %v before the restart, %v after", kids, kids2)
	}
	if _, err := ear.Verify(s1.token, set2, ear.VerifyOptions{}); err != nil {
		t.Errorf("pre-restart token with the restarted JWKS: %v", err)
	}
	// The resource policy and the reference value, as stored.
	if got := p.admin(t, http.MethodGet, protocol.PathResourcePolicy, nil); !bytes.Equal(got, policyBefore) {
		t.Errorf("resource policy before the restart %s, after %s", policyBefore, got)
	}
	var gotPolicy struct {
		Policy string `json:"policy"`
		SHA256 string `json:"sha256"`
	}
	if err := json.Unmarshal(policyBefore, &gotPolicy); err != nil || gotPolicy != setPolicy {
		t.Errorf("resource policy read %+v (%v), set %+v", gotPolicy, err, setPolicy)
	}
	if got := p.admin(t, http.MethodGet, protocol.PathReferenceValue+"/kbs.restart.mr_td", nil); !bytes.Equal(got, refBefore) {
		t.Errorf("reference value before the restart %s, after %s", refBefore, got)
	}
	var rv struct {
		Values []string `json:"values"`
	}
	if err := json.Unmarshal(refBefore, &rv); err != nil || !slices.Equal(rv.Values, []string{mrtd}) {
		t.Errorf("reference value kbs.restart.mr_td: %s (%v), want [%s]", refBefore, err, mrtd)
	}

	// The pre-restart session: its token as Bearer and its cookie.
	check(p, s1, true)
	check(p, s1, false)
	// A new session: affirming under the stored attestation policy.
	s2 := p.handshake(t, sim)
	claims, err := ear.Verify(s2.token, set2, ear.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(claims.Submods) == 0 {
		t.Fatalf("token without submodules: %+v", claims)
	}
	for name, a := range claims.Submods {
		if a.Status != ear.StatusAffirming || a.PolicyID != ear.PolicyID("default", "1") {
			t.Errorf("submodule %s after the restart: status %v, policy %q; want affirming under default@1", name, a.Status, a.PolicyID)
		}
	}
	check(p, s2, false)
	check(p, s2, true)
	if code := p.term(t); code != exitOK {
		t.Fatalf("restarted serve exited %d after SIGTERM:\n%s", code, p.stderr.String())
	}
}

// burstWrite is one resource write of the kill test, with the ticks of a
// logical clock shared by all writers at which it was sent and, if it was
// answered 200, acknowledged (0: never acknowledged).
type burstWrite struct {
	path      string
	sent, ack int64
}

// burstValue is the self-describing value writer w writes at its seq-th
// write to path: "path|w|seq|" and a padding of varying length, so that
// records span from one to several database pages.
func burstValue(path string, w, seq int) []byte {
	head := fmt.Sprintf("%s|%d|%d|", path, w, seq)
	return []byte(head + strings.Repeat(string(rune('a'+(w+seq)%26)), (w*131+seq*977)%6000))
}

// parseBurstValue returns the path, writer and sequence number a burst
// value names.
func parseBurstValue(v []byte) (path string, w, seq int, ok bool) {
	parts := strings.SplitN(string(v), "|", 4)
	if len(parts) != 4 {
		return "", 0, 0, false
	}
	w, err1 := strconv.Atoi(parts[1])
	seq, err2 := strconv.Atoi(parts[2])
	return parts[0], w, seq, err1 == nil && err2 == nil
}

// TestServeKBSKillDuringResourceWrites: a tdproof serve key broker process
// killed with SIGKILL in the middle of a burst of concurrent admin
// resource writes leaves a consistent store. 8 writers, each sequential,
// write self-describing values ("path|writer|seq|padding") to 12 paths;
// once at least 400 writes were acknowledged (200 OK), the process is
// killed. After the kill the SQLite file passes PRAGMA integrity_check,
// the server restarts on the same database (migrations included), and
// for every path the value released through a KBS handshake
//
//   - decrypts (a torn or misplaced record would not open: PluginInternalError),
//   - is byte for byte a value some writer sent to that path,
//   - is not stale: if the value's write y was acknowledged, no
//     acknowledged write x to the same path was sent after y's
//     acknowledgement arrived (x committed after y, so it would have
//     overwritten y). Sends and acknowledgements are ordered by a logical
//     clock the writers share, not by timing. A value whose write was
//     never acknowledged (in flight at the kill) may have committed at
//     any time, so it is accepted. In particular each writer's last
//     acknowledged write to a path is never lost to one of its earlier
//     writes, nor to any write acknowledged before it was sent,
//   - exists whenever some write to the path was acknowledged.
//
// The restarted server then accepts a write and releases it.
func TestServeKBSKillDuringResourceWrites(t *testing.T) {
	t.Parallel()
	for _, be := range kbsProcBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			dsn, sqlitePath := be.dsn(t)
			env := newKBSProcEnv(t)
			testKBSKill(t, env, dsn, sqlitePath)
		})
	}
}

func testKBSKill(t *testing.T, env *kbsProcEnv, dsn, sqlitePath string) {
	const (
		writers   = 8
		paths     = 12
		maxWrites = 5000 // per writer: far more than are written before the kill
		killAfter = 400  // acknowledgements
	)
	p := env.start(t, dsn)
	postSimRefValues(t, p, env.sim, nil)
	pathName := func(i int) string { return fmt.Sprintf("burst/res/p%02d", i) }

	var (
		clock    atomic.Int64 // logical clock: sends and acknowledgements
		acks     atomic.Int64
		killing  atomic.Bool
		enough   = make(chan struct{})
		once     sync.Once
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
	)
	writes := make([][]burstWrite, writers) // writes[w][seq-1]
	for w := range writers {
		wg.Go(func() {
			hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer hc.CloseIdleConnections()
			for seq := 1; seq <= maxWrites; seq++ {
				path := pathName((w*5 + seq) % paths)
				req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, p.url+protocol.PathResource+"/"+path, bytes.NewReader(burstValue(path, w, seq)))
				if err != nil {
					panic(err)
				}
				req.Header.Set("Authorization", "Bearer "+kbsProcAdminToken)
				rec := burstWrite{path: path, sent: clock.Add(1)}
				writes[w] = append(writes[w], rec)
				resp, err := hc.Do(req)
				if err != nil {
					if !killing.Load() {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("writer %d seq %d: %v before the kill", w, seq, err))
						mu.Unlock()
					}
					return // the process is gone
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("writer %d seq %d: %d %s", w, seq, resp.StatusCode, body))
					mu.Unlock()
					return
				}
				writes[w][seq-1].ack = clock.Add(1)
				if acks.Add(1) >= killAfter {
					once.Do(func() { close(enough) })
				}
			}
		})
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		t.Errorf("only %d writes acknowledged within 60s", acks.Load())
	}
	killing.Store(true)
	p.kill(t) // SIGKILL
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	if t.Failed() {
		t.FailNow()
	}
	var sent int
	for w := range writers {
		sent += len(writes[w])
	}
	t.Logf("killed after %d writes sent, %d acknowledged", sent, acks.Load())
	if sent >= writers*maxWrites {
		t.Fatalf("all %d writes finished before the kill: not a kill during the burst", sent)
	}

	if sqlitePath != "" {
		sqliteIntegrity(t, sqlitePath)
	}
	p = env.start(t, dsn)
	s := p.handshake(t, env.sim)
	var inFlight, ackedValues int
	for i := range paths {
		path := pathName(i)
		r := p.getResource(t, s, path, false)
		var acked []burstWrite // acknowledged writes to path
		for w := range writers {
			for _, rec := range writes[w] {
				if rec.path == path && rec.ack != 0 {
					acked = append(acked, rec)
				}
			}
		}
		switch {
		case r.status == http.StatusNotFound && r.problem == protocol.ProblemPluginNotFound:
			if len(acked) > 0 {
				t.Errorf("%s: not found after %d acknowledged writes", path, len(acked))
			}
			continue
		case r.status != http.StatusOK:
			t.Errorf("%s: %d %s (a torn record does not decrypt: PluginInternalError)", path, r.status, r.body)
			continue
		}
		gotPath, w, seq, ok := parseBurstValue(r.plain)
		if !ok || gotPath != path || w < 0 || w >= writers || seq < 1 || seq > len(writes[w]) || writes[w][seq-1].path != path {
			t.Errorf("%s: value %q was never sent to this path", path, trunc(r.plain))
			continue
		}
		if want := burstValue(path, w, seq); !bytes.Equal(r.plain, want) {
			t.Errorf("%s: value of writer %d seq %d is %d bytes %q, sent %d bytes", path, w, seq, len(r.plain), trunc(r.plain), len(want))
			continue
		}
		y := writes[w][seq-1]
		if y.ack == 0 {
			inFlight++
			continue // in flight at the kill: it may have committed
		}
		ackedValues++
		for _, x := range acked {
			if x.sent > y.ack {
				t.Errorf("%s: stale value of writer %d seq %d (acknowledged at tick %d): an acknowledged write sent at tick %d is lost", path, w, seq, y.ack, x.sent)
				break
			}
		}
	}

	t.Logf("after the restart: %d paths hold an acknowledged value, %d one in flight at the kill", ackedValues, inFlight)

	// The restarted server writes and releases.
	final := []byte("after the restart")
	p.admin(t, http.MethodPost, protocol.PathResource+"/"+pathName(0), final)
	p.wantResource(t, s, pathName(0), false, final)
	if code := p.term(t); code != exitOK {
		t.Fatalf("restarted serve exited %d after SIGTERM:\n%s", code, p.stderr.String())
	}
	if sqlitePath != "" {
		sqliteIntegrity(t, sqlitePath)
	}
}
