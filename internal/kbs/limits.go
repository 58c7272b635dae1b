package kbs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tdproof/tdproof/internal/ratelimit"
	"github.com/tdproof/tdproof/kbs/protocol"
)

// Defaults of Limits.
const (
	// DefaultAuthBodyBytes bounds POST /kbs/v0/auth bodies: a Request is
	// {"version", "tee", "extra-params"}, a few hundred bytes.
	DefaultAuthBodyBytes = 8 << 10
	// DefaultAttestBodyBytes bounds POST /kbs/v0/attest bodies (a quote,
	// its event logs and a TEE key); tdproof serve passes --max-body.
	DefaultAttestBodyBytes = 1 << 20
	// DefaultMaxSessions bounds the sessions this broker created that have
	// not expired yet.
	DefaultMaxSessions = 20000
	// DefaultMaxInFlight bounds concurrent attestations (evidence being
	// read and verified).
	DefaultMaxInFlight = 64
	// DefaultSessionPurgeInterval is how often Run deletes expired
	// sessions from the store.
	DefaultSessionPurgeInterval = time.Minute
)

// Limits bound what unauthenticated clients can make a Broker hold. Zero
// values select the defaults.
type Limits struct {
	// AuthBodyBytes and AttestBodyBytes bound the request bodies of
	// /kbs/v0/auth and /kbs/v0/attest; larger bodies are refused (413)
	// after reading at most that many bytes.
	AuthBodyBytes, AttestBodyBytes int64
	// MaxSessions bounds the sessions created by this broker and not yet
	// expired (per process: replicas each have their own bound); /auth
	// answers 503 beyond it.
	MaxSessions int
	// MaxInFlight bounds the concurrent /attest requests; beyond it they
	// answer 503 at once.
	MaxInFlight int
	// RatePerSecond and RateBurst enable a token bucket per client IP
	// address on /auth and /attest (429 when empty). RatePerSecond 0
	// disables it.
	RatePerSecond float64
	RateBurst     int
}

func (l *Limits) setDefaults() error {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.AuthBodyBytes, DefaultAuthBodyBytes)
	def(&l.AttestBodyBytes, DefaultAttestBodyBytes)
	if l.MaxSessions == 0 {
		l.MaxSessions = DefaultMaxSessions
	}
	if l.MaxInFlight == 0 {
		l.MaxInFlight = DefaultMaxInFlight
	}
	if l.AuthBodyBytes < 0 || l.AttestBodyBytes < 0 || l.MaxSessions < 0 || l.MaxInFlight < 0 || l.RatePerSecond < 0 || l.RateBurst < 0 {
		return errors.New("kbs: negative limit")
	}
	if l.RatePerSecond > 0 && l.RateBurst == 0 {
		l.RateBurst = max(1, int(2*l.RatePerSecond))
	}
	return nil
}

// limiter applies Limits.
type limiter struct {
	lim      Limits
	sessions sessionCap
	inFlight chan struct{}
	rate     *ratelimit.Limiter // nil: no rate limit
}

func newLimiter(l Limits, ttl time.Duration) *limiter {
	x := &limiter{lim: l, inFlight: make(chan struct{}, l.MaxInFlight),
		sessions: sessionCap{exp: make([]time.Duration, l.MaxSessions), ttl: ttl, start: time.Now()}}
	if l.RatePerSecond > 0 {
		x.rate = ratelimit.New(l.RatePerSecond, l.RateBurst, 0, nil)
	}
	return x
}

// sessionCap counts the sessions created in the last ttl (on the
// monotonic clock, whatever the broker's clock says) in a ring of their
// expiry times: a session's slot frees when it expires.
type sessionCap struct {
	mu      sync.Mutex
	exp     []time.Duration // since start
	head, n int
	ttl     time.Duration
	start   time.Time
}

