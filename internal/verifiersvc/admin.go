package verifiersvc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/pcs/pcscache"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/policy/rego"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/verifier"
)

// AdminPrefix is the path prefix of the admin API.
const AdminPrefix = "/admin/v1/"

// PolicyStore is the policy storage the admin API needs; *store.Store
// satisfies it.
type PolicyStore interface {
	CreatePolicy(ctx context.Context, p store.Policy) (store.Policy, error)
	ActivatePolicy(ctx context.Context, id string, version int) error
	ListPolicies(ctx context.Context, id string) ([]store.Policy, error)
}

// CollateralStatus reports the collateral cache; *pcscache.Cache
// satisfies it.
type CollateralStatus interface {
	Stats() pcscache.Stats
	Now() time.Time
}

// route is one entry of the route table: New registers it, /openapi.json
// documents it.
type route struct {
	method, path string
	admin        bool
	h            http.HandlerFunc
}

// routes is the route table of s.
func (s *Service) routes() []route {
	return []route{
		{method: http.MethodPost, path: "/v1/verify", h: s.handleNative},
		{method: http.MethodPost, path: "/verify", h: s.handleDstack},
		{method: http.MethodPost, path: "/v1/verify-cert", h: s.handleVerifyCert},
		{method: http.MethodGet, path: "/.well-known/jwks.json", h: s.handleJWKS},
		{method: http.MethodGet, path: "/healthz", h: s.handleHealth},
		{method: http.MethodGet, path: "/health", h: s.handleHealth},
		{method: http.MethodGet, path: "/readyz", h: s.handleReady},
		{method: http.MethodGet, path: "/metrics", h: s.handleMetrics},
		{method: http.MethodGet, path: "/openapi.json", h: s.handleOpenAPI},
		{method: http.MethodGet, path: AdminPrefix + "policies", admin: true, h: s.handleListPolicies},
		{method: http.MethodPost, path: AdminPrefix + "policies", admin: true, h: s.handleCreatePolicy},
		{method: http.MethodPost, path: AdminPrefix + "policies/dry-run", admin: true, h: s.handleDryRun},
		{method: http.MethodPost, path: AdminPrefix + "policies/{id}/versions/{version}/activate", admin: true, h: s.handleActivate},
		{method: http.MethodGet, path: AdminPrefix + "refvalues", admin: true, h: s.handleListRefValues},
		{method: http.MethodPost, path: AdminPrefix + "refvalues", admin: true, h: s.handleAddRefValue},
		{method: http.MethodDelete, path: AdminPrefix + "refvalues/{id}", admin: true, h: s.handleRemoveRefValue},
		{method: http.MethodGet, path: AdminPrefix + "collateral", admin: true, h: s.handleCollateral},
		{method: http.MethodGet, path: AdminPrefix + "keys", admin: true, h: s.handleListKeys},
		{method: http.MethodPost, path: AdminPrefix + "keys/rotate", admin: true, h: s.handleRotateKey},
		{method: http.MethodDelete, path: AdminPrefix + "keys/{kid}", admin: true, h: s.handleRemoveKey},
	}
}

// register adds the route table to mux: one handler per path that
// dispatches on the method (405 problem otherwise) and, for admin routes,
// checks the bearer token first.
func (s *Service) register(mux *http.ServeMux) {
	type entry struct {
		admin   bool
		methods map[string]http.HandlerFunc
	}
	var order []string
	byPath := map[string]*entry{}
	for _, rt := range s.routes() {
		e := byPath[rt.path]
		if e == nil {
			e = &entry{admin: rt.admin, methods: map[string]http.HandlerFunc{}}
			byPath[rt.path] = e
			order = append(order, rt.path)
		}
		e.methods[rt.method] = rt.h
	}
	for _, p := range order {
		e := byPath[p]
		var allow []string
		for m := range e.methods {
			allow = append(allow, m)
		}
		allowHdr := strings.Join(slices.Sorted(slices.Values(allow)), ", ")
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if e.admin && !s.authorize(w, r) {
				return
			}
			m := r.Method
			if m == http.MethodHead {
				if _, ok := e.methods[http.MethodGet]; ok {
					m = http.MethodGet
				}
			}
			h, ok := e.methods[m]
			if !ok {
				w.Header().Set("Allow", allowHdr)
				writeProblem(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path, nil)
				return
			}
			h(w, r)
		})
		mux.Handle(p, h)
	}
}

