package collateral

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/textproto"
	"path"
	"strings"
)

// Collateral is everything needed to verify one quote: the CRLs, the TCB
// info and QE identity with their issuer chains, and optionally the PCK
// certificate chain (needed for quotes whose certification data carries
// an encrypted PPID instead of the chain).
type Collateral struct {
	PCKCRLIssuerChain     *Chain
	RootCACRL             *CRL
	PCKCRL                *CRL
	TCBInfoIssuerChain    *Chain
	TCBInfo               *SignedTCBInfo
	QEIdentityIssuerChain *Chain
	QEIdentity            *SignedQEIdentity
	// PCKCertChain is optional.
	PCKCertChain *Chain
}

// NewSignedTCBInfo parses raw (the exact tcbInfo object bytes) and pairs
// it with its signature.
func NewSignedTCBInfo(raw, sig []byte) (*SignedTCBInfo, error) {
	info, err := ParseTCBInfo(raw)
	if err != nil {
		return nil, err
	}
	s := &SignedTCBInfo{Raw: raw, Info: info}
	if len(sig) != len(s.Signature) {
		return nil, fmt.Errorf("%w: tcb info signature is %d bytes, want 64", ErrMalformed, len(sig))
	}
	copy(s.Signature[:], sig)
	return s, nil
}

// NewSignedQEIdentity parses raw (the exact enclaveIdentity object bytes)
// and pairs it with its signature.
func NewSignedQEIdentity(raw, sig []byte) (*SignedQEIdentity, error) {
	id, err := ParseQEIdentity(raw)
	if err != nil {
		return nil, err
	}
	s := &SignedQEIdentity{Raw: raw, Identity: id}
	if len(sig) != len(s.Signature) {
		return nil, fmt.Errorf("%w: qe identity signature is %d bytes, want 64", ErrMalformed, len(sig))
	}
	copy(s.Signature[:], sig)
	return s, nil
}

// splitSignedBody splits a PCS response body {"<key>": {...}, "signature":
// "<hex>"} into the exact object bytes and the signature.
func splitSignedBody(body []byte, key string) ([]byte, []byte, error) {
	var m map[string]json.RawMessage
	if err := strictUnmarshal(body, &m); err != nil {
		return nil, nil, fmt.Errorf("%w: %s response: %w", ErrMalformed, key, err)
	}
	obj, ok := m[key]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s response: no %q member", ErrMalformed, key, key)
	}
	var sigHex string
	if err := json.Unmarshal(m["signature"], &sigHex); err != nil {
		return nil, nil, fmt.Errorf("%w: %s response: signature: %w", ErrMalformed, key, err)
	}
	sig, err := hex.DecodeString(sigHex)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s response: signature: %w", ErrMalformed, key, err)
	}
	return obj, sig, nil
}

// ParseTCBInfoResponse parses a PCS TCB info response body
// {"tcbInfo":{…},"signature":"…"}, keeping the exact tcbInfo bytes.
func ParseTCBInfoResponse(body []byte) (*SignedTCBInfo, error) {
	raw, sig, err := splitSignedBody(body, "tcbInfo")
	if err != nil {
		return nil, err
	}
	return NewSignedTCBInfo(raw, sig)
}

// ParseQEIdentityResponse parses a PCS enclave identity response body
// {"enclaveIdentity":{…},"signature":"…"}.
func ParseQEIdentityResponse(body []byte) (*SignedQEIdentity, error) {
	raw, sig, err := splitSignedBody(body, "enclaveIdentity")
	if err != nil {
		return nil, err
	}
	return NewSignedQEIdentity(raw, sig)
}

// TCBInfoResponse returns the PCS response body for t.
func (t *SignedTCBInfo) TCBInfoResponse() []byte { return signedBody("tcbInfo", t.Raw, t.Signature[:]) }

// Response returns the PCS response body for q.
func (q *SignedQEIdentity) Response() []byte {
	return signedBody("enclaveIdentity", q.Raw, q.Signature[:])
}

