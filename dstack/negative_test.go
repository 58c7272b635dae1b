package dstack_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/nitro"
	"github.com/tdproof/tdproof/nitrosim"
	"github.com/tdproof/tdproof/tpm"
	"github.com/tdproof/tdproof/tpmsim"
)

// Negative cases at the dstack envelope level, built with the simulators
// (nitrosim, tpmsim): one change each to evidence that verifies, each
// refused with the typed error(s) named. They add to
// TestNitroTPMSimulated and TestGCPSimulated here and to the document and
// quote level cases of nitro/sim_test.go and tpm/tpm_test.go (docs/nitro.md,
// docs/gcp-tdx.md: the count and the command that lists them).

// enclaveParts are the pieces of a dstack-nitro-enclave attestation.
type enclaveParts struct {
	doc        nitrosim.Doc
	reportData [64]byte
	// osImageHash nil: SHA-256(PCR0‖PCR1‖PCR2) of doc as first made.
	osImageHash []byte
	noOSImage   bool
	platform    string
	ca          *nitrosim.CA
	// rawDoc, when set, replaces the signed document.
	rawDoc func([]byte) []byte
}

func newEnclaveParts(ca *nitrosim.CA) *enclaveParts {
	p := &enclaveParts{platform: dstack.PlatformNitroEnclave, ca: ca}
	for i := range p.reportData {
		p.reportData[i] = byte(3 * i)
	}
	p.doc = nitrosim.Enclave(nitroAt, p.reportData[:])
	h := sha256.New()
	for i := 0; i < 3; i++ {
		h.Write(p.doc.PCRs[i])
	}
	p.osImageHash = h.Sum(nil)
	return p
}

func (p *enclaveParts) build(t *testing.T) *dstack.Evidence {
	t.Helper()
	doc, err := p.ca.Sign(p.doc)
	if err != nil {
		t.Fatal(err)
	}
	if p.rawDoc != nil {
		doc = p.rawDoc(doc)
	}
	cfg := map[string]string{}
	if !p.noOSImage {
		cfg["os_image_hash"] = hex.EncodeToString(p.osImageHash)
	}
	cj, _ := json.Marshal(cfg)
	a := &dstack.Attestation{Platform: p.platform, ReportData: p.reportData, Config: string(cj),
		RuntimeEvents: []dstack.RuntimeEvent{{Name: "app-id", Payload: []byte("0123456789abcdefghij")}}}
	if p.platform == dstack.PlatformAWSNitroTPM {
		a.NitroTPMDocument = doc
	} else {
		a.NSMQuote = doc
	}
	ev := marshalEvidence(t, a)
	return ev
}