// authorize checks the admin bearer token. Without a configured token the
// admin API does not exist (404). It writes the problem and returns false
// when the request may not proceed.
func (s *Service) authorize(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.AdminToken == "" {
		writeProblem(w, http.StatusNotFound, "not_found", "no such route: "+r.URL.Path, nil)
		return false
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	// Comparing digests keeps the comparison constant-time in the token
	// length too.
	want := sha256.Sum256([]byte(s.opts.AdminToken))
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if !ok || subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tdproof-admin"`)
		writeProblem(w, http.StatusUnauthorized, "unauthorized", "a valid admin bearer token is required", nil)
		return false
	}
	return true
}

// PolicyJSON is a stored policy version in admin responses.
type PolicyJSON struct {
	ID          string     `json:"id"`
	Version     int        `json:"version"`
	Kind        string     `json:"kind"`
	Body        string     `json:"body"`
	Description string     `json:"description,omitempty"`
	Author      string     `json:"author,omitempty"`
	Active      bool       `json:"active"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
}

func policyJSON(p store.Policy) PolicyJSON {
	return PolicyJSON{ID: p.ID, Version: p.Version, Kind: string(p.Kind), Body: p.Body, Description: p.Description,
		Author: p.Author, Active: p.Active, CreatedAt: p.CreatedAt, ActivatedAt: p.ActivatedAt}
}

// CreatePolicyRequest is the body of POST /admin/v1/policies.
type CreatePolicyRequest struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	Body        string `json:"body"`
	Description string `json:"description,omitempty"`
	Activate    bool   `json:"activate,omitempty"`
}

// DryRunRequest is the body of POST /admin/v1/policies/dry-run.
type DryRunRequest struct {
	// ID names the policy in the result (default "dry-run").
	ID     string          `json:"id,omitempty"`
	Kind   string          `json:"kind"`
	Body   string          `json:"body"`
	Quote  *string         `json:"quote,omitempty"`
	Dstack json.RawMessage `json:"dstack,omitempty"`
	Nonce  string          `json:"nonce,omitempty"`
}

// DryRunResponse is the body of a 200 from POST /admin/v1/policies/dry-run.
// It carries no token: a dry run is not an attestation result.
type DryRunResponse struct {
	MediaType string           `json:"media_type"`
	Result    *verifier.Result `json:"result"`
}

// DryRunVersion is the policy version of a dry-run appraisal.
const DryRunVersion = "dry-run"

// compilePolicy compiles a candidate policy body; errors are 400.
func compilePolicy(kind, id, version, body string) (*policy.Policy, *apiError) {
	var (
		p   *policy.Policy
		err error
	)
	switch kind {
	case string(policy.FormatYAML):
		p, err = policy.ParseYAML(id, version, []byte(body))
	case string(policy.FormatRego):
		p, err = rego.Parse(policy.FormatRego, id, version, []byte(body))
	default:
		return nil, badRequest("invalid_policy", "kind %q: want yaml or rego", kind)
	}
	if err != nil {
		return nil, badRequest("invalid_policy", "%v", err)
	}
	return p, nil
}

func (s *Service) adminFail(w http.ResponseWriter, e *apiError) {
	if e.status >= 500 {
		s.log.Error("verifiersvc: admin", "code", e.code, "err", e.detail)
	}
	writeProblem(w, e.status, e.code, e.detail, nil)
}

// storeError maps a store or refvalue error.
func storeError(ctx context.Context, notFound string, err error) *apiError {
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, refvalue.ErrNotFound):
		return &apiError{status: http.StatusNotFound, code: notFound, detail: err.Error()}
	case errors.Is(err, store.ErrConflict):
		return &apiError{status: http.StatusConflict, code: "conflict", detail: err.Error()}
	case errors.Is(err, store.ErrInvalid), errors.Is(err, refvalue.ErrInvalid):
		return badRequest("invalid_request", "%v", err)
	case ctx.Err() != nil:
		return &apiError{status: http.StatusRequestTimeout, code: "request_timeout", detail: "request canceled: " + err.Error()}
	}
	return &apiError{status: http.StatusInternalServerError, code: "internal", detail: err.Error()}
}

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, "internal", "encode response", nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func (s *Service) handleListPolicies(w http.ResponseWriter, r *http.Request) {
	ps, err := s.opts.Policies.ListPolicies(r.Context(), r.URL.Query().Get("id"))
	if err != nil {
		s.adminFail(w, storeError(r.Context(), "unknown_policy", err))
		return
	}
	out := make([]PolicyJSON, 0, len(ps))
	for _, p := range ps {
		out = append(out, policyJSON(p))
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"policies": out})
}

func (s *Service) handleCreatePolicy(w http.ResponseWriter, r *http.Request) {
	var req CreatePolicyRequest
	if _, aerr := s.readJSON(w, r, &req, true); aerr != nil {
		s.adminFail(w, aerr)
		return
	}
	if req.ID == "" {
		s.adminFail(w, badRequest("invalid_policy", "id is empty"))
		return
	}
	if _, aerr := compilePolicy(req.Kind, req.ID, "candidate", req.Body); aerr != nil {
		s.adminFail(w, aerr)
		return
	}
	p, err := s.opts.Policies.CreatePolicy(r.Context(), store.Policy{ID: req.ID, Kind: store.PolicyKind(req.Kind),
		Body: req.Body, Description: req.Description, Author: "admin-api", Active: req.Activate})
	if err != nil {
		s.adminFail(w, storeError(r.Context(), "unknown_policy", err))
		return
	}
	writeJSONStatus(w, http.StatusCreated, policyJSON(p))
}

func (s *Service) handleActivate(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v <= 0 {
		s.adminFail(w, badRequest("malformed_request", "version %q: want a positive integer", r.PathValue("version")))
		return
	}
	if err := s.opts.Policies.ActivatePolicy(r.Context(), id, v); err != nil {
		s.adminFail(w, storeError(r.Context(), "unknown_policy", err))
		return
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"id": id, "version": v, "active": true})
}

// dryRunKey carries a dry-run policy in a request context.
type dryRunKey struct{}

// ActivePolicies gives the active version of a policy id: a *store.Store
// (one query per call) or a *store.Cache (from memory).
type ActivePolicies interface {
	ActivePolicy(ctx context.Context, id string) (store.Policy, error)
}

// StorePolicyResolver resolves policy ids to the active version in st
// ("" means policy.DefaultID; with no active default, policy.Default()),
// compiling each version once (policy.Cache). An id with no active version
// is verifier.ErrUnknownPolicy.
func StorePolicyResolver(st ActivePolicies) verifier.PolicyResolver {
	cache := policy.NewCache(0, rego.Parse)
	return func(ctx context.Context, id string) (*policy.Policy, error) {
		if id == "" {
			id = policy.DefaultID
		}
		p, err := st.ActivePolicy(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound) && id == policy.DefaultID:
			return policy.Default(), nil
		case errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("%w %q", verifier.ErrUnknownPolicy, id)
		case err != nil:
			return nil, err
		}
		return cache.Get(policy.Format(p.Kind), p.ID, strconv.Itoa(p.Version), []byte(p.Body))
	}
}

// DryRunResolver wraps next so that POST /admin/v1/policies/dry-run can
// appraise with a candidate policy: the verifier given to New must be
// built with it, or dry runs fail with 501 dry_run_unavailable.
func DryRunResolver(next verifier.PolicyResolver) verifier.PolicyResolver {
	return func(ctx context.Context, id string) (*policy.Policy, error) {
		if p, ok := ctx.Value(dryRunKey{}).(*policy.Policy); ok {
			return p, nil
		}
		return next(ctx, id)
	}
}

func (s *Service) handleDryRun(w http.ResponseWriter, r *http.Request) {
	var req DryRunRequest
	if _, aerr := s.readJSON(w, r, &req, true); aerr != nil {
		s.adminFail(w, aerr)
		return
	}
	id := req.ID
	if id == "" {
		id = "dry-run"
	}
	p, aerr := compilePolicy(req.Kind, id, DryRunVersion, req.Body)
	if aerr != nil {
		s.adminFail(w, aerr)
		return
	}
	ev, aerr := nativeEvidence(&NativeRequest{Quote: req.Quote, Dstack: req.Dstack, Nonce: req.Nonce})
	if aerr != nil {
		s.adminFail(w, aerr)
		return
	}
	ev.PolicyID = id
	ctx := context.WithValue(r.Context(), dryRunKey{}, p)
	unavailable := &apiError{status: http.StatusNotImplemented, code: "dry_run_unavailable",
		detail: "the verifier's policy resolver is not wrapped with verifiersvc.DryRunResolver"}
	o, err := s.v.Verify(ctx, ev)
	if errors.Is(err, verifier.ErrUnknownPolicy) {
		// The candidate never reached the verifier.
		s.adminFail(w, unavailable)
		return
	}
	if err != nil {
		s.adminFail(w, verifyError(r.Context(), err))
		return
	}
	if a := o.Result.Appraisal; a == nil || a.PolicyID != id || a.PolicyVersion != DryRunVersion {
		s.adminFail(w, unavailable)
		return
	}
	writeJSONStatus(w, http.StatusOK, DryRunResponse{MediaType: verifier.MediaType, Result: o.Result})
}

func (s *Service) handleListRefValues(w http.ResponseWriter, r *http.Request) {
	vs, err := s.opts.RefValues.List(r.Context())
	if err != nil {
		s.adminFail(w, storeError(r.Context(), "unknown_refvalue", err))
		return
	}
	if vs == nil {
		vs = []refvalue.Value{}
	}
	writeJSONStatus(w, http.StatusOK, map[string]any{"refvalues": vs})
}

func (s *Service) handleAddRefValue(w http.ResponseWriter, r *http.Request) {
	var v refvalue.Value
	if _, aerr := s.readJSON(w, r, &v, true); aerr != nil {
		s.adminFail(w, aerr)
		return
	}
	v.ID = ""
	if v.Provenance.Source == "" {
		v.Provenance.Source = "admin-api"
	}
	n, err := refvalue.Normalize(v)
	if err != nil {
		s.adminFail(w, badRequest("invalid_refvalue", "%v", err))
		return
	}
	id, err := s.opts.RefValues.Add(r.Context(), n)
	if err != nil {
		s.adminFail(w, storeError(r.Context(), "unknown_refvalue", err))
		return
	}
	n.ID = id
	writeJSONStatus(w, http.StatusCreated, n)
}

func (s *Service) handleRemoveRefValue(w http.ResponseWriter, r *http.Request) {
	if err := s.opts.RefValues.Remove(r.Context(), r.PathValue("id")); err != nil {
		s.adminFail(w, storeError(r.Context(), "unknown_refvalue", err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// CollateralItem is one cached collateral item in GET /admin/v1/collateral.
type CollateralItem struct {
	Key        string    `json:"key"`
	IssueDate  time.Time `json:"issue_date,omitzero"`
	NextUpdate time.Time `json:"next_update,omitzero"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
	FetchedAt  time.Time `json:"fetched_at,omitzero"`
	// AgeSeconds is the time since IssueDate at the cache's clock.
	AgeSeconds float64 `json:"age_seconds"`
	Failures   int     `json:"failures"`
}

