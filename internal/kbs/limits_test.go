package kbs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/kbs"
	"github.com/tdproof/tdproof/kbs/protocol"
)

// wantLimit checks a limit refusal: status and a Trustee-shaped problem
// document of the type name.
func wantLimit(t *testing.T, what string, code int, body []byte, wantCode int, name string) {
	t.Helper()
	var info protocol.ErrorInfo
	if err := json.Unmarshal(body, &info); err != nil || code != wantCode || info.Type != protocol.ProblemTypePrefix+name || info.Detail == "" {
		t.Fatalf("%s: %d %s, want %d %s", what, code, body, wantCode, name)
	}
}

func sqliteDSN(t *testing.T) string { return filepath.Join(t.TempDir(), "kbs.db") }

func authBody() []byte {
	b, _ := json.Marshal(protocol.NewRequest(protocol.TeeTdx))
	return b
}

// TestBodyLimits: /auth refuses bodies over a few KiB and /attest over
// its limit with 413, reading no more than the limit.
func TestBodyLimits(t *testing.T) {
	t.Parallel()
	sim := newSim(t, false)
	e := newEnvLimits(t, sqliteDSN(t), sim, true, "", limitOpts{limits: kbs.Limits{AttestBodyBytes: 64 << 10}})
	a := newAgent(t, e)
	big := append(authBody()[:len(authBody())-1], []byte(`,"extra-params":"`+strings.Repeat("x", kbs.DefaultAuthBodyBytes)+`"}`)...)
	code, body := a.do(t, http.MethodPost, protocol.PathAuth, big, "")
	wantLimit(t, "auth with a large body", code, body, http.StatusRequestEntityTooLarge, "PayloadTooLarge")
	// A streamed 15 MiB body is refused (or the connection closed while
	// the client still sends).
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+protocol.PathAuth, &zeroReader{n: 15 << 20})
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("15 MiB auth: %d", resp.StatusCode)
		}
	}

	nonce := a.auth(t)
	att := a.attestation(t, sim, nonce, a.jwk)
	var padded map[string]any
	if err := json.Unmarshal(att, &padded); err != nil {
		t.Fatal(err)
	}
	padded["pad"] = strings.Repeat("y", 64<<10)
	pb, _ := json.Marshal(padded)
	code, body = a.attest(t, pb)
	wantLimit(t, "attest over the limit", code, body, http.StatusRequestEntityTooLarge, "PayloadTooLarge")
	// A body under the limit goes through (a new session: the nonce of
	// the refused one was not consumed, but the cookie is reused).
	a.attestOK(t, att)
	a.wantSecret(t, "")
}

// zeroReader yields n zero bytes.
type zeroReader struct{ n int64 }

func (z *zeroReader) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), z.n)
	clear(p[:k])
	z.n -= k
	return int(k), nil
}

// TestSessionCap: /auth answers 503 beyond MaxSessions live sessions.
func TestSessionCap(t *testing.T) {
	t.Parallel()
	b, srv := newLimitBroker(t, kbs.Limits{MaxSessions: 5})
	for i := range 5 {
		if code, body := post(t, srv, protocol.PathAuth, authBody()); code != 200 {
			t.Fatalf("auth %d: %d %s", i, code, body)
		}
	}
	code, body := post(t, srv, protocol.PathAuth, authBody())
	wantLimit(t, "sixth session", code, body, http.StatusServiceUnavailable, "Overloaded")
	if n := b.LiveSessions(); n != 5 {
		t.Errorf("LiveSessions = %d, want 5", n)
	}
}

// TestRateLimit: a client over its token bucket gets 429 with
// Retry-After; another address is not affected.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	_, srv := newLimitBroker(t, kbs.Limits{RatePerSecond: 0.001, RateBurst: 3})
	for i := range 3 {
		if code, body := post(t, srv, protocol.PathAuth, authBody()); code != 200 {
			t.Fatalf("auth %d: %d %s", i, code, body)
		}
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv+protocol.PathAuth, bytes.NewReader(authBody()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantLimit(t, "fourth auth", resp.StatusCode, body, http.StatusTooManyRequests, "TooManyRequests")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	code, body := post(t, srv, protocol.PathAttest, []byte("{}"))
	wantLimit(t, "attest from the same address", code, body, http.StatusTooManyRequests, "TooManyRequests")
	if _, err := kbs.New(kbs.Config{}); err == nil {
		t.Error("empty config accepted")
	}
}

// TestInFlightCap: beyond MaxInFlight concurrent attestations, /attest
// answers 503 at once; when they finish it accepts again.
func TestInFlightCap(t *testing.T) {
	t.Parallel()
	sim := newSim(t, false)
	gate := make(chan struct{})
	arrived := make(chan struct{}, 3)
	var opened sync.Once
	t.Cleanup(func() { opened.Do(func() { close(gate) }) }) // never leave handlers blocked
	hold := func(ctx context.Context) error {
		arrived <- struct{}{}
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e := newEnvLimits(t, sqliteDSN(t), sim, true, "", limitOpts{limits: kbs.Limits{MaxInFlight: 2}, hold: hold})
	agents := make([]*agent, 3)
	atts := make([][]byte, 3)
	for i := range agents {
		agents[i] = newAgent(t, e)
		atts[i] = agents[i].attestation(t, sim, agents[i].auth(t), agents[i].jwk)
	}
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Go(func() { codes[i], _ = agents[i].attest(t, atts[i]) })
	}
	for range 2 {
		select {
		case <-arrived:
		case <-time.After(30 * time.Second):
			t.Fatal("the two attestations did not reach verification")
		}
	}
	code, body := agents[2].attest(t, atts[2])
	wantLimit(t, "third attestation", code, body, http.StatusServiceUnavailable, "Overloaded")
	opened.Do(func() { close(gate) })
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Fatalf("in-flight attestations: %v", codes)
	}
	agents[2].attestOK(t, atts[2])
}

// newLimitBroker starts a broker with limits on a fresh SQLite store.
func newLimitBroker(t *testing.T, l kbs.Limits) (*kbs.Broker, string) {
	t.Helper()
	e := newEnvLimits(t, sqliteDSN(t), newSim(t, false), true, "", limitOpts{limits: l})
	b, ok := e.srv.Config.Handler.(*kbs.Broker)
	if !ok {
		t.Fatal("env handler is not a broker")
	}
	return b, e.srv.URL
}

func post(t *testing.T, base, path string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(base+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
