// Package attacktest holds tdproof's omission-and-substitution attack
// campaign (issue 12): TestCampaign builds simulated TDs with package
// tdsim under one fake Intel PKI — TD A (image 1, app 1), B (image 1,
// app 2), C (image 2, app 1) and D (image 1, app 1, debug) — and a store
// pinned to TD A only, then sends every combination of evidence parts
// removed, replaced by another TD's part, or reordered, in every evidence
// form (quote only, quote + CCEL, dstack GetQuote JSON, VersionedAttestation
// V0 and V1, RA-TLS certificate, Trustee KBS evidence) through the
// verification service's /v1/verify and dstack-compatible /verify
// (internal/verifiersvc) and the key broker (internal/kbs).
//
// A combination made only of TD A's own parts (or with optional parts
// left out, or with unsigned parts such as vm_config replaced) is a
// control and must be affirming, valid or released; every other
// combination must be refused: never affirming, never is_valid true,
// never a released secret. The test logs how many combinations it tried
// and how many were accepted, on SQLite and, with
// TDPROOF_TEST_POSTGRES_DSN, PostgreSQL. The package has no non-test
// code.
package attacktest
