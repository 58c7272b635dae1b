package agent

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/tdproof/tdproof/dstack"
)

// ErrSequence means an event out of dstack's order: boot events on a log
// that already has events, or an application event before system-ready or
// named like a system event.
var ErrSequence = errors.New("agent: runtime event out of sequence")

// systemEvents are the names the system emits before system-ready; an
// application may never use them.
var systemEvents = []string{
	dstack.EventSystemPreparing, dstack.EventAppID, dstack.EventComposeHash,
	dstack.EventInitScriptHash, dstack.EventGPUPolicyHash, dstack.EventInstanceID,
	dstack.EventBootMRDone, dstack.EventOSImageHash, dstack.EventKeyProvider,
	dstack.EventStorageFS, dstack.EventSystemReady,
}

// KeyProviderInfo is the "key-provider" payload (dstack.md §3.4).
type KeyProviderInfo struct {
	Name string `json:"name"`
	ID   string `json:"id"`
}

// Boot is the input of the boot-time identity events.
type Boot struct {
	// AppCompose is the exact app-compose.json bytes.
	AppCompose []byte
	// AppID is the 20-byte app id; nil means compose_hash[0..20].
	AppID []byte
	// InstanceIDSeed is the instance id seed; nil means 20 fresh random
	// bytes (dstack regenerates it each boot without a key provider).
	InstanceIDSeed []byte
	// NoInstanceID records an empty instance-id payload.
	NoInstanceID bool
	// KeyProvider is the key provider; the zero value means
	// {"name":"none","id":""}.
	KeyProvider KeyProviderInfo
}

// EmitBootEvents records the identity of an app on an empty log in
// dstack's order (dstack.md §2.4): system-preparing, app-id,
// compose-hash, init-script-hash per init_script entry, instance-id,
// boot-mr-done, key-provider, system-ready. It returns the identity as a
// verifier reads it back.
func EmitBootEvents(l *Log, b Boot) (*dstack.Identity, error) {
	evs, err := l.Events()
	if err != nil {
		return nil, err
	}
	if len(evs) != 0 {
		return nil, fmt.Errorf("%w: log %s already holds %d events", ErrSequence, l.Path, len(evs))
	}
	composeHash := dstack.ComposeHash(b.AppCompose)
	appID := b.AppID
	if appID == nil {
		d := dstack.DefaultAppID(composeHash)
		appID = d[:]
	}
	if len(appID) != 20 {
		return nil, fmt.Errorf("agent: app id is %d bytes, want 20", len(appID))
	}
	scripts, err := dstack.InitScriptHashes(b.AppCompose)
	if err != nil {
		return nil, err
	}
	var instanceID []byte
	if !b.NoInstanceID {
		seed := b.InstanceIDSeed
		if seed == nil {
			seed = make([]byte, 20)
			if _, err := rand.Read(seed); err != nil {
				return nil, err
			}
		}
		// instance_id = SHA256(seed ‖ app_id)[0..20], no platform binding
		// on bare TDX (dstack.md §3.3).
		h := sha256.Sum256(append(slices.Clone(seed), appID...))
		instanceID = h[:20]
	}
	kp := b.KeyProvider
	if kp.Name == "" {
		kp = KeyProviderInfo{Name: "none"}
	}
	kpJSON, err := json.Marshal(kp) // compact, name then id, as serde_json
	if err != nil {
		return nil, err
	}
	type event struct {
		name    string
		payload []byte
	}
	seq := []event{
		{dstack.EventSystemPreparing, nil},
		{dstack.EventAppID, appID},
		{dstack.EventComposeHash, composeHash[:]},
	}
	for _, s := range scripts {
		seq = append(seq, event{dstack.EventInitScriptHash, s[:]})
	}
	seq = append(seq,
		event{dstack.EventInstanceID, instanceID},
		event{dstack.EventBootMRDone, nil},
		event{dstack.EventKeyProvider, kpJSON},
		event{dstack.EventSystemReady, nil},
	)
	for _, e := range seq {
		if _, err := l.Emit(e.name, e.payload); err != nil {
			return nil, err
		}
	}
	evs, err = l.Events()
	if err != nil {
		return nil, err
	}
	return dstack.ReadIdentity(evs), nil
}

// EmitApp records an application event. The log must be past
// system-ready and name must not be a system event name. The check and
// the Emit are not atomic: only this agent appends to the log after boot.
func EmitApp(l *Log, name string, payload []byte) error {
	if name == "" || slices.Contains(systemEvents, name) {
		return fmt.Errorf("%w: %q is reserved for the system", ErrSequence, name)
	}
	evs, err := l.Events()
	if err != nil {
		return err
	}
	if !dstack.ReadIdentity(evs).SystemReady {
		return fmt.Errorf("%w: %q before %s", ErrSequence, name, dstack.EventSystemReady)
	}
	_, err = l.Emit(name, payload)
	return err
}
