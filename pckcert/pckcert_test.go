package pckcert_test

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/quote"
)

func TestRealPCKExtensions(t *testing.T) {
	dir := testvectors.Path(t, "dcap")
	cases := []struct {
		file  string
		fmspc string
		ca    pckcert.CAType
	}{
		{"tdx-v4-b0c06f/quote.bin", "b0c06f000000", pckcert.CAPlatform},
		{"sgx-v3-00a067/quote.bin", "00a067110000", pckcert.CAProcessor},
		{"tdx-v5-90c06f/quote.bin", "90c06f000000", pckcert.CAPlatform},
		{"tdx-v4-90c06f-dstack/quote.bin", "90c06f000000", pckcert.CAPlatform},
		{"tdx-v4-50806f-pcs/quote.bin", "50806f000000", pckcert.CAPlatform},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			q, err := quote.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			chain, err := pckcert.ParseChainPEM(q.Signature.Certification.PCKChain)
			if err != nil {
				t.Fatal(err)
			}
			if len(chain) != 3 {
				t.Fatalf("chain has %d certificates", len(chain))
			}
			x, err := pckcert.FromCertificate(chain[0])
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(x.FMSPC[:]); got != c.fmspc {
				t.Errorf("FMSPC = %s, want %s", got, c.fmspc)
			}
			if got := pckcert.CATypeOf(chain[0], false); got != c.ca {
				t.Errorf("CA type = %v, want %v", got, c.ca)
			}
			if got := pckcert.CATypeOf(chain[1], true); got != c.ca {
				t.Errorf("intermediate CA type = %v, want %v", got, c.ca)
			}
			// In every real certificate the component list equals CPUSVN.
			for i, v := range x.TCB.Components {
				if x.TCB.CPUSVN[i] != v {
					t.Errorf("component %d = %d, CPUSVN byte %d", i, v, x.TCB.CPUSVN[i])
				}
			}
			if (x.PlatformInstanceID != nil) != (c.ca == pckcert.CAPlatform) {
				t.Errorf("platform instance ID presence = %v for %v", x.PlatformInstanceID != nil, c.ca)
			}
			t.Logf("PCESVN %d SGX type %v components %v", x.TCB.PCESVN, x.SGXType, x.TCB.Components)
		})
	}
}
