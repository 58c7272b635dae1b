package protocol

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Version is the only KBS protocol version this package speaks; Trustee
// requires exactly this (semver "=0.4.0").
const Version = "0.4.0"

// Routes, as served by Trustee under APIPrefix.
const (
	APIPrefix             = "/kbs/v0"
	PathAuth              = APIPrefix + "/auth"               // POST: Request → Challenge + cookie
	PathAttest            = APIPrefix + "/attest"             // POST: Attestation → TokenResponse
	PathResource          = APIPrefix + "/resource"           // GET/POST/DELETE + "/<repo>/<type>/<tag>"
	PathAttestationPolicy = APIPrefix + "/attestation-policy" // POST (admin)
	PathResourcePolicy    = APIPrefix + "/resource-policy"    // GET/POST (admin)
	PathReferenceValue    = APIPrefix + "/reference-value"    // POST, GET + "/<id>" (admin)
	PathMetrics           = "/metrics"
	PathHealthz           = "/healthz"
)

// Session cookie.
const (
	// SessionCookie names the cookie set by PathAuth and sent to
	// PathAttest and PathResource.
	SessionCookie = "kbs-session-id"
	// DefaultSessionTimeout is Trustee's default session lifetime.
	DefaultSessionTimeout = 5 * time.Minute
)

// NonceSize is the size of a challenge nonce before base64 encoding.
const NonceSize = 32

// HashAlgorithm names accepted in extra-params.
const (
	HashSHA256 = "sha256"
	HashSHA384 = "sha384"
	HashSHA512 = "sha512"
)

// Tee names a TEE type as kbs-types spells it.
type Tee string

// TEE types documented for protocol 0.4.0.
const (
	TeeAzSnpVtpm Tee = "az-snp-vtpm"
	TeeAzTdxVtpm Tee = "az-tdx-vtpm"
	TeeSnp       Tee = "snp"
	TeeSgx       Tee = "sgx"
	TeeTdx       Tee = "tdx"
	TeeCca       Tee = "cca"
	TeeCsv       Tee = "csv"
	TeeSe        Tee = "se"
	TeeTpm       Tee = "tpm"
	TeeSample    Tee = "sample"
	// TeeNitro (tdproof extension; no kbs-types name exists) is AWS
	// Nitro: a Nitro Enclave or an EC2 NitroTPM instance sending dstack
	// evidence ([DstackEvidence]).
	TeeNitro Tee = "nitro"
)

var knownTees = []Tee{TeeAzSnpVtpm, TeeAzTdxVtpm, TeeSnp, TeeSgx, TeeTdx, TeeCca, TeeCsv, TeeSe, TeeTpm, TeeSample, TeeNitro}

// Valid reports whether t is a documented TEE type.
func (t Tee) Valid() bool { return slices.Contains(knownTees, t) }

// emptyExtra is the extra-params value Trustee sends when it has none.
var emptyExtra = json.RawMessage(`""`)

// Request is the RCAR Request, the body of POST PathAuth.
type Request struct {
	Version string `json:"version"`
	Tee     Tee    `json:"tee"`
	// ExtraParams is any JSON value; nil is sent as "".
	ExtraParams json.RawMessage `json:"extra-params"`
}

// NewRequest returns a Request for tee at Version with no extra params.
func NewRequest(tee Tee) Request {
	return Request{Version: Version, Tee: tee, ExtraParams: emptyExtra}
}

// MarshalJSON implements json.Marshaler, sending nil ExtraParams as "".
func (r Request) MarshalJSON() ([]byte, error) {
	type plain Request
	if len(r.ExtraParams) == 0 {
		r.ExtraParams = emptyExtra
	}
	return json.Marshal(plain(r))
}

// Challenge is the RCAR Challenge, the body of PathAuth's response.
type Challenge struct {
	// Nonce is standard base64 of NonceSize random bytes (Trustee).
	Nonce string `json:"nonce"`
	// ExtraParams is "" except for IBM SE; nil is sent as "".
	ExtraParams json.RawMessage `json:"extra-params"`
}

// MarshalJSON implements json.Marshaler, sending nil ExtraParams as "".
func (c Challenge) MarshalJSON() ([]byte, error) {
	type plain Challenge
	if len(c.ExtraParams) == 0 {
		c.ExtraParams = emptyExtra
	}
	return json.Marshal(plain(c))
}

// NewChallenge returns a Challenge with a fresh nonce read from
// crypto/rand and empty extra params.
func NewChallenge() (Challenge, error) {
	var n [NonceSize]byte
	if _, err := io.ReadFull(rand.Reader, n[:]); err != nil {
		return Challenge{}, fmt.Errorf("kbs protocol: nonce: %w", err)
	}
	return Challenge{Nonce: base64.StdEncoding.EncodeToString(n[:]), ExtraParams: emptyExtra}, nil
}

