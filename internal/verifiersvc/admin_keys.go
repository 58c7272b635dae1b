package verifiersvc

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/tdproof/tdproof/internal/store"
)

// KeyManager manages the EAR signing keys for the admin API. tdproof
// serve implements it over the store and the in-memory key set its signer
// and JWKS use.
type KeyManager interface {
	// ListKeys returns every key, oldest first.
	ListKeys(ctx context.Context) ([]KeyInfo, error)
	// RotateKey makes a new key the active (signing) key and retires the
	// previous one, which stays published so its tokens still verify.
	RotateKey(ctx context.Context) (KeyInfo, error)
	// RemoveKey removes a retired key: it is no longer published and its
	// tokens no longer verify. The active key is an error wrapping
	// [ErrActiveKey]; an unknown kid wraps store.ErrNotFound.
	RemoveKey(ctx context.Context, kid string) error
}

// Errors a KeyManager returns for the admin API's 409 answers.
var (
	// ErrActiveKey: the active key cannot be removed (rotate first).
	ErrActiveKey = errors.New("the active signing key cannot be removed; rotate first")
	// ErrKeysFixed: the keys come from a configured key file and cannot be
	// rotated or removed through the API.
	ErrKeysFixed = errors.New("the EAR signing key comes from a key file (--ear-key-file); rotate it by replacing the file and restarting")
)

// KeyInfo is an EAR signing key in admin responses (never key material).
// State is "active", "retired" or "removed".
type KeyInfo struct {
	KID       string     `json:"kid"`
	State     string     `json:"state"`
	Algorithm string     `json:"alg"`
	CreatedAt time.Time  `json:"created_at,omitzero"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
	RemovedAt *time.Time `json:"removed_at,omitempty"`
}

func (s *Service) keyError(ctx context.Context, err error) *apiError {
	switch {
	case errors.Is(err, ErrKeysFixed):
		return &apiError{status: http.StatusConflict, code: "keys_from_file", detail: err.Error()}
	case errors.Is(err, ErrActiveKey):
		return &apiError{status: http.StatusConflict, code: "active_key", detail: err.Error()}
	}
	return storeError(ctx, "unknown_key", err)
}

// keys returns the key manager, or writes 501 keys_unavailable.
func (s *Service) keys(w http.ResponseWriter) KeyManager {
	if s.opts.Keys == nil {
		s.adminFail(w, &apiError{status: http.StatusNotImplemented, code: "keys_unavailable",
			detail: "this service does not manage its EAR keys through the admin API"})
	}
	return s.opts.Keys
}

func (s *Service) handleListKeys(w http.ResponseWriter, r *http.Request) {
	km := s.keys(w)
	if km == nil {
		return
	}
	ks, err := km.ListKeys(r.Context())
	if err != nil {
		s.adminFail(w, s.keyError(r.Context(), err))
		return
	}
	if ks == nil {
		ks = []KeyInfo{}
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"keys": ks})
}

func (s *Service) handleRotateKey(w http.ResponseWriter, r *http.Request) {
	km := s.keys(w)
	if km == nil {
		return
	}
	k, err := km.RotateKey(r.Context())
	if err != nil {
		s.adminFail(w, s.keyError(r.Context(), err))
		return
	}
	writeJSONStatus(w, http.StatusCreated, k)
}

func (s *Service) handleRemoveKey(w http.ResponseWriter, r *http.Request) {
	km := s.keys(w)
	if km == nil {
		return
	}
	if err := km.RemoveKey(r.Context(), r.PathValue("kid")); err != nil {
		s.adminFail(w, s.keyError(r.Context(), err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// StoreKeyInfo describes a stored key for the admin API.
func StoreKeyInfo(k store.Key) KeyInfo {
	return KeyInfo{KID: k.KID, State: string(k.State), Algorithm: k.Algorithm, CreatedAt: k.CreatedAt,
		RetiredAt: k.RetiredAt, RemovedAt: k.RemovedAt}
}
