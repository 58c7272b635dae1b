package ear

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Profile is the "eat_profile" of tdproof tokens: the EAR profile of
// draft-ietf-rats-ear (JSON serialization), the one Veraison uses. tdproof's
// own additions are "iss", "exp", "jti" (registered JWT claims) and the
// submodule keys below.
const Profile = "tag:github.com,2023:veraison/ear"

// Submodule names, one per evidence item appraised.
const (
	SubmodTDX    = "tdx"    // an Intel TDX quote
	SubmodSGX    = "sgx"    // an Intel SGX quote
	SubmodSNP    = "snp"    // an AMD SEV-SNP attestation report
	SubmodNitro  = "nitro"  // an AWS Nitro attestation document (Nitro Enclave or NitroTPM)
	SubmodDstack = "dstack" // the dstack application identity (event log, compose hash)
)

// Claims is the payload of an EAR token. Times are Unix seconds.
//
// Fields left zero are filled by [Signer.Sign] (Profile, IssuedAt,
// ExpiresAt, Issuer, ID, VerifierID); Submods must be set by the caller.
type Claims struct {
	// Profile is "eat_profile"; if empty, Sign sets [Profile].
	Profile string `json:"eat_profile"`
	// IssuedAt is "iat"; if zero, Sign sets the signer's clock.
	IssuedAt int64 `json:"iat"`
	// ExpiresAt is "exp"; if zero, Sign sets IssuedAt plus the signer's lifetime.
	ExpiresAt int64 `json:"exp"`
	// Issuer is "iss"; if empty, Sign sets the signer's issuer.
	Issuer string `json:"iss,omitempty"`
	// ID is "jti", a unique token id; if empty, Sign sets 16 random bytes,
	// hex-encoded.
	ID string `json:"jti,omitempty"`
	// Nonce is "eat_nonce", the relying party's challenge, copied verbatim.
	// Empty means no nonce was supplied.
	Nonce string `json:"eat_nonce,omitempty"`
	// VerifierID is "ear.verifier-id"; if zero, Sign sets the signer's.
	VerifierID VerifierID `json:"ear.verifier-id"`
	// Submods maps a submodule name ([SubmodTDX], …) to its appraisal. At
	// least one is required.
	Submods map[string]Appraisal `json:"submods"`
}

// VerifierID is "ear.verifier-id": who built the verifier and which build.
type VerifierID struct {
	Developer string `json:"developer"` // e.g. "https://github.com/tdproof/tdproof"
	Build     string `json:"build"`     // e.g. "tdproof v0.6.0"
}

// Appraisal is one submodule of an EAR token.
type Appraisal struct {
	// Status is "ear.status", the verdict for this evidence item.
	Status Status `json:"ear.status"`
	// TrustVector is "ear.trustworthiness-vector"; nil omits it.
	TrustVector *TrustVector `json:"ear.trustworthiness-vector,omitempty"`
	// PolicyID is "ear.appraisal-policy-id". tdproof writes
	// "<policy id>@<version>" (see [PolicyID]).
	PolicyID string `json:"ear.appraisal-policy-id,omitempty"`
	// Claims is "ear.veraison.annotated-evidence": the appraised claim set
	// (package claims) as a JSON object, keyed as in Trustee's token. Empty
	// omits it. It is copied into the token verbatim (compacted).
	Claims json.RawMessage `json:"ear.veraison.annotated-evidence,omitempty"`
	// ClaimsCompact tells Sign that Claims is compact JSON the caller
	// encoded itself (claims.Set's encoding), so it is copied without
	// the compaction pass; Sign still checks in one cheaper pass that it
	// is a single JSON value and compacts (so rejects) it when it is not.
	ClaimsCompact bool `json:"-"`
}

// PolicyID formats a policy id and version as "ear.appraisal-policy-id":
// "<id>@<version>", e.g. "default@3".
func PolicyID(id, version string) string {
	if version == "" {
		return id
	}
	return id + "@" + version
}

// validate checks what both Sign and Verify require of a payload.
func (c *Claims) validate(sentinel error) error {
	if c.Profile == "" {
		return fmt.Errorf("%w: missing eat_profile", sentinel)
	}
	if c.IssuedAt <= 0 || c.ExpiresAt <= 0 {
		return fmt.Errorf("%w: missing iat or exp", sentinel)
	}
	if c.ExpiresAt < c.IssuedAt {
		return fmt.Errorf("%w: exp before iat", sentinel)
	}
	if len(c.Submods) == 0 {
		return fmt.Errorf("%w: no submods", sentinel)
	}
	for name, a := range c.Submods {
		if name == "" {
			return fmt.Errorf("%w: empty submod name", sentinel)
		}
		if !a.Status.Valid() {
			return fmt.Errorf("%w: submod %q: invalid ear.status %d", sentinel, name, int8(a.Status))
		}
		// Whether it is JSON at all: Verify decoded it; Sign compacts it
		// (appendPayload), which rejects what is not JSON.
		if len(a.Claims) > 0 {
			if t := bytes.TrimLeft(a.Claims, " \t\r\n"); len(t) == 0 || t[0] != '{' {
				return fmt.Errorf("%w: submod %q: annotated evidence is not a JSON object", sentinel, name)
			}
		}
	}
	return nil
}
