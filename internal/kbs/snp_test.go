package kbs_test

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
	"github.com/tdproof/tdproof/verifier"
)

const snpMRConfig = `{"app_id":"86e59625be93207bc2351c4d1bba20037cec8e16","compose_hash":"86e59625be93207bc2351c4d1bba20037cec8e168da6b18f559af5af657b7a23","key_provider":"kms","key_provider_id":"3059","version":3}`

// newSNPEnv starts a broker whose verifier trusts g's test AMD PKI, pins
// g's launch measurement and gets a clean current CRL of g's ARK as its
// AMD CRL.
func newSNPEnv(t *testing.T, dsn string, g *snpsim.Guest) *env {
	t.Helper()
	return newSNPEnvCRL(t, dsn, g, func(now time.Time) ([]byte, error) {
		return g.PKI.CRL(now.Add(-time.Hour), now.Add(snpsim.CRLValidity))
	})
}

// newSNPEnvCRL is newSNPEnv with the AMD CRL crl makes at the
// verification time (nil bytes: no CRL obtained).
func newSNPEnvCRL(t *testing.T, dsn string, g *snpsim.Guest, crl func(now time.Time) ([]byte, error)) *env {
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
		v, err := verifier.New(noCollateral, refs, signer, verifier.WithClock(clk.Now),
			verifier.WithSNPVerifier(snp.NewVerifier(snp.VerifierOptions{Roots: g.PKI.Roots()})),
			verifier.WithSNPCRLs(func(context.Context, *snp.Report) ([][]byte, error) {
				b, err := crl(clk.Now())
				if err != nil || b == nil {
					return nil, errors.Join(errors.New("no AMD CRL"), err)
				}
				return [][]byte{b}, nil
			}))
		if err != nil {
			t.Fatal(err)
		}
		return v
	})
}

func (a *agent) authSNP(t *testing.T) string {
	t.Helper()
	return a.authAs(t, protocol.TeeSnp)
}

// snpAttestation is the KBS attestation of g for nonce; mutate changes
// the report before signing, mrConfig "" uses snpMRConfig.
func (a *agent) snpAttestation(t *testing.T, g *snpsim.Guest, nonce string, mrConfig string, mutate func(*snp.Report)) []byte {
	t.Helper()
	rd, err := protocol.ReportData(nonce, a.jwk, "")
	if err != nil {
		t.Fatal(err)
	}
	if mrConfig == "" {
		mrConfig = snpMRConfig
	}
	raw, err := g.DstackAttestation(rd, mrConfig, "", mutate)
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := json.Marshal(protocol.SNPEvidence{Attestation: hex.EncodeToString(raw)})
	return a.attestationBody(t, nonce, ev)
}

