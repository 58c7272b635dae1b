package kbs_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/store/storetest"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
	"github.com/tdproof/tdproof/verifier"
)

// newTrusteeSNPEnv is newSNPEnv with an optional AMD KDS stand-in: kds,
// when not nil, supplies the certificates of evidence without a
// cert_chain. The AMD CRL is a clean current one of g's ARK.
func newTrusteeSNPEnv(t *testing.T, dsn string, g *snpsim.Guest, kds func(*snp.Report) (snp.Certificates, error)) *env {
	t.Helper()
	return newTrusteeSNPEnvCRL(t, dsn, g, kds, func(now time.Time) ([]byte, error) {
		return g.PKI.CRL(now.Add(-time.Hour), now.Add(snpsim.CRLValidity))
	})
}

// newTrusteeSNPEnvCRL is newTrusteeSNPEnv with the AMD CRL crl makes at
// the verification time (nil bytes: no CRL obtained).
func newTrusteeSNPEnvCRL(t *testing.T, dsn string, g *snpsim.Guest, kds func(*snp.Report) (snp.Certificates, error), crl func(now time.Time) ([]byte, error)) *env {
	t.Helper()
	return newBrokerEnv(t, dsn, "", limitOpts{}, func(signer *ear.Signer, clk *clock) *verifier.Verifier {
		refs := refvalue.NewMemoryStore()
		if _, err := refs.Add(t.Context(), refvalue.Value{Name: "snp.measurement", Values: []string{hex.EncodeToString(g.Template.Measurement[:])}}); err != nil {
			t.Fatal(err)
		}
		noCollateral := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) {
			t.Error("SEV-SNP evidence asked for DCAP collateral")
			return nil, nil
		})
		opts := []verifier.Option{verifier.WithClock(clk.Now), verifier.WithSNPVerifier(snp.NewVerifier(snp.VerifierOptions{Roots: g.PKI.Roots()})),
			verifier.WithSNPCRLs(func(context.Context, *snp.Report) ([][]byte, error) {
				b, err := crl(clk.Now())
				if err != nil || b == nil {
					return nil, errors.Join(errors.New("no AMD CRL"), err)
				}
				return [][]byte{b}, nil
			})}
		if kds != nil {
			opts = append(opts, verifier.WithSNPEndorsement(func(_ context.Context, r *snp.Report) (snp.Certificates, error) { return kds(r) }))
		}
		v, err := verifier.New(noCollateral, refs, signer, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return v
	})
}

// trusteeEvidence is how the Trustee attester of g would send a report:
// mutate changes the report before signing, chain is the cert_chain (nil:
// null), tamper edits the JSON after signing.
type trusteeEvidence struct {
	form   snp.TrusteeForm
	mutate func(*snp.Report)
	chain  func(g *snpsim.Guest) []snp.TrusteeCert
	tamper func(string) string
	// bindKey, when set, is bound into REPORT_DATA instead of the
	// session's tee-pubkey.
	bindKey *protocol.JWK
}

// vcekChain is the cert_chain the kernel's certificate table gives: VCEK,
// ASK and ARK.
func vcekChain(g *snpsim.Guest) []snp.TrusteeCert {
	return []snp.TrusteeCert{{Type: snp.TrusteeCertVCEK, Data: g.Key.Cert.Raw}, {Type: snp.TrusteeCertASK, Data: g.PKI.ASK.Raw}, {Type: snp.TrusteeCertARK, Data: g.PKI.ARK.Raw}}
}

func (a *agent) trusteeSNPAttestation(t *testing.T, g *snpsim.Guest, nonce string, te trusteeEvidence) []byte {
	t.Helper()
	key := a.jwk
	if te.bindKey != nil {
		key = *te.bindKey
	}
	rd, err := protocol.ReportData(nonce, key, "")
	if err != nil {
		t.Fatal(err)
	}
	r := g.Template
	r.ReportData = rd
	if te.mutate != nil {
		te.mutate(&r)
	}
	raw, err := g.AttestReport(&r)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := snp.ParseReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	var chain []snp.TrusteeCert
	if te.chain != nil {
		chain = te.chain(g)
	}
	form := te.form
	if form == "" {
		form = snp.TrusteeFormSev6
	}
	js, err := snp.MarshalTrusteeEvidence(rep, g.PKI.Product, form, chain)
	if err != nil {
		t.Fatal(err)
	}
	ev := string(js)
	if te.tamper != nil {
		ev = te.tamper(ev)
	}
	return a.attestationBody(t, nonce, json.RawMessage(ev))
}

