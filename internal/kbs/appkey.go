package kbs

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/kbs/protocol"
)

// Derived resource types: their value is computed from Config.AppKeyRoot
// and the identity of the attested application, never stored.
const (
	// TypeAppKey ("<repo>/app-key/<tag>") is a key per dstack app_id.
	TypeAppKey = "app-key"
	// TypeInstanceKey ("<repo>/instance-key/<tag>") is a key per dstack
	// app_id and instance_id.
	TypeInstanceKey = "instance-key"
)

// AppKeySalt is the HKDF salt of derived keys.
const AppKeySalt = "tdproof-kbs-app-key-v1"

// AppKeySize is the size of a derived key in bytes.
const AppKeySize = 32

// MinAppKeyRoot is the minimum size of Config.AppKeyRoot in bytes.
const MinAppKeyRoot = 32

// Identity claims read from the verified token (package claims names).
const (
	claimAppID      = "dstack.app_id"
	claimInstanceID = "dstack.instance_id"
)

func isDerivedType(t string) bool { return t == TypeAppKey || t == TypeInstanceKey }

// lengthPrefixed concatenates parts, each as its length in 4 bytes
// big-endian followed by its bytes.
func lengthPrefixed(parts ...string) string {
	var b []byte
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return string(b)
}

// deriveKey is HKDF-SHA256(ikm = root, salt = AppKeySalt, info =
// lengthPrefixed(parts...)) of AppKeySize bytes.
func deriveKey(root []byte, parts ...string) ([]byte, error) {
	return hkdf.Key(sha256.New, root, []byte(AppKeySalt), lengthPrefixed(parts...), AppKeySize)
}

// tokenIdentity returns the string claim name of the annotated evidence of
// the token's submodules: "" if no submodule carries it; an error if it is
// not a non-empty string or if two submodules disagree.
func tokenIdentity(tc *ear.Claims, name string) (string, error) {
	var found string
	for _, sm := range slices.Sorted(maps.Keys(tc.Submods)) {
		raw := tc.Submods[sm].Claims
		if len(raw) == 0 {
			continue
		}
		// The annotated evidence is a claim set, nested as JSON
		// ({"dstack":{"app_id":…}}); claims.Set flattens it.
		var cs claims.Set
		if err := json.Unmarshal(raw, &cs); err != nil {
			return "", fmt.Errorf("submodule %s: annotated evidence: %w", sm, err)
		}
		v, ok := cs.Get(name)
		if !ok {
			continue
		}
		s, isString := v.(string)
		if !isString || s == "" {
			return "", fmt.Errorf("submodule %s: %s is not a non-empty string", sm, name)
		}
		if found != "" && found != s {
			return "", fmt.Errorf("submodules disagree on %s", name)
		}
		found = s
	}
	return found, nil
}

// appKey derives the value of the derived resource id for the verified
// claims, or says why not: PluginNotFound without Config.AppKeyRoot,
// PolicyDeny when the token does not identify the application (or the
// instance, for instance-key).
func (b *Broker) appKey(claims *ear.Claims, id protocol.ResourceID) ([]byte, protocol.ProblemType, string) {
	if b.cfg.AppKeyRoot == nil {
		return nil, protocol.ProblemPluginNotFound, "resource type " + id.Type + " is not enabled on this broker (no app key root configured)"
	}
	appID, err := tokenIdentity(claims, claimAppID)
	if err != nil {
		return nil, protocol.ProblemPolicyDeny, "token: " + err.Error()
	}
	if appID == "" {
		return nil, protocol.ProblemPolicyDeny, "token carries no " + claimAppID + " (dstack evidence is needed for " + id.Type + ")"
	}
	parts := []string{TypeAppKey, appID, id.Repository, id.Tag}
	if id.Type == TypeInstanceKey {
		instanceID, err := tokenIdentity(claims, claimInstanceID)
		if err != nil {
			return nil, protocol.ProblemPolicyDeny, "token: " + err.Error()
		}
		if instanceID == "" {
			return nil, protocol.ProblemPolicyDeny, "token carries no " + claimInstanceID + " (needed for " + id.Type + ")"
		}
		parts = []string{TypeInstanceKey, appID, instanceID, id.Repository, id.Tag}
	}
	k, err := deriveKey(b.cfg.AppKeyRoot, parts...)
	if err != nil {
		return nil, protocol.ProblemPluginInternalError, "key derivation failed"
	}
	return k, "", ""
}
