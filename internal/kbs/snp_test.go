package kbs_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/kbs"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
	"github.com/tdproof/tdproof/verifier"
)

const snpMRConfig = `{"app_id":"86e59625be93207bc2351c4d1bba20037cec8e16","compose_hash":"86e59625be93207bc2351c4d1bba20037cec8e168da6b18f559af5af657b7a23","key_provider":"kms","key_provider_id":"3059","version":3}`

// newSNPEnv starts a broker whose verifier trusts g's test AMD PKI and
// pins g's launch measurement.
func newSNPEnv(t *testing.T, dsn string, g *snpsim.Guest) *env {
	t.Helper()
	return newBrokerEnv(t, dsn, "", kbs.Limits{}, func(signer *ear.Signer, clk *clock) *verifier.Verifier {
		refs := refvalue.NewMemoryStore()
		if _, err := refs.Add(t.Context(), refvalue.Value{Name: "snp.measurement", Values: []string{hex.EncodeToString(g.Template.Measurement[:])}}); err != nil {
			t.Fatal(err)
		}
		noCollateral := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) {
			t.Error("SEV-SNP evidence asked for DCAP collateral")
			return nil, nil
		})
		v, err := verifier.New(noCollateral, refs, signer, verifier.WithClock(clk.Now),
			verifier.WithSNPVerifier(snp.NewVerifier(snp.VerifierOptions{Roots: g.PKI.Roots()})))
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
