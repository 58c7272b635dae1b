package pcscache_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pcscache"
)

const day = 24 * time.Hour

// TestValidityWindow: an item is served from memory while it is inside
// its validity window (same pointer, no request), and fetched again once
// it has expired.
func TestValidityWindow(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c := e.cache(t, e.client(t), "")
		first, err := c.Collateral(t.Context(), e.key)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.requests(); got != [4]int{1, 1, 1, 1} {
			t.Fatalf("requests %v, want one per route", got)
		}
		time.Sleep(28 * day) // nextUpdate is 29 days after the fixture time
		again, err := c.Collateral(t.Context(), e.key)
		if err != nil {
			t.Fatal(err)
		}
		if again != first || e.requests() != [4]int{1, 1, 1, 1} {
			t.Errorf("inside the window: same pointer %v, requests %v; want true, one per route", again == first, e.requests())
		}
		// The verifier's warm path recognises the shared collateral.
		q, err := e.f.BuildQuote()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dcap.NewVerifier(dcap.VerifierOptions{TrustedRoot: e.f.PKI.Root.Certificate}).Verify(q.Parsed, again, e.clock()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(day + time.Minute)
		e.publish(t, e.clock().Add(-time.Hour))
		later, err := c.Collateral(t.Context(), e.key)
		if err != nil {
			t.Fatal(err)
		}
		if later == first || e.requests() != [4]int{2, 2, 2, 2} {
			t.Errorf("after expiry: new collateral %v, requests %v; want true, two per route", later != first, e.requests())
		}
		if !later.TCBInfo.Info.IssueDate.After(first.TCBInfo.Info.IssueDate) {
			t.Errorf("refetched tcb info issued %v, not after %v", later.TCBInfo.Info.IssueDate, first.TCBInfo.Info.IssueDate)
		}
		if s := c.Stats(); s.Hits != 4 || s.Misses != 8 || s.UpstreamFetches != 8 {
			t.Errorf("stats %+v, want 4 hits, 8 misses, 8 fetches", s)
		}
	})
}

// TestSingleFlight: 100 concurrent callers on a cold key make exactly one
// upstream request per route and get the same collateral.
func TestSingleFlight(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		release := make(chan struct{})
		e.srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
			<-release
			return false
		})
		c := e.cache(t, e.client(t), t.TempDir())
		const callers = 100
		results := make([]*collateral.Collateral, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() { results[i], errs[i] = c.Collateral(t.Context(), e.key) })
		}
		synctest.Wait() // every caller is waiting, the four fetches are blocked
		if got := e.requests(); got != [4]int{1, 1, 1, 1} {
			t.Errorf("while blocked: requests %v, want one per route", got)
		}
		close(release)
		wg.Wait()
		for i := range callers {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if results[i] != results[0] {
				t.Fatalf("caller %d got another collateral pointer", i)
			}
		}
		if got := e.requests(); got != [4]int{1, 1, 1, 1} {
			t.Errorf("requests %v, want exactly one per route", got)
		}
	})
}