// NewSessionID returns a fresh session id: a random UUID v4 in simple
// form (32 lower-case hex digits, no hyphens), as Trustee sets it.
func NewSessionID() (string, error) {
	var u [16]byte
	if _, err := io.ReadFull(rand.Reader, u[:]); err != nil {
		return "", fmt.Errorf("kbs protocol: session id: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return hex.EncodeToString(u[:]), nil
}

// InitData is the optional init-data of an Attestation.
type InitData struct {
	Format string `json:"format"` // Trustee's built-in AS accepts only "toml"
	Body   string `json:"body"`
}

// RuntimeData is the runtime-data of an Attestation.
type RuntimeData struct {
	Nonce     string `json:"nonce"`
	TeePubKey JWK    `json:"tee-pubkey"`
}

// CompositeEvidence is the tee-evidence of an Attestation.
type CompositeEvidence struct {
	// PrimaryEvidence is the TEE's evidence; for TDX a [TDXEvidence].
	PrimaryEvidence json.RawMessage `json:"primary_evidence"`
	// AdditionalEvidence is a JSON string {tee: evidence} of device
	// evidence, "" when none.
	AdditionalEvidence string `json:"additional_evidence"`
}

// SNPEvidence is the primary evidence of an SEV-SNP guest that tdproof's
// broker accepts (tee "snp"): dstack SEV-SNP evidence, a
// VersionedAttestation (report, cert_chain, mr_config, report data,
// vm_config) as lowercase hex, the form of dstack-verifier's
// {"attestation": hex} request. Its REPORT_DATA must bind the session
// nonce and tee-pubkey. Trustee's own SnpEvidence ({"attestation_report",
// "cert_chain"}, the sev crate's serde form) is accepted as well: see
// snp.ParseTrusteeEvidence.
type SNPEvidence struct {
	Attestation string `json:"attestation"`
}

// DstackEvidence is the primary evidence of the other dstack variants
// tdproof's broker accepts, in the same {"attestation": hex} form: tee
// "nitro" (dstack-nitro-enclave, dstack-aws-nitro-tpm: the attestation's
// report_data is the NSM document's user_data) and tee "tdx" without a
// "quote" member (dstack-gcp-tdx, or a dstack-tdx attestation: the TDX
// quote's REPORTDATA). The report data must bind the session nonce and
// tee-pubkey.
type DstackEvidence = SNPEvidence

// TDXEvidence is the primary evidence of a TDX guest.
type TDXEvidence struct {
	// CCEventLog is the standard base64 of the CCEL ACPI table's event
	// log, or nil (JSON null).
	CCEventLog *string `json:"cc_eventlog"`
	// Quote is the standard base64 of the TD quote.
	Quote string `json:"quote"`
	// EventLog (tdproof extension, omitted when empty) is the TD's event
	// log in dstack's JSON form (the event_log of dstack's GetQuote: a
	// JSON array of events, boot events of RTMR0–2 and the runtime events
	// of RTMR3). With it the broker verifies the evidence as dstack
	// evidence: RTMR0–3 replayed, the app identity (app-id, compose-hash,
	// instance-id, key-provider) read from RTMR3's events. Trustee's
	// broker ignores the member.
	EventLog string `json:"event_log,omitempty"`
	// VMConfig (tdproof extension, omitted when empty) is dstack's
	// vm_config JSON, used with EventLog.
	VMConfig string `json:"vm_config,omitempty"`
}

// Attestation is the RCAR Attestation, the body of POST PathAttest.
type Attestation struct {
	InitData    *InitData         `json:"init-data,omitempty"`
	RuntimeData RuntimeData       `json:"runtime-data"`
	TeeEvidence CompositeEvidence `json:"tee-evidence"`
}

// ReportData returns the 64-byte value the TD quote's REPORTDATA must
// equal for a: see [ReportData].
func (a *Attestation) ReportData() ([64]byte, error) {
	return ReportData(a.RuntimeData.Nonce, a.RuntimeData.TeePubKey, a.TeeEvidence.AdditionalEvidence)
}

// TokenResponse is the body of PathAttest's 200 response.
type TokenResponse struct {
	Token string `json:"token"`
}

// AttestationPolicyRequest is the body of POST PathAttestationPolicy.
type AttestationPolicyRequest struct {
	Type     string `json:"type"` // "rego"
	PolicyID string `json:"policy_id"`
	Policy   string `json:"policy"` // base64url of the policy text
}

// ResourcePolicyRequest is the body of POST PathResourcePolicy; Policy is
// the Rego text in base64 URL-safe without padding.
type ResourcePolicyRequest struct {
	Policy string `json:"policy"`
}

// MaxMessageSize bounds the JSON messages the Parse functions accept.
const MaxMessageSize = 16 << 20

// decodeStrict decodes exactly one JSON value into v, rejecting trailing
// data. Member names match case-insensitively (encoding/json). On error v
// holds whatever was decoded; the callers discard it.
func decodeStrict(data []byte, v any, what string) error {
	if len(data) > MaxMessageSize {
		return newErr(ErrMalformed, what+": message too large", nil)
	}
	// json.Unmarshal accepts exactly what the Decoder below with the
	// trailing-data check accepts, without the Decoder's copy of data; the
	// Decoder words the refusals.
	if json.Unmarshal(data, v) == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		e := newErr(ErrMalformed, what, err)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			e.Offset = se.Offset
		}
		return e
	}
	if _, err := dec.Token(); err != io.EOF {
		return newErr(ErrMalformed, what+": trailing data", nil)
	}
	return nil
}

