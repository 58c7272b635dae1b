package pcs_test

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pcstest"
)

var fuzzKinds = []pcs.Kind{pcs.KindTCBInfo, pcs.KindQEIdentity, pcs.KindPCKCRL, pcs.KindRootCACRL}

// FuzzDecodeItem feeds response bodies and issuer-chain header values to
// DecodeItem. Properties: an error means a nil item; an accepted item
// keeps the body it was given (TCB info and QE identity) and decodes
// again, from its own Body and Header, to the same document — what a
// cache relies on when it writes an item and reads it back.
func FuzzDecodeItem(f *testing.F) {
	fx, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
	if err != nil {
		f.Fatal(err)
	}
	rc, err := fx.BuildRawCollateral()
	if err != nil {
		f.Fatal(err)
	}
	fakeRoot := fx.PKI.Root.Certificate
	key := keyOf(fx)
	seeds := 0
	add := func(kind pcs.Kind, fake bool, body []byte, chain string) {
		f.Add(byte(kind)|map[bool]byte{true: 0x80}[fake], body, chain)
		seeds++
	}
	add(pcs.KindTCBInfo, true, rc.TCBInfoResponse(), pcstest.EncodeChain(rc.TCBInfoIssuerChain))
	add(pcs.KindQEIdentity, true, rc.QEIdentityResponse(), pcstest.EncodeChain(rc.QEIdentityIssuerChain))
	add(pcs.KindPCKCRL, true, rc.PCKCRL, pcstest.EncodeChain(rc.PCKCRLIssuerChain))
	add(pcs.KindRootCACRL, true, rc.RootCACRL, "")
	add(pcs.KindRootCACRL, true, []byte(strings.ToUpper(string(bytesToHex(rc.RootCACRL)))), "")
	if d := testvectors.Location(); d != "" {
		dir := filepath.Join(d, "dcap", "tdx-v4-50806f-pcs", "pcs")
		for name, kind := range map[string]pcs.Kind{"tdx-tcb-fmspc-50806f000000": pcs.KindTCBInfo, "tdx-qe-identity": pcs.KindQEIdentity,
			"sgx-pckcrl-platform-der": pcs.KindPCKCRL, "IntelSGXRootCA.der": pcs.KindRootCACRL} {
			body, err := os.ReadFile(filepath.Join(dir, name+pcs.BodySuffix))
			if err != nil {
				continue
			}
			var chain string
			if hb, err := os.ReadFile(filepath.Join(dir, name+pcs.HeadersSuffix)); err == nil {
				var m map[string]string
				if json.Unmarshal(hb, &m) == nil {
					for _, v := range m {
						chain = v
					}
				}
			}
			add(kind, false, body, chain)
		}
	}
	if seeds == 0 {
		f.Fatal("no seeds")
	}
	realKey := pcs.Key{TEE: pcs.TEETDX, FMSPC: [6]byte{0x50, 0x80, 0x6F}, CA: key.CA}
	f.Fuzz(func(t *testing.T, sel byte, body []byte, chain string) {
		kind := fuzzKinds[int(sel&0x7F)%len(fuzzKinds)]
		root, k := fakeRoot, key
		if sel&0x80 == 0 {
			root, k = nil, realKey
		}
		var ik pcs.ItemKey
		for _, x := range k.Items() {
			if x.Kind == kind {
				ik = x
			}
		}
		h := http.Header{}
		if chain != "" {
			for _, n := range []string{"TCB-Info-Issuer-Chain", "SGX-Enclave-Identity-Issuer-Chain", "SGX-PCK-CRL-Issuer-Chain"} {
				h.Set(n, chain)
			}
		}
		it, err := pcs.DecodeItem(ik, body, h, root)
		if err != nil {
			if it != nil {
				t.Fatalf("DecodeItem returned an item with error %v", err)
			}
			return
		}
		if (kind == pcs.KindTCBInfo || kind == pcs.KindQEIdentity) && !bytes.Equal(it.Body, body) {
			t.Fatal("accepted item does not keep the body served")
		}
		h2 := http.Header{}
		for n, v := range it.Header {
			h2.Set(n, v)
		}
		again, err := pcs.DecodeItem(ik, it.Body, h2, root)
		if err != nil {
			t.Fatalf("re-decoding an accepted item: %v", err)
		}
		if !bytes.Equal(again.Body, it.Body) || !again.IssueDate.Equal(it.IssueDate) || !again.ValidUntil.Equal(it.ValidUntil) {
			t.Fatal("re-decoded item differs")
		}
	})
}

func bytesToHex(b []byte) []byte {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return out
}

