package loadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/kbs"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/internal/store/storetest"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/tdsim"
	"github.com/tdproof/tdproof/verifier"
)

var (
	kbsHandshakes  = flag.Int("loadtest.kbs.n", 200, "stop the KBS load test after `N` handshakes")
	kbsDuration    = flag.Duration("loadtest.kbs.d", time.Minute, "stop the KBS load test after `DURATION`")
	kbsConcurrency = flag.Int("loadtest.kbs.c", 4, "`N` concurrent KBS clients")
)

var kbsResourceID = protocol.ResourceID{Repository: "default", Type: "key", Tag: "loadtest"}

// broker is a key broker on a loopback listener, with one stored secret,
// and the simulated TD its verifier trusts.
type broker struct {
	base     string // scheme and host
	resource string // GET path of the secret
	secret   []byte
	sim      *tdsim.Sim
	keys     *ear.KeySet
	authBody []byte
}

// startBroker builds a broker over the store at dsn, as internal/kbs's
// tests do, with reference values for every TD register of a fresh
// tdsim.Sim (so that its results are affirming), stores a random secret
// and serves the broker with net/http on 127.0.0.1:0 until the test ends.
func startBroker(tb testing.TB, dsn string) *broker {
	tb.Helper()
	ctx := context.Background()
	sim, err := tdsim.New(tdsim.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	k, err := ear.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := ear.NewKeySet(k)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := ear.NewSigner(keys)
	if err != nil {
		tb.Fatal(err)
	}
	col, err := sim.Collateral(time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	refs := refvalue.NewMemoryStore()
	mrtd := sim.MRTD()
	vals := map[string][]byte{"tdx.mr_td": mrtd[:]}
	rtmrs := sim.RTMRs()
	for i := range rtmrs {
		vals[fmt.Sprintf("tdx.rtmr_%d", i)] = rtmrs[i][:]
	}
	for name, v := range vals {
		if _, err := refs.Add(ctx, refvalue.Value{Name: name, Values: []string{hex.EncodeToString(v)}, Provenance: refvalue.Provenance{Source: "tdsim"}}); err != nil {
			tb.Fatal(err)
		}
	}
	src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return col, nil })
	v, err := verifier.New(src, refs, signer, verifier.WithTrustedRoot(sim.TrustRoot()))
	if err != nil {
		tb.Fatal(err)
	}
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		tb.Fatal(err)
	}
	// The resource policy and the sealed resources from memory, as
	// tdproof serve reads them.
	snap, err := st.NewCache(ctx, store.CacheOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(snap.Close)
	b, err := kbs.New(kbs.Config{Store: st, Policies: snap, Resources: snap, Verifier: v, TokenKeys: keys, KEK: kek})
	if err != nil {
		tb.Fatal(err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		tb.Fatal(err)
	}
	if err := b.PutResource(ctx, kbsResourceID, secret); err != nil {
		tb.Fatal(err)
	}
	path, err := kbsResourceID.Path()
	if err != nil {
		tb.Fatal(err)
	}
	authBody, err := json.Marshal(protocol.NewRequest(protocol.TeeTdx))
	if err != nil {
		tb.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("Serve: %v", err)
		}
	})
	return &broker{base: "http://" + ln.Addr().String(), resource: path, secret: secret, sim: sim, keys: keys, authBody: authBody}
}

// phases are the durations of the three steps of a handshake.
type phases struct{ auth, attest, resource time.Duration }

