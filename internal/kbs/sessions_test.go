package kbs_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/kbs/protocol"
)

// barrier lets n verifications wait for each other (or for a timeout, so
// that a refusal before verification fails the test's assertions rather
// than blocking it).
type barrier struct {
	mu      sync.Mutex
	n       int
	arrived int
	all     chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, all: make(chan struct{})} }

func (b *barrier) hold(ctx context.Context) error {
	b.mu.Lock()
	b.arrived++
	if b.arrived == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// attestAll sends att with a's cookie to every base URL at once and
// returns the statuses.
func attestAll(t *testing.T, a *agent, att []byte, bases ...string) []int {
	t.Helper()
	codes := make([]int, len(bases))
	var wg sync.WaitGroup
	for i, base := range bases {
		c := *a
		c.base = base
		wg.Go(func() { codes[i], _ = c.attest(t, att) })
	}
	wg.Wait()
	return codes
}

func count200(codes []int) int {
	n := 0
	for _, c := range codes {
		if c == 200 {
			n++
		}
	}
	return n
}

// TestConcurrentAttest: of several attest steps on one session at once,
// exactly one gets a token, whether they reach one broker (which refuses
// the others before verifying them) or two brokers on one database (both
// verify; the store admits one insert of the outcome).
func TestConcurrentAttest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn string) {
		sim := newSim(t, false)
		t.Run("one broker", func(t *testing.T) {
			e := newEnv(t, dsn, sim, true, "")
			a := newAgent(t, e)
			att := a.attestation(t, sim, a.auth(t), a.jwk)
			codes := attestAll(t, a, att, e.srv.URL, e.srv.URL, e.srv.URL, e.srv.URL, e.srv.URL, e.srv.URL)
			if count200(codes) != 1 {
				t.Fatalf("concurrent attest steps on one broker: %v, want exactly one 200", codes)
			}
			a.wantSecret(t, "")
		})
		t.Run("two brokers", func(t *testing.T) {
			for round := range 3 {
				bar := newBarrier(2)
				e1 := newEnvLimits(t, dsn, sim, true, "", limitOpts{hold: bar.hold})
				e2 := newEnvLimits(t, dsn, sim, true, "", limitOpts{hold: bar.hold})
				a := newAgent(t, e1)
				att := a.attestation(t, sim, a.auth(t), a.jwk) // issued by e1
				codes := attestAll(t, a, att, e1.srv.URL, e2.srv.URL)
				if count200(codes) != 1 {
					t.Fatalf("round %d: attest steps on e1 and e2 at once: %v, want exactly one 200", round, codes)
				}
				// Sequential repeats on either broker are refused.
				for _, base := range []string{e1.srv.URL, e2.srv.URL} {
					c := *a
					c.base = base
					code, body := c.attest(t, att)
					wantProblem(t, "attest after the concurrent ones", code, body, protocol.ProblemAttestationError)
				}
			}
		})
		t.Run("attested by the other broker", func(t *testing.T) {
			// e1 issued the session's cookie; e2 attests it; e1's
			// attest step then verifies the evidence but the store
			// refuses to record a second outcome.
			e1 := newEnv(t, dsn, sim, true, "")
			e2 := newEnv(t, dsn, sim, true, "")
			a := newAgent(t, e1)
			att := a.attestation(t, sim, a.auth(t), a.jwk)
			b := *a
			b.base = e2.srv.URL
			b.attestOK(t, att)
			code, body := a.attest(t, att)
			wantProblem(t, "attest on e1 after e2", code, body, protocol.ProblemAttestationError)
			b.wantSecret(t, "")
		})
		t.Run("failed on the other broker", func(t *testing.T) {
			// A refused attestation consumes the session in the store,
			// not only in the memory of the broker that refused it.
			e1 := newEnv(t, dsn, sim, true, "")
			e2 := newEnv(t, dsn, sim, true, "")
			a := newAgent(t, e1)
			nonce := a.auth(t)
			bad := bytes.Replace(a.attestation(t, sim, nonce, a.jwk), []byte(nonce), []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))), 1)
			code, body := a.attest(t, bad)
			wantProblem(t, "attest with another nonce", code, body, protocol.ProblemAttestationError)
			b := *a
			b.base = e2.srv.URL
			code, body = b.attest(t, a.attestation(t, sim, nonce, a.jwk))
			wantProblem(t, "attest on e2 after a refusal on e1", code, body, protocol.ProblemAttestationError)
			code, body = b.resource(t, "")
			wantProblem(t, "resource on e2", code, body, protocol.ProblemTokenNotFound)
		})
	})
}

// TestSessionExpiresDuringAttest: a session that expires while its
// authentic evidence is verified gets no token (the store's insert does
// not look at the expiry: the attest step checks it again), and its
// nonce is spent like that of any refused attestation: a broker whose
// clock lags, where the cookie has not expired yet, refuses it too.
func TestSessionExpiresDuringAttest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn string) {
		sim := newSim(t, false)
		var e *env
		var once sync.Once
		hold := func(context.Context) error {
			once.Do(func() { e.clock.Add(protocol.DefaultSessionTimeout) })
			return nil
		}
		e = newEnvLimits(t, dsn, sim, true, "", limitOpts{hold: hold})
		lagging := newEnv(t, dsn, sim, true, "")
		a := newAgent(t, e)
		att := a.attestation(t, sim, a.auth(t), a.jwk)
		code, body := a.attest(t, att)
		wantProblem(t, "attest of a session that expired during verification", code, body, protocol.ProblemAttestationError)
		code, body = a.resource(t, "")
		wantProblem(t, "resource", code, body, protocol.ProblemTokenNotFound)
		b := *a
		b.base = lagging.srv.URL
		code, body = b.attest(t, att)
		wantProblem(t, "attest on a lagging broker after the expiry", code, body, protocol.ProblemAttestationError)
	})
}

