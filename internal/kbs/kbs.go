// Package kbs is tdproof's key broker: the Trustee KBS protocol 0.4.0
// (package kbs/protocol) over HTTP, releasing resources only to TDs whose
// evidence the verifier appraised.
//
// Routes: POST /kbs/v0/auth issues a challenge (a fresh nonce) and a
// kbs-session-id cookie whose session expires after Config.SessionTimeout.
// POST /kbs/v0/attest, with the cookie, consumes the session's nonce (once:
// a second attest on the same session, sequential or concurrent, on this
// broker or another on the same store, or one after the expiry, is refused
// with AttestationError; the outcome, token or failure, is recorded by one
// insert that the store admits once per session: cookie.go),
// checks that the quote's REPORTDATA equals protocol.ReportData(nonce,
// tee-pubkey, additional-evidence), verifies the evidence with the
// verifier (the expected report data is its nonce, so the token's
// eat_nonce binds it) and returns {"token": EAR}; evidence that is
// not authentic is refused (AttestationError), and so is a cc_eventlog
// that does not replay to the quote's RTMR0–2 (and RTMR3 when it records
// RTMR3 events), with or without an event_log. TDX evidence that carries
// the tdproof extension "event_log" (dstack's JSON event log, with
// "vm_config") is verified as dstack evidence: RTMR0–3 are replayed (a
// log that does not replay to the quote is not authentic) and the app
// identity (dstack.app_id, dstack.compose_hash, …) becomes claims the
// attestation policy appraises. GET
// /kbs/v0/resource/<repo>/<type>/<tag>, with the cookie of an attested
// session or Authorization: Bearer <EAR>, verifies the token with
// Config.TokenKeys (TokenVerifierError), finds the session it was issued
// for (its TEE key; TokenNotFound otherwise), evaluates the resource policy
// (PolicyDeny) and answers the resource encrypted to the TEE key
// (protocol.EncryptResource).
//
// # Sessions in memory
//
// A pending session is its cookie: the session id, expiry, TEE and nonce
// under a MAC keyed from the key-encryption key (cookie.go), so the auth
// step writes nothing and brokers sharing a database and a key-encryption
// key attest each other's sessions. The store keeps the attested and
// failed sessions, so brokers serve each other's resource steps. A broker
// also remembers, for sessionMemoTTL (2 s of the system's clock, whatever
// Config.Now says), the sessions it claimed or attested (sessions.go): a
// second attest step of a session it claimed is refused without
// verifying its evidence, and the resource step of a session it attested
// takes the token's claims as it signed them, without reading the session
// or verifying the token's signature again (the signing key must still be
// in TokenKeys, the validity period is checked, the session must not have
// expired). Past that, or for a session another broker attested, the
// store is read: an attested session removed from the database by other
// means than its expiry is refused within 2 s.
//
// # Resource policy
//
// A Rego (v1) module of package "policy" defining a boolean allow, as in
// Trustee. input is the verified EAR claims (eat_nonce, submods, …);
// data["resource-path"] is "repo/type/tag". The default
// (DefaultResourcePolicy) allows only tokens whose every submodule has
// ear.status "affirming". http.send, net.lookup_ip_addr, opa.runtime,
// rego.parse_module and trace are not available. The policy is kept in
// the store (kbs_policies), so brokers sharing a database agree and a
// policy set through the admin API survives restarts; each resource request
// reads its digest (from memory with Config.Policies a store.Cache) and
// compiled policies are cached by digest: a policy is prepared once per
// version.
//
// # Admin routes and app keys
//
// With Config.AdminToken, the Trustee admin routes (admin.go) manage
// resources, the resource policy, the verifier's attestation policy and
// reference values. With Config.AppKeyRoot, the resource types app-key and
// instance-key are derived per dstack application (appkey.go). See
// docs/kbs.md.
//
// # Resources at rest
//
// Resources are sealed with AES-256-GCM under the key-encryption key given
// to New, a fresh 96-bit nonce per record and the resource path
// ("repo/type/tag") as additional data, so a record moved to another path
// does not open.
//
// # Errors
//
// Every failure is a Trustee problem document (protocol.ErrorInfo, status
// 401, or 404 for a resource that does not exist: PluginNotFound). The
// attestation failures of a session consume it.
package kbs

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/resolver"

	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/verifier"
)

