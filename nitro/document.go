package nitro

import (
	"bytes"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// MaxDocumentSize bounds the input of [Parse]. NSM documents are about
// 4.5 KiB; NitroTPM documents travel through an 8 KiB buffer.
const MaxDocumentSize = 64 << 10

// MaxPCRIndex is the highest PCR index a document may carry (NitroTPM has
// 24 PCRs, an enclave 16 or 32).
const MaxPCRIndex = 31

// PCRSize is the size of every PCR value: SHA-384.
const PCRSize = 48

// Kind tells an enclave document from a NitroTPM document.
type Kind string

const (
	// KindEnclave is an NSM document of a Nitro Enclave (key "pcrs").
	KindEnclave Kind = "nitro-enclave"
	// KindNitroTPM is a NitroTPM document of an EC2 instance (key
	// "nitrotpm_pcrs").
	KindNitroTPM Kind = "aws-nitro-tpm"
)

// coseTag is the CBOR tag of a tagged COSE_Sign1 (RFC 9052 §4.2).
const coseTag = 0xd2

// Document is a parsed attestation document. Byte slices are copies:
// they never alias the input.
type Document struct {
	// Raw is the COSE_Sign1 item itself (the whole input).
	Raw []byte
	// Protected is the protected header bstr content, as signed.
	Protected []byte
	// Payload is the payload bstr content, as signed: the CBOR map.
	Payload []byte
	// Signature is the COSE signature (r||s for ES384).
	Signature []byte

	// Kind is KindEnclave or KindNitroTPM, from the PCR map's key.
	Kind Kind
	// ModuleID is module_id: the enclave id (i-…-enc…) or the instance.
	ModuleID string
	// Digest is the digest field; "SHA384" after Verify.
	Digest string
	// TimestampMillis is the timestamp field, ms since the Unix epoch.
	TimestampMillis uint64
	// PCRs maps each PCR index to its 48-byte value.
	PCRs map[int][]byte
	// Certificate is the DER signing certificate.
	Certificate []byte
	// CABundle is the DER bundle, root first.
	CABundle [][]byte
	// PublicKey, UserData and Nonce are nil when absent or null.
	PublicKey []byte
	UserData  []byte
	Nonce     []byte

	msg *cose.Sign1Message
}

// Timestamp returns the timestamp field as a time.
func (d *Document) Timestamp() time.Time {
	return time.UnixMilli(int64(d.TimestampMillis)).UTC()
}

// PCR returns the value of PCR i, or nil when absent.
func (d *Document) PCR(i int) []byte { return d.PCRs[i] }

// Debug reports whether PCR0, PCR1 and PCR2 are all present and all
// zero: the mark of an enclave started in debug mode.
func (d *Document) Debug() bool {
	for i := 0; i < 3; i++ {
		v, ok := d.PCRs[i]
		if !ok || !isZero(v) {
			return false
		}
	}
	return true
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

var decMode = mustDecMode()

func mustDecMode() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsAllowed,
		MaxNestedLevels:  16,
		MaxArrayElements: 1 << 10,
		MaxMapPairs:      1 << 10,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}

var payloadMode = mustPayloadMode()

func mustPayloadMode() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthAllowed, // NSM emits the payload as an indefinite-length map
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  4,
		MaxArrayElements: 1 << 10,
		MaxMapPairs:      1 << 10,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}

// rawDocument is the payload map. Pointers tell absent from zero;
// unknown keys are ignored, as AWS may add fields.
type rawDocument struct {
	ModuleID     *string           `cbor:"module_id"`
	Digest       *string           `cbor:"digest"`
	Timestamp    *uint64           `cbor:"timestamp"`
	PCRs         map[uint64][]byte `cbor:"pcrs"`
	NitroTPMPCRs map[uint64][]byte `cbor:"nitrotpm_pcrs"`
	Certificate  []byte            `cbor:"certificate"`
	CABundle     [][]byte          `cbor:"cabundle"`
	PublicKey    []byte            `cbor:"public_key"`
	UserData     []byte            `cbor:"user_data"`
	Nonce        []byte            `cbor:"nonce"`
}

