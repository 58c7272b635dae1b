// Package ear issues and verifies IETF EAR (Entity Attestation Results,
// draft-ietf-rats-ear) attestation-result tokens as ES256-signed JWTs.
//
// An EAR token is the signed verdict of the verifier: per evidence item (a
// "submodule": [SubmodTDX], [SubmodSGX], [SubmodDstack]) it carries a
// [Status] (affirming, warning, contraindicated, none), an AR4SI
// [TrustVector], the appraisal policy id and the appraised claims; at the top
// level it carries the EAR profile, iat, exp, iss, jti, eat_nonce and
// ear.verifier-id. The claim names follow Trustee's token
// (Trustee's attestation-service EAR profile) so relying parties written for
// Trustee read tdproof tokens: the appraised claims live under
// "ear.veraison.annotated-evidence".
//
// [Signer] signs with the active key of a [KeySet]; the key id ("kid") is
// the RFC 7638 JWK thumbprint. A KeySet keeps previous keys for verification
// after a rotation, publishes them with [KeySet.JWKS], and keys are
// persisted with [Key.MarshalPEM] / [ParseKeyPEM] (PKCS#8). [Verify] is the
// relying-party helper.
//
// Package ear does not appraise evidence, store keys or serve the JWKS over
// HTTP: [Derive] turns an appraisal [Summary] filled by the policy layer into
// a trust vector, the store persists PEM keys, and the verification service
// serves the document returned by [KeySet.JWKS].
//
// # Security
//
// Only ES256 (ECDSA P-256 with SHA-256) is produced and accepted; "none",
// HMAC and every other algorithm are rejected before any key is used, and
// the verification key is chosen only by "kid" from the caller's key set,
// never from an embedded "jwk", "jku", "x5u" or "x5c" header.
// [VerifyOptions] with an empty ExpectedNonce or ExpectedIssuer does not
// check that claim: a relying party that sent a nonce must set it.
package ear