// DefaultResourcePolicy releases a resource only to a token whose every
// submodule is affirming.
const DefaultResourcePolicy = `package policy

default allow := false

allow if {
	count(input.submods) > 0
	every _, s in input.submods {
		s["ear.status"] == "affirming"
	}
}
`

// maxBody bounds request bodies (protocol.MaxMessageSize).
const maxBody = protocol.MaxMessageSize

var resourcePathRef = ast.MustParseRef(`data["resource-path"]`)

type constant struct{ v ast.Value }

func (c constant) Eval(context.Context, resolver.Input) (resolver.Result, error) {
	return resolver.Result{Value: c.v}, nil
}

var deniedBuiltins = []string{"http.send", "net.lookup_ip_addr", "opa.runtime", "rego.parse_module", "trace"}

// Config configures a Broker.
type Config struct {
	// Store keeps sessions and resources. Required.
	Store *store.Store
	// Verifier appraises evidence and signs EAR tokens. Required.
	Verifier *verifier.Verifier
	// TokenKeys verifies EAR tokens presented to the resource route (the
	// verifier's key set). Required.
	TokenKeys *ear.KeySet
	// KEK is the 32-byte AES-256 key sealing resources at rest; the
	// session cookies' MAC key is derived from it, so brokers sharing a
	// store must share it. Required.
	KEK []byte
	// ResourcePolicy is the initial Rego resource policy; empty means
	// DefaultResourcePolicy. New stores it only when the store has no
	// resource policy yet (as Trustee installs its default): a policy set
	// through the admin API survives restarts.
	ResourcePolicy string
	// AttestationPolicyID selects the verifier policy ("": its default).
	AttestationPolicyID string
	// SessionTimeout is the session lifetime; zero means
	// protocol.DefaultSessionTimeout.
	SessionTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// AdminToken enables the admin routes (admin.go) for requests with
	// Authorization: Bearer <AdminToken>; empty refuses every admin
	// request with AdminAuth.
	AdminToken string
	// AppKeyRoot, at least 32 secret bytes, enables the derived resource
	// types app-key and instance-key (appkey.go); nil refuses them.
	AppKeyRoot []byte
	// Limits bound the unauthenticated routes (limits.go).
	Limits Limits
	// Policies serves the resource policy to the resource route; nil
	// means Store (one query for the policy's digest per resource
	// request). A *store.Cache over Store serves it from memory: a
	// resource request then sends no SQL for its policy, and a policy set
	// through this broker is in force from the next request (the Cache
	// sees its own Store's writes at once; other brokers' within its
	// poll interval).
	Policies PolicySource
	// Resources serves the sealed resources to the resource route; nil
	// means Store (one query per resource request). A *store.Cache over
	// Store serves a resource from memory once read: a resource set or
	// deleted through this broker is in force from the next request,
	// through another broker within the Cache's poll interval.
	Resources ResourceSource
}

// ResourceSource reads the key broker's sealed resources: *store.Store
// (SQL) and *store.Cache (memory once read) implement it.
type ResourceSource interface {
	KBSResource(ctx context.Context, path string) (store.KBSResource, error)
}

// PolicySource reads the key broker's stored policies: *store.Store (SQL)
// and *store.Cache (memory) implement it.
type PolicySource interface {
	KBSPolicySHA256(ctx context.Context, name string) (string, error)
	KBSPolicy(ctx context.Context, name string) (store.KBSPolicy, error)
}

// Broker is the key broker, an http.Handler. It is safe for concurrent use.
type Broker struct {
	cfg  Config
	aead cipher.AEAD
	// initial is the compiled Config.ResourcePolicy, used when the store
	// has no resource policy.
	initial  preparedPolicy
	policies policyCache
	sessions sessionMemo
	// cookieKey MACs the session cookies (cookie.go).
	cookieKey []byte
	mux       *http.ServeMux
	limits    *limiter
}

