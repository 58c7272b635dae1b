package pcs_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pcstest"
)

// fakeEnv is dcaptest collateral served by a fake PCS.
type fakeEnv struct {
	f   *dcaptest.Fixture
	rc  *dcaptest.RawCollateral
	srv *pcstest.Server
	key pcs.Key
}

// keyOf returns the collateral key of a fixture's platform.
func keyOf(f *dcaptest.Fixture) pcs.Key {
	k := pcs.Key{TEE: pcs.TEESGX, FMSPC: f.Platform.Spec.FMSPC, CA: f.Platform.Spec.CA}
	if f.Kind.IsTDX() {
		k.TEE = pcs.TEETDX
	}
	return k
}

// newFakeEnv builds a fixture of the given kind at now (zero: the
// dcaptest reference time) and serves its collateral.
func newFakeEnv(tb testing.TB, kind dcaptest.QuoteKind, now time.Time) *fakeEnv {
	tb.Helper()
	f, err := dcaptest.NewFixture(kind, dcaptest.FixtureOptions{Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	e := &fakeEnv{f: f, srv: pcstest.New(), key: keyOf(f)}
	e.serve(tb)
	return e
}

// serve (re)builds the raw collateral from the fixture's spec and serves
// it.
func (e *fakeEnv) serve(tb testing.TB) {
	tb.Helper()
	rc, err := e.f.BuildRawCollateral()
	if err != nil {
		tb.Fatal(err)
	}
	e.rc = rc
	e.srv.AddCollateral(e.key, rc)
}

// client returns a client for the fake PCS in process (no sockets) with
// the fixture's root, a clock fixed at the fixture's time and the given
// options last.
func (e *fakeEnv) client(tb testing.TB, opts ...pcs.Option) *pcs.Client {
	tb.Helper()
	now := e.f.Now
	base := []pcs.Option{
		pcs.WithHTTPClient(e.srv.HTTPClient()), pcs.WithTrustedRoot(e.f.PKI.Root.Certificate),
		pcs.WithClock(func() time.Time { return now }),
	}
	c, err := pcs.NewClient("http://pccs.test", append(base, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// httpClient returns a client for the fake PCS served on loopback.
func (e *fakeEnv) httpClient(tb testing.TB, opts ...pcs.Option) *pcs.Client {
	tb.Helper()
	ts := httptest.NewServer(e.srv)
	tb.Cleanup(ts.Close)
	now := e.f.Now
	base := []pcs.Option{pcs.WithTrustedRoot(e.f.PKI.Root.Certificate), pcs.WithClock(func() time.Time { return now })}
	c, err := pcs.NewClient(ts.URL, append(base, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
