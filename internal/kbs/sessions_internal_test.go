package kbs

import (
	"fmt"
	"testing"
	"time"

	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/kbs/protocol"
)

// TestSessionMemo: a remembered session answers for sessionMemoTTL after
// it was written (on the memo's clock) and not after, a claim is single
// use in memory, an attested session is not served once expired (on the
// broker's clock), and the memory is bounded.
func TestSessionMemo(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	mt := t0 // the memo's clock
	m := sessionMemo{clock: func() time.Time { return mt }}
	exp := t0.Add(time.Minute)
	if !m.claim("a") {
		t.Fatal("first claim refused")
	}
	mt = t0.Add(time.Second)
	if m.claim("a") {
		t.Fatal("second claim not refused")
	}
	if !m.claim("b") {
		t.Fatal("claim of another session refused")
	}
	// Past sessionMemoTTL (or before it was written) the memory does not
	// answer: the store refuses the second outcome.
	mt = t0.Add(sessionMemoTTL)
	if !m.claim("a") {
		t.Fatal("claim refused from memory after sessionMemoTTL")
	}
	mt = t0.Add(-time.Second)
	if !m.claim("b") {
		t.Fatal("claim refused from memory before it was written")
	}
	claims := &ear.Claims{ID: "jti"}
	mt = t0.Add(10 * time.Second)
	m.attested("a", exp, [64]byte{1}, protocol.JWK{Kty: protocol.KtyEC}, "a.b.c", "kid", claims)
	// The broker's clock may stand still (serve --at): the memo's does not.
	if e, ok := m.attestedSession("a", t0); !ok || e.claims != claims || e.kid != "kid" {
		t.Fatalf("attestedSession = %+v, %v", e, ok)
	}
	if _, ok := m.attestedSession("b", t0); ok {
		t.Fatal("claimed, not attested, session served")
	}
	mt = t0.Add(10*time.Second + sessionMemoTTL)
	if _, ok := m.attestedSession("a", t0); ok {
		t.Fatal("attested session served after sessionMemoTTL")
	}
	m.attested("s", t0.Add(11*time.Second), [64]byte{}, protocol.JWK{}, "a.b.c", "kid", claims)
	if _, ok := m.attestedSession("s", t0.Add(11*time.Second)); ok {
		t.Fatal("expired session served")
	}
	if m.claim("s") {
		t.Fatal("attested session claimable")
	}
	// Bounded: a full generation remembers no more; rotation drops the old one.
	mt = t0.Add(time.Hour)
	for i := range maxSessionMemo + 10 {
		m.claim(fmt.Sprint(i))
	}
	if len(m.cur) != maxSessionMemo {
		t.Fatalf("%d sessions in a generation, want %d", len(m.cur), maxSessionMemo)
	}
	mt = mt.Add(sessionMemoTTL)
	m.claim("x")
	mt = mt.Add(sessionMemoTTL)
	m.claim("y")
	if len(m.cur)+len(m.old) != 2 {
		t.Fatalf("%d + %d sessions after two rotations, want 2", len(m.cur), len(m.old))
	}
}
