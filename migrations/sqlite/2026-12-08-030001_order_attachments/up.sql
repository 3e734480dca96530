-- Issue 19: the further papers that came with an order entered by hand (translations, cover
-- letters, annexes), kept with the order beside its signed document. Staff download them; the
-- audit entry of the intake names each one's SHA-256, so none can change unnoticed.
CREATE TABLE order_attachments (
    order_id TEXT NOT NULL REFERENCES orders (id),
    position INTEGER NOT NULL CHECK (position >= 1),
    label TEXT NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
    file_name TEXT NOT NULL CHECK (length(file_name) BETWEEN 1 AND 200),
    sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
    size BIGINT NOT NULL,
    content BLOB NOT NULL,
    added_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, position)
);
