package store_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/store"
)

// TestAttestKBSSessionSingleUse: AttestKBSSession records one outcome per
// session: never with another nonce, never at or after the expiry, and of
// several calls, sequential or concurrent from two Stores on one
// database, exactly one succeeds.
func TestAttestKBSSessionSingleUse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		s1, s2 := open(t, dsn), open(t, dsn)
		ctx := t.Context()
		t0 := time.Unix(1_800_000_000, 0).UTC()
		exp := t0.Add(time.Minute)
		create := func(id string) {
			t.Helper()
			if err := s1.CreateKBSSession(ctx, store.KBSSession{ID: id, Nonce: "n-" + id, Tee: "tdx", ExpiresAt: exp}); err != nil {
				t.Fatal(err)
			}
		}
		rd := []byte{1, 2, 3}
		attest := func(s *store.Store, id, nonce string, at time.Time, token string) error {
			return s.AttestKBSSession(ctx, id, nonce, at, rd, `{"kty":"EC"}`, token, "jti-"+id)
		}

		create("a")
		if _, err := s2.PendingKBSSession(ctx, "a", t0); err != nil {
			t.Fatalf("PendingKBSSession: %v", err)
		}
		if _, err := s2.PendingKBSSession(ctx, "a", exp); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("PendingKBSSession at the expiry: %v, want ErrNotFound", err)
		}
		if err := attest(s1, "a", "other", t0, "tok"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("attest with another nonce: %v, want ErrNotFound", err)
		}
		if err := attest(s1, "a", "n-a", exp, "tok"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("attest at the expiry: %v, want ErrNotFound", err)
		}
		if err := attest(s1, "missing", "n-missing", t0, "tok"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("attest of a missing session: %v, want ErrNotFound", err)
		}

		// Concurrent: exactly one of the calls on two Stores records.
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			s := s1
			if i%2 == 1 {
				s = s2
			}
			wg.Go(func() { errs[i] = attest(s, "a", "n-a", t0, "tok") })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrNotFound):
				t.Fatalf("concurrent attest: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d concurrent attest calls recorded, want 1 (%v)", ok, errs)
		}
		ss, err := s2.KBSSession(ctx, "a")
		if err != nil || ss.State != store.KBSSessionAttested || ss.Token != "tok" || ss.TokenID != "jti-a" || string(ss.ReportData) != string(rd) {
			t.Fatalf("KBSSession after attest = %+v, %v", ss, err)
		}
		if byTok, err := s1.KBSSessionByTokenID(ctx, "jti-a"); err != nil || byTok.ID != "a" {
			t.Fatalf("KBSSessionByTokenID = %+v, %v", byTok, err)
		}
		if _, err := s1.PendingKBSSession(ctx, "a", t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("PendingKBSSession of an attested session: %v, want ErrNotFound", err)
		}
		// Sequential repeats: neither an attested nor a failed outcome
		// can be recorded again (a failed one cannot become attested).
		if err := attest(s2, "a", "n-a", t0, ""); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second outcome of an attested session: %v, want ErrNotFound", err)
		}
		create("b")
		if err := attest(s2, "b", "n-b", t0, ""); err != nil {
			t.Fatalf("failed outcome: %v", err)
		}
		if err := attest(s1, "b", "n-b", t0, "tok"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("attest after a failed outcome: %v, want ErrNotFound", err)
		}
		if ss, err := s1.KBSSession(ctx, "b"); err != nil || ss.State != store.KBSSessionFailed || ss.Token != "" {
			t.Fatalf("KBSSession after a failed outcome = %+v, %v", ss, err)
		}
	})
}