// TestSessionRemovedFromStore: the store stays the truth for sessions the
// broker remembers. A pending session is not stored (it is its cookie);
// an attested one removed from the database is refused by the resource
// step once sessionMemoTTL (2 s, real time) has passed.
func TestSessionRemovedFromStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn string) {
		sim := newSim(t, false)
		st, err := store.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		removeAll := func(t *testing.T) int64 {
			t.Helper()
			n, err := st.DeleteExpiredKBSSessions(t.Context(), time.Now().Add(24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		t.Run("pending", func(t *testing.T) {
			e := newEnv(t, dsn, sim, true, "")
			removeAll(t)
			a := newAgent(t, e)
			att := a.attestation(t, sim, a.auth(t), a.jwk)
			if n := removeAll(t); n != 0 {
				t.Fatalf("auth stored %d sessions, want none", n)
			}
			a.attestOK(t, att)
			if n := removeAll(t); n != 1 {
				t.Fatalf("attest stored %d sessions, want 1", n)
			}
		})
		t.Run("attested", func(t *testing.T) {
			e := newEnv(t, dsn, sim, true, "")
			a := newAgent(t, e)
			tok := a.attestOK(t, a.attestation(t, sim, a.auth(t), a.jwk))
			a.wantSecret(t, "")
			removeAll(t)
			// sessionMemoTTL is on the system's clock (the broker's may
			// stand still).
			time.Sleep(2*time.Second + 100*time.Millisecond)
			code, body := a.resource(t, "")
			wantProblem(t, "resource of a removed session", code, body, protocol.ProblemTokenNotFound)
			code, body = a.resource(t, tok)
			wantProblem(t, "resource with the removed session's token", code, body, protocol.ProblemTokenNotFound)
		})
		t.Run("expired", func(t *testing.T) {
			e := newEnv(t, dsn, sim, true, "")
			a := newAgent(t, e)
			a.attestOK(t, a.attestation(t, sim, a.auth(t), a.jwk))
			a.wantSecret(t, "")
			// Expired: refused at once, from memory as from the store.
			e.clock.Add(protocol.DefaultSessionTimeout)
			code, body := a.resource(t, "")
			wantProblem(t, "resource of an expired session", code, body, protocol.ProblemTokenNotFound)
		})
	})
}

// TestSessionCookie: the session cookie is accepted only as issued by a
// broker holding the store's key-encryption key: a cookie altered in any
// way, or issued by a broker with another key, opens no session, and
// brokers sharing the key attest each other's sessions (once).
func TestSessionCookie(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn string) {
		sim := newSim(t, false)
		// other first: the test resource is sealed last by e1, with the
		// store's key.
		other := newEnvLimits(t, dsn, sim, true, "", limitOpts{kek: bytes.Repeat([]byte{9}, 32)})
		e1 := newEnv(t, dsn, sim, true, "")
		u, err := url.Parse(e1.srv.URL + protocol.APIPrefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Run("another key-encryption key", func(t *testing.T) {
			a := newAgent(t, e1)
			att := a.attestation(t, sim, a.auth(t), a.jwk)
			b := *a
			b.base = other.srv.URL
			code, body := b.attest(t, att)
			wantProblem(t, "attest on a broker with another key", code, body, protocol.ProblemAttestationError)
			a.attestOK(t, att) // the session is unspent
			a.wantSecret(t, "")
			code, body = b.resource(t, "")
			wantProblem(t, "resource on a broker with another key", code, body, protocol.ProblemTokenNotFound)
		})
		t.Run("altered", func(t *testing.T) {
			a := newAgent(t, e1)
			att := a.attestation(t, sim, a.auth(t), a.jwk)
			var orig string
			for _, c := range a.c.Jar.Cookies(u) {
				if c.Name == protocol.SessionCookie {
					orig = c.Value
				}
			}
			if orig == "" {
				t.Fatal("no session cookie")
			}
			// One character changed in the payload, in the MAC, or the
			// value cut short; then a server-chosen id of the old form.
			for _, v := range []string{flip(orig, len("s1.")+3), flip(orig, len(orig)-5), orig[:len(orig)-1], "0123456789abcdef0123456789abcdef"} {
				a.c.Jar.SetCookies(u, []*http.Cookie{{Name: protocol.SessionCookie, Value: v, Path: protocol.APIPrefix}})
				code, body := a.attest(t, att)
				wantProblem(t, "attest with cookie "+v, code, body, protocol.ProblemAttestationError)
			}
			a.c.Jar.SetCookies(u, []*http.Cookie{{Name: protocol.SessionCookie, Value: orig, Path: protocol.APIPrefix}})
			a.attestOK(t, att)
			for _, v := range []string{flip(orig, len("s1.")+3), flip(orig, len(orig)-5)} {
				a.c.Jar.SetCookies(u, []*http.Cookie{{Name: protocol.SessionCookie, Value: v, Path: protocol.APIPrefix}})
				code, body := a.resource(t, "")
				wantProblem(t, "resource with cookie "+v, code, body, protocol.ProblemTokenNotFound)
			}
		})
	})
}

// flip changes the character at i of a base64url string to another one.
func flip(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}
