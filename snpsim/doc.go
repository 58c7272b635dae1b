// Package snpsim is a software AMD SEV-SNP guest for tests: a test AMD
// PKI (ARK → ASK → VCEK and ARK → ASVK → VLEK per product line, with
// AMD's names, RSA-PSS/SHA-384 CA signatures, the KDS extensions and
// ARK-signed CRLs) and an ATTESTATION_REPORT encoder and signer, so that
// every refusal of package snp (debug, VMPL, wrong HOST_DATA, revoked or
// expired VCEK, TCB extension mismatch, wrong chip, VLEK, any one-field
// change of the signed report) can be built in a test, like dcaptest does
// for TDX.
//
// Nothing here is secure: the keys are generated per process and the
// root is not AMD's. Verify snpsim reports with snp.Options.Roots set to
// [PKI.Roots].
package snpsim
