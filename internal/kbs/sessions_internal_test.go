package kbs

import (
	"fmt"
	"testing"
	"time"

	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/kbs/protocol"
)

// TestSessionMemo: a remembered session answers for sessionMemoTTL after
// it was written and not after, a claim is single use in memory, an
// attested session is not served once expired, and the memory is bounded.
func TestSessionMemo(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	var m sessionMemo
	ss := store.KBSSession{ID: "a", Nonce: "n", Tee: "tdx", ExpiresAt: t0.Add(time.Minute)}
	m.created(ss, t0)
	if _, known, _ := m.claim("b", t0); known {
		t.Fatal("unknown session known")
	}
	got, known, used := m.claim("a", t0.Add(time.Second))
	if !known || used || got.Nonce != "n" || got.Tee != "tdx" || !got.ExpiresAt.Equal(ss.ExpiresAt) || got.State != store.KBSSessionPending {
		t.Fatalf("claim = %+v, %v, %v", got, known, used)
	}
	if _, known, used := m.claim("a", t0.Add(time.Second)); !known || !used {
		t.Fatal("second claim not refused")
	}
	if m.claimLoaded(ss, t0.Add(time.Second)) {
		t.Fatal("claimLoaded of a claimed session")
	}
	// Past sessionMemoTTL (or before it was written) the memory does not answer.
	for _, at := range []time.Time{t0.Add(sessionMemoTTL), t0.Add(-time.Second)} {
		if _, known, _ := m.claim("a", at); known {
			t.Fatalf("claim at %v answered from memory", at.Sub(t0))
		}
	}
	claims := &ear.Claims{ID: "jti"}
	m.attested("a", ss.ExpiresAt, [64]byte{1}, protocol.JWK{Kty: protocol.KtyEC}, "a.b.c", "kid", claims, t0.Add(10*time.Second))
	if e, ok := m.attestedSession("a", t0.Add(11*time.Second)); !ok || e.claims != claims || e.tokenID != "jti" || e.kid != "kid" {
		t.Fatalf("attestedSession = %+v, %v", e, ok)
	}
	if _, ok := m.attestedSession("a", t0.Add(10*time.Second+sessionMemoTTL)); ok {
		t.Fatal("attested session served after sessionMemoTTL")
	}
	short := store.KBSSession{ID: "s", Nonce: "n", ExpiresAt: t0.Add(11 * time.Second)}
	m.attested(short.ID, short.ExpiresAt, [64]byte{}, protocol.JWK{}, "a.b.c", "kid", claims, t0.Add(10*time.Second))
	if _, ok := m.attestedSession("s", t0.Add(11*time.Second)); ok {
		t.Fatal("expired session served")
	}
	if _, known, used := m.claim("s", t0.Add(10*time.Second)); !known || !used {
		t.Fatal("attested session claimable")
	}
	// Bounded: a full generation remembers no more; rotation drops the old one.
	at := t0.Add(time.Hour)
	for i := range maxSessionMemo + 10 {
		m.created(store.KBSSession{ID: fmt.Sprint(i), Nonce: "n", ExpiresAt: at.Add(time.Minute)}, at)
	}
	if len(m.cur) != maxSessionMemo {
		t.Fatalf("%d sessions in a generation, want %d", len(m.cur), maxSessionMemo)
	}
	later := at.Add(sessionMemoTTL)
	m.created(store.KBSSession{ID: "x", Nonce: "n", ExpiresAt: later.Add(time.Minute)}, later)
	m.created(store.KBSSession{ID: "y", Nonce: "n", ExpiresAt: later.Add(time.Minute)}, later.Add(sessionMemoTTL))
	if len(m.cur)+len(m.old) != 2 {
		t.Fatalf("%d + %d sessions after two rotations, want 2", len(m.cur), len(m.old))
	}
}
