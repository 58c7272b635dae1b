package loadtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/verifiersvc"
)

// floorServerArg, as the first argument given to TestHelperServe, starts
// the floor server instead of tdproof serve.
const floorServerArg = "loadtest-floor-server"

// runFloorServer serves the least any verification service written on
// net/http does per POST /v1/verify, with tdproof serve's garbage-collection
// target and pooled buffers: it reads the request, hex-decodes
// its quote, hashes the quote's signed region (632 bytes) with SHA-256
// and verifies one P-256 signature, hashes a payload the size of an EAR
// token's signing input (4 KiB) and makes one P-256 signature, and writes
// a response of the size tdproof writes (args[0], bytes) holding the
// signature. Its CPU per request, measured as tdproof serve's is, is the
// floor of the service beside the floor of the cryptography alone.
func runFloorServer(ctx context.Context, args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "floor server: want the response size")
		return 2
	}
	size, err := strconv.Atoi(args[0])
	if err != nil || size < 64 || size > 1<<20 {
		fmt.Fprintln(os.Stderr, "floor server: bad response size", args[0])
		return 2
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	signed := make([]byte, 632)
	h0 := sha256.Sum256(signed)
	sig, err := ecdsa.SignASN1(rand.Reader, key, h0[:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(verifiersvc.GCPercent) // as tdproof serve runs
	}
	payload := make([]byte, 4096)
	prefix := []byte(`"quote":"`)
	bodies := sync.Pool{New: func() any { return new(bytes.Buffer) }}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := bodies.Get().(*bytes.Buffer)
		defer func() { buf.Reset(); bodies.Put(buf) }()
		if n := r.ContentLength; n > 0 && n <= 1<<20 {
			buf.Grow(int(n) + bytes.MinRead)
		}
		if _, err := buf.ReadFrom(io.LimitReader(r.Body, 1<<20)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body := buf.Bytes()
		i := bytes.Index(body, prefix)
		if i < 0 {
			http.Error(w, "no quote", http.StatusBadRequest)
			return
		}
		rest := body[i+len(prefix):]
		end := bytes.IndexByte(rest, '"')
		if end < 0 {
			http.Error(w, "unterminated quote", http.StatusBadRequest)
			return
		}
		quote := make([]byte, hex.DecodedLen(end))
		if _, err := hex.Decode(quote, rest[:end]); err != nil || len(quote) < len(signed) {
			http.Error(w, "bad quote", http.StatusBadRequest)
			return
		}
		copy(signed, quote[:len(signed)])
		hq := sha256.Sum256(signed)
		if hq == h0 || !ecdsa.VerifyASN1(&key.PublicKey, h0[:], sig) {
			// (hq == h0 only for an all-zero signed region.)
			http.Error(w, "not verified", http.StatusUnauthorized)
			return
		}
		copy(payload, hq[:])
		hp := sha256.Sum256(payload)
		out, err := ecdsa.SignASN1(rand.Reader, key, hp[:])
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		rb := bodies.Get().(*bytes.Buffer)
		defer func() { rb.Reset(); bodies.Put(rb) }()
		rb.Grow(size)
		resp := rb.AvailableBuffer()
		resp = append(resp, `{"token":"`...)
		resp = base64.RawURLEncoding.AppendEncode(resp, out)
		for len(resp) < size-2 {
			resp = append(resp, 'a')
		}
		resp = append(resp, `"}`...)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
		_, _ = w.Write(resp)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("serve: listening on http://%s (floor server)\n", ln.Addr())
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// floorServer is the floor server in a child process, ready for load.
type floorServer struct {
	pid      int
	send     func() error
	respSize int
}

// startFloor starts the floor server as a child process answering
// respSize bytes to POST /v1/verify with body, and sends it one request.
func startFloor(t *testing.T, body []byte, respSize int) *floorServer {
	t.Helper()
	cmd, url := startServeChild(t, floorServerArg, strconv.Itoa(respSize))
	c := client(*serveConcurrency)
	t.Cleanup(c.CloseIdleConnections)
	s := &service{url: url + "/v1/verify", body: body}
	send := func() error {
		code, b, err := s.send(c, false)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("floor server: status %d: %s", code, b)
		}
		return err
	}
	if err := send(); err != nil {
		t.Fatal(err)
	}
	return &floorServer{pid: cmd.Process.Pid, send: send, respSize: respSize}
}

// load loads the floor server for one round, as serverLoad loads tdproof
// serve.
func (f *floorServer) load(t *testing.T) loadResult {
	t.Helper()
	return serverLoad(t, f.pid, *serveConcurrency, f.send)
}

// responseSize returns the size of one response of s.
func responseSize(t *testing.T, c *http.Client, s *service) int {
	t.Helper()
	code, b, err := s.send(c, true)
	if err != nil || code != http.StatusOK {
		t.Fatalf("%s: status %d %v: %s", s.url, code, err, b)
	}
	return len(b)
}

// describeFloor reports the floor server's figures (floor, over all
// rounds) and tdproof serve's CPU per request (serve) against them and
// against one P-256 verification (p256, ns).
func describeFloor(serve, floor loadResult, respSize int, p256 float64) string {
	msg := fmt.Sprintf("floor server (net/http; hex request, one P-256 verify, one P-256 sign, %d-byte response): %.0f/s, p99 %v",
		respSize, floor.perSec(), pct(floor.lat, 0.99))
	if f, per := floor.perRequest(), serve.perRequest(); f > 0 && per > 0 {
		msg += fmt.Sprintf("; CPU %v per request = %.2f× one P-256 verify; tdproof serve %.2f× the floor server",
			f.Round(time.Microsecond), ratio(f, p256), ratio(per, float64(f)))
	}
	return msg
}
