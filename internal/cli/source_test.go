package cli

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pcstest"
)

// realPCSTime is the verification time of tdx-v4-50806f-pcs.
const realPCSTime = "1688173200"

// realPCS serves the real Intel PCS responses of tdx-v4-50806f-pcs on
// loopback and returns the server and the quote path.
func realPCS(t *testing.T) (*pcstest.Server, string, string) {
	t.Helper()
	dir := testvectors.Path(t, "dcap", "tdx-v4-50806f-pcs")
	srv := pcstest.New()
	if err := srv.LoadDir(filepath.Join(dir, "pcs")); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv, ts.URL, filepath.Join(dir, "quote.bin")
}

// pcsFixture is dcaptest evidence whose collateral a fake PCS serves on
// loopback.
type pcsFixture struct {
	f                *dcaptest.Fixture
	rc               *dcaptest.RawCollateral
	srv              *pcstest.Server
	key              pcs.Key
	url, quote, root string
	at               string
}

func newPCSFixture(t *testing.T, kind dcaptest.QuoteKind) *pcsFixture {
	t.Helper()
	f := newFixture(t, kind)
	e := writeFixture(t, f)
	p := &pcsFixture{f: f, srv: pcstest.New(), quote: e.quote, root: e.rootPEM, at: e.at,
		key: pcs.Key{TEE: pcs.TEESGX, FMSPC: f.Platform.Spec.FMSPC, CA: f.Platform.Spec.CA}}
	if kind.IsTDX() {
		p.key.TEE = pcs.TEETDX
	}
	rc, err := f.BuildRawCollateral()
	if err != nil {
		t.Fatal(err)
	}
	p.rc = rc
	p.srv.AddCollateral(p.key, rc)
	ts := httptest.NewServer(p.srv)
	t.Cleanup(ts.Close)
	p.url = ts.URL
	return p
}

// verifyArgs returns quote verify arguments against the fake PCS.
func (p *pcsFixture) verifyArgs(extra ...string) []string {
	return append([]string{"quote", "verify", p.quote, "--pccs-url", p.url, "--trusted-root", p.root, "--at", p.at,
		"--pcs-retries", "0", "--pcs-timeout", "2s"}, extra...)
}

// TestVerifyFromPCCS: quote verify without --collateral fetches from the
// PCCS; the real quote verifies to TCB not supported through the full
// fetch path, dcaptest quotes to UpToDate.
func TestVerifyFromPCCS(t *testing.T) {
	t.Parallel()
	t.Run("real", func(t *testing.T) {
		t.Parallel()
		srv, url, quote := realPCS(t)
		args := []string{"quote", "verify", quote, "--pccs-url", url + "/sgx/certification/v4/", "--at", realPCSTime, "--format", "json"}
		o := invoke(t, nil, args...)
		o.wantCode(t, exitRejected, args...)
		var out verifyOutput
		decodeJSON(t, o, &out)
		if out.Error == nil || out.Error.Code != codeTCBNotSupported {
			t.Errorf("error %+v, want %s", out.Error, codeTCBNotSupported)
		}
		if out.Collateral == nil || out.Collateral.Kind != "pccs" || out.Collateral.Path != url {
			t.Errorf("collateral_source %+v, want pccs %s", out.Collateral, url)
		}
		if n := srv.Requests(""); n != 4 {
			t.Errorf("%d requests to the PCS, want 4", n)
		}
		// Today the TCB signing certificate of 2023 has expired: the
		// response is refused and the exit code is 6.
		args = []string{"quote", "verify", quote, "--pccs-url", url, "--format", "json"}
		o = invoke(t, nil, args...)
		o.wantCode(t, exitCollateralUnavailable, args...)
		decodeJSON(t, o, &out)
		if out.Error == nil || out.Error.Code != codeCollateralResponseInvalid || !strings.Contains(out.Error.Message, "expired") {
			t.Errorf("error %+v, want %s naming the expiry", out.Error, codeCollateralResponseInvalid)
		}
	})
	for _, kind := range []dcaptest.QuoteKind{dcaptest.TDXQuoteV4, dcaptest.TDXQuoteV5TD15, dcaptest.SGXQuoteV3} {
		t.Run(strings.ReplaceAll(kindName(kind), " ", "_"), func(t *testing.T) {
			t.Parallel()
			p := newPCSFixture(t, kind)
			args := p.verifyArgs()
			o := invoke(t, nil, args...)
			o.wantCode(t, exitOK, args...)
			if !strings.Contains(firstLine(o.stdout), "TCB UpToDate") || !strings.Contains(o.stdout, p.url+" (pccs)") {
				t.Errorf("stdout lacks the verdict or the source:\n%s", o.stdout)
			}
		})
	}
}

