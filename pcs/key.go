package pcs

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tdproof/tdproof/pckcert"
)

// TEE selects the SGX or TDX routes of the PCS. The zero value is invalid.
type TEE int

// TEE types.
const (
	TEESGX TEE = iota + 1
	TEETDX
)

// String returns the TEE as it appears in PCS URLs: "sgx" or "tdx".
func (t TEE) String() string {
	switch t {
	case TEESGX:
		return "sgx"
	case TEETDX:
		return "tdx"
	}
	return "TEE(" + strconv.Itoa(int(t)) + ")"
}

// ParseTEE parses "sgx" or "tdx" (any case).
func ParseTEE(s string) (TEE, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "sgx":
		return TEESGX, nil
	case "tdx":
		return TEETDX, nil
	}
	return 0, fmt.Errorf("%w: unknown TEE %q (want sgx or tdx)", ErrInvalidKey, s)
}

// MarshalText encodes the TEE as "sgx" or "tdx".
func (t TEE) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText decodes "sgx" or "tdx".
func (t *TEE) UnmarshalText(b []byte) error {
	v, err := ParseTEE(string(b))
	if err == nil {
		*t = v
	}
	return err
}

// Update is the TCB update channel of the PCS: the standard one, or the
// early one where Intel publishes a TCB recovery before it becomes
// standard. The zero value is UpdateStandard.
type Update int

// Update channels.
const (
	UpdateStandard Update = iota
	UpdateEarly
)

// String returns "standard" or "early", as in the PCS update parameter.
func (u Update) String() string {
	switch u {
	case UpdateStandard:
		return "standard"
	case UpdateEarly:
		return "early"
	}
	return "Update(" + strconv.Itoa(int(u)) + ")"
}

// ParseUpdate parses "standard" or "early" (any case).
func ParseUpdate(s string) (Update, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "standard":
		return UpdateStandard, nil
	case "early":
		return UpdateEarly, nil
	}
	return 0, fmt.Errorf("%w: unknown update channel %q (want standard or early)", ErrInvalidKey, s)
}

// MarshalText encodes the channel as "standard" or "early".
func (u Update) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText decodes "standard" or "early".
func (u *Update) UnmarshalText(b []byte) error {
	v, err := ParseUpdate(string(b))
	if err == nil {
		*u = v
	}
	return err
}

// Key identifies the collateral of a quote. Keys are comparable and are
// used as map keys by caches.
type Key struct {
	// TEE selects the SGX or TDX TCB info and QE identity.
	TEE TEE
	// FMSPC is the platform's FMSPC, from its PCK certificate.
	FMSPC [6]byte
	// CA is the PCK CA that issued the platform's PCK certificate; it
	// selects the PCK CRL.
	CA pckcert.CAType
	// Update is the TCB update channel; ignored when EvalNumber is set
	// (the PCS takes one or the other).
	Update Update
	// EvalNumber pins the TCB evaluation data number of the TCB info and
	// QE identity. If zero, the latest of the update channel.
	EvalNumber int
}

// String describes the key, e.g. "tdx FMSPC 50806F000000, platform CA,
// standard update".
func (k Key) String() string {
	return fmt.Sprintf("%s FMSPC %X, %s CA, %s", k.TEE, k.FMSPC[:], k.CA, channel(k.Update, k.EvalNumber))
}

func channel(u Update, eval int) string {
	if eval > 0 {
		return "TCB evaluation data number " + strconv.Itoa(eval)
	}
	return u.String() + " update"
}

// ErrInvalidKey reports a Key or ItemKey that names no collateral.
var ErrInvalidKey = errors.New("pcs: invalid key")

// Validate reports whether k names collateral the PCS can serve.
func (k Key) Validate() error {
	switch {
	case k.TEE != TEESGX && k.TEE != TEETDX:
		return fmt.Errorf("%w: TEE %v", ErrInvalidKey, k.TEE)
	case k.CA != pckcert.CAPlatform && k.CA != pckcert.CAProcessor:
		return fmt.Errorf("%w: PCK CA type %v (want platform or processor)", ErrInvalidKey, k.CA)
	case k.Update != UpdateStandard && k.Update != UpdateEarly:
		return fmt.Errorf("%w: update channel %v", ErrInvalidKey, k.Update)
	case k.EvalNumber < 0:
		return fmt.Errorf("%w: negative TCB evaluation data number %d", ErrInvalidKey, k.EvalNumber)
	case k.EvalNumber > 0 && k.Update == UpdateEarly:
		return fmt.Errorf("%w: update=early and a TCB evaluation data number are exclusive", ErrInvalidKey)
	}
	return nil
}

