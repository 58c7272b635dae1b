// Package protocol is the wire layer of the Trustee Key Broker Service
// (KBS) protocol, version 0.4.0, shared by tdproof's key broker and its
// attestation agent.
//
// It holds the RCAR handshake messages ([Request], [Challenge],
// [Attestation], [TokenResponse]), the problem document the broker sends
// on failure ([ErrorInfo] and the [ProblemType] values Trustee uses), the
// TEE public key as a JSON Web Key ([JWK]), the binding of runtime data
// to a TD quote's REPORTDATA ([ReportData]), the JWE that carries a
// released resource ([EncryptResource], [DecryptResource]), and the
// protocol's constants: version, routes, session cookie.
//
// The package does no I/O. Every function that takes wire input returns
// an error that wraps exactly one of the Err* sentinels of this package
// (match with errors.Is); [ErrorInfoFor] maps those to the problem type
// Trustee would report.
//
// Byte-exactness: the report-data binding is SHA-384 over the RFC 8785
// canonical JSON of {"additional-evidence", "nonce", "tee-pubkey"},
// zero-padded to 64 bytes, where tee-pubkey is re-serialized from its
// parsed fields only ("kty" plus "crv", "alg", "x", "y" for EC keys,
// "alg", "n", "e" for RSA keys), as Trustee's server rebuilds it. The
// strings are used verbatim, so a client and a server agree on the
// binding whatever base64 flavour the client chose.
package protocol
