package amdkds_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tdproof/tdproof/amdkds"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
)

// kds serves one snpsim guest's material the way AMD KDS does.
func kds(t *testing.T, g *snpsim.Guest, crl []byte, hits *atomic.Int32) *httptest.Server {
	t.Helper()
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: g.PKI.ASK.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: g.PKI.ARK.Raw})...)
	p := g.PKI.Product.String()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch {
		case r.URL.Path == "/vcek/v1/"+p+"/cert_chain":
			w.Write(chain)
		case r.URL.Path == "/vcek/v1/"+p+"/crl":
			w.Write(crl)
		case strings.HasPrefix(r.URL.Path, "/vcek/v1/"+p+"/"):
			q := r.URL.Query()
			if q.Get("snpSPL") != "24" || q.Get("ucodeSPL") != "213" || q.Get("blSPL") != "4" || q.Get("teeSPL") != "0" {
				http.NotFound(w, r)
				return
			}
			w.Write(g.Key.Cert.Raw)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestFetchCacheBundle(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductGenoa)
	if err != nil {
		t.Fatal(err)
	}
	now := snpsim.Now
	crl, err := g.PKI.CRL(now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := kds(t, g, crl, &hits)
	raw, err := g.Attest([64]byte{7})
	if err != nil {
		t.Fatal(err)
	}
	r, err := snp.ParseReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	client := &amdkds.Client{BaseURL: srv.URL + "/vcek/v1/", Roots: g.PKI.Roots()}
	if u := client.VCEKURL(snp.ProductGenoa, r.ChipID, r.ReportedTCB); !strings.Contains(u, "/vcek/v1/Genoa/") || !strings.HasSuffix(u, "?blSPL=4&teeSPL=0&snpSPL=24&ucodeSPL=213") {
		t.Errorf("VCEK URL %s", u)
	}
	dir := t.TempDir()
	cache := &amdkds.Cache{Dir: dir, Upstream: client, Now: func() time.Time { return now }}
	for i := range 2 {
		m, err := amdkds.Fetch(context.Background(), cache, r, 0, true, g.PKI.Roots())
		if err != nil {
			t.Fatal(err)
		}
		res, err := snp.Verify(r, snp.Certificates{ASK: m.ASK, ARK: m.ARK, VCEK: m.VCEK}, snp.Options{Now: now, Roots: g.PKI.Roots(), CRLs: [][]byte{m.CRL}, RequireCRL: true})
		if err != nil || !res.CRLChecked {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("%d upstream requests, want 3 (cached second round)", n)
	}
	// The cache directory is an offline bundle.
	srv.Close()
	if _, err := amdkds.Fetch(context.Background(), amdkds.Bundle{Dir: dir}, r, 0, true, g.PKI.Roots()); err != nil {
		t.Fatalf("offline bundle: %v", err)
	}
	// Another chip is not in it.
	other := *r
	other.ChipID[0] ^= 1
	if _, err := amdkds.Fetch(context.Background(), amdkds.Bundle{Dir: dir}, &other, 0, false, g.PKI.Roots()); !errors.Is(err, amdkds.ErrNotFound) {
		t.Errorf("unknown chip: %v", err)
	}
	// A chain whose ARK is not pinned is refused by default.
	if _, err := amdkds.Fetch(context.Background(), amdkds.Bundle{Dir: dir}, r, 0, false, nil); !errors.Is(err, amdkds.ErrInvalidResponse) {
		t.Errorf("test ARK against pinned roots: %v", err)
	}
}

func TestClientErrors(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductMilan)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/crl"):
			w.Write([]byte("not a crl"))
		case strings.HasSuffix(r.URL.Path, "/cert_chain"):
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.Write([]byte("junk"))
		}
	}))
	defer srv.Close()
	c := &amdkds.Client{BaseURL: srv.URL}
	ctx := context.Background()
	if _, err := c.CRL(ctx, snp.ProductMilan); !errors.Is(err, amdkds.ErrInvalidResponse) {
		t.Errorf("bad CRL: %v", err)
	}
	if _, err := c.CertChain(ctx, snp.ProductMilan); !errors.Is(err, amdkds.ErrUnavailable) {
		t.Errorf("503: %v", err)
	}
	if _, err := c.VCEK(ctx, snp.ProductMilan, g.Template.ChipID, g.Template.ReportedTCB); !errors.Is(err, amdkds.ErrInvalidResponse) {
		t.Errorf("bad VCEK: %v", err)
	}
	if u := (&amdkds.Client{}).VCEKURL(snp.ProductTurin, [64]byte{0xab}, snp.TCBParts{FMC: 1, BootLoader: 2, TEE: 3, SNP: 4, Microcode: 5}.Compose(snp.ProductTurin)); u != "https://kdsintf.amd.com/vcek/v1/Turin/ab00000000000000?fmcSPL=1&blSPL=2&teeSPL=3&snpSPL=4&ucodeSPL=5" {
		t.Errorf("Turin URL %s", u)
	}
}
