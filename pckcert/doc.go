// Package pckcert parses Intel SGX PCK certificates: the SGX extension
// (OID 1.2.840.113741.1.13.1) with PPID, the 16 TCB component SVNs,
// PCESVN, CPUSVN, PCE-ID, FMSPC, SGX type, platform instance ID and
// configuration flags, and the CA type (Platform or Processor) of the
// issuing intermediate (Intel's "SGX PCK Certificate and CRL Profile").
//
// Fields are located by OID, never by position or count, so certificates
// with extra or reordered entries parse. Parsing verifies nothing: chain,
// signatures and revocation are checked by package dcap.
package pckcert