// attestationBody is the KBS attestation of the agent's key for nonce
// with primary evidence ev.
func (a *agent) attestationBody(t *testing.T, nonce string, ev json.RawMessage) []byte {
	t.Helper()
	body, err := json.Marshal(protocol.Attestation{
		RuntimeData: protocol.RuntimeData{Nonce: nonce, TeePubKey: a.jwk},
		TeeEvidence: protocol.CompositeEvidence{PrimaryEvidence: ev},
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestSNPReleasesSecret: a snpsim guest whose measurement is pinned gets
// the secret (SQLite and PostgreSQL); any change of a pinned or checked
// field is refused.
func TestSNPReleasesSecret(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductMilan)
	if err != nil {
		t.Fatal(err)
	}
	forEachBackend(t, func(t *testing.T, dsn string) {
		e := newSNPEnv(t, dsn, g)
		a := newAgent(t, e)
		nonce := a.authSNP(t)
		tok := a.attestOK(t, a.snpAttestation(t, g, nonce, "", nil))
		a.wantSecret(t, "")
		tc, err := ear.Verify(tok, e.keys, ear.VerifyOptions{Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		if sm, ok := tc.Submods[ear.SubmodSNP]; !ok || sm.Status != ear.StatusAffirming {
			t.Errorf("token submods %+v", tc.Submods)
		}

		refused := []struct {
			name     string
			mrConfig string
			mutate   func(*snp.Report)
			attest   bool // attestation succeeds, the resource is refused
		}{
			{"measurement changed", "", func(r *snp.Report) { r.Measurement[0] ^= 1 }, true},
			{"debug", "", func(r *snp.Report) { r.Policy |= snp.PolicyDebug }, true},
			{"OutOfDate", "", func(r *snp.Report) { r.CurrentTCB++ }, true},
			{"VMPL 1", "", func(r *snp.Report) { r.VMPL = 1 }, false},
			{"migrate MA", "", func(r *snp.Report) { r.Policy |= snp.PolicyMigrateMA }, false},
			{"HOST_DATA", "", func(r *snp.Report) { r.HostData[0] ^= 1 }, false},
			{"REPORT_DATA", "", func(r *snp.Report) { r.ReportData[0] ^= 1 }, false},
			{"mr_config unknown member", strings.Replace(snpMRConfig, `"version":3`, `"version":3,"x":1`, 1), nil, false},
		}
		for _, c := range refused {
			t.Run(c.name, func(t *testing.T) {
				b := newAgent(t, e)
				nonce := b.authSNP(t)
				code, body := b.attest(t, b.snpAttestation(t, g, nonce, c.mrConfig, c.mutate))
				if !c.attest {
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
		// A report signed by a VCEK of another PKI is not authentic.
		other, err := snpsim.GeneratePKI(snp.ProductMilan, g.PKI.NotBefore, g.PKI.NotAfter)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := other.IssueKey(snpsim.KeyOptions{ChipID: g.Template.ChipID, TCB: snpsim.DefaultTCB})
		if err != nil {
			t.Fatal(err)
		}
		forged := *g
		forged.PKI, forged.Key = other, k2
		b := newAgent(t, e)
		nonce = b.authSNP(t)
		code, body := b.attest(t, b.snpAttestation(t, &forged, nonce, "", nil))
		wantProblem(t, "foreign PKI", code, body, protocol.ProblemAttestationError)
		// TDX evidence under an snp session is refused.
		code, body = b.attest(t, []byte(`{"runtime-data":{"nonce":"x","tee-pubkey":{}},"tee-evidence":{"primary_evidence":{"quote":"AA=="}}}`))
		if code == 200 {
			t.Errorf("garbage under snp session: %d %s", code, body)
		}
	})
}

// TestSNPCRL: the key broker applies the AMD CRL to dstack SEV-SNP
// evidence (SQLite and PostgreSQL): a revoked VCEK or ASK, a CRL past its
// nextUpdate and a CRL signed by another ARK are refused at attestation
// (not authentic); with no CRL the attestation is not affirming and the
// secret is not released (rule crl_checked).
func TestSNPCRL(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductMilan)
	if err != nil {
		t.Fatal(err)
	}
	other, err := snpsim.GeneratePKI(snp.ProductMilan, g.PKI.NotBefore, g.PKI.NotAfter)
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	current := func(p *snpsim.PKI, revoked ...*x509.Certificate) func(time.Time) ([]byte, error) {
		return func(now time.Time) ([]byte, error) { return p.CRL(now.Add(-day), now.Add(day), revoked...) }
	}
	cases := []struct {
		name   string
		crl    func(time.Time) ([]byte, error)
		attest bool // attestation succeeds, the resource is refused
	}{
		{"VCEK revoked", current(g.PKI, g.Key.Cert), false},
		{"ASK revoked", current(g.PKI, g.PKI.ASK), false},
		{"CRL expired", func(now time.Time) ([]byte, error) { return g.PKI.CRL(now.Add(-3*day), now.Add(-day)) }, false},
		{"CRL of another ARK", current(other), false},
		{"CRL missing", func(time.Time) ([]byte, error) { return nil, nil }, true},
	}
	forEachBackend(t, func(t *testing.T, dsn string) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e := newSNPEnvCRL(t, dsn, g, c.crl)
				a := newAgent(t, e)
				nonce := a.authSNP(t)
				code, body := a.attest(t, a.snpAttestation(t, g, nonce, "", nil))
				if !c.attest {
					wantProblem(t, "attest", code, body, protocol.ProblemAttestationError)
					return
				}
				if code != 200 {
					t.Fatalf("attest: %d %s", code, body)
				}
				code, body = a.resource(t, "")
				wantProblem(t, "resource", code, body, protocol.ProblemPolicyDeny)
			})
		}
	})
}
