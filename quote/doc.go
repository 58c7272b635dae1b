// Package quote parses Intel DCAP attestation quotes: SGX v3, and SGX or
// TDX v4 and v5 (body types 1 SGX enclave report, 2 TD report 1.0 and
// 3 TD report 1.5; type 4 "TD 1.5 EX" is recognised and rejected as
// unsupported).
//
// [Parse] decodes the byte layout of Intel's DCAP quote library (SGX
// and TDX quote formats, appendix A): the 48-byte header, the v5 body
// descriptor, the body, and the ECDSA signature data with its
// certification data (types 1–7 recognised; 5 and 6 parsed, 2 and 3
// decoded into the encrypted PPID and its TCB fields).
//
// Parse does not verify anything cryptographic and does not check who
// made the quote (QE vendor ID, PCK chain, signatures): see package dcap.
//
// Fixed-size fields are arrays. Slices in the result (Raw, Signed,
// certification data) alias the input: do not modify the input while
// the Quote is in use.
//
// # Security
//
// Every length field is checked against the bytes that remain; Parse
// never panics and, on error, returns a nil *Quote. Bytes after the
// signature data are tolerated (quote buffers from configfs and QGS are
// often padded) and exposed as [Quote.Trailing]; they are not covered by
// any signature. Inside the signature data the nested sizes must add up
// exactly.
package quote
