package kbs

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/policy/rego"
	"github.com/tdproof/tdproof/refvalue"
)

// Admin routes (Trustee's, rats-kbs.md §2.4). Every one needs
// Authorization: Bearer <Config.AdminToken>; without a configured token
// they refuse every request (AdminAuth).
//
//	POST   /kbs/v0/resource/{repo}/{type}/{tag}  body: the resource bytes
//	DELETE /kbs/v0/resource/{repo}/{type}/{tag}
//	POST   /kbs/v0/resource-policy               {"policy": "<base64url Rego>"}
//	GET    /kbs/v0/resource-policy
//	POST   /kbs/v0/attestation-policy            {"type", "policy_id", "policy"}
//	POST   /kbs/v0/reference-value               RVPS message (type sample)
//	GET    /kbs/v0/reference-value/{name}

// adminAuthor is the author recorded for policies and reference values set
// through the admin routes.
const adminAuthor = "kbs-admin"

// RVPSVersion is the only RVPS message version accepted.
const RVPSVersion = "0.1.0"

// RVPSMessage is the body of POST /kbs/v0/reference-value (Trustee's RVPS
// message): Payload is the base64 of the provenance, for type "sample" a
// JSON object {name: [values]}.
type RVPSMessage struct {
	Version string `json:"version"`
	Type    string `json:"type"`
	Payload string `json:"payload"`
}

// ResourcePolicyResponse is the body of GET (and POST)
// /kbs/v0/resource-policy.
type ResourcePolicyResponse struct {
	// Policy is the Rego text, base64 URL-safe without padding.
	Policy string `json:"policy"`
	// SHA256 is the hex SHA-256 of the Rego text.
	SHA256    string    `json:"sha256"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// AttestationPolicyResponse is the body of a 200 from POST
// /kbs/v0/attestation-policy: the policy version stored and activated.
type AttestationPolicyResponse struct {
	PolicyID string `json:"policy_id"`
	Version  int    `json:"version"`
	Type     string `json:"type"`
	Active   bool   `json:"active"`
}

// ReferenceValueResponse is one reference value in the answers of the
// reference-value routes.
type ReferenceValueResponse struct {
	ID     string   `json:"id,omitempty"`
	Name   string   `json:"name"`
	Values []string `json:"values"`
}

func (b *Broker) registerAdmin() {
	res := protocol.PathResource + "/{repo}/{type}/{tag}"
	b.mux.HandleFunc("POST "+res, b.admin(b.handlePutResource))
	b.mux.HandleFunc("DELETE "+res, b.admin(b.handleDeleteResource))
	b.mux.HandleFunc("POST "+protocol.PathResourcePolicy, b.admin(b.handleSetResourcePolicy))
	b.mux.HandleFunc("GET "+protocol.PathResourcePolicy, b.admin(b.handleGetResourcePolicy))
	b.mux.HandleFunc("POST "+protocol.PathAttestationPolicy, b.admin(b.handleAttestationPolicy))
	b.mux.HandleFunc("POST "+protocol.PathReferenceValue, b.admin(b.handleAddReferenceValue))
	b.mux.HandleFunc("GET "+protocol.PathReferenceValue+"/{name...}", b.admin(b.handleGetReferenceValue))
}

// admin wraps h with the admin bearer token check.
func (b *Broker) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if b.cfg.AdminToken == "" {
			problem(w, protocol.ProblemAdminAuth, "the admin API is disabled (no admin token configured)")
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		// Comparing digests keeps the comparison constant-time in the
		// token length too.
		want := sha256.Sum256([]byte(b.cfg.AdminToken))
		got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if !ok || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tdproof-kbs-admin"`)
			problem(w, protocol.ProblemAdminAuth, "a valid admin bearer token is required")
			return
		}
		h(w, r)
	}
}

// decodeB64 decodes base64 in the URL alphabet without padding (Trustee)
// or, failing that, padded URL or standard base64.
func decodeB64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// readAdminJSON reads the request body into v (unknown members are
// ignored, as Trustee does); it writes a SerdeError problem and returns
// false on failure.
func readAdminJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := readBody(w, r)
	if err != nil {
		problem(w, protocol.ProblemSerdeError, "request body: "+err.Error())
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		problem(w, protocol.ProblemSerdeError, "request body is not the expected JSON object: "+err.Error())
		return false
	}
	if dec.More() {
		problem(w, protocol.ProblemSerdeError, "request body has data after the JSON object")
		return false
	}
	return true
}

