package protocol

import (
	"crypto/sha512"

	"github.com/tdproof/tdproof/jcs"
)

// bindingObject is the runtime data Trustee hashes into REPORTDATA. Member
// order does not matter: the encoding is canonicalized.
type bindingObject struct {
	AdditionalEvidence string `json:"additional-evidence"`
	Nonce              string `json:"nonce"`
	TeePubKey          JWK    `json:"tee-pubkey"`
}

type deviceBindingObject struct {
	Nonce     string `json:"nonce"`
	TeePubKey JWK    `json:"tee-pubkey"`
}

// RuntimeDataJSON returns the RFC 8785 canonical JSON of
// {"additional-evidence": additionalEvidence, "nonce": nonce,
// "tee-pubkey": teePubKey}: the bytes whose SHA-384 is the report data.
// The additional-evidence member is present even when empty.
func RuntimeDataJSON(nonce string, teePubKey JWK, additionalEvidence string) ([]byte, error) {
	b, err := jcs.Marshal(bindingObject{AdditionalEvidence: additionalEvidence, Nonce: nonce, TeePubKey: teePubKey})
	if err != nil {
		return nil, newErr(ErrKey, "runtime data", err)
	}
	return b, nil
}

// DeviceRuntimeDataJSON returns the canonical JSON of {"nonce",
// "tee-pubkey"}, the runtime data given to additional (device) evidence.
func DeviceRuntimeDataJSON(nonce string, teePubKey JWK) ([]byte, error) {
	b, err := jcs.Marshal(deviceBindingObject{Nonce: nonce, TeePubKey: teePubKey})
	if err != nil {
		return nil, newErr(ErrKey, "device runtime data", err)
	}
	return b, nil
}

// ReportData returns the TDX REPORTDATA that binds a quote to the
// challenge nonce and the TEE key: SHA-384 of [RuntimeDataJSON],
// zero-padded to 64 bytes. The error wraps ErrKey when teePubKey has an
// unknown kty.
func ReportData(nonce string, teePubKey JWK, additionalEvidence string) ([64]byte, error) {
	var out [64]byte
	b, err := RuntimeDataJSON(nonce, teePubKey, additionalEvidence)
	if err != nil {
		return out, err
	}
	sum := sha512.Sum384(b)
	copy(out[:], sum[:])
	return out, nil
}
