package kbs

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tdproof/tdproof/ear"
)

// maxIssued bounds the tokens an issuedTokens keeps.
const maxIssued = 4096

// issuedToken is an EAR token this broker signed at a session's attest
// step: the SHA-256 of the compact JWS, the claims it signed and the key
// that signed them.
type issuedToken struct {
	digest  [sha256.Size]byte
	claims  *ear.Claims
	kid     string
	expires time.Time // the session's expiry
	// input is the resource policy's input for claims, computed once.
	input func() (ast.Value, error)
}

// issuedTokens remembers, by session id, the tokens this broker signed,
// so that the resource step of a session whose stored token is
// byte-for-byte one of them uses the claims as signed instead of verifying
// the signature this process made (a P-256 verification and a JSON
// decoding of the claims). A session whose token is not here (another
// broker on the same database attested it, this process restarted, the
// memo was full) is verified as before; so is every Bearer token, which
// comes from the client. It is safe for concurrent use.
type issuedTokens struct {
	mu sync.Mutex
	m  map[string]issuedToken
}

// put remembers token, signed with key kid over claims, for session id
// until expires. When the memo is full it drops the expired entries, and
// if none expired it keeps the old ones and forgets this one.
func (t *issuedTokens) put(id, token, kid string, claims *ear.Claims, expires, now time.Time) {
	it := issuedToken{digest: sha256.Sum256([]byte(token)), claims: claims, kid: kid, expires: expires,
		input: sync.OnceValues(func() (ast.Value, error) { return policyInput(claims) })}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[string]issuedToken)
	}
	if len(t.m) >= maxIssued {
		for k, v := range t.m {
			if !now.Before(v.expires) {
				delete(t.m, k)
			}
		}
		if len(t.m) >= maxIssued {
			return
		}
	}
	t.m[id] = it
}

// get returns the claims this broker signed in token for session id, and
// whether token is the one it signed for that session (and the session
// has not expired).
func (t *issuedTokens) get(id, token string, now time.Time) (issuedToken, bool) {
	t.mu.Lock()
	it, ok := t.m[id]
	t.mu.Unlock()
	if !ok || !now.Before(it.expires) {
		return issuedToken{}, false
	}
	if sha256.Sum256([]byte(token)) != it.digest {
		return issuedToken{}, false
	}
	return it, true
}
