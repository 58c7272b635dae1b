// Package amdkds obtains AMD SEV-SNP endorsement material from the AMD
// Key Distribution Service (KDS) or a compatible mirror, caches it on
// disk, and reads and writes offline bundles, in the style of packages
// pcs and pcs/pcscache.
//
// The routes (multi-tee.md §2.3, AMD KDS specification) under a base URL
// that defaults to https://kdsintf.amd.com/vcek/v1:
//
//   - {base}/{product}/cert_chain: ASK then ARK, PEM;
//   - {base}/{product}/crl: the ARK's CRL, DER;
//   - {base}/{product}/{hex(CHIP_ID)}?blSPL=&teeSPL=&snpSPL=&ucodeSPL=
//     (Milan, Genoa; the SPLs of REPORTED_TCB) and
//     {base}/Turin/{hex(CHIP_ID[0:8])}?fmcSPL=&blSPL=&teeSPL=&snpSPL=&ucodeSPL=:
//     the VCEK, DER.
//
// Nothing fetched is trusted: package snp verifies the chain to its
// pinned ARKs, the CRL signature and the VCEK's TCB and hwID against the
// report. A fetched ARK that is not the pinned one is refused here
// already (ErrInvalidResponse), as is any response that does not parse.
//
// A [Bundle] is a directory with one subdirectory per product line:
// cert_chain.pem, crl.der and vcek/{hwid}-{tcb}.der (hwid and the 8
// REPORTED_TCB bytes in lowercase hex). [Cache] stores fetched items in
// the same layout, so a cache directory is an offline bundle.
package amdkds