// Parse decodes an attestation document without verifying it. data must
// be exactly one CBOR item: a COSE_Sign1 array, untagged or with tag 18.
func Parse(data []byte) (*Document, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrMalformed)
	}
	if len(data) > MaxDocumentSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrMalformed, len(data), MaxDocumentSize)
	}
	var item cbor.RawMessage
	rest, err := decMode.UnmarshalFirst(data, &item)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the COSE_Sign1 item", ErrMalformed, len(rest))
	}
	var msg cose.Sign1Message
	switch data[0] {
	case coseTag:
		err = msg.UnmarshalCBOR(data)
	case 0x84:
		err = (*cose.UntaggedSign1Message)(&msg).UnmarshalCBOR(data)
	default:
		return nil, fmt.Errorf("%w: not a COSE_Sign1 array (first byte 0x%02x)", ErrMalformed, data[0])
	}
	if err != nil {
		return nil, fmt.Errorf("%w: COSE_Sign1: %v", ErrMalformed, err)
	}
	if msg.Payload == nil {
		return nil, fmt.Errorf("%w: COSE_Sign1 payload is detached", ErrMalformed)
	}
	d, err := decodePayload(msg.Payload)
	if err != nil {
		return nil, err
	}
	d.Raw = bytes.Clone(data)
	d.Protected = bytes.Clone(msg.Headers.RawProtected)
	d.Payload = bytes.Clone(msg.Payload)
	d.Signature = bytes.Clone(msg.Signature)
	d.msg = &msg
	return d, nil
}

func decodePayload(p []byte) (*Document, error) {
	var r rawDocument
	rest, err := payloadMode.UnmarshalFirst(p, &r)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the payload map", ErrMalformed, len(rest))
	}
	if p[0]&0xe0 != 0xa0 {
		return nil, fmt.Errorf("%w: payload is not a CBOR map", ErrMalformed)
	}
	d := &Document{}
	switch {
	case r.ModuleID == nil || *r.ModuleID == "":
		return nil, fmt.Errorf("%w: module_id missing", ErrMalformed)
	case r.Digest == nil:
		return nil, fmt.Errorf("%w: digest missing", ErrMalformed)
	case r.Timestamp == nil:
		return nil, fmt.Errorf("%w: timestamp missing", ErrMalformed)
	case len(r.Certificate) == 0:
		return nil, fmt.Errorf("%w: certificate missing", ErrMalformed)
	case len(r.CABundle) == 0:
		return nil, fmt.Errorf("%w: cabundle missing or empty", ErrMalformed)
	case r.PCRs != nil && r.NitroTPMPCRs != nil:
		return nil, fmt.Errorf("%w: both pcrs and nitrotpm_pcrs", ErrMalformed)
	}
	pcrs := r.PCRs
	d.Kind = KindEnclave
	if r.NitroTPMPCRs != nil {
		pcrs, d.Kind = r.NitroTPMPCRs, KindNitroTPM
	}
	if len(pcrs) == 0 {
		return nil, fmt.Errorf("%w: PCR map missing or empty", ErrMalformed)
	}
	d.PCRs = make(map[int][]byte, len(pcrs))
	for i, v := range pcrs {
		if i > MaxPCRIndex {
			return nil, fmt.Errorf("%w: PCR index %d out of range", ErrMalformed, i)
		}
		if len(v) != PCRSize {
			return nil, fmt.Errorf("%w: PCR%d is %d bytes, want %d", ErrMalformed, i, len(v), PCRSize)
		}
		d.PCRs[int(i)] = bytes.Clone(v)
	}
	for i, c := range r.CABundle {
		if len(c) == 0 {
			return nil, fmt.Errorf("%w: cabundle[%d] is empty", ErrMalformed, i)
		}
		d.CABundle = append(d.CABundle, bytes.Clone(c))
	}
	d.ModuleID = *r.ModuleID
	d.Digest = *r.Digest
	d.TimestampMillis = *r.Timestamp
	if d.TimestampMillis > 1<<53 {
		return nil, fmt.Errorf("%w: timestamp %d out of range", ErrMalformed, d.TimestampMillis)
	}
	d.Certificate = bytes.Clone(r.Certificate)
	d.PublicKey = bytes.Clone(r.PublicKey)
	d.UserData = bytes.Clone(r.UserData)
	d.Nonce = bytes.Clone(r.Nonce)
	return d, nil
}
