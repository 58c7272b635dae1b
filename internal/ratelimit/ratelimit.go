// Package ratelimit is a per-client token-bucket rate limiter with a
// bounded table of clients, for the unauthenticated routes of tdproof's
// servers.
package ratelimit

import (
	"math"
	"net"
	"net/http"
	"sync"
	"time"
)

// DefaultMaxClients bounds the table of clients of a Limiter when New is
// given no bound.
const DefaultMaxClients = 65536

// Limiter allows each client rate requests per second on average, and
// bursts of up to burst requests. It is safe for concurrent use.
type Limiter struct {
	rate, burst float64
	maxClients  int
	now         func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a limiter of rate requests per second per client with bursts
// of burst (at least 1), remembering at most maxClients clients (0:
// DefaultMaxClients). now is the clock (nil: time.Now).
func New(rate float64, burst, maxClients int, now func() time.Time) *Limiter {
	if burst < 1 {
		burst = 1
	}
	if maxClients <= 0 {
		maxClients = DefaultMaxClients
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{rate: rate, burst: float64(burst), maxClients: maxClients, now: now, buckets: map[string]*bucket{}}
}

// Allow takes a token from client's bucket. When the bucket is empty it
// returns false and how long until a token is available.
func (l *Limiter) Allow(client string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[client]
	if b == nil {
		if len(l.buckets) >= l.maxClients {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[client] = b
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if l.rate <= 0 {
		return false, time.Hour
	}
	wait := time.Duration(math.Ceil((1 - b.tokens) / l.rate * float64(time.Second)))
	return false, wait
}

// refill credits the time since the bucket's last refill. A now before
// it (a concurrent caller read the clock earlier but locked later)
// credits nothing and leaves last alone, so no interval is credited
// twice.
func (l *Limiter) refill(b *bucket, now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt*l.rate)
		b.last = now
	}
}

// evict makes room in a full table: it drops every client whose bucket
// has refilled (forgetting it changes nothing) and, if none has, an
// arbitrary one (which then starts again with a full bucket).
func (l *Limiter) evict(now time.Time) {
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) < l.maxClients {
		return
	}
	for k := range l.buckets {
		delete(l.buckets, k)
		return
	}
}

// Clients returns the number of clients remembered.
func (l *Limiter) Clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// ClientIP returns the client key of r: the IP address of the connection's
// peer (proxy headers are not trusted).
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
