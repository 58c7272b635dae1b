package dcap_test

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/google/go-tdx-guest/abi"
	"github.com/google/go-tdx-guest/verify"
	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/internal/testvectors"
)

type probeGetter struct {
	c    *collateral.Collateral
	urls []string
}

func (g *probeGetter) Get(u string) (map[string][]string, []byte, error) {
	g.urls = append(g.urls, u)
	pu, _ := url.Parse(u)
	switch {
	case pu.Path == "/tdx/certification/v4/tcb":
		return map[string][]string{"Tcb-Info-Issuer-Chain": {url.QueryEscape(g.c.TCBInfoIssuerChain.PEM)}}, g.c.TCBInfo.TCBInfoResponse(), nil
	case pu.Path == "/tdx/certification/v4/qe/identity":
		return map[string][]string{"Sgx-Enclave-Identity-Issuer-Chain": {url.QueryEscape(g.c.QEIdentityIssuerChain.PEM)}}, g.c.QEIdentity.Response(), nil
	case pu.Path == "/sgx/certification/v4/pckcrl":
		return map[string][]string{"Sgx-Pck-Crl-Issuer-Chain": {url.QueryEscape(g.c.PCKCRLIssuerChain.PEM)}}, g.c.PCKCRL.DER, nil
	case pu.Host == "certificates.trustedservices.intel.com":
		return nil, g.c.RootCACRL.DER, nil
	}
	return nil, nil, fmt.Errorf("offline: %s", u)
}

func TestGotdxProbe(t *testing.T) {
	for _, v := range realVectors {
		if v.dir == "sgx-v3-00a067" {
			continue
		}
		q, c := loadVector(t, v.dir)
		raw, _ := os.ReadFile(testvectors.Path(t, "dcap", v.dir, "quote.bin"))
		_, perr := abi.QuoteToProto(raw)
		pool := x509.NewCertPool()
		pool.AddCert(dcap.IntelRoot())
		for _, at := range []time.Time{time.Unix(v.at, 0)} {
			g := &probeGetter{c: c}
			err := verify.RawTdxQuote(raw, &verify.Options{CheckRevocations: true, GetCollateral: true, Getter: g, Now: at, TrustedRoots: pool})
			err2 := verify.RawTdxQuote(raw, &verify.Options{Now: at, TrustedRoots: pool})
			t.Logf("%s parse=%v\n full=%v\n sigonly=%v\n urls=%v\n tdproof sig=%v", v.dir, perr, err, err2, g.urls, dcap.VerifySignatures(q, dcap.Options{Now: at}))
			res, err := dcap.Verify(q, c, dcap.Options{Now: at})
			if res != nil {
				t.Logf("tdproof %v exp %v earliest %v", res.Status, res.CollateralExpired, res.EarliestExpiration)
			} else {
				t.Logf("tdproof err %v", err)
			}
		}
	}
}
