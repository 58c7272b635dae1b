package loadtest

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/verifier"
)

var (
	maxRequests = flag.Int("loadtest.n", 300, "stop the load test after `N` requests")
	maxDuration = flag.Duration("loadtest.d", 3*time.Second, "stop the load test after `DURATION`")
	concurrency = flag.Int("loadtest.c", 4, "`N` concurrent keep-alive clients")
)

// service is a verifier service on a loopback listener.
type service struct {
	url   string
	body  []byte // the POST /v1/verify request
	nonce string
	jwks  []byte
	now   time.Time
}

// startService builds a verifier over a dcaptest TDX fixture with
// in-memory collateral, as verifiersvc's tests do, and serves it on
// 127.0.0.1:0 until the test ends.
func startService(tb testing.TB) *service { return startServiceHandler(tb, nil) }

// startServiceHandler is startService, also storing the service's handler
// in handlerOnly when it is not nil.
func startServiceHandler(tb testing.TB, handlerOnly *http.Handler) *service {
	tb.Helper()
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	q, err := f.BuildQuote()
	if err != nil {
		tb.Fatal(err)
	}
	col, err := f.BuildCollateral()
	if err != nil {
		tb.Fatal(err)
	}
	now := f.Now
	clock := func() time.Time { return now }
	k, err := ear.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := ear.NewKeySet(k)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := ear.NewSigner(keys, ear.WithClock(clock))
	if err != nil {
		tb.Fatal(err)
	}
	src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return col, nil })
	v, err := verifier.New(src, nil, signer, verifier.WithClock(clock), verifier.WithTrustedRoot(f.PKI.Root.Certificate))
	if err != nil {
		tb.Fatal(err)
	}
	jwks, err := keys.JWKS()
	if err != nil {
		tb.Fatal(err)
	}
	svc, err := verifiersvc.New(v, func() []byte { return jwks }, verifiersvc.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	if handlerOnly != nil {
		*handlerOnly = svc
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ctx, ln) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			tb.Errorf("Serve: %v", err)
		}
	})
	const nonce = "6e6f6e6365"
	body, err := json.Marshal(map[string]string{"quote": hex.EncodeToString(q.Raw), "nonce": nonce})
	if err != nil {
		tb.Fatal(err)
	}
	return &service{url: "http://" + ln.Addr().String() + "/v1/verify", body: body, nonce: nonce, jwks: jwks, now: now}
}

