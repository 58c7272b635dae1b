package dcaptest_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/pckcert"
)

func TestPlatformExtensionRoundTrip(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	f, tr := false, true
	cpusvn := [16]byte{9, 9, 9}
	pid := [16]byte{1, 2, 3, 4}
	cases := []struct {
		name string
		spec dcaptest.PlatformSpec
	}{
		{"TDX default", dcaptest.DefaultTDXPlatformSpec()},
		{"SGX default", dcaptest.DefaultSGXPlatformSpec()},
		{"zero spec", dcaptest.PlatformSpec{}},
		{"explicit", dcaptest.PlatformSpec{
			CA: pckcert.CAPlatform, FMSPC: [6]byte{0xB0, 0xC0, 0x6F}, PCEID: [2]byte{0, 1}, PPID: [16]byte{0xAA},
			Components: [16]uint8{255, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, PCESVN: 0xFFFF, CPUSVN: &cpusvn,
			SGXType: pckcert.SGXTypeScalableWithIntegrity, PlatformInstanceID: &pid,
			Configuration: &pckcert.Configuration{DynamicPlatform: &f, SMTEnabled: &tr},
		}},
		{"platform CA without platform fields", dcaptest.PlatformSpec{CA: pckcert.CAPlatform, OmitPlatformFields: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plat, err := p.NewPlatform(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			s := plat.Spec
			leaf := plat.PCK.Certificate
			x, err := pckcert.FromCertificate(leaf)
			if err != nil {
				t.Fatalf("FromCertificate: %v", err)
			}
			if x.FMSPC != s.FMSPC || x.PCEID != s.PCEID || x.PPID != s.PPID || x.SGXType != s.SGXType ||
				x.TCB.Components != s.Components || x.TCB.PCESVN != s.PCESVN || x.TCB.CPUSVN != *s.CPUSVN {
				t.Errorf("extension %+v does not match spec %+v", x, s)
			}
			if tc.spec.CPUSVN == nil && x.TCB.CPUSVN != [16]byte(s.Components) {
				t.Errorf("default CPUSVN is not the component list")
			}
			wantCA := tc.spec.CA
			if wantCA == pckcert.CAUnknown {
				wantCA = pckcert.CAPlatform
			}
			if got := pckcert.CATypeOf(leaf, false); got != wantCA || s.CA != wantCA {
				t.Errorf("CA type %v, want %v", got, wantCA)
			}
			platformFields := wantCA == pckcert.CAPlatform && !tc.spec.OmitPlatformFields
			if (x.PlatformInstanceID != nil) != platformFields || (x.Configuration != nil) != platformFields {
				t.Errorf("platform fields present = %v/%v, want %v", x.PlatformInstanceID != nil, x.Configuration != nil, platformFields)
			}
			if tc.spec.PlatformInstanceID != nil && *x.PlatformInstanceID != *tc.spec.PlatformInstanceID {
				t.Errorf("platform instance ID %x", *x.PlatformInstanceID)
			}
			if c := tc.spec.Configuration; c != nil {
				if x.Configuration.CachedKeys != nil || *x.Configuration.DynamicPlatform != *c.DynamicPlatform || *x.Configuration.SMTEnabled != *c.SMTEnabled {
					t.Errorf("configuration %+v", x.Configuration)
				}
			}
			if leaf.Subject.CommonName != dcaptest.PCKLeafCN || leaf.IsCA || len(leaf.Extensions) != 6 {
				t.Errorf("leaf CN %q IsCA %v, %d extensions", leaf.Subject.CommonName, leaf.IsCA, len(leaf.Extensions))
			}
			if err := leaf.CheckSignatureFrom(plat.Intermediate().Certificate); err != nil {
				t.Errorf("leaf signature: %v", err)
			}
			want := "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=" + wantCA.String() + "&encoding=der"
			if len(leaf.CRLDistributionPoints) != 1 || leaf.CRLDistributionPoints[0] != want {
				t.Errorf("CRL DP %v", leaf.CRLDistributionPoints)
			}
			if bytes.Equal(leaf.SubjectKeyId, leaf.SerialNumber.Bytes()) || len(leaf.SubjectKeyId) != 20 {
				t.Errorf("leaf SKI %x", leaf.SubjectKeyId)
			}
			// Chain PEM: leaf, intermediate, root, optional NUL.
			for _, nul := range []bool{false, true} {
				pemChain := plat.ChainPEM(nul)
				if (pemChain[len(pemChain)-1] == 0) != nul {
					t.Errorf("ChainPEM(%v) last byte %#x", nul, pemChain[len(pemChain)-1])
				}
				certs, err := pckcert.ParseChainPEM(pemChain)
				if err != nil || len(certs) != 3 || !certs[0].Equal(leaf) || !certs[1].Equal(plat.Intermediate().Certificate) || !certs[2].Equal(p.Root.Certificate) {
					t.Errorf("ChainPEM(%v): %d certificates, %v", nul, len(certs), err)
				}
			}
		})
	}
}

func TestPlatformExtensionOverrides(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	plat, err := p.NewPlatform(dcaptest.PlatformSpec{OmitExtension: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pckcert.FromCertificate(plat.PCK.Certificate); !errors.Is(err, pckcert.ErrNoExtension) {
		t.Errorf("OmitExtension: FromCertificate = %v", err)
	}
	if plat.ExtensionDER() != nil {
		t.Errorf("ExtensionDER of a certificate without extension")
	}
	plat, err = p.NewPlatform(dcaptest.PlatformSpec{RawExtension: []byte{0x30, 0x00}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plat.ExtensionDER(), []byte{0x30, 0x00}) {
		t.Errorf("RawExtension not used")
	}
	if _, err := pckcert.FromCertificate(plat.PCK.Certificate); !errors.Is(err, pckcert.ErrMalformed) {
		t.Errorf("empty extension: FromCertificate = %v", err)
	}
	if _, err := p.NewPlatform(dcaptest.PlatformSpec{CA: 9}); err == nil {
		t.Errorf("unknown CA accepted")
	}
}
