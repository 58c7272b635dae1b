package kbs_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/kbs"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/internal/store/storetest"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/tdsim"
	"github.com/tdproof/tdproof/verifier"
)

var secret = []byte("image decryption key 0123456789")

// forEachBackend runs f on a fresh SQLite database and a fresh PostgreSQL
// schema (storetest).
func forEachBackend(t *testing.T, f func(t *testing.T, dsn string)) {
	storetest.ForEachBackend(t, f)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	srv   *httptest.Server
	clock *clock
	keys  *ear.KeySet
}

var resourceID = protocol.ResourceID{Repository: "default", Type: "key", Tag: "image"}

// newEnv starts a broker whose verifier trusts root (nil: the Intel root).
func newEnv(t *testing.T, dsn string, sim *tdsim.Sim, trustSim bool, policy string) *env {
	t.Helper()
	return newEnvLimits(t, dsn, sim, trustSim, policy, limitOpts{})
}

// limitOpts are newEnvLimits's extras: the broker's limits, a hook each
// verification calls first (nil: none) and its key-encryption key (nil:
// one derived from the store's DSN, so that brokers of one store share
// it, as they must).
type limitOpts struct {
	limits kbs.Limits
	hold   func(context.Context) error
	kek    []byte
}

func newEnvLimits(t *testing.T, dsn string, sim *tdsim.Sim, trustSim bool, policy string, o limitOpts) *env {
	t.Helper()
	return newBrokerEnv(t, dsn, policy, o, func(signer *ear.Signer, clk *clock) *verifier.Verifier {
		col, err := sim.Collateral(clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		src := verifier.CollateralFunc(func(ctx context.Context, _ *quote.Quote) (*collateral.Collateral, error) {
			if o.hold != nil {
				if err := o.hold(ctx); err != nil {
					return nil, err
				}
			}
			return col, nil
		})
		vopts := []verifier.Option{verifier.WithClock(clk.Now)}
		if trustSim {
			vopts = append(vopts, verifier.WithTrustedRoot(sim.TrustRoot()))
		}
		refs := refvalue.NewMemoryStore()
		for _, rv := range sim.ReferenceValues() {
			if _, err := refs.Add(t.Context(), rv); err != nil {
				t.Fatal(err)
			}
		}
		v, err := verifier.New(src, refs, signer, vopts...)
		if err != nil {
			t.Fatal(err)
		}
		return v
	})
}

// newBrokerEnv serves a broker on the store at dsn holding the test
// resource under policy ("": the default) with the verifier newVerifier
// makes from the env's token signer and clock, and the limits and
// key-encryption key of o.
func newBrokerEnv(t *testing.T, dsn, policy string, o limitOpts, newVerifier func(*ear.Signer, *clock) *verifier.Verifier) *env {
	t.Helper()
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	st, err := store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	k, err := ear.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ear.NewKeySet(k)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ear.NewSigner(keys, ear.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(signer, clk)
	kek := o.kek
	if kek == nil {
		h := sha256.Sum256([]byte("kbs test key-encryption key\x00" + dsn))
		kek = h[:]
	}
	b, err := kbs.New(kbs.Config{Store: st, Verifier: v, TokenKeys: keys, KEK: kek, ResourcePolicy: policy, Now: clk.Now, Limits: o.limits})
	if err != nil {
		t.Fatal(err)
	}
	// The resource policy is kept in the store, which subtests share:
	// install this env's own.
	if policy == "" {
		policy = kbs.DefaultResourcePolicy
	}
	if _, err := b.SetResourcePolicy(t.Context(), policy); err != nil {
		t.Fatal(err)
	}
	if err := b.PutResource(t.Context(), resourceID, secret); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	return &env{srv: srv, clock: clk, keys: keys}
}

func newSim(t *testing.T, debug bool) *tdsim.Sim {
	t.Helper()
	s, err := tdsim.New(tdsim.Config{Debug: debug})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// agent is a minimal KBS client.
type agent struct {
	c    *http.Client
	base string
	priv crypto.PrivateKey
	jwk  protocol.JWK
}

func newAgent(t *testing.T, e *env) *agent {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	priv, jwk, err := protocol.GenerateKey(0)
	if err != nil {
		t.Fatal(err)
	}
	return &agent{c: &http.Client{Jar: jar}, base: e.srv.URL, priv: priv, jwk: jwk}
}

func (a *agent) do(t *testing.T, method, path string, body []byte, bearer string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, a.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := a.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (a *agent) auth(t *testing.T) string {
	t.Helper()
	return a.authAs(t, protocol.TeeTdx)
}

// authAs starts a session for tee and returns its nonce.
func (a *agent) authAs(t *testing.T, tee protocol.Tee) string {
	t.Helper()
	body, _ := json.Marshal(protocol.NewRequest(tee))
	code, resp := a.do(t, http.MethodPost, protocol.PathAuth, body, "")
	if code != 200 {
		t.Fatalf("auth: %d %s", code, resp)
	}
	ch, err := protocol.ParseChallenge(resp)
	if err != nil {
		t.Fatal(err)
	}
	return ch.Nonce
}

// attestation builds the attestation for nonce, the quote binding bindKey.
func (a *agent) attestation(t *testing.T, sim *tdsim.Sim, nonce string, bindKey protocol.JWK) []byte {
	t.Helper()
	rd, err := protocol.ReportData(nonce, bindKey, "")
	if err != nil {
		t.Fatal(err)
	}
	q, err := sim.Quote(t.Context(), rd)
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := json.Marshal(protocol.TDXEvidence{Quote: base64.StdEncoding.EncodeToString(q)})
	body, err := json.Marshal(protocol.Attestation{
		RuntimeData: protocol.RuntimeData{Nonce: nonce, TeePubKey: a.jwk},
		TeeEvidence: protocol.CompositeEvidence{PrimaryEvidence: ev},
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func (a *agent) attest(t *testing.T, body []byte) (int, []byte) {
	t.Helper()
	return a.do(t, http.MethodPost, protocol.PathAttest, body, "")
}

func (a *agent) resource(t *testing.T, bearer string) (int, []byte) {
	t.Helper()
	p, err := resourceID.Path()
	if err != nil {
		t.Fatal(err)
	}
	return a.do(t, http.MethodGet, p, nil, bearer)
}

func wantProblem(t *testing.T, what string, code int, body []byte, want protocol.ProblemType) {
	t.Helper()
	var info protocol.ErrorInfo
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatalf("%s: %d %s: not a problem document", what, code, body)
	}
	got, _ := info.Problem()
	if code != want.HTTPStatus() || got != want {
		t.Fatalf("%s: %d %s, want %d %s", what, code, body, want.HTTPStatus(), want)
	}
	if bytes.Contains(body, secret) {
		t.Fatalf("%s: secret in response", what)
	}
}

func (a *agent) attestOK(t *testing.T, att []byte) string {
	t.Helper()
	code, body := a.attest(t, att)
	if code != 200 {
		t.Fatalf("attest: %d %s", code, body)
	}
	var tr protocol.TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.Token == "" {
		t.Fatalf("attest: %s", body)
	}
	return tr.Token
}

func (a *agent) wantSecret(t *testing.T, bearer string) {
	t.Helper()
	code, body := a.resource(t, bearer)
	if code != 200 {
		t.Fatalf("resource: %d %s", code, body)
	}
	pt, err := protocol.DecryptResource(body, a.priv)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pt, secret) {
		t.Fatalf("resource = %q", pt)
	}
}

func TestHandshakeReleasesSecret(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn string) {
		sim := newSim(t, false)
		e := newEnv(t, dsn, sim, true, "")
		a := newAgent(t, e)
		// No session yet: nothing released.
		code, body := a.resource(t, "")
		wantProblem(t, "resource before auth", code, body, protocol.ProblemTokenNotFound)
		nonce := a.auth(t)
		code, body = a.resource(t, "")
		wantProblem(t, "resource before attest", code, body, protocol.ProblemTokenNotFound)
		tok := a.attestOK(t, (a.attestation(t, sim, nonce, a.jwk)))
		a.wantSecret(t, "") // cookie
		// Bearer, from a client without the cookie.
		b := newAgent(t, e)
		b.priv = a.priv
		b.wantSecret(t, tok)
	})
}

func TestRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn string) {
		sim := newSim(t, false)

		t.Run("replayed nonce", func(t *testing.T) {
			e := newEnv(t, dsn, sim, true, "")
			a := newAgent(t, e)
			att := a.attestation(t, sim, a.auth(t), a.jwk)
			a.attestOK(t, (att))
			code, body := a.attest(t, att)
			wantProblem(t, "second attest", code, body, protocol.ProblemAttestationError)
		})
		t.Run("replayed nonce after failure", func(t *testing.T) {
			e := newEnv(t, dsn, sim, true, "")
			a := newAgent(t, e)
			nonce := a.auth(t)
			bad := a.attestation(t, sim, nonce, a.jwk)
			bad = bytes.Replace(bad, []byte(nonce), []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))), 1)
			code, body := a.attest(t, bad)
			wantProblem(t, "wrong nonce", code, body, protocol.ProblemAttestationError)
			code, body = a.attest(t, a.attestation(t, sim, nonce, a.jwk))
			wantProblem(t, "attest after a failed one", code, body, protocol.ProblemAttestationError)
			code, body = a.resource(t, "")
			wantProblem(t, "resource", code, body, protocol.ProblemTokenNotFound)
		})
		t.Run("expired session", func(t *testing.T) {
			e := newEnv(t, dsn, sim, true, "")
			a := newAgent(t, e)
			nonce := a.auth(t)
			e.clock.Add(protocol.DefaultSessionTimeout + time.Second)
			code, body := a.attest(t, a.attestation(t, sim, nonce, a.jwk))
			wantProblem(t, "attest on an expired session", code, body, protocol.ProblemAttestationError)
			code, body = a.resource(t, "")
			wantProblem(t, "resource", code, body, protocol.ProblemTokenNotFound)
		})
		t.Run("expired session after attest", func(t *testing.T) {
			e := newEnv(t, dsn, sim, true, "")
			a := newAgent(t, e)
			a.attestOK(t, (a.attestation(t, sim, a.auth(t), a.jwk)))
			e.clock.Add(protocol.DefaultSessionTimeout + time.Second)
			code, body := a.resource(t, "")
			wantProblem(t, "resource", code, body, protocol.ProblemTokenNotFound)
		})
		t.Run("report data bound to another key", func(t *testing.T) {
			e := newEnv(t, dsn, sim, true, "")
			a := newAgent(t, e)
			_, other, err := protocol.GenerateKey(0)
			if err != nil {
				t.Fatal(err)
			}
			code, body := a.attest(t, a.attestation(t, sim, a.auth(t), other))
			wantProblem(t, "attest", code, body, protocol.ProblemAttestationError)
			code, body = a.resource(t, "")
			wantProblem(t, "resource", code, body, protocol.ProblemTokenNotFound)
		})
		t.Run("debug TD", func(t *testing.T) {
			dbg, err := tdsim.New(tdsim.Config{Debug: true, PKI: sim.PKI()})
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, dsn, dbg, true, "")
			a := newAgent(t, e)
			// Authentic but contraindicated (policy rule debug): the
			// token is issued, as Trustee's attestation service does, and
			// the default resource policy denies the resource.
			a.attestOK(t, a.attestation(t, dbg, a.auth(t), a.jwk))
			code, body := a.resource(t, "")
			wantProblem(t, "resource", code, body, protocol.ProblemPolicyDeny)
		})
		t.Run("path not allowed by policy", func(t *testing.T) {
			pol := `package policy
default allow := false
allow if {
	data["resource-path"] == "default/key/other"
	every _, s in input.submods { s["ear.status"] == "affirming" }
}
`
			e := newEnv(t, dsn, sim, true, pol)
			a := newAgent(t, e)
			a.attestOK(t, (a.attestation(t, sim, a.auth(t), a.jwk)))
			code, body := a.resource(t, "")
			wantProblem(t, "resource", code, body, protocol.ProblemPolicyDeny)
		})
		t.Run("token from another verifier key", func(t *testing.T) {
			e1 := newEnv(t, dsn, sim, true, "")
			e2 := newEnv(t, dsn, sim, true, "")
			a := newAgent(t, e2)
			tok := a.attestOK(t, (a.attestation(t, sim, a.auth(t), a.jwk)))
			b := newAgent(t, e1)
			code, body := b.resource(t, tok)
			wantProblem(t, "resource", code, body, protocol.ProblemTokenVerifierError)
		})
		t.Run("simulator root not trusted", func(t *testing.T) {
			e := newEnv(t, dsn, sim, false, "")
			a := newAgent(t, e)
			code, body := a.attest(t, a.attestation(t, sim, a.auth(t), a.jwk))
			wantProblem(t, "attest", code, body, protocol.ProblemAttestationError)
			code, body = a.resource(t, "")
			wantProblem(t, "resource", code, body, protocol.ProblemTokenNotFound)
		})
	})
}

