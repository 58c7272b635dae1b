package pcscache_test

import (
	"testing"
	"time"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pcscache"
	"github.com/tdproof/tdproof/pcs/pcstest"
)

// env is dcaptest collateral served by an in-process fake PCS, with a
// clock that starts at the dcaptest reference time and advances with
// the (synctest) clock.
type env struct {
	f     *dcaptest.Fixture
	srv   *pcstest.Server
	key   pcs.Key
	clock func() time.Time
}

var paths = []string{"/tdx/certification/v4/tcb", "/tdx/certification/v4/qe/identity", "/sgx/certification/v4/pckcrl", "/sgx/certification/v4/rootcacrl"}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	e := &env{
		f: f, srv: pcstest.New(),
		key:   pcs.Key{TEE: pcs.TEETDX, FMSPC: f.Platform.Spec.FMSPC, CA: f.Platform.Spec.CA},
		clock: func() time.Time { return f.Now.Add(time.Since(start)) },
	}
	e.publish(tb, f.Now.Add(-24*time.Hour))
	return e
}

// publish serves collateral issued at issued (valid 30 days).
func (e *env) publish(tb testing.TB, issued time.Time) {
	tb.Helper()
	spec := dcaptest.DefaultTDXCollateralSpec(e.f.Platform, issued.Add(24*time.Hour))
	rc, err := e.f.PKI.RawCollateral(spec)
	if err != nil {
		tb.Fatal(err)
	}
	e.srv.AddCollateral(e.key, rc)
}

// client returns a client of the fake PCS (in process) with no retries.
func (e *env) client(tb testing.TB) *pcs.Client {
	tb.Helper()
	c, err := pcs.NewClient("http://pccs.test", pcs.WithHTTPClient(e.srv.HTTPClient()),
		pcs.WithTrustedRoot(e.f.PKI.Root.Certificate), pcs.WithClock(e.clock), pcs.WithRetries(0))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// cache returns a cache in front of up (nil: offline) storing in dir.
func (e *env) cache(tb testing.TB, up pcs.Fetcher, dir string, opts ...pcscache.Option) *pcscache.Cache {
	tb.Helper()
	base := []pcscache.Option{pcscache.WithClock(e.clock), pcscache.WithTrustedRoot(e.f.PKI.Root.Certificate)}
	c, err := pcscache.New(up, dir, append(base, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// requests returns the number of requests per collateral route.
func (e *env) requests() [4]int {
	var n [4]int
	for i, p := range paths {
		n[i] = e.srv.Requests(p)
	}
	return n
}
