package store_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/store"
)

// TestRecordKBSSessionSingleUse: RecordKBSSession records one outcome per
// session id: of several calls, sequential or concurrent from two Stores
// on one database, exactly one succeeds, a failed outcome cannot become
// attested, and a failed outcome keeps no token or key.
func TestRecordKBSSessionSingleUse(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		s1, s2 := open(t, dsn), open(t, dsn)
		ctx := t.Context()
		t0 := time.Unix(1_800_000_000, 0).UTC()
		exp := t0.Add(time.Minute)
		rd := []byte{1, 2, 3}
		record := func(s *store.Store, id, token string) error {
			return s.RecordKBSSession(ctx, store.KBSSession{ID: id, Nonce: "n-" + id, Tee: "tdx", ExpiresAt: exp,
				ReportData: rd, TeePubKey: `{"kty":"EC"}`, Token: token, TokenID: "jti-" + id})
		}
		if err := s1.RecordKBSSession(ctx, store.KBSSession{ID: "x", ExpiresAt: exp, Token: "tok"}); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("record without a nonce: %v, want ErrInvalid", err)
		}
		if _, err := s1.KBSSession(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("KBSSession before its record: %v, want ErrNotFound", err)
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
			wg.Go(func() { errs[i] = record(s, "a", "tok") })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("concurrent record: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d concurrent record calls succeeded, want 1 (%v)", ok, errs)
		}
		ss, err := s2.KBSSession(ctx, "a")
		if err != nil || ss.State != store.KBSSessionAttested || ss.Token != "tok" || ss.TokenID != "jti-a" ||
			string(ss.ReportData) != string(rd) || ss.Nonce != "n-a" || ss.Tee != "tdx" || !ss.ExpiresAt.Equal(exp) {
			t.Fatalf("KBSSession after record = %+v, %v", ss, err)
		}
		if byTok, err := s1.KBSSessionByTokenID(ctx, "jti-a"); err != nil || byTok.ID != "a" {
			t.Fatalf("KBSSessionByTokenID = %+v, %v", byTok, err)
		}
		// Sequential repeats: neither an attested nor a failed outcome
		// can be recorded again (a failed one cannot become attested).
		if err := record(s2, "a", ""); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second outcome of an attested session: %v, want ErrConflict", err)
		}
		if err := record(s2, "b", ""); err != nil {
			t.Fatalf("failed outcome: %v", err)
		}
		if err := record(s1, "b", "tok"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("attest after a failed outcome: %v, want ErrConflict", err)
		}
		ss, err = s1.KBSSession(ctx, "b")
		if err != nil || ss.State != store.KBSSessionFailed || ss.Token != "" || ss.TokenID != "" || ss.TeePubKey != "" || len(ss.ReportData) != 0 {
			t.Fatalf("KBSSession after a failed outcome = %+v, %v", ss, err)
		}
		if _, err := s1.KBSSessionByTokenID(ctx, "jti-b"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("KBSSessionByTokenID of a failed session: %v, want ErrNotFound", err)
		}
		// Purged after its expiry, not before.
		if n, err := s1.DeleteExpiredKBSSessions(ctx, exp.Add(-time.Nanosecond)); err != nil || n != 0 {
			t.Fatalf("purge before the expiry: %d, %v", n, err)
		}
		if n, err := s1.DeleteExpiredKBSSessions(ctx, exp); err != nil || n != 2 {
			t.Fatalf("purge at the expiry: %d, %v, want 2", n, err)
		}
	})
}
