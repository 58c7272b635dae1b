-- Reference values: one row per provenance record, its accepted values in
-- reference_value_items. Times are Unix nanoseconds; a value is valid at t
-- when (not_before IS NULL OR not_before <= t) AND (expires IS NULL OR t < expires).
CREATE TABLE reference_values (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            TEXT    NOT NULL,
    source          TEXT    NOT NULL DEFAULT '',
    author          TEXT    NOT NULL DEFAULT '',
    artifact_digest TEXT    NOT NULL DEFAULT '',
    created_at      BIGINT  NOT NULL,
    not_before      BIGINT,
    expires         BIGINT,
    CHECK (not_before IS NULL OR expires IS NULL OR not_before < expires)
);
CREATE INDEX reference_values_name ON reference_values (name);
CREATE TABLE reference_value_items (
    reference_value_id BIGINT  NOT NULL REFERENCES reference_values (id) ON DELETE CASCADE,
    position           INTEGER NOT NULL,
    value              TEXT    NOT NULL,
    PRIMARY KEY (reference_value_id, position),
    UNIQUE (reference_value_id, value)
);