// TestRefreshAhead: Run refreshes items ahead of their expiry, so callers
// never see a miss.
func TestRefreshAhead(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c := e.cache(t, e.client(t), "", pcscache.WithRefreshAhead(2*day), pcscache.WithRefreshInterval(0))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- c.Run(ctx) }()
		first, err := c.Collateral(t.Context(), e.key)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * day)
		e.publish(t, e.clock())
		time.Sleep(27*day - 20*day - time.Minute) // just before nextUpdate − 2 days
		synctest.Wait()
		if got := e.requests(); got != [4]int{1, 1, 1, 1} {
			t.Errorf("before the refresh point: requests %v", got)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if got := e.requests(); got != [4]int{2, 2, 2, 2} {
			t.Errorf("after the refresh point: requests %v, want two per route", got)
		}
		misses := c.Stats().Misses
		next, err := c.Collateral(t.Context(), e.key)
		if err != nil {
			t.Fatal(err)
		}
		if next == first || c.Stats().Misses != misses || e.requests() != [4]int{2, 2, 2, 2} {
			t.Errorf("refreshed collateral served: new %v, misses %d→%d", next != first, misses, c.Stats().Misses)
		}
		if s := c.Stats(); s.Refreshes != 4 {
			t.Errorf("%d refreshes, want 4", s.Refreshes)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

// TestRefreshInterval: Run also refreshes every item daily (new PCK
// CRLs), and a failed refresh keeps the cached item and backs off.
func TestRefreshInterval(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c := e.cache(t, e.client(t), "")
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go c.Run(ctx)
		if _, err := c.Collateral(t.Context(), e.key); err != nil {
			t.Fatal(err)
		}
		time.Sleep(day + time.Second)
		synctest.Wait()
		if got := e.requests(); got != [4]int{2, 2, 2, 2} {
			t.Errorf("after a day: requests %v, want two per route", got)
		}
		e.srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
			w.WriteHeader(http.StatusBadGateway)
			return true
		})
		time.Sleep(day + time.Second)
		synctest.Wait()
		time.Sleep(time.Minute + time.Second) // first retry after a minute
		synctest.Wait()
		if got := e.requests(); got != [4]int{4, 4, 4, 4} {
			t.Errorf("after a failed refresh and its retry: requests %v, want four per route", got)
		}
		if _, err := c.Collateral(t.Context(), e.key); err != nil {
			t.Errorf("cached collateral not served while refreshes fail: %v", err)
		}
		if s := c.Stats(); s.UpstreamErrors != 8 {
			t.Errorf("%d upstream errors, want 8", s.UpstreamErrors)
		}
		cancel()
	})
}

// TestStaleIfError: an expired item is served within the grace when the
// upstream fails, and refused after it with an error naming the item.
func TestStaleIfError(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		c := e.cache(t, e.client(t), "", pcscache.WithStaleGrace(2*day))
		first, err := c.Collateral(t.Context(), e.key)
		if err != nil {
			t.Fatal(err)
		}
		e.srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		})
		time.Sleep(30 * day) // expired one day ago
		stale, err := c.Collateral(t.Context(), e.key)
		if err != nil {
			t.Fatalf("within the grace: %v", err)
		}
		if stale != first || c.Stats().StaleServed != 4 {
			t.Errorf("within the grace: same collateral %v, stale served %d; want true, 4", stale == first, c.Stats().StaleServed)
		}
		time.Sleep(day + time.Minute)
		_, err = c.Collateral(t.Context(), e.key)
		if !errors.Is(err, pcs.ErrUnavailable) {
			t.Fatalf("after the grace: %v, want ErrUnavailable", err)
		}
		for _, want := range []string{"expired at", "beyond the stale grace of 48h0m0s", "HTTP 503"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
	})
}

// TestMaxAge: collateral issued more than the maximum age ago is refused,
// fresh from upstream or cached, even inside Intel's window.
func TestMaxAge(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.publish(t, e.clock().Add(-10*day))
		c := e.cache(t, e.client(t), "", pcscache.WithMaxAge(7*day), pcscache.WithStaleGrace(30*day))
		_, err := c.Collateral(t.Context(), e.key)
		if !errors.Is(err, pcscache.ErrTooOld) || !errors.Is(err, pcs.ErrUnavailable) {
			t.Fatalf("10-day-old collateral: %v, want ErrTooOld", err)
		}
		e.publish(t, e.clock().Add(-day))
		if _, err := c.Collateral(t.Context(), e.key); err != nil {
			t.Fatalf("1-day-old collateral: %v", err)
		}
		time.Sleep(6*day + time.Minute) // now 7 days and a minute old; upstream serves the same
		_, err = c.Collateral(t.Context(), e.key)
		if !errors.Is(err, pcscache.ErrTooOld) {
			t.Fatalf("aged-out collateral: %v, want ErrTooOld (the grace does not extend the maximum age)", err)
		}
		if !strings.Contains(err.Error(), "more than 168h0m0s ago") {
			t.Errorf("error %q does not state the maximum age", err)
		}
	})
}