// CollateralResponse is the body of GET /admin/v1/collateral.
type CollateralResponse struct {
	// Configured is false when the service has no collateral cache to
	// report (every other member is then zero).
	Configured      bool             `json:"configured"`
	Now             time.Time        `json:"now,omitzero"`
	Hits            uint64           `json:"hits"`
	Misses          uint64           `json:"misses"`
	DiskHits        uint64           `json:"disk_hits"`
	StaleServed     uint64           `json:"stale_served"`
	UpstreamFetches uint64           `json:"upstream_fetches"`
	UpstreamErrors  uint64           `json:"upstream_errors"`
	Refreshes       uint64           `json:"refreshes"`
	DiskErrors      uint64           `json:"disk_errors"`
	Items           []CollateralItem `json:"items"`
}

func (s *Service) handleCollateral(w http.ResponseWriter, _ *http.Request) {
	resp := CollateralResponse{Items: []CollateralItem{}}
	if c := s.opts.Collateral; c != nil {
		st, now := c.Stats(), c.Now()
		resp = CollateralResponse{Configured: true, Now: now.UTC(), Hits: st.Hits, Misses: st.Misses, DiskHits: st.DiskHits,
			StaleServed: st.StaleServed, UpstreamFetches: st.UpstreamFetches, UpstreamErrors: st.UpstreamErrors,
			Refreshes: st.Refreshes, DiskErrors: st.DiskErrors, Items: make([]CollateralItem, 0, len(st.Items))}
		for _, it := range st.Items {
			ci := CollateralItem{Key: it.Key.Path(), IssueDate: it.IssueDate.UTC(), NextUpdate: it.NextUpdate.UTC(),
				ValidUntil: it.ValidUntil.UTC(), FetchedAt: it.FetchedAt.UTC(), Failures: it.Failures}
			if !it.IssueDate.IsZero() {
				ci.AgeSeconds = now.Sub(it.IssueDate).Seconds()
			}
			resp.Items = append(resp.Items, ci)
		}
	}
	writeJSONStatus(w, http.StatusOK, resp)
}
