package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tdproof/tdproof/kbs/protocol"
)

// maxAttackRSS is the bound on the broker's peak resident memory under
// the attacks of TestKBSMemoryBoundedUnderAttack (issue: 64 concurrent
// 15 MiB /auth bodies drove it to 3.5 GiB).
const maxAttackRSS = 256 << 20

// peakRSS returns the peak resident set size of process pid (VmHWM), or
// false where /proc does not say.
func peakRSS(pid int) (int64, bool) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// streamZeros is a request body of n zero bytes, never held in memory.
type streamZeros struct{ n int64 }

func (z *streamZeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), z.n)
	clear(p[:k])
	z.n -= k
	return int(k), nil
}

// attackResult counts the answers of an attack by status (0: transport
// error, e.g. the server closed the connection on an oversized body).
type attackResult struct {
	mu    sync.Mutex
	codes map[int]int
}

func (r *attackResult) add(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.codes == nil {
		r.codes = map[int]int{}
	}
	r.codes[code]++
}

// attack sends n POST /kbs/v0/auth from c concurrent clients; body makes
// each request's body. It checks that every refusal is a Trustee-shaped
// problem document.
func attack(t *testing.T, url string, n, c int, body func() io.Reader) *attackResult {
	t.Helper()
	res := &attackResult{}
	var next atomic.Int64
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c}}
	defer hc.CloseIdleConnections()
	for range c {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				resp, err := hc.Post(url+protocol.PathAuth, "application/json", body())
				if err != nil {
					res.add(0)
					continue
				}
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				res.add(resp.StatusCode)
				if resp.StatusCode != 200 {
					var info protocol.ErrorInfo
					if err := json.Unmarshal(b, &info); err != nil || !strings.HasPrefix(info.Type, protocol.ProblemTypePrefix) || info.Detail == "" {
						t.Errorf("refusal %d is not a problem document: %q", resp.StatusCode, b)
					}
				}
			}
		})
	}
	wg.Wait()
	return res
}

// watchHealth polls /healthz every 100 ms until stop is closed and
// returns how many polls failed (no 200 within 5 s).
func watchHealth(url string, stop <-chan struct{}) <-chan [2]int {
	out := make(chan [2]int, 1)
	go func() {
		hc := &http.Client{Timeout: 5 * time.Second}
		var ok, failed int
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				out <- [2]int{ok, failed}
				return
			case <-tick.C:
			}
			resp, err := hc.Get(url + "/healthz")
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != 200 {
				failed++
			} else {
				ok++
			}
		}
	}()
	return out
}

// TestKBSMemoryBoundedUnderAttack: a broker process under the attacks of
// issue 16 (64 concurrent 15 MiB POST /kbs/v0/auth; then thousands of
// /auth) keeps its peak RSS ≤ 256 MiB, answers /healthz throughout, and
// refuses with problem documents: 413 for the bodies, 429 from the
// default per-address rate limit, and, with the rate limit off, 503
// beyond --kbs-max-sessions.
func TestKBSMemoryBoundedUnderAttack(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the broker attack test")
	}
	if _, ok := peakRSS(os.Getpid()); !ok {
		t.Skip("no /proc/PID/status VmHWM on this system: cannot measure RSS")
	}
	kek := filepath.Join(t.TempDir(), "kek.hex")
	if err := os.WriteFile(kek, []byte(strings.Repeat("ab", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	authBody, _ := json.Marshal(protocol.NewRequest(protocol.TeeTdx))
	small := func() io.Reader { return bytes.NewReader(authBody) }
	huge := func() io.Reader { return &streamZeros{n: 15 << 20} }

	for _, c := range []struct {
		name  string
		args  []string
		check func(t *testing.T, r *attackResult, d time.Duration)
	}{
		{"default rate limit", nil, func(t *testing.T, r *attackResult, d time.Duration) {
			// The burst of 20, then 10/s (the bodies phase took some).
			most := defaultKBSBurst + int(d.Seconds()*defaultKBSRate) + 1
			if r.codes[200] < 1 || r.codes[200] > most || r.codes[200]+r.codes[http.StatusTooManyRequests] != 3000 {
				t.Errorf("3000 /auth from one address in %v: %v, want at most %d 200 and the rest 429", d, r.codes, most)
			}
		}},
		{"session cap", []string{"--kbs-rate-limit", "0", "--kbs-max-sessions", "1000"}, func(t *testing.T, r *attackResult, _ time.Duration) {
			if r.codes[200] != 1000 || r.codes[http.StatusServiceUnavailable] != 2000 {
				t.Errorf("3000 /auth with --kbs-max-sessions 1000: %v, want 1000 200 and 2000 503", r.codes)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"--role", "all", "--kek-file", kek, "--data-dir", t.TempDir()}, c.args...)
			p := startServeProcess(t, args...)
			stop := make(chan struct{})
			health := watchHealth(p.url, stop)

			start := time.Now()
			big := attack(t, p.url, 64, 64, huge)
			for code, n := range big.codes {
				if code != 0 && code != http.StatusRequestEntityTooLarge && code != http.StatusTooManyRequests {
					t.Errorf("15 MiB /auth: %d answers %d", n, code)
				}
			}
			many := attack(t, p.url, 3000, 64, small)
			close(stop)
			h := <-health
			c.check(t, many, time.Since(start))
			rss, ok := peakRSS(p.cmd.Process.Pid)
			if !ok {
				t.Fatal("cannot read the server's VmHWM")
			}
			t.Logf("peak RSS %.1f MiB; 15 MiB bodies %v; 3000 /auth %v; /healthz %d ok, %d failed", float64(rss)/(1<<20), big.codes, many.codes, h[0], h[1])
			if rss > maxAttackRSS {
				t.Errorf("peak RSS %d MiB > %d MiB", rss>>20, maxAttackRSS>>20)
			}
			if h[1] > 0 || h[0] == 0 {
				t.Errorf("/healthz: %d answered, %d failed during the attack", h[0], h[1])
			}
		})
	}
}
