package dcaptest_test

import (
	"bytes"
	"crypto/x509"
	"math/big"
	"path/filepath"
	"testing"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/quote"
)

// realEvidence is what the fidelity tests take from one shared vector.
type realEvidence struct {
	coll *collateral.Collateral
	pck  []*x509.Certificate // leaf, intermediate, root from the quote
}

func loadReal(t *testing.T, dir string) realEvidence {
	t.Helper()
	c, err := collateral.ParseQVLJSON(testvectors.ReadFile(t, "dcap", dir, "collateral.json"))
	if err != nil {
		t.Fatalf("%s: ParseQVLJSON: %v", dir, err)
	}
	q, err := quote.Parse(testvectors.ReadFile(t, "dcap", dir, "quote.bin"))
	if err != nil {
		t.Fatalf("%s: quote.Parse: %v", dir, err)
	}
	chain, err := pckcert.ParseChainPEM(q.Signature.Certification.PCKChain)
	if err != nil {
		t.Fatalf("%s: PCK chain: %v", dir, err)
	}
	return realEvidence{coll: c, pck: chain}
}

// sameShape compares what dcaptest promises to copy from Intel's
// certificates: subject and issuer bytes, extension order, criticality
// and the values of key usage, basic constraints and CRL DP, and the
// signature algorithm.
func sameShape(t *testing.T, name string, fake, real *x509.Certificate) {
	t.Helper()
	if !bytes.Equal(fake.RawSubject, real.RawSubject) {
		t.Errorf("%s: subject bytes differ: %v vs %v", name, fake.Subject, real.Subject)
	}
	if !bytes.Equal(fake.RawIssuer, real.RawIssuer) {
		t.Errorf("%s: issuer bytes differ: %v vs %v", name, fake.Issuer, real.Issuer)
	}
	if fake.SignatureAlgorithm != real.SignatureAlgorithm || fake.PublicKeyAlgorithm != real.PublicKeyAlgorithm || fake.Version != real.Version {
		t.Errorf("%s: algorithms or version differ", name)
	}
	if len(fake.Extensions) != len(real.Extensions) {
		t.Fatalf("%s: %d extensions, Intel's has %d", name, len(fake.Extensions), len(real.Extensions))
	}
	for i, fe := range fake.Extensions {
		re := real.Extensions[i]
		if !fe.Id.Equal(re.Id) || fe.Critical != re.Critical {
			t.Errorf("%s: extension %d is %v critical=%v, Intel's %v critical=%v", name, i, fe.Id, fe.Critical, re.Id, re.Critical)
			continue
		}
		switch fe.Id.String() {
		case "2.5.29.15", "2.5.29.19", "2.5.29.31": // key usage, basic constraints, CRL DP
			if !bytes.Equal(fe.Value, re.Value) {
				t.Errorf("%s: extension %v = %x, Intel's %x", name, fe.Id, fe.Value, re.Value)
			}
		}
	}
}

func TestFidelityCertificates(t *testing.T) {
	t.Parallel()
	tdx := loadReal(t, "tdx-v4-b0c06f")
	sgx := loadReal(t, "sgx-v3-00a067")
	p := newPKI(t)

	sameShape(t, "root", p.Root.Certificate, tdx.pck[2])
	sameShape(t, "platform CA", p.PlatformCA.Certificate, tdx.pck[1])
	sameShape(t, "processor CA", p.ProcessorCA.Certificate, sgx.pck[1])
	sameShape(t, "TCB signing", p.TCBSigning.Certificate, tdx.coll.TCBInfoIssuerChain.Certs[0])
	intelRoot, err := pckcert.ParseChainPEM(testvectors.ReadFile(t, "intel", "IntelSGXRootCA.pem"))
	if err != nil || len(intelRoot) != 1 {
		t.Fatalf("Intel root: %v", err)
	}
	sameShape(t, "root vs IntelSGXRootCA.pem", p.Root.Certificate, intelRoot[0])

	for _, tc := range []struct {
		name string
		leaf *x509.Certificate
	}{{"TDX platform leaf", tdx.pck[0]}, {"SGX processor leaf", sgx.pck[0]}} {
		t.Run(tc.name, func(t *testing.T) {
			x, err := pckcert.FromCertificate(tc.leaf)
			if err != nil {
				t.Fatal(err)
			}
			spec := dcaptest.PlatformSpec{
				CA: pckcert.CATypeOf(tc.leaf, false), FMSPC: x.FMSPC, PCEID: x.PCEID, PPID: x.PPID,
				Components: x.TCB.Components, PCESVN: x.TCB.PCESVN, CPUSVN: &x.TCB.CPUSVN, SGXType: x.SGXType,
				PlatformInstanceID: x.PlatformInstanceID, Configuration: x.Configuration,
			}
			plat, err := p.NewPlatform(spec)
			if err != nil {
				t.Fatal(err)
			}
			sameShape(t, tc.name, plat.PCK.Certificate, tc.leaf)
			var real []byte
			for _, e := range tc.leaf.Extensions {
				if e.Id.Equal(pckcert.OIDSGXExtension) {
					real = e.Value
				}
			}
			if !bytes.Equal(plat.ExtensionDER(), real) {
				t.Errorf("SGX extension differs from Intel's encoding of the same values\nfake %x\nreal %x", plat.ExtensionDER(), real)
			}
		})
	}
}

