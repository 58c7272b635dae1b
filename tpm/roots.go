package tpm

import (
	"crypto/x509"
	_ "embed"

	"github.com/tdproof/tdproof/pinnedcert"
)

// Google's EK/AK CA (multi-tee.md §8): the root dstack pins and the
// intermediate it fetches through AIA, pinned here for offline use.
var (
	//go:embed gcp_ek_ak_ca_root.pem
	rootPEM []byte
	//go:embed gcp_ek_ak_ca_intermediate_v3.pem
	intermediatePEM []byte
)

// SHA-256 fingerprints of the DER of the pinned certificates.
const (
	RootSHA256         = "594759594b9b61524f6c8ef668f7177f7b9066bc0674f2f49fe9e052be78beb2"
	IntermediateSHA256 = "c84de8116dfaf5a908f21e810487791f5437e206d00ad8025050cca6bd2ff627"
)

var (
	googleRoot         = pinnedcert.MustParse("tpm: Google EK/AK CA Root", rootPEM, RootSHA256)
	googleIntermediate = pinnedcert.MustParse("tpm: Google EK/AK CA Intermediate", intermediatePEM, IntermediateSHA256)
)

// Root returns the pinned Google "EK/AK CA Root".
func Root() *x509.Certificate { return googleRoot }

// Intermediate returns the pinned Google "EK/AK CA Intermediate" (v3).
func Intermediate() *x509.Certificate { return googleIntermediate }
