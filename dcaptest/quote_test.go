package dcaptest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/quote"
)

func TestBuildQuoteAllKinds(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	want := map[dcaptest.QuoteKind]struct {
		version uint16
		tee     quote.TEEType
		body    quote.BodyType
		signed  int
	}{
		dcaptest.SGXQuoteV3:     {3, quote.TEETypeSGX, quote.BodySGXEnclave, 432},
		dcaptest.SGXQuoteV4:     {4, quote.TEETypeSGX, quote.BodySGXEnclave, 432},
		dcaptest.SGXQuoteV5:     {5, quote.TEETypeSGX, quote.BodySGXEnclave, 438},
		dcaptest.TDXQuoteV4:     {4, quote.TEETypeTDX, quote.BodyTD10, 632},
		dcaptest.TDXQuoteV5TD10: {5, quote.TEETypeTDX, quote.BodyTD10, 638},
		dcaptest.TDXQuoteV5TD15: {5, quote.TEETypeTDX, quote.BodyTD15, 702},
	}
	for _, kind := range dcaptest.QuoteKinds() {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, kind, dcaptest.FixtureOptions{PKI: pki})
			b, err := f.BuildQuote()
			if err != nil {
				t.Fatalf("BuildQuote: %v", err)
			}
			if b.ParseErr != nil {
				t.Fatalf("quote.Parse: %v", b.ParseErr)
			}
			q := b.Parsed
			w := want[kind]
			if q.Header.Version != w.version || q.Header.TEEType != w.tee || q.BodyType != w.body {
				t.Errorf("got v%d %v %v, want v%d %v %v", q.Header.Version, q.Header.TEEType, q.BodyType, w.version, w.tee, w.body)
			}
			if len(q.Signed()) != w.signed {
				t.Errorf("signed region = %d bytes, want %d", len(q.Signed()), w.signed)
			}
			if len(q.Trailing) != 0 {
				t.Errorf("%d trailing bytes", len(q.Trailing))
			}
			if q.Header.QEVendorID != quote.IntelQEVendorID || q.Header.AttestationKeyType != quote.ECDSA256P256 {
				t.Errorf("header %+v", q.Header)
			}

			// Round trip: re-marshaling the parsed quote gives the same bytes.
			enc, err := q.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, b.Raw) {
				t.Errorf("Marshal(Parse(raw)) != raw")
			}

			checkSignatures(t, f, b)

			// Certification data: type 5 PEM chain with a trailing NUL,
			// leaf = the platform's PCK certificate.
			cd := q.Signature.Certification
			if cd.Type != quote.CertPCKChain || cd.Data[len(cd.Data)-1] != 0 {
				t.Fatalf("certification data type %v, last byte %#x", cd.Type, cd.Data[len(cd.Data)-1])
			}
			chain, err := pckcert.ParseChainPEM(cd.PCKChain)
			if err != nil {
				t.Fatal(err)
			}
			if len(chain) != 3 || !chain[0].Equal(f.Platform.PCK.Certificate) || !chain[2].Equal(f.PKI.Root.Certificate) {
				t.Errorf("PCK chain does not match the platform")
			}
			wantOuter := quote.CertQEReport
			if w.version == 3 {
				wantOuter = 0
			}
			if q.Signature.OuterType != wantOuter {
				t.Errorf("outer certification type %v, want %v", q.Signature.OuterType, wantOuter)
			}

			// QE report defaults match the default QE identity.
			qe := q.Signature.QEReport
			wantSigner, wantProd := dcaptest.SGXQEMRSigner, dcaptest.SGXQEISVProdID
			if kind.IsTDX() {
				wantSigner, wantProd = dcaptest.TDQEMRSigner, dcaptest.TDQEISVProdID
			}
			if qe.MRSigner != wantSigner || qe.ISVProdID != wantProd || qe.ISVSVN != dcaptest.DefaultQEISVSVN ||
				qe.Attributes[0] != 0x15 || qe.MiscSelect != 0 || qe.Debug() {
				t.Errorf("QE report defaults: %+v", qe)
			}

			if kind.IsTDX() {
				td := q.TD
				if td == nil {
					t.Fatal("no TD body")
				}
				if !td.SEPTVEDisable() || td.Debug() || td.Attributes() != quote.TDAttributeSEPTVEDisable {
					t.Errorf("TD attributes %x", td.TDAttributes)
				}
				if td.TEETCBSVN != [16]byte{3, 1, 2} || td.MRSignerSEAM != [48]byte{} || td.SEAMAttributes != [8]byte{} {
					t.Errorf("TD module fields: TEE_TCB_SVN %x", td.TEETCBSVN)
				}
				if td.TD15 != (kind == dcaptest.TDXQuoteV5TD15) {
					t.Errorf("TD15 = %v", td.TD15)
				}
				if td.TD15 && (td.TEETCBSVN2 != td.TEETCBSVN || td.MRServiceTD != [48]byte{}) {
					t.Errorf("TD 1.5 fields: TEE_TCB_SVN2 %x", td.TEETCBSVN2)
				}
				if td.ReportData != f.QuoteSpec.TD.ReportData {
					t.Errorf("REPORTDATA differs from the spec")
				}
			} else {
				e := q.Enclave
				if e == nil {
					t.Fatal("no enclave body")
				}
				if e.Debug() || e.CPUSVN != *f.Platform.Spec.CPUSVN {
					t.Errorf("enclave body %+v", e)
				}
				if w.version == 3 && (q.Header.QESVN != qe.ISVSVN || q.Header.PCESVN != f.Platform.Spec.PCESVN) {
					t.Errorf("SGX header QE SVN %d PCE SVN %d", q.Header.QESVN, q.Header.PCESVN)
				}
			}
		})
	}
}