// TestTrusteeSNPReleasesSecret: Trustee's own SEV-SNP evidence (both sev
// serde forms, Milan and Turin, with a cert_chain) of a snpsim guest
// whose measurement is pinned gets the secret, on SQLite and PostgreSQL;
// every changed field, a wrong binding and a missing or foreign chain are
// refused.
func TestTrusteeSNPReleasesSecret(t *testing.T) {
	milan, err := snpsim.NewGuest(snp.ProductMilan)
	if err != nil {
		t.Fatal(err)
	}
	turin, err := snpsim.NewGuest(snp.ProductTurin)
	if err != nil {
		t.Fatal(err)
	}
	forEachBackend(t, func(t *testing.T, dsn string) {
		for _, c := range []struct {
			g    *snpsim.Guest
			form snp.TrusteeForm
		}{{milan, snp.TrusteeFormSev6}, {milan, snp.TrusteeFormReprC}, {turin, snp.TrusteeFormSev6}, {turin, snp.TrusteeFormReprC}} {
			t.Run(c.g.PKI.Product.String()+"/"+string(c.form), func(t *testing.T) {
				e := newTrusteeSNPEnv(t, dsn, c.g, nil)
				a := newAgent(t, e)
				nonce := a.authSNP(t)
				tok := a.attestOK(t, a.trusteeSNPAttestation(t, c.g, nonce, trusteeEvidence{form: c.form, chain: vcekChain}))
				a.wantSecret(t, "")
				tc, err := ear.Verify(tok, e.keys, ear.VerifyOptions{Now: e.clock.Now})
				if err != nil {
					t.Fatal(err)
				}
				if sm, ok := tc.Submods[ear.SubmodSNP]; !ok || sm.Status != ear.StatusAffirming {
					t.Errorf("token submods %+v", tc.Submods)
				}
			})
		}

		g := milan
		e := newTrusteeSNPEnv(t, dsn, g, nil)
		other, err := snpsim.GeneratePKI(snp.ProductMilan, g.PKI.NotBefore, g.PKI.NotAfter)
		if err != nil {
			t.Fatal(err)
		}
		foreignKey, err := other.IssueKey(snpsim.KeyOptions{ChipID: g.Template.ChipID, TCB: snpsim.DefaultTCB})
		if err != nil {
			t.Fatal(err)
		}
		otherKey := newAgent(t, e).jwk
		type refusal struct {
			name   string
			te     trusteeEvidence
			attest bool   // attestation succeeds, the resource is refused
			reason string // in the attest problem's detail
		}
		refused := []refusal{
			{"measurement changed", trusteeEvidence{chain: vcekChain, mutate: func(r *snp.Report) { r.Measurement[0] ^= 1 }}, true, ""},
			{"debug", trusteeEvidence{chain: vcekChain, mutate: func(r *snp.Report) { r.Policy |= snp.PolicyDebug }}, true, ""},
			{"OutOfDate", trusteeEvidence{chain: vcekChain, mutate: func(r *snp.Report) { r.CurrentTCB++ }}, true, ""},
			{"VMPL 1", trusteeEvidence{chain: vcekChain, mutate: func(r *snp.Report) { r.VMPL = 1 }}, false, "vmpl"},
			{"migrate MA", trusteeEvidence{chain: vcekChain, mutate: func(r *snp.Report) { r.Policy |= snp.PolicyMigrateMA }}, false, "policy_migrate_ma"},
			{"REPORT_DATA", trusteeEvidence{chain: vcekChain, mutate: func(r *snp.Report) { r.ReportData[0] ^= 1 }}, false, "REPORT_DATA does not bind"},
			{"bound to another key", trusteeEvidence{chain: vcekChain, bindKey: &otherKey}, false, "REPORT_DATA does not bind"},
			{"report_data padding not zero", trusteeEvidence{chain: vcekChain, mutate: func(r *snp.Report) { r.ReportData[63] = 1 }}, false, "REPORT_DATA does not bind"},
			{"no cert_chain and no KDS", trusteeEvidence{}, false, "no cert_chain and no AMD KDS source"},
			{"empty cert_chain and no KDS", trusteeEvidence{chain: func(*snpsim.Guest) []snp.TrusteeCert { return []snp.TrusteeCert{} }}, false, "no cert_chain and no AMD KDS source"},
			{"VCEK of another PKI", trusteeEvidence{chain: func(*snpsim.Guest) []snp.TrusteeCert {
				return []snp.TrusteeCert{{Type: snp.TrusteeCertVCEK, Data: foreignKey.Cert.Raw}, {Type: snp.TrusteeCertASK, Data: g.PKI.ASK.Raw}}
			}}, false, "VCEK signature"},
			{"ARK that is not the trusted root", trusteeEvidence{chain: func(g *snpsim.Guest) []snp.TrusteeCert {
				return append(vcekChain(g)[:2], snp.TrusteeCert{Type: snp.TrusteeCertARK, Data: other.ARK.Raw})
			}}, false, "ARK is not the pinned AMD root"},
			{"VLEK entry for a VCEK-signed report", trusteeEvidence{chain: func(g *snpsim.Guest) []snp.TrusteeCert {
				return []snp.TrusteeCert{{Type: snp.TrusteeCertVLEK, Data: g.Key.Cert.Raw}}
			}}, false, "no VCEK entry"},
			{"unknown member", trusteeEvidence{chain: vcekChain, tamper: func(s string) string {
				return strings.Replace(s, `"vmpl":0`, `"vmpl":0,"extra":1`, 1)
			}}, false, `unknown member \"extra\"`},
			{"dstack and Trustee members", trusteeEvidence{chain: vcekChain, tamper: func(s string) string {
				return strings.Replace(s, `{"attestation_report"`, `{"attestation":"00","attestation_report"`, 1)
			}}, false, `unknown member \"attestation\"`},
		}
		// Each signed field changed after signing: the rebuilt bytes no
		// longer carry the signature.
		for _, f := range []struct{ old, new string }{
			{`"guest_svn":1`, `"guest_svn":2`}, {`"policy":196608`, `"policy":196609`},
			{`"family_id":[0,`, `"family_id":[1,`}, {`"image_id":[0,`, `"image_id":[1,`},
			{`"plat_info":35`, `"plat_info":33`}, {`"measurement":[0,`, `"measurement":[1,`},
			{`"host_data":[0,`, `"host_data":[1,`}, {`"id_key_digest":[0,`, `"id_key_digest":[1,`},
			{`"author_key_digest":[0,`, `"author_key_digest":[1,`}, {`"report_id":[0,`, `"report_id":[1,`},
			{`"report_id_ma":[0,`, `"report_id_ma":[1,`}, {`"cpuid_step":1`, `"cpuid_step":2`},
			{`"cpuid_mod_id":1,`, `"cpuid_mod_id":2,`}, {`"current":{"major":1`, `"current":{"major":2`},
			{`"committed":{"major":1,"minor":55`, `"committed":{"major":1,"minor":56`},
			{`"launch_tcb":{"fmc":null,"bootloader":4`, `"launch_tcb":{"fmc":null,"bootloader":5`},
			{`"committed_tcb":{"fmc":null,"bootloader":4`, `"committed_tcb":{"fmc":null,"bootloader":5`},
			{`"current_tcb":{"fmc":null,"bootloader":4`, `"current_tcb":{"fmc":null,"bootloader":5`},
		} {
			refused = append(refused, refusal{"signed field " + f.old, trusteeEvidence{chain: vcekChain, tamper: func(s string) string {
				if !strings.Contains(s, f.old) {
					t.Fatalf("%q not in the evidence", f.old)
				}
				return strings.Replace(s, f.old, f.new, 1)
			}}, false, "signature does not verify"})
		}
		for _, c := range refused {
			t.Run(c.name, func(t *testing.T) {
				b := newAgent(t, e)
				nonce := b.authSNP(t)
				code, body := b.attest(t, b.trusteeSNPAttestation(t, g, nonce, c.te))
				if !c.attest {
					if !strings.Contains(string(body), c.reason) {
						t.Errorf("refused for another reason than %q: %s", c.reason, body)
					}
					wantProblem(t, "attest", code, body, protocol.ProblemAttestationError)
					return
				}
				if code != 200 {
					t.Fatalf("attest: %d %s", code, body)
				}
				code, body = b.resource(t, "")
				wantProblem(t, "resource", code, body, protocol.ProblemPolicyDeny)
			})
		}
	})
}

