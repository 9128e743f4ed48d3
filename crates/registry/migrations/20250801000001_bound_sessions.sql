-- Sessions started over a connection with a terminal client certificate (mutual TLS, protocol
-- §3) are bound to that terminal: their proof and their poll must come over a connection whose
-- client certificate names the same terminal. NULL for a session started without one, which
-- behaves as before. Same schema rules as the first migration: TEXT and BIGINT only.

ALTER TABLE challenges ADD COLUMN bound_terminal_id TEXT;
