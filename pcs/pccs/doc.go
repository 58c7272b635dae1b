// Package pccs serves a PCCS-compatible collateral API from a
// [pcscache.Cache]: the Intel PCS / PCCS v4 routes for SGX and TDX with
// the same headers and encodings as Intel's PCCS, answered from the cache
// and fetched upstream on a miss, so one process can be the only egress
// to Intel for a whole fleet. It also serves /healthz and /metrics
// (Prometheus text format).
//
// Routes (dcap.md §3.2):
//
//	GET /{sgx,tdx}/certification/v4/tcb?fmspc=&update=&tcbEvaluationDataNumber=
//	GET /{sgx,tdx}/certification/v4/qe/identity?update=&tcbEvaluationDataNumber=
//	GET /sgx/certification/v4/pckcrl?ca=platform|processor[&encoding=der]   PEM unless encoding=der
//	GET /sgx/certification/v4/rootcacrl                                       hex text of the DER, as PCCS
//	GET /sgx/certification/v4/pckcert?encrypted_ppid=&cpusvn=&pcesvn=&pceid=[&qeid=]
//	GET /sgx/certification/v4/fmspcs
//
// Every response body is exactly what the upstream served (or its DER for
// CRLs); the issuer-chain headers carry the upstream's value under
// Intel's v4 spelling. Unknown collateral is 404, bad parameters 400,
// collateral that cannot be obtained 503.
package pccs