// New returns a Broker.
func New(cfg Config) (*Broker, error) {
	if cfg.Store == nil || cfg.Verifier == nil || cfg.TokenKeys == nil {
		return nil, errors.New("kbs: store, verifier and token keys are required")
	}
	if len(cfg.KEK) != 32 {
		return nil, fmt.Errorf("kbs: key-encryption key of %d bytes, want 32", len(cfg.KEK))
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = protocol.DefaultSessionTimeout
	}
	if cfg.SessionTimeout < 0 {
		return nil, errors.New("kbs: negative session timeout")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Policies == nil {
		cfg.Policies = cfg.Store
	}
	if cfg.Resources == nil {
		cfg.Resources = cfg.Store
	}
	if err := cfg.Limits.setDefaults(); err != nil {
		return nil, err
	}
	if cfg.ResourcePolicy == "" {
		cfg.ResourcePolicy = DefaultResourcePolicy
	}
	block, err := aes.NewCipher(slices.Clone(cfg.KEK))
	if err != nil {
		return nil, fmt.Errorf("kbs: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("kbs: %w", err)
	}
	if cfg.AppKeyRoot != nil {
		if len(cfg.AppKeyRoot) < MinAppKeyRoot {
			return nil, fmt.Errorf("kbs: app key root of %d bytes, want at least %d", len(cfg.AppKeyRoot), MinAppKeyRoot)
		}
		cfg.AppKeyRoot = slices.Clone(cfg.AppKeyRoot)
	}
	pq, err := compilePolicy(cfg.ResourcePolicy)
	if err != nil {
		return nil, err
	}
	if _, err := cfg.Store.InitKBSPolicy(context.Background(), store.KBSResourcePolicyName, cfg.ResourcePolicy); err != nil {
		return nil, fmt.Errorf("kbs: install the resource policy: %w", err)
	}
	ck, err := cookieKey(cfg.KEK)
	if err != nil {
		return nil, fmt.Errorf("kbs: %w", err)
	}
	b := &Broker{cfg: cfg, aead: aead, initial: pq, cookieKey: ck, mux: http.NewServeMux(), limits: newLimiter(cfg.Limits, cfg.SessionTimeout)}
	b.policies.put(store.KBSPolicyDigest(cfg.ResourcePolicy), pq)
	b.mux.HandleFunc("POST "+protocol.PathAuth, b.auth)
	b.mux.HandleFunc("POST "+protocol.PathAttest, b.attest)
	b.mux.HandleFunc("GET "+protocol.PathResource+"/{repo}/{type}/{tag}", b.resource)
	b.registerAdmin()
	return b, nil
}

func compilePolicy(src string) (preparedPolicy, error) {
	mod, err := ast.ParseModuleWithOpts("resource.rego", src, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return preparedPolicy{}, fmt.Errorf("kbs: resource policy: %w", err)
	}
	if got := mod.Package.Path.String(); got != "data.policy" {
		return preparedPolicy{}, fmt.Errorf("kbs: resource policy: package %s, want policy", strings.TrimPrefix(got, "data."))
	}
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(slices.Clone(caps.Builtins), func(b *ast.Builtin) bool {
		return slices.Contains(deniedBuiltins, b.Name)
	})
	pq, err := rego.New(
		rego.Query("data.policy.allow"),
		rego.ParsedModule(mod),
		rego.Capabilities(caps),
		rego.StrictBuiltinErrors(true),
		rego.SetRegoVersion(ast.RegoV1),
	).PrepareForEval(context.Background())
	if err != nil {
		return preparedPolicy{}, fmt.Errorf("kbs: resource policy: %w", err)
	}
	return preparedPolicy{pq: pq, affirmingOnly: src == DefaultResourcePolicy}, nil
}

// ServeHTTP implements http.Handler.
func (b *Broker) ServeHTTP(w http.ResponseWriter, r *http.Request) { b.mux.ServeHTTP(w, r) }

// PutResource seals value and stores it at id.
func (b *Broker) PutResource(ctx context.Context, id protocol.ResourceID, value []byte) error {
	if err := id.Validate(); err != nil {
		return err
	}
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("kbs: %w", err)
	}
	ct := b.aead.Seal(nil, nonce, value, []byte(id.String()))
	return b.cfg.Store.PutKBSResource(ctx, store.KBSResource{Path: id.String(), Nonce: nonce, Ciphertext: ct, UpdatedAt: b.cfg.Now()})
}

// openResource reads and unseals the resource at id.
func (b *Broker) openResource(ctx context.Context, id protocol.ResourceID) ([]byte, error) {
	rec, err := b.cfg.Resources.KBSResource(ctx, id.String())
	if err != nil {
		return nil, err
	}
	if len(rec.Nonce) != b.aead.NonceSize() {
		return nil, fmt.Errorf("kbs: resource %s: bad nonce", id)
	}
	pt, err := b.aead.Open(nil, rec.Nonce, rec.Ciphertext, []byte(id.String()))
	if err != nil {
		return nil, fmt.Errorf("kbs: resource %s: %w", id, err)
	}
	return pt, nil
}

func problem(w http.ResponseWriter, t protocol.ProblemType, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(t.HTTPStatus())
	_ = json.NewEncoder(w).Encode(protocol.NewErrorInfo(t, detail))
}

func protocolProblem(w http.ResponseWriter, err error) {
	if info, ok := protocol.ErrorInfoFor(err); ok {
		if t, ok := info.Problem(); ok {
			problem(w, t, info.Detail)
			return
		}
	}
	problem(w, protocol.ProblemSerdeError, err.Error())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// writeToken answers {"token": token}: what writeJSON writes for a
// protocol.TokenResponse, without encoding/json's scan of the token when
// it is a compact JWS (base64url segments and dots need no escaping).
func writeToken(w http.ResponseWriter, token string) {
	for i := 0; i < len(token); i++ {
		if c := token[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			writeJSON(w, protocol.TokenResponse{Token: token})
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	b := make([]byte, 0, len(token)+len(`{"token":""}`)+1)
	b = append(b, `{"token":"`...)
	b = append(b, token...)
	b = append(b, "\"}\n"...)
	_, _ = w.Write(b)
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
}

func (b *Broker) auth(w http.ResponseWriter, r *http.Request) {
	if !b.limits.allowRate(w, r) {
		return
	}
	body, err := readLimited(w, r, b.cfg.Limits.AuthBodyBytes)
	if err != nil {
		return
	}
	req, err := protocol.ParseRequest(body)
	if err != nil {
		protocolProblem(w, err)
		return
	}
	ch, err := protocol.NewChallenge()
	if err != nil {
		problem(w, protocol.ProblemAttestationError, "challenge: "+err.Error())
		return
	}
	var id [sessionIDSize]byte
	if _, err := rand.Read(id[:]); err != nil {
		problem(w, protocol.ProblemAttestationError, "session: "+err.Error())
		return
	}
	if !b.limits.sessions.reserve() {
		limitProblem(w, http.StatusServiceUnavailable, problemOverloaded, "too many live sessions: retry later", time.Second)
		return
	}
	exp := b.cfg.Now().Add(b.cfg.SessionTimeout)
	cookie, err := sealCookie(b.cookieKey, id, store.KBSSession{Nonce: ch.Nonce, Tee: string(req.Tee), ExpiresAt: exp})
	if err != nil {
		problem(w, protocol.ProblemAttestationError, "session: "+err.Error())
		return
	}
	http.SetCookie(w, &http.Cookie{Name: protocol.SessionCookie, Value: cookie, Path: protocol.APIPrefix, Expires: exp})
	writeJSON(w, ch)
}

// spentSession is the attest step's refusal of a session that is not
// pending.
const spentSession = "session unknown, expired or already used: a nonce is single use"

func (b *Broker) attest(w http.ResponseWriter, r *http.Request) {
	if !b.limits.allowRate(w, r) {
		return
	}
	c, err := r.Cookie(protocol.SessionCookie)
	if err != nil || c.Value == "" {
		problem(w, protocol.ProblemAttestationError, "no kbs-session-id cookie: call "+protocol.PathAuth+" first")
		return
	}
	select {
	case b.limits.inFlight <- struct{}{}:
		defer func() { <-b.limits.inFlight }()
	default:
		limitProblem(w, http.StatusServiceUnavailable, problemOverloaded, "too many attestations in progress: retry later", time.Second)
		return
	}
	body, err := readLimited(w, r, b.cfg.Limits.AttestBodyBytes)
	if err != nil {
		return
	}
	att, err := protocol.ParseAttestation(body)
	if err != nil {
		protocolProblem(w, err)
		return
	}
	ctx := r.Context()
	now := b.cfg.Now()
	// The pending session is the cookie's (cookie.go). A second attest
	// step of this process on the session is refused here; the store's
	// insert of the outcome refuses every other (sequential or
	// concurrent, from any broker on the store): the nonce is consumed
	// whatever the outcome.
	ss, err := openCookie(b.cookieKey, c.Value)
	if err != nil {
		problem(w, protocol.ProblemAttestationError, "kbs-session-id: "+err.Error()+": call "+protocol.PathAuth+" first")
		return
	}
	if !now.Before(ss.ExpiresAt) || !b.sessions.claim(ss.ID) {
		problem(w, protocol.ProblemAttestationError, spentSession)
		return
	}
	token, reportData, pub, claims, detail := b.appraise(ctx, ss, att)
	// The outcome is recorded even if the client has gone.
	wctx := context.WithoutCancel(ctx)
	if token == "" {
		_ = b.cfg.Store.RecordKBSSession(wctx, ss) // ss.Token is empty: failed
		problem(w, protocol.ProblemAttestationError, detail)
		return
	}
	if !b.cfg.Now().Before(ss.ExpiresAt) {
		// Expired while its evidence was verified: no token for it, and
		// its nonce is spent like that of any refused attestation (a
		// broker whose clock lags would otherwise still accept it).
		_ = b.cfg.Store.RecordKBSSession(wctx, ss)
		problem(w, protocol.ProblemAttestationError, spentSession)
		return
	}
	ss.ReportData, ss.TeePubKey, ss.Token, ss.TokenID = reportData[:], pub, token, claims.ID
	if err := b.cfg.Store.RecordKBSSession(wctx, ss); err != nil {
		if errors.Is(err, store.ErrConflict) {
			problem(w, protocol.ProblemAttestationError, spentSession)
		} else {
			problem(w, protocol.ProblemAttestationError, "session could not be recorded")
		}
		return
	}
	if kid, err := ear.KeyID(token); err == nil {
		b.sessions.attested(ss.ID, ss.ExpiresAt, reportData, att.RuntimeData.TeePubKey, token, kid, claims)
	}
	writeToken(w, token)
}

// appraise checks an attestation against its claimed session; token is ""
// on refusal, with detail saying why.
func (b *Broker) appraise(ctx context.Context, ss store.KBSSession, att *protocol.Attestation) (token string, reportData [64]byte, pub string, claims *ear.Claims, detail string) {
	if subtle.ConstantTimeCompare([]byte(att.RuntimeData.Nonce), []byte(ss.Nonce)) != 1 {
		return "", reportData, "", nil, "runtime-data nonce is not the session's challenge"
	}
	if ss.Tee != string(protocol.TeeTdx) && ss.Tee != string(protocol.TeeSnp) && ss.Tee != string(protocol.TeeNitro) {
		return "", reportData, "", nil, fmt.Sprintf("TEE %q is not supported (only tdx, snp and nitro)", ss.Tee)
	}
	reportData, err := att.ReportData()
	if err != nil {
		return "", reportData, "", nil, "report data: " + err.Error()
	}
	if ss.Tee == string(protocol.TeeSnp) {
		return b.appraiseSNP(ctx, att, reportData)
	}
	if ss.Tee == string(protocol.TeeNitro) || isDstackEvidence(att.TeeEvidence.PrimaryEvidence) {
		// dstack Nitro, GCP TDX (or TDX) attestations (dstack.go).
		return b.appraiseDstack(ctx, protocol.Tee(ss.Tee), att, reportData)
	}
	ev, err := protocol.ParseTDXEvidence(att.TeeEvidence.PrimaryEvidence)
	if err != nil || ev.Quote == "" {
		return "", reportData, "", nil, "primary evidence is not TDX evidence {quote, cc_eventlog}"
	}
	raw, err := base64.StdEncoding.DecodeString(ev.Quote)
	if err != nil {
		return "", reportData, "", nil, "quote is not standard base64"
	}
	q, err := quote.Parse(raw)
	if err != nil {
		return "", reportData, "", nil, "quote: " + err.Error()
	}
	if got := q.ReportData(); subtle.ConstantTimeCompare(got[:], reportData[:]) != 1 {
		return "", reportData, "", nil, "quote REPORTDATA does not bind the session nonce and tee-pubkey"
	}
	vev := verifier.Evidence{Quote: raw, Nonce: reportData[:], PolicyID: b.cfg.AttestationPolicyID}
	if ev.CCEventLog != nil {
		// The verifier checks that the CCEL replays to the quote.
		if vev.CCEL, err = base64.StdEncoding.DecodeString(*ev.CCEventLog); err != nil {
			return "", reportData, "", nil, "cc_eventlog is not standard base64"
		}
	}
	if ev.EventLog != "" {
		// dstack evidence: the same quote with its event log, so that
		// RTMR0–3 are replayed and the app identity becomes claims. A
		// CCEL beside it must replay to the same quote: evidence never
		// carries a part that nothing checks.
		if vev.CCEL != nil {
			if err := verifier.CheckCCEL(q.TD, vev.CCEL); err != nil {
				return "", reportData, "", nil, "cc_eventlog: " + err.Error()
			}
			vev.CCEL = nil
		}
		if vev.Dstack, err = dstackEvidence(raw, ev); err != nil {
			return "", reportData, "", nil, "event_log: " + err.Error()
		}
		vev.Quote = nil
	}
	out, err := b.cfg.Verifier.Verify(ctx, vev)
	if err != nil {
		return "", reportData, "", nil, "verification failed: " + err.Error()
	}
	if !out.Result.Authentic {
		return "", reportData, "", nil, "evidence is not authentic: " + out.Result.Reason
	}
	pj, err := json.Marshal(att.RuntimeData.TeePubKey)
	if err != nil {
		return "", reportData, "", nil, "tee-pubkey: " + err.Error()
	}
	return out.Token, reportData, string(pj), out.TokenClaims, ""
}

// dstackEvidence builds the dstack GetQuote JSON of a TDX evidence that
// carries an event log.
func dstackEvidence(rawQuote []byte, ev *protocol.TDXEvidence) ([]byte, error) {
	if !json.Valid([]byte(ev.EventLog)) {
		return nil, errors.New("not JSON")
	}
	doc := struct {
		Quote    string          `json:"quote"`
		EventLog json.RawMessage `json:"event_log"`
		VMConfig string          `json:"vm_config,omitempty"`
	}{hex.EncodeToString(rawQuote), json.RawMessage(ev.EventLog), ev.VMConfig}
	return json.Marshal(doc)
}

func (b *Broker) resource(w http.ResponseWriter, r *http.Request) {
	id := protocol.ResourceID{Repository: r.PathValue("repo"), Type: r.PathValue("type"), Tag: r.PathValue("tag")}
	if err := id.Validate(); err != nil {
		protocolProblem(w, err)
		return
	}
	ctx := r.Context()
	now := b.cfg.Now()
	var (
		token  string
		ss     store.KBSSession
		err    error
		claims *ear.Claims
		input  func() (ast.Value, error)
		jwk    protocol.JWK
		signed *ear.Claims // claims as this broker signed them (from memory)
	)
	vopts := ear.VerifyOptions{Now: func() time.Time { return now }}
	if h := r.Header.Get("Authorization"); h != "" {
		t, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || t == "" {
			problem(w, protocol.ProblemTokenNotFound, "Authorization is not a Bearer token")
			return
		}
		token = t
	} else {
		c, cerr := r.Cookie(protocol.SessionCookie)
		if cerr != nil || c.Value == "" {
			problem(w, protocol.ProblemTokenNotFound, "no Bearer token and no kbs-session-id cookie")
			return
		}
		cs, cerr := openCookie(b.cookieKey, c.Value)
		if cerr != nil {
			problem(w, protocol.ProblemTokenNotFound, "session unknown, expired or not attested")
			return
		}
		if m, ok := b.sessions.attestedSession(cs.ID, now); ok {
			// This process attested the session less than
			// sessionMemoTTL ago and wrote its token: the claims are the
			// ones it signed. What Verify would still check: the key is
			// still trusted, and the validity period.
			if _, known := b.cfg.TokenKeys.Lookup(m.kid); !known {
				problem(w, protocol.ProblemTokenVerifierError, fmt.Sprintf("token: %v: kid %q", ear.ErrUnknownKey, m.kid))
				return
			}
			if err := m.claims.Check(vopts); err != nil {
				problem(w, protocol.ProblemTokenVerifierError, "token: "+err.Error())
				return
			}
			if m.claims.Nonce != verifier.NonceClaim(m.reportData[:]) {
				problem(w, protocol.ProblemTokenVerifierError, "token does not belong to the session")
				return
			}
			claims, input, jwk = m.claims, m.input, m.teePubKey
			signed = m.claims
		} else {
			ss, err = b.cfg.Store.KBSSession(ctx, cs.ID)
			if err != nil || ss.State != store.KBSSessionAttested || !now.Before(ss.ExpiresAt) {
				problem(w, protocol.ProblemTokenNotFound, "session unknown, expired or not attested")
				return
			}
			token = ss.Token
		}
	}
	if claims == nil {
		if claims, err = ear.Verify(token, b.cfg.TokenKeys, vopts); err != nil {
			problem(w, protocol.ProblemTokenVerifierError, "token: "+err.Error())
			return
		}
		input = func() (ast.Value, error) { return policyInput(token) }
		if ss.ID == "" {
			ss, err = b.cfg.Store.KBSSessionByTokenID(ctx, claims.ID)
			if err != nil {
				problem(w, protocol.ProblemTokenNotFound, "token was not issued by this broker's handshake")
				return
			}
		}
		// The token must be the one issued for the session's report data.
		if claims.ID != ss.TokenID || claims.Nonce != verifier.NonceClaim(ss.ReportData) {
			problem(w, protocol.ProblemTokenVerifierError, "token does not belong to the session")
			return
		}
		if err := json.Unmarshal([]byte(ss.TeePubKey), &jwk); err != nil {
			problem(w, protocol.ProblemExtractTeePubKeyFailed, "session TEE key: "+err.Error())
			return
		}
	}
	allow, err := b.allow(ctx, input, signed, id)
	if err != nil {
		problem(w, protocol.ProblemPolicyEngine, "resource policy: "+err.Error())
		return
	}
	if !allow {
		problem(w, protocol.ProblemPolicyDeny, "resource policy denies "+id.String())
		return
	}
	if isDerivedType(id.Type) {
		value, t, detail := b.appKey(claims, id)
		if t != "" {
			problem(w, t, detail)
			return
		}
		b.sendResource(w, value, jwk)
		return
	}
	value, err := b.openResource(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		problem(w, protocol.ProblemPluginNotFound, "no resource "+id.String())
		return
	}
	if err != nil {
		problem(w, protocol.ProblemPluginInternalError, "resource could not be read")
		return
	}
	b.sendResource(w, value, jwk)
}

// sendResource answers value encrypted to the TEE key jwk.
func (b *Broker) sendResource(w http.ResponseWriter, value []byte, jwk protocol.JWK) {
	resp, err := protocol.EncryptResource(value, jwk)
	if err != nil {
		protocolProblem(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(resp)
}

// policyInput is the resource policy's input for a verified token: its
// claims as signed (the JWS payload), decoded as OPA decodes input
// documents (numbers exact).
func policyInput(token string) (ast.Value, error) {
	_, rest, _ := strings.Cut(token, ".")
	payload, _, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, errors.New("token is not a compact JWS")
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, fmt.Errorf("token payload: %w", err)
	}
	return jsonValue(raw)
}

// allow evaluates the resource policy on the input of the verified claims;
// signed, when not nil, are the claims as this broker signed them.
func (b *Broker) allow(ctx context.Context, input func() (ast.Value, error), signed *ear.Claims, id protocol.ResourceID) (bool, error) {
	pp, err := b.resourcePolicy(ctx)
	if err != nil {
		return false, err
	}
	if pp.affirmingOnly && signed != nil {
		return allAffirming(signed), nil
	}
	in, err := input()
	if err != nil {
		return false, err
	}
	rs, err := pp.pq.Eval(ctx, rego.EvalParsedInput(in), rego.EvalTime(b.cfg.Now()),
		rego.EvalResolver(resourcePathRef, constant{ast.String(id.String())}))
	if err != nil {
		return false, err
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return false, nil
	}
	v, ok := rs[0].Expressions[0].Value.(bool)
	return ok && v, nil
}
