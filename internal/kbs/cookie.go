package kbs

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/tdproof/tdproof/internal/store"
)

// A pending session lives in its kbs-session-id cookie, not in the store:
// the auth step writes nothing. The cookie's value is
//
//	"s1." base64url(payload) "." base64url(HMAC-SHA256(key, "s1." payload))
//
// where payload is the session id (16 bytes), its expiry (Unix
// nanoseconds, 8 bytes big-endian), then the TEE and the nonce, each a
// length byte and its bytes. The MAC key is derived from the key-encryption
// key (HKDF-SHA256), which every broker of one store holds already (it
// opens the store's resources), so a cookie issued by one broker is
// attested by another.
//
// The nonce is single use although the auth step stores nothing: the
// attest step records the session's outcome by inserting it under its id
// (store.RecordKBSSession), and the store admits one insert per id. The
// record is kept until sessionPurgeGrace after the session's expiry, so
// that a broker whose clock lags another's by less than that still finds
// it; past its expiry a cookie is refused whatever the store holds.

// cookieVersion prefixes every session cookie this broker issues.
const cookieVersion = "s1."

// sessionIDSize is the size of a session id's random bytes.
const sessionIDSize = 16

// sessionPurgeGrace is how long after its expiry a session's record is
// kept: brokers sharing a store must keep their clocks within this of
// each other, or one could accept a cookie another has purged the record
// of. It is short because every attested session's row (about 5 KB, its
// token) is kept until then.
const sessionPurgeGrace = time.Minute

// maxCookieLen bounds the cookie values openCookie decodes.
const maxCookieLen = 512

// cookieEncoding decodes only the canonical encoding, so that one session
// has one cookie value.
var cookieEncoding = base64.RawURLEncoding.Strict()

var errBadCookie = errors.New("session cookie is not one this broker issued")

// cookieKey derives the session cookie MAC key from the key-encryption
// key.
func cookieKey(kek []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, kek, nil, "tdproof kbs session cookie v1", 32)
}

// sealCookie returns the cookie value of the pending session ss with the
// random id bytes id (ss.ID is not read: it is sessionIDHex(id)).
func sealCookie(key []byte, id [sessionIDSize]byte, ss store.KBSSession) (string, error) {
	if len(ss.Tee) > 255 || len(ss.Nonce) > 255 {
		return "", errors.New("kbs: session TEE or nonce too long for a cookie")
	}
	p := make([]byte, 0, sessionIDSize+8+2+len(ss.Tee)+len(ss.Nonce))
	p = append(p, id[:]...)
	p = binary.BigEndian.AppendUint64(p, uint64(ss.ExpiresAt.UnixNano()))
	p = append(p, byte(len(ss.Tee)))
	p = append(p, ss.Tee...)
	p = append(p, byte(len(ss.Nonce)))
	p = append(p, ss.Nonce...)
	var b strings.Builder
	b.Grow(len(cookieVersion) + base64.RawURLEncoding.EncodedLen(len(p)) + 1 + base64.RawURLEncoding.EncodedLen(sha256.Size))
	b.WriteString(cookieVersion)
	b.WriteString(base64.RawURLEncoding.EncodeToString(p))
	signed := b.String()
	b.WriteByte('.')
	b.WriteString(base64.RawURLEncoding.EncodeToString(cookieMAC(key, signed)))
	return b.String(), nil
}

func cookieMAC(key []byte, signed string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

// openCookie checks the MAC of a cookie value and returns its session
// (ID, Nonce, Tee, ExpiresAt; State pending). It does not check the
// expiry.
func openCookie(key []byte, v string) (store.KBSSession, error) {
	if len(v) > maxCookieLen || !strings.HasPrefix(v, cookieVersion) {
		return store.KBSSession{}, errBadCookie
	}
	dot := strings.LastIndexByte(v, '.')
	if dot < len(cookieVersion) {
		return store.KBSSession{}, errBadCookie
	}
	tag, err := cookieEncoding.DecodeString(v[dot+1:])
	if err != nil || !hmac.Equal(tag, cookieMAC(key, v[:dot])) {
		return store.KBSSession{}, errBadCookie
	}
	// Authentic from here: a malformed payload is a broker bug, still refused.
	p, err := cookieEncoding.DecodeString(v[len(cookieVersion):dot])
	if err != nil || len(p) < sessionIDSize+8+1 {
		return store.KBSSession{}, errBadCookie
	}
	ss := store.KBSSession{ID: sessionIDHex(p[:sessionIDSize]), State: store.KBSSessionPending,
		ExpiresAt: time.Unix(0, int64(binary.BigEndian.Uint64(p[sessionIDSize:]))).UTC()}
	rest := p[sessionIDSize+8:]
	field := func() (string, bool) {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return "", false
		}
		s := string(rest[1 : 1+int(rest[0])])
		rest = rest[1+int(rest[0]):]
		return s, true
	}
	var ok1, ok2 bool
	ss.Tee, ok1 = field()
	ss.Nonce, ok2 = field()
	if !ok1 || !ok2 || len(rest) != 0 || ss.Nonce == "" {
		return store.KBSSession{}, errBadCookie
	}
	return ss, nil
}

// sessionIDHex is the store's id of a session: its random bytes in hex.
func sessionIDHex(b []byte) string { return hex.EncodeToString(b) }
