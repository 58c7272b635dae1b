package ear

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strconv"

	"github.com/tdproof/tdproof/jsonappend"
	"github.com/tdproof/tdproof/jsonscan"
)

// joseHeader returns the base64url protected header of the key's tokens,
// {"alg":"ES256","kid":…,"typ":"JWT"}, computed once.
func (k *Key) joseHeader() (string, error) {
	if k.priv == nil {
		return "", fmt.Errorf("%w: key %s has no private key", ErrKey, k.id)
	}
	k.once.Do(func() {
		h, err := json.Marshal(struct {
			Alg string `json:"alg"`
			Kid string `json:"kid"`
			Typ string `json:"typ"`
		}{"ES256", k.id, "JWT"})
		if err != nil {
			k.err = fmt.Errorf("%w: %w", ErrKey, err)
			return
		}
		k.header = base64.RawURLEncoding.EncodeToString(h)
	})
	return k.header, k.err
}

// signCompact returns the compact JWS (RFC 7515) of payload signed with
// ES256 by k: header.payload.signature, the signature r ‖ s (32 bytes
// each) in low-s form.
func (k *Key) signCompact(payload []byte) (string, error) {
	header, err := k.joseHeader()
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	n := len(header) + 1 + enc.EncodedLen(len(payload))
	tok := make([]byte, 0, n+1+enc.EncodedLen(es256Size))
	tok = append(tok, header...)
	tok = append(tok, '.')
	tok = enc.AppendEncode(tok, payload)
	h := sha256.Sum256(tok)
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, h[:])
	if err != nil {
		return "", fmt.Errorf("ear: sign: %w", err)
	}
	if s.Cmp(p256HalfN) > 0 {
		s = new(big.Int).Sub(p256N, s)
	}
	var sig [es256Size]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	tok = append(tok, '.')
	tok = enc.AppendEncode(tok, sig[:])
	return string(tok), nil
}

// appendPayload appends the JSON of c as encoding/json would write it
// (the fields of Claims in order, submodules by name), except that each
// submodule's annotated evidence is compacted by one json.Compact pass,
// which also rejects it when it is not JSON. Evidence the submodule says
// is compact already (Appraisal.ClaimsCompact) is copied as it is once
// one jsonscan pass finds it to be a single JSON value: bytes that are
// not could close the object and add members (a second "ear.status")
// to the signed payload.
func appendPayload(b []byte, c *Claims) ([]byte, error) {
	str := jsonappend.String
	b = append(b, `{"eat_profile":`...)
	b = str(b, c.Profile)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, c.IssuedAt, 10)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, c.ExpiresAt, 10)
	if c.Issuer != "" {
		b = append(b, `,"iss":`...)
		b = str(b, c.Issuer)
	}
	if c.ID != "" {
		b = append(b, `,"jti":`...)
		b = str(b, c.ID)
	}
	if c.Nonce != "" {
		b = append(b, `,"eat_nonce":`...)
		b = str(b, c.Nonce)
	}
	b = append(b, `,"ear.verifier-id":{"developer":`...)
	b = str(b, c.VerifierID.Developer)
	b = append(b, `,"build":`...)
	b = str(b, c.VerifierID.Build)
	b = append(b, `},"submods":{`...)
	names := make([]string, 0, len(c.Submods))
	for name := range c.Submods {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		a := c.Submods[name]
		if i > 0 {
			b = append(b, ',')
		}
		b = str(b, name)
		st, err := a.Status.MarshalText()
		if err != nil {
			return nil, err
		}
		b = append(b, `:{"ear.status":`...)
		b = str(b, string(st))
		if a.TrustVector != nil {
			b = append(b, `,"ear.trustworthiness-vector":`...)
			b = a.TrustVector.AppendJSON(b)
		}
		if a.PolicyID != "" {
			b = append(b, `,"ear.appraisal-policy-id":`...)
			b = str(b, a.PolicyID)
		}
		switch {
		case len(a.Claims) > 0 && a.ClaimsCompact && isOneValue(a.Claims):
			b = append(b, `,"ear.veraison.annotated-evidence":`...)
			b = append(b, a.Claims...)
		case len(a.Claims) > 0:
			b = append(b, `,"ear.veraison.annotated-evidence":`...)
			buf := bytes.NewBuffer(b)
			if err := json.Compact(buf, a.Claims); err != nil {
				return nil, fmt.Errorf("submod %q: annotated evidence: %w", name, err)
			}
			b = buf.Bytes()
		}
		b = append(b, '}')
	}
	return append(b, "}}"...), nil
}

// isOneValue reports whether b is exactly one JSON value, as json.Valid
// would (jsonscan also refuses nesting deeper than jsonscan.MaxDepth,
// which then takes the compaction pass).
func isOneValue(b []byte) bool {
	end, ok := jsonscan.SkipValue(b, 0)
	return ok && end == len(b)
}