// TestCCELMustReplay: a cc_eventlog sent with a plain TDX quote must
// replay to the quote's RTMR0–2; its own CCEL passes, another TD's is
// refused and releases nothing.
func TestCCELMustReplay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn string) {
		sim := newSim(t, false)
		other, err := tdsim.New(tdsim.Config{BootEvents: tdsim.SyntheticBootEvents()[:2], PKI: sim.PKI()})
		if err != nil {
			t.Fatal(err)
		}
		withCCEL := func(body []byte, from *tdsim.Sim) []byte {
			t.Helper()
			var att map[string]json.RawMessage
			if err := json.Unmarshal(body, &att); err != nil {
				t.Fatal(err)
			}
			var te map[string]json.RawMessage
			if err := json.Unmarshal(att["tee-evidence"], &te); err != nil {
				t.Fatal(err)
			}
			var ev protocol.TDXEvidence
			if err := json.Unmarshal(te["primary_evidence"], &ev); err != nil {
				t.Fatal(err)
			}
			raw, err := from.ReadCCEL()
			if err != nil {
				t.Fatal(err)
			}
			s := base64.StdEncoding.EncodeToString(raw)
			ev.CCEventLog = &s
			te["primary_evidence"], _ = json.Marshal(ev)
			att["tee-evidence"], _ = json.Marshal(te)
			out, _ := json.Marshal(att)
			return out
		}
		e := newEnv(t, dsn, sim, true, "")
		a := newAgent(t, e)
		a.attestOK(t, withCCEL(a.attestation(t, sim, a.auth(t), a.jwk), sim))
		a.wantSecret(t, "")

		b := newAgent(t, e)
		code, body := b.attest(t, withCCEL(b.attestation(t, sim, b.auth(t), b.jwk), other))
		wantProblem(t, "attest with another TD's CCEL", code, body, protocol.ProblemAttestationError)
		if !bytes.Contains(body, []byte("event log does not match the quote")) {
			t.Errorf("detail: %s", body)
		}
		code, body = b.resource(t, "")
		wantProblem(t, "resource", code, body, protocol.ProblemTokenNotFound)
	})
}