// client returns an HTTP client keeping up to n connections alive.
func client(n int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        n,
			MaxIdleConnsPerHost: n,
			MaxConnsPerHost:     n,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

// verify sends one request and returns the status and body.
func (s *service) verify(c *http.Client) (int, []byte, error) {
	return s.send(c, true)
}

// send sends one request and returns the status and, if keep or the
// status is not 200, the body; otherwise the body is read and discarded,
// so that the load generator spends little of the CPU it shares with the
// service.
func (s *service) send(c *http.Client, keep bool) (int, []byte, error) {
	resp, err := c.Post(s.url, "application/json", bytes.NewReader(s.body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if !keep && resp.StatusCode == http.StatusOK {
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// checkResponse decodes a 200 response and verifies its token with the
// JWKS: authentic, allowed, carrying the nonce.
func (s *service) checkResponse(b []byte) error {
	var out verifiersvc.NativeResponse
	if err := json.Unmarshal(b, &out); err != nil {
		return err
	}
	if !out.Result.Authentic {
		return fmt.Errorf("not authentic: %s", out.Result.Reason)
	}
	pub, err := ear.ParseJWKS(s.jwks)
	if err != nil {
		return err
	}
	nonce, err := hex.DecodeString(s.nonce)
	if err != nil {
		return err
	}
	_, err = ear.Verify(out.Token, pub, ear.VerifyOptions{Now: func() time.Time { return s.now }, ExpectedNonce: verifier.NonceClaim(nonce)})
	return err
}

// TestLoad runs a bounded load (-loadtest.n requests or -loadtest.d,
// whichever comes first) and logs throughput and latency. It asserts
// correctness only: every response is 200 and every 500th token verifies.
func TestLoad(t *testing.T) {
	serveGC(t)
	if testing.Short() {
		t.Skip("load test skipped with -short")
	}
	s := startService(t)
	n := *concurrency
	c := client(n)
	defer c.CloseIdleConnections()
	// Warm up: one connection per client, and the one-time caches.
	if code, b, err := s.verify(c); err != nil || code != http.StatusOK {
		t.Fatalf("warm-up: %d %s %v", code, b, err)
	} else if err := s.checkResponse(b); err != nil {
		t.Fatalf("warm-up response: %v", err)
	}

	var (
		next    atomic.Int64
		checked atomic.Int64
		mu      sync.Mutex
		lat     []time.Duration
		errs    []error
		wg      sync.WaitGroup
	)
	deadline := time.Now().Add(*maxDuration)
	start := time.Now()
	for range n {
		wg.Go(func() {
			local := make([]time.Duration, 0, *maxRequests/n+1)
			var lerr error
			for time.Now().Before(deadline) {
				i := next.Add(1)
				if i > int64(*maxRequests) {
					break
				}
				t0 := time.Now()
				code, b, err := s.send(c, i%500 == 0)
				local = append(local, time.Since(t0))
				switch {
				case err != nil:
					lerr = err
				case code != http.StatusOK:
					lerr = fmt.Errorf("request %d: status %d: %s", i, code, b)
				case i%500 == 0:
					if err := s.checkResponse(b); err != nil {
						lerr = fmt.Errorf("request %d: %w", i, err)
					}
					checked.Add(1)
				}
				if lerr != nil {
					break
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			if lerr != nil {
				errs = append(errs, lerr)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if len(lat) == 0 {
		t.Fatal("no requests")
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	t.Logf("%d verifications in %v with %d clients on %d CPUs (GOMAXPROCS %d): %.0f/s, latency p50 %v p90 %v p99 %v max %v; %d tokens verified",
		len(lat), elapsed.Round(time.Millisecond), n, runtime.NumCPU(), runtime.GOMAXPROCS(0),
		float64(len(lat))/elapsed.Seconds(), pct(0.50), pct(0.90), pct(0.99), lat[len(lat)-1], checked.Load())
	if checked.Load() == 0 && len(lat) >= 500 {
		t.Error("no token was checked")
	}
}

// BenchmarkVerifyHTTP measures POST /v1/verify through the loopback
// listener with b.RunParallel (GOMAXPROCS × -cpu clients; raise with
// b.SetParallelism through -loadtest.c).
func BenchmarkVerifyHTTP(b *testing.B) {
	serveGC(b)
	s := startService(b)
	par := max(1, *concurrency/runtime.GOMAXPROCS(0))
	c := client(par * runtime.GOMAXPROCS(0))
	defer c.CloseIdleConnections()
	if code, body, err := s.verify(c); err != nil || code != http.StatusOK {
		b.Fatalf("warm-up: %d %s %v", code, body, err)
	} else if err := s.checkResponse(body); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(par)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			code, body, err := s.send(c, false)
			if err != nil || code != http.StatusOK {
				b.Errorf("%d %s %v", code, body, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "verifications/s")
}

// BenchmarkVerifyHandler runs POST /v1/verify through the service's
// handler without a connection (httptest): the user-space cost of a
// verification request — decoding, verification, appraisal, the EAR
// token, the response — apart from net/http's and the kernel's.
func BenchmarkVerifyHandler(b *testing.B) {
	serveGC(b)
	var h http.Handler
	s := startServiceHandler(b, &h)
	// What is measured is an allowed verification: check one answer.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/verify", bytes.NewReader(s.body)))
	if rec.Code != http.StatusOK {
		b.Fatalf("warm-up: %d %s", rec.Code, rec.Body)
	}
	if err := s.checkResponse(rec.Body.Bytes()); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/verify", bytes.NewReader(s.body)))
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