// isNullOrAbsent reports whether raw is missing or JSON null.
func isNullOrAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// ParseRequest decodes and checks a Request: version exactly Version, a
// documented TEE; a missing extra-params becomes "".
func ParseRequest(data []byte) (*Request, error) {
	var r Request
	if err := decodeStrict(data, &r, "request"); err != nil {
		return nil, err
	}
	if r.Version != Version {
		return nil, newErr(ErrVersion, fmt.Sprintf("%q, want %q", r.Version, Version), nil)
	}
	if !r.Tee.Valid() {
		return nil, newErr(ErrTee, fmt.Sprintf("%q", r.Tee), nil)
	}
	if len(r.ExtraParams) == 0 {
		r.ExtraParams = emptyExtra
	}
	return &r, nil
}

// ParseChallenge decodes and checks a Challenge: the nonce must be
// present. Its encoding is not checked: the agent echoes it verbatim.
func ParseChallenge(data []byte) (*Challenge, error) {
	var c Challenge
	if err := decodeStrict(data, &c, "challenge"); err != nil {
		return nil, err
	}
	if c.Nonce == "" {
		return nil, newErr(ErrMalformed, "challenge: empty nonce", nil)
	}
	if len(c.ExtraParams) == 0 {
		c.ExtraParams = emptyExtra
	}
	return &c, nil
}

// ParseAttestation decodes and checks an Attestation: nonce present,
// tee-pubkey a supported key ([JWK.PublicKey] succeeds), primary evidence
// present and not null, init-data (if any) with a format.
func ParseAttestation(data []byte) (*Attestation, error) {
	a, ok := Attestation{}, false
	if len(data) <= MaxMessageSize {
		a, ok = attestationFast(data) // the usual form (fastjson.go)
	}
	if !ok {
		if err := decodeStrict(data, &a, "attestation"); err != nil {
			return nil, err
		}
	}
	if a.RuntimeData.Nonce == "" {
		return nil, newErr(ErrMalformed, "attestation: empty runtime-data nonce", nil)
	}
	if _, err := a.RuntimeData.TeePubKey.PublicKey(); err != nil {
		return nil, err
	}
	if isNullOrAbsent(a.TeeEvidence.PrimaryEvidence) {
		return nil, newErr(ErrMalformed, "attestation: missing primary_evidence", nil)
	}
	if a.InitData != nil && a.InitData.Format == "" {
		return nil, newErr(ErrMalformed, "attestation: init-data without format", nil)
	}
	return &a, nil
}

// ResourceID names a resource: PathResource + "/" + Repository + "/" +
// Type + "/" + Tag.
type ResourceID struct {
	Repository string
	Type       string
	Tag        string
}

// String returns "repository/type/tag".
func (r ResourceID) String() string { return r.Repository + "/" + r.Type + "/" + r.Tag }

// Path returns the resource's route, or an ErrPath error.
func (r ResourceID) Path() (string, error) {
	if err := r.Validate(); err != nil {
		return "", err
	}
	return PathResource + "/" + r.String(), nil
}

// Validate checks every segment: 1–255 bytes of [A-Za-z0-9._+-], not "."
// nor "..".
func (r ResourceID) Validate() error {
	for _, s := range []string{r.Repository, r.Type, r.Tag} {
		if err := validSegment(s); err != nil {
			return err
		}
	}
	return nil
}

func validSegment(s string) error {
	if s == "" || len(s) > 255 || s == "." || s == ".." {
		return newErr(ErrPath, fmt.Sprintf("segment %q", s), nil)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == '+') {
			return newErr(ErrPath, fmt.Sprintf("segment %q", s), nil)
		}
	}
	return nil
}

// ParseResourceID parses "repository/type/tag", with or without the
// PathResource + "/" prefix.
func ParseResourceID(p string) (ResourceID, error) {
	p = strings.TrimPrefix(p, PathResource+"/")
	parts := strings.Split(p, "/")
	if len(parts) != 3 {
		return ResourceID{}, newErr(ErrPath, fmt.Sprintf("%q is not repository/type/tag", p), nil)
	}
	r := ResourceID{Repository: parts[0], Type: parts[1], Tag: parts[2]}
	if err := r.Validate(); err != nil {
		return ResourceID{}, err
	}
	return r, nil
}