// TestTrusteeSNPFromKDS: Trustee evidence without a cert_chain is
// verified with the VCEK the verifier's AMD KDS source returns for the
// report (chip ID and REPORTED_TCB), and refused when that source fails
// or returns another chip's VCEK.
func TestTrusteeSNPFromKDS(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductGenoa)
	if err != nil {
		t.Fatal(err)
	}
	other, err := g.PKI.IssueKey(snpsim.KeyOptions{ChipID: [64]byte{1}, TCB: snpsim.DefaultTCB})
	if err != nil {
		t.Fatal(err)
	}
	var asked []*snp.Report
	serve := g.Key
	kds := func(r *snp.Report) (snp.Certificates, error) {
		asked = append(asked, r)
		if serve == nil {
			return snp.Certificates{}, context.DeadlineExceeded
		}
		return snp.Certificates{ASK: g.PKI.ASK, VCEK: serve.Cert}, nil
	}
	e := newTrusteeSNPEnv(t, storetest.SQLiteDSN(t), g, kds)
	a := newAgent(t, e)
	nonce := a.authSNP(t)
	a.attestOK(t, a.trusteeSNPAttestation(t, g, nonce, trusteeEvidence{}))
	a.wantSecret(t, "")
	if len(asked) != 1 || asked[0].ChipID != g.Template.ChipID {
		t.Fatalf("KDS asked %d times", len(asked))
	}
	for _, k := range []*snpsim.EndorsementKey{other, nil} {
		serve = k
		b := newAgent(t, e)
		nonce := b.authSNP(t)
		code, body := b.attest(t, b.trusteeSNPAttestation(t, g, nonce, trusteeEvidence{}))
		wantProblem(t, "attest", code, body, protocol.ProblemAttestationError)
	}
}

