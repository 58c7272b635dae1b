package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dcaptest"
)

// syncBuffer is a goroutine-safe buffer that reports the first line
// written to it.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	first chan string
	once  sync.Once
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{first: make(chan string, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if line, _, ok := strings.Cut(b.buf.String(), "\n"); ok {
		b.once.Do(func() { b.first <- line })
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serving is a tdproof pccs serve running in process.
type serving struct {
	url            string
	stdout, stderr *syncBuffer
	stop           func() int
}

// servePCCS runs "tdproof pccs serve --listen 127.0.0.1:0 args…" and
// returns once it listens.
func servePCCS(t *testing.T, args ...string) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	s := &serving{stdout: newSyncBuffer(), stderr: newSyncBuffer()}
	done := make(chan int, 1)
	args = append([]string{"pccs", "serve", "--listen", "127.0.0.1:0", "--log-level", "warn"}, args...)
	go func() {
		done <- run(ctx, args, func(string) (string, bool) { return "", false }, bytes.NewReader(nil), s.stdout, s.stderr)
	}()
	select {
	case line := <-s.stdout.first:
		addr, _, _ := strings.Cut(strings.TrimPrefix(line, "pccs: listening on "), " ")
		s.url = addr
	case code := <-done:
		cancel()
		t.Fatalf("tdproof %s exited %d:\n%s", strings.Join(args, " "), code, s.stderr.String())
	}
	var once sync.Once
	code := -1
	s.stop = func() int {
		once.Do(func() { cancel(); code = <-done })
		return code
	}
	t.Cleanup(func() { s.stop() })
	return s
}

// TestPCCSServeEndToEnd: tdproof pccs serve, whose upstream is the fake
// PCS, serves tdproof quote verify: the real quote verifies to TCB not
// supported and a dcaptest quote to UpToDate; repeated verifications and
// a restart on the same directory cost no upstream request; /metrics
// and /healthz answer; the server stops gracefully (exit 0).
func TestPCCSServeEndToEnd(t *testing.T) {
	t.Parallel()
	t.Run("real", func(t *testing.T) {
		t.Parallel()
		upstream, upURL, quote := realPCS(t)
		dir := t.TempDir()
		s := servePCCS(t, "--pccs-url", upURL, "--at", realPCSTime, "--collateral-dir", dir)
		for range 3 {
			args := []string{"quote", "verify", quote, "--pccs-url", s.url, "--at", realPCSTime, "--format", "json"}
			o := invoke(t, nil, args...)
			o.wantCode(t, exitRejected, args...)
			var out verifyOutput
			decodeJSON(t, o, &out)
			if out.Error == nil || out.Error.Code != codeTCBNotSupported || out.Collateral.Path != s.url {
				t.Fatalf("verify via the proxy: error %+v, source %+v", out.Error, out.Collateral)
			}
		}
		if n := upstream.Requests(""); n != 4 {
			t.Errorf("%d upstream requests for three verifications, want 4", n)
		}
		metrics := httpGet(t, s.url+"/metrics")
		for _, want := range []string{
			`tdproof_pccs_requests_total{code="200",route="tdx_tcb"} 3`,
			"tdproof_pcscache_hits_total 8\n", "tdproof_pcscache_misses_total 4\n",
			"tdproof_pcscache_upstream_errors_total 0\n", "tdproof_pcscache_items 4\n",
			`tdproof_pcscache_item_age_seconds{item="tdx-tcb-fmspc-50806f000000",kind="tcb info"} 1.095422e+06`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %q:\n%s", want, metrics)
			}
		}
		if code := s.stop(); code != exitOK {
			t.Fatalf("pccs serve exited %d:\n%s", code, s.stderr.String())
		}
		// Restart offline on the same directory: served from disk.
		s = servePCCS(t, "--offline", "--at", realPCSTime, "--collateral-dir", dir)
		args := []string{"quote", "verify", quote, "--pccs-url", s.url, "--at", realPCSTime}
		invoke(t, nil, args...).wantCode(t, exitRejected, args...)
		if httpGet(t, s.url+"/healthz") != "ok\n" {
			t.Error("healthz")
		}
		if n := upstream.Requests(""); n != 4 {
			t.Errorf("restarted proxy made %d upstream requests", n-4)
		}
		if code := s.stop(); code != exitOK {
			t.Errorf("pccs serve exited %d", code)
		}
	})
	for _, kind := range []dcaptest.QuoteKind{dcaptest.TDXQuoteV4, dcaptest.SGXQuoteV3} {
		t.Run(strings.ReplaceAll(kindName(kind), " ", "_"), func(t *testing.T) {
			t.Parallel()
			p := newPCSFixture(t, kind)
			s := servePCCS(t, "--pccs-url", p.url, "--trusted-root", p.root, "--at", p.at, "--pcs-retries", "0")
			args := []string{"quote", "verify", p.quote, "--pccs-url", s.url, "--trusted-root", p.root, "--at", p.at}
			o := invoke(t, nil, args...)
			o.wantCode(t, exitOK, args...)
			if !strings.Contains(firstLine(o.stdout), "TCB UpToDate") {
				t.Errorf("stdout:\n%s", o.stdout)
			}
			// An upstream 404 (no early-channel collateral) reaches the
			// client as a 404: exit 6.
			args = []string{"quote", "verify", p.quote, "--pccs-url", s.url, "--trusted-root", p.root, "--at", p.at,
				"--update", "early", "--pcs-retries", "0"}
			o = invoke(t, nil, args...)
			o.wantCode(t, exitCollateralUnavailable, args...)
			if !strings.Contains(o.stderr, "HTTP 404") {
				t.Errorf("stderr %q, want the 404", o.stderr)
			}
		})
	}
	// Usage errors.
	for _, args := range [][]string{
		{"pccs", "serve", "--offline"},
		{"pccs", "serve", "--listen", "not-an-address"},
		{"pccs", "serve", "--log-level", "loud"},
		{"pccs"},
	} {
		invoke(t, nil, args...).wantCode(t, exitUsage, args...)
	}
}

func httpGet(t *testing.T, u string) string {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
