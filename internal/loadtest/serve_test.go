package loadtest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/cli"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/internal/store/storetest"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pcstest"
)

var (
	serveRequests    = flag.Int("loadtest.serve.n", 300, "stop each tdproof serve load test after `N` requests")
	serveDuration    = flag.Duration("loadtest.serve.d", 5*time.Second, "stop each tdproof serve load test after `DURATION`")
	serveConcurrency = flag.Int("loadtest.serve.c", 4, "`N` concurrent keep-alive clients against tdproof serve")
)

// serveArgsEnv carries the arguments of a tdproof serve child process
// (JSON) to TestHelperServe.
const serveArgsEnv = "TDPROOF_LOADTEST_SERVE_ARGS"

// serveReferenceValues is how many reference values the store holds.
const serveReferenceValues = 60

// TestHelperServe is not a test: started by startServe as a child
// process, it runs tdproof's command line (cli.Main) with the arguments
// of serveArgsEnv until SIGTERM.
func TestHelperServe(t *testing.T) {
	enc := os.Getenv(serveArgsEnv)
	if enc == "" {
		t.Skip("helper process for TestServeLoad")
	}
	var args []string
	if err := json.Unmarshal([]byte(enc), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var prof *os.File
	if name := os.Getenv(serveProfileEnv); name != "" {
		f, err := os.Create(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		prof = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	var code int
	if len(args) > 0 && args[0] == floorServerArg {
		code = runFloorServer(ctx, args[1:])
	} else {
		code = cli.Main(ctx, args, strings.NewReader(""), os.Stdout, os.Stderr)
	}
	stop()
	if prof != nil {
		pprof.StopCPUProfile()
		if err := prof.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// servedProduct is a tdproof serve child process and what its load needs.
type servedProduct struct {
	cmd  *exec.Cmd
	url  string // http://127.0.0.1:port
	body []byte // POST /v1/verify request
	now  time.Time
}

// startServe prepares what a user of tdproof serve has: a database at dsn
// with serveReferenceValues reference values (the fixture TD's MRTD and
// RTMR0–2 among other accepted values, and user values) and no policy,
// so the built-in default applies; collateral from a PCS (a fake one on
// loopback, fetched once); then starts tdproof serve in a child process
// on 127.0.0.1:0 and waits for it to listen.
func startServe(t *testing.T, dsn string) *servedProduct {
	t.Helper()
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := f.BuildQuote()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.BuildRawCollateral()
	if err != nil {
		t.Fatal(err)
	}
	fake := pcstest.New()
	fake.AddCollateral(pcs.Key{TEE: pcs.TEETDX, FMSPC: f.Platform.Spec.FMSPC, CA: f.Platform.Spec.CA}, rc)
	pcsSrv := httptest.NewServer(fake)
	t.Cleanup(pcsSrv.Close)

	st, err := store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	td := q.Parsed.TD
	measured := [][2]string{
		{"tdx.mr_td", hex.EncodeToString(td.MRTD[:])},
		{"tdx.rtmr_0", hex.EncodeToString(td.RTMRs[0][:])},
		{"tdx.rtmr_1", hex.EncodeToString(td.RTMRs[1][:])},
		{"tdx.rtmr_2", hex.EncodeToString(td.RTMRs[2][:])},
	}
	for i := range serveReferenceValues {
		name, value := fmt.Sprintf("user.component_%d", i), fmt.Sprintf("%096x", i+1)
		if i < len(measured) {
			name, value = measured[i][0], measured[i][1]
		}
		if _, err := st.AddReferenceValue(t.Context(), store.ReferenceValue{Name: name, Values: []string{fmt.Sprintf("%096x", i+1000), value}, Source: "loadtest"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(root, f.PKI.Root.PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, addr := startServeChild(t, "serve", "--listen", "127.0.0.1:0", "--log-level", "warn", "--role", "verifier", "--db", dsn,
		"--pccs-url", pcsSrv.URL, "--trusted-root", root, "--at", f.Now.UTC().Format(time.RFC3339), "--pcs-retries", "0")
	body, err := json.Marshal(map[string]string{"quote": hex.EncodeToString(q.Raw)})
	if err != nil {
		t.Fatal(err)
	}
	return &servedProduct{cmd: cmd, url: addr, body: body, now: f.Now}
}

// serveProfileEnv, when set to a file name, makes tdproof serve child
// processes write a CPU profile of their whole run there (the server
// alone, without the load generator): a child started by a test gets
// the name with the test's name appended.
const serveProfileEnv = "TDPROOF_LOADTEST_CPUPROFILE"

// startServeChild starts tdproof's command line with args in a child
// process (TestHelperServe), stops it when the test ends, waits for its
// first line "serve: listening on URL …" and returns the process and
// URL.
func startServeChild(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	enc, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServe$", "-test.count=1", "-test.timeout=30m")
	env := []string{serveArgsEnv + "=" + string(enc)}
	if prof := os.Getenv(serveProfileEnv); prof != "" {
		name := prof + "." + strings.ReplaceAll(t.Name(), "/", "_")
		if len(args) > 0 && args[0] == floorServerArg {
			name += ".floor"
		}
		env = append(env, serveProfileEnv+"="+name)
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, cli.EnvPrefix) && !strings.HasPrefix(kv, serveProfileEnv+"=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &lockedWriter{w: &stderr}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var line string
	select {
	case line = <-first:
	case <-time.After(60 * time.Second):
		t.Fatalf("tdproof serve did not listen within 60 s: %s", stderr.String())
	}
	addr, _, _ := strings.Cut(strings.TrimPrefix(line, "serve: listening on "), " ")
	if !strings.HasPrefix(addr, "http://127.0.0.1:") {
		t.Fatalf("tdproof serve: first line %q: %s", line, stderr.String())
	}
	return cmd, addr
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// check sends one request and checks the whole answer: allowed under the
// default policy with the four measured reference values matched, and a
// token that verifies with the service's JWKS.
func (p *servedProduct) check(t *testing.T, c *http.Client) {
	t.Helper()
	s := &service{url: p.url + "/v1/verify", body: p.body}
	code, b, err := s.verify(c)
	if err != nil || code != http.StatusOK {
		t.Fatalf("/v1/verify: %d %s %v", code, b, err)
	}
	var out verifiersvc.NativeResponse
	if err := json.Unmarshal(b, &out); err != nil || out.Result == nil {
		t.Fatalf("/v1/verify: %v: %s", err, b)
	}
	if !out.Result.Allow {
		t.Fatalf("not allowed: %s %v", out.Result.Reason, out.Result.Appraisal.Failed)
	}
	matched := 0
	for _, cmp := range out.Result.Appraisal.Comparisons {
		if cmp.Outcome == "match" {
			matched++
		}
	}
	if matched != 4 {
		t.Fatalf("%d reference values matched, want 4", matched)
	}
	resp, err := c.Get(p.url + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ear.ParseJWKS(jwks)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ear.Verify(out.Token, pub, ear.VerifyOptions{Now: func() time.Time { return p.now }}); err != nil {
		t.Fatalf("token: %v", err)
	}
}

// TestServeLoad loads tdproof serve as users run it — a child process
// started with the command line, a real listener, a database with 60
// reference values and the default policy, collateral fetched once from a
// PCS — with POST /v1/verify of a repeat-platform quote from concurrent
// keep-alive clients, on SQLite and (with TDPROOF_TEST_POSTGRES_DSN)
// PostgreSQL. It logs req/s, p50/p99 latency, the server's CPU per request
// (from /proc) and, measured in the same run, one P-256 verification and
// one P-256 signature (what dcap's BenchmarkP256Verify and
// BenchmarkP256Sign measure) and the ratios of the server's CPU per
// request to the verification and to the two together; then the floor
// server's figures under the same load. With -loadtest.serve.rounds N the
// load is split into N rounds, each of them serve's load, the floor
// server's and the P-256 measurements, and each round's ratios and their
// median and range are logged too. It asserts correctness only.
//
//	go test -run TestServeLoad -v ./internal/loadtest -loadtest.serve.n 50000 -loadtest.serve.d 15s -loadtest.serve.c 8 -loadtest.serve.rounds 5
func TestServeLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped with -short")
	}
	for _, mode := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "data", "tdproof.db") }},
		{"postgres", func(t *testing.T) string { return storetest.PostgresDSN(t) }},
	} {
		t.Run(mode.name, func(t *testing.T) {
			p := startServe(t, mode.dsn(t))
			n := *serveConcurrency
			c := client(n)
			defer c.CloseIdleConnections()
			p.check(t, c) // warms the collateral and the verifier's caches
			s := &service{url: p.url + "/v1/verify", body: p.body}
			send := func() error {
				code, b, err := s.send(c, false)
				if err == nil && code != http.StatusOK {
					err = fmt.Errorf("status %d: %s", code, b)
				}
				return err
			}
			fl := startFloor(t, p.body, responseSize(t, c, s))
			var serves, floors []loadResult
			var p256 []p256Floor
			var toBoth, toVerify, toFloor []float64 // per round
			for r := range rounds() {
				sr := serverLoad(t, p.cmd.Process.Pid, n, send)
				fr := fl.load(t)
				pf := measureP256()
				serves, floors, p256 = append(serves, sr), append(floors, fr), append(p256, pf)
				per, fper := sr.perRequest(), fr.perRequest()
				toBoth, toVerify, toFloor = append(toBoth, ratio(per, pf.both())), append(toVerify, ratio(per, pf.verify)), append(toFloor, ratio(per, float64(fper)))
				if rounds() > 1 {
					t.Logf("round %d: %d requests, %.0f/s, p99 %v; server CPU %v per request; P-256 verify %v, sign %v: %.2f× the verify, %.2f× verify + sign; floor server CPU %v per request: serve %.2f× it",
						r+1, len(sr.lat), sr.perSec(), pct(sr.lat, 0.99), per.Round(time.Microsecond),
						time.Duration(pf.verify).Round(time.Microsecond), time.Duration(pf.sign).Round(time.Microsecond),
						toVerify[r], toBoth[r], fper.Round(time.Microsecond), toFloor[r])
				}
			}
			p.check(t, c)
			sr, fr, pf := merge(serves), merge(floors), meanP256(p256)
			same := "same run"
			if rounds() > 1 {
				same = fmt.Sprintf("mean of %d rounds alternated with the load", rounds())
			}
			msg := fmt.Sprintf("tdproof serve (%s, %d reference values, default policy): %d verifications in %v with %d clients on %d CPUs: %.0f/s, latency p50 %v p99 %v max %v",
				mode.name, serveReferenceValues, len(sr.lat), sr.elapsed.Round(time.Millisecond), n, runtime.NumCPU(),
				sr.perSec(), pct(sr.lat, 0.50), pct(sr.lat, 0.99), sr.lat[len(sr.lat)-1])
			if per := sr.perRequest(); per > 0 {
				msg += fmt.Sprintf("; server CPU %v = %v per request; one P-256 verify %v, one P-256 sign %v (%s): %.2f× the verify, %.2f× verify + sign",
					sr.cpu.Round(time.Millisecond), per.Round(time.Microsecond), time.Duration(pf.verify).Round(time.Microsecond),
					time.Duration(pf.sign).Round(time.Microsecond), same, ratio(per, pf.verify), ratio(per, pf.both()))
			}
			t.Log(msg)
			t.Log(describeFloor(sr, fr, fl.respSize, pf.verify))
			if rounds() > 1 {
				t.Logf("per round: serve ÷ (verify + sign) %s; ÷ verify %s; ÷ floor server %s",
					spread(toBoth, "%.2f×"), spread(toVerify, "%.2f×"), spread(toFloor, "%.2f×"))
			}
		})
	}
}

// runLoad sends requests from n concurrent goroutines until max requests
// or the duration, and returns the sorted latencies.
func runLoad(n, maxN int, d time.Duration, send func(i int64) error) ([]time.Duration, time.Duration, error) {
	var (
		next atomic.Int64
		mu   sync.Mutex
		lat  []time.Duration
		errs []error
		wg   sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for range n {
		wg.Go(func() {
			local := make([]time.Duration, 0, maxN/n+1)
			var lerr error
			for time.Now().Before(deadline) {
				i := next.Add(1)
				if i > int64(maxN) {
					break
				}
				t0 := time.Now()
				lerr = send(i)
				local = append(local, time.Since(t0))
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
		return nil, 0, err
	}
	if len(lat) == 0 {
		return nil, 0, errors.New("no requests")
	}
	slices.Sort(lat)
	return lat, elapsed, nil
}

func pct(lat []time.Duration, p float64) time.Duration {
	return lat[min(len(lat)-1, int(p*float64(len(lat))))]
}

// p256VerifyNs measures one P-256 verification with SHA-256 over a
// message the size of a TDX v4 quote's signed region (632 bytes), as
// dcap's BenchmarkP256Verify does, in ns of this process's CPU time (wall
// time where that cannot be read): on a shared machine, wall time per
// verification includes waiting for a CPU, which a server's CPU time per
// request does not.
func p256VerifyNs() float64 {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	msg := make([]byte, 632)
	h := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		panic(err)
	}
	return cpuNsPerOp(func(b *testing.B) {
		h := sha256.Sum256(msg)
		if !ecdsa.Verify(&key.PublicKey, h[:], new(big.Int).Set(r), new(big.Int).Set(s)) {
			b.Fatal("signature does not verify")
		}
	})
}

// p256SignNs measures one P-256 signature (hedged with crypto/rand, as
// the EAR signer makes it) of the SHA-256 of 632 bytes, as dcap's
// BenchmarkP256Sign does, in the same unit as p256VerifyNs. Issue 15's
// floor of a request is one verification and one signature.
func p256SignNs() float64 {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	msg := make([]byte, 632)
	return cpuNsPerOp(func(b *testing.B) {
		h := sha256.Sum256(msg)
		if _, _, err := ecdsa.Sign(rand.Reader, key, h[:]); err != nil {
			b.Fatal(err)
		}
	})
}

// cpuNsPerOp benchmarks op, returning this process's CPU time per op in
// ns (wall time where that cannot be read).
func cpuNsPerOp(op func(b *testing.B)) float64 {
	var cpuPerOp float64
	res := testing.Benchmark(func(b *testing.B) {
		cpu0 := processCPU()
		for b.Loop() {
			op(b)
		}
		if cpu := processCPU() - cpu0; cpu > 0 {
			cpuPerOp = float64(cpu.Nanoseconds()) / float64(b.N)
		}
	})
	if cpuPerOp > 0 {
		return cpuPerOp
	}
	return float64(res.T.Nanoseconds()) / float64(res.N)
}
