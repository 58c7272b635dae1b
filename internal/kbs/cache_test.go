package kbs_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/kbs"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/tdsim"
	"github.com/tdproof/tdproof/verifier"
)

// queryLog records the statements a Store sends while recording is on.
type queryLog struct {
	mu  sync.Mutex
	on  bool
	got []string
}

func (l *queryLog) observe(q string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.on {
		l.got = append(l.got, q)
	}
}

// record turns recording on and returns the function that turns it off
// and returns what was recorded.
func (l *queryLog) record() func() []string {
	l.mu.Lock()
	l.on, l.got = true, nil
	l.mu.Unlock()
	return func() []string {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.on = false
		return l.got
	}
}

// newObservedBroker starts a broker whose store reports its statements to
// log, reading its resource policy from a store.Cache when cached.
func newObservedBroker(t *testing.T, dsn string, sim *tdsim.Sim, log *queryLog, cached bool) (*env, *kbs.Broker) {
	t.Helper()
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	st, err := store.Open(t.Context(), dsn, store.WithQueryObserver(log.observe))
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
	col, err := sim.Collateral(clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return col, nil })
	refs := refvalue.NewMemoryStore()
	for _, rv := range sim.ReferenceValues() {
		if _, err := refs.Add(t.Context(), rv); err != nil {
			t.Fatal(err)
		}
	}
	v, err := verifier.New(src, refs, signer, verifier.WithClock(clk.Now), verifier.WithTrustedRoot(sim.TrustRoot()))
	if err != nil {
		t.Fatal(err)
	}
	cfg := kbs.Config{Store: st, Verifier: v, TokenKeys: keys, KEK: make([]byte, 32), Now: clk.Now}
	_, _ = rand.Read(cfg.KEK)
	if cached {
		// A long poll: the only reloads are those the Store's own writes
		// cause.
		c, err := st.NewCache(t.Context(), store.CacheOptions{Poll: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		cfg.Policies, cfg.Resources = c, c
	}
	b, err := kbs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The store may be shared with earlier subtests: install the default.
	if _, err := b.SetResourcePolicy(t.Context(), kbs.DefaultResourcePolicy); err != nil {
		t.Fatal(err)
	}
	if err := b.PutResource(t.Context(), resourceID, secret); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	return &env{srv: srv, clock: clk, keys: keys}, b
}

// policyQueries returns the statements of got that read kbs_policies.
func policyQueries(got []string) []string { return queriesOf(got, "kbs_policies") }

// queriesOf returns the statements of got that name table.
func queriesOf(got []string, table string) []string {
	var out []string
	for _, q := range got {
		if strings.Contains(q, table) {
			out = append(out, q)
		}
	}
	return out
}

// TestResourceStepPolicyFromMemory counts the statements of the resource
// step: with Config.Policies a store.Cache it reads the session and the
// resource and nothing of the resource policy; with the Store it queries
// the policy's digest (which shows the count can fail). A policy set
// through the broker is in force at the next request either way.
func TestResourceStepPolicyFromMemory(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn string) {
		for _, cached := range []bool{true, false} {
			name := "store"
			if cached {
				name = "cache"
			}
			t.Run(name, func(t *testing.T) {
				sim := newSim(t, false)
				log := &queryLog{}
				e, b := newObservedBroker(t, dsn, sim, log, cached)
				a := newAgent(t, e)
				nonce := a.auth(t)
				a.attestOK(t, a.attestation(t, sim, nonce, a.jwk))
				// The first read after the setup's policy write reloads
				// the snapshot; the steady state follows.
				a.wantSecret(t, "")
				for i := range 3 {
					stop := log.record()
					a.wantSecret(t, "")
					got := stop()
					pq := policyQueries(got)
					t.Logf("resource request %d: %d statements, %d for the policy", i, len(got), len(pq))
					if cached && len(pq) != 0 {
						t.Fatalf("resource request %d read the policy from SQL: %q", i, pq)
					}
					if !cached && len(pq) == 0 {
						t.Fatalf("resource request %d without the cache sent no policy query: %q", i, got)
					}
					if rq := queriesOf(got, "kbs_resources"); cached && len(rq) != 0 {
						t.Fatalf("resource request %d read the sealed resource from SQL: %q", i, rq)
					}
					if cached && len(got) > 1 {
						// At most the session (this broker's memory of
						// it lasts 2 s).
						t.Fatalf("resource request %d: %d statements, want at most 1: %q", i, len(got), got)
					}
				}
				if _, err := b.SetResourcePolicy(t.Context(), denyAll); err != nil {
					t.Fatal(err)
				}
				code, body := a.resource(t, "")
				wantProblem(t, "resource after deny-all", code, body, protocol.ProblemPolicyDeny)
				if _, err := b.SetResourcePolicy(t.Context(), kbs.DefaultResourcePolicy); err != nil {
					t.Fatal(err)
				}
				stop := log.record()
				a.wantSecret(t, "")
				if cached {
					// The first read after a write reloads the snapshot.
					if got := stop(); len(policyQueries(got)) == 0 {
						t.Fatalf("no reload after the policy was set: %q", got)
					}
				} else {
					stop()
				}
				code, _ = a.resource(t, "")
				if code != http.StatusOK {
					t.Fatalf("resource after restoring the default: %d", code)
				}
				// A resource changed through the broker is served at the
				// next request, cached or not.
				if err := b.PutResource(t.Context(), resourceID, []byte("rotated secret")); err != nil {
					t.Fatal(err)
				}
				code, body = a.resource(t, "")
				if code != http.StatusOK {
					t.Fatalf("resource after rotation: %d %s", code, body)
				}
				if pt, err := protocol.DecryptResource(body, a.priv); err != nil || string(pt) != "rotated secret" {
					t.Fatalf("resource after rotation: %q %v", pt, err)
				}
			})
		}
	})
}