func signedBody(key string, raw, sig []byte) []byte {
	var b bytes.Buffer
	b.WriteString(`{"` + key + `":`)
	b.Write(raw)
	b.WriteString(`,"signature":"` + hex.EncodeToString(sig) + `"}`)
	return b.Bytes()
}

// qvlJSON is dcap-qvl's QuoteCollateralV3 in its JSON form.
type qvlJSON struct {
	PCKCRLIssuerChain     *string `json:"pck_crl_issuer_chain"`
	RootCACRL             *string `json:"root_ca_crl"`
	PCKCRL                *string `json:"pck_crl"`
	TCBInfoIssuerChain    *string `json:"tcb_info_issuer_chain"`
	TCBInfo               *string `json:"tcb_info"`
	TCBInfoSignature      *string `json:"tcb_info_signature"`
	QEIdentityIssuerChain *string `json:"qe_identity_issuer_chain"`
	QEIdentity            *string `json:"qe_identity"`
	QEIdentitySignature   *string `json:"qe_identity_signature"`
	PCKCertificateChain   *string `json:"pck_certificate_chain,omitempty"`
}

// ParseQVLJSON reads dcap-qvl's QuoteCollateralV3 JSON. The tcb_info and
// qe_identity strings are the exact signed bytes.
func ParseQVLJSON(data []byte) (*Collateral, error) {
	var j qvlJSON
	if err := strictUnmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("%w: QuoteCollateralV3: %w", ErrMalformed, err)
	}
	req := func(name string, s *string) (string, error) {
		if s == nil {
			return "", missing("QuoteCollateralV3", name)
		}
		return *s, nil
	}
	var errs []error
	get := func(name string, s *string) string {
		v, err := req(name, s)
		errs = append(errs, err)
		return v
	}
	hexField := func(name string, s *string) []byte {
		v := get(name, s)
		b, err := hex.DecodeString(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: QuoteCollateralV3: %s: %w", ErrMalformed, name, err))
		}
		return b
	}
	pckIssuer := get("pck_crl_issuer_chain", j.PCKCRLIssuerChain)
	rootCRL := hexField("root_ca_crl", j.RootCACRL)
	pckCRL := hexField("pck_crl", j.PCKCRL)
	tcbIssuer := get("tcb_info_issuer_chain", j.TCBInfoIssuerChain)
	tcbInfo := get("tcb_info", j.TCBInfo)
	tcbSig := hexField("tcb_info_signature", j.TCBInfoSignature)
	qeIssuer := get("qe_identity_issuer_chain", j.QEIdentityIssuerChain)
	qeID := get("qe_identity", j.QEIdentity)
	qeSig := hexField("qe_identity_signature", j.QEIdentitySignature)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := &Collateral{}
	var err error
	if c.PCKCRLIssuerChain, err = ParseChain(pckIssuer); err != nil {
		return nil, err
	}
	if c.RootCACRL, err = ParseCRL(rootCRL); err != nil {
		return nil, err
	}
	if c.PCKCRL, err = ParseCRL(pckCRL); err != nil {
		return nil, err
	}
	if c.TCBInfoIssuerChain, err = ParseChain(tcbIssuer); err != nil {
		return nil, err
	}
	if c.TCBInfo, err = NewSignedTCBInfo([]byte(tcbInfo), tcbSig); err != nil {
		return nil, err
	}
	if c.QEIdentityIssuerChain, err = ParseChain(qeIssuer); err != nil {
		return nil, err
	}
	if c.QEIdentity, err = NewSignedQEIdentity([]byte(qeID), qeSig); err != nil {
		return nil, err
	}
	if j.PCKCertificateChain != nil {
		if c.PCKCertChain, err = ParseChain(*j.PCKCertificateChain); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// MarshalQVLJSON writes c as dcap-qvl's QuoteCollateralV3 JSON.
func (c *Collateral) MarshalQVLJSON() ([]byte, error) {
	if c.PCKCRLIssuerChain == nil || c.RootCACRL == nil || c.PCKCRL == nil || c.TCBInfoIssuerChain == nil ||
		c.TCBInfo == nil || c.QEIdentityIssuerChain == nil || c.QEIdentity == nil {
		return nil, errors.New("collateral: marshal: incomplete collateral")
	}
	s := func(v string) *string { return &v }
	j := qvlJSON{
		PCKCRLIssuerChain:     s(c.PCKCRLIssuerChain.PEM),
		RootCACRL:             s(hex.EncodeToString(c.RootCACRL.DER)),
		PCKCRL:                s(hex.EncodeToString(c.PCKCRL.DER)),
		TCBInfoIssuerChain:    s(c.TCBInfoIssuerChain.PEM),
		TCBInfo:               s(string(c.TCBInfo.Raw)),
		TCBInfoSignature:      s(hex.EncodeToString(c.TCBInfo.Signature[:])),
		QEIdentityIssuerChain: s(c.QEIdentityIssuerChain.PEM),
		QEIdentity:            s(string(c.QEIdentity.Raw)),
		QEIdentitySignature:   s(hex.EncodeToString(c.QEIdentity.Signature[:])),
	}
	if c.PCKCertChain != nil {
		j.PCKCertificateChain = s(c.PCKCertChain.PEM)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(j); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// PCSSelector chooses which responses of a PCS directory apply to a quote.
// A zero field matches any value, but then exactly one file must match.
type PCSSelector struct {
	TEE   string // "sgx" or "tdx"
	FMSPC string // 12 hex digits, any case
	CA    string // "platform" or "processor"
}

// Header names of PCS responses (canonical spelling as Intel serves them).
const (
	HeaderPCKCRLIssuerChain      = "SGX-PCK-CRL-Issuer-Chain"
	HeaderTCBInfoIssuerChain     = "TCB-Info-Issuer-Chain"
	HeaderTCBInfoIssuerChainV3   = "SGX-TCB-Info-Issuer-Chain"
	HeaderEnclaveIdentityChain   = "SGX-Enclave-Identity-Issuer-Chain"
	HeaderPCKCertIssuerChain     = "SGX-PCK-Certificate-Issuer-Chain"
	pcsHeadersSuffix             = ".headers.json"
	pcsBodySuffix                = ".body"
	pcsRootCRLName               = "IntelSGXRootCA.der"
	pcsRootCRLNamePCCS           = "rootcacrl"
	pcsTCBPrefix, pcsQEIDSuffix  = "-tcb-fmspc-", "-qe-identity"
	pcsPCKCRLPrefix, pcsDERSuffx = "sgx-pckcrl-", "-der"
)

// ReadPCSDir reads a directory of raw PCS responses: for each response a
// NAME.body file and, where the response had an issuer chain header, a
// NAME.headers.json object mapping header names to values exactly as
// served. Names: IntelSGXRootCA.der (or rootcacrl, PCCS hex text),
// sgx-pckcrl-{platform|processor}-der, {sgx|tdx}-tcb-fmspc-<fmspc>,
// {sgx|tdx}-qe-identity.
func ReadPCSDir(fsys fs.FS, sel PCSSelector) (*Collateral, error) {
	names, err := fs.Glob(fsys, "*"+pcsBodySuffix)
	if err != nil {
		return nil, err
	}
	pick := func(what string, match func(base string) bool) (string, error) {
		var found []string
		for _, n := range names {
			base := strings.TrimSuffix(n, pcsBodySuffix)
			if match(strings.ToLower(base)) {
				found = append(found, base)
			}
		}
		switch len(found) {
		case 0:
			return "", fmt.Errorf("%w: pcs directory: no %s response", ErrNotFound, what)
		case 1:
			return found[0], nil
		}
		return "", fmt.Errorf("%w: pcs directory: %d %s responses (%s); select one", ErrMalformed, len(found), what, strings.Join(found, ", "))
	}
	tee := func(base, rest string) bool {
		for _, t := range []string{"sgx", "tdx"} {
			if (sel.TEE == "" || strings.EqualFold(sel.TEE, t)) && base == t+rest {
				return true
			}
		}
		return false
	}
	rootName, err := pick("root CA CRL", func(b string) bool {
		return b == strings.ToLower(pcsRootCRLName) || b == pcsRootCRLNamePCCS
	})
	if err != nil {
		return nil, err
	}
	pckName, err := pick("PCK CRL", func(b string) bool {
		ca, ok := strings.CutPrefix(b, pcsPCKCRLPrefix)
		ca, ok2 := strings.CutSuffix(ca, pcsDERSuffx)
		return ok && ok2 && (sel.CA == "" || strings.EqualFold(sel.CA, ca))
	})
	if err != nil {
		return nil, err
	}
	tcbName, err := pick("TCB info", func(b string) bool {
		i := strings.Index(b, pcsTCBPrefix)
		if i < 0 {
			return false
		}
		return tee(b[:i+len(pcsTCBPrefix)], pcsTCBPrefix) && (sel.FMSPC == "" || strings.EqualFold(b[i+len(pcsTCBPrefix):], sel.FMSPC))
	})
	if err != nil {
		return nil, err
	}
	qeName, err := pick("QE identity", func(b string) bool { return tee(b, pcsQEIDSuffix) })
	if err != nil {
		return nil, err
	}
	read := func(base string) ([]byte, textproto.MIMEHeader, error) {
		body, err := fs.ReadFile(fsys, base+pcsBodySuffix)
		if err != nil {
			return nil, nil, err
		}
		h := textproto.MIMEHeader{}
		hb, err := fs.ReadFile(fsys, base+pcsHeadersSuffix)
		if errors.Is(err, fs.ErrNotExist) {
			return body, h, nil
		}
		if err != nil {
			return nil, nil, err
		}
		var m map[string]string
		if err := json.Unmarshal(hb, &m); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrMalformed, path.Join(base+pcsHeadersSuffix), err)
		}
		for k, v := range m {
			h.Set(k, v)
		}
		return body, h, nil
	}
	chainFrom := func(h textproto.MIMEHeader, base string, names ...string) (*Chain, error) {
		for _, n := range names {
			if v := h.Get(n); v != "" {
				return ParseChain(v)
			}
		}
		return nil, fmt.Errorf("%w: %s: no %s header", ErrNotFound, base, names[0])
	}
	c := &Collateral{}
	body, _, err := read(rootName)
	if err != nil {
		return nil, err
	}
	if c.RootCACRL, err = ParseCRL(body); err != nil {
		return nil, err
	}
	body, h, err := read(pckName)
	if err != nil {
		return nil, err
	}
	if c.PCKCRL, err = ParseCRL(body); err != nil {
		return nil, err
	}
	if c.PCKCRLIssuerChain, err = chainFrom(h, pckName, HeaderPCKCRLIssuerChain); err != nil {
		return nil, err
	}
	body, h, err = read(tcbName)
	if err != nil {
		return nil, err
	}
	if c.TCBInfo, err = ParseTCBInfoResponse(body); err != nil {
		return nil, err
	}
	if c.TCBInfoIssuerChain, err = chainFrom(h, tcbName, HeaderTCBInfoIssuerChain, HeaderTCBInfoIssuerChainV3); err != nil {
		return nil, err
	}
	body, h, err = read(qeName)
	if err != nil {
		return nil, err
	}
	if c.QEIdentity, err = ParseQEIdentityResponse(body); err != nil {
		return nil, err
	}
	if c.QEIdentityIssuerChain, err = chainFrom(h, qeName, HeaderEnclaveIdentityChain); err != nil {
		return nil, err
	}
	return c, nil
}
