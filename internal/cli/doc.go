// Package cli implements the tdproof command line: the command tree
// (`tdproof <noun> <verb>`), flag and environment handling, human and JSON
// output, and the mapping of errors to exit codes. cmd/tdproof is a thin
// wrapper around [Main].
//
// Commands:
//
//	tdproof quote inspect FILE
//	tdproof quote verify FILE [--collateral PATH | --pccs-url URL | --collateral-dir DIR [--offline]] [--policy FILE] [--refvalues FILE | --db DSN [--policy-id ID]]
//	tdproof collateral fetch [QUOTE...] (--fmspc LIST | --all) -o DIR
//	tdproof collateral show DIR|FILE
//	tdproof pccs serve [--listen ADDR] [--collateral-dir DIR]
//	tdproof eventlog replay FILE [--quote QUOTE [--collateral PATH …] [--policy FILE] [--refvalues FILE | --db DSN]]
//	tdproof dstack verify FILE --collateral PATH [--policy FILE] [--refvalues FILE | --db DSN [--policy-id ID]]
//	tdproof measure (--image DIR | --firmware F --kernel K --initrd I --cmdline S) --memory SIZE
//	tdproof measure lite --image DIR
//	tdproof measure diagnose --evidence FILE (--image DIR | lite)
//	tdproof refvalue add|list|remove
//	tdproof serve [--role verifier|kbs|all] [--db DSN] [--kek-file FILE] [--admin-token TOKEN]
//	tdproof agent [--simulate [--simulator-state DIR]] --app-compose FILE
//	tdproof kbs get-resource REPO/TYPE/TAG --kbs-url URL [--simulate [--simulator-state DIR]]
//	tdproof tdsim init|export --simulator-state DIR
//	tdproof demo
//	tdproof version
//	tdproof help [COMMAND]
//
// Every flag has an environment fallback named TDPROOF_ plus the flag name
// in upper case with '-' replaced by '_' (--max-collateral-age reads
// TDPROOF_MAX_COLLATERAL_AGE); a flag on the command line wins. The
// exceptions are --trusted-root, --policy, --policy-id and the *-unsafe
// switches: they can weaken verification, so they are read from the command
// line only and a variable left in the environment cannot turn them on.
//
// # One verdict
//
// quote verify, dstack verify and eventlog replay --quote (with collateral)
// do not appraise on their own: they build a verifier.Verifier, the
// pipeline tdproof serve runs, around the collateral they loaded, with the
// service's built-in default policy unless --policy (a YAML or Rego file,
// compiled as the service compiles a stored policy) or --db (the service's
// database: its policies and reference values) says otherwise, and
// --refvalues (the JSON of tdproof refvalue list). The first line of human
// output, and "verdict" in JSON, is OK (allowed and affirming, exit 0),
// WARNING (allowed but not affirming, exit 0), REJECTED (exit 4 not
// authentic, 5 denied by the policy) or, for eventlog replay --quote
// without collateral, SKIPPED (exit 4: the quote was not verified).
// TestCLIAgreesWithService checks that the CLI and the service decide
// alike on every shared vector.
//
// Human output is the default; --format json writes one versioned JSON
// object to stdout. Diagnostics go to stderr as "tdproof: error: …" and
// "tdproof: hint: …".
//
// # Exit codes
//
// Errors are mapped with errors.Is on the sentinels of packages quote,
// collateral, dcap, pcs, dstack and measure, never by message:
//
//	0  verified and accepted (inspect: parsed, signatures valid or not checkable)
//	1  internal error
//	2  usage: unknown command or flag, missing or extra argument, bad flag
//	   value, an input file (quote, trusted root) that cannot be read
//	3  malformed input: quote.ErrMalformed, quote.ErrUnsupported, collateral
//	   that does not parse (collateral.ErrMalformed), a trusted root that is
//	   not a certificate
//	4  not authentic: dcap.ErrSignature, ErrChain, ErrRevoked, ErrCRL,
//	   ErrQEReportData, ErrQEVendor, ErrQEIdentity, ErrTDXModuleMismatch,
//	   ErrCollateral (and its FMSPC / PCE-ID / signature variants), and with
//	   --strict ErrExpired and ErrNotYetValid
//	   dstack event-log, report-data and MR_CONFIG_ID errors, an event log
//	   that does not replay to the quote
//	   eventlog replay --quote without collateral (not appraised)
//	5  rejected by policy: policy.ErrRejected (any failed rule of the
//	   appraisal), dcap.ErrTCBNotSupported (no TCB level matches: never
//	   acceptable), dstack.ErrTDRejected (MRSIGNERSEAM), measure diagnose
//	   mismatches
//	6  collateral unavailable: the --collateral path does not exist or
//	   cannot be read, a directory lacks a required response, or the
//	   PCS/PCCS or collateral directory cannot provide verified collateral
//	   (pcs.ErrUnavailable, pcs.ErrInvalidResponse)
//
// # Security
//
// --trusted-root replaces the pinned Intel SGX Root CA. A result made that
// way proves nothing about Intel hardware; the human output then says so on
// the line after the verdict and the JSON result carries "intel_root":
// false.
package cli
