package quote_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/quote"
)

// syntheticQuotes builds well-formed quotes of every supported shape from
// fields alone (signatures are zero; Parse checks no crypto).
func syntheticQuotes(t testing.TB) [][]byte {
	t.Helper()
	chain := []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n\x00")
	mk := func(version uint16, tee quote.TEEType, body quote.BodyType, cert quote.CertificationType, data []byte) []byte {
		q := &quote.Quote{BodyType: body}
		q.Header = quote.Header{Version: version, AttestationKeyType: quote.ECDSA256P256, TEEType: tee, QEVendorID: quote.IntelQEVendorID}
		if body == quote.BodySGXEnclave {
			q.Enclave = &quote.EnclaveReport{ISVSVN: 3}
		} else {
			q.TD = &quote.TDReport{TD15: body == quote.BodyTD15}
			q.TD.TEETCBSVN[1] = 1
		}
		q.Signature = &quote.SignatureData{QEAuthData: make([]byte, 32), Certification: quote.CertificationData{Type: cert, Data: data}}
		b, err := q.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	eppid := make([]byte, 256+16+2+2)
	return [][]byte{
		mk(3, quote.TEETypeSGX, quote.BodySGXEnclave, quote.CertPCKChain, chain),
		mk(4, quote.TEETypeTDX, quote.BodyTD10, quote.CertPCKChain, chain),
		mk(5, quote.TEETypeTDX, quote.BodyTD10, quote.CertPCKChain, chain),
		mk(5, quote.TEETypeTDX, quote.BodyTD15, quote.CertPCKChain, chain),
		mk(5, quote.TEETypeSGX, quote.BodySGXEnclave, quote.CertPCKChain, chain),
		mk(4, quote.TEETypeTDX, quote.BodyTD10, quote.CertPPIDRSA2048, eppid),
	}
}

func realQuotes(t testing.TB) [][]byte {
	var out [][]byte
	dir := testvectors.Location()
	for _, v := range realVectors {
		if b, err := os.ReadFile(filepath.Join(dir, "dcap", v.file)); err == nil {
			out = append(out, b)
		}
	}
	return out
}

func FuzzParseQuote(f *testing.F) {
	seeds := append(syntheticQuotes(f), realQuotes(f)...)
	if len(seeds) == 0 {
		f.Fatal("no seeds")
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := quote.Parse(data)
		if err != nil {
			if q != nil {
				t.Fatal("non-nil quote with an error")
			}
			return
		}
		if len(q.Raw)+len(q.Trailing) != len(data) || (len(q.Raw) > 0 && &q.Raw[0] != &data[0]) {
			t.Fatal("Raw does not alias the input")
		}
		if !bytes.HasPrefix(data, q.Signed()) {
			t.Fatal("Signed is not a prefix of the input")
		}
		enc, err := q.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed quote: %v", err)
		}
		if !bytes.Equal(enc, q.Raw) {
			t.Fatal("Marshal(Parse(x)) != x")
		}
	})
}

func TestSyntheticQuotesRoundTrip(t *testing.T) {
	for i, b := range syntheticQuotes(t) {
		q, err := quote.Parse(b)
		if err != nil {
			t.Fatalf("synthetic %d: %v", i, err)
		}
		enc, _ := q.Marshal()
		if !bytes.Equal(enc, b) {
			t.Errorf("synthetic %d: round trip differs", i)
		}
	}
}
