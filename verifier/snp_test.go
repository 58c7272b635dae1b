package verifier_test

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
	"github.com/tdproof/tdproof/verifier"
)

// TestSNPEndorsement: SEV-SNP evidence without a cert_chain verifies
// with certificates from WithSNPEndorsement, and is not authentic
// without it.
func TestSNPEndorsement(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductGenoa)
	if err != nil {
		t.Fatal(err)
	}
	doc := `{"compose_hash":"0000000000000000000000000000000000000000000000000000000000000000","key_provider":"none"}`
	att, err := g.DstackAttestationNoCerts([64]byte{5}, doc)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ear.GenerateKey(nil)
	ks, _ := ear.NewKeySet(k)
	signer, _ := ear.NewSigner(ks)
	src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return nil, nil })
	base := []verifier.Option{verifier.WithClock(func() time.Time { return snpsim.Now }),
		verifier.WithSNPVerifier(snp.NewVerifier(snp.VerifierOptions{Roots: g.PKI.Roots()}))}
	v, _ := verifier.New(src, nil, signer, base...)
	out, err := v.Verify(t.Context(), verifier.Evidence{Dstack: att})
	if err != nil || out.Result.Authentic {
		t.Fatalf("without endorsement: %v %+v", err, out)
	}
	calls := 0
	v, _ = verifier.New(src, nil, signer, append(base, verifier.WithSNPEndorsement(func(_ context.Context, r *snp.Report) (snp.Certificates, error) {
		calls++
		if r.ChipID != g.Template.ChipID {
			t.Error("endorsement asked for another chip")
		}
		return g.Certificates(), nil
	}))...)
	out, err = v.Verify(t.Context(), verifier.Evidence{Dstack: att})
	if err != nil || !out.Result.Authentic || out.Result.TEE != "snp" || calls != 1 {
		t.Fatalf("with endorsement: %v %+v", err, out.Result)
	}
	// The SEV-SNP path has no image or ACPI check: asking for one is
	// refused, not skipped.
	for _, in := range []*verifier.DstackInputs{{Image: &measure.Image{}}, {ImageOSHash: make([]byte, 32)}, {ACPI: &measure.ACPIDigests{}}} {
		out, err = v.Verify(t.Context(), verifier.Evidence{Dstack: att, DstackInputs: in})
		if !errors.Is(err, verifier.ErrMalformedEvidence) {
			t.Fatalf("SEV-SNP evidence with %+v: %v %+v", in, err, out)
		}
	}
}

// snpCRLVerifier is a verifier for g's test PKI whose AMD CRL source
// returns crls (or err), with g's measurement pinned.
func snpCRLVerifier(t *testing.T, g *snpsim.Guest, crls [][]byte, err error) *verifier.Verifier {
	t.Helper()
	signer := snpSigner(t)
	src := verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return nil, nil })
	refs := refvalue.NewMemoryStore()
	if _, err := refs.Add(t.Context(), refvalue.Value{Name: "snp.measurement", Values: []string{hex.EncodeToString(g.Template.Measurement[:])}}); err != nil {
		t.Fatal(err)
	}
	v, nerr := verifier.New(src, refs, signer, verifier.WithClock(func() time.Time { return snpsim.Now }),
		verifier.WithSNPVerifier(snp.NewVerifier(snp.VerifierOptions{Roots: g.PKI.Roots()})),
		verifier.WithSNPCRLs(func(_ context.Context, r *snp.Report) ([][]byte, error) {
			if r.ChipID != g.Template.ChipID {
				t.Error("CRLs asked for another report")
			}
			return crls, err
		}))
	if nerr != nil {
		t.Fatal(nerr)
	}
	return v
}

