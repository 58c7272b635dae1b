package quote_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/quote"
)

type vectorWant struct {
	file     string
	version  uint16
	tee      quote.TEEType
	body     quote.BodyType
	trailing int
	nulPEM   bool // the type-5 data ends in a NUL byte
}

var realVectors = []vectorWant{
	{file: "tdx-v4-b0c06f/quote.bin", version: 4, tee: quote.TEETypeTDX, body: quote.BodyTD10, trailing: 70, nulPEM: true},
	{file: "sgx-v3-00a067/quote.bin", version: 3, tee: quote.TEETypeSGX, body: quote.BodySGXEnclave, trailing: 0, nulPEM: true},
	{file: "tdx-v5-90c06f/quote.bin", version: 5, tee: quote.TEETypeTDX, body: quote.BodyTD15, trailing: -1, nulPEM: true},
	{file: "tdx-v4-90c06f-dstack/quote.bin", version: 4, tee: quote.TEETypeTDX, body: quote.BodyTD10, trailing: -1, nulPEM: true},
	{file: "tdx-v4-50806f-pcs/quote.bin", version: 4, tee: quote.TEETypeTDX, body: quote.BodyTD10, trailing: 39, nulPEM: false},
}

func TestParseRealVectors(t *testing.T) {
	dir := testvectors.Path(t, "dcap")
	for _, v := range realVectors {
		t.Run(v.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, v.file))
			if err != nil {
				t.Fatal(err)
			}
			q, err := quote.Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if q.Header.Version != v.version || q.Header.TEEType != v.tee || q.BodyType != v.body {
				t.Errorf("got version %d tee %v body %v, want %d %v %v", q.Header.Version, q.Header.TEEType, q.BodyType, v.version, v.tee, v.body)
			}
			if v.trailing >= 0 && len(q.Trailing) != v.trailing {
				t.Errorf("trailing = %d bytes, want %d", len(q.Trailing), v.trailing)
			}
			if q.Header.QEVendorID != quote.IntelQEVendorID {
				t.Errorf("QE vendor ID %x", q.Header.QEVendorID)
			}
			cd := q.Signature.Certification
			if cd.Type != quote.CertPCKChain {
				t.Fatalf("certification type %v", cd.Type)
			}
			if got := cd.Data[len(cd.Data)-1] == 0; got != v.nulPEM {
				t.Errorf("PEM ends in NUL = %v, want %v", got, v.nulPEM)
			}
			if bytes.Count(cd.PCKChain, []byte("BEGIN CERTIFICATE")) != 3 {
				t.Errorf("PCK chain does not hold 3 certificates")
			}
			if !bytes.HasSuffix(cd.PCKChain, []byte("-----END CERTIFICATE-----\n")) {
				t.Errorf("PCK chain suffix %q", cd.PCKChain[len(cd.PCKChain)-30:])
			}
			// Aliasing: Raw and Signed are prefixes of the input.
			if &q.Raw[0] != &data[0] || len(q.Raw)+len(q.Trailing) != len(data) {
				t.Errorf("Raw does not alias the input")
			}
			if !bytes.HasPrefix(data, q.Signed()) {
				t.Errorf("Signed is not a prefix of the input")
			}
			// Round trip from fields.
			enc, err := q.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, q.Raw) {
				t.Errorf("Marshal differs from Raw")
			}
		})
	}
}

func TestParseHexVectors(t *testing.T) {
	dir := testvectors.Path(t, "dcap", "parse-only")
	for _, name := range []string{"tappd-tdx-v4.hex", "tdx-v4-0x.hex"} {
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			data, err := quote.DecodeInput(text)
			if err != nil {
				t.Fatal(err)
			}
			q, err := quote.Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !q.IsTDX() || q.Header.Version != 4 {
				t.Errorf("got %v v%d", q.Header.TEEType, q.Header.Version)
			}
		})
	}
}
