package tpm

import (
	"bytes"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// MaxMessageSize bounds a TPMS_ATTEST (real quotes are ~150 bytes).
const MaxMessageSize = 4096

// Selection is one TPMS_PCR_SELECTION: a bank and its PCR indices in
// ascending order.
type Selection struct {
	Hash uint16
	PCRs []int
}

// Attest is a parsed TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE. Byte
// slices are copies.
type Attest struct {
	// Raw is the exact message, as signed.
	Raw             []byte
	QualifiedSigner []byte
	ExtraData       []byte
	Clock           uint64
	ResetCount      uint32
	RestartCount    uint32
	Safe            bool
	FirmwareVersion uint64
	// Selections is the quote's PCR selection, in order.
	Selections []Selection
	// PCRDigest is the digest of the selected PCRs.
	PCRDigest []byte
}

// ParseAttest decodes a marshalled TPMS_ATTEST carrying a quote. The
// magic must be TPM_GENERATED_VALUE and the type TPM_ST_ATTEST_QUOTE; the
// input must re-marshal to itself exactly.
func ParseAttest(msg []byte) (a *Attest, err error) {
	if len(msg) == 0 || len(msg) > MaxMessageSize {
		return nil, fmt.Errorf("%w: TPMS_ATTEST of %d bytes", ErrMalformed, len(msg))
	}
	defer func() {
		if r := recover(); r != nil {
			a, err = nil, fmt.Errorf("%w: TPMS_ATTEST: %v", ErrMalformed, r)
		}
	}()
	att, err := tpm2.Unmarshal[tpm2.TPMSAttest](msg)
	if err != nil {
		return nil, fmt.Errorf("%w: TPMS_ATTEST: %v", ErrMalformed, err)
	}
	if att.Magic != tpm2.TPMGeneratedValue {
		return nil, fmt.Errorf("%w: magic 0x%08x, want TPM_GENERATED_VALUE", ErrMalformed, uint32(att.Magic))
	}
	if att.Type != tpm2.TPMSTAttestQuote {
		return nil, fmt.Errorf("%w: attestation type 0x%04x, want TPM_ST_ATTEST_QUOTE (0x8018)", ErrUnsupported, uint16(att.Type))
	}
	if !bytes.Equal(tpm2.Marshal(att), msg) {
		return nil, fmt.Errorf("%w: TPMS_ATTEST has trailing or non-canonical bytes", ErrMalformed)
	}
	qi, err := att.Attested.Quote()
	if err != nil {
		return nil, fmt.Errorf("%w: TPMS_QUOTE_INFO: %v", ErrMalformed, err)
	}
	a = &Attest{
		Raw:             bytes.Clone(msg),
		QualifiedSigner: bytes.Clone(att.QualifiedSigner.Buffer),
		ExtraData:       bytes.Clone(att.ExtraData.Buffer),
		Clock:           att.ClockInfo.Clock,
		ResetCount:      att.ClockInfo.ResetCount,
		RestartCount:    att.ClockInfo.RestartCount,
		Safe:            bool(att.ClockInfo.Safe),
		FirmwareVersion: att.FirmwareVersion,
		PCRDigest:       bytes.Clone(qi.PCRDigest.Buffer),
	}
	for _, s := range qi.PCRSelect.PCRSelections {
		sel := Selection{Hash: uint16(s.Hash)}
		for i, b := range s.PCRSelect {
			for bit := 0; bit < 8; bit++ {
				if b&(1<<bit) != 0 {
					sel.PCRs = append(sel.PCRs, i*8+bit)
				}
			}
		}
		a.Selections = append(a.Selections, sel)
	}
	return a, nil
}
