package attacktest

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
	"github.com/tdproof/tdproof/verifier"
)

// snpFleet is the campaign's SEV-SNP side: guest A (on one chip, the
// launch the store pins, with TD A's app identity in its MrConfigV3
// document), its variants B (another launch measurement) and D (DEBUG)
// signed by the same VCEK, and another chip's VCEK.
type snpFleet struct {
	a, b, d   *snpsim.Guest
	otherVCEK *snpsim.EndorsementKey
	docA      string // MrConfigV3 with TD A's compose hash and app id
	docB      string // with TD B's
	// crls are the AMD CRLs the verifier may be given, by label.
	crls []choice
}

func newSNPFleet(t *testing.T, f *fleet) *snpFleet {
	t.Helper()
	a, err := snpsim.NewGuest(snp.ProductMilan)
	if err != nil {
		t.Fatal(err)
	}
	other, err := snpsim.NewGuest(snp.ProductMilan)
	if err != nil {
		t.Fatal(err)
	}
	b, d := *a, *a
	b.Template.Measurement[0] ^= 0xFF
	d.Template.Policy |= snp.PolicyDebug
	doc := func(s *td) string {
		ch, id := identity(s.sim)
		return fmt.Sprintf(`{"app_id":"%x","compose_hash":"%x","key_provider":"none","version":3}`, id, ch)
	}
	sf := &snpFleet{a: a, b: &b, d: &d, otherVCEK: other.Key, docA: doc(f.a), docB: doc(f.b)}
	foreign, err := snpsim.GeneratePKI(snp.ProductMilan, a.PKI.NotBefore, a.PKI.NotAfter)
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	mk := func(label string, own bool, p *snpsim.PKI, this, next time.Time, revoked ...*x509.Certificate) {
		crl, err := p.CRL(this, next, revoked...)
		if err != nil {
			t.Fatal(err)
		}
		sf.crls = append(sf.crls, choice{label, own, [][]byte{crl}})
	}
	now := f.now
	mk("clean", true, a.PKI, now.Add(-day), now.Add(30*day))
	mk("VCEK-revoked", false, a.PKI, now.Add(-day), now.Add(30*day), a.Key.Cert)
	mk("ASK-revoked", false, a.PKI, now.Add(-day), now.Add(30*day), a.PKI.ASK)
	mk("stale", false, a.PKI, now.Add(-3*day), now.Add(-day))
	mk("other-ARK-key", false, foreign, now.Add(-day), now.Add(30*day))
	sf.crls = append(sf.crls, choice{"none", false, [][]byte(nil)})
	return sf
}

// snpRefValues pins guest A's launch measurement.
func (sf *snpFleet) snpRefValues() []refvalue.Value {
	return []refvalue.Value{{Name: "snp.measurement", Values: []string{hex.EncodeToString(sf.a.Template.Measurement[:])},
		Provenance: refvalue.Provenance{Source: "attacktest"}}}
}

// snpOptions make the verifier trust the test AMD PKI and take its AMD
// CRL from e.snpCRL.
func (sf *snpFleet) snpOptions(e *env) []verifier.Option {
	return []verifier.Option{
		verifier.WithSNPVerifier(snp.NewVerifier(snp.VerifierOptions{Roots: sf.a.PKI.Roots()})),
		verifier.WithSNPCRLs(func(context.Context, *snp.Report) ([][]byte, error) {
			if e.snpCRL == nil {
				return nil, fmt.Errorf("attacktest: no AMD CRL")
			}
			return e.snpCRL, nil
		}),
	}
}

// snpSlots are the parts of dstack SEV-SNP evidence and the AMD CRL the
// verifier obtains.
func (sf *snpFleet) snpSlots() []slot {
	return []slot{
		{name: "report", choices: []choice{{"A", true, sf.a}, {"B-measurement", false, sf.b}, {"D-debug", false, sf.d}}},
		{name: "cert_chain", choices: []choice{{"own", true, "own"}, {"other-chip-VCEK", false, "other"}, {"none", false, "none"}}},
		{name: "mr_config", choices: []choice{{"A", true, "A"}, {"B", false, "B"}, {"A-edited", false, "edited"}}},
		{name: "amd_crl", choices: sf.crls},
	}
}

// attestation builds dstack SEV-SNP evidence for picks p over reportData.
func (sf *snpFleet) attestation(t *testing.T, p []choice, reportData [64]byte) []byte {
	t.Helper()
	g := p[0].v.(*snpsim.Guest)
	doc, mutate := sf.docA, func(*snp.Report) {}
	switch p[2].v.(string) {
	case "B":
		doc = sf.docB
	case "edited":
		// The document changed after launch: HOST_DATA still binds A's.
		h := dstack.MRConfigV3Hash(sf.docA)
		doc = sf.docA[:len(sf.docA)-1] + ` }`
		mutate = func(r *snp.Report) { r.HostData = h }
	}
	raw, err := g.DstackAttestation(reportData, doc, "", mutate)
	if err != nil {
		t.Fatal(err)
	}
	if c := p[1].v.(string); c != "own" {
		a, err := dstack.ParseAttestation(raw)
		if err != nil {
			t.Fatal(err)
		}
		if c == "none" {
			a.SNP.CertChain = nil
		} else {
			a.SNP.CertChain[1] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: sf.otherVCEK.Cert.Raw})
		}
		if raw, err = a.Marshal(); err != nil {
			t.Fatal(err)
		}
	}
	return raw
}

// campaignSNP: dstack SEV-SNP evidence of guest A, B, D with its own,
// another chip's or no VCEK, A's, B's or an edited MrConfigV3 document,
// and each AMD CRL the verifier may obtain (clean, revoking A's VCEK or
// the ASK, stale, signed by another ARK's key, none), on /v1/verify,
// /verify and the key broker.
func campaignSNP(t *testing.T, sf *snpFleet, e *env) {
	slots := sf.snpSlots()
	product(slots, func(p []choice) {
		combo, own := describe(slots, p)
		e.snpCRL = p[3].v.([][]byte)
		att := sf.attestation(t, p, verifyReportData)
		ok, detail := e.native(t, map[string]any{"dstack": map[string]string{"attestation": hex.EncodeToString(att)}})
		e.record(t, "snp-native", combo, own, ok, detail)
		ok, detail = e.dstackVerify(t, map[string]any{"attestation": hex.EncodeToString(att)})
		e.record(t, "snp-verify", combo, own, ok, detail)
		ok, detail = e.kbsAttemptTEE(t, protocol.TeeSnp, func(rd [64]byte) []byte {
			ev, err := json.Marshal(protocol.SNPEvidence{Attestation: hex.EncodeToString(sf.attestation(t, p, rd))})
			if err != nil {
				t.Fatal(err)
			}
			return ev
		})
		e.record(t, "snp-kbs", combo, own, ok, detail)
	})
	e.snpCRL = nil
}