// checkSignatures verifies the QE report signature (PCK key), the QE
// report data binding and the quote signature (attestation key).
func checkSignatures(t *testing.T, f *dcaptest.Fixture, b *dcaptest.Quote) {
	t.Helper()
	q := b.Parsed
	sd := q.Signature
	pck := f.Platform.PCK.Certificate.PublicKey
	if !verifyRaw(&f.Platform.PCK.Key.PublicKey, sd.QEReport.Raw, sd.QEReportSignature[:]) {
		t.Errorf("QE report signature does not verify with the PCK key")
	}
	if !f.Platform.PCK.Key.PublicKey.Equal(pck) {
		t.Errorf("PCK key does not match the certificate")
	}
	ak := pubFromRaw(t, sd.AttestationKey)
	if !ak.Equal(&b.AttestationKey.PublicKey) {
		t.Errorf("attestation key in the quote differs from Quote.AttestationKey")
	}
	if !verifyRaw(ak, q.Signed(), sd.Signature[:]) {
		t.Errorf("quote signature does not verify with the attestation key")
	}
	h := sha256.Sum256(append(sd.AttestationKey[:], sd.QEAuthData...))
	if !bytes.Equal(sd.QEReport.ReportData[:32], h[:]) || [32]byte(sd.QEReport.ReportData[32:]) != [32]byte{} {
		t.Errorf("QE report data binding does not hold")
	}
}