// TestFidelityJSON encodes the parsed real TCB infos and QE identities
// and expects Intel's exact bytes back.
func TestFidelityJSON(t *testing.T) {
	t.Parallel()
	dirs, _ := filepath.Glob(filepath.Join(testvectors.Path(t, "dcap"), "*", "collateral.json"))
	if len(dirs) == 0 {
		t.Fatal("no collateral.json vectors found")
	}
	p := newPKI(t)
	plat, err := p.NewPlatform(dcaptest.DefaultTDXPlatformSpec())
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range dirs {
		dir := filepath.Base(filepath.Dir(path))
		t.Run(dir, func(t *testing.T) {
			real := loadReal(t, dir).coll
			info, qe := real.TCBInfo.Info, real.QEIdentity.Identity
			var spec dcaptest.CollateralSpec
			if info.ID == "TDX" {
				spec = dcaptest.DefaultTDXCollateralSpec(plat, dcaptest.ReferenceTime)
			} else {
				spec = dcaptest.DefaultSGXCollateralSpec(plat, dcaptest.ReferenceTime)
			}
			spec.TCBInfo = *info
			spec.QEIdentity = *qe
			raw, err := p.RawCollateral(spec)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(raw.TCBInfo, real.TCBInfo.Raw) {
				t.Errorf("TCB info differs from Intel's\nfake %s\nreal %s", raw.TCBInfo, real.TCBInfo.Raw)
			}
			if !bytes.Equal(raw.QEIdentity, real.QEIdentity.Raw) {
				t.Errorf("QE identity differs from Intel's\nfake %s\nreal %s", raw.QEIdentity, real.QEIdentity.Raw)
			}
		})
	}
}

// TestFidelityCRLs compares the layout of dcaptest's CRLs with Intel's
// root CA and PCK CRLs.
func TestFidelityCRLs(t *testing.T) {
	t.Parallel()
	real := loadReal(t, "tdx-v4-b0c06f").coll
	p := newPKI(t)
	plat, err := p.NewPlatform(dcaptest.DefaultTDXPlatformSpec())
	if err != nil {
		t.Fatal(err)
	}
	root, err := p.RootCRL(dcaptest.CRLSpec{})
	if err != nil {
		t.Fatal(err)
	}
	pck, err := p.PCKCRL(pckcert.CAPlatform, dcaptest.CRLSpec{Revoked: []*big.Int{plat.PCK.Certificate.SerialNumber}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		fake, real *x509.RevocationList
	}{{"root CRL", root.List, real.RootCACRL.List}, {"PCK CRL", pck.List, real.PCKCRL.List}} {
		f, r := tc.fake, tc.real
		if !bytes.Equal(f.RawIssuer, r.RawIssuer) || f.SignatureAlgorithm != r.SignatureAlgorithm {
			t.Errorf("%s: issuer or algorithm differs", tc.name)
		}
		if len(f.Extensions) != len(r.Extensions) {
			t.Fatalf("%s: %d extensions, Intel's %d", tc.name, len(f.Extensions), len(r.Extensions))
		}
		for i := range f.Extensions {
			if !f.Extensions[i].Id.Equal(r.Extensions[i].Id) || f.Extensions[i].Critical != r.Extensions[i].Critical {
				t.Errorf("%s: extension %d is %v, Intel's %v", tc.name, i, f.Extensions[i].Id, r.Extensions[i].Id)
			}
		}
		if len(r.RevokedCertificateEntries) > 0 {
			fe, re := f.RevokedCertificateEntries[0], r.RevokedCertificateEntries[0]
			if fe.ReasonCode != re.ReasonCode || len(fe.Extensions) != len(re.Extensions) {
				t.Errorf("%s: entry reason %d with %d extensions, Intel's %d with %d", tc.name, fe.ReasonCode, len(fe.Extensions), re.ReasonCode, len(re.Extensions))
			}
		}
	}
}