// handshake runs auth, attest (a fresh P-256 TEE key bound to the nonce
// by a tdsim quote) and resource with c, checks that the resource
// decrypts to the stored secret and returns the token and the step
// durations. Every non-200 response is an error.
func (b *broker) handshake(ctx context.Context, c *http.Client) (string, phases, error) {
	var ph phases
	t0 := time.Now()
	code, body, cookie, err := b.do(ctx, c, http.MethodPost, protocol.PathAuth, b.authBody, nil)
	if err != nil {
		return "", ph, fmt.Errorf("auth: %w", err)
	}
	if code != http.StatusOK {
		return "", ph, fmt.Errorf("auth: status %d: %s", code, body)
	}
	if cookie == nil {
		return "", ph, fmt.Errorf("auth: no %s cookie", protocol.SessionCookie)
	}
	ch, err := protocol.ParseChallenge(body)
	if err != nil {
		return "", ph, fmt.Errorf("auth: %w", err)
	}
	t1 := time.Now()
	ph.auth = t1.Sub(t0)

	priv, jwk, err := protocol.GenerateKey(0)
	if err != nil {
		return "", ph, err
	}
	rd, err := protocol.ReportData(ch.Nonce, jwk, "")
	if err != nil {
		return "", ph, err
	}
	q, err := b.sim.Quote(ctx, rd)
	if err != nil {
		return "", ph, err
	}
	ev, err := json.Marshal(protocol.TDXEvidence{Quote: base64.StdEncoding.EncodeToString(q)})
	if err != nil {
		return "", ph, err
	}
	att, err := json.Marshal(protocol.Attestation{
		RuntimeData: protocol.RuntimeData{Nonce: ch.Nonce, TeePubKey: jwk},
		TeeEvidence: protocol.CompositeEvidence{PrimaryEvidence: ev},
	})
	if err != nil {
		return "", ph, err
	}
	code, body, _, err = b.do(ctx, c, http.MethodPost, protocol.PathAttest, att, cookie)
	if err != nil {
		return "", ph, fmt.Errorf("attest: %w", err)
	}
	if code != http.StatusOK {
		return "", ph, fmt.Errorf("attest: status %d: %s", code, body)
	}
	var tr protocol.TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.Token == "" {
		return "", ph, fmt.Errorf("attest: no token in %s", body)
	}
	t2 := time.Now()
	ph.attest = t2.Sub(t1)

	code, body, _, err = b.do(ctx, c, http.MethodGet, b.resource, nil, cookie)
	if err != nil {
		return "", ph, fmt.Errorf("resource: %w", err)
	}
	if code != http.StatusOK {
		return "", ph, fmt.Errorf("resource: status %d: %s", code, body)
	}
	pt, err := protocol.DecryptResource(body, priv)
	if err != nil {
		return "", ph, fmt.Errorf("resource: %w", err)
	}
	if !bytes.Equal(pt, b.secret) {
		return "", ph, fmt.Errorf("resource: decrypted %x, want the stored secret %x", pt, b.secret)
	}
	ph.resource = time.Since(t2)
	return tr.Token, ph, nil
}

// do sends one request, with the session cookie if not nil, and returns
// the status, the body and the session cookie set by the response.
func (b *broker) do(ctx context.Context, c *http.Client, method, path string, body []byte, cookie *http.Cookie) (int, []byte, *http.Cookie, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != nil {
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, protocol.MaxMessageSize+1))
	if err != nil {
		return 0, nil, nil, err
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == protocol.SessionCookie {
			session = ck
		}
	}
	return resp.StatusCode, data, session, nil
}

// checkToken verifies a token with the broker's keys and requires every
// submodule to be affirming: the reference values matched.
func (b *broker) checkToken(tok string) error {
	claims, err := ear.Verify(tok, b.keys, ear.VerifyOptions{})
	if err != nil {
		return err
	}
	if len(claims.Submods) == 0 {
		return errors.New("token without submodules")
	}
	for name, a := range claims.Submods {
		if a.Status != ear.StatusAffirming {
			return fmt.Errorf("submodule %s: status %v, want affirming", name, a.Status)
		}
	}
	return nil
}

// kbsBackends runs f on a fresh SQLite database and a fresh PostgreSQL
// schema (storetest).
func kbsBackends(t *testing.T, f func(t *testing.T, dsn string)) {
	storetest.ForEachBackend(t, f)
}