func TestBuildQuoteHooks(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
	pckPub := &f.Platform.PCK.Key.PublicKey

	build := func(t *testing.T, s dcaptest.QuoteSpec) *quote.Quote {
		t.Helper()
		b, err := f.Platform.BuildQuote(s)
		if err != nil {
			t.Fatal(err)
		}
		if b.ParseErr != nil {
			t.Fatal(b.ParseErr)
		}
		return b.Parsed
	}
	sigs := func(q *quote.Quote) (qeOK, quoteOK bool) {
		sd := q.Signature
		return verifyRaw(pckPub, sd.QEReport.Raw, sd.QEReportSignature[:]),
			verifyRaw(pubFromRaw(t, sd.AttestationKey), q.Signed(), sd.Signature[:])
	}

	t.Run("MutateBeforeSign", func(t *testing.T) {
		s := f.QuoteSpec
		s.MutateBeforeSign = func(q *quote.Quote) { q.TD.MRTD[0] ^= 1; q.Signature.QEReport.ISVSVN = 9 }
		q := build(t, s)
		if qe, qs := sigs(q); !qe || !qs {
			t.Errorf("signatures qe=%v quote=%v, want both valid", qe, qs)
		}
		if q.TD.MRTD[0] == f.QuoteSpec.TD.MRTD[0] || q.Signature.QEReport.ISVSVN != 9 {
			t.Errorf("mutation lost")
		}
	})
	t.Run("MutateAfterSign body", func(t *testing.T) {
		s := f.QuoteSpec
		s.MutateAfterSign = func(q *quote.Quote) { q.TD.RTMRs[3][0] ^= 1 }
		if qe, qs := sigs(build(t, s)); !qe || qs {
			t.Errorf("signatures qe=%v quote=%v, want qe valid, quote invalid", qe, qs)
		}
	})
	t.Run("MutateAfterSign QE report", func(t *testing.T) {
		s := f.QuoteSpec
		s.MutateAfterSign = func(q *quote.Quote) { q.Signature.QEReport.ISVSVN++ }
		if qe, qs := sigs(build(t, s)); qe || !qs {
			t.Errorf("signatures qe=%v quote=%v, want qe invalid, quote valid", qe, qs)
		}
	})
	t.Run("KeepQEReportData", func(t *testing.T) {
		s := f.QuoteSpec
		s.KeepQEReportData = true
		s.QEReport.ReportData = [64]byte{1, 2, 3}
		q := build(t, s)
		if q.Signature.QEReport.ReportData != s.QEReport.ReportData {
			t.Errorf("REPORTDATA was overwritten")
		}
		if qe, qs := sigs(q); !qe || !qs {
			t.Errorf("signatures qe=%v quote=%v", qe, qs)
		}
	})
	t.Run("QE auth data length", func(t *testing.T) {
		s := f.QuoteSpec
		s.QEAuthData = bytes.Repeat([]byte{7}, 50)
		q := build(t, s)
		h := sha256.Sum256(append(q.Signature.AttestationKey[:], s.QEAuthData...))
		if len(q.Signature.QEAuthData) != 50 || !bytes.Equal(q.Signature.QEReport.ReportData[:32], h[:]) {
			t.Errorf("auth data %d bytes, binding mismatch", len(q.Signature.QEAuthData))
		}
	})
	t.Run("wrong PCK key", func(t *testing.T) {
		other := newPKI(t)
		s := f.QuoteSpec
		s.PCKKey = other.TCBSigning.Key
		if qe, qs := sigs(build(t, s)); qe || !qs {
			t.Errorf("signatures qe=%v quote=%v, want qe invalid", qe, qs)
		}
	})
	t.Run("trailing and no NUL", func(t *testing.T) {
		s := f.QuoteSpec
		s.Trailing = make([]byte, 70)
		s.NoTrailingNUL = true
		q := build(t, s)
		if len(q.Trailing) != 70 {
			t.Errorf("trailing = %d", len(q.Trailing))
		}
		d := q.Signature.Certification.Data
		if d[len(d)-1] != '\n' {
			t.Errorf("PEM ends in %#x", d[len(d)-1])
		}
	})
	t.Run("MutateBytes unparsable", func(t *testing.T) {
		s := f.QuoteSpec
		s.MutateBytes = func(b []byte) []byte { return b[:100] }
		b, err := f.Platform.BuildQuote(s)
		if err != nil {
			t.Fatal(err)
		}
		if b.Parsed != nil || !errors.Is(b.ParseErr, quote.ErrMalformed) || len(b.Raw) != 100 {
			t.Errorf("Parsed=%v ParseErr=%v len=%d", b.Parsed != nil, b.ParseErr, len(b.Raw))
		}
	})
	t.Run("encrypted PPID", func(t *testing.T) {
		for _, typ := range []quote.CertificationType{quote.CertPPIDRSA2048, quote.CertPPIDRSA3072} {
			cd, err := f.Platform.EncryptedPPIDCertification(typ)
			if err != nil {
				t.Fatal(err)
			}
			s := f.QuoteSpec
			s.Certification = &cd
			q := build(t, s)
			e := q.Signature.Certification.EncryptedPPID
			if q.Signature.Certification.Type != typ || e == nil {
				t.Fatalf("type %v, encrypted PPID %v", q.Signature.Certification.Type, e)
			}
			if e.CPUSVN != *f.Platform.Spec.CPUSVN || e.PCESVN != f.Platform.Spec.PCESVN || e.PCEID != f.Platform.Spec.PCEID {
				t.Errorf("encrypted PPID fields %+v", e)
			}
		}
		if _, err := f.Platform.EncryptedPPIDCertification(quote.CertPCKChain); err == nil {
			t.Errorf("type 5 accepted as encrypted PPID")
		}
	})
	t.Run("wrong v5 body size", func(t *testing.T) {
		g := newFixture(t, dcaptest.TDXQuoteV5TD15, dcaptest.FixtureOptions{PKI: f.PKI})
		s := g.QuoteSpec
		s.MutateBytes = func(b []byte) []byte { binary.LittleEndian.PutUint32(b[50:], 584); return b }
		b, err := g.Platform.BuildQuote(s)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(b.ParseErr, quote.ErrBodySize) {
			t.Errorf("ParseErr = %v, want ErrBodySize", b.ParseErr)
		}
	})
}

func TestBuildQuoteDoesNotModifySpec(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dcaptest.TDXQuoteV5TD15, dcaptest.FixtureOptions{})
	td := *f.QuoteSpec.TD
	qe := f.QuoteSpec.QEReport
	auth := bytes.Clone(f.QuoteSpec.QEAuthData)
	s := f.QuoteSpec
	s.MutateBeforeSign = func(q *quote.Quote) { q.TD.MRTD[0]++; q.Signature.QEAuthData[0]++ }
	s.MutateAfterSign = func(q *quote.Quote) { q.TD.MRTD[1]++ }
	if _, err := f.Platform.BuildQuote(s); err != nil {
		t.Fatal(err)
	}
	if f.QuoteSpec.TD.MRTD != td.MRTD || f.QuoteSpec.QEReport.ReportData != qe.ReportData || !bytes.Equal(f.QuoteSpec.QEAuthData, auth) {
		t.Errorf("BuildQuote modified its spec")
	}
}

func TestBuildQuoteRejectsBadSpec(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dcaptest.SGXQuoteV3, dcaptest.FixtureOptions{})
	if _, err := f.Platform.BuildQuote(dcaptest.QuoteSpec{}); err == nil {
		t.Errorf("zero spec accepted")
	}
	if s := f.Platform.DefaultQuoteSpec(0); s.Enclave != nil || s.TD != nil {
		t.Errorf("unknown kind gave a body")
	}
	if _, err := dcaptest.NewFixture(42, dcaptest.FixtureOptions{}); err == nil {
		t.Errorf("unknown kind accepted by NewFixture")
	}
}
