package dstack

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/quote"
)

// Runtime event names dstack's guest emits before "system-ready"
// (dstack.md §2.4).
const (
	EventSystemPreparing = "system-preparing"
	EventAppID           = "app-id"
	EventComposeHash     = "compose-hash"
	EventInitScriptHash  = "init-script-hash"
	EventGPUPolicyHash   = "gpu-policy-hash"
	EventInstanceID      = "instance-id"
	EventBootMRDone      = "boot-mr-done"
	EventOSImageHash     = "os-image-hash"
	EventKeyProvider     = "key-provider"
	EventStorageFS       = "storage-fs"
	EventSystemReady     = "system-ready"
)

// Identity is the application identity dstack records in runtime events
// (dstack.md §1.4, §2.4, §3). Each value is the payload of the first event
// of that name before the first "system-ready" event, or empty when there
// is none; events after "system-ready" are never used.
type Identity struct {
	// AppID is the "app-id" payload (20 bytes).
	AppID HexBytes `json:"app_id"`
	// ComposeHash is the "compose-hash" payload: SHA-256 of the exact
	// app-compose.json bytes (32 bytes).
	ComposeHash HexBytes `json:"compose_hash"`
	// InstanceID is the "instance-id" payload (20 bytes or empty).
	InstanceID HexBytes `json:"instance_id"`
	// KeyProviderInfo is the "key-provider" payload, the exact JSON bytes
	// {"name":…,"id":…} that feed mr_system.
	KeyProviderInfo HexBytes `json:"key_provider_info"`
	// InitScriptHashes are the payloads of every "init-script-hash"
	// event, in order.
	InitScriptHashes []HexBytes `json:"init_script_hashes"`
	// GPUPolicyHash is the "gpu-policy-hash" payload.
	GPUPolicyHash HexBytes `json:"gpu_policy_hash,omitempty"`
	// OSImageHashEvent is the "os-image-hash" payload the guest recorded
	// from the KMS. It is informational: os_image_hash comes from the VM
	// configuration.
	OSImageHashEvent HexBytes `json:"os_image_hash_event,omitempty"`
	// StorageFS is the "storage-fs" payload ("zfs", "ext4").
	StorageFS string `json:"storage_fs,omitempty"`
	// SystemReady reports whether a "system-ready" event was found.
	SystemReady bool `json:"system_ready"`
	// Events are the names of the events read, in order, up to and
	// including the first "system-ready".
	Events []string `json:"events"`
	// Ignored are the names of the events after the first
	// "system-ready", which are replayed but never used for identity.
	Ignored []string `json:"ignored_events"`
}

// ReadIdentity reads the identity from runtime events in log order,
// stopping at the first "system-ready" event (as dstack's find_event
// does). Events of other types are skipped. It does not check digests or
// replay anything.
func ReadIdentity(events []eventlog.Event) *Identity {
	id := &Identity{InitScriptHashes: []HexBytes{}, Events: []string{}, Ignored: []string{}}
	// The first event of each of these names sets its field (nil when
	// its payload is empty); later ones are ignored.
	firsts := map[string]*HexBytes{
		EventAppID: &id.AppID, EventComposeHash: &id.ComposeHash, EventInstanceID: &id.InstanceID,
		EventKeyProvider: &id.KeyProviderInfo, EventGPUPolicyHash: &id.GPUPolicyHash, EventOSImageHash: &id.OSImageHashEvent,
	}
	storageFSSeen := false
	for _, e := range events {
		if !e.IsRuntime() {
			continue
		}
		if id.SystemReady {
			id.Ignored = append(id.Ignored, e.Name)
			continue
		}
		id.Events = append(id.Events, e.Name)
		switch e.Name {
		case EventSystemReady:
			id.SystemReady = true
		case EventInitScriptHash:
			id.InitScriptHashes = append(id.InitScriptHashes, HexBytes(bytes.Clone(e.Payload)))
		case EventStorageFS:
			if !storageFSSeen {
				storageFSSeen, id.StorageFS = true, string(e.Payload)
			}
		default:
			if dst, ok := firsts[e.Name]; ok {
				if len(e.Payload) > 0 {
					*dst = HexBytes(bytes.Clone(e.Payload))
				}
				delete(firsts, e.Name)
			}
		}
	}
	return id
}

// KeyProvider is the decoded key-provider event payload (dstack.md §3.4).
type KeyProvider struct {
	// Name is "kms", "local-sgx", "tpm" or "none".
	Name string `json:"name"`
	// ID is the provider's identity as hex: the KMS root CA's
	// SubjectPublicKeyInfo DER, the local key provider enclave's
	// MRENCLAVE, or empty.
	ID string `json:"id"`
}

