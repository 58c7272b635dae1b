package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/tdsim"
)

func newSim(t *testing.T) *tdsim.Sim {
	t.Helper()
	sim, err := tdsim.New(tdsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return sim
}

const compose = `{"manifest_version":2,"name":"demo","runner":"docker-compose","docker_compose_file":"services: {}"}`

func bootedLog(t *testing.T, sim *tdsim.Sim) *Log {
	t.Helper()
	l := &Log{Path: filepath.Join(t.TempDir(), "runtime_events.log"), Extender: sim}
	if _, err := EmitBootEvents(l, Boot{AppCompose: []byte(compose), KeyProvider: KeyProviderInfo{Name: "kms", ID: "abcd"}}); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLogConcurrentEmit(t *testing.T) {
	sim := newSim(t)
	path := filepath.Join(t.TempDir(), "runtime_events.log")
	var wg sync.WaitGroup
	for g := range 8 {
		// A Log per goroutine, as separate agents would have.
		l := &Log{Path: path, Extender: sim, Version: uint32(g % 3)}
		wg.Go(func() {
			for i := range 10 {
				if _, err := l.Emit(fmt.Sprintf("ev-%d-%d", g, i), []byte{byte(g), byte(i)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	l := &Log{Path: path, Extender: sim}
	evs, err := l.Check()
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 80 {
		t.Fatalf("%d events, want 80", len(evs))
	}
	// An extension that is not logged breaks the replay.
	if err := sim.ExtendRTMR(3, [48]byte{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Check(); !errors.Is(err, ErrLog) {
		t.Fatalf("Check after an unlogged extension = %v, want ErrLog", err)
	}
}

func TestBootEvents(t *testing.T) {
	sim := newSim(t)
	l := &Log{Path: filepath.Join(t.TempDir(), "log"), Extender: sim}
	if err := EmitApp(l, "app-event", []byte("x")); !errors.Is(err, ErrSequence) {
		t.Fatalf("EmitApp before boot = %v, want ErrSequence", err)
	}
	id, err := EmitBootEvents(l, Boot{AppCompose: []byte(compose), InstanceIDSeed: make([]byte, 20)})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"system-preparing", "app-id", "compose-hash", "instance-id", "boot-mr-done", "key-provider", "system-ready"}
	if !slices.Equal(id.Events, want) {
		t.Fatalf("events %v, want %v", id.Events, want)
	}
	ch := dstack.ComposeHash([]byte(compose))
	if !bytes.Equal(id.ComposeHash, ch[:]) || !bytes.Equal(id.AppID, ch[:20]) || len(id.InstanceID) != 20 {
		t.Fatalf("identity %+v", id)
	}
	if string(id.KeyProviderInfo) != `{"name":"none","id":""}` {
		t.Fatalf("key provider %s", id.KeyProviderInfo)
	}
	if _, err := EmitBootEvents(l, Boot{AppCompose: []byte(compose)}); !errors.Is(err, ErrSequence) {
		t.Fatalf("second boot = %v, want ErrSequence", err)
	}
	if err := EmitApp(l, dstack.EventComposeHash, []byte("x")); !errors.Is(err, ErrSequence) {
		t.Fatalf("EmitApp of a system name = %v, want ErrSequence", err)
	}
	if err := EmitApp(l, "app-event", []byte("x")); err != nil {
		t.Fatal(err)
	}
	evs, err := l.Check()
	if err != nil {
		t.Fatal(err)
	}
	if id := dstack.ReadIdentity(evs); !slices.Equal(id.Ignored, []string{"app-event"}) {
		t.Fatalf("ignored %v", id.Ignored)
	}
}

func startServer(t *testing.T, s *Server) *http.Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "dstack.sock")
	ln, err := ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

func call(t *testing.T, c *http.Client, method string, req, resp any) int {
	t.Helper()
	body, _ := json.Marshal(req)
	r, err := c.Post("http://dstack/"+method, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if err := json.NewDecoder(r.Body).Decode(resp); err != nil {
		t.Fatal(err)
	}
	return r.StatusCode
}

func TestServer(t *testing.T) {
	sim := newSim(t)
	l := bootedLog(t, sim)
	appKey := bytes.Repeat([]byte{7}, 32)
	c := startServer(t, &Server{Log: l, Quoter: sim, CCEL: sim, AppCompose: []byte(compose), AppKey: appKey})

	// GetQuote: dstack GetQuote JSON whose log replays to the quote.
	var gq GetQuoteResponse
	if st := call(t, c, "GetQuote", ReportDataRequest{ReportData: "00ff"}, &gq); st != 200 {
		t.Fatalf("GetQuote status %d", st)
	}
	raw, _ := json.Marshal(gq)
	ev, err := dstack.ParseEvidence(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := [64]byte{0, 0xff}
	if _, err := dstack.VerifyEventLog(ev, dstack.Options{ReportData: &want}); err != nil {
		t.Fatalf("GetQuote evidence: %v", err)
	}
	var e map[string]string
	if st := call(t, c, "GetQuote", ReportDataRequest{ReportData: strings.Repeat("00", 65)}, &e); st != 400 || e["error"] == "" {
		t.Fatalf("oversized report_data: %d %v", st, e)
	}

	// Attest: a VersionedAttestation.
	var at AttestResponse
	if st := call(t, c, "Attest", ReportDataRequest{ReportData: "01"}, &at); st != 200 {
		t.Fatalf("Attest status %d", st)
	}
	raw, _ = json.Marshal(at)
	if ev, err = dstack.ParseEvidence(raw); err != nil {
		t.Fatal(err)
	}
	if _, err := dstack.VerifyEventLog(ev, dstack.Options{}); err != nil {
		t.Fatalf("Attest evidence: %v", err)
	}

	// Info.
	var info InfoResponse
	if st := call(t, c, "Info", struct{}{}, &info); st != 200 {
		t.Fatalf("Info status %d", st)
	}
	ch := dstack.ComposeHash([]byte(compose))
	if info.ComposeHash != hex.EncodeToString(ch[:]) || info.AppID != hex.EncodeToString(ch[:20]) ||
		info.AppName != "demo" || info.KeyProviderInfo != `{"name":"kms","id":"abcd"}` || len(info.InstanceID) != 40 {
		t.Fatalf("Info %+v", info)
	}
	var tcb map[string]any
	if err := json.Unmarshal([]byte(info.TCBInfo), &tcb); err != nil || tcb["rtmr3"] != rtmr3hex(sim) {
		t.Fatalf("tcb_info %v %v", tcb["rtmr3"], err)
	}

	// GetKey: deterministic per path, distinct across paths.
	var k1, k2, k3 GetKeyResponse
	call(t, c, "GetKey", GetKeyRequest{Path: "a"}, &k1)
	call(t, c, "GetKey", GetKeyRequest{Path: "a", Algorithm: "ed25519"}, &k2)
	call(t, c, "GetKey", GetKeyRequest{Path: "b"}, &k3)
	wantKey, _ := DeriveKey(appKey, 32, "a")
	if k1.Key != hex.EncodeToString(wantKey) || k2.Key != k1.Key || k3.Key == k1.Key || len(k3.Key) != 64 {
		t.Fatalf("GetKey %v %v %v", k1, k2, k3)
	}
	if st := call(t, c, "GetKey", GetKeyRequest{Algorithm: "rsa"}, &e); st != 400 {
		t.Fatalf("GetKey rsa status %d", st)
	}

	// GetTlsKey: an RA-TLS certificate bound to its key.
	var tk GetTLSKeyResponse
	if st := call(t, c, "GetTlsKey", GetTLSKeyRequest{Subject: "app", AltNames: []string{"app.local"}, UsageRATLS: true, UsageServerAuth: true}, &tk); st != 200 {
		t.Fatalf("GetTlsKey status %d", st)
	}
	ev, err = dstack.ParseEvidence([]byte(tk.CertificateChain[0]))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Certificate == nil || !bytes.Equal(ev.Certificate.AppID, ch[:20]) {
		t.Fatalf("certificate %+v", ev.Certificate)
	}
	if q, err := quote.Parse(ev.Quote.Raw); err != nil || q.ReportData() != dstack.RATLSReportData(ev.Certificate.Certificate.RawSubjectPublicKeyInfo) {
		t.Fatalf("RA-TLS report data not bound to the SPKI (%v)", err)
	}
	if _, err := dstack.VerifyEventLog(ev, dstack.Options{}); err != nil {
		t.Fatalf("RA-TLS evidence: %v", err)
	}
	if !strings.Contains(tk.Key, "PRIVATE KEY") {
		t.Fatalf("key %q", tk.Key)
	}
}

// fakeKBS implements auth, attest and resource minimally with
// kbs/protocol: one session, report data checked against the quote.
type fakeKBS struct {
	mu      sync.Mutex
	nonce   string
	session string
	key     *protocol.JWK
	secret  []byte
}

func (f *fakeKBS) handler(t *testing.T) http.Handler {
	fail := func(w http.ResponseWriter, pt protocol.ProblemType, detail string) {
		w.WriteHeader(pt.HTTPStatus())
		json.NewEncoder(w).Encode(protocol.NewErrorInfo(pt, detail))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+protocol.PathAuth, func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		if _, err := protocol.ParseRequest(b.Bytes()); err != nil {
			fail(w, protocol.ProblemSerdeError, err.Error())
			return
		}
		ch, _ := protocol.NewChallenge()
		sid, _ := protocol.NewSessionID()
		f.mu.Lock()
		f.nonce, f.session, f.key = ch.Nonce, sid, nil
		f.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: protocol.SessionCookie, Value: sid})
		json.NewEncoder(w).Encode(ch)
	})
	mux.HandleFunc("POST "+protocol.PathAttest, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		ck, err := r.Cookie(protocol.SessionCookie)
		if err != nil || ck.Value != f.session {
			fail(w, protocol.ProblemSerdeError, "no session")
			return
		}
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		a, err := protocol.ParseAttestation(b.Bytes())
		if err != nil || a.RuntimeData.Nonce != f.nonce {
			fail(w, protocol.ProblemSerdeError, fmt.Sprint("attestation ", err))
			return
		}
		var ev protocol.TDXEvidence
		if err := json.Unmarshal(a.TeeEvidence.PrimaryEvidence, &ev); err != nil || ev.CCEventLog == nil {
			fail(w, protocol.ProblemSerdeError, "evidence")
			return
		}
		raw, _ := base64.StdEncoding.DecodeString(ev.Quote)
		q, err := quote.Parse(raw)
		want, rerr := a.ReportData()
		if err != nil || rerr != nil || q.ReportData() != want {
			fail(w, protocol.ProblemAttestationError, "report data not bound")
			return
		}
		key := a.RuntimeData.TeePubKey
		f.key = &key
		json.NewEncoder(w).Encode(protocol.TokenResponse{Token: "fake"})
	})
	mux.HandleFunc("GET "+protocol.PathResource+"/{repo}/{type}/{tag}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		ck, err := r.Cookie(protocol.SessionCookie)
		if err != nil || ck.Value != f.session || f.key == nil {
			fail(w, protocol.ProblemTokenNotFound, "not attested")
			return
		}
		if r.PathValue("tag") != "key1" {
			fail(w, protocol.ProblemPolicyDeny, "denied")
			return
		}
		resp, err := protocol.EncryptResource(f.secret, *f.key)
		if err != nil {
			t.Error(err)
		}
		w.Write(resp)
	})
	return mux
}

func TestKBSClient(t *testing.T) {
	sim := newSim(t)
	f := &fakeKBS{secret: []byte("image decryption key")}
	kbs := httptest.NewServer(f.handler(t))
	defer kbs.Close()
	c := &Client{Quoter: sim, CCEL: sim, HTTP: kbs.Client()}
	got, err := c.GetResource(context.Background(), kbs.URL, "default/key/key1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, f.secret) {
		t.Fatalf("got %q", got)
	}
	if _, err := c.GetResource(context.Background(), kbs.URL, "default/key/other"); !errors.Is(err, ErrKBS) {
		t.Fatalf("denied resource = %v, want ErrKBS", err)
	}
	if _, err := c.GetResource(context.Background(), kbs.URL, "bad"); err == nil {
		t.Fatal("malformed resource id accepted")
	}
}

func rtmr3hex(sim *tdsim.Sim) string {
	r := sim.RTMRs()
	return hex.EncodeToString(r[3][:])
}