func adminResourceID(w http.ResponseWriter, r *http.Request) (protocol.ResourceID, bool) {
	id := protocol.ResourceID{Repository: r.PathValue("repo"), Type: r.PathValue("type"), Tag: r.PathValue("tag")}
	if err := id.Validate(); err != nil {
		protocolProblem(w, err)
		return id, false
	}
	if isDerivedType(id.Type) {
		problem(w, protocol.ProblemInvalidRequestPath, "resource type "+id.Type+" is derived by the broker and cannot be stored or deleted")
		return id, false
	}
	return id, true
}

func (b *Broker) handlePutResource(w http.ResponseWriter, r *http.Request) {
	id, ok := adminResourceID(w, r)
	if !ok {
		return
	}
	value, err := readBody(w, r)
	if err != nil {
		problem(w, protocol.ProblemSerdeError, "request body: "+err.Error())
		return
	}
	if err := b.PutResource(r.Context(), id, value); err != nil {
		problem(w, protocol.ProblemPluginInternalError, "resource could not be stored")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (b *Broker) handleDeleteResource(w http.ResponseWriter, r *http.Request) {
	id, ok := adminResourceID(w, r)
	if !ok {
		return
	}
	err := b.cfg.Store.DeleteKBSResource(r.Context(), id.String())
	if errors.Is(err, store.ErrNotFound) {
		problem(w, protocol.ProblemPluginNotFound, "no resource "+id.String())
		return
	}
	if err != nil {
		problem(w, protocol.ProblemPluginInternalError, "resource could not be deleted")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func resourcePolicyResponse(p store.KBSPolicy) ResourcePolicyResponse {
	return ResourcePolicyResponse{Policy: base64.RawURLEncoding.EncodeToString([]byte(p.Body)), SHA256: p.SHA256, UpdatedAt: p.UpdatedAt}
}

// policySource decodes the base64 "policy" member of an admin request, or
// answers SerdeError and returns false.
func policySource(w http.ResponseWriter, b64 string) ([]byte, bool) {
	if b64 == "" {
		problem(w, protocol.ProblemSerdeError, `"policy" is missing or empty`)
		return nil, false
	}
	src, err := decodeB64(b64)
	if err != nil {
		problem(w, protocol.ProblemSerdeError, `"policy" is not base64 (URL-safe without padding, or standard)`)
		return nil, false
	}
	return src, true
}

func (b *Broker) handleSetResourcePolicy(w http.ResponseWriter, r *http.Request) {
	var req protocol.ResourcePolicyRequest
	if !readAdminJSON(w, r, &req) {
		return
	}
	src, ok := policySource(w, req.Policy)
	if !ok {
		return
	}
	p, err := b.SetResourcePolicy(r.Context(), string(src))
	if err != nil {
		if errors.Is(err, ErrInvalidPolicy) {
			problem(w, protocol.ProblemPolicyEngine, "policy rejected, the previous one stays in force: "+err.Error())
		} else {
			problem(w, protocol.ProblemPluginInternalError, "resource policy could not be stored")
		}
		return
	}
	writeJSON(w, resourcePolicyResponse(p))
}

func (b *Broker) handleGetResourcePolicy(w http.ResponseWriter, r *http.Request) {
	p, err := b.ResourcePolicy(r.Context())
	if err != nil {
		problem(w, protocol.ProblemPluginInternalError, "resource policy could not be read")
		return
	}
	writeJSON(w, resourcePolicyResponse(p))
}

func (b *Broker) handleAttestationPolicy(w http.ResponseWriter, r *http.Request) {
	var req protocol.AttestationPolicyRequest
	if !readAdminJSON(w, r, &req) {
		return
	}
	kind := strings.ToLower(req.Type)
	if kind == "" {
		kind = string(policy.FormatRego)
	}
	if kind != string(policy.FormatRego) && kind != string(policy.FormatYAML) {
		problem(w, protocol.ProblemSerdeError, fmt.Sprintf(`"type" %q: want rego or yaml`, req.Type))
		return
	}
	id := req.PolicyID
	if id == "" {
		id = policy.DefaultID
	}
	src, ok := policySource(w, req.Policy)
	if !ok {
		return
	}
	if _, err := rego.Parse(policy.Format(kind), id, "candidate", src); err != nil {
		problem(w, protocol.ProblemPolicyEngine, "attestation policy rejected, the active one stays in force: "+err.Error())
		return
	}
	p, err := b.cfg.Store.CreatePolicy(r.Context(), store.Policy{ID: id, Kind: store.PolicyKind(kind), Body: string(src),
		Description: "set through " + protocol.PathAttestationPolicy, Author: adminAuthor, Active: true})
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			problem(w, protocol.ProblemSerdeError, err.Error())
		} else {
			problem(w, protocol.ProblemPluginInternalError, "attestation policy could not be stored")
		}
		return
	}
	writeJSON(w, AttestationPolicyResponse{PolicyID: p.ID, Version: p.Version, Type: string(p.Kind), Active: p.Active})
}

// parseSample decodes the payload of a sample RVPS message: base64 of a
// JSON object {name: [values]}; each value is normalized
// (refvalue.Normalize).
func parseSample(payload string) ([]refvalue.Value, error) {
	raw, err := decodeB64(payload)
	if err != nil {
		return nil, errors.New(`"payload" is not base64`)
	}
	var m map[string][]string
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&m); err != nil || dec.More() {
		return nil, errors.New(`"payload" is not a JSON object of names to arrays of strings`)
	}
	if len(m) == 0 {
		return nil, errors.New(`"payload" has no reference values`)
	}
	out := make([]refvalue.Value, 0, len(m))
	for name, vals := range m {
		v, err := refvalue.Normalize(refvalue.Value{Name: name, Values: vals,
			Provenance: refvalue.Provenance{Source: "kbs reference-value (sample)", Author: adminAuthor}})
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (b *Broker) handleAddReferenceValue(w http.ResponseWriter, r *http.Request) {
	var msg RVPSMessage
	if !readAdminJSON(w, r, &msg) {
		return
	}
	if msg.Version != RVPSVersion {
		problem(w, protocol.ProblemSerdeError, fmt.Sprintf("RVPS message version %q: want %s", msg.Version, RVPSVersion))
		return
	}
	if msg.Type != "sample" {
		problem(w, protocol.ProblemSerdeError, fmt.Sprintf("RVPS message type %q: only sample is supported", msg.Type))
		return
	}
	vals, err := parseSample(msg.Payload)
	if err != nil {
		problem(w, protocol.ProblemSerdeError, "reference values rejected: "+err.Error())
		return
	}
	rv := b.cfg.Store.RefValues()
	out := make([]ReferenceValueResponse, 0, len(vals))
	// Add in name order, so the ids are deterministic.
	slices.SortFunc(vals, func(a, b refvalue.Value) int { return strings.Compare(a.Name, b.Name) })
	for _, v := range vals {
		id, err := rv.Add(r.Context(), v)
		if err != nil {
			if errors.Is(err, refvalue.ErrInvalid) || errors.Is(err, store.ErrInvalid) {
				problem(w, protocol.ProblemSerdeError, "reference values rejected: "+err.Error())
			} else {
				problem(w, protocol.ProblemPluginInternalError, "reference value could not be stored")
			}
			return
		}
		out = append(out, ReferenceValueResponse{ID: id, Name: v.Name, Values: v.Values})
	}
	writeJSON(w, map[string]any{"reference_values": out})
}

func (b *Broker) handleGetReferenceValue(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	vals, err := b.cfg.Store.RefValues().Lookup(r.Context(), name, b.cfg.Now())
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			problem(w, protocol.ProblemSerdeError, err.Error())
		} else {
			problem(w, protocol.ProblemPluginInternalError, "reference values could not be read")
		}
		return
	}
	if len(vals) == 0 {
		problem(w, protocol.ProblemPluginNotFound, "no valid reference value named "+name)
		return
	}
	writeJSON(w, ReferenceValueResponse{Name: name, Values: refvalue.Accepted(vals)})
}