// reserve takes a slot for a new session, or returns false when every
// slot is held by a live session.
func (c *sessionCap) reserve() bool {
	now := time.Since(c.start)
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.n > 0 && c.exp[c.head] <= now {
		c.head = (c.head + 1) % len(c.exp)
		c.n--
	}
	if c.n >= len(c.exp) {
		return false
	}
	c.exp[(c.head+c.n)%len(c.exp)] = now + c.ttl
	c.n++
	return true
}

// live returns the number of slots held.
func (c *sessionCap) live() int {
	now := time.Since(c.start)
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for i := range c.n {
		if c.exp[(c.head+i)%len(c.exp)] > now {
			n++
		}
	}
	return n
}

// Problem types of the limits: tdproof's, in the shape of Trustee's
// problem documents ({"type", "detail"}) under Trustee's type prefix.
const (
	problemPayloadTooLarge = "PayloadTooLarge"
	problemTooManyRequests = "TooManyRequests"
	problemOverloaded      = "Overloaded"
)

// limitProblem writes a limit refusal with status and, when retry is
// positive, Retry-After.
func limitProblem(w http.ResponseWriter, status int, name, detail string, retry time.Duration) {
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(protocol.ErrorInfo{Type: protocol.ProblemTypePrefix + name, Detail: detail})
}

// allowRate applies the per-IP rate limit; it writes the refusal and
// returns false when the request may not proceed.
func (x *limiter) allowRate(w http.ResponseWriter, r *http.Request) bool {
	if x.rate == nil {
		return true
	}
	ok, wait := x.rate.Allow(ratelimit.ClientIP(r))
	if !ok {
		limitProblem(w, http.StatusTooManyRequests, problemTooManyRequests, "too many requests from this address: retry later", wait)
	}
	return ok
}

// readLimited reads a body of at most n bytes; a larger one is refused
// with 413 (written here) and an error.
func readLimited(w http.ResponseWriter, r *http.Request, n int64) ([]byte, error) {
	body, err := readAllHint(http.MaxBytesReader(w, r.Body, n), r.ContentLength, n)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			limitProblem(w, http.StatusRequestEntityTooLarge, problemPayloadTooLarge, fmt.Sprintf("request body larger than %d bytes", n), 0)
		} else {
			problem(w, protocol.ProblemSerdeError, "request body: "+err.Error())
		}
		return nil, err
	}
	return body, nil
}

// maxBodyHint bounds the buffer readAllHint allocates on a declared
// length before any byte arrives: a client declaring --max-body bytes
// and sending none makes the broker hold at most this much per request.
const maxBodyHint = 1 << 20

// readAllHint is io.ReadAll of rd, a reader of at most limit bytes,
// reading into one buffer of the declared length (a Content-Length,
// -1 when unknown; never trusted beyond limit, nor beyond maxBodyHint)
// before growing it.
func readAllHint(rd io.Reader, declared, limit int64) ([]byte, error) {
	if declared < 0 || declared > limit {
		return io.ReadAll(rd)
	}
	declared = min(declared, maxBodyHint)
	b := make([]byte, 0, declared+1) // +1: EOF is seen without growing
	for {
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			rest, err := io.ReadAll(rd)
			return append(b, rest...), err
		}
	}
}

// Run deletes the sessions that expired more than sessionPurgeGrace ago
// from the store every interval (0: DefaultSessionPurgeInterval) until
// ctx is done; store errors are
// reported to onErr (nil: ignored) and retried at the next tick.
func (b *Broker) Run(ctx context.Context, interval time.Duration, onErr func(error)) error {
	if interval <= 0 {
		interval = DefaultSessionPurgeInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := b.cfg.Store.DeleteExpiredKBSSessions(ctx, b.cfg.Now().Add(-sessionPurgeGrace)); err != nil && onErr != nil && ctx.Err() == nil {
				onErr(err)
			}
		}
	}
}

// LiveSessions returns how many sessions this broker created that have
// not expired (what Limits.MaxSessions bounds).
func (b *Broker) LiveSessions() int { return b.limits.sessions.live() }