// FuzzParseItemPath: every accepted path is the Path of its key.
func FuzzParseItemPath(f *testing.F) {
	for _, s := range []string{"tdx-tcb-fmspc-50806f000000", "early/sgx-qe-identity", "eval-17/tdx-qe-identity",
		"sgx-pckcrl-platform-der", "IntelSGXRootCA.der", "eval-x/y", "sgx-qve-identity", "early/sgx-qae-identity", "tdx-qve-identity"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		k, err := pcs.ParseItemPath(p)
		if err != nil {
			return
		}
		if k.Path() != p {
			t.Fatalf("ParseItemPath(%q) = %+v whose Path is %q", p, k, k.Path())
		}
		if err := k.Validate(); err != nil {
			t.Fatalf("ParseItemPath(%q) gave an invalid key: %v", p, err)
		}
	})
}

// FuzzDecodeFMSPCs: an error means no list; an accepted list has one
// entry per array element.
func FuzzDecodeFMSPCs(f *testing.F) {
	for _, s := range []string{`[{"fmspc":"00906ED50000","platform":"E3"},{"fmspc":"50806f000000","platform":"E5"}]`, `[]`, `[{}]`, `{"a":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := pcs.DecodeFMSPCs(b)
		if err != nil {
			if l != nil {
				t.Fatal("list with error")
			}
			return
		}
		var raw []json.RawMessage
		if json.Unmarshal(b, &raw) != nil || len(raw) != len(l) {
			t.Fatalf("accepted %d entries from %q", len(l), b)
		}
	})
}

// FuzzDecodePCKCert: an error means no certificate; an accepted one has
// a three-certificate chain whose leaf is the body's certificate.
func FuzzDecodePCKCert(f *testing.F) {
	fx, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
	if err != nil {
		f.Fatal(err)
	}
	srv := pcstest.New()
	ppid := []byte("encrypted ppid")
	srv.AddPCKCert(ppid, fx.Platform)
	r := srv.HTTPClient()
	resp, err := r.Get("http://pccs.test/sgx/certification/v4/pckcert?encrypted_ppid=" + string(bytesToHex(ppid)))
	if err != nil {
		f.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body, resp.Header.Get("SGX-PCK-Certificate-Issuer-Chain"), resp.Header.Get("SGX-FMSPC"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "", "")
	root := fx.PKI.Root.Certificate
	f.Fuzz(func(t *testing.T, body []byte, chain, fmspc string) {
		h := http.Header{}
		if chain != "" {
			h.Set("SGX-PCK-Certificate-Issuer-Chain", chain)
		}
		if fmspc != "" {
			h.Set("SGX-FMSPC", fmspc)
		}
		p, err := pcs.DecodePCKCert(body, h, root)
		if err != nil {
			if p != nil {
				t.Fatal("certificate with error")
			}
			return
		}
		if len(p.Chain.Certs) != 3 || !bytes.Equal(p.Chain.Certs[2].Raw, root.Raw) {
			t.Fatal("accepted chain is not leaf, CA, root")
		}
	})
}

// FuzzDecodePCKCerts: an error means no result; an accepted response has
// at least one certificate, each with a leaf, CA, root chain, all of one
// FMSPC, and a validity window inside every certificate's.
func FuzzDecodePCKCerts(f *testing.F) {
	fx, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
	if err != nil {
		f.Fatal(err)
	}
	leaf := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fx.Platform.PCK.DER})
	chain := pcstest.EncodeChain(string(dcaptest.ChainPEM(fx.Platform.Intermediate().Certificate, fx.PKI.Root.Certificate)))
	body, err := json.Marshal([]map[string]any{
		{"tcb": map[string]any{"pcesvn": 1}, "tcbm": "00", "cert": url.QueryEscape(string(leaf))},
		{"tcb": map[string]any{"pcesvn": 0}, "tcbm": "00", "cert": "Not available"},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body, chain)
	f.Add([]byte(`[{"cert":"Not available"}]`), chain)
	f.Add([]byte(`[]`), "")
	root := fx.PKI.Root.Certificate
	f.Fuzz(func(t *testing.T, body []byte, chain string) {
		h := http.Header{}
		if chain != "" {
			h.Set("SGX-PCK-Certificate-Issuer-Chain", chain)
		}
		p, err := pcs.DecodePCKCerts(body, h, root)
		if err != nil {
			if p != nil {
				t.Fatal("result with error")
			}
			return
		}
		if len(p.Certs) == 0 {
			t.Fatal("accepted without a certificate")
		}
		for _, c := range p.Certs {
			if len(c.Chain.Certs) != 3 || !bytes.Equal(c.Chain.Certs[2].Raw, root.Raw) || c.FMSPC != p.Certs[0].FMSPC {
				t.Fatal("accepted certificate with a wrong chain or FMSPC")
			}
			if p.ValidFrom.Before(c.ValidFrom) || p.ValidUntil.After(c.ValidUntil) {
				t.Fatal("window not inside a certificate's")
			}
		}
	})
}
