package dstack

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// MRConfigID is a decoded MR_CONFIG_ID as dstack's VMM sets it
// (dstack.md §3.5): a version byte, 32 bytes, 15 zero bytes.
//
//   - version 1: the compose hash;
//   - version 2: Keccak-256(compose_hash ‖ app_id ‖ kind ‖
//     key_provider_id), kind none 0, local 1, kms 2, tpm 3;
//   - version 3: SHA-256("dstack-mr-config-v3:" ‖ 0x00 ‖ document), the
//     JSON document carried in the sys-config's "mr_config".
//
// An all-zero MR_CONFIG_ID (version 0 here) means the VMM did not set one.
type MRConfigID struct {
	// Version is 0 (not set), 1, 2 or 3.
	Version int `json:"version"`
	// Value is the 32 bytes after the version byte; nil for version 0.
	Value HexBytes `json:"value,omitempty"`
	// Checked reports that the value was matched against the identity.
	// Version 3 can only be checked when the document is available.
	Checked bool `json:"checked"`
}

// ParseMRConfigID decodes an MR_CONFIG_ID. It fails with ErrMRConfigID for
// an unknown version or non-zero padding, which dstack's guest refuses to
// boot with.
func ParseMRConfigID(raw [48]byte) (*MRConfigID, error) {
	if raw == [48]byte{} {
		return &MRConfigID{}, nil
	}
	v := int(raw[0])
	if v < 1 || v > 3 {
		return nil, fmt.Errorf("%w: unknown version %d in %x", ErrMRConfigID, v, raw)
	}
	if !bytes.Equal(raw[33:], make([]byte, 15)) {
		return nil, fmt.Errorf("%w: version %d with non-zero padding: %x", ErrMRConfigID, v, raw)
	}
	return &MRConfigID{Version: v, Value: HexBytes(bytes.Clone(raw[1:33]))}, nil
}

// mrConfigV3Document is MR_CONFIG_ID version 3's document.
type mrConfigV3Document struct {
	Version          *int       `json:"version"`
	AppID            HexBytes   `json:"app_id"`
	ComposeHash      HexBytes   `json:"compose_hash"`
	KeyProvider      string     `json:"key_provider"`
	KeyProviderID    HexBytes   `json:"key_provider_id"`
	InstanceID       HexBytes   `json:"instance_id"`
	GPUPolicyHash    HexBytes   `json:"gpu_policy_hash"`
	InitScriptHashes []HexBytes `json:"init_script_hashes"`
}

// Check matches m against the identity read from the runtime events, the
// way dstack's guest checks its own MR_CONFIG_ID at boot. document is the
// version 3 document ("" when not available: version 3 then stays
// unchecked). It sets m.Checked and returns an error wrapping
// ErrMRConfigID on a mismatch.
func (m *MRConfigID) Check(id *Identity, document string) error {
	m.Checked = false
	switch m.Version {
	case 0:
		return nil
	case 1:
		if !bytes.Equal(id.ComposeHash, m.Value) {
			return fmt.Errorf("%w: version 1 binds compose hash %x, runtime events record %x", ErrMRConfigID, []byte(m.Value), []byte(id.ComposeHash))
		}
	case 2:
		kp, kind, kpid, err := keyProviderParts(id)
		if err != nil {
			return err
		}
		if len(id.ComposeHash) != 32 || len(id.AppID) != 20 {
			return fmt.Errorf("%w: version 2 needs a 32-byte compose hash and a 20-byte app id, runtime events record %d and %d bytes", ErrMRConfigID, len(id.ComposeHash), len(id.AppID))
		}
		want := keccak256(id.ComposeHash, id.AppID, []byte{kind}, kpid)
		if !bytes.Equal(want[:], m.Value) {
			return fmt.Errorf("%w: version 2 value %x, identity (key provider %q) gives %x", ErrMRConfigID, []byte(m.Value), kp.Name, want)
		}
	case 3:
		if document == "" {
			return nil
		}
		if err := checkV3Document(m.Value, id, document); err != nil {
			return err
		}
	}
	m.Checked = true
	return nil
}

func keyProviderParts(id *Identity) (*KeyProvider, byte, []byte, error) {
	kp, err := ParseKeyProvider(id.KeyProviderInfo)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%w: key-provider event is not valid JSON: %q", ErrMRConfigID, []byte(id.KeyProviderInfo))
	}
	kind, ok := kp.kindByte()
	if !ok {
		return nil, 0, nil, fmt.Errorf("%w: unknown key provider %q", ErrMRConfigID, kp.Name)
	}
	kpid, err := hex.DecodeString(kp.ID)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%w: key provider id %q is not hex", ErrMRConfigID, kp.ID)
	}
	return kp, kind, kpid, nil
}

func checkV3Document(value []byte, id *Identity, document string) error {
	h := sha256.New()
	h.Write([]byte("dstack-mr-config-v3:"))
	h.Write([]byte{0})
	h.Write([]byte(document))
	if got := h.Sum(nil); !bytes.Equal(got, value) {
		return fmt.Errorf("%w: version 3 value %x, document hashes to %x", ErrMRConfigID, value, got)
	}
	var doc mrConfigV3Document
	if err := json.Unmarshal([]byte(document), &doc); err != nil {
		return fmt.Errorf("%w: version 3 document: %w", ErrMRConfigID, err)
	}
	if doc.Version != nil && *doc.Version != 3 {
		return fmt.Errorf("%w: version 3 document has version %d", ErrMRConfigID, *doc.Version)
	}
	kp, _, kpid, err := keyProviderParts(id)
	if err != nil {
		return err
	}
	mismatch := func(field string, doc, events []byte) error {
		return fmt.Errorf("%w: version 3 document %s %x, runtime events record %x", ErrMRConfigID, field, doc, events)
	}
	switch {
	case !bytes.Equal(doc.ComposeHash, id.ComposeHash):
		return mismatch("compose_hash", doc.ComposeHash, id.ComposeHash)
	case !bytes.Equal(doc.AppID, id.AppID):
		return mismatch("app_id", doc.AppID, id.AppID)
	case !bytes.Equal(doc.InstanceID, id.InstanceID):
		return mismatch("instance_id", doc.InstanceID, id.InstanceID)
	case doc.KeyProvider != kp.kind():
		return fmt.Errorf("%w: version 3 document key_provider %q, runtime events record %q", ErrMRConfigID, doc.KeyProvider, kp.Name)
	case !bytes.Equal(doc.KeyProviderID, kpid):
		return mismatch("key_provider_id", doc.KeyProviderID, kpid)
	case doc.GPUPolicyHash != nil && !bytes.Equal(doc.GPUPolicyHash, id.GPUPolicyHash):
		return mismatch("gpu_policy_hash", doc.GPUPolicyHash, id.GPUPolicyHash)
	}
	if doc.InitScriptHashes != nil {
		if len(doc.InitScriptHashes) != len(id.InitScriptHashes) {
			return fmt.Errorf("%w: version 3 document lists %d init script hashes, runtime events %d", ErrMRConfigID, len(doc.InitScriptHashes), len(id.InitScriptHashes))
		}
		for i := range doc.InitScriptHashes {
			if !bytes.Equal(doc.InitScriptHashes[i], id.InitScriptHashes[i]) {
				return mismatch(fmt.Sprintf("init_script_hashes[%d]", i), doc.InitScriptHashes[i], id.InitScriptHashes[i])
			}
		}
	}
	return nil
}
