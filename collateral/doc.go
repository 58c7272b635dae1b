// Package collateral parses Intel DCAP collateral: TCB Info (v2 SGX, v3
// SGX and TDX with tdxModule, tdxModuleIdentities, tcbLevels, tcbDate,
// advisoryIDs), QE / TD_QE enclave identities, CRLs (DER, PEM, or the hex
// text PCCS serves for the root CA CRL) and issuer chains (PEM, or the
// URL-encoded PEM of PCS headers), as Intel's PCS API v4 serves them (see
// docs/collateral.md).
//
// Signed JSON objects keep the exact bytes the signature covers
// ([SignedTCBInfo.Raw], [SignedQEIdentity.Raw]); nothing is ever
// re-serialized before verification. Collateral is read from and written
// to dcap-qvl's QuoteCollateralV3 JSON ([ParseQVLJSON],
// [Collateral.MarshalQVLJSON]) and read from a directory of raw PCS
// responses ([ReadPCSDir]).
//
// Parsing verifies no signature or chain: see package dcap.
package collateral
