package pcs_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pcstest"
	"github.com/tdproof/tdproof/quote"
)

// realTime is the verification time of the tdx-v4-50806f-pcs vector.
var realTime = time.Unix(1688173200, 0).UTC()

// TestRealPCSResponses serves the real Intel PCS responses of
// tdx-v4-50806f-pcs byte for byte with their headers, fetches them
// through the client over loopback and verifies the quote to the
// expected result (TCB not supported).
func TestRealPCSResponses(t *testing.T) {
	dir := testvectors.Path(t, "dcap", "tdx-v4-50806f-pcs", "pcs")
	q, err := quote.Parse(testvectors.ReadFile(t, "dcap", "tdx-v4-50806f-pcs", "quote.bin"))
	if err != nil {
		t.Fatal(err)
	}
	srv := pcstest.New()
	if err := srv.LoadDir(dir); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	c, err := pcs.NewClient(ts.URL+"/sgx/certification/v4/", pcs.WithClock(func() time.Time { return realTime }))
	if err != nil {
		t.Fatal(err)
	}
	k, err := pcs.KeyForQuote(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := pcs.Key{TEE: pcs.TEETDX, FMSPC: [6]byte{0x50, 0x80, 0x6F}, CA: pckcert.CAPlatform}
	if k != want {
		t.Fatalf("KeyForQuote = %v, want %v", k, want)
	}
	col, got, err := pcs.CollateralForQuote(t.Context(), c, q, pcs.Channel{})
	if err != nil {
		t.Fatalf("CollateralForQuote: %v", err)
	}
	if got != want {
		t.Errorf("CollateralForQuote key = %v, want %v", got, want)
	}
	_, err = dcap.Verify(q, col, dcap.Options{Now: realTime})
	if !errors.Is(err, dcap.ErrTCBNotSupported) {
		t.Fatalf("dcap.Verify = %v, want ErrTCBNotSupported", err)
	}
	// The same collateral as read from the directory, byte for byte.
	fromDir, err := collateral.ReadPCSDir(os.DirFS(dir), collateral.PCSSelector{TEE: "tdx"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(col.TCBInfo.Raw, fromDir.TCBInfo.Raw) || !bytes.Equal(col.QEIdentity.Raw, fromDir.QEIdentity.Raw) ||
		!bytes.Equal(col.PCKCRL.DER, fromDir.PCKCRL.DER) || !bytes.Equal(col.RootCACRL.DER, fromDir.RootCACRL.DER) ||
		col.TCBInfoIssuerChain.PEM != fromDir.TCBInfoIssuerChain.PEM {
		t.Error("fetched collateral differs from the files served")
	}
	// Items keep the exact body and the issuer-chain header as served.
	for _, name := range []string{"tdx-tcb-fmspc-50806f000000", "tdx-qe-identity", "sgx-pckcrl-platform-der"} {
		k, err := pcs.ParseItemPath(name)
		if err != nil {
			t.Fatal(err)
		}
		it, err := c.Fetch(t.Context(), k)
		if err != nil {
			t.Fatalf("Fetch(%v): %v", k, err)
		}
		body, _ := os.ReadFile(filepath.Join(dir, name+pcs.BodySuffix))
		hb, _ := os.ReadFile(filepath.Join(dir, name+pcs.HeadersSuffix))
		var hdr map[string]string
		if err := json.Unmarshal(hb, &hdr); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(it.Body, body) {
			t.Errorf("%s: body differs from the file served", name)
		}
		if len(it.Header) != 1 || !equalMaps(it.Header, hdr) {
			t.Errorf("%s: header %v, want exactly %v", name, keys(it.Header), keys(hdr))
		}
	}
	// At the current time the TCB signing certificate (2018–2025) and
	// the documents have expired.
	late, _ := pcs.NewClient(ts.URL)
	_, err = late.Collateral(t.Context(), k)
	if !errors.Is(err, pcs.ErrExpired) || !errors.Is(err, pcs.ErrInvalidResponse) {
		t.Errorf("Collateral now = %v, want ErrExpired", err)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestDcaptestCollateral fetches dcaptest collateral over loopback and
// verifies dcaptest quotes of every TEE to UpToDate.
func TestDcaptestCollateral(t *testing.T) {
	t.Parallel()
	for _, kind := range []dcaptest.QuoteKind{dcaptest.TDXQuoteV4, dcaptest.TDXQuoteV5TD15, dcaptest.SGXQuoteV3} {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			e := newFakeEnv(t, kind, time.Time{})
			c := e.httpClient(t)
			q, err := e.f.BuildQuote()
			if err != nil {
				t.Fatal(err)
			}
			col, k, err := pcs.CollateralForQuote(t.Context(), c, q.Parsed, pcs.Channel{})
			if err != nil {
				t.Fatalf("CollateralForQuote: %v", err)
			}
			if k != e.key {
				t.Errorf("key %v, want %v", k, e.key)
			}
			res, err := dcap.Verify(q.Parsed, col, dcap.Options{TrustedRoot: e.f.PKI.Root.Certificate, Now: e.f.Now})
			if err != nil {
				t.Fatalf("dcap.Verify: %v", err)
			}
			if res.Status != collateral.UpToDate {
				t.Errorf("status %v, want UpToDate", res.Status)
			}
		})
	}
}

// TestEncryptedPPID fetches the PCK certificate of a quote carrying an
// encrypted PPID, then its collateral, and verifies it.
func TestEncryptedPPID(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t, dcaptest.TDXQuoteV4, time.Time{})
	cd, err := e.f.Platform.EncryptedPPIDCertification(quote.CertPPIDRSA3072)
	if err != nil {
		t.Fatal(err)
	}
	e.f.QuoteSpec.Certification = &cd
	q, err := e.f.BuildQuote()
	if err != nil {
		t.Fatal(err)
	}
	e.srv.AddPCKCert(q.Parsed.Signature.Certification.EncryptedPPID.PPID, e.f.Platform)
	var gotKey string
	e.srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/pckcert") {
			gotKey = r.Header.Get(pcs.HeaderSubscriptionKey)
		}
		return false
	})
	c := e.client(t, pcs.WithSubscriptionKey("secret-key"))
	col, k, err := pcs.CollateralForQuote(t.Context(), c, q.Parsed, pcs.Channel{})
	if err != nil {
		t.Fatalf("CollateralForQuote: %v", err)
	}
	if k != e.key || col.PCKCertChain == nil || len(col.PCKCertChain.Certs) != 3 {
		t.Fatalf("key %v, chain %v", k, col.PCKCertChain)
	}
	if gotKey != "secret-key" {
		t.Errorf("pckcert request carried subscription key %q", gotKey)
	}
	res, err := dcap.Verify(q.Parsed, col, dcap.Options{TrustedRoot: e.f.PKI.Root.Certificate, Now: e.f.Now})
	if err != nil || res.Status != collateral.UpToDate {
		t.Fatalf("dcap.Verify = %v, %v; want UpToDate", res, err)
	}
	// A client without PCK certificate support cannot serve the quote.
	_, _, err = pcs.CollateralForQuote(t.Context(), sourceOnly{c}, q.Parsed, pcs.Channel{})
	if !errors.Is(err, pcs.ErrUnavailable) {
		t.Errorf("CollateralForQuote without PCKCertSource = %v, want ErrUnavailable", err)
	}
}