// TestNitroEnclaveSimulatedNegative: dstack-nitro-enclave evidence.
func TestNitroEnclaveSimulatedNegative(t *testing.T) {
	ca, err := nitrosim.New(nitroAt)
	if err != nil {
		t.Fatal(err)
	}
	other, err := nitrosim.New(nitroAt)
	if err != nil {
		t.Fatal(err)
	}
	opts := dstack.NitroOptions{Time: nitroAt, Root: ca.Root}
	if _, err := dstack.VerifyNitro(newEnclaveParts(ca).build(t), opts); err != nil {
		t.Fatalf("base evidence: %v", err)
	}
	var zero [64]byte
	cases := []struct {
		name string
		mut  func(*enclaveParts, *dstack.NitroOptions)
		want []error
	}{
		{"os_image_hash not SHA-256(PCR0||PCR1||PCR2)", func(p *enclaveParts, _ *dstack.NitroOptions) { p.osImageHash = make([]byte, 32) },
			[]error{dstack.ErrOSImageHash}},
		{"os_image_hash absent", func(p *enclaveParts, _ *dstack.NitroOptions) { p.noOSImage = true }, []error{dstack.ErrOSImageHash}},
		{"PCR1 changed", func(p *enclaveParts, _ *dstack.NitroOptions) { p.doc.PCRs[1] = make([]byte, 48) }, []error{dstack.ErrOSImageHash}},
		{"debug enclave", func(p *enclaveParts, _ *dstack.NitroOptions) {
			h := sha256.New()
			for i := 0; i < 3; i++ {
				p.doc.PCRs[i] = make([]byte, 48)
				h.Write(p.doc.PCRs[i])
			}
			p.osImageHash = h.Sum(nil)
		}, []error{dstack.ErrTDRejected, nitro.ErrDebug}},
		{"user_data not report_data", func(p *enclaveParts, _ *dstack.NitroOptions) { p.doc.UserData = zero[:] },
			[]error{dstack.ErrReportData, nitro.ErrUserData}},
		{"NitroTPM document in an enclave attestation", func(p *enclaveParts, _ *dstack.NitroOptions) {
			p.doc = nitrosim.NitroTPM(nitroAt, p.reportData[:], nil)
		}, []error{dstack.ErrQuote, nitro.ErrKind}},
		{"enclave document in a NitroTPM attestation", func(p *enclaveParts, _ *dstack.NitroOptions) { p.platform = dstack.PlatformAWSNitroTPM },
			[]error{dstack.ErrQuote, nitro.ErrKind}},
		{"document of another CA", func(p *enclaveParts, _ *dstack.NitroOptions) { p.ca = other }, []error{dstack.ErrQuote, nitro.ErrChain}},
		{"pinned AWS root", func(_ *enclaveParts, o *dstack.NitroOptions) { o.Root = nil }, []error{dstack.ErrQuote, nitro.ErrChain}},
		{"stale document", func(_ *enclaveParts, o *dstack.NitroOptions) { o.Time = nitroAt.Add(time.Hour + time.Second) },
			[]error{dstack.ErrQuote, nitro.ErrStale}},
		{"document from the future", func(_ *enclaveParts, o *dstack.NitroOptions) { o.Time = nitroAt.Add(-10 * time.Minute) },
			[]error{dstack.ErrQuote, nitro.ErrFuture}},
		{"signature bit flipped", func(p *enclaveParts, _ *dstack.NitroOptions) {
			p.rawDoc = func(b []byte) []byte { b[len(b)-1] ^= 1; return b }
		}, []error{dstack.ErrQuote, nitro.ErrSignature}},
		{"trailing byte after the document", func(p *enclaveParts, _ *dstack.NitroOptions) {
			p.rawDoc = func(b []byte) []byte { return append(b, 0) }
		}, []error{dstack.ErrQuote, nitro.ErrMalformed}},
		{"caller report data differs", func(_ *enclaveParts, o *dstack.NitroOptions) { o.ReportData = &zero }, []error{dstack.ErrReportData}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, o := newEnclaveParts(ca), opts
			c.mut(p, &o)
			r, err := dstack.VerifyNitro(p.build(t), o)
			for _, w := range c.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want %v", err, w)
				}
			}
			t.Log(err)
			if err == nil || r != nil {
				t.Fatalf("r %v err %v", r, err)
			}
		})
	}
	if len(cases) < 10 {
		t.Fatalf("only %d cases", len(cases))
	}
}