// TestKBSHandshakeLoad runs -loadtest.kbs.n full handshakes (auth, attest,
// resource) from -loadtest.kbs.c concurrent keep-alive clients, stopping
// early after -loadtest.kbs.d, and logs handshakes/s and the latency of a
// whole handshake. It asserts correctness only: every response is 200 and
// every handshake decrypts the stored secret.
func TestKBSHandshakeLoad(t *testing.T) {
	serveGC(t)
	if testing.Short() {
		t.Skip("load test skipped with -short")
	}
	kbsBackends(t, func(t *testing.T, dsn string) {
		b := startBroker(t, dsn)
		n := max(1, *kbsConcurrency)
		c := client(n)
		defer c.CloseIdleConnections()
		ctx := t.Context()
		// Warm up: the one-time caches, and a check that the results
		// are affirming.
		tok, _, err := b.handshake(ctx, c)
		if err != nil {
			t.Fatalf("warm-up: %v", err)
		}
		if err := b.checkToken(tok); err != nil {
			t.Fatalf("warm-up token: %v", err)
		}

		var (
			next atomic.Int64
			mu   sync.Mutex
			lat  []time.Duration
			ph   []phases
			errs []error
			wg   sync.WaitGroup
		)
		total := *kbsHandshakes
		deadline := time.Now().Add(*kbsDuration)
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		cpu0 := processCPU()
		start := time.Now()
		for range n {
			wg.Go(func() {
				local := make([]time.Duration, 0, total/n+1)
				lph := make([]phases, 0, total/n+1)
				var lerr error
				for time.Now().Before(deadline) {
					i := next.Add(1)
					if i > int64(total) {
						break
					}
					t0 := time.Now()
					_, p, err := b.handshake(ctx, c)
					if err != nil {
						lerr = fmt.Errorf("handshake %d: %w", i, err)
						break
					}
					local = append(local, time.Since(t0))
					lph = append(lph, p)
				}
				mu.Lock()
				lat = append(lat, local...)
				ph = append(ph, lph...)
				if lerr != nil {
					errs = append(errs, lerr)
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		cpu := processCPU() - cpu0
		runtime.ReadMemStats(&ms1)
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if len(lat) == 0 {
			t.Fatal("no handshakes")
		}
		slices.Sort(lat)
		pct := func(d []time.Duration, p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
		step := func(f func(phases) time.Duration) []time.Duration {
			d := make([]time.Duration, len(ph))
			for i, p := range ph {
				d[i] = f(p)
			}
			slices.Sort(d)
			return d
		}
		auth := step(func(p phases) time.Duration { return p.auth })
		attest := step(func(p phases) time.Duration { return p.attest })
		res := step(func(p phases) time.Duration { return p.resource })
		t.Logf("%d handshakes in %v with %d clients on %d CPUs (GOMAXPROCS %d): %.0f handshakes/s, latency p50 %v p90 %v p99 %v max %v",
			len(lat), elapsed.Round(time.Millisecond), n, runtime.NumCPU(), runtime.GOMAXPROCS(0),
			float64(len(lat))/elapsed.Seconds(), pct(lat, 0.50), pct(lat, 0.90), pct(lat, 0.99), lat[len(lat)-1])
		t.Logf("steps p50/p99: auth %v/%v, attest (incl. client key and quote) %v/%v, resource (incl. decryption) %v/%v",
			pct(auth, 0.5), pct(auth, 0.99), pct(attest, 0.5), pct(attest, 0.99), pct(res, 0.5), pct(res, 0.99))
		if cpu > 0 {
			// Client and broker share the process: this bounds what the
			// machine can do with both on it, whatever else runs there
			// (a PostgreSQL server's CPU is not counted).
			per := cpu / time.Duration(len(lat))
			t.Logf("process CPU %v (%.0f%% of %d CPUs): %v per handshake, client included; CPU-bound ceiling %.0f handshakes/s",
				cpu.Round(time.Millisecond), 100*cpu.Seconds()/elapsed.Seconds()/float64(runtime.NumCPU()), runtime.NumCPU(),
				per.Round(time.Microsecond), float64(runtime.NumCPU())/per.Seconds())
		}
		t.Logf("allocated %.0f KiB per handshake, client included; %d GC cycles (%.1f per 100 handshakes, heap goal %.1f MiB)",
			float64(ms1.TotalAlloc-ms0.TotalAlloc)/1024/float64(len(lat)), ms1.NumGC-ms0.NumGC,
			100*float64(ms1.NumGC-ms0.NumGC)/float64(len(lat)), float64(ms1.NextGC)/(1<<20))
		if len(lat) < total && !time.Now().Before(deadline) {
			t.Logf("stopped by -loadtest.kbs.d %v after %d of %d handshakes", *kbsDuration, len(lat), total)
		}
	})
}

// BenchmarkKBSHandshake measures one full handshake (auth, attest,
// resource, each checked) through the loopback listener on SQLite (the
// resource policy from a store.Cache, as serve runs it), with
// b.RunParallel (GOMAXPROCS × -cpu clients; raise with b.SetParallelism
// through -loadtest.kbs.c).
//
//	go test -run '^$' -bench KBSHandshake -count 6 ./internal/loadtest
func BenchmarkKBSHandshake(b *testing.B) {
	serveGC(b)
	br := startBroker(b, "sqlite://"+filepath.Join(b.TempDir(), "tdproof.db"))
	par := max(1, *kbsConcurrency/runtime.GOMAXPROCS(0))
	c := client(par * runtime.GOMAXPROCS(0))
	defer c.CloseIdleConnections()
	ctx := b.Context()
	if tok, _, err := br.handshake(ctx, c); err != nil {
		b.Fatalf("warm-up: %v", err)
	} else if err := br.checkToken(tok); err != nil {
		b.Fatalf("warm-up token: %v", err)
	}
	b.SetParallelism(par)
	b.ResetTimer()
	start := time.Now()
	cpu0 := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := br.handshake(ctx, c); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "handshakes/s")
	if cpu := processCPU() - cpu0; cpu > 0 {
		// Client and broker in one process: an upper bound of the
		// broker's CPU per handshake.
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/handshake")
	}
}