// TestVerifySourceFailures: every way a PCS can fail gives exit 6, a
// stable JSON code and an error naming what was fetched.
func TestVerifySourceFailures(t *testing.T) {
	t.Parallel()
	other, err := dcaptest.NewPKI(dcaptest.PKIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	respond := func(path string, status int, hdr map[string]string, body string) func(*pcsFixture) {
		return func(p *pcsFixture) {
			p.srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != path {
					return false
				}
				for k, v := range hdr {
					w.Header().Set(k, v)
				}
				w.WriteHeader(status)
				w.Write([]byte(body))
				return true
			})
		}
	}
	const tcb = "/tdx/certification/v4/tcb"
	tcbHeader := func(h func(p *pcsFixture) map[string]string) func(*pcsFixture) {
		return func(p *pcsFixture) {
			k := p.key.Items()[0]
			r, _ := p.srv.Get(k)
			r.Header = h(p)
			p.srv.Set(k, r)
		}
	}
	for _, tc := range []struct {
		name    string
		setup   func(*pcsFixture)
		extra   []string
		code    string
		message string
	}{
		{"404", func(p *pcsFixture) { p.srv.Delete(p.key.Items()[0]) }, nil, codeCollateralUnavailable, "HTTP 404"},
		{"429 with Retry-After", respond(tcb, 429, map[string]string{"Retry-After": "30"}, ""), nil, codeCollateralUnavailable, "Retry-After 30s"},
		{"5xx", respond(tcb, 502, nil, "bad gateway"), nil, codeCollateralUnavailable, "HTTP 502"},
		{"timeout", func(p *pcsFixture) {
			p.srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path == tcb {
					<-r.Context().Done()
					return true
				}
				return false
			})
		}, []string{"--pcs-timeout", "100ms"}, codeCollateralUnavailable, "no response within 100ms"},
		{"truncated body", func(p *pcsFixture) {
			b := p.rc.TCBInfoResponse()
			respond(tcb, 200, map[string]string{"TCB-Info-Issuer-Chain": pcstest.EncodeChain(p.rc.TCBInfoIssuerChain)}, string(b[:len(b)-40]))(p)
		}, nil, codeCollateralResponseInvalid, "malformed"},
		{"missing issuer-chain header", tcbHeader(func(*pcsFixture) map[string]string { return nil }), nil,
			codeCollateralResponseInvalid, "no TCB-Info-Issuer-Chain header"},
		{"wrong issuer-chain header", tcbHeader(func(p *pcsFixture) map[string]string {
			return map[string]string{"TCB-Info-Issuer-Chain": pcstest.EncodeChain(p.rc.PCKCRLIssuerChain)}
		}), nil, codeCollateralResponseInvalid, "issuer chain"},
		{"signature mismatch", func(p *pcsFixture) {
			p.f.CollateralSpec.TCBInfoKey = other.TCBSigning.Key
			rc, _ := p.f.BuildRawCollateral()
			p.srv.AddCollateral(p.key, rc)
		}, nil, codeCollateralResponseInvalid, "signature does not verify"},
		{"expired item", nil, []string{"--at", "2026-03-01T00:00:00Z"}, codeCollateralResponseInvalid, "expired at"},
		{"root CA CRL neither hex nor DER", respond("/sgx/certification/v4/rootcacrl", 200, nil, "not hex"), nil,
			codeCollateralResponseInvalid, "root ca crl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPCSFixture(t, dcaptest.TDXQuoteV4)
			if tc.setup != nil {
				tc.setup(p)
			}
			args := p.verifyArgs(append(tc.extra, "--format", "json")...)
			o := invoke(t, nil, args...)
			o.wantCode(t, exitCollateralUnavailable, args...)
			var out verifyOutput
			decodeJSON(t, o, &out)
			if out.Error == nil || out.Error.Code != tc.code || !strings.Contains(out.Error.Message, tc.message) {
				t.Errorf("error %+v, want code %s and a message with %q", out.Error, tc.code, tc.message)
			}
			if !strings.Contains(o.stderr, "tdproof: error: pcs") {
				t.Errorf("stderr %q, want a pcs error", o.stderr)
			}
		})
	}
	// PCCS hex root CA CRL and a mirror serving DER both work.
	for _, der := range []bool{false, true} {
		p := newPCSFixture(t, dcaptest.TDXQuoteV4)
		p.srv.SetRootCRLAsDER(der)
		args := p.verifyArgs()
		invoke(t, nil, args...).wantCode(t, exitOK, args...)
	}
	// Nothing listening.
	args := []string{"quote", "verify", testvectors.Path(t, "dcap", "tdx-v4-50806f-pcs", "quote.bin"),
		"--pccs-url", "http://127.0.0.1:1", "--pcs-retries", "0", "--at", realPCSTime}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitCollateralUnavailable, args...)
	if !strings.Contains(o.stderr, "tdproof: hint: check the network") {
		t.Errorf("stderr %q lacks the network hint", o.stderr)
	}
}
