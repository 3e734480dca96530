-- Pinned TLS client identities: a certificate (or its key) that a connection's verified client
-- certificate must match, on the path prefixes that require mutual TLS (e-Evidence), and the
-- authority it stands for. A pin is the lowercase hex SHA-256 of the whole certificate (DER) or
-- of its SubjectPublicKeyInfo (DER). Revoked pins stay as the record; a pin is never reused.
CREATE TABLE authority_tls_pins (
    sha256 TEXT PRIMARY KEY NOT NULL CHECK (length(sha256) = 64),
    kind TEXT NOT NULL CHECK (kind IN ('certificate', 'spki')),
    authority_id TEXT NOT NULL REFERENCES authorities (id),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX authority_tls_pins_by_authority ON authority_tls_pins (authority_id);