// TestSNPCRL: the AMD CRL from WithSNPCRLs is applied to every SEV-SNP
// report. A clean current CRL allows (and the details name it); a revoked
// VCEK or ASK, a CRL past its nextUpdate or one signed by another ARK is
// not authentic; no CRL (none configured, or the source fails) is
// authentic but refused by the default policy (rule crl_checked).
func TestSNPCRL(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductMilan)
	if err != nil {
		t.Fatal(err)
	}
	other, err := snpsim.GeneratePKI(snp.ProductMilan, g.PKI.NotBefore, g.PKI.NotAfter)
	if err != nil {
		t.Fatal(err)
	}
	genoa, err := snpsim.GeneratePKI(snp.ProductGenoa, g.PKI.NotBefore, g.PKI.NotAfter)
	if err != nil {
		t.Fatal(err)
	}
	now, day := snpsim.Now, 24*time.Hour
	mustCRL := func(b []byte, err error) [][]byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return [][]byte{b}
	}
	doc := `{"compose_hash":"0000000000000000000000000000000000000000000000000000000000000000","key_provider":"none"}`
	att, err := g.DstackAttestation([64]byte{5}, doc, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	clean := mustCRL(g.CRL())
	out, err := snpCRLVerifier(t, g, clean, nil).Verify(t.Context(), verifier.Evidence{Dstack: att, Details: true})
	if err != nil || !out.Result.Authentic || !out.Result.Allow || out.Result.Status != ear.StatusAffirming {
		t.Fatalf("clean CRL: %v %+v", err, out.Result)
	}
	if v, _ := out.Result.Claims.Bool("snp.crl_checked"); !v {
		t.Error("snp.crl_checked false with a clean CRL")
	}
	ch := out.Result.Chain
	if len(ch) != 3 || ch[0].Role != verifier.RoleVCEK || ch[1].Role != verifier.RoleASK || ch[2].Role != verifier.RoleARK ||
		ch[0].Revocation != verifier.NotRevoked || ch[1].Revocation != verifier.NotRevoked || ch[2].Revocation != verifier.TrustAnchor ||
		ch[0].CRL != verifier.CRLAMDARK || ch[0].CRLThisUpdate == nil || !ch[0].CRLThisUpdate.Equal(now.Add(-day)) ||
		ch[0].CRLNextUpdate == nil || !ch[0].CRLNextUpdate.Equal(now.Add(snpsim.CRLValidity)) ||
		ch[0].TCB == nil || *ch[0].TCB != snpsim.DefaultTCB || ch[0].Serial == "" || ch[0].Subject == "" {
		t.Errorf("chain details: %+v", ch)
	}
	if d := out.Result.Dstack.SNP.CRL; d == nil || d.Issuer != "ARK-Milan" {
		t.Errorf("result CRL %+v", d)
	}
	cases := []struct {
		name string
		crls [][]byte
		err  error
		want error // nil: authentic, refused by rule crl_checked
	}{
		{"VCEK revoked", mustCRL(g.CRL(g.Key.Cert)), nil, snp.ErrRevoked},
		{"ASK revoked", mustCRL(g.CRL(g.PKI.ASK)), nil, snp.ErrRevoked},
		{"CRL expired", mustCRL(g.PKI.CRL(now.Add(-3*day), now.Add(-day))), nil, snp.ErrCRL},
		{"CRL of another ARK", mustCRL(other.CRL(now.Add(-day), now.Add(day))), nil, snp.ErrCRL},
		{"CRL not yet valid", mustCRL(g.PKI.CRL(now.Add(day), now.Add(3*day))), nil, snp.ErrCRL},
		{"CRL of another product only", mustCRL(genoa.CRL(now.Add(-day), now.Add(day))), nil, nil},
		{"revoked among clean", append(mustCRL(g.CRL()), mustCRL(g.CRL(g.Key.Cert))...), nil, snp.ErrRevoked},
		{"CRL missing", nil, nil, nil},
		{"CRL unavailable", nil, errors.New("KDS down"), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := snpCRLVerifier(t, g, c.crls, c.err).Verify(t.Context(), verifier.Evidence{Dstack: att, Details: true})
			if err != nil {
				t.Fatal(err)
			}
			r := out.Result
			if r.Allow || r.Status == ear.StatusAffirming || r.Status == ear.StatusWarning {
				t.Fatalf("allowed: status %v", r.Status)
			}
			if c.want != nil {
				if r.Authentic || !errors.Is(out.Cause, c.want) {
					t.Fatalf("authentic %v cause %v, want %v", r.Authentic, out.Cause, c.want)
				}
				return
			}
			if !r.Authentic || len(r.Appraisal.Failed) != 1 || r.Appraisal.Failed[0].Rule != policy.RuleCRLChecked {
				t.Fatalf("authentic %v failed %+v", r.Authentic, r.Appraisal.Failed)
			}
			if len(r.Chain) != 3 || r.Chain[0].Revocation != verifier.NotChecked || r.Chain[0].RevocationNote == "" {
				t.Errorf("chain details %+v", r.Chain)
			}
		})
	}
	// Without a CRL source (WithSNPCRLs unset) the same holds.
	v, _ := verifier.New(verifier.CollateralFunc(func(context.Context, *quote.Quote) (*collateral.Collateral, error) { return nil, nil }),
		nil, snpSigner(t), verifier.WithClock(func() time.Time { return now }),
		verifier.WithSNPVerifier(snp.NewVerifier(snp.VerifierOptions{Roots: g.PKI.Roots()})))
	out, err = v.Verify(t.Context(), verifier.Evidence{Dstack: att})
	if err != nil || !out.Result.Authentic || out.Result.Allow {
		t.Fatalf("no CRL source: %v %+v", err, out.Result)
	}
}