// TestCCELBesideEventLog: a cc_eventlog sent beside a dstack event_log
// must replay to the quote as well; it was ignored, so another image's
// CCEL (or the image's CCEL with another app's RTMR3 events) passed.
func TestCCELBesideEventLog(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn string) {
		sim := newSim(t, false)
		if _, err := sim.Emit("compose-hash", []byte("app a")); err != nil {
			t.Fatal(err)
		}
		other, err := tdsim.New(tdsim.Config{BootEvents: tdsim.SyntheticBootEvents()[:2], PKI: sim.PKI()})
		if err != nil {
			t.Fatal(err)
		}
		ccel := func(evs []eventlog.Event) []byte {
			b, err := tdsim.MarshalCCEL(evs, tdsim.CCELRegionSize)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		// RTMR3 as a CCEL records it: digests only.
		wrongRTMR3 := sha512.Sum384([]byte("another app"))
		e := newEnv(t, dsn, sim, true, "")
		attest := func(a *agent, ccel []byte) (int, []byte) {
			nonce := a.auth(t)
			rd, err := protocol.ReportData(nonce, a.jwk, "")
			if err != nil {
				t.Fatal(err)
			}
			q, err := sim.Quote(t.Context(), rd)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := tdsim.KBSEvidence(q, ccel, sim.EventLog(), "")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := json.Marshal(protocol.Attestation{
				RuntimeData: protocol.RuntimeData{Nonce: nonce, TeePubKey: a.jwk},
				TeeEvidence: protocol.CompositeEvidence{PrimaryEvidence: ev},
			})
			return a.attest(t, body)
		}
		a := newAgent(t, e)
		if code, body := attest(a, ccel(sim.BootEvents())); code != http.StatusOK {
			t.Fatalf("own CCEL beside the event log: %d %s", code, body)
		}
		a.wantSecret(t, "")
		for name, c := range map[string][]byte{
			"another image's CCEL": ccel(other.BootEvents()),
			"RTMR3 events of another app": ccel(append(sim.BootEvents(),
				eventlog.Event{IMR: 3, Type: eventlog.EvEventTag, Digest: wrongRTMR3[:]})),
			"garbage": []byte("not a CCEL"),
		} {
			b := newAgent(t, e)
			code, body := attest(b, c)
			wantProblem(t, name, code, body, protocol.ProblemAttestationError)
			if !bytes.Contains(body, []byte("cc_eventlog")) {
				t.Errorf("%s: detail %s", name, body)
			}
			code, body = b.resource(t, "")
			wantProblem(t, name+": resource", code, body, protocol.ProblemTokenNotFound)
		}
	})
}

