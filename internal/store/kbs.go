package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// KBS session states (kbs_sessions.state).
const (
	KBSSessionPending   = "pending"   // challenge issued, nonce unused (earlier brokers: now kept in the session cookie, never stored)
	KBSSessionAttesting = "attesting" // nonce consumed, evidence being verified (earlier brokers)
	KBSSessionAttested  = "attested"  // token issued
	KBSSessionFailed    = "failed"    // attestation refused
)

// KBSSession is one key broker handshake (RCAR).
type KBSSession struct {
	ID        string
	Nonce     string
	Tee       string
	State     string
	ExpiresAt time.Time
	// ReportData, TeePubKey (JWK JSON), Token and TokenID are set when
	// the session is attested.
	ReportData []byte
	TeePubKey  string
	Token      string
	TokenID    string
}

// KBSResource is one key broker resource as stored: sealed by the broker.
type KBSResource struct {
	Path       string
	Nonce      []byte
	Ciphertext []byte
	UpdatedAt  time.Time
}

const kbsSessionColumns = "id, nonce, tee, state, expires_at, report_data, tee_pubkey, token, token_id"

// RecordKBSSession records the outcome of a session's attestation by
// inserting it: attested (ss.Token set, with ReportData, TeePubKey and
// TokenID) or failed (ss.Token empty; its state is then failed whatever
// ss.State says). Pending sessions are not stored (the key broker keeps
// them in their cookies): a session id is recorded once, so of several
// attestations of one session (sequential or concurrent, from one or
// several processes) exactly one is recorded and every other fails with
// [ErrConflict].
func (s *Store) RecordKBSSession(ctx context.Context, ss KBSSession) error {
	if ss.ID == "" || ss.Nonce == "" {
		return fmt.Errorf("%w: empty session id or nonce", ErrInvalid)
	}
	if err := checkTime("kbs session "+ss.ID+": expires_at", ss.ExpiresAt); err != nil {
		return err
	}
	state := KBSSessionAttested
	if ss.Token == "" {
		state = KBSSessionFailed
		ss.ReportData, ss.TeePubKey, ss.TokenID = nil, "", ""
	}
	if ss.ReportData == nil {
		ss.ReportData = []byte{}
	}
	_, err := s.kbsExec(ctx, s.q("INSERT INTO kbs_sessions ("+kbsSessionColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		ss.ID, ss.Nonce, ss.Tee, state, toDB(ss.ExpiresAt), ss.ReportData, ss.TeePubKey, ss.Token, ss.TokenID)
	if err != nil {
		return fmt.Errorf("store: record kbs session %s: %w", ss.ID, mapErr(err))
	}
	return nil
}

// KBSSession returns the session id; [ErrNotFound] if none.
func (s *Store) KBSSession(ctx context.Context, id string) (KBSSession, error) {
	ss, err := scanKBSSession(s.queryRowPrepared(ctx, s.q("SELECT "+kbsSessionColumns+" FROM kbs_sessions WHERE id = ?"), id))
	if err != nil {
		return KBSSession{}, fmt.Errorf("store: kbs session: %w", err)
	}
	return ss, nil
}

// KBSSessionByTokenID returns the attested session whose token has the
// given id ("jti"); [ErrNotFound] if none.
func (s *Store) KBSSessionByTokenID(ctx context.Context, tokenID string) (KBSSession, error) {
	if tokenID == "" {
		return KBSSession{}, fmt.Errorf("store: kbs session by token: %w", ErrNotFound)
	}
	ss, err := scanKBSSession(s.queryRowPrepared(ctx, s.q("SELECT "+kbsSessionColumns+" FROM kbs_sessions WHERE token_id = ? AND state = ?"), tokenID, KBSSessionAttested))
	if err != nil {
		return KBSSession{}, fmt.Errorf("store: kbs session by token: %w", err)
	}
	return ss, nil
}

// DeleteExpiredKBSSessions removes the sessions that expired at or before
// t and returns how many.
func (s *Store) DeleteExpiredKBSSessions(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q("DELETE FROM kbs_sessions WHERE expires_at <= ?"), toDB(t))
	if err != nil {
		return 0, fmt.Errorf("store: delete expired kbs sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: delete expired kbs sessions: %w", err)
	}
	return n, nil
}

func scanKBSSession(r scanner) (KBSSession, error) {
	var (
		ss  KBSSession
		exp int64
	)
	err := r.Scan(&ss.ID, &ss.Nonce, &ss.Tee, &ss.State, &exp, &ss.ReportData, &ss.TeePubKey, &ss.Token, &ss.TokenID)
	if errors.Is(err, sql.ErrNoRows) {
		return KBSSession{}, ErrNotFound
	}
	if err != nil {
		return KBSSession{}, err
	}
	ss.ExpiresAt = fromDB(exp)
	return ss, nil
}

// PutKBSResource inserts or replaces a sealed resource.
func (s *Store) PutKBSResource(ctx context.Context, r KBSResource) error {
	if r.Path == "" || len(r.Nonce) == 0 || r.Ciphertext == nil {
		return fmt.Errorf("%w: kbs resource without path, nonce or ciphertext", ErrInvalid)
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = s.now()
	}
	if err := checkTime("kbs resource "+r.Path+": updated_at", r.UpdatedAt); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO kbs_resources (path, nonce, ciphertext, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (path) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at`),
		r.Path, r.Nonce, r.Ciphertext, toDB(r.UpdatedAt))
	if err != nil {
		return fmt.Errorf("store: put kbs resource %s: %w", r.Path, err)
	}
	s.wrote()
	return nil
}

// KBSResource returns the sealed resource at path; [ErrNotFound] if none.
func (s *Store) KBSResource(ctx context.Context, path string) (KBSResource, error) {
	var (
		r  KBSResource
		at int64
	)
	err := s.kbsQueryRow(ctx, s.q("SELECT path, nonce, ciphertext, updated_at FROM kbs_resources WHERE path = ?"), path).
		Scan(&r.Path, &r.Nonce, &r.Ciphertext, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return KBSResource{}, fmt.Errorf("store: kbs resource %s: %w", path, ErrNotFound)
	}
	if err != nil {
		return KBSResource{}, fmt.Errorf("store: kbs resource %s: %w", path, err)
	}
	r.UpdatedAt = fromDB(at)
	return r, nil
}

// DeleteKBSResource removes the resource at path; [ErrNotFound] if none.
func (s *Store) DeleteKBSResource(ctx context.Context, path string) error {
	res, err := s.db.ExecContext(ctx, s.q("DELETE FROM kbs_resources WHERE path = ?"), path)
	if err != nil {
		return fmt.Errorf("store: delete kbs resource %s: %w", path, err)
	}
	s.wrote()
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: delete kbs resource %s: %w", path, err)
	} else if n == 0 {
		return fmt.Errorf("store: delete kbs resource %s: %w", path, ErrNotFound)
	}
	return nil
}