func snpSigner(t *testing.T) *ear.Signer {
	t.Helper()
	k, _ := ear.GenerateKey(nil)
	ks, _ := ear.NewKeySet(k)
	s, err := ear.NewSigner(ks)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// trusteeEvidence is Trustee evidence (sev6 form) of a report g attests,
// for g's product, with certs.
func trusteeEvidence(t *testing.T, g *snpsim.Guest, certs []snp.TrusteeCert) []byte {
	t.Helper()
	raw, err := g.Attest([64]byte{7})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := snp.ParseReport(raw)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := snp.MarshalTrusteeEvidence(rep, g.PKI.Product, snp.TrusteeFormSev6, certs)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestTrusteeSNPCarriedCRL: a CRL entry in a Trustee cert_chain is
// ignored (as Trustee does): the client could carry an older CRL that
// predates a revocation. Only the verifier's CRLs (WithSNPCRLs) set
// snp.crl_checked, and a revoking one applies whatever the evidence
// carries.
func TestTrusteeSNPCarriedCRL(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductMilan)
	if err != nil {
		t.Fatal(err)
	}
	clean, err := g.CRL()
	if err != nil {
		t.Fatal(err)
	}
	ev := trusteeEvidence(t, g, []snp.TrusteeCert{
		{Type: snp.TrusteeCertVCEK, Data: g.Key.Cert.Raw}, {Type: snp.TrusteeCertASK, Data: g.PKI.ASK.Raw},
		{Type: snp.TrusteeCertCRL, Data: clean}})
	out, err := snpCRLVerifier(t, g, nil, nil).Verify(t.Context(), verifier.Evidence{TrusteeSNP: ev})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Result
	if v, ok := r.Claims.Bool("snp.crl_checked"); !r.Authentic || !ok || v || r.Allow {
		t.Fatalf("carried CRL only: authentic %v crl_checked %v allow %v", r.Authentic, v, r.Allow)
	}
	if len(r.Appraisal.Failed) != 1 || r.Appraisal.Failed[0].Rule != policy.RuleCRLChecked {
		t.Errorf("failed %+v", r.Appraisal.Failed)
	}
	revoking, err := g.CRL(g.Key.Cert)
	if err != nil {
		t.Fatal(err)
	}
	out, err = snpCRLVerifier(t, g, [][]byte{revoking}, nil).Verify(t.Context(), verifier.Evidence{TrusteeSNP: ev})
	if err != nil {
		t.Fatal(err)
	}
	if out.Result.Authentic || !errors.Is(out.Cause, snp.ErrRevoked) {
		t.Errorf("revoking verifier CRL beside a clean carried one: authentic %v cause %v", out.Result.Authentic, out.Cause)
	}
	out, err = snpCRLVerifier(t, g, [][]byte{clean}, nil).Verify(t.Context(), verifier.Evidence{TrusteeSNP: ev})
	if err != nil || !out.Result.Authentic || !out.Result.Allow {
		t.Fatalf("verifier CRL: %v %+v", err, out.Result)
	}
}

// TestTrusteeSNPVLEK: a VLEK-signed Trustee report with its VLEK and
// ASVK is refused (not authentic) even with a clean CRL: the service
// accepts VCEK-signed reports only.
func TestTrusteeSNPVLEK(t *testing.T) {
	g, err := snpsim.NewGuest(snp.ProductGenoa)
	if err != nil {
		t.Fatal(err)
	}
	if g.Key, err = g.PKI.IssueKey(snpsim.KeyOptions{VLEK: true, TCB: snpsim.DefaultTCB}); err != nil {
		t.Fatal(err)
	}
	g.Template.KeyInfo = uint32(snp.SigningKeyVLEK) << 2
	ev := trusteeEvidence(t, g, []snp.TrusteeCert{
		{Type: snp.TrusteeCertVLEK, Data: g.Key.Cert.Raw}, {Type: snp.TrusteeCertASK, Data: g.PKI.ASVK.Raw}})
	clean, err := g.CRL()
	if err != nil {
		t.Fatal(err)
	}
	out, err := snpCRLVerifier(t, g, [][]byte{clean}, nil).Verify(t.Context(), verifier.Evidence{TrusteeSNP: ev})
	if err != nil {
		t.Fatal(err)
	}
	if out.Result.Authentic || out.Result.Allow || out.Result.Status == ear.StatusAffirming {
		t.Fatalf("VLEK-signed report: authentic %v allow %v status %v", out.Result.Authentic, out.Result.Allow, out.Result.Status)
	}
	if !strings.Contains(out.Result.Reason, "VLEK") {
		t.Errorf("refused for another reason: %s", out.Result.Reason)
	}
}
