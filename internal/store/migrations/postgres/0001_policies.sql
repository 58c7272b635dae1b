-- Appraisal policies: every change is a new version; at most one version
-- of a policy id is active (partial unique index).
CREATE TABLE policies (
    id           TEXT     NOT NULL,
    version      INTEGER  NOT NULL CHECK (version > 0),
    kind         TEXT     NOT NULL CHECK (kind IN ('yaml', 'rego')),
    body         TEXT     NOT NULL,
    description  TEXT     NOT NULL DEFAULT '',
    author       TEXT     NOT NULL DEFAULT '',
    active       SMALLINT NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),
    created_at   BIGINT   NOT NULL,
    activated_at BIGINT,
    PRIMARY KEY (id, version)
);
CREATE UNIQUE INDEX policies_one_active ON policies (id) WHERE active = 1;
