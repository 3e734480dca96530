-- Issue 19: the recorded justification of a decision that needs human judgement (voluntary
-- disclosure, a claimed validation, a forged-emergency warning): the text a person wrote, the
-- check flags it answers, and (for the validation check) how it was checked. The audit entry
-- of the action carries this row's id and the text's SHA-256, so the text cannot change
-- unnoticed.
CREATE TABLE justifications (
    id TEXT PRIMARY KEY NOT NULL,
    order_id TEXT NOT NULL REFERENCES orders (id),
    action TEXT NOT NULL CHECK (action IN ('approval', 'validation_check')),
    method TEXT,
    points TEXT NOT NULL,
    text TEXT NOT NULL CHECK (length(text) BETWEEN 1 AND 5000),
    text_sha256 TEXT NOT NULL CHECK (length(text_sha256) = 64),
    author TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX justifications_by_order ON justifications (order_id, created_at);
