package kbs

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/verifier"
)

// isTrusteeSNP reports whether primary evidence under tee "snp" is
// Trustee's own SnpEvidence ({"attestation_report", "cert_chain"})
// rather than dstack SEV-SNP evidence ({"attestation"}).
func isTrusteeSNP(primary json.RawMessage) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(primary, &top) != nil {
		return false
	}
	_, ok := top["attestation_report"]
	return ok
}

// appraiseTrusteeSNP checks Trustee SEV-SNP evidence: its report (rebuilt
// from the sev crate's serde form, snp.ParseTrusteeEvidence) must carry
// the session's REPORT_DATA — the runtime-data hash padded to 64 bytes,
// as Trustee's regularize_data does — and the verifier then verifies the
// report over its exact signed bytes with the cert_chain (or the VCEK
// from AMD KDS when the evidence has none and the verifier has a KDS
// source) and appraises the snp.* claims.
func (b *Broker) appraiseTrusteeSNP(ctx context.Context, att *protocol.Attestation, reportData [64]byte) (string, [64]byte, string, *ear.Claims, string) {
	primary := bytes.TrimSpace(att.TeeEvidence.PrimaryEvidence)
	te, err := snp.ParseTrusteeEvidence(primary)
	if err != nil {
		return "", reportData, "", nil, "Trustee SEV-SNP evidence: " + err.Error()
	}
	return b.verifySNPReport(ctx, att, reportData, te.Report, verifier.Evidence{TrusteeSNP: primary})
}