// TestHighSTokenRefused: the broker's own token with its ECDSA s replaced
// by n − s (a second valid signature) is refused on the resource route.
func TestHighSTokenRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn string) {
		sim := newSim(t, false)
		e := newEnv(t, dsn, sim, true, "")
		a := newAgent(t, e)
		tok := a.attestOK(t, a.attestation(t, sim, a.auth(t), a.jwk))
		dot := strings.LastIndexByte(tok, '.')
		sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
		if err != nil || len(sig) != 64 {
			t.Fatalf("token signature %q", tok[dot+1:])
		}
		n := elliptic.P256().Params().N
		s := new(big.Int).SetBytes(sig[32:])
		s.Sub(n, s)
		s.FillBytes(sig[32:])
		high := tok[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
		b := newAgent(t, e)
		b.priv = a.priv
		code, body := b.resource(t, high)
		wantProblem(t, "high-s token", code, body, protocol.ProblemTokenVerifierError)
		b.wantSecret(t, tok) // the genuine token still works
	})
}

// TestResourceStepIssuedToken covers the resource step's use of the token
// this broker signed for a session (sessions.go): a session's resources are
// released repeatedly from it, its signing key must still be trusted, and
// a session attested by another broker on the same database (not
// remembered here) has its token verified with this broker's keys.
func TestResourceStepIssuedToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn string) {
		sim := newSim(t, false)
		t.Run("repeated", func(t *testing.T) {
			e := newEnv(t, dsn, sim, true, "")
			a := newAgent(t, e)
			a.attestOK(t, a.attestation(t, sim, a.auth(t), a.jwk))
			for range 3 {
				a.wantSecret(t, "")
			}
		})
		t.Run("signing key removed", func(t *testing.T) {
			e := newEnv(t, dsn, sim, true, "")
			a := newAgent(t, e)
			a.attestOK(t, a.attestation(t, sim, a.auth(t), a.jwk))
			a.wantSecret(t, "")
			old := e.keys.Active().ID()
			next, err := ear.GenerateKey(nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.keys.Rotate(next); err != nil {
				t.Fatal(err)
			}
			a.wantSecret(t, "") // the old key is still in the set
			if err := e.keys.Remove(old); err != nil {
				t.Fatal(err)
			}
			code, body := a.resource(t, "")
			wantProblem(t, "resource after the signing key was removed", code, body, protocol.ProblemTokenVerifierError)
		})
		t.Run("session of another broker", func(t *testing.T) {
			e1 := newEnv(t, dsn, sim, true, "")
			e2 := newEnv(t, dsn, sim, true, "")
			a := newAgent(t, e2)
			a.attestOK(t, a.attestation(t, sim, a.auth(t), a.jwk))
			a.wantSecret(t, "")
			// The same cookie (the jar ignores the port) to the broker
			// whose keys did not sign the session's token.
			a.base = e1.srv.URL
			code, body := a.resource(t, "")
			wantProblem(t, "resource from another broker", code, body, protocol.ProblemTokenVerifierError)
		})
	})
}