// TestHandshakeStatements counts the statements of a handshake on a broker
// serving its policy and resources from a store.Cache: the auth step
// sends none (the pending session is its cookie), the attest step one
// (the insert of its outcome), the resource step none (this broker
// remembers the session it attested; the policy and resource are in
// memory).
func TestHandshakeStatements(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn string) {
		sim := newSim(t, false)
		log := &queryLog{}
		e, _ := newObservedBroker(t, dsn, sim, log, true)
		a := newAgent(t, e)
		a.attestOK(t, a.attestation(t, sim, a.auth(t), a.jwk))
		a.wantSecret(t, "") // the first read after the setup's writes reloads
		for i := range 3 {
			a := newAgent(t, e)
			stop := log.record()
			nonce := a.auth(t)
			if got := stop(); len(got) != 0 {
				t.Fatalf("handshake %d: auth sent %q, want nothing", i, got)
			}
			att := a.attestation(t, sim, nonce, a.jwk)
			stop = log.record()
			a.attestOK(t, att)
			if got := stop(); len(got) != 1 || !strings.Contains(got[0], "INSERT INTO kbs_sessions") {
				t.Fatalf("handshake %d: attest sent %q, want one insert into kbs_sessions", i, got)
			}
			stop = log.record()
			a.wantSecret(t, "")
			if got := stop(); len(got) != 0 {
				t.Fatalf("handshake %d: resource sent %q, want nothing", i, got)
			}
		}
	})
}

// TestPurgeGrace: Run deletes the sessions that expired more than
// sessionPurgeGrace (1 minute) ago on the broker's clock, and keeps the
// others, so that a broker whose clock lags by less still finds a spent
// session's record while its cookie is unexpired there.
func TestPurgeGrace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn string) {
		sim := newSim(t, false)
		e, b := newObservedBroker(t, dsn, sim, &queryLog{}, false)
		st, err := store.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		if _, err := st.DeleteExpiredKBSSessions(t.Context(), time.Now().Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		now := e.clock.Now()
		for id, exp := range map[string]time.Time{
			"live":          now.Add(time.Minute),
			"just-expired":  now.Add(-time.Second),
			"within-grace":  now.Add(-50 * time.Second),
			"past-grace":    now.Add(-70 * time.Second),
			"long-past-one": now.Add(-time.Hour),
		} {
			if err := st.RecordKBSSession(t.Context(), store.KBSSession{ID: id, Nonce: "n", Tee: "tdx", ExpiresAt: exp}); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- b.Run(ctx, 5*time.Millisecond, func(err error) { t.Error(err) }) }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := st.KBSSession(t.Context(), "long-past-one")
			if errors.Is(err, store.ErrNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("Run purged nothing in 10 s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for id, kept := range map[string]bool{"live": true, "just-expired": true, "within-grace": true, "past-grace": false, "long-past-one": false} {
			_, err := st.KBSSession(t.Context(), id)
			if kept && err != nil || !kept && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("session %s after the purge: %v, want kept %v", id, err, kept)
			}
		}
	})
}
