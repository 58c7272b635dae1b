-- Collateral cache shared by replicas: raw response body and headers (JSON
-- object) per cache key, as fetched.
CREATE TABLE collateral (
    key        TEXT   PRIMARY KEY,
    body       BYTEA  NOT NULL,
    headers    TEXT   NOT NULL DEFAULT '{}',
    fetched_at BIGINT NOT NULL
);
