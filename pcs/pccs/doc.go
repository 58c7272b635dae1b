// Package pccs serves a PCCS-compatible collateral API from a
// [pcscache.Cache]: the Intel PCS / PCCS v4 routes for SGX and TDX with
// the same headers and encodings as Intel's PCCS, answered from the cache
// and fetched upstream on a miss, so one process can be the only egress
// to Intel for a whole fleet. It also serves /healthz and /metrics
// (Prometheus text format).
//
// Routes (Intel PCS / PCCS API v4):
//
//	GET  /{sgx,tdx}/certification/v4/tcb?fmspc=&update=&tcbEvaluationDataNumber=
//	GET  /{sgx,tdx}/certification/v4/qe/identity?update=&tcbEvaluationDataNumber=
//	GET  /sgx/certification/v4/qve/identity?update=&tcbEvaluationDataNumber=
//	GET  /sgx/certification/v4/qae/identity?update=&tcbEvaluationDataNumber=
//	GET  /sgx/certification/v4/pckcrl?ca=platform|processor[&encoding=der]   PEM unless encoding=der
//	GET  /sgx/certification/v4/rootcacrl                                       hex text of the DER, as PCCS
//	GET  /sgx/certification/v4/crl?uri=<CRL distribution point>                DER (root CA CRL or a PCS pckcrl URL)
//	GET  /sgx/certification/v4/pckcert?encrypted_ppid=&cpusvn=&pcesvn=&pceid=[&qeid=]
//	GET  /sgx/certification/v4/pckcerts?encrypted_ppid=&pceid=                 every TCB level's certificate (JSON)
//	GET  /sgx/certification/v4/fmspcs
//	POST /sgx/certification/v4/platforms    register a platform (user-token header with WithUserToken)
//	GET  /sgx/certification/v4/platforms?source=reg|reg_na|[FMSPC,…]           admin-token header (WithAdminToken)
//
// Every response body is exactly what the upstream served (or its DER for
// CRLs); the issuer-chain headers carry the upstream's value under
// Intel's v4 spelling, and every response carries a Request-ID (the
// client's, or a new one). Errors are Intel PCCS's: the status and its
// sentence as a text/html body — 400 "Invalid request parameters.", 401
// "Authentication failed.", 404 "No cache data for this platform." for
// collateral the upstream does not have or, offline, the bundle lacks,
// and 503 (with Retry-After) for collateral that cannot be obtained now.
//
// POST /platforms fetches the platform's PCK certificate into the cache
// (online) and answers "Operation successful."; a platform whose
// certificate cannot be fetched (offline, or registered by platform
// manifest, which this proxy does not forward) is queued, and GET
// /platforms (source reg, the default) returns the queue and empties it,
// as Intel's PCCS marks registrations processed; reg_na lists the
// platforms the upstream had no certificate for, [FMSPC,…] the platforms
// registered and cached since start. The lists live in memory, bounded.
package pccs