// TestTrusteeSNPCRL: the verifier's AMD CRL applies to Trustee evidence
// as to dstack evidence: a revoked VCEK is not authentic, and without a
// CRL the token is not affirming (rule crl_checked), so nothing is
// released.
func TestTrusteeSNPCRL(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductMilan)
	if err != nil {
		t.Fatal(err)
	}
	revoked := newTrusteeSNPEnvCRL(t, storetest.SQLiteDSN(t), g, nil, func(now time.Time) ([]byte, error) {
		return g.PKI.CRL(now.Add(-time.Hour), now.Add(snpsim.CRLValidity), g.Key.Cert)
	})
	a := newAgent(t, revoked)
	nonce := a.authSNP(t)
	code, body := a.attest(t, a.trusteeSNPAttestation(t, g, nonce, trusteeEvidence{chain: vcekChain}))
	wantProblem(t, "revoked VCEK", code, body, protocol.ProblemAttestationError)
	if !strings.Contains(string(body), "revoked") {
		t.Errorf("refused for another reason: %s", body)
	}
	noCRL := newTrusteeSNPEnvCRL(t, storetest.SQLiteDSN(t), g, nil, func(time.Time) ([]byte, error) { return nil, nil })
	b := newAgent(t, noCRL)
	nonce = b.authSNP(t)
	if code, body := b.attest(t, b.trusteeSNPAttestation(t, g, nonce, trusteeEvidence{chain: vcekChain})); code != 200 {
		t.Fatalf("attest without a CRL: %d %s", code, body)
	}
	code, body = b.resource(t, "")
	wantProblem(t, "resource without a CRL", code, body, protocol.ProblemPolicyDeny)
}