// Items returns the keys of the four responses that make up k's
// collateral: TCB info, QE identity, PCK CRL, root CA CRL.
func (k Key) Items() [4]ItemKey {
	return [4]ItemKey{
		{Kind: KindTCBInfo, TEE: k.TEE, FMSPC: k.FMSPC, Update: k.Update, EvalNumber: k.EvalNumber},
		{Kind: KindQEIdentity, TEE: k.TEE, Update: k.Update, EvalNumber: k.EvalNumber},
		{Kind: KindPCKCRL, CA: k.CA},
		{Kind: KindRootCACRL},
	}
}

// Kind is the kind of one PCS response.
type Kind int

// Kinds of PCS responses that make up collateral.
const (
	KindTCBInfo Kind = iota + 1
	KindQEIdentity
	KindPCKCRL
	KindRootCACRL
	// KindQvEIdentity and KindQAEIdentity are the identities of the
	// quote verification enclave and the quote appraisal enclave (SGX
	// routes only). They are served by the PCCS proxy for clients that
	// run those enclaves; tdproof's verifier does not use them.
	KindQvEIdentity
	KindQAEIdentity
)

// String names the kind: "tcb info", "qe identity", "pck crl", "root ca crl".
func (k Kind) String() string {
	switch k {
	case KindTCBInfo:
		return "tcb info"
	case KindQEIdentity:
		return "qe identity"
	case KindPCKCRL:
		return "pck crl"
	case KindRootCACRL:
		return "root ca crl"
	case KindQvEIdentity:
		return "qve identity"
	case KindQAEIdentity:
		return "qae identity"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// ItemKey identifies one PCS response. Only the fields that apply to
// its Kind are meaningful: TEE, Update and EvalNumber for TCB info and
// QE identity, FMSPC for TCB info, CA for the PCK CRL, nothing for the
// root CA CRL. Use [ItemKey.Normalize] before comparing keys built by
// hand.
type ItemKey struct {
	Kind       Kind           // what the item is
	TEE        TEE            // TCB info, QE identity
	FMSPC      [6]byte        // TCB info
	CA         pckcert.CAType // PCK CRL
	Update     Update         // TCB info, QE identity
	EvalNumber int            // TCB info, QE identity; 0: latest
}

// Normalize clears the fields that do not apply to k's kind, and the
// update channel when an evaluation data number is pinned.
func (k ItemKey) Normalize() ItemKey {
	n := ItemKey{Kind: k.Kind}
	switch k.Kind {
	case KindTCBInfo:
		n.FMSPC = k.FMSPC
		fallthrough
	case KindQEIdentity, KindQvEIdentity, KindQAEIdentity:
		n.TEE, n.Update, n.EvalNumber = k.TEE, k.Update, k.EvalNumber
		if n.EvalNumber > 0 {
			n.Update = UpdateStandard
		}
	case KindPCKCRL:
		n.CA = k.CA
	}
	return n
}

// Validate reports whether k names a response the PCS can serve.
func (k ItemKey) Validate() error {
	switch k.Kind {
	case KindTCBInfo, KindQEIdentity:
		return Key{TEE: k.TEE, CA: pckcert.CAPlatform, Update: k.Update, EvalNumber: k.EvalNumber}.Validate()
	case KindQvEIdentity, KindQAEIdentity:
		if k.TEE != TEESGX {
			return fmt.Errorf("%w: the %s is an SGX item (TEE %v)", ErrInvalidKey, k.Kind, k.TEE)
		}
		return Key{TEE: k.TEE, CA: pckcert.CAPlatform, Update: k.Update, EvalNumber: k.EvalNumber}.Validate()
	case KindPCKCRL:
		return Key{TEE: TEESGX, CA: k.CA}.Validate()
	case KindRootCACRL:
		return nil
	}
	return fmt.Errorf("%w: kind %v", ErrInvalidKey, k.Kind)
}

// String describes the item, e.g. "tdx tcb info for FMSPC 50806F000000
// (standard update)".
func (k ItemKey) String() string {
	switch k.Kind {
	case KindTCBInfo:
		return fmt.Sprintf("%s tcb info for FMSPC %X (%s)", k.TEE, k.FMSPC[:], channel(k.Update, k.EvalNumber))
	case KindQEIdentity, KindQvEIdentity, KindQAEIdentity:
		return fmt.Sprintf("%s %s (%s)", k.TEE, k.Kind, channel(k.Update, k.EvalNumber))
	case KindPCKCRL:
		return fmt.Sprintf("pck crl of the %s CA", k.CA)
	}
	return k.Kind.String()
}

// File names of the bundle layout, shared with collateral.ReadPCSDir.
const (
	BodySuffix    = ".body"
	HeadersSuffix = ".headers.json"
	rootCRLName   = "IntelSGXRootCA.der"
	earlyDir      = "early"
	evalDirPrefix = "eval-"
)

// Path returns the slash-separated path of the item in a bundle or cache
// directory, without the BodySuffix or HeadersSuffix: the names of
// collateral.ReadPCSDir ("tdx-tcb-fmspc-50806f000000", "tdx-qe-identity",
// "sgx-pckcrl-platform-der", "IntelSGXRootCA.der"), under "early/" for
// the early update channel and "eval-N/" for a pinned evaluation data
// number.
func (k ItemKey) Path() string {
	k = k.Normalize()
	var dir string
	switch {
	case k.EvalNumber > 0:
		dir = evalDirPrefix + strconv.Itoa(k.EvalNumber) + "/"
	case k.Update == UpdateEarly:
		dir = earlyDir + "/"
	}
	switch k.Kind {
	case KindTCBInfo:
		return dir + k.TEE.String() + "-tcb-fmspc-" + hex.EncodeToString(k.FMSPC[:])
	case KindQEIdentity:
		return dir + k.TEE.String() + "-qe-identity"
	case KindQvEIdentity:
		return dir + "sgx-qve-identity"
	case KindQAEIdentity:
		return dir + "sgx-qae-identity"
	case KindPCKCRL:
		return "sgx-pckcrl-" + k.CA.String() + "-der"
	case KindRootCACRL:
		return rootCRLName
	}
	return ""
}

// ParseItemPath is the inverse of [ItemKey.Path].
func ParseItemPath(p string) (ItemKey, error) {
	bad := func() (ItemKey, error) {
		return ItemKey{}, fmt.Errorf("%w: %q is not a collateral item path", ErrInvalidKey, p)
	}
	var k ItemKey
	name := p
	if dir, rest, ok := strings.Cut(p, "/"); ok {
		name = rest
		switch {
		case dir == earlyDir:
			k.Update = UpdateEarly
		case strings.HasPrefix(dir, evalDirPrefix):
			n, err := strconv.Atoi(dir[len(evalDirPrefix):])
			if err != nil || n <= 0 || strconv.Itoa(n) != dir[len(evalDirPrefix):] {
				return bad()
			}
			k.EvalNumber = n
		default:
			return bad()
		}
	}
	if name == rootCRLName || strings.HasPrefix(name, "sgx-pckcrl-") {
		if name != p {
			return bad()
		}
		if name == rootCRLName {
			return ItemKey{Kind: KindRootCACRL}, nil
		}
		ca, ok := strings.CutSuffix(strings.TrimPrefix(name, "sgx-pckcrl-"), "-der")
		if !ok {
			return bad()
		}
		k.Kind = KindPCKCRL
		switch ca {
		case "platform":
			k.CA = pckcert.CAPlatform
		case "processor":
			k.CA = pckcert.CAProcessor
		default:
			return bad()
		}
		return k, nil
	}
	tee, rest, ok := strings.Cut(name, "-")
	if !ok {
		return bad()
	}
	switch tee {
	case "sgx":
		k.TEE = TEESGX
	case "tdx":
		k.TEE = TEETDX
	default:
		return bad()
	}
	switch {
	case rest == "qe-identity":
		k.Kind = KindQEIdentity
		return k, nil
	case rest == "qve-identity" && k.TEE == TEESGX:
		k.Kind = KindQvEIdentity
		return k, nil
	case rest == "qae-identity" && k.TEE == TEESGX:
		k.Kind = KindQAEIdentity
		return k, nil
	}
	fm, ok := strings.CutPrefix(rest, "tcb-fmspc-")
	if !ok || len(fm) != 12 || strings.ToLower(fm) != fm {
		return bad()
	}
	if _, err := hex.Decode(k.FMSPC[:], []byte(fm)); err != nil {
		return bad()
	}
	k.Kind = KindTCBInfo
	return k, nil
}

// ParseFMSPC parses 12 hex digits (any case).
func ParseFMSPC(s string) ([6]byte, error) {
	var f [6]byte
	s = strings.TrimSpace(s)
	if len(s) != 12 {
		return f, fmt.Errorf("%w: FMSPC %q is not 12 hex digits", ErrInvalidKey, s)
	}
	if _, err := hex.Decode(f[:], []byte(s)); err != nil {
		return f, fmt.Errorf("%w: FMSPC %q is not 12 hex digits", ErrInvalidKey, s)
	}
	return f, nil
}
