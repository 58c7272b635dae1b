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
// it was written (on the memo's clock) and not after, a claim is single
// use in memory, an attested session is not served once expired (on the
// broker's clock), and the memory is bounded.
func TestSessionMemo(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	mt := t0 // the memo's clock
	m := sessionMemo{clock: func() time.Time { return mt }}
	ss := store.KBSSession{ID: "a", Nonce: "n", Tee: "tdx", ExpiresAt: t0.Add(time.Minute)}
	m.created(ss)
	if _, known, _ := m.claim("b"); known {
		t.Fatal("unknown session known")
	}
	mt = t0.Add(time.Second)
	got, known, used := m.claim("a")
	if !known || used || got.Nonce != "n" || got.Tee != "tdx" || !got.ExpiresAt.Equal(ss.ExpiresAt) || got.State != store.KBSSessionPending {
		t.Fatalf("claim = %+v, %v, %v", got, known, used)
	}
	if _, known, used := m.claim("a"); !known || !used {
		t.Fatal("second claim not refused")
	}
	if m.claimLoaded(ss) {
		t.Fatal("claimLoaded of a claimed session")
	}
	// Past sessionMemoTTL (or before it was written) the memory does not answer.
	for _, at := range []time.Time{t0.Add(sessionMemoTTL), t0.Add(-time.Second)} {
		mt = at
		if _, known, _ := m.claim("a"); known {
			t.Fatalf("claim at %v answered from memory", at.Sub(t0))
		}
	}
	claims := &ear.Claims{ID: "jti"}
	mt = t0.Add(10 * time.Second)
	m.attested("a", ss.ExpiresAt, [64]byte{1}, protocol.JWK{Kty: protocol.KtyEC}, "a.b.c", "kid", claims)
	// The broker's clock may stand still (serve --at): the memo's does not.
	if e, ok := m.attestedSession("a", t0); !ok || e.claims != claims || e.kid != "kid" {
		t.Fatalf("attestedSession = %+v, %v", e, ok)
	}
	mt = t0.Add(10*time.Second + sessionMemoTTL)
	if _, ok := m.attestedSession("a", t0); ok {
		t.Fatal("attested session served after sessionMemoTTL")
	}
	m.attested("s", t0.Add(11*time.Second), [64]byte{}, protocol.JWK{}, "a.b.c", "kid", claims)
	if _, ok := m.attestedSession("s", t0.Add(11*time.Second)); ok {
		t.Fatal("expired session served")
	}
	if _, known, used := m.claim("s"); !known || !used {
		t.Fatal("attested session claimable")
	}
	// Bounded: a full generation remembers no more; rotation drops the old one.
	mt = t0.Add(time.Hour)
	for i := range maxSessionMemo + 10 {
		m.created(store.KBSSession{ID: fmt.Sprint(i), Nonce: "n", ExpiresAt: mt.Add(time.Minute)})
	}
	if len(m.cur) != maxSessionMemo {
		t.Fatalf("%d sessions in a generation, want %d", len(m.cur), maxSessionMemo)
	}
	mt = mt.Add(sessionMemoTTL)
	m.created(store.KBSSession{ID: "x", Nonce: "n", ExpiresAt: mt.Add(time.Minute)})
	mt = mt.Add(sessionMemoTTL)
	m.created(store.KBSSession{ID: "y", Nonce: "n", ExpiresAt: mt.Add(time.Minute)})
	if len(m.cur)+len(m.old) != 2 {
		t.Fatalf("%d + %d sessions after two rotations, want 2", len(m.cur), len(m.old))
	}
}
