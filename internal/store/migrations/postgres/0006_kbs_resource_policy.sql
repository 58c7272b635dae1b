-- Key broker resource policy (Rego), one row per policy name; the broker
-- uses the row named 'resource'. sha256 is the hex SHA-256 of body, so a
-- broker can check cheaply whether the policy it compiled is still the
-- stored one.
CREATE TABLE kbs_policies (
    name       TEXT   PRIMARY KEY,
    body       TEXT   NOT NULL,
    sha256     TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);
