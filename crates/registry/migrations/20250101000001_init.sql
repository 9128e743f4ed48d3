-- One schema for SQLite and PostgreSQL: only TEXT and BIGINT columns, times in Unix milliseconds.
-- Nothing here can identify a person outside this service: no My Number, no PIN, no raw
-- certificate, no photo, no insured number. `linkage_code` is this service's own code from the
-- identity upstream.

CREATE TABLE challenges (
    session_id      TEXT   PRIMARY KEY,
    nonce           TEXT   NOT NULL UNIQUE,
    terminal_id     TEXT   NOT NULL,
    purpose         TEXT   NOT NULL,
    methods         TEXT   NOT NULL,
    consent_version TEXT   NOT NULL,
    consent_sha256  TEXT   NOT NULL,
    issued_at       BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    -- Set once, in the transaction that applies the proof's effect; a second proof finds it set.
    used_at         BIGINT,
    proof_sha256    TEXT,
    -- The first answer, without personal data, returned again to a retried submission.
    outcome         TEXT
);

CREATE INDEX challenges_expires_at ON challenges (expires_at);

CREATE TABLE registrations (
    registration_id TEXT   PRIMARY KEY,
    root_id         TEXT   NOT NULL,
    serial          TEXT   NOT NULL,
    cert_sha256     TEXT   NOT NULL,
    linkage_code    TEXT   NOT NULL,
    terminal_id     TEXT   NOT NULL,
    method          TEXT   NOT NULL,
    consent_version TEXT   NOT NULL,
    registered_at   BIGINT NOT NULL,
    relinked_at     BIGINT,
    -- One card certificate, one registration: concurrent submissions meet here.
    CONSTRAINT registrations_card UNIQUE (root_id, serial)
);

CREATE INDEX registrations_linkage ON registrations (linkage_code);
