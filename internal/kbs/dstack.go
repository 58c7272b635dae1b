package kbs

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/verifier"
)

// dstackPlatforms are the dstack attestation platforms each session tee
// accepts as protocol.DstackEvidence, and the claim tee their verified
// result must have.
var dstackPlatforms = map[protocol.Tee]struct {
	platforms []string
	tee       string
}{
	protocol.TeeNitro: {[]string{dstack.PlatformNitroEnclave, dstack.PlatformAWSNitroTPM}, claims.TEENitro},
	protocol.TeeTdx:   {[]string{"", dstack.PlatformTDX, dstack.PlatformGCPTDX}, claims.TEETDX},
}

// isDstackEvidence reports whether primary evidence is
// protocol.DstackEvidence: an "attestation" member and no "quote".
func isDstackEvidence(primary json.RawMessage) bool {
	// A member named "attestation" is written so, or with escapes: without
	// either there is none, and the document need not be decoded (a TDX
	// quote's base64 is most of it).
	if !bytes.Contains(primary, []byte(`"attestation"`)) && bytes.IndexByte(primary, '\\') < 0 {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(primary, &m) != nil {
		return false
	}
	_, att := m["attestation"]
	_, q := m["quote"]
	return att && !q
}

// appraiseDstack checks protocol.DstackEvidence under a session of tee:
// the attestation must be of a platform the tee names, its report data
// (the NSM user_data, the TDX REPORTDATA, which the verification binds to
// the attestation's) must bind the session nonce and tee-pubkey, and the
// verified result must be authentic, of the tee and carry that report
// data. The verifier appraises the claims; the token's status decides the
// resource policy.
func (b *Broker) appraiseDstack(ctx context.Context, tee protocol.Tee, att *protocol.Attestation, reportData [64]byte) (string, [64]byte, string, *ear.Claims, string) {
	want, ok := dstackPlatforms[tee]
	if !ok {
		return "", reportData, "", nil, "TEE " + string(tee) + " takes no dstack attestation"
	}
	var ev protocol.DstackEvidence
	if err := json.Unmarshal(att.TeeEvidence.PrimaryEvidence, &ev); err != nil || ev.Attestation == "" {
		return "", reportData, "", nil, "primary evidence is not dstack evidence {attestation}"
	}
	raw, err := hex.DecodeString(strings.TrimPrefix(ev.Attestation, "0x"))
	if err != nil {
		return "", reportData, "", nil, "attestation is not hex"
	}
	a, err := dstack.ParseAttestation(raw)
	if err != nil {
		return "", reportData, "", nil, "attestation: " + err.Error()
	}
	if a.SNP != nil || !slices.Contains(want.platforms, a.Platform) {
		return "", reportData, "", nil, "attestation is " + a.TEEVariant() + " evidence, not of TEE " + string(tee)
	}
	if subtle.ConstantTimeCompare(a.ReportData[:], reportData[:]) != 1 {
		return "", reportData, "", nil, "attestation report_data does not bind the session nonce and tee-pubkey"
	}
	body, err := json.Marshal(map[string]string{"attestation": hex.EncodeToString(raw)})
	if err != nil {
		return "", reportData, "", nil, "attestation: " + err.Error()
	}
	out, err := b.cfg.Verifier.Verify(ctx, verifier.Evidence{Dstack: body, Nonce: reportData[:], PolicyID: b.cfg.AttestationPolicyID})
	if err != nil {
		return "", reportData, "", nil, "verification failed: " + err.Error()
	}
	r := out.Result
	if !r.Authentic {
		return "", reportData, "", nil, "evidence is not authentic: " + r.Reason
	}
	// Defence in depth: the signed value the verification bound.
	if r.TEE != want.tee || r.Dstack == nil || subtle.ConstantTimeCompare(r.Dstack.ReportData, reportData[:]) != 1 {
		return "", reportData, "", nil, "verified evidence is not of TEE " + string(tee) + " with the session's report data"
	}
	pj, err := json.Marshal(att.RuntimeData.TeePubKey)
	if err != nil {
		return "", reportData, "", nil, "tee-pubkey: " + err.Error()
	}
	return out.Token, reportData, string(pj), out.TokenClaims, ""
}
