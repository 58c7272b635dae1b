package ratelimit

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestLimiter(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := New(2, 3, 0, c.now)
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("after the burst: %v, wait %v; want refused, 500ms", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("another client was limited by a's bucket")
	}
	c.t = c.t.Add(500 * time.Millisecond)
	if ok, _ := l.Allow("a"); !ok {
		t.Error("a token was not refilled after 1/rate")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Error("more than one token refilled")
	}
	c.t = c.t.Add(time.Hour)
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("refill beyond the burst: request %d refused", i+1)
		}
	}
	if ok, _ := l.Allow("a"); ok {
		t.Error("the bucket refilled beyond the burst")
	}
	zero := New(0, 1, 0, c.now)
	zero.Allow("x")
	if ok, wait := zero.Allow("x"); ok || wait <= 0 {
		t.Errorf("rate 0: %v %v", ok, wait)
	}
}

// TestLimiterClockOrder: a caller whose clock reading is older than the
// bucket's last refill (it locked later) gets no tokens for an interval
// already credited.
func TestLimiterClockOrder(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := New(1, 1, 0, c.now)
	l.Allow("a") // bucket empty at t=1000
	c.t = c.t.Add(time.Second)
	if ok, _ := l.Allow("a"); !ok { // t=1001: one token credited
		t.Fatal("no token after 1s")
	}
	c.t = c.t.Add(-time.Second) // a late caller with t=1000
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("token from an older clock reading")
	}
	c.t = c.t.Add(1500 * time.Millisecond) // t=1001.5: 0.5s since the last refill
	if ok, _ := l.Allow("a"); ok {
		t.Error("the interval 1000–1001 was credited twice")
	}
}

func TestLimiterBounded(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := New(1, 2, 100, c.now)
	for i := range 1000 {
		l.Allow(strconv.Itoa(i))
		if n := l.Clients(); n > 100 {
			t.Fatalf("%d clients remembered, bound 100", n)
		}
	}
	// Refilled buckets are dropped first.
	c.t = c.t.Add(time.Minute)
	l.Allow("new")
	if n := l.Clients(); n != 1 {
		t.Errorf("%d clients after refill and one new one, want 1", n)
	}
}

func TestClientIP(t *testing.T) {
	for remote, want := range map[string]string{"192.0.2.1:1234": "192.0.2.1", "[2001:db8::1]:80": "2001:db8::1", "odd": "odd"} {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {"10.0.0.1"}}}
		if got := ClientIP(r); got != want {
			t.Errorf("ClientIP(%q) = %q, want %q", remote, got, want)
		}
	}
}
