package protocol

import (
	"errors"
	"strings"
)

// Error categories. Every error returned by this package wraps exactly one
// of them; match with errors.Is.
var (
	// ErrMalformed reports a message that is not valid JSON of the
	// expected shape, or lacks a required member.
	ErrMalformed = errors.New("malformed KBS message")
	// ErrVersion reports a Request whose protocol version is not 0.4.0.
	ErrVersion = errors.New("unsupported KBS protocol version")
	// ErrTee reports an unknown TEE name.
	ErrTee = errors.New("unknown TEE")
	// ErrKey reports a TEE public key (or private key) that is malformed
	// or of a type or algorithm this package does not support.
	ErrKey = errors.New("invalid or unsupported TEE key")
	// ErrJWE reports a resource response that is not a well-formed JWE of
	// the expected algorithms, or that fails to decrypt.
	ErrJWE = errors.New("invalid resource JWE")
	// ErrPath reports a resource path that is not repository/type/tag of
	// allowed segments.
	ErrPath = errors.New("invalid resource path")
)

// Error is the concrete error type of this package. Kind is one of the
// Err* sentinels; Cause, when set, is the underlying error.
type Error struct {
	Kind   error
	Msg    string
	Cause  error
	Offset int64 // byte offset in the input for JSON syntax errors, else 0
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("kbs protocol: ")
	b.WriteString(e.Kind.Error())
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

// Unwrap returns the category and, if any, the cause.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}

func newErr(kind error, msg string, cause error) *Error {
	return &Error{Kind: kind, Msg: msg, Cause: cause}
}

// ProblemType is the last segment of a Trustee problem "type" URI
// (kbs/src/error.rs), e.g. "PolicyDeny".
type ProblemType string

// Problem types used by Trustee's KBS.
const (
	ProblemAdminAuth              ProblemType = "AdminAuth"
	ProblemAttestationError       ProblemType = "AttestationError"
	ProblemInvalidRequestPath     ProblemType = "InvalidRequestPath"
	ProblemJweError               ProblemType = "JweError"
	ProblemPluginNotFound         ProblemType = "PluginNotFound"
	ProblemPluginInternalError    ProblemType = "PluginInternalError"
	ProblemPolicyDeny             ProblemType = "PolicyDeny"
	ProblemPolicyEngine           ProblemType = "PolicyEngine"
	ProblemSerdeError             ProblemType = "SerdeError"
	ProblemTokenNotFound          ProblemType = "TokenNotFound"
	ProblemTokenVerifierError     ProblemType = "TokenVerifierError"
	ProblemExtractTeePubKeyFailed ProblemType = "ExtractTeePubKeyFailed"
)

// ProblemTypePrefix prefixes every Trustee problem type URI.
const ProblemTypePrefix = "https://github.com/confidential-containers/kbs/errors/"

// URI returns the full problem type URI.
func (t ProblemType) URI() string { return ProblemTypePrefix + string(t) }

// HTTPStatus returns the status Trustee answers with for the problem type:
// 404 for a missing plugin, 401 for everything else.
func (t ProblemType) HTTPStatus() int {
	if t == ProblemPluginNotFound {
		return 404
	}
	return 401
}

// ErrorInfo is the failure body of every KBS route (RFC 7807 subset, as
// kbs-types' ErrorInformation): {"type": "<URI>", "detail": "..."}.
type ErrorInfo struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
}

// NewErrorInfo returns the problem document for t with the given detail.
func NewErrorInfo(t ProblemType, detail string) ErrorInfo {
	return ErrorInfo{Type: t.URI(), Detail: detail}
}

// Problem returns the problem type named by e.Type, and false when e.Type
// is not a Trustee problem type URI.
func (e ErrorInfo) Problem() (ProblemType, bool) {
	rest, ok := strings.CutPrefix(e.Type, ProblemTypePrefix)
	if !ok || rest == "" || strings.Contains(rest, "/") {
		return "", false
	}
	return ProblemType(rest), true
}

// ErrorInfoFor maps an error of this package to the problem document
// Trustee would send: malformed messages, versions and TEE names are
// SerdeError; bad keys ExtractTeePubKeyFailed; JWE failures JweError; bad
// resource paths InvalidRequestPath. Other errors give ok == false.
func ErrorInfoFor(err error) (info ErrorInfo, ok bool) {
	var t ProblemType
	switch {
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrVersion), errors.Is(err, ErrTee):
		t = ProblemSerdeError
	case errors.Is(err, ErrKey):
		t = ProblemExtractTeePubKeyFailed
	case errors.Is(err, ErrJWE):
		t = ProblemJweError
	case errors.Is(err, ErrPath):
		t = ProblemInvalidRequestPath
	default:
		return ErrorInfo{}, false
	}
	return NewErrorInfo(t, err.Error()), true
}
