package kbs

import (
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/kbs/protocol"
)

// sessionMemoTTL bounds how long the broker serves a session it wrote
// from its memory: the refusal of a second attest step of a session this
// process claimed, the resource step of a session it attested. After
// that the store is read again, so a session removed from the database
// by other means than its expiry is refused by this process within
// sessionMemoTTL. It is
// measured on the system's clock, not Config.Now (which decides the
// sessions' expiry and may stand still: serve --at).
const sessionMemoTTL = 2 * time.Second

// maxSessionMemo bounds the sessions one generation of a sessionMemo
// holds; beyond it sessions are simply not remembered (the store serves
// them).
const maxSessionMemo = 1 << 16

// memoSession is what this broker knows of one session it claimed or
// attested, kept to spare the store a read the next step of the handshake
// would otherwise make. The store stays the truth: the attest step records
// its outcome with an insert the store admits once per session
// (store.RecordKBSSession) whatever the memo says, and the memo only
// answers for sessionMemoTTL.
type memoSession struct {
	at time.Time // when this process wrote the session's current state (memo clock)
	// claimed is set by the first attest step of this process on the
	// session: a second one is refused without verifying its evidence.
	claimed bool
	// Set when this process attested the session: what it wrote.
	attested   bool
	expires    time.Time
	reportData [64]byte
	teePubKey  protocol.JWK
	kid        string
	claims     *ear.Claims
	// input is the resource policy's input for claims, computed once.
	input func() (ast.Value, error)
}

// sessionMemo remembers, by session id, the sessions this broker claimed
// or attested in the last sessionMemoTTL or so: two generations of maps,
// the older dropped as a whole at each rotation. It is safe for concurrent use.
type sessionMemo struct {
	// clock is the memo's clock (nil: time.Now), for its time bound only.
	clock    func() time.Time
	mu       sync.Mutex
	rotated  time.Time
	cur, old map[string]*memoSession
}

func (m *sessionMemo) now() time.Time {
	if m.clock != nil {
		return m.clock()
	}
	return time.Now()
}

// find returns the entry of id written at most sessionMemoTTL before now
// (memo clock); the caller holds m.mu.
func (m *sessionMemo) find(id string, now time.Time) *memoSession {
	e, ok := m.cur[id]
	if !ok {
		e = m.old[id]
	}
	if e == nil || now.Before(e.at) || now.Sub(e.at) >= sessionMemoTTL {
		return nil
	}
	return e
}

// insert stores e under id, rotating the generations when the current one
// is sessionMemoTTL old; the caller holds m.mu.
func (m *sessionMemo) insert(id string, e *memoSession, now time.Time) {
	if m.cur == nil || now.Before(m.rotated) || now.Sub(m.rotated) >= sessionMemoTTL {
		m.old, m.cur, m.rotated = m.cur, make(map[string]*memoSession), now
	}
	if len(m.cur) >= maxSessionMemo {
		return
	}
	delete(m.old, id)
	m.cur[id] = e
}

// claim marks the session id as being attested by this process; false
// if this process claimed it in the last sessionMemoTTL (its nonce is
// spent: refuse without verifying). A true answer decides nothing: the
// store admits one outcome per session.
func (m *sessionMemo) claim(id string) bool {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.find(id, now); e != nil && e.claimed {
		return false
	}
	m.insert(id, &memoSession{at: now, claimed: true}, now)
	return true
}

// attested remembers that this process recorded the session id (expiring
// at expires) as attested with the given report data, TEE key and token
// (its signing key and claims).
func (m *sessionMemo) attested(id string, expires time.Time, reportData [64]byte, pub protocol.JWK, token, kid string, claims *ear.Claims) {
	now := m.now()
	e := &memoSession{at: now, expires: expires, claimed: true, attested: true, reportData: reportData, teePubKey: pub,
		kid: kid, claims: claims,
		input: sync.OnceValues(func() (ast.Value, error) { return policyInput(token) })}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.insert(id, e, now)
}

// attestedSession returns what this process recorded when it attested the
// session id, if it did so less than sessionMemoTTL ago and the session
// has not expired at now (Config.Now).
func (m *sessionMemo) attestedSession(id string, now time.Time) (*memoSession, bool) {
	t := m.now()
	m.mu.Lock()
	e := m.find(id, t)
	m.mu.Unlock()
	if e == nil || !e.attested || !now.Before(e.expires) {
		return nil, false
	}
	return e, true
}
