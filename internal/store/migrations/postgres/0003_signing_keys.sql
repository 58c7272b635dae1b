-- EAR signing keys. private_key is a PKCS #8 PEM block; it is erased (NULL)
-- when the key is removed, the row stays so a kid is never reused. At most
-- one key is active.
CREATE TABLE signing_keys (
    kid         TEXT   PRIMARY KEY,
    algorithm   TEXT   NOT NULL,
    private_key BYTEA,
    state       TEXT   NOT NULL CHECK (state IN ('active', 'retired', 'removed')),
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT,
    removed_at  BIGINT,
    CHECK ((state = 'removed') = (private_key IS NULL))
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';