type sourceOnly struct{ pcs.Source }

// TestRequestParameters checks the query of each route: upper-case
// FMSPC, update=early, tcbEvaluationDataNumber, ca and encoding=der.
func TestRequestParameters(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t, dcaptest.TDXQuoteV4, time.Time{})
	var urls []string
	e.srv.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		urls = append(urls, r.URL.RequestURI())
		return false
	})
	c := e.client(t)
	if _, err := c.Collateral(t.Context(), e.key); err != nil {
		t.Fatal(err)
	}
	early := e.key
	early.Update = pcs.UpdateEarly
	e.srv.AddCollateral(early, e.rc)
	if _, err := c.Collateral(t.Context(), early); err != nil {
		t.Fatal(err)
	}
	pinned := e.key
	pinned.EvalNumber = 17
	e.srv.AddCollateral(pinned, e.rc)
	if _, err := c.Collateral(t.Context(), pinned); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"/tdx/certification/v4/tcb?fmspc=90C06F000000",
		"/tdx/certification/v4/qe/identity",
		"/sgx/certification/v4/pckcrl?ca=platform&encoding=der",
		"/sgx/certification/v4/rootcacrl",
		"/tdx/certification/v4/tcb?fmspc=90C06F000000&update=early",
		"/tdx/certification/v4/qe/identity?update=early",
		"/tdx/certification/v4/tcb?fmspc=90C06F000000&tcbEvaluationDataNumber=17",
		"/tdx/certification/v4/qe/identity?tcbEvaluationDataNumber=17",
	} {
		found := false
		for _, u := range urls {
			found = found || u == want
		}
		if !found {
			t.Errorf("no request %s among %q", want, urls)
		}
	}
	// A pinned number the service does not honour is a mismatch.
	pinned.EvalNumber = 18
	e.srv.AddCollateral(pinned, e.rc)
	if _, err := c.Collateral(t.Context(), pinned); !errors.Is(err, pcs.ErrMismatch) {
		t.Errorf("Collateral(eval 18) served 17: %v, want ErrMismatch", err)
	}
}

func TestNormalizeURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                                       pcs.DefaultURL,
		"https://api.trustedservices.intel.com/": "https://api.trustedservices.intel.com",
		"https://pccs.example:8081/sgx/certification/v4/": "https://pccs.example:8081",
		"https://pccs.example/tdx/certification/v4":       "https://pccs.example",
		"http://pccs.example/prefix/sgx/certification/v3": "http://pccs.example/prefix",
		" https://pccs.example//":                         "https://pccs.example",
	} {
		got, err := pcs.NormalizeURL(in)
		if err != nil || got != want {
			t.Errorf("NormalizeURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://x", "pccs.example", "https://", "https://x/?a=b", "https://u:p@x"} {
		if _, err := pcs.NormalizeURL(bad); err == nil {
			t.Errorf("NormalizeURL(%q) succeeded", bad)
		}
	}
}

func TestFMSPCs(t *testing.T) {
	t.Parallel()
	e := newFakeEnv(t, dcaptest.TDXQuoteV4, time.Time{})
	want := []pcs.FMSPCEntry{{FMSPC: [6]byte{0x90, 0xC0, 0x6F}, Platform: "E5"}, {FMSPC: [6]byte{0, 0x90, 0x6E, 0xD5}, Platform: "E3"}}
	e.srv.SetFMSPCs(want)
	got, err := e.client(t).FMSPCs(t.Context())
	if err != nil || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("FMSPCs = %v, %v; want %v", got, err, want)
	}
}

// TestKeyForQuoteRepeat checks the memo of KeyForQuote across platforms:
// quotes of two platforms (other FMSPC and PCK CA) alternate and each
// keeps its own key, and an SGX quote under the TDX platform's chain gets
// its TEE from the quote.
func TestKeyForQuoteRepeat(t *testing.T) {
	pki, err := dcaptest.NewPKI(dcaptest.PKIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := dcaptest.DefaultTDXPlatformSpec()
	other.FMSPC = [6]byte{0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6}
	other.CA = pckcert.CAProcessor
	var quotes []*quote.Quote
	var want []pcs.Key
	for _, o := range []dcaptest.FixtureOptions{{PKI: pki}, {PKI: pki, Platform: &other}} {
		f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, o)
		if err != nil {
			t.Fatal(err)
		}
		q, err := f.BuildQuote()
		if err != nil {
			t.Fatal(err)
		}
		quotes = append(quotes, q.Parsed)
		want = append(want, pcs.Key{TEE: pcs.TEETDX, FMSPC: f.Platform.Spec.FMSPC, CA: f.Platform.Spec.CA})
	}
	if want[0] == want[1] {
		t.Fatal("the two platforms have the same key")
	}
	for range 3 {
		for i, q := range quotes {
			k, err := pcs.KeyForQuote(q, nil)
			if err != nil {
				t.Fatal(err)
			}
			if k != want[i] {
				t.Fatalf("platform %d: KeyForQuote = %v, want %v", i, k, want[i])
			}
		}
	}
	sgx := *quotes[0]
	sgx.Header.TEEType = quote.TEETypeSGX
	k, err := pcs.KeyForQuote(&sgx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w := (pcs.Key{TEE: pcs.TEESGX, FMSPC: want[0].FMSPC, CA: want[0].CA}); k != w {
		t.Fatalf("SGX quote: KeyForQuote = %v, want %v", k, w)
	}
}
