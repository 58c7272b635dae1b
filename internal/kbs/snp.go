package kbs

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/verifier"
)

// appraiseSNP checks tee "snp" evidence: Trustee's SnpEvidence goes to
// appraiseTrusteeSNP; otherwise protocol.SNPEvidence (dstack SEV-SNP
// evidence): its signed REPORT_DATA must bind the session nonce and
// tee-pubkey; the verifier then verifies the report, chain, HOST_DATA
// binding and identity and appraises the snp.* and dstack.* claims.
func (b *Broker) appraiseSNP(ctx context.Context, att *protocol.Attestation, reportData [64]byte) (string, [64]byte, string, *ear.Claims, string) {
	if isTrusteeSNP(att.TeeEvidence.PrimaryEvidence) {
		return b.appraiseTrusteeSNP(ctx, att, reportData)
	}
	var ev protocol.SNPEvidence
	if err := json.Unmarshal(att.TeeEvidence.PrimaryEvidence, &ev); err != nil || ev.Attestation == "" {
		return "", reportData, "", nil, "primary evidence is neither dstack SEV-SNP evidence {attestation} nor Trustee SEV-SNP evidence {attestation_report, cert_chain}"
	}
	raw, err := hex.DecodeString(strings.TrimPrefix(ev.Attestation, "0x"))
	if err != nil {
		return "", reportData, "", nil, "attestation is not hex"
	}
	a, err := dstack.ParseAttestation(raw)
	if err != nil || a.SNP == nil {
		return "", reportData, "", nil, "attestation is not dstack SEV-SNP evidence"
	}
	r, err := snp.ParseReport(a.SNP.Report)
	if err != nil {
		return "", reportData, "", nil, "report: " + err.Error()
	}
	body, err := json.Marshal(map[string]string{"attestation": hex.EncodeToString(raw)})
	if err != nil {
		return "", reportData, "", nil, "attestation: " + err.Error()
	}
	return b.verifySNPReport(ctx, att, reportData, r, verifier.Evidence{Dstack: body})
}

// verifySNPReport requires r, the report of the evidence ev, to carry the
// session's REPORT_DATA, then has the verifier verify ev (with the
// REPORT_DATA as nonce) and appraise it under the attestation policy.
func (b *Broker) verifySNPReport(ctx context.Context, att *protocol.Attestation, reportData [64]byte, r *snp.Report, ev verifier.Evidence) (string, [64]byte, string, *ear.Claims, string) {
	if subtle.ConstantTimeCompare(r.ReportData[:], reportData[:]) != 1 {
		return "", reportData, "", nil, "report REPORT_DATA does not bind the session nonce and tee-pubkey"
	}
	ev.Nonce, ev.PolicyID = reportData[:], b.cfg.AttestationPolicyID
	out, err := b.cfg.Verifier.Verify(ctx, ev)
	if err != nil {
		return "", reportData, "", nil, "verification failed: " + err.Error()
	}
	if !out.Result.Authentic {
		return "", reportData, "", nil, "evidence is not authentic: " + out.Result.Reason
	}
	pj, err := json.Marshal(att.RuntimeData.TeePubKey)
	if err != nil {
		return "", reportData, "", nil, "tee-pubkey: " + err.Error()
	}
	return out.Token, reportData, string(pj), out.TokenClaims, ""
}
