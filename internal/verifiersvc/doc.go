// Package verifiersvc is the HTTP front of the verification pipeline
// (package verifier), served by "tdproof serve".
//
// # Routes
//
//	POST /v1/verify              native request, versioned result + EAR token
//	POST /verify                 dstack-verifier compatible
//	POST /v1/verify-cert         a dstack RA-TLS certificate (dstack-verifier --verify-cert)
//	GET  /health                 dstack-verifier's health check (as /healthz)
//	GET  /.well-known/jwks.json  the EAR verification keys
//	GET  /healthz                the process is up
//	GET  /readyz                 the store is reachable
//	GET  /metrics                Prometheus text format
//	GET  /openapi.json           OpenAPI 3.1 description of every route
//
// and the admin API (below) under /admin/v1/.
//
// # POST /v1/verify
//
// The request is a JSON object (unknown members are rejected):
//
//	{
//	  "quote":       "<DCAP quote (TDX or SGX): hex, optionally 0x-prefixed, or base64>",
//	  "cc_eventlog": "<with a TDX quote: the CCEL boot event log, hex or base64>",
//	  "dstack":      <dstack evidence>,
//	  "nonce":     "<hex, at most 64 bytes: a prefix of REPORTDATA, returned as eat_nonce>",
//	  "policy_id": "<policy id; absent or empty: the active policy>",
//	  "details":   <true: add the result's chain and event_log members>
//	}
//
// Exactly one of quote and dstack is given. A cc_eventlog must replay to
// the quote's RTMR0–2 (else the result is not authentic, reason
// verifier.ErrEventLog) and adds the tdx.eventlog.* claims. dstack is any evidence
// dstack.ParseEvidence reads: a JSON object as is (a guest GetQuote/Attest
// response, or {"attestation": "<hex>"}), or a string holding a PEM RA-TLS
// certificate, hex or base64 (standard or URL alphabet) of a
// VersionedAttestation, a DER certificate or the JSON.
//
// The response (200, Content-Type verifier.MediaType) is
//
//	{"media_type": "…verification-result.v1+json", "result": <verifier.Result>, "token": "<EAR JWT>"}
//
// Evidence that is not authentic or that the policy rejects is a 200 whose
// result says so (authentic, allow, ear_status, appraisal.failed). The token
// verifies with the keys of /.well-known/jwks.json and carries the nonce as
// eat_nonce (base64url, verifier.NonceClaim).
//
// # POST /verify
//
// dstack-verifier's request ({"quote", "event_log", "vm_config", "debug"}
// or {"attestation"}, hex without 0x; beside an attestation, quote,
// event_log, report_data and vm_config must be its own, where
// dstack-verifier ignores them) and response
// ({"is_valid", "details", "reason"}), as dstack-verifier documents them
// (docs/service.md): every verification outcome is a 200, also invalid
// evidence, a collateral outage and undecodable evidence; details always
// carries dstack-verifier's members, and the quote's facts (quote_verified,
// tee_variant, report_data, tcb_status, advisory_ids) whenever the quote
// verified, independently of the event-log verdict; the event-log facts
// (app_info, key_provider, boot_info) only when every step passed. reason
// is null when valid, and otherwise starts with "Quote verification
// failed:", "Event log verification failed:", "OS image hash verification
// failed:", "Internal error:" or "Policy rejected:". With "debug": true a
// register mismatch adds details.rtmr_debug. is_valid is true only when the
// evidence is authentic and the active policy allows it, unless
// Options.DstackCompatPolicy selects dstack-verifier's own rule (quote,
// event log and OS image verified; TCB status other than Revoked; no DEBUG
// or service TD). GET /health answers {"status": "ok", "service":
// ServiceName} as dstack-verifier's does.
//
// # POST /v1/verify-cert
//
// The body is a JSON object {"certificate": "<PEM, or DER as hex or
// base64>", "policy_id": "<optional>"} (Content-Type application/json;
// unknown members are rejected), or the certificate itself, PEM or DER,
// with Content-Type application/pkix-cert, application/x-pem-file,
// application/pem-certificate-chain or application/octet-stream and the
// policy in the query (?policy_id=). Any other Content-Type is 415
// unsupported_media_type; the body limit is Options.MaxBodyBytes.
//
// The steps are tdproof dstack verify-cert's (docs/ratls.md), sharing its
// library functions: dstack.ParseCertificate; dstack.CheckCertificateProfile
// at the verifier's clock; the pipeline of /v1/verify on the certificate
// (every platform it verifies, appraised by the policy); then
// dstack.NewCertVerification, which requires report_data =
// SHA-512("ratls-cert:" ‖ SubjectPublicKeyInfo) of this certificate. A body
// that is not a certificate is 400 malformed_evidence. A certificate gets a
// 200 verdict: dstack's {"is_valid": true, "details": {tee_variant,
// report_data, public_key_der, app_info}}, the JSON document the CLI
// prints, or {"is_valid": false, "reason", "code"} with code not_attested
// (no dstack attestation extension), certificate_profile,
// malformed_attestation (the extension does not parse or holds evidence
// the pipeline does not verify), not_authentic, certificate_binding (the
// attestation binds another key) or rejected (the policy denies it).
// Unknown policies, collateral outages and timeouts are the problems of
// /v1/verify.
//
// # Admin API
//
// Options.AdminToken enables it; without a token every /admin/v1/ route
// answers 404 not_found, as if it did not exist. Each request carries
// "Authorization: Bearer <token>", compared in constant time (of SHA-256
// digests); a missing or wrong token is 401 unauthorized with
// WWW-Authenticate. mTLS is not offered. Policies and reference values
// come from Options.Policies and Options.RefValues (*store.Store and its
// RefValues()), the cache report from Options.Collateral
// (*pcscache.Cache).
//
//	GET    /admin/v1/policies[?id=ID]                       {"policies": [{id, version, kind, body, description, author, active, created_at, activated_at}]}
//	POST   /admin/v1/policies                               {id, kind: yaml|rego, body, description, activate} → 201 the stored version
//	POST   /admin/v1/policies/{id}/versions/{version}/activate
//	POST   /admin/v1/policies/dry-run                       {kind, body, id?, quote | dstack, nonce?} → {media_type, result}, no token, nothing stored
//	GET    /admin/v1/refvalues                              {"refvalues": [refvalue.Value]}
//	POST   /admin/v1/refvalues                              refvalue.Value → 201 the normalized value with its id
//	DELETE /admin/v1/refvalues/{id}                         204
//	GET    /admin/v1/collateral                             counters and items {key, issue_date, next_update, valid_until, fetched_at, age_seconds, failures}
//
// A policy body must compile (YAML with policy.ParseYAML, Rego with
// policy/rego) or the request is 400 invalid_policy with the compiler's
// message. Activation is seen by the next verification of every replica
// on the same database: the resolver reads the active version per request
// (compiled once per id, version and source hash). A dry run needs the
// verifier's resolver wrapped with DryRunResolver, otherwise it is 501
// dry_run_unavailable; its result names policy version "dry-run".
//
// # Errors
//
// Errors are RFC 9457 problem details (application/problem+json) with a
// stable "code" member:
//
//	400 malformed_request      the body is not the JSON expected (syntax, types, unknown members)
//	400 malformed_evidence     the evidence does not parse (truncated quote, bad nonce, …)
//	400 invalid_policy         admin: the policy does not compile, or kind/id is wrong
//	400 invalid_refvalue       admin: the reference value is malformed
//	400 invalid_request        admin: the store rejected an argument
//	401 unauthorized           admin: missing or wrong bearer token
//	404 not_found              no such route
//	404 unknown_policy         policy_id names no policy (admin: no such policy version)
//	404 unknown_refvalue       admin: no reference value has that id
//	405 method_not_allowed
//	415 unsupported_media_type /v1/verify-cert: a Content-Type it does not read
//	408 request_timeout        the client was too slow or went away
//	409 conflict               admin: the policy version exists
//	413 body_too_large         the body exceeds the size limit (default 1 MiB)
//	500 internal               a failure of the service (never caused by the evidence)
//	501 dry_run_unavailable    admin: the verifier's resolver lacks DryRunResolver
//	503 collateral_unavailable the collateral could not be obtained
//	503 not_ready              /readyz: the store is unreachable
//
// /verify answers every verification outcome with a 200 (above); its
// problems (400 malformed_request, 408, 413) additionally carry
// "is_valid": false, "details" and "reason", so that dstack-verifier
// clients read a failure.
package verifiersvc