// TestNitroTPMSimulatedNegativeMore: more dstack-aws-nitro-tpm cases
// beside TestNitroTPMSimulated's.
func TestNitroTPMSimulatedNegativeMore(t *testing.T) {
	ca, err := nitrosim.New(nitroAt)
	if err != nil {
		t.Fatal(err)
	}
	opts := dstack.NitroOptions{Time: nitroAt, Root: ca.Root}
	rebind := func(p *nitroTPMParts) {
		ms := sha256.Sum256(p.measurement)
		p.checksum = fmt.Appendf(nil, "%x  measurement.aws.cbor\n", ms)
		oh := sha256.Sum256(p.checksum)
		p.osImageHash = oh[:]
	}
	cases := []struct {
		name string
		mut  func(*nitroTPMParts, *dstack.NitroOptions)
		want []error
	}{
		{"PCR4 not the measured value", func(p *nitroTPMParts, _ *dstack.NitroOptions) { p.pcrs[4] = make([]byte, 48) }, []error{dstack.ErrMeasurement}},
		{"PCR12 changed", func(p *nitroTPMParts, _ *dstack.NitroOptions) { p.pcrs[12][47] ^= 1 }, []error{dstack.ErrMeasurement}},
		{"boot_pcr_digest of other PCRs, bound", func(p *nitroTPMParts, _ *dstack.NitroOptions) {
			p.measurement, _ = nitrosim.Encode(map[string]any{"boot_pcr_digest": make([]byte, 32)})
			rebind(p)
		}, []error{dstack.ErrMeasurement}},
		{"measurement with an unknown key", func(p *nitroTPMParts, _ *dstack.NitroOptions) {
			var boot []byte
			for _, i := range []int{4, 7, 12} {
				boot = append(boot, p.pcrs[i]...)
			}
			bd := sha256.Sum256(boot)
			p.measurement, _ = nitrosim.Encode(map[string]any{"boot_pcr_digest": bd[:], "version": 1})
			rebind(p)
		}, []error{dstack.ErrOSImageHash}},
		{"checksum lists another document hash", func(p *nitroTPMParts, _ *dstack.NitroOptions) {
			p.checksum = fmt.Appendf(nil, "%x  measurement.aws.cbor\n", make([]byte, 32))
			oh := sha256.Sum256(p.checksum)
			p.osImageHash = oh[:]
		}, []error{dstack.ErrOSImageHash}},
		{"runtime events reordered", func(p *nitroTPMParts, _ *dstack.NitroOptions) {
			p.events[1], p.events[2] = p.events[2], p.events[1]
		}, []error{dstack.ErrEventLog}},
		{"stale document", func(_ *nitroTPMParts, o *dstack.NitroOptions) { o.Time = nitroAt.Add(2 * time.Hour) },
			[]error{dstack.ErrQuote, nitro.ErrStale}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, o := newNitroTPMParts(), opts
			c.mut(p, &o)
			r, err := dstack.VerifyNitro(p.build(t, ca), o)
			for _, w := range c.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want %v", err, w)
				}
			}
			t.Log(err)
			if err == nil || r != nil {
				t.Fatalf("r %v err %v", r, err)
			}
		})
	}
}

// TestGCPSimulatedNegativeMore: more dstack-gcp-tdx cases beside
// TestGCPSimulated's, each one change to the vTPM half of evidence that
// verifies (or to what the verifier trusts).
func TestGCPSimulatedNegativeMore(t *testing.T) {
	s, err := tpmsim.New(dcaptestNow(t), false)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tpmsim.New(dcaptestNow(t), false)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		mut  func(*dstack.Evidence, *dstack.Options)
		want []error
	}{
		{"AK chain to a foreign root", func(_ *dstack.Evidence, o *dstack.Options) {
			o.GCP.TPMRoot, o.GCP.TPMIntermediates = other.Root, []*x509.Certificate{other.Intermediate}
		}, []error{dstack.ErrQuote, tpm.ErrChain}},
		{"pinned Google EK/AK CA", func(_ *dstack.Evidence, o *dstack.Options) { o.GCP.TPMRoot, o.GCP.TPMIntermediates = nil, nil },
			[]error{dstack.ErrQuote, tpm.ErrChain}},
		{"quote signed by another AK", func(ev *dstack.Evidence, _ *dstack.Options) {
			q := ev.Attestation.TPMQuote
			q.Signature, _ = other.Sign(q.Message)
		}, []error{dstack.ErrQuote, tpm.ErrSignature}},
		{"another instance's AK certificate", func(ev *dstack.Evidence, o *dstack.Options) {
			ev.Attestation.TPMQuote.AKCert = other.AKCert.Raw
		}, []error{dstack.ErrQuote, tpm.ErrChain}},
		{"PCR bank named sha384", func(ev *dstack.Evidence, _ *dstack.Options) {
			ev.Attestation.TPMQuote.PCRValues[1].Algorithm = "sha384"
		},
			[]error{dstack.ErrQuote}},
		{"PCR14 value changed", func(ev *dstack.Evidence, _ *dstack.Options) { ev.Attestation.TPMQuote.PCRValues[2].Value[0] ^= 1 },
			[]error{dstack.ErrQuote, tpm.ErrPCRDigest}},
		{"PCR2 event dropped", func(ev *dstack.Evidence, _ *dstack.Options) {
			q := ev.Attestation.TPMQuote
			q.EventLog = q.EventLog[1:]
		}, []error{dstack.ErrQuote, tpm.ErrReplay}},
		{"os_image_hash changed", func(ev *dstack.Evidence, _ *dstack.Options) { ev.VMConfig.OSImageHash[0] ^= 1 },
			[]error{dstack.ErrOSImageHash}},
		{"verified after the AK certificate expired", func(_ *dstack.Evidence, o *dstack.Options) {
			// The TDX collateral is valid for weeks; the simulator's AK a day.
			o.Now = o.Now.Add(48 * time.Hour)
		}, []error{dstack.ErrQuote, tpm.ErrCertificateTime}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newGCPParts()
			p.runtime = v1Only(p.runtime)
			ev, o, col := p.evidence(t, s)
			c.mut(ev, &o)
			r, err := dstack.Verify(ev, col, o)
			for _, w := range c.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want %v", err, w)
				}
			}
			t.Log(err)
			if err == nil || r != nil {
				t.Fatalf("r %v err %v", r, err)
			}
		})
	}
}

