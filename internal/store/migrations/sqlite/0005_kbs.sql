-- Key broker sessions: one row per RCAR handshake. state is pending
-- (challenge issued), attesting (nonce consumed, evidence being verified),
-- attested (token issued) or failed. A nonce is single use: attest moves a
-- session out of pending exactly once.
CREATE TABLE kbs_sessions (
    id          TEXT   PRIMARY KEY,
    nonce       TEXT   NOT NULL,
    tee         TEXT   NOT NULL,
    state       TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL,
    report_data BLOB   NOT NULL DEFAULT '',
    tee_pubkey  TEXT   NOT NULL DEFAULT '',
    token       TEXT   NOT NULL DEFAULT '',
    token_id    TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX kbs_sessions_token_id ON kbs_sessions (token_id);
CREATE INDEX kbs_sessions_expires_at ON kbs_sessions (expires_at);

-- Key broker resources, encrypted at rest by the broker (AES-256-GCM under
-- its key-encryption key, AAD the resource path): the store never sees
-- plaintext.
CREATE TABLE kbs_resources (
    path       TEXT   PRIMARY KEY,
    nonce      BLOB   NOT NULL,
    ciphertext BLOB   NOT NULL,
    updated_at BIGINT NOT NULL
);
