package snp

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseReport: ParseReport never panics, fails only with ErrMalformed
// or ErrUnsupported, and a parsed report keeps its exact bytes and
// re-parses to the same fields.
func FuzzParseReport(f *testing.F) {
	if fx := tryFixture(); fx != nil {
		f.Add(fx)
		v2 := append([]byte(nil), fx...)
		v2[0] = 2
		clear(v2[0x188:0x18B])
		f.Add(v2)
		v5 := append([]byte(nil), fx...)
		v5[0] = 5
		v5[0x1F8] = 3
		f.Add(v5)
	}
	f.Add(make([]byte, ReportSize))
	f.Add([]byte{2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReport(b)
		if err != nil {
			if r != nil || !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnsupported)) {
				t.Fatalf("result %v, error %v", r != nil, err)
			}
			return
		}
		if !bytes.Equal(r.Raw, b) || len(r.SignedBytes()) != SignedSize {
			t.Fatal("raw bytes not kept")
		}
		r2, err := ParseReport(r.Raw)
		if err != nil || r2.Measurement != r.Measurement || r2.ChipID != r.ChipID || r2.ReportedTCB != r.ReportedTCB {
			t.Fatal("re-parse differs")
		}
		rr, ss := r.SignatureInts()
		if rr.BitLen() > 384 || ss.BitLen() > 384 {
			t.Fatal("signature component above 384 bits")
		}
	})
}

// FuzzParseExtensions-style inputs come through ParseCertificates.
func FuzzParseCertificates(f *testing.F) {
	if fx := tryFixtureCerts(); fx != nil {
		for _, c := range fx {
			f.Add(c)
		}
	}
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := ParseCertificates(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatal(err)
			}
			return
		}
		for _, c := range cs {
			_, _ = ParseExtensions(c)
		}
	})
}