// TestRevocationThroughDstack: the CRL hooks of NitroOptions and
// GCPOptions reach the document and AK chain checks: an intermediate on
// its root's CRL is refused, a current CRL that does not list it passes.
func TestRevocationThroughDstack(t *testing.T) {
	crlOf := func(der []byte, err error) *x509.RevocationList {
		if err != nil {
			t.Fatal(err)
		}
		l, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	ca, err := nitrosim.New(nitroAt)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.SetIntermediateCRL("http://crl.example/nitro-root.crl"); err != nil {
		t.Fatal(err)
	}
	ev := newEnclaveParts(ca).build(t)
	for _, revoked := range []bool{false, true} {
		var serials []*big.Int
		if revoked {
			serials = append(serials, ca.Intermediate.SerialNumber)
		}
		l := crlOf(ca.RootCRL(nitroAt.Add(-time.Hour), nitroAt.Add(time.Hour), serials...))
		_, err := dstack.VerifyNitro(ev, dstack.NitroOptions{Time: nitroAt, Root: ca.Root,
			Revocation: func([]*x509.Certificate) ([]*x509.RevocationList, error) { return []*x509.RevocationList{l}, nil }})
		if revoked != (errors.Is(err, dstack.ErrQuote) && errors.Is(err, nitro.ErrRevoked)) || (!revoked && err != nil) {
			t.Errorf("nitro, revoked %v: %v", revoked, err)
		}
	}

	s, err := tpmsim.New(dcaptestNow(t), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetIntermediateCRL("http://crl.example/gcp-root.crl"); err != nil {
		t.Fatal(err)
	}
	for _, revoked := range []bool{false, true} {
		p := newGCPParts()
		p.runtime = v1Only(p.runtime)
		ev, o, col := p.evidence(t, s)
		var serials []*big.Int
		if revoked {
			serials = append(serials, s.Intermediate.SerialNumber)
		}
		l := crlOf(s.RootCRL(o.Now.Add(-time.Hour), o.Now.Add(time.Hour), serials...))
		o.GCP.Revocation = func([]*x509.Certificate) ([]*x509.RevocationList, error) { return []*x509.RevocationList{l}, nil }
		_, err := dstack.Verify(ev, col, o)
		if revoked != (errors.Is(err, dstack.ErrQuote) && errors.Is(err, tpm.ErrRevoked)) || (!revoked && err != nil) {
			t.Errorf("gcp, revoked %v: %v", revoked, err)
		}
	}
}