// TestRestartFromDisk: a new cache on the same directory serves what the
// first one fetched, without the network, and the directory is a bundle
// collateral.ReadPCSDir reads.
func TestRestartFromDisk(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		dir := t.TempDir()
		first, err := e.cache(t, e.client(t), dir).Collateral(t.Context(), e.key)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				names = append(names, rel)
			}
			return nil
		})
		if len(names) != 7 { // four bodies, three headers
			t.Errorf("directory holds %q, want 4 bodies and 3 headers files", names)
		}
		for _, n := range names {
			if strings.Contains(n, ".tmp-") {
				t.Errorf("temporary file %s left behind", n)
			}
		}
		// Offline restart.
		e.srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
			t.Errorf("network request %s after the restart", r.URL)
			return false
		})
		off := e.cache(t, nil, dir)
		got, err := off.Collateral(t.Context(), e.key)
		if err != nil {
			t.Fatalf("offline restart: %v", err)
		}
		if string(got.TCBInfo.Raw) != string(first.TCBInfo.Raw) || string(got.PCKCRL.DER) != string(first.PCKCRL.DER) {
			t.Error("restarted cache serves other collateral")
		}
		// Online restart: read from disk, no request.
		on := e.cache(t, e.client(t), dir)
		if _, err := on.Collateral(t.Context(), e.key); err != nil {
			t.Fatal(err)
		}
		if s := on.Stats(); s.DiskHits != 4 || s.UpstreamFetches != 0 {
			t.Errorf("online restart: %d disk hits, %d fetches; want 4, 0", s.DiskHits, s.UpstreamFetches)
		}
		// Run loads the whole directory.
		ctx, cancel := context.WithCancel(t.Context())
		loader := e.cache(t, nil, dir)
		done := make(chan error)
		go func() { done <- loader.Run(ctx) }()
		synctest.Wait()
		if n := len(loader.Stats().Items); n != 4 {
			t.Errorf("Run loaded %d items, want 4", n)
		}
		cancel()
		<-done
		// The bundle is a PCS directory.
		if _, err := collateral.ReadPCSDir(os.DirFS(dir), collateral.PCSSelector{TEE: "tdx"}); err != nil {
			t.Errorf("collateral.ReadPCSDir(cache dir): %v", err)
		}
		// A tampered file is not trusted.
		body := filepath.Join(dir, "tdx-qe-identity.body")
		b, _ := os.ReadFile(body)
		os.WriteFile(body, []byte(strings.Replace(string(b), `"isvprodid":2`, `"isvprodid":3`, 1)), 0o644)
		_, err = e.cache(t, nil, dir).Collateral(t.Context(), e.key)
		if !errors.Is(err, pcscache.ErrOffline) || !strings.Contains(err.Error(), "cached copy unusable") || !strings.Contains(err.Error(), "signature") {
			t.Errorf("tampered file: %v, want ErrOffline naming the bad signature", err)
		}
	})
}

// TestOfflineMiss: offline, a missing item is an error naming the key
// and the file, and nothing touches the network.
func TestOfflineMiss(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		dir := t.TempDir()
		_, err := e.cache(t, nil, dir).Collateral(t.Context(), e.key)
		if !errors.Is(err, pcscache.ErrOffline) || !errors.Is(err, pcs.ErrUnavailable) {
			t.Fatalf("offline miss: %v, want ErrOffline", err)
		}
		for _, want := range []string{"FMSPC 90C06F000000", ".body in " + dir, "not cached"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		if n := e.srv.Requests(""); n != 0 {
			t.Errorf("%d requests while offline", n)
		}
		// Expired copies are refused offline too (no grace configured).
		if _, err := e.cache(t, e.client(t), dir).Collateral(t.Context(), e.key); err != nil {
			t.Fatal(err)
		}
		time.Sleep(31 * day)
		_, err = e.cache(t, nil, dir).Collateral(t.Context(), e.key)
		if !errors.Is(err, pcscache.ErrOffline) || !strings.Contains(err.Error(), "expired at") {
			t.Errorf("offline, expired: %v, want ErrOffline naming the expiry", err)
		}
	})
}
