// Package rego compiles Rego appraisal policies for package policy with
// OPA's v1/rego: Compile returns a *policy.Policy whose prepared query
// runs on every policy.Appraise. Parse compiles either format and is the
// policy.ParseFunc the verification service gives policy.NewCache.
//
// It is a separate package because OPA links net/http (for http.send,
// which Compile removes from the capabilities) and log/slog, which the
// appraise-layer packages claims, refvalue and policy must not depend on
// (internal/archtest).
//
// # Security
//
// A policy is user code. It cannot reach the network or the host
// (http.send, net.lookup_ip_addr, opa.runtime, rego.parse_module and
// trace are not available) and sees only the claims, the reference values
// and the expected report data; time.now_ns() is the appraisal time.
// Evaluation runs under the caller's ctx, which should carry a deadline.
package rego