// ParseKeyProvider decodes key-provider info JSON.
func ParseKeyProvider(info []byte) (*KeyProvider, error) {
	var kp KeyProvider
	if err := json.Unmarshal(info, &kp); err != nil {
		return nil, malformed("key_provider_info", -1, "%v", err)
	}
	return &kp, nil
}

// kindByte maps a key provider name to its MR_CONFIG_ID version 2 kind
// byte (none 0, local 1, kms 2, tpm 3).
func (kp *KeyProvider) kindByte() (byte, bool) {
	switch kp.Name {
	case "none":
		return 0, true
	case "local-sgx", "local":
		return 1, true
	case "kms":
		return 2, true
	case "tpm":
		return 3, true
	}
	return 0, false
}

// kind returns the key provider kind as MR_CONFIG_ID version 3 documents
// spell it.
func (kp *KeyProvider) kind() string {
	if kp.Name == "local-sgx" {
		return "local"
	}
	return kp.Name
}

// ComposeHash returns the compose hash of an app-compose.json file:
// SHA-256 of its exact bytes (dstack.md §3.2; no canonicalization).
func ComposeHash(appCompose []byte) [32]byte { return sha256.Sum256(appCompose) }

// DefaultAppID returns the app id dstack uses when the instance has none:
// the first 20 bytes of the compose hash.
func DefaultAppID(composeHash [32]byte) [20]byte { return [20]byte(composeHash[:20]) }

// InitScriptHashes returns the "init-script-hash" payloads an
// app-compose.json implies: SHA-256 of each init_script entry (a string or
// an array of at most five strings), in order.
func InitScriptHashes(appCompose []byte) ([][32]byte, error) {
	var c struct {
		InitScript json.RawMessage `json:"init_script"`
	}
	if err := json.Unmarshal(appCompose, &c); err != nil {
		return nil, malformed("app-compose", -1, "%v", err)
	}
	var scripts []string
	switch {
	case len(c.InitScript) == 0 || string(c.InitScript) == "null":
	case c.InitScript[0] == '"':
		var s string
		if err := json.Unmarshal(c.InitScript, &s); err != nil {
			return nil, malformed("app-compose.init_script", -1, "%v", err)
		}
		scripts = []string{s}
	default:
		if err := json.Unmarshal(c.InitScript, &scripts); err != nil {
			return nil, malformed("app-compose.init_script", -1, "%v", err)
		}
		if len(scripts) > 5 {
			return nil, malformed("app-compose.init_script", -1, "%d scripts, at most 5", len(scripts))
		}
	}
	out := make([][32]byte, len(scripts))
	for i, s := range scripts {
		out[i] = sha256.Sum256([]byte(s))
	}
	return out, nil
}

// MRSystem returns dstack's mr_system:
// SHA-256(MRTD ‖ RTMR0 ‖ RTMR1 ‖ RTMR2 ‖ mr_key_provider), where
// mr_key_provider is 32 zero bytes when keyProviderInfo is empty and its
// SHA-256 otherwise.
func MRSystem(td *quote.TDReport, keyProviderInfo []byte) [32]byte {
	var mkp [32]byte
	if len(keyProviderInfo) != 0 {
		mkp = sha256.Sum256(keyProviderInfo)
	}
	h := sha256.New()
	h.Write(td.MRTD[:])
	for i := range 3 {
		h.Write(td.RTMRs[i][:])
	}
	h.Write(mkp[:])
	return [32]byte(h.Sum(nil))
}

// MRAggregated returns dstack's mr_aggregated:
// SHA-256(MRTD ‖ RTMR0 ‖ RTMR1 ‖ RTMR2 ‖ rtmr3), followed by
// MR_CONFIG_ID ‖ MR_OWNER ‖ MR_OWNER_CONFIG only when any of the three is
// not zero. rtmr3 is the register replayed from all runtime events, which
// equals the quote's RTMR3 once Verify has checked it.
func MRAggregated(td *quote.TDReport, rtmr3 [48]byte) [32]byte {
	h := sha256.New()
	h.Write(td.MRTD[:])
	for i := range 3 {
		h.Write(td.RTMRs[i][:])
	}
	h.Write(rtmr3[:])
	var zero [48]byte
	if td.MRConfigID != zero || td.MROwner != zero || td.MROwnerConfig != zero {
		h.Write(td.MRConfigID[:])
		h.Write(td.MROwner[:])
		h.Write(td.MROwnerConfig[:])
	}
	return [32]byte(h.Sum(nil))
}

// DeviceID returns dstack's device id, SHA-256 of the PPID from the
// verified PCK certificate, or nil when ppid is empty.
func DeviceID(ppid []byte) []byte {
	if len(ppid) == 0 {
		return nil
	}
	d := sha256.Sum256(ppid)
	return d[:]
}
