package pccs_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pccs"
	"github.com/tdproof/tdproof/pcs/pcscache"
	"github.com/tdproof/tdproof/pcs/pcstest"
)

const adminToken = "admin-secret"

// v4Env is a fake PCS serving an SGX platform's collateral, its QvE and
// QAE identities and its PCK certificates, and a proxy in front of it.
type v4Env struct {
	up      *pcstest.Server
	proxy   *proxy
	key     pcs.Key
	f       *dcaptest.Fixture
	ppid    []byte
	pceid   [2]byte
	cpusvn  [16]byte
	pcesvn  uint16
	fmspc   string
	rootDER []byte
}

func newV4Env(t *testing.T) *v4Env {
	t.Helper()
	f, err := dcaptest.NewFixture(dcaptest.SGXQuoteV3, dcaptest.FixtureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.BuildRawCollateral()
	if err != nil {
		t.Fatal(err)
	}
	e := &v4Env{up: pcstest.New(), f: f, key: pcs.Key{TEE: pcs.TEESGX, FMSPC: f.Platform.Spec.FMSPC, CA: f.Platform.Spec.CA}}
	e.up.AddCollateral(e.key, rc)
	e.rootDER = rc.RootCACRL
	for id, kind := range map[string]pcs.Kind{"QVE": pcs.KindQvEIdentity, "QAE": pcs.KindQAEIdentity} {
		spec := f.CollateralSpec
		spec.QEIdentity.ID = id
		r, err := f.PKI.RawCollateral(spec)
		if err != nil {
			t.Fatal(err)
		}
		e.up.Set(pcs.ItemKey{Kind: kind, TEE: pcs.TEESGX}, pcstest.Response{
			Header: map[string]string{collateral.HeaderEnclaveIdentityChain: pcstest.EncodeChain(r.QEIdentityIssuerChain)},
			Body:   r.QEIdentityResponse(),
		})
	}
	e.ppid = bytes.Repeat([]byte{0xA5}, 384)
	e.pceid = f.Platform.Spec.PCEID
	e.pcesvn = f.Platform.Spec.PCESVN
	if f.Platform.Spec.CPUSVN != nil {
		e.cpusvn = *f.Platform.Spec.CPUSVN
	}
	e.fmspc = strings.ToUpper(hex.EncodeToString(f.Platform.Spec.FMSPC[:]))
	e.up.AddPCKCert(e.ppid, f.Platform)
	leaf := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Platform.PCK.DER})
	caType := "PROCESSOR"
	if strings.Contains(f.Platform.Intermediate().Certificate.Subject.CommonName, "Platform") {
		caType = "PLATFORM"
	}
	body, err := json.Marshal([]map[string]any{
		{"tcb": map[string]any{"pcesvn": e.pcesvn}, "tcbm": strings.ToUpper(hex.EncodeToString(e.cpusvn[:])) + "0000", "cert": url.QueryEscape(string(leaf))},
		{"tcb": map[string]any{"pcesvn": 0}, "tcbm": strings.Repeat("0", 36), "cert": "Not available"},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.up.SetPCKCerts(e.ppid, e.pceid, pcstest.Response{
		Header: map[string]string{
			collateral.HeaderPCKCertIssuerChain: pcstest.EncodeChain(string(dcaptest.ChainPEM(f.Platform.Intermediate().Certificate, f.PKI.Root.Certificate))),
			pcs.HeaderFMSPC:                     e.fmspc,
			pcs.HeaderCAType:                    caType,
		},
		Body: body,
	})
	e.proxy = newProxy(t, e.up, f.Now, pcs.WithTrustedRoot(f.PKI.Root.Certificate))
	return e
}

// offline is a proxy without upstream over the online proxy's cache
// directory (an offline bundle the online proxy filled).
func (e *v4Env) offline(t *testing.T, dir string) string {
	t.Helper()
	c, err := pcscache.New(nil, dir, pcscache.WithClock(func() time.Time { return e.f.Now }), pcscache.WithTrustedRoot(e.f.PKI.Root.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	s, err := pccs.New(c, pccs.WithAdminToken(adminToken))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts.URL
}

func do(t *testing.T, method, u string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp, b.Bytes()
}

var requestID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// wantIntelError checks an error answer as Intel's PCCS writes it.
func wantIntelError(t *testing.T, what string, resp *http.Response, body []byte, code int, text string) {
	t.Helper()
	if resp.StatusCode != code || string(body) != text || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("%s: %d %q (%s), want %d %q text/html", what, resp.StatusCode, body, resp.Header.Get("Content-Type"), code, text)
	}
}

// TestPCCSv4Routes exercises each PCCS v4 route tdproof serves beyond the
// collateral set, online (proxying a fake PCS) and offline (a bundle
// directory, no upstream), with Intel's status codes, bodies and headers.
func TestPCCSv4Routes(t *testing.T) {
	t.Parallel()
	e := newV4Env(t)
	dir := e.proxy.cache.Dir()
	online := e.proxy.url
	base := "/sgx/certification/v4/"
	pckcertsQuery := "pckcerts?encrypted_ppid=" + hex.EncodeToString(e.ppid) + "&pceid=" + hex.EncodeToString(e.pceid[:])
	rootURI := url.QueryEscape("https://certificates.trustedservices.intel.com/IntelSGXRootCA.der")
	caName := strings.ToLower(e.key.CA.String())
	pckURI := url.QueryEscape("https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=" + caName + "&encoding=der")
	reg := map[string]string{
		"qe_id": strings.Repeat("AB", 16), "pce_id": hex.EncodeToString(e.pceid[:]),
		"cpu_svn": hex.EncodeToString(e.cpusvn[:]), "pce_svn": hex.EncodeToString([]byte{byte(e.pcesvn), byte(e.pcesvn >> 8)}),
		"enc_ppid": hex.EncodeToString(e.ppid),
	}
	regBody, _ := json.Marshal(reg)

	// Online first: it fills the directory the offline proxy serves.
	for _, mode := range []string{"online", "offline"} {
		u := online
		if mode == "offline" {
			u = e.offline(t, dir)
		}
		t.Run(mode, func(t *testing.T) {
			for _, c := range []struct {
				route string
				kind  pcs.Kind
			}{{"qve/identity", pcs.KindQvEIdentity}, {"qae/identity", pcs.KindQAEIdentity}} {
				want, _ := e.up.Get(pcs.ItemKey{Kind: c.kind, TEE: pcs.TEESGX})
				resp, body := get(t, u+base+c.route)
				if resp.StatusCode != 200 || !bytes.Equal(body, want.Body) || resp.Header.Get("Content-Type") != "application/json" ||
					resp.Header.Get(collateral.HeaderEnclaveIdentityChain) != want.Header[collateral.HeaderEnclaveIdentityChain] ||
					!requestID.MatchString(resp.Header.Get("Request-ID")) {
					t.Errorf("GET %s: %d %s, body equal %v, chain equal %v, Request-ID %q", c.route, resp.StatusCode, resp.Header.Get("Content-Type"),
						bytes.Equal(body, want.Body), resp.Header.Get(collateral.HeaderEnclaveIdentityChain) == want.Header[collateral.HeaderEnclaveIdentityChain], resp.Header.Get("Request-ID"))
				}
			}
			resp, _ := do(t, "GET", u+base+"qve/identity", map[string]string{"Request-ID": "client-id-1"}, nil)
			if resp.Header.Get("Request-ID") != "client-id-1" {
				t.Errorf("Request-ID %q, want the client's", resp.Header.Get("Request-ID"))
			}

			// crl: the root CA CRL and a PCK CRL by distribution point.
			resp, body := get(t, u+base+"crl?uri="+rootURI)
			if resp.StatusCode != 200 || !bytes.Equal(body, e.rootDER) || resp.Header.Get("Content-Type") != "application/pkix-crl" {
				t.Errorf("crl root: %d %s, DER equal %v", resp.StatusCode, resp.Header.Get("Content-Type"), bytes.Equal(body, e.rootDER))
			}
			pckCRL, _ := e.up.Get(pcs.ItemKey{Kind: pcs.KindPCKCRL, CA: e.key.CA})
			resp, body = get(t, u+base+"crl?uri="+pckURI)
			if resp.StatusCode != 200 || !bytes.Equal(body, pckCRL.Body) || resp.Header.Get("Content-Type") != "application/pkix-crl" {
				t.Errorf("crl pck: %d %s, DER equal %v", resp.StatusCode, resp.Header.Get("Content-Type"), bytes.Equal(body, pckCRL.Body))
			}
			for _, bad := range []string{"crl", "crl?uri=" + url.QueryEscape("https://evil.example/IntelSGXRootCA.der"), "crl?uri=" + strings.Repeat("a", 2049)} {
				resp, body := get(t, u+base+bad)
				wantIntelError(t, bad[:min(len(bad), 40)], resp, body, 400, "Invalid request parameters.")
			}

			// pckcerts
			want, _ := e.up.PCKCerts(e.ppid, e.pceid)
			resp, body = get(t, u+base+pckcertsQuery)
			if resp.StatusCode != 200 || !bytes.Equal(body, want.Body) || resp.Header.Get("Content-Type") != "application/json" ||
				resp.Header.Get(collateral.HeaderPCKCertIssuerChain) != want.Header[collateral.HeaderPCKCertIssuerChain] ||
				resp.Header.Get(pcs.HeaderFMSPC) != e.fmspc || resp.Header.Get(pcs.HeaderCAType) == "" {
				t.Errorf("pckcerts: %d %s %q, body equal %v", resp.StatusCode, resp.Header.Get("Content-Type"), body, bytes.Equal(body, want.Body))
			}
			resp, body = get(t, u+base+"pckcerts?pceid=0000")
			wantIntelError(t, "pckcerts without ppid", resp, body, 400, "Invalid request parameters.")
			resp, body = get(t, u+base+"pckcerts?encrypted_ppid="+strings.Repeat("11", 384)+"&pceid=0000")
			wantIntelError(t, "pckcerts unknown platform", resp, body, 404, "No cache data for this platform.")

			// Unknown FMSPC: 404 like Intel, also offline.
			resp, body = get(t, u+base+"tcb?fmspc=AABBCCDDEEFF")
			wantIntelError(t, "tcb unknown FMSPC", resp, body, 404, "No cache data for this platform.")
		})
	}

	t.Run("platforms online", func(t *testing.T) {
		resp, body := do(t, "POST", online+base+"platforms", map[string]string{"Content-Type": "application/json"}, regBody)
		if resp.StatusCode != 200 || string(body) != "Operation successful." {
			t.Errorf("POST platforms: %d %q", resp.StatusCode, body)
		}
		for _, bad := range []string{`[1]`, `{"qe_id": "", "pce_id": "0000"}`, `{"qe_id": "AB", "pce_id": "zzzz"}`, `{"qe_id": "AB", "pce_id": "0000"}`} {
			resp, body := do(t, "POST", online+base+"platforms", nil, []byte(bad))
			wantIntelError(t, "POST platforms "+bad, resp, body, 400, "Invalid request parameters.")
		}
		resp, body = get(t, online+base+"platforms")
		wantIntelError(t, "GET platforms without admin token", resp, body, 401, "Authentication failed.")
	})
	t.Run("platforms offline", func(t *testing.T) {
		u := e.offline(t, t.TempDir())
		other := map[string]string{}
		for k, v := range reg {
			other[k] = v
		}
		other["qe_id"] = strings.Repeat("CD", 16)
		ob, _ := json.Marshal(other)
		resp, body := do(t, "POST", u+base+"platforms", nil, ob)
		if resp.StatusCode != 200 || string(body) != "Operation successful." {
			t.Fatalf("POST platforms offline: %d %q", resp.StatusCode, body)
		}
		resp, body = do(t, "GET", u+base+"platforms", map[string]string{"admin-token": "wrong"}, nil)
		wantIntelError(t, "GET platforms wrong token", resp, body, 401, "Authentication failed.")
		for i, want := range []int{1, 0} {
			resp, body = do(t, "GET", u+base+"platforms", map[string]string{"admin-token": adminToken}, nil)
			var list []map[string]string
			if err := json.Unmarshal(body, &list); err != nil || resp.StatusCode != 200 || len(list) != want || resp.Header.Get("platform-count") != strconv.Itoa(want) {
				t.Fatalf("GET platforms #%d: %d %q count %q, want %d", i, resp.StatusCode, body, resp.Header.Get("platform-count"), want)
			}
			if want == 1 && (list[0]["qe_id"] != other["qe_id"] || list[0]["enc_ppid"] != strings.ToUpper(other["enc_ppid"])) {
				t.Errorf("registration %v", list[0])
			}
		}
	})
}
