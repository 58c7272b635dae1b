// Package dcaptest builds Intel DCAP attestation evidence for tests: a
// fake Intel SGX PKI, PCK certificates, signed SGX and TDX quotes, and
// signed collateral, all shaped byte for byte like Intel's (the quote
// layout of Intel's DCAP quote library and the PCS API v4 responses).
//
// The pieces:
//
//   - [NewPKI] creates a root CA, the PCK Platform and Processor CAs and
//     the TCB signing certificate, with Intel's names, extensions and
//     key usages, and issues CRLs ([PKI.RootCRL], [PKI.PCKCRL]).
//   - [PKI.NewPlatform] issues a PCK leaf certificate whose SGX
//     extension carries the platform's FMSPC, PCE-ID and TCB.
//   - [Platform.BuildQuote] builds SGX v3/v4/v5 and TDX v4/v5 (TD 1.0
//     and TD 1.5 bodies) quotes from a [QuoteSpec], binding the
//     attestation key into the QE report and signing both levels.
//   - [PKI.Collateral] and [PKI.RawCollateral] encode and sign TCB info
//     and QE identity JSON from a [CollateralSpec] and add CRLs and
//     issuer chains.
//   - [NewFixture] bundles all of it with defaults that verify as
//     UpToDate, so a negative test changes exactly one field.
//
// Every spec is used literally: the Default* functions give the valid
// starting points, and hooks (QuoteSpec.MutateBeforeSign,
// MutateAfterSign, MutateBytes; CollateralSpec.MutateTCBInfoJSON,
// MutateTCBInfoAfterSign, …) reach the bytes the specs cannot express.
//
// All keys are generated when the test runs; nothing secret is stored in
// the repository. Signatures are randomized, so built evidence differs
// from run to run; tests should assert properties, not bytes.
//
// The package imports no testing package and returns errors rather than
// failing tests.
//
// # Security
//
// Everything this package produces is forged evidence signed by keys that
// anyone can generate. Its root CA must never be trusted outside tests: a
// verifier configured with a dcaptest root accepts any quote. Production
// code should not import this package.
package dcaptest
