-- Registrations that wait for an upstream (protocol §16): one row per session that went
-- pending. Same schema rules as the first migration: TEXT and BIGINT only, times in Unix
-- milliseconds, nothing that identifies a person outside this service. The card columns hold
-- what a registration row holds and are cleared when the registration ends.

CREATE TABLE pending_registrations (
    session_id      TEXT   PRIMARY KEY,
    -- SHA-256 of the poll token (base64url); the token itself is never stored.
    token_sha256    TEXT   NOT NULL,
    -- 'pending' while the service works on it, 'done' once the result is with the session.
    state           TEXT   NOT NULL,
    -- The upstream the last attempt waited for: 'identity' or 'insurance'.
    waiting_on      TEXT   NOT NULL,
    root_id         TEXT,
    serial          TEXT,
    cert_sha256     TEXT,
    not_after       BIGINT,
    terminal_id     TEXT   NOT NULL,
    method          TEXT   NOT NULL,
    consent_version TEXT   NOT NULL,
    attempts        BIGINT NOT NULL,
    accepted_at     BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    deadline        BIGINT NOT NULL,
    -- The worker holding the item and until when; a claim needs lease_until <= now.
    lease_owner     TEXT,
    lease_until     BIGINT NOT NULL,
    finished_at     BIGINT
);

CREATE INDEX pending_registrations_due ON pending_registrations (state, next_attempt_at);
